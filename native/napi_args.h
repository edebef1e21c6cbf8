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
#endif
