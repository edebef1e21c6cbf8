/*
 * The import dictionary of a depmod scan cache being written (src/depmod/import-dictionary.ts has the
 * format and the JavaScript builder this one stands in for): every distinct (name, CRC) of the modules'
 * imports once, in the order first seen, and each import's reference into it. Debian's full tree has
 * ~180,000 imports of ~20,000 symbols; looked up one by one in JavaScript (which depmod runs without
 * its optimizing compilers) that took ~200 ms of a cold run, here a few.
 *
 * The builder is an external value that JavaScript holds and passes back:
 *   importDictionaryNew(): External
 *   importDictionaryAdd(dict, names, lengths, keys, crcs, weak | null, select | null, refs): its size
 *   importDictionaryParts(dict): [Float64Array, Int32Array, Uint32Array, Uint8Array]
 * Names lie one after the other in `names`, one byte (a NUL) between each and the next, as a scan's and
 * a dictionary's names do. CRCs compare as JavaScript numbers do, except that NaN equals NaN.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <node_api.h>
#include "napi_args.h"
#include "vec.h"
#include "import_dictionary.h"

#define WEAK_REF 0x80000000u
/* what a reference names must fit below the weak bit */
#define MAX_ENTRIES 0x7fffffffu

struct import_dictionary {
	vec_t crcs, keys, lengths, starts, names;
	size_t count, used;
	/* open addressing: entry index + 1, 0 for an empty slot; mask + 1 slots, a power of two */
	uint32_t *slots;
	size_t mask;
};

static void dictionary_free(napi_env env, void *data, void *hint)
{
	struct import_dictionary *d = data;
	(void)env;
	(void)hint;
	free(d->crcs.p);
	free(d->keys.p);
	free(d->lengths.p);
	free(d->starts.p);
	free(d->names.p);
	free(d->slots);
	free(d);
}

static uint32_t slot_hash(int32_t key, uint32_t len)
{
	/* the key is a hash of the name already (hash.ts symbolKey); mixed so that low bits vary */
	uint32_t h = (uint32_t)key * 0x9e3779b1u;
	return h ^ (h >> 15) ^ len;
}

static int same_crc(double a, double b)
{
	return a == b || (isnan(a) && isnan(b));
}

/* twice the slots; 0, or -1 out of memory (the table is left as it was) */
static int grow_slots(struct import_dictionary *d)
{
	size_t n = d->slots == NULL ? 1024 : 2 * (d->mask + 1);
	uint32_t *slots = calloc(n, sizeof *slots);
	if (slots == NULL)
		return -1;
	for (size_t k = 0; k < d->count; k++) {
		size_t s = slot_hash(VEC(d->keys, int32_t)[k], VEC(d->lengths, uint32_t)[k]) & (n - 1);
		while (slots[s] != 0)
			s = (s + 1) & (n - 1);
		slots[s] = (uint32_t)k + 1;
	}
	free(d->slots);
	d->slots = slots;
	d->mask = n - 1;
	return 0;
}

