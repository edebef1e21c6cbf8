/* growable arrays kept from call to call (one set per thread), shared by the addon's scanners */
#ifndef KMODTS_VEC_H
#define KMODTS_VEC_H
#include <stdlib.h>

typedef struct {
	void *p;
	size_t cap; /* elements */
} vec_t;

#define VEC(v, type) ((type *)(v).p)

/* room for `need` elements of `elem` bytes; 0, or -1 out of memory (the array is left as it was) */
static inline int vec_reserve(vec_t *v, size_t need, size_t elem)
{
	size_t cap;
	void *p;
	if (need <= v->cap)
		return 0;
	cap = v->cap ? v->cap : 256;
	while (cap < need)
		cap *= 2;
	p = realloc(v->p, cap * elem);
	if (p == NULL)
		return -1;
	v->p = p;
	v->cap = cap;
	return 0;
}
#endif
