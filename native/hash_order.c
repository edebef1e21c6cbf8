/*
 * The order in which kmod's hash table (shared/hash.c) visits its keys, for many keys in one call
 * (src/depmod/hash.ts hashOrder, which has the same algorithm in JavaScript): buckets 0..n-1 by Paul
 * Hsieh's SuperFastHash of the key (16-bit little-endian reads, signed chars in the tail, as x86 C
 * has them), keys in a bucket sorted bytewise (strcmp; a key that is a prefix of another first).
 * depmod orders modules.symbols' ~15,000 names this way on every run: hashing and sorting them in
 * JavaScript cost ~25-30 ms of a cached run, most of it before the code is compiled.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <node_api.h>
#include "hash_order.h"
#include "napi_args.h"

static uint32_t get16(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8);
}

/* a byte as x86's signed char, widened to 32 bits */
static uint32_t s8(uint8_t c)
{
	return (uint32_t)(int32_t)(int8_t)c;
}

static uint32_t superfast(const uint8_t *key, uint32_t len)
{
	uint32_t hash = len, tmp;
	uint32_t rem = len & 3;

	for (len >>= 2; len > 0; len--) {
		hash += get16(key);
		tmp = (get16(key + 2) << 11) ^ hash;
		hash = (hash << 16) ^ tmp;
		key += 4;
		hash += hash >> 11;
	}
	switch (rem) {
	case 3:
		hash += get16(key);
		hash ^= hash << 16;
		hash ^= s8(key[2]) << 18;
		hash += hash >> 11;
		break;
	case 2:
		hash += get16(key);
		hash ^= hash << 11;
		hash += hash >> 17;
		break;
	case 1:
		hash += s8(key[0]);
		hash ^= hash << 10;
		hash += hash >> 1;
		break;
	}
	hash ^= hash << 3;
	hash += hash >> 5;
	hash ^= hash << 4;
	hash += hash >> 17;
	hash ^= hash << 25;
	hash += hash >> 6;
	return hash;
}

struct keys {
	const uint8_t *bytes;
	const uint64_t *start;
	const uint32_t *len;
};

/* bytewise order of keys a and b, then their index (equal keys keep their order, as a stable sort does) */
static int key_cmp(const void *pa, const void *pb, void *arg)
{
	const struct keys *k = arg;
	uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;
	uint32_t la = k->len[a], lb = k->len[b];
	int c = memcmp(k->bytes + k->start[a], k->bytes + k->start[b], la < lb ? la : lb);

	if (c != 0)
		return c;
	if (la != lb)
		return la < lb ? -1 : 1;
	return a < b ? -1 : a > b;
}

/*
 * The n keys (key i: len[i] bytes at bytes + start[i]) in kmod's iteration order for `buckets` buckets
 * (a power of two): their indices into out. 0, or -1 out of memory.
 */
int hash_order_indices(const uint8_t *bytes, const uint64_t *start, const uint32_t *len, size_t n, uint32_t buckets, uint32_t *out)
{
	uint32_t *bucket_of = malloc((n + 1) * sizeof *bucket_of);
	uint32_t *fill = calloc((size_t)buckets + 1, sizeof *fill);
	if (bucket_of == NULL || fill == NULL) {
		free(bucket_of);
		free(fill);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		bucket_of[i] = superfast(bytes + start[i], len[i]) & (buckets - 1);
		fill[bucket_of[i] + 1]++;
	}
	/* a counting sort by bucket (fill[b]: where bucket b starts), then each bucket sorted by key */
	for (uint32_t b = 0; b < buckets; b++)
		fill[b + 1] += fill[b];
	for (size_t i = 0; i < n; i++)
		out[fill[bucket_of[i]]++] = (uint32_t)i;
	struct keys k = { bytes, start, len };
	uint32_t lo = 0;
	for (uint32_t b = 0; b < buckets; b++) {
		/* after the fill, fill[b] is where bucket b ends */
		uint32_t hi = fill[b];
		if (hi - lo > 1)
			qsort_r(out + lo, hi - lo, sizeof *out, key_cmp, &k);
		lo = hi;
	}
	free(bucket_of);
	free(fill);
	return 0;
}

/*
 * hashOrder(keys: Uint8Array, lengths: Uint32Array, buckets: number): Uint32Array, the keys' indices
 * in iteration order. keys holds the keys one after another (lengths[i] bytes each, binary strings as
 * bytes); buckets is a power of two.
 */
static napi_value hash_order_js(napi_env env, napi_callback_info info)
{
	napi_value argv[3], ab, result = NULL;
	size_t argc = 3, nbytes, n;
	void *bytes, *lens, *out_data;
	uint32_t buckets;
	uint64_t *start = NULL;

	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3) {
		napi_throw_type_error(env, NULL, "hashOrder: missing arguments");
		return NULL;
	}
	if (typed_array_arg(env, "hashOrder", argv[0], napi_uint8_array, &bytes, &nbytes) < 0 ||
	    typed_array_arg(env, "hashOrder", argv[1], napi_uint32_array, &lens, &n) < 0)
		return NULL;
	if (napi_get_value_uint32(env, argv[2], &buckets) != napi_ok || !hash_buckets_ok(buckets)) {
		napi_throw_range_error(env, NULL, "hashOrder: buckets must be a power of two up to 2^24");
		return NULL;
	}
	if (n > UINT32_MAX / 2) {
		napi_throw_range_error(env, NULL, "hashOrder: too many keys");
		return NULL;
	}
	start = malloc((n + 1) * sizeof *start);
	if (start == NULL) {
		napi_throw_error(env, NULL, "hashOrder: out of memory");
		return NULL;
	}
	uint64_t at = 0;
	for (size_t i = 0; i < n; i++) {
		uint32_t len = ((const uint32_t *)lens)[i];
		if (len > nbytes - at) {
			napi_throw_range_error(env, NULL, "hashOrder: the lengths exceed the keys' bytes");
			goto done;
		}
		start[i] = at;
		at += len;
	}
	if (napi_create_arraybuffer(env, n * 4, &out_data, &ab) != napi_ok)
		goto done;
	if (hash_order_indices(bytes, start, lens, n, buckets, out_data) < 0) {
		napi_throw_error(env, NULL, "hashOrder: out of memory");
		goto done;
	}
	if (napi_create_typedarray(env, napi_uint32_array, n, ab, 0, &result) != napi_ok)
		result = NULL;
done:
	free(start);
	return result;
}

napi_status hash_order_register(napi_env env, napi_value exports)
{
	napi_property_descriptor prop = { "hashOrder", NULL, hash_order_js, NULL, NULL, NULL, napi_enumerable, NULL };
	return napi_define_properties(env, exports, 1, &prop);
}
