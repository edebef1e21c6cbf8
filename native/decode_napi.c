/*
 * decompress.c for JavaScript (src/file/native-decode.ts wraps these):
 *   decodeImage(data, into) -> result                        synchronous, on the calling thread
 *   readDecodeImage(path, into, rawInto, callback(result))   the file read and decoded on libuv's
 *                                                            thread pool: no JavaScript thread involved
 *   libraryVersions(), offerLiblzma(file)                    which libraries; another liblzma to prefer
 * `into` / `rawInto` (a Uint8Array or null) are the caller's buffers to reuse, left alone by the
 * caller until the result is there. A result: { kind, status, err, fn, detail, length, image,
 * rawLength, raw }: `image` / `raw` are Buffers of their own only where the output did not fit the
 * caller's buffer; otherwise the output is the first `length` / `rawLength` bytes of that buffer.
 */
#include <stdlib.h>
#include <string.h>
#include <node_api.h>
#include "decompress.h"
#include "decode_napi.h"
#include "napi_args.h"

/* the hint is the block's size */
static void free_memory(napi_env env, void *data, void *hint)
{
	(void)env;
	decode_free(data, (size_t)(uintptr_t)hint);
}

/* a Buffer of the first len bytes of a block of cap bytes, which it takes over (a copy where external buffers are not allowed) */
static napi_value own_buffer(napi_env env, uint8_t *p, size_t len, size_t cap)
{
	napi_value out;
	if (napi_create_external_buffer(env, len, p, free_memory, (void *)(uintptr_t)cap, &out) == napi_ok)
		return out;
	if (napi_create_buffer_copy(env, len, p, NULL, &out) != napi_ok)
		out = NULL;
	decode_free(p, cap);
	return out;
}

static void set_number(napi_env env, napi_value obj, const char *key, double v)
{
	napi_value n;
	if (napi_create_double(env, v, &n) == napi_ok)
		napi_set_named_property(env, obj, key, n);
}

static void set_string(napi_env env, napi_value obj, const char *key, const char *s)
{
	napi_value v;
	if (napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &v) == napi_ok)
		napi_set_named_property(env, obj, key, v);
}

/* the result object; the memory r owns passes to Buffers */
napi_value decode_result_object(napi_env env, struct decode_result *r)
{
	napi_value obj;
	if (napi_create_object(env, &obj) != napi_ok)
		return NULL;
	set_number(env, obj, "kind", r->kind);
	set_number(env, obj, "status", r->status);
	set_number(env, obj, "err", r->err);
	set_string(env, obj, "fn", r->fn != NULL ? r->fn : "");
	set_string(env, obj, "detail", r->detail);
	set_number(env, obj, "length", DECODE_HAS_IMAGE(r) ? (double)r->len : 0);
	set_number(env, obj, "rawLength", (double)r->raw_len);
	if (DECODE_HAS_IMAGE(r) && r->owned) {
		napi_value b = own_buffer(env, r->image, r->len, r->cap);
		if (b != NULL)
			napi_set_named_property(env, obj, "image", b);
	}
	if (r->raw_owned) {
		napi_value b = own_buffer(env, r->raw, r->raw_len, r->raw_cap);
		if (b != NULL)
			napi_set_named_property(env, obj, "raw", b);
	}
	r->owned = 0;
	r->raw_owned = 0;
	return obj;
}

/* a Uint8Array argument's memory, or nothing for null/undefined; -1 with a TypeError otherwise */
int decode_optional_bytes(napi_env env, const char *fn, napi_value v, uint8_t **data, size_t *len)
{
	napi_valuetype t;
	if (napi_typeof(env, v, &t) != napi_ok)
		return -1;
	if (t == napi_null || t == napi_undefined) {
		*data = NULL;
		*len = 0;
		return 0;
	}
	return typed_array_arg(env, fn, v, napi_uint8_array, (void **)data, len);
}

/* decodeImage(data: Uint8Array, into: Uint8Array | null) */
static napi_value decode_image_js(napi_env env, napi_callback_info info)
{
	size_t argc = 2;
	napi_value argv[2];
	struct decode_result r;
	void *data;
	size_t len;

	memset(&r, 0, sizeof r);
	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2) {
		napi_throw_type_error(env, NULL, "decodeImage: missing arguments");
		return NULL;
	}
	if (typed_array_arg(env, "decodeImage", argv[0], napi_uint8_array, &data, &len) < 0 ||
	    decode_optional_bytes(env, "decodeImage", argv[1], &r.image, &r.cap) < 0)
		return NULL;
	decode_bytes(data, len, &r);
	return decode_result_object(env, &r);
}

struct read_job {
	napi_async_work work;
	napi_ref callback;
	napi_ref into;
	napi_ref raw_into;
	char *path;
	struct decode_result r;
};

void decode_read_file(const char *path, struct decode_result *r)
{
	if (read_file(path, r) < 0) {
		r->status = DECODE_READ_FAILED;
		return;
	}
	decode_bytes(r->raw, r->raw_len, r);
}

static void read_decode_execute(napi_env env, void *data)
{
	struct read_job *job = data;
	(void)env;
	decode_read_file(job->path, &job->r);
}

