/* text lines of key/value pairs (pair_lines.c), registered on the addon's exports */
#ifndef KMODTS_PAIR_LINES_H
#define KMODTS_PAIR_LINES_H
#include <node_api.h>
napi_status pair_lines_register(napi_env env, napi_value exports);
#endif
