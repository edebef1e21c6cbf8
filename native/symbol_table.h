/* the table of the symbols modules export, in kmod's hash order (symbol_table.c), registered on the addon's exports */
#ifndef KMODTS_SYMBOL_TABLE_H
#define KMODTS_SYMBOL_TABLE_H
#include <node_api.h>
napi_status symbol_table_register(napi_env env, napi_value exports);
#endif
