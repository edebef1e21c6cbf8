/*
 * The stat keys of many files in one call (depmod's scan cache, src/depmod/stat-keys.ts): a run that
 * takes nearly every module from the cache stats each of the tree's thousands of module files, and
 * fs.statSync(..., { bigint: true }) makes a stats object of fourteen BigInts for each. Here each file
 * gives twelve 32-bit words (stat_key.h); a file that cannot be stat()ed (links followed, as statSync
 * follows them) gives the words that say so.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <node_api.h>
#include "napi_args.h"
#include "stat_key.h"
#include "stat_keys.h"

/* path's key into w (STAT_KEY_WORDS words), or the no-key words; len is its length as JavaScript gave it */
static void key_of_path(const char *path, size_t len, uint32_t *w)
{
	struct stat st;
	/* a path with a NUL in it names no file (statSync refuses it too) */
	if (strlen(path) != len || stat(path, &st) != 0) {
		stat_key_none(w);
		return;
	}
	stat_key_of(&st, w);
}

/* the call's one argument, an array of paths (*argv) and its length; -1 with an exception thrown */
static int paths_arg(napi_env env, napi_callback_info info, const char *fn, napi_value *argv, uint32_t *n)
{
	size_t argc = 1;
	bool is_array;
	char msg[80];

	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
	    napi_is_array(env, argv[0], &is_array) != napi_ok || !is_array ||
	    napi_get_array_length(env, argv[0], n) != napi_ok) {
		snprintf(msg, sizeof msg, "%s: paths must be an array", fn);
		napi_throw_type_error(env, NULL, msg);
		return -1;
	}
	if ((uint64_t)*n * STAT_KEY_WORDS * 4 > SIZE_MAX / 2) {
		snprintf(msg, sizeof msg, "%s: too many paths", fn);
		napi_throw_range_error(env, NULL, msg);
		return -1;
	}
	return 0;
}

/*
 * each(path, len, i, out) for each path i of the array `paths` (n of them), as a C string and its length
 * as JavaScript gave it (a shorter strlen means a NUL inside); 0, or -1 with an exception thrown
 */
static int each_path(napi_env env, napi_value paths, uint32_t n, const char *fn,
		     void (*each)(const char *path, size_t len, uint32_t i, void *out), void *out)
{
	napi_value element;
	size_t len, cap = 4096;
	char *path = malloc(cap), msg[80];
	int rc = -1;

	if (path == NULL)
		goto oom;
	for (uint32_t i = 0; i < n; i++) {
		if (napi_get_element(env, paths, i, &element) != napi_ok ||
		    napi_get_value_string_latin1(env, element, NULL, 0, &len) != napi_ok) {
			snprintf(msg, sizeof msg, "%s: paths must be strings", fn);
			napi_throw_type_error(env, NULL, msg);
			goto done;
		}
		if (len + 1 > cap) {
			char *bigger = realloc(path, len + 1);
			if (bigger == NULL)
				goto oom;
			path = bigger;
			cap = len + 1;
		}
		napi_get_value_string_latin1(env, element, path, cap, &len);
		each(path, len, i, out);
	}
	rc = 0;
	goto done;
oom:
	snprintf(msg, sizeof msg, "%s: out of memory", fn);
	napi_throw_error(env, NULL, msg);
done:
	free(path);
	return rc;
}

static void key_at(const char *path, size_t len, uint32_t i, void *out)
{
	key_of_path(path, len, (uint32_t *)out + (size_t)i * STAT_KEY_WORDS);
}

/* statKeys(paths: string[]): Uint32Array, STAT_KEY_WORDS words per path */
static napi_value stat_keys_js(napi_env env, napi_callback_info info)
{
	napi_value argv[1], ab, result;
	uint32_t n;
	void *data;

	if (paths_arg(env, info, "statKeys", argv, &n) < 0 ||
	    napi_create_arraybuffer(env, (size_t)n * STAT_KEY_WORDS * 4, &data, &ab) != napi_ok ||
	    each_path(env, argv[0], n, "statKeys", key_at, data) < 0 ||
	    napi_create_typedarray(env, napi_uint32_array, (size_t)n * STAT_KEY_WORDS, ab, 0, &result) != napi_ok)
		return NULL;
	return result;
}

/*
 * statKeysInBackground(paths: string[]): Promise<Uint32Array>, the same words as statKeys, the stat()s
 * made on libuv's thread pool (depmod stats its modules while it reads its cache and orders them). The
 * paths are copied before the work starts; a path that is not a string rejects at once.
 */
typedef struct {
	napi_async_work work;
	napi_deferred deferred;
	char *paths;   /* the paths, each ending in a NUL */
	size_t *lens;  /* each path's length (a shorter strlen means a NUL inside: no file) */
	uint32_t n;
	uint32_t *keys;
} stat_job_t;

static void stat_job_free(stat_job_t *job)
{
	free(job->paths);
	free(job->lens);
	free(job->keys);
	free(job);
}

