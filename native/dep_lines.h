/* modules.dep's lines (dep_lines.c), registered on the addon's exports */
#ifndef KMODTS_DEP_LINES_H
#define KMODTS_DEP_LINES_H
#include <node_api.h>
napi_status dep_lines_register(napi_env env, napi_value exports);
#endif
