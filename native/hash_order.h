/* kmod's hash table iteration order of many keys in one call (hash_order.c), registered on the addon's exports */
#ifndef KMODTS_HASH_ORDER_H
#define KMODTS_HASH_ORDER_H
#include <node_api.h>
napi_status hash_order_register(napi_env env, napi_value exports);
#endif
