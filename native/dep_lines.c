/*
 * modules.dep's lines (src/depmod/index-files.ts): for each module, every module it needs directly or
 * not, in the order of kmod's topological sort (dep-graph.ts calculateDependencies). In JavaScript each
 * module's walk, sort and line cost ~5 ms of a run that takes every module from the scan cache (~4,200
 * modules), and the text and modules.dep.bin's values were joined twice more.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <node_api.h>
#include "napi_args.h"
#include "bytes.h"
#include "vec.h"
#include "dep_lines.h"

/* a growing list of module indices */
typedef struct {
	vec_t v;
	size_t len;
} ivec_t;

static int ivec_push(ivec_t *l, int32_t x)
{
	if (vec_reserve(&l->v, l->len + 1, sizeof(int32_t)) < 0)
		return -1;
	VEC(l->v, int32_t)[l->len++] = x;
	return 0;
}

/* qsort_r's comparison: by sort index (unique), then by module */
static int by_sort_index(const void *a, const void *b, void *arg)
{
	const int32_t *sort_index = arg;
	int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
	if (sort_index[x] != sort_index[y])
		return sort_index[x] < sort_index[y] ? -1 : 1;
	return x < y ? -1 : x > y;
}

typedef struct {
	const int32_t *deps;
	const uint32_t *ends;
	const int32_t *sort_idx;
	const uint8_t *names;
	const uint32_t *name_lengths;
	size_t n, ndeps, nnames;
} dep_args_t;

static napi_value throw_range(napi_env env, const char *msg)
{
	napi_throw_range_error(env, NULL, msg);
	return NULL;
}

/* the arguments, checked: every index within bounds, the names' bytes adding up; NULL, or a thrown error */
static const char *check_args(const dep_args_t *a, size_t nends, size_t nsort, size_t nlen)
{
	uint64_t name_total = 0;
	if (nends != a->n || nsort != a->n || nlen != a->n)
		return "depLines: the per-module arrays differ in length";
	for (size_t k = 0; k < a->n; k++) {
		if (a->ends[k] > a->ndeps || (k > 0 && a->ends[k] < a->ends[k - 1]))
			return "depLines: a module's dependencies lie outside the list";
		if (a->sort_idx[k] < 0 || (size_t)a->sort_idx[k] >= a->n)
			return "depLines: a sort index is out of range";
		name_total += a->name_lengths[k];
	}
	if (name_total != a->nnames)
		return "depLines: the names' lengths and bytes do not add up";
	for (size_t j = 0; j < a->ndeps; j++)
		if (a->deps[j] < 0 || (size_t)a->deps[j] >= a->n)
			return "depLines: a dependency is not a module";
	return NULL;
}

/*
 * Every module's dependencies, direct or not, sorted: appended to `all`, module k's ending at ends_out[k].
 * 0, or -1 out of memory.
 */
static int all_dependencies(const dep_args_t *a, ivec_t *all, uint32_t *ends_out)
{
	uint32_t *marks = calloc(a->n ? a->n : 1, sizeof(uint32_t));
	int32_t *stack = malloc((a->n ? a->n : 1) * sizeof(int32_t));
	int r = 0;
	if (marks == NULL || stack == NULL)
		r = -1;
	for (size_t m = 0; r == 0 && m < a->n; m++) {
		size_t top = 0, from = all->len;
		uint32_t call = (uint32_t)m + 1;
		stack[top++] = (int32_t)m;
		while (r == 0 && top > 0) {
			int32_t x = stack[--top];
			for (uint32_t j = x == 0 ? 0 : a->ends[x - 1]; j < a->ends[x]; j++) {
				int32_t d = a->deps[j];
				if (marks[d] == call)
					continue;
				marks[d] = call;
				/* each module is marked once per call: the stack never holds more than n */
				if (ivec_push(all, d) < 0) {
					r = -1;
					break;
				}
				stack[top++] = d;
			}
		}
		if (r == 0 && all->len - from > 1)
			qsort_r(VEC(all->v, int32_t) + from, all->len - from, sizeof(int32_t), by_sort_index, (void *)a->sort_idx);
		ends_out[m] = (uint32_t)all->len;
	}
	free(marks);
	free(stack);
	return r;
}

/*
 * depLines(deps: Int32Array, ends: Uint32Array, sortIdx: Int32Array, names: Uint8Array, nameLengths:
 * Uint32Array): [Buffer, Buffer, Uint32Array]
 * Module k needs deps[ends[k-1], ends[k]) directly (ends[-1] = 0); sortIdx[k] is its place in the
 * topological order; names[k] (nameLengths[k] bytes, one after another) is what modules.dep calls it.
 * Returns modules.dep's text ("<name>:" and " <dep>" for each dependency, sorted, then a newline, for
 * each module in order), the same lines without their newlines one after another, and their lengths.
 */
