/* module index (.bin) writer (index_writer.c), registered on the addon's exports */
#ifndef KMODTS_INDEX_WRITER_H
#define KMODTS_INDEX_WRITER_H
#include <node_api.h>
#include <stddef.h>
#include <stdint.h>
napi_status index_writer_register(napi_env env, napi_value exports);

/*
 * buildIndexInBackground's promise for arrays the work takes over (malloc()ed; freed when it is done,
 * also when it cannot start): n entries, keys one after another (klens[k] bytes each), value k at
 * values + vstarts[k] (vlens[k] bytes), priorities prios. The caller has checked every length and the
 * keys' and values' bytes (7-bit). NULL with an exception thrown when the work could not be started.
 */
napi_value index_build_owned_in_background(napi_env env, const char *fn, uint8_t *keys, uint32_t *klens, uint8_t *values,
					   uint32_t *vlens, uint32_t *prios, uint32_t *vstarts, size_t n);
#endif
