/* module index (.bin) writer (index_writer.c), registered on the addon's exports */
#ifndef KMODTS_INDEX_WRITER_H
#define KMODTS_INDEX_WRITER_H
#include <node_api.h>
napi_status index_writer_register(napi_env env, napi_value exports);
#endif