/* the entry of this name, key and CRC, added if new; -1 out of memory or past MAX_ENTRIES */
static int64_t dictionary_add(struct import_dictionary *d, const uint8_t *name, uint32_t len, int32_t key, double crc)
{
	if (d->slots == NULL || 2 * (d->count + 1) > d->mask + 1) {
		if (grow_slots(d) < 0)
			return -1;
	}
	size_t s = slot_hash(key, len) & d->mask;
	for (uint32_t e; (e = d->slots[s]) != 0; s = (s + 1) & d->mask) {
		size_t k = e - 1;
		if (VEC(d->keys, int32_t)[k] == key && VEC(d->lengths, uint32_t)[k] == len &&
		    same_crc(VEC(d->crcs, double)[k], crc) &&
		    memcmp(VEC(d->names, uint8_t) + VEC(d->starts, uint32_t)[k], name, len) == 0)
			return (int64_t)k;
	}
	size_t k = d->count;
	if (k >= MAX_ENTRIES || d->used + len + 1 > UINT32_MAX)
		return -1;
	if (vec_reserve(&d->crcs, k + 1, sizeof(double)) < 0 || vec_reserve(&d->keys, k + 1, sizeof(int32_t)) < 0 ||
	    vec_reserve(&d->lengths, k + 1, sizeof(uint32_t)) < 0 || vec_reserve(&d->starts, k + 1, sizeof(uint32_t)) < 0 ||
	    vec_reserve(&d->names, d->used + len + 1, 1) < 0)
		return -1;
	/* (an empty name may come from an empty typed array, which has no data) */
	if (len > 0)
		memcpy(VEC(d->names, uint8_t) + d->used, name, len);
	VEC(d->names, uint8_t)[d->used + len] = 0;
	VEC(d->crcs, double)[k] = crc;
	VEC(d->keys, int32_t)[k] = key;
	VEC(d->lengths, uint32_t)[k] = len;
	VEC(d->starts, uint32_t)[k] = (uint32_t)d->used;
	d->used += len + 1;
	d->count = k + 1;
	d->slots[s] = (uint32_t)k + 1;
	return (int64_t)k;
}

static napi_value import_dictionary_new_js(napi_env env, napi_callback_info info)
{
	napi_value handle;
	struct import_dictionary *d = calloc(1, sizeof *d);
	(void)info;
	if (d == NULL) {
		napi_throw_error(env, NULL, "importDictionaryNew: out of memory");
		return NULL;
	}
	if (napi_create_external(env, d, dictionary_free, NULL, &handle) != napi_ok) {
		dictionary_free(env, d, NULL);
		return NULL;
	}
	return handle;
}

/* an optional Uint8Array of at least n bytes (null or undefined: none); 0, or -1 with an exception */
static int optional_bytes(napi_env env, napi_value v, size_t n, const uint8_t **out)
{
	napi_valuetype t;
	void *p;
	size_t len;
	*out = NULL;
	if (napi_typeof(env, v, &t) != napi_ok)
		return -1;
	if (t == napi_null || t == napi_undefined)
		return 0;
	if (typed_array_arg(env, "importDictionaryAdd", v, napi_uint8_array, &p, &len) < 0)
		return -1;
	if (len < n) {
		napi_throw_range_error(env, NULL, "importDictionaryAdd: weak or select shorter than the names");
		return -1;
	}
	*out = p;
	return 0;
}

/*
 * importDictionaryAdd(dict, names, lengths, keys, crcs, weak, select, refs): for each j of the n =
 * keys.length names, refs[j] = its entry (added if new), with WEAK_REF set where weak[j] is 1; where
 * select is given and select[j] is 0 the name is skipped and refs[j] = 0xffffffff. Returns the number of
 * entries. Throws a RangeError when the arrays' lengths disagree or a name runs past `names`, before
 * anything is added.
 */
