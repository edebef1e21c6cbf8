/* depmod's symbol extraction (module_symbols.c), registered on the addon's exports */
#ifndef KMODTS_MODULE_SYMBOLS_H
#define KMODTS_MODULE_SYMBOLS_H
#include <node_api.h>
napi_status module_symbols_register(napi_env env, napi_value exports);
#endif
