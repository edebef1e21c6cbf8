/* argument checks shared by the addon's functions */
#ifndef KMODTS_NAPI_ARGS_H
#define KMODTS_NAPI_ARGS_H
#include <stdio.h>
#include <stdlib.h>
#include <node_api.h>

/*
 * The data and element count of a typed array argument of type `want`; 0, or -1 with a TypeError
 * naming the function thrown.
 */
static inline int typed_array_arg(napi_env env, const char *fn, napi_value v, napi_typedarray_type want, void **data, size_t *length)
{
	napi_typedarray_type type;
	napi_value ab;
	size_t off;
	if (napi_get_typedarray_info(env, v, &type, length, data, &ab, &off) != napi_ok || type != want) {
		char msg[96];
		snprintf(msg, sizeof msg, "%s: unexpected argument type", fn);
		napi_throw_type_error(env, NULL, msg);
		return -1;
	}
	return 0;
}

/*
 * The pointer held by an external value argument (a handle the addon gave out earlier); NULL with a
 * TypeError "<fn>: expected <what>" thrown for anything else.
 */
static inline void *external_arg(napi_env env, const char *fn, napi_value v, const char *what)
{
	void *p = NULL;
	napi_valuetype t;
	if (napi_typeof(env, v, &t) != napi_ok || t != napi_external || napi_get_value_external(env, v, &p) != napi_ok || p == NULL) {
		char msg[96];
		snprintf(msg, sizeof msg, "%s: expected %s", fn, what);
		napi_throw_type_error(env, NULL, msg);
		return NULL;
	}
	return p;
}

/*
 * The promise of `data`'s work: `execute` on libuv's thread pool, then `complete` on the JavaScript
 * thread, which settles *deferred and deletes *work. NULL when the work could not be started: *work is
 * then deleted if it was made (a promise made but not queued is never settled; nothing holds on to it),
 * and the caller frees `data` and throws.
 */
static inline napi_value queue_promised_work(napi_env env, const char *name, napi_async_execute_callback execute,
					     napi_async_complete_callback complete, void *data, napi_deferred *deferred,
					     napi_async_work *work)
{
	napi_value promise, resource;
	*work = NULL;
	if (napi_create_promise(env, deferred, &promise) == napi_ok &&
	    napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resource) == napi_ok &&
	    napi_create_async_work(env, NULL, resource, execute, complete, data, work) == napi_ok &&
	    napi_queue_async_work(env, *work) == napi_ok)
		return promise;
	if (*work != NULL)
		napi_delete_async_work(env, *work);
	*work = NULL;
	return NULL;
}

static inline void free_finalizer(napi_env env, void *data, void *hint)
{
	(void)env;
	(void)hint;
	free(data);
}

/*
 * A Buffer of the `size` malloc()ed bytes at *data, made on the thread pool: that memory itself, handed
 * over (*data becomes NULL, the buffer frees it), or a copy where Node refuses external buffers (*data
 * stays the caller's to free). 0, or -1 when neither could be made.
 */
static inline int buffer_of_malloced(napi_env env, void **data, size_t size, napi_value *result)
{
	if (napi_create_external_buffer(env, size, *data, free_finalizer, NULL, result) == napi_ok) {
		*data = NULL;
		return 0;
	}
	return napi_create_buffer_copy(env, size, *data, NULL, result) == napi_ok ? 0 : -1;
}
/* exports[name] = value: a number the JavaScript side reads as what the addon can do (a format, a layout) */
static inline napi_status define_int32(napi_env env, napi_value exports, const char *name, int32_t value)
{
	napi_value v;
	napi_status s = napi_create_int32(env, value, &v);
	return s != napi_ok ? s : napi_set_named_property(env, exports, name, v);
}
#endif