static napi_value import_dictionary_add_js(napi_env env, napi_callback_info info)
{
	const char *fn = "importDictionaryAdd";
	napi_value argv[8];
	size_t argc = 8, nnames, nlengths, nkeys, ncrcs, nrefs;
	void *names, *lengths, *keys, *crcs, *refs;
	const uint8_t *weak, *select;

	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 8) {
		napi_throw_type_error(env, NULL, "importDictionaryAdd: missing arguments");
		return NULL;
	}
	struct import_dictionary *d = external_arg(env, fn, argv[0], "an import dictionary");
	if (d == NULL || typed_array_arg(env, fn, argv[1], napi_uint8_array, &names, &nnames) < 0 ||
	    typed_array_arg(env, fn, argv[2], napi_uint32_array, &lengths, &nlengths) < 0 ||
	    typed_array_arg(env, fn, argv[3], napi_int32_array, &keys, &nkeys) < 0 ||
	    typed_array_arg(env, fn, argv[4], napi_float64_array, &crcs, &ncrcs) < 0 ||
	    optional_bytes(env, argv[5], nkeys, &weak) < 0 || optional_bytes(env, argv[6], nkeys, &select) < 0 ||
	    typed_array_arg(env, fn, argv[7], napi_uint32_array, &refs, &nrefs) < 0)
		return NULL;
	if (nlengths != nkeys || ncrcs != nkeys || nrefs != nkeys) {
		napi_throw_range_error(env, NULL, "importDictionaryAdd: lengths, keys, crcs and refs differ in length");
		return NULL;
	}
	const uint32_t *len = lengths;
	uint64_t at = 0;
	for (size_t j = 0; j < nkeys; at += (uint64_t)len[j] + 1, j++) {
		if (at + len[j] > nnames) {
			napi_throw_range_error(env, NULL, "importDictionaryAdd: a name runs past the names");
			return NULL;
		}
	}
	const uint8_t *bytes = names;
	uint32_t *out = refs;
	at = 0;
	for (size_t j = 0; j < nkeys; at += (uint64_t)len[j] + 1, j++) {
		if (select != NULL && select[j] == 0) {
			out[j] = 0xffffffffu;
			continue;
		}
		int64_t k = dictionary_add(d, bytes + at, len[j], ((const int32_t *)keys)[j], ((const double *)crcs)[j]);
		if (k < 0) {
			napi_throw_error(env, NULL, "importDictionaryAdd: out of memory");
			return NULL;
		}
		out[j] = (uint32_t)k | (weak != NULL && weak[j] == 1 ? WEAK_REF : 0);
	}
	napi_value size;
	if (napi_create_uint32(env, (uint32_t)d->count, &size) != napi_ok)
		return NULL;
	return size;
}

/* a typed array of `type` holding a copy of `bytes` bytes at p */
static napi_value copied_array(napi_env env, napi_typedarray_type type, size_t elem, const void *p, size_t count)
{
	napi_value ab, out;
	void *data;
	if (napi_create_arraybuffer(env, count * elem, &data, &ab) != napi_ok)
		return NULL;
	if (count > 0)
		memcpy(data, p, count * elem);
	if (napi_create_typedarray(env, type, count, ab, 0, &out) != napi_ok)
		return NULL;
	return out;
}

/* importDictionaryParts(dict): copies of its CRCs, keys, name lengths and names (each followed by a NUL) */
static napi_value import_dictionary_parts_js(napi_env env, napi_callback_info info)
{
	napi_value argv[1], list, part;
	size_t argc = 1;
	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1) {
		napi_throw_type_error(env, NULL, "importDictionaryParts: missing arguments");
		return NULL;
	}
	struct import_dictionary *d = external_arg(env, "importDictionaryParts", argv[0], "an import dictionary");
	if (d == NULL || napi_create_array_with_length(env, 4, &list) != napi_ok)
		return NULL;
	const struct {
		napi_typedarray_type type;
		size_t elem;
		const void *p;
		size_t count;
	} parts[4] = {
		{ napi_float64_array, sizeof(double), d->crcs.p, d->count },
		{ napi_int32_array, sizeof(int32_t), d->keys.p, d->count },
		{ napi_uint32_array, sizeof(uint32_t), d->lengths.p, d->count },
		{ napi_uint8_array, 1, d->names.p, d->used },
	};
	for (uint32_t i = 0; i < 4; i++) {
		part = copied_array(env, parts[i].type, parts[i].elem, parts[i].p, parts[i].count);
		if (part == NULL || napi_set_element(env, list, i, part) != napi_ok)
			return NULL;
	}
	return list;
}

napi_status import_dictionary_register(napi_env env, napi_value exports)
{
	const napi_property_descriptor props[] = {
		{ "importDictionaryNew", NULL, import_dictionary_new_js, NULL, NULL, NULL, napi_enumerable, NULL },
		{ "importDictionaryAdd", NULL, import_dictionary_add_js, NULL, NULL, NULL, napi_enumerable, NULL },
		{ "importDictionaryParts", NULL, import_dictionary_parts_js, NULL, NULL, NULL, napi_enumerable, NULL },
	};
	return napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
