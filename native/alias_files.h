/* modules.alias and modules.alias.bin from every module's alias pieces at once (alias_files.c), registered on the addon's exports */
#ifndef KMODTS_ALIAS_FILES_H
#define KMODTS_ALIAS_FILES_H
#include <node_api.h>
napi_status alias_files_register(napi_env env, napi_value exports);
#endif
