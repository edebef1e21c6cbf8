/*
 * modules.alias and modules.alias.bin from every module's alias pieces at once (src/depmod/alias-files.ts
 * AliasPieces: its lines, its normalized aliases as keys with their lengths), where they lie: a cached
 * run's pieces are parts of its scan cache's buffers, a new scan's in buffers of their own. In
 * JavaScript each module's share cost views, a join of every key and of every value, and a loop per key
 * (~10 ms of a cached run's main thread on Debian's full tree). Here the text is made at once and the
 * index's input gathered, then its trie built on libuv's thread pool (index_writer.c).
 *
 * alias-files.ts stays the reference and the path for anything else: -n, -w, modules without pieces.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <node_api.h>
#include "napi_args.h"
#include "alias_files.h"
#include "index_writer.h"

/* a module's row: where its lines, its keys and its key lengths are */
enum { LINES_SRC, LINES_AT, LINE_BYTES, KEYS_AT, KEY_BYTES, LENGTHS_SRC, LENGTHS_AT, KEY_COUNT, ROW };

#define MAX_SOURCES 8

typedef struct {
	const uint8_t *data[MAX_SOURCES];
	size_t len[MAX_SOURCES];
	size_t n;
	const uint32_t *rows;
	size_t modules;
	const uint8_t *names;
	const uint32_t *name_lens;
	size_t names_len;
	const char *header;
	size_t header_len;
} alias_input_t;

/* the sources' bytes (Uint8Arrays); 0, or -1 with an exception thrown */
static int sources_arg(napi_env env, napi_value v, alias_input_t *in)
{
	bool is_array;
	uint32_t n;
	if (napi_is_array(env, v, &is_array) != napi_ok || !is_array || napi_get_array_length(env, v, &n) != napi_ok) {
		napi_throw_type_error(env, NULL, "aliasFiles: the sources must be an array of Uint8Arrays");
		return -1;
	}
	if (n > MAX_SOURCES) {
		napi_throw_range_error(env, NULL, "aliasFiles: too many sources");
		return -1;
	}
	in->n = n;
	for (uint32_t i = 0; i < n; i++) {
		napi_value e;
		void *d;
		if (napi_get_element(env, v, i, &e) != napi_ok || typed_array_arg(env, "aliasFiles", e, napi_uint8_array, &d, &in->len[i]) < 0)
			return -1;
		in->data[i] = d;
	}
	return 0;
}

/*
 * Each row's ranges within their sources (key lengths 4-aligned), its key lengths adding up to its key
 * bytes, and the names' lengths to theirs: NULL, or what is wrong. *keys and *bytes: the totals.
 */
static const char *check_rows(const alias_input_t *in, size_t *keys, size_t *key_bytes, size_t *line_bytes)
{
	size_t names = 0;
	*keys = *key_bytes = *line_bytes = 0;
	for (size_t m = 0; m < in->modules; m++) {
		const uint32_t *r = in->rows + ROW * m;
		uint64_t sum = 0;
		if (r[LINES_SRC] >= in->n || r[LENGTHS_SRC] >= in->n)
			return "aliasFiles: a row names no source";
		size_t text = in->len[r[LINES_SRC]], lens = in->len[r[LENGTHS_SRC]];
		if ((uint64_t)r[LINES_AT] + r[LINE_BYTES] > text || (uint64_t)r[KEYS_AT] + r[KEY_BYTES] > text ||
		    r[LENGTHS_AT] % 4 != 0 || (uint64_t)r[LENGTHS_AT] + 4 * (uint64_t)r[KEY_COUNT] > lens)
			return "aliasFiles: a row's ranges lie outside its sources";
		/* (an empty source's data may be NULL: no pointer made into it for nothing) */
		for (uint32_t j = 0; j < r[KEY_COUNT]; j++) {
			uint32_t len;
			memcpy(&len, in->data[r[LENGTHS_SRC]] + r[LENGTHS_AT] + 4 * (size_t)j, 4);
			sum += len;
		}
		if (sum != r[KEY_BYTES])
			return "aliasFiles: a row's key lengths do not add up to its key bytes";
		*keys += r[KEY_COUNT];
		*key_bytes += r[KEY_BYTES];
		*line_bytes += r[LINE_BYTES];
		names += in->name_lens[m];
	}
	return names == in->names_len ? NULL : "aliasFiles: the names' lengths do not add up";
}

/* whether every key and name is 7-bit (the index refuses other bytes: alias-files.ts then gives the message) */
static int keys_7bit(const alias_input_t *in)
{
	for (size_t i = 0; i < in->names_len; i++)
		if (in->names[i] > 0x7f)
			return 0;
	for (size_t m = 0; m < in->modules; m++) {
		const uint32_t *r = in->rows + ROW * m;
		for (uint32_t j = 0; j < r[KEY_BYTES]; j++)
			if (in->data[r[LINES_SRC]][r[KEYS_AT] + (size_t)j] > 0x7f)
				return 0;
	}
	return 1;
}

/* modules.alias: the header, then each module's lines */
static napi_value alias_text(napi_env env, const alias_input_t *in, size_t line_bytes)
{
	napi_value buf;
	uint8_t *out;
	size_t at = in->header_len;
	if (napi_create_buffer(env, in->header_len + line_bytes, (void **)&out, &buf) != napi_ok)
		return NULL;
	memcpy(out, in->header, in->header_len);
	for (size_t m = 0; m < in->modules; m++) {
		const uint32_t *r = in->rows + ROW * m;
		if (r[LINE_BYTES] > 0)
			memcpy(out + at, in->data[r[LINES_SRC]] + r[LINES_AT], r[LINE_BYTES]);
		at += r[LINE_BYTES];
	}
	return buf;
}

