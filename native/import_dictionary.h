/* the import dictionary of a scan cache being written (import_dictionary.c), registered on the addon's exports */
#ifndef KMODTS_IMPORT_DICTIONARY_H
#define KMODTS_IMPORT_DICTIONARY_H
#include <node_api.h>
napi_status import_dictionary_register(napi_env env, napi_value exports);
#endif
