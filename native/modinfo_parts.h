/* modinfo's one-call read of an uncompressed module file's headers, .modinfo and signature */
#ifndef KMODTS_MODINFO_PARTS_H
#define KMODTS_MODINFO_PARTS_H
#include <node_api.h>

napi_status modinfo_parts_register(napi_env env, napi_value exports);
#endif