/* modules.alias.bin's input gathered (each key's value its module's name, its priority the module's index) and its build started */
static napi_value alias_bin(napi_env env, const alias_input_t *in, size_t keys, size_t key_bytes)
{
	uint8_t *kb = malloc(key_bytes ? key_bytes : 1), *names = malloc(in->names_len ? in->names_len : 1);
	uint32_t *klens = malloc((keys ? keys : 1) * 4), *vlens = malloc((keys ? keys : 1) * 4);
	uint32_t *prios = malloc((keys ? keys : 1) * 4), *vstarts = malloc((keys ? keys : 1) * 4);
	if (kb == NULL || names == NULL || klens == NULL || vlens == NULL || prios == NULL || vstarts == NULL) {
		free(kb), free(names), free(klens), free(vlens), free(prios), free(vstarts);
		napi_throw_error(env, NULL, "aliasFiles: out of memory");
		return NULL;
	}
	if (in->names_len > 0)
		memcpy(names, in->names, in->names_len);
	size_t k = 0, kat = 0, name_at = 0;
	for (size_t m = 0; m < in->modules; m++) {
		const uint32_t *r = in->rows + ROW * m;
		if (r[KEY_BYTES] > 0)
			memcpy(kb + kat, in->data[r[LINES_SRC]] + r[KEYS_AT], r[KEY_BYTES]);
		kat += r[KEY_BYTES];
		if (r[KEY_COUNT] > 0)
			memcpy(klens + k, in->data[r[LENGTHS_SRC]] + r[LENGTHS_AT], 4 * (size_t)r[KEY_COUNT]);
		for (uint32_t j = 0; j < r[KEY_COUNT]; j++, k++) {
			vlens[k] = in->name_lens[m];
			vstarts[k] = (uint32_t)name_at;
			prios[k] = (uint32_t)m;
		}
		name_at += in->name_lens[m];
	}
	return index_build_owned_in_background(env, "aliasFiles", kb, klens, names, vlens, prios, vstarts, keys);
}

/*
 * aliasFiles(sources: Uint8Array[], rows: Uint32Array, names: Uint8Array, nameLengths: Uint32Array,
 *            header: string): [Buffer, Promise<Buffer>] | null
 * Module m's row (rows[8m, 8m + 8)): the source of its lines and keys, where its lines start and their
 * bytes, where its keys start and their bytes, the source of its key lengths (u32, little-endian), where
 * they start (a multiple of 4) and how many. Its name is the next nameLengths[m] bytes of names. Gives
 * modules.alias (header, then every module's lines) and the promise of modules.alias.bin (each key
 * with its module's name, at the module's index as priority, built on the pool), or null where a key or
 * a name has a byte above 127 (the caller's own path reports it). Throws a TypeError or RangeError for arguments
 * that are not that.
 */
static napi_value alias_files_js(napi_env env, napi_callback_info info)
{
	napi_value argv[5], text, bin, result;
	size_t argc = 5, nrows, nlens, keys, key_bytes, line_bytes, header_len;
	alias_input_t in = { 0 };
	void *rows, *names, *lens;
	char header[128];
	const char *bad;

	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 5) {
		napi_throw_type_error(env, NULL, "aliasFiles: missing arguments");
		return NULL;
	}
	if (sources_arg(env, argv[0], &in) < 0 || typed_array_arg(env, "aliasFiles", argv[1], napi_uint32_array, &rows, &nrows) < 0 ||
	    typed_array_arg(env, "aliasFiles", argv[2], napi_uint8_array, &names, &in.names_len) < 0 ||
	    typed_array_arg(env, "aliasFiles", argv[3], napi_uint32_array, &lens, &nlens) < 0)
		return NULL;
	if (napi_get_value_string_latin1(env, argv[4], header, sizeof header, &header_len) != napi_ok) {
		napi_throw_type_error(env, NULL, "aliasFiles: the header must be a string");
		return NULL;
	}
	if (nrows % ROW != 0 || nrows / ROW != nlens || header_len + 1 >= sizeof header) {
		napi_throw_range_error(env, NULL, "aliasFiles: the rows, the names and the header do not fit");
		return NULL;
	}
	in.rows = rows;
	in.modules = nlens;
	in.names = names;
	in.name_lens = lens;
	in.header = header;
	in.header_len = header_len;
	bad = check_rows(&in, &keys, &key_bytes, &line_bytes);
	if (bad == NULL && (keys > UINT32_MAX / 4 || in.names_len > UINT32_MAX))
		bad = "aliasFiles: too many keys";
	if (bad != NULL) {
		napi_throw_range_error(env, NULL, bad);
		return NULL;
	}
	if (!keys_7bit(&in)) {
		napi_get_null(env, &result);
		return result;
	}
	text = alias_text(env, &in, line_bytes);
	if (text == NULL)
		return NULL;
	bin = alias_bin(env, &in, keys, key_bytes);
	if (bin == NULL || napi_create_array_with_length(env, 2, &result) != napi_ok || napi_set_element(env, result, 0, text) != napi_ok ||
	    napi_set_element(env, result, 1, bin) != napi_ok)
		return NULL;
	return result;
}

napi_status alias_files_register(napi_env env, napi_value exports)
{
	const napi_property_descriptor props[] = {
		{ "aliasFiles", NULL, alias_files_js, NULL, NULL, NULL, napi_enumerable, NULL },
	};
	return napi_define_properties(env, exports, 1, props);
}
