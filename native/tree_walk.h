/* depmod's walk of a module tree in one call (tree_walk.c), registered on the addon's exports */
#ifndef KMODTS_TREE_WALK_H
#define KMODTS_TREE_WALK_H
#include <node_api.h>
#include <stddef.h>
/* whether a file name is a module's: a module extension with something before it */
int tree_walk_module_name(const char *name, size_t len);
napi_status tree_walk_register(napi_env env, napi_value exports);
#endif
