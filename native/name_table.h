/* an open-addressing table of names (bytes and a length), shared by the addon's lookups by name */
#ifndef KMODTS_NAME_TABLE_H
#define KMODTS_NAME_TABLE_H
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "bytes.h"

/* a name: its bytes and length */
typedef struct {
	const uint8_t *p;
	uint32_t len;
} name_t;

/* slots for up to n names, at most half full; each holds an index into the caller's names plus one (0: empty) */
typedef struct {
	uint32_t *slots;
	uint32_t mask;
} name_table_t;

/* 0, or -1 out of memory */
static inline int name_table_init(name_table_t *t, uint64_t n)
{
	uint32_t cap = 16;
	while (cap < 2 * n)
		cap *= 2;
	t->slots = calloc(cap, sizeof(uint32_t));
	t->mask = cap - 1;
	return t->slots == NULL ? -1 : 0;
}

/* the slot of p[0, len) among `names` (the table's indices point into it): its own, or the empty one where it would go */
static inline uint32_t *name_table_slot(const name_table_t *t, const name_t *names, const uint8_t *p, uint32_t len)
{
	uint32_t s = fnv1a32(p, len) & t->mask;
	for (; t->slots[s] != 0; s = (s + 1) & t->mask) {
		const name_t *o = &names[t->slots[s] - 1];
		if (o->len == len && memcmp(o->p, p, len) == 0)
			break;
	}
	return &t->slots[s];
}
#endif
