/* bounds and count checks of many ranges in one call (word_ranges.c), registered on the addon's exports */
#ifndef KMODTS_WORD_RANGES_H
#define KMODTS_WORD_RANGES_H
#include <node_api.h>
napi_status word_ranges_register(napi_env env, napi_value exports);
#endif