static void release_job(napi_env env, struct read_job *job)
{
	if (job->callback != NULL)
		napi_delete_reference(env, job->callback);
	if (job->into != NULL)
		napi_delete_reference(env, job->into);
	if (job->raw_into != NULL)
		napi_delete_reference(env, job->raw_into);
	if (job->work != NULL)
		napi_delete_async_work(env, job->work);
	if (job->r.owned)
		decode_free(job->r.image, job->r.cap);
	if (job->r.raw_owned)
		decode_free(job->r.raw, job->r.raw_cap);
	free(job->path);
	free(job);
}

static void read_decode_complete(napi_env env, napi_status status, void *data)
{
	struct read_job *job = data;
	napi_value cb, global, arg;

	if (status == napi_ok && napi_get_reference_value(env, job->callback, &cb) == napi_ok &&
	    napi_get_global(env, &global) == napi_ok) {
		arg = decode_result_object(env, &job->r);
		if (arg != NULL)
			napi_call_function(env, global, cb, 1, &arg, NULL);
	}
	release_job(env, job);
}

/* keeps a buffer argument alive while the job runs; 0, or -1 with an exception */
static int hold(napi_env env, napi_value v, uint8_t *data, napi_ref *ref)
{
	if (data == NULL)
		return 0;
	return napi_create_reference(env, v, 1, ref) == napi_ok ? 0 : -1;
}

/* readDecodeImage(path: string, into: Uint8Array | null, rawInto: Uint8Array | null, callback); path is a binary string (its chars are its bytes) */
static napi_value read_decode_image_js(napi_env env, napi_callback_info info)
{
	size_t argc = 4, len = 0;
	napi_value argv[4], name;
	napi_valuetype t;
	struct read_job *job;

	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4) {
		napi_throw_type_error(env, NULL, "readDecodeImage: missing arguments");
		return NULL;
	}
	if (napi_typeof(env, argv[3], &t) != napi_ok || t != napi_function ||
	    napi_get_value_string_latin1(env, argv[0], NULL, 0, &len) != napi_ok) {
		napi_throw_type_error(env, NULL, "readDecodeImage: unexpected argument type");
		return NULL;
	}
	job = calloc(1, sizeof *job);
	if (job == NULL || (job->path = malloc(len + 1)) == NULL) {
		free(job);
		napi_throw_error(env, NULL, "out of memory");
		return NULL;
	}
	napi_get_value_string_latin1(env, argv[0], job->path, len + 1, &len);
	if (decode_optional_bytes(env, "readDecodeImage", argv[1], &job->r.image, &job->r.cap) < 0 ||
	    decode_optional_bytes(env, "readDecodeImage", argv[2], &job->r.raw, &job->r.raw_cap) < 0 ||
	    hold(env, argv[1], job->r.image, &job->into) < 0 || hold(env, argv[2], job->r.raw, &job->raw_into) < 0 ||
	    napi_create_reference(env, argv[3], 1, &job->callback) != napi_ok ||
	    napi_create_string_utf8(env, "kmodts.readDecodeImage", NAPI_AUTO_LENGTH, &name) != napi_ok ||
	    napi_create_async_work(env, NULL, name, read_decode_execute, read_decode_complete, job, &job->work) != napi_ok ||
	    napi_queue_async_work(env, job->work) != napi_ok) {
		release_job(env, job);
		return NULL;
	}
	return NULL;
}

/* libraryVersions(): { liblzma, libzstd }, the libraries' version numbers (0: cannot be opened) */
static napi_value library_versions_js(napi_env env, napi_callback_info info)
{
	napi_value obj;
	(void)info;
	if (napi_create_object(env, &obj) != napi_ok)
		return NULL;
	set_number(env, obj, "liblzma", decode_liblzma_version());
	set_number(env, obj, "libzstd", decode_libzstd_version());
	return obj;
}

/* offerLiblzma(file: string): another liblzma to prefer when newer than the system's (before any decode) */
static napi_value offer_liblzma_js(napi_env env, napi_callback_info info)
{
	size_t argc = 1, len = 0;
	napi_value arg;
	char *file;

	if (napi_get_cb_info(env, info, &argc, &arg, NULL, NULL) != napi_ok || argc < 1 ||
	    napi_get_value_string_utf8(env, arg, NULL, 0, &len) != napi_ok) {
		napi_throw_type_error(env, NULL, "offerLiblzma: expected a file name");
		return NULL;
	}
	file = malloc(len + 1);
	if (file == NULL)
		return NULL;
	napi_get_value_string_utf8(env, arg, file, len + 1, &len);
	decode_offer_liblzma(file);
	free(file);
	return NULL;
}

napi_status decode_register(napi_env env, napi_value exports)
{
	const napi_property_descriptor props[] = {
		{ "decodeImage", NULL, decode_image_js, NULL, NULL, NULL, napi_enumerable, NULL },
		{ "readDecodeImage", NULL, read_decode_image_js, NULL, NULL, NULL, napi_enumerable, NULL },
		{ "libraryVersions", NULL, library_versions_js, NULL, NULL, NULL, napi_enumerable, NULL },
		{ "offerLiblzma", NULL, offer_liblzma_js, NULL, NULL, NULL, napi_enumerable, NULL },
	};
	return napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
}
