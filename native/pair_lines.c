/*
 * Text lines of key/value pairs for depmod's text files (src/depmod/index-files.ts): modules.symbols is
 * "alias symbol:<name> <module>" for each of the ~15,500 symbols of Debian's full tree, from the same
 * keys and values as modules.symbols.bin. In JavaScript, a string per line joined at the end cost
 * ~5 ms of a run that takes every module from the scan cache; here the bytes are copied once.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <node_api.h>
#include "napi_args.h"
#include "bytes.h"
#include "pair_lines.h"

/* a string argument's latin1 bytes, at most cap - 1 of them; -1 when not a string or longer */
static int short_latin1(napi_env env, napi_value v, char *out, size_t cap, size_t *len)
{
	if (napi_get_value_string_latin1(env, v, NULL, 0, len) != napi_ok || *len >= cap)
		return -1;
	return napi_get_value_string_latin1(env, v, out, cap, len) == napi_ok ? 0 : -1;
}

/*
 * pairLines(keys: Uint8Array, keyLengths: Uint32Array, values: Uint8Array, valueLengths: Uint32Array,
 * head: string, mid: string, tail: string): Buffer
 * For each pair k in order: head, key k, mid, value k, tail. Keys and values lie one after another in
 * their arrays, keyLengths[k] and valueLengths[k] bytes each. head, mid and tail are short binary
 * strings (below 64 bytes).
 */
static napi_value pair_lines_js(napi_env env, napi_callback_info info)
{
	static const char fn[] = "pairLines";
	napi_value argv[7], result;
	size_t argc = 7, nkeys, n, nvalues, nv;
	void *keys_data, *klen_data, *values_data, *vlen_data, *out_data;
	char head[64], mid[64], tail[64];
	size_t head_len, mid_len, tail_len;

	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 7) {
		napi_throw_type_error(env, NULL, "pairLines: missing arguments");
		return NULL;
	}
	if (typed_array_arg(env, fn, argv[0], napi_uint8_array, &keys_data, &nkeys) < 0 ||
	    typed_array_arg(env, fn, argv[1], napi_uint32_array, &klen_data, &n) < 0 ||
	    typed_array_arg(env, fn, argv[2], napi_uint8_array, &values_data, &nvalues) < 0 ||
	    typed_array_arg(env, fn, argv[3], napi_uint32_array, &vlen_data, &nv) < 0)
		return NULL;
	if (short_latin1(env, argv[4], head, sizeof head, &head_len) < 0 || short_latin1(env, argv[5], mid, sizeof mid, &mid_len) < 0 ||
	    short_latin1(env, argv[6], tail, sizeof tail, &tail_len) < 0) {
		napi_throw_type_error(env, NULL, "pairLines: head, mid and tail must be short strings");
		return NULL;
	}
	const uint32_t *klen = klen_data, *vlen = vlen_data;
	const uint8_t *keys = keys_data, *values = values_data;
	uint64_t key_total = 0, value_total = 0;
	if (nv != n) {
		napi_throw_range_error(env, NULL, "pairLines: keys and values differ in number");
		return NULL;
	}
	for (size_t k = 0; k < n; k++) {
		key_total += klen[k];
		value_total += vlen[k];
	}
	if (key_total != nkeys || value_total != nvalues) {
		napi_throw_range_error(env, NULL, "pairLines: lengths and bytes do not add up");
		return NULL;
	}
	uint64_t size = key_total + value_total + (uint64_t)n * (head_len + mid_len + tail_len);
	if (size > (uint64_t)INT32_MAX) {
		napi_throw_range_error(env, NULL, "pairLines: too large");
		return NULL;
	}
	if (napi_create_buffer(env, (size_t)size, &out_data, &result) != napi_ok)
		return NULL;
	uint8_t *out = out_data;
	for (size_t k = 0; k < n; k++) {
		out = put_bytes(out, (const uint8_t *)head, head_len);
		out = put_bytes(out, keys, klen[k]);
		keys += klen[k];
		out = put_bytes(out, (const uint8_t *)mid, mid_len);
		out = put_bytes(out, values, vlen[k]);
		values += vlen[k];
		out = put_bytes(out, (const uint8_t *)tail, tail_len);
	}
	return result;
}

napi_status pair_lines_register(napi_env env, napi_value exports)
{
	const napi_property_descriptor props[] = {
		{ "pairLines", NULL, pair_lines_js, NULL, NULL, NULL, napi_enumerable, NULL },
	};
	return napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
