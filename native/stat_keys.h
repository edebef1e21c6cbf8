/* the stat keys of many files in one call (stat_keys.c), registered on the addon's exports */
#ifndef KMODTS_STAT_KEYS_H
#define KMODTS_STAT_KEYS_H
#include <node_api.h>
napi_status stat_keys_register(napi_env env, napi_value exports);
#endif
