/* argument checks shared by the addon's functions */
#ifndef KMODTS_NAPI_ARGS_H
#define KMODTS_NAPI_ARGS_H
#include <stdio.h>
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
#endif
