/* many module files read and decoded on libuv's thread pool, results delivered in batches (read_batch.c) */
#ifndef KMODTS_READ_BATCH_H
#define KMODTS_READ_BATCH_H
#include <node_api.h>
napi_status read_batch_register(napi_env env, napi_value exports);
#endif
