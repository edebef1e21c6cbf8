/* a whole file read with the CRC-32 of its body, on the thread pool (file_crc.c), registered on the addon's exports */
#ifndef KMODTS_FILE_CRC_H
#define KMODTS_FILE_CRC_H
#include <stddef.h>
#include <stdint.h>
#include <node_api.h>
/* makes the tables file_crc32 needs (once; any thread) */
void file_crc32_prepare(void);
uint32_t file_crc32(uint32_t crc, const uint8_t *p, size_t n);
napi_status file_crc_register(napi_env env, napi_value exports);
#endif
