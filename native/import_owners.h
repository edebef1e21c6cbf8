/* depmod's dependency lists from import dictionaries (import_owners.c), registered on the addon's exports */
#ifndef KMODTS_IMPORT_OWNERS_H
#define KMODTS_IMPORT_OWNERS_H
#include <node_api.h>
napi_status import_owners_register(napi_env env, napi_value exports);
#endif
