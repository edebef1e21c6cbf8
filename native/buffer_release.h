/* large buffers given back at once (buffer_release.c), registered on the addon's exports */
#ifndef KMODTS_BUFFER_RELEASE_H
#define KMODTS_BUFFER_RELEASE_H
#include <node_api.h>
napi_status buffer_release_register(napi_env env, napi_value exports);
#endif