static napi_value dep_lines_js(napi_env env, napi_callback_info info)
{
	static const char fn[] = "depLines";
	napi_value argv[5], text, values, lengths_ab, lengths, result;
	size_t argc = 5, nends, nsort, nlen;
	void *deps, *ends, *sort_idx, *names, *name_lengths, *text_data, *values_data, *lengths_data;
	dep_args_t a;
	ivec_t all = { 0 };
	const char *bad;

	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 5) {
		napi_throw_type_error(env, NULL, "depLines: missing arguments");
		return NULL;
	}
	if (typed_array_arg(env, fn, argv[0], napi_int32_array, &deps, &a.ndeps) < 0 ||
	    typed_array_arg(env, fn, argv[1], napi_uint32_array, &ends, &nends) < 0 ||
	    typed_array_arg(env, fn, argv[2], napi_int32_array, &sort_idx, &nsort) < 0 ||
	    typed_array_arg(env, fn, argv[3], napi_uint8_array, &names, &a.nnames) < 0 ||
	    typed_array_arg(env, fn, argv[4], napi_uint32_array, &name_lengths, &nlen) < 0)
		return NULL;
	a.deps = deps;
	a.ends = ends;
	a.sort_idx = sort_idx;
	a.names = names;
	a.name_lengths = name_lengths;
	a.n = nends;
	bad = check_args(&a, nends, nsort, nlen);
	if (bad != NULL)
		return throw_range(env, bad);
	/* each name's offset, and the end of each module's full list */
	uint64_t *name_at = malloc((a.n ? a.n : 1) * sizeof(uint64_t));
	uint32_t *list_ends = malloc((a.n ? a.n : 1) * sizeof(uint32_t));
	if (name_at == NULL || list_ends == NULL || all_dependencies(&a, &all, list_ends) < 0) {
		free(name_at);
		free(list_ends);
		free(all.v.p);
		napi_throw_error(env, NULL, "depLines: out of memory");
		return NULL;
	}
	uint64_t at = 0, size = 0;
	for (size_t k = 0; k < a.n; k++) {
		name_at[k] = at;
		at += a.name_lengths[k];
	}
	for (size_t k = 0, j = 0; k < a.n; k++) {
		size += a.name_lengths[k] + 1;
		for (; j < list_ends[k]; j++)
			size += 1 + a.name_lengths[VEC(all.v, int32_t)[j]];
	}
	napi_status s = size > (uint64_t)INT32_MAX ? napi_generic_failure : napi_ok;
	if (s == napi_ok)
		s = napi_create_buffer(env, (size_t)(size + a.n), &text_data, &text);
	if (s == napi_ok)
		s = napi_create_buffer(env, (size_t)size, &values_data, &values);
	if (s == napi_ok)
		s = napi_create_arraybuffer(env, a.n * sizeof(uint32_t), &lengths_data, &lengths_ab);
	if (s == napi_ok) {
		uint8_t *t = text_data, *v = values_data;
		uint32_t *len = lengths_data;
		for (size_t k = 0, j = 0; k < a.n; k++) {
			uint8_t *line = v;
			v = put_bytes(v, a.names + name_at[k], a.name_lengths[k]);
			*v++ = ':';
			for (; j < list_ends[k]; j++) {
				int32_t d = VEC(all.v, int32_t)[j];
				*v++ = ' ';
				v = put_bytes(v, a.names + name_at[d], a.name_lengths[d]);
			}
			len[k] = (uint32_t)(v - line);
			t = put_bytes(t, line, len[k]);
			*t++ = '\n';
		}
		s = napi_create_typedarray(env, napi_uint32_array, a.n, lengths_ab, 0, &lengths);
	}
	free(name_at);
	free(list_ends);
	free(all.v.p);
	if (s == napi_ok)
		s = napi_create_array_with_length(env, 3, &result);
	if (s == napi_ok)
		s = napi_set_element(env, result, 0, text);
	if (s == napi_ok)
		s = napi_set_element(env, result, 1, values);
	if (s == napi_ok)
		s = napi_set_element(env, result, 2, lengths);
	if (s != napi_ok) {
		napi_throw_error(env, NULL, "depLines: the result could not be made");
		return NULL;
	}
	return result;
}

napi_status dep_lines_register(napi_env env, napi_value exports)
{
	const napi_property_descriptor props[] = {
		{ "depLines", NULL, dep_lines_js, NULL, NULL, NULL, napi_enumerable, NULL },
	};
	return napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
