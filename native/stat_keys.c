/*
 * The stat keys of many files in one call (depmod's scan cache, src/depmod/stat-keys.ts): a run that
 * takes nearly every module from the cache stats each of the tree's thousands of module files, and
 * fs.statSync(..., { bigint: true }) makes a stats object of fourteen BigInts for each. Here each file
 * gives twelve 32-bit words (little halves first): device, inode, size and mtime seconds as two words
 * each, mtime nanoseconds, ctime seconds as two words, ctime nanoseconds. A file that cannot be
 * stat()ed (links followed, as statSync follows them) has 0xffffffff as its last word, which no
 * nanosecond count can be.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <node_api.h>
#include "stat_keys.h"

#define KEY_WORDS 12
#define NO_STAT 0xffffffffu

static void put64(uint32_t *w, uint64_t v)
{
	w[0] = (uint32_t)v;
	w[1] = (uint32_t)(v >> 32);
}

static void key_of(const struct stat *st, uint32_t *w)
{
	put64(w, (uint64_t)st->st_dev);
	put64(w + 2, (uint64_t)st->st_ino);
	put64(w + 4, (uint64_t)st->st_size);
	put64(w + 6, (uint64_t)(int64_t)st->st_mtim.tv_sec);
	w[8] = (uint32_t)st->st_mtim.tv_nsec;
	put64(w + 9, (uint64_t)(int64_t)st->st_ctim.tv_sec);
	w[11] = (uint32_t)st->st_ctim.tv_nsec;
}

/* statKeys(paths: string[]): Uint32Array, KEY_WORDS words per path */
static napi_value stat_keys_js(napi_env env, napi_callback_info info)
{
	napi_value argv[1], ab, element, result = NULL;
	size_t argc = 1, len, cap = 4096;
	uint32_t n;
	bool is_array;
	void *data;
	char *path;

	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
	    napi_is_array(env, argv[0], &is_array) != napi_ok || !is_array ||
	    napi_get_array_length(env, argv[0], &n) != napi_ok) {
		napi_throw_type_error(env, NULL, "statKeys: paths must be an array");
		return NULL;
	}
	if ((uint64_t)n * KEY_WORDS * 4 > SIZE_MAX / 2) {
		napi_throw_range_error(env, NULL, "statKeys: too many paths");
		return NULL;
	}
	if (napi_create_arraybuffer(env, (size_t)n * KEY_WORDS * 4, &data, &ab) != napi_ok)
		return NULL;
	path = malloc(cap);
	if (path == NULL) {
		napi_throw_error(env, NULL, "statKeys: out of memory");
		return NULL;
	}
	for (uint32_t i = 0; i < n; i++) {
		uint32_t *w = (uint32_t *)data + (size_t)i * KEY_WORDS;
		struct stat st;

		if (napi_get_element(env, argv[0], i, &element) != napi_ok ||
		    napi_get_value_string_latin1(env, element, NULL, 0, &len) != napi_ok) {
			napi_throw_type_error(env, NULL, "statKeys: paths must be strings");
			goto done;
		}
		if (len + 1 > cap) {
			char *bigger = realloc(path, len + 1);
			if (bigger == NULL) {
				napi_throw_error(env, NULL, "statKeys: out of memory");
				goto done;
			}
			path = bigger;
			cap = len + 1;
		}
		napi_get_value_string_latin1(env, element, path, cap, &len);
		/* a path with a NUL in it names no file (statSync refuses it too) */
		if (strlen(path) != len || stat(path, &st) != 0) {
			memset(w, 0, KEY_WORDS * 4);
			w[KEY_WORDS - 1] = NO_STAT;
			continue;
		}
		key_of(&st, w);
	}
	if (napi_create_typedarray(env, napi_uint32_array, (size_t)n * KEY_WORDS, ab, 0, &result) != napi_ok)
		result = NULL;
done:
	free(path);
	return result;
}

napi_status stat_keys_register(napi_env env, napi_value exports)
{
	const napi_property_descriptor props[] = {
		{ "statKeys", NULL, stat_keys_js, NULL, NULL, NULL, napi_enumerable, NULL },
	};
	return napi_define_properties(env, exports, 1, props);
}