static void stat_job_execute(napi_env env, void *data)
{
	stat_job_t *job = data;
	const char *p = job->paths;
	(void)env;
	for (uint32_t i = 0; i < job->n; i++) {
		key_of_path(p, job->lens[i], job->keys + (size_t)i * STAT_KEY_WORDS);
		p += job->lens[i] + 1;
	}
}

static void stat_job_complete(napi_env env, napi_status status, void *data)
{
	stat_job_t *job = data;
	napi_value ab, result, err;
	void *out;
	size_t bytes = (size_t)job->n * STAT_KEY_WORDS * 4;

	if (status == napi_ok && napi_create_arraybuffer(env, bytes, &out, &ab) == napi_ok &&
	    napi_create_typedarray(env, napi_uint32_array, (size_t)job->n * STAT_KEY_WORDS, ab, 0, &result) == napi_ok) {
		if (bytes > 0)
			memcpy(out, job->keys, bytes);
		napi_resolve_deferred(env, job->deferred, result);
	} else {
		napi_value msg;
		napi_create_string_utf8(env, "statKeysInBackground: the work failed", NAPI_AUTO_LENGTH, &msg);
		napi_create_error(env, NULL, msg, &err);
		napi_reject_deferred(env, job->deferred, err);
	}
	napi_delete_async_work(env, job->work);
	stat_job_free(job);
}

static napi_value stat_keys_background_js(napi_env env, napi_callback_info info)
{
	napi_value argv[1], element, promise;
	size_t len, total = 0, at = 0;
	uint32_t n;
	stat_job_t *job;

	if (paths_arg(env, info, "statKeysInBackground", argv, &n) < 0)
		return NULL;
	job = calloc(1, sizeof(*job));
	if (job == NULL)
		goto oom;
	job->n = n;
	job->lens = malloc(((size_t)n + 1) * sizeof(size_t));
	job->keys = malloc(((size_t)n + 1) * STAT_KEY_WORDS * 4);
	if (job->lens == NULL || job->keys == NULL)
		goto oom;
	/* the lengths first, then one buffer for all the paths */
	for (uint32_t i = 0; i < n; i++) {
		if (napi_get_element(env, argv[0], i, &element) != napi_ok ||
		    napi_get_value_string_latin1(env, element, NULL, 0, &len) != napi_ok) {
			stat_job_free(job);
			napi_throw_type_error(env, NULL, "statKeysInBackground: paths must be strings");
			return NULL;
		}
		job->lens[i] = len;
		total += len + 1;
	}
	job->paths = malloc(total + 1);
	if (job->paths == NULL)
		goto oom;
	for (uint32_t i = 0; i < n; i++) {
		napi_get_element(env, argv[0], i, &element);
		napi_get_value_string_latin1(env, element, job->paths + at, job->lens[i] + 1, &len);
		at += job->lens[i] + 1;
	}
	promise = queue_promised_work(env, "kmodts.statKeys", stat_job_execute, stat_job_complete, job, &job->deferred, &job->work);
	if (promise == NULL) {
		stat_job_free(job);
		napi_throw_error(env, NULL, "statKeysInBackground: could not start the work");
		return NULL;
	}
	return promise;
oom:
	if (job != NULL)
		stat_job_free(job);
	napi_throw_error(env, NULL, "statKeysInBackground: out of memory");
	return NULL;
}

/* the size of a regular file, -1 for another kind of file, -2 for no stat() (regularFileSizes) */
static void size_at(const char *path, size_t len, uint32_t i, void *out)
{
	struct stat st;
	double *size = (double *)out + i;

	/* a path with a NUL in it names no file (statSync refuses it too) */
	if (strlen(path) != len || stat(path, &st) != 0)
		*size = -2;
	else
		*size = S_ISREG(st.st_mode) ? (double)st.st_size : -1;
}

/*
 * regularFileSizes(paths: string[]): Float64Array, per path its size when stat() (links followed) finds
 * a regular file, -1 for anything else that stat() finds, -2 where stat() fails. modinfo asks this of
 * each of its arguments (kmod's is_module_filename): one call for all of them instead of a Stats object
 * per file.
 */
static napi_value regular_file_sizes_js(napi_env env, napi_callback_info info)
{
	napi_value argv[1], ab, result;
	uint32_t n;
	void *data;

	if (paths_arg(env, info, "regularFileSizes", argv, &n) < 0 ||
	    napi_create_arraybuffer(env, (size_t)n * sizeof(double), &data, &ab) != napi_ok ||
	    each_path(env, argv[0], n, "regularFileSizes", size_at, data) < 0 ||
	    napi_create_typedarray(env, napi_float64_array, n, ab, 0, &result) != napi_ok)
		return NULL;
	return result;
}

napi_status stat_keys_register(napi_env env, napi_value exports)
{
	const napi_property_descriptor props[] = {
		{ "statKeys", NULL, stat_keys_js, NULL, NULL, NULL, napi_enumerable, NULL },
		{ "statKeysInBackground", NULL, stat_keys_background_js, NULL, NULL, NULL, napi_enumerable, NULL },
		{ "regularFileSizes", NULL, regular_file_sizes_js, NULL, NULL, NULL, napi_enumerable, NULL },
	};
	return napi_define_properties(env, exports, 3, props);
}
