/*
 * Bounds and count checks of many ranges in one call. depmod's scan cache (src/depmod/scan-cache.ts)
 * holds each entry's imports as references into its dictionary, ~200,000 of them on the full tree; each
 * must name an entry of the dictionary before it is used, and an entry with one that does not is read
 * again. Checked in a JavaScript loop on every cached run, before any of that code is compiled, they
 * cost ~6 ms; here well under one. A new cache keeps the old one's dictionary when its entries still use
 * nearly all of it: which ones they use is marked here too.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <node_api.h>
#include "napi_args.h"
#include "word_ranges.h"

/* a call's data, its ranges (as many starts as counts) and, for some, a mask and a bound */
typedef struct {
	const void *data;
	size_t ndata;
	const uint32_t *starts, *counts;
	size_t n;
	uint32_t mask, bound;
} ranges_call_t;

/*
 * The arguments shared by the functions here: the data (a typed array of `type`), the starts and the
 * counts (Uint32Arrays), then with `numbers` the mask and the bound; 0, or -1 with an exception thrown
 */
static int ranges_args(napi_env env, napi_callback_info info, const char *fn, napi_typedarray_type type, int numbers, ranges_call_t *call)
{
	napi_value argv[5];
	size_t argc = 5, want = numbers ? 5 : 3, ncounts;
	void *d, *s, *c;
	char msg[96];

	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < want) {
		snprintf(msg, sizeof msg, "%s: missing arguments", fn);
		napi_throw_type_error(env, NULL, msg);
		return -1;
	}
	if (typed_array_arg(env, fn, argv[0], type, &d, &call->ndata) < 0 || typed_array_arg(env, fn, argv[1], napi_uint32_array, &s, &call->n) < 0 ||
	    typed_array_arg(env, fn, argv[2], napi_uint32_array, &c, &ncounts) < 0)
		return -1;
	if (numbers && (napi_get_value_uint32(env, argv[3], &call->mask) != napi_ok || napi_get_value_uint32(env, argv[4], &call->bound) != napi_ok)) {
		snprintf(msg, sizeof msg, "%s: mask and bound must be numbers", fn);
		napi_throw_type_error(env, NULL, msg);
		return -1;
	}
	if (call->n != ncounts) {
		snprintf(msg, sizeof msg, "%s: starts and counts differ in length", fn);
		napi_throw_range_error(env, NULL, msg);
		return -1;
	}
	call->data = d;
	call->starts = s;
	call->counts = c;
	return 0;
}

/*
 * A result of n elements of `type` (elem bytes each): *result the typed array, *data its memory (which
 * may be NULL when n is 0); 0, or -1 with an exception pending
 */
static int range_results(napi_env env, napi_typedarray_type type, size_t n, size_t elem, void *data, napi_value *result)
{
	napi_value ab;
	return napi_create_arraybuffer(env, n * elem, (void **)data, &ab) == napi_ok && napi_create_typedarray(env, type, n, ab, 0, result) == napi_ok ? 0 : -1;
}

/*
 * wordRangesBelow(words: Uint32Array, starts: Uint32Array, counts: Uint32Array, mask: number, limit:
 * number): Uint8Array, one byte per range: 1 when every word of words[starts[i], starts[i] + counts[i])
 * masked with mask is below limit, else 0 (also for a range that does not lie within words).
 */
static napi_value word_ranges_below_js(napi_env env, napi_callback_info info)
{
	napi_value result;
	ranges_call_t call;
	uint8_t *out;

	if (ranges_args(env, info, "wordRangesBelow", napi_uint32_array, 1, &call) < 0 ||
	    range_results(env, napi_uint8_array, call.n, 1, &out, &result) < 0)
		return NULL;
	const uint32_t *w = call.data, *s = call.starts, *c = call.counts;
	for (size_t i = 0; i < call.n; i++) {
		uint8_t ok = (uint64_t)s[i] + c[i] <= call.ndata;
		for (uint32_t j = 0; ok && j < c[i]; j++)
			if ((w[s[i] + j] & call.mask) >= call.bound)
				ok = 0;
		out[i] = ok;
	}
	return result;
}

/*
 * wordRangesMark(words: Uint32Array, starts: Uint32Array, counts: Uint32Array, mask: number, size:
 * number): Uint8Array | null, size bytes: 1 at each value that a word of the ranges has once masked,
 * else 0; null when a range does not lie within words or a masked word is not below size. (Which
 * entries of the old cache's import dictionary the entries kept in a new cache still use.)
 */
