/* module file decompression (decompress.c), registered on the addon's exports (decode_napi.c) */
#ifndef KMODTS_DECODE_NAPI_H
#define KMODTS_DECODE_NAPI_H
#include <node_api.h>
napi_status decode_register(napi_env env, napi_value exports);
#endif
