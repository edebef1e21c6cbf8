/*
 * detachBuffers(buffers: ArrayBuffer[]): number — each ArrayBuffer detached (its views become empty),
 * which drops its memory at once when nothing else holds it, instead of at V8's next full collection
 * (src/depmod/release.ts). Without the addon the same is done by transferring them into a message that
 * is never received, which first loads node:worker_threads (~2 ms of a depmod run). Returns how many
 * were detached; anything that is not a detachable ArrayBuffer is left as it is.
 */
#include <stdint.h>
#include <node_api.h>
#include "buffer_release.h"

static napi_value detach_buffers_js(napi_env env, napi_callback_info info)
{
	size_t argc = 1;
	napi_value list, out;
	uint32_t n = 0, detached = 0;
	bool is_array = false;

	if (napi_get_cb_info(env, info, &argc, &list, NULL, NULL) != napi_ok)
		return NULL;
	if (argc < 1 || napi_is_array(env, list, &is_array) != napi_ok || !is_array) {
		napi_throw_type_error(env, NULL, "detachBuffers: expected an array of ArrayBuffers");
		return NULL;
	}
	if (napi_get_array_length(env, list, &n) != napi_ok)
		return NULL;
	for (uint32_t k = 0; k < n; k++) {
		napi_value v;
		bool is_ab = false, was = true;
		if (napi_get_element(env, list, k, &v) != napi_ok)
			return NULL;
		if (napi_is_arraybuffer(env, v, &is_ab) != napi_ok || !is_ab)
			continue;
		if (napi_is_detached_arraybuffer(env, v, &was) != napi_ok || was)
			continue;
		if (napi_detach_arraybuffer(env, v) == napi_ok)
			detached++;
		else {
			/* not detachable: a pending exception would be thrown at the caller */
			napi_value ignored;
			bool pending = false;
			if (napi_is_exception_pending(env, &pending) == napi_ok && pending)
				napi_get_and_clear_last_exception(env, &ignored);
		}
	}
	if (napi_create_uint32(env, detached, &out) != napi_ok)
		return NULL;
	return out;
}

napi_status buffer_release_register(napi_env env, napi_value exports)
{
	napi_property_descriptor prop = { "detachBuffers", NULL, detach_buffers_js, NULL, NULL, NULL, napi_enumerable, NULL };
	return napi_define_properties(env, exports, 1, &prop);
}