static napi_value word_ranges_mark_js(napi_env env, napi_callback_info info)
{
	napi_value result;
	ranges_call_t call;
	uint8_t *out;

	if (ranges_args(env, info, "wordRangesMark", napi_uint32_array, 1, &call) < 0)
		return NULL;
	/* a dictionary's size: an index fits in 31 bits, and a file of a billion entries is damage */
	uint32_t size = call.bound;
	if (size > (1u << 30)) {
		napi_throw_range_error(env, NULL, "wordRangesMark: size out of range");
		return NULL;
	}
	if (range_results(env, napi_uint8_array, size, 1, &out, &result) < 0)
		return NULL;
	const uint32_t *w = call.data, *s = call.starts, *c = call.counts;
	if (size > 0)
		memset(out, 0, size);
	for (size_t i = 0; i < call.n; i++) {
		if ((uint64_t)s[i] + c[i] > call.ndata)
			goto none;
		for (uint32_t j = 0; j < c[i]; j++) {
			uint32_t v = w[s[i] + j] & call.mask;
			if (v >= size)
				goto none;
			out[v] = 1;
		}
	}
	return result;
none:
	if (napi_get_null(env, &result) != napi_ok)
		return NULL;
	return result;
}

/*
 * nulsInRanges(bytes: Uint8Array, starts: Uint32Array, lengths: Uint32Array): Uint32Array, per range
 * bytes[starts[i], starts[i] + lengths[i]) the number of its NUL bytes, or 0xffffffff for a range that
 * does not lie within bytes. (How many strings each scan cache entry's NUL-joined lists hold: checked
 * for all entries at once, so that a cached run passes their bytes on without making a string of each.)
 */
static napi_value nuls_in_ranges_js(napi_env env, napi_callback_info info)
{
	napi_value result;
	ranges_call_t call;
	uint32_t *out;

	if (ranges_args(env, info, "nulsInRanges", napi_uint8_array, 0, &call) < 0 ||
	    range_results(env, napi_uint32_array, call.n, sizeof(uint32_t), &out, &result) < 0)
		return NULL;
	const uint8_t *bytes = call.data;
	const uint32_t *starts = call.starts, *lengths = call.counts;
	for (size_t i = 0; i < call.n; i++) {
		if ((uint64_t)starts[i] + lengths[i] > call.ndata) {
			out[i] = UINT32_MAX;
			continue;
		}
		const uint8_t *p = bytes + starts[i], *end = p + lengths[i];
		uint32_t n = 0;
		while (p < end && (p = memchr(p, 0, (size_t)(end - p))) != NULL) {
			n++;
			p++;
		}
		out[i] = n;
	}
	return result;
}

/*
 * wordRangeSums(words: Uint32Array, starts: Uint32Array, counts: Uint32Array): Float64Array, per range
 * words[starts[i], starts[i] + counts[i]) the sum of its words, or -1 for a range that does not lie
 * within words. (What each scan cache entry's alias key lengths add up to, for all entries at once.)
 */
static napi_value word_range_sums_js(napi_env env, napi_callback_info info)
{
	napi_value result;
	ranges_call_t call;
	double *out;

	if (ranges_args(env, info, "wordRangeSums", napi_uint32_array, 0, &call) < 0 ||
	    range_results(env, napi_float64_array, call.n, sizeof(double), &out, &result) < 0)
		return NULL;
	const uint32_t *words = call.data, *starts = call.starts, *counts = call.counts;
	for (size_t i = 0; i < call.n; i++) {
		uint64_t sum = 0;
		if ((uint64_t)starts[i] + counts[i] > call.ndata) {
			out[i] = -1;
			continue;
		}
		for (uint32_t j = 0; j < counts[i]; j++)
			sum += words[starts[i] + (size_t)j];
		out[i] = (double)sum;
	}
	return result;
}

napi_status word_ranges_register(napi_env env, napi_value exports)
{
	const napi_property_descriptor props[] = {
		{ "wordRangesBelow", NULL, word_ranges_below_js, NULL, NULL, NULL, napi_enumerable, NULL },
		{ "wordRangesMark", NULL, word_ranges_mark_js, NULL, NULL, NULL, napi_enumerable, NULL },
		{ "nulsInRanges", NULL, nuls_in_ranges_js, NULL, NULL, NULL, napi_enumerable, NULL },
		{ "wordRangeSums", NULL, word_range_sums_js, NULL, NULL, NULL, napi_enumerable, NULL },
	};
	return napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
