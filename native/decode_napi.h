/* module file decompression (decompress.c), registered on the addon's exports (decode_napi.c) */
#ifndef KMODTS_DECODE_NAPI_H
#define KMODTS_DECODE_NAPI_H
#include <node_api.h>
#include "decompress.h"

/* status for a file that could not be read (err: its errno) */
#define DECODE_READ_FAILED 4
/* the file was scanned on the pool (module_scan.c): image..image+len is the scan's block, not the image */
#define DECODE_SCANNED 5
/* modinfo's parts of the file were read on the pool (modinfo_parts.c): image..image+len holds them packed */
#define DECODE_PARTS 6
/* does the result carry bytes in image (an image, a scan's block, packed parts)? */
#define DECODE_HAS_IMAGE(r) ((r)->status == DECODE_OK || (r)->status == DECODE_SCANNED || (r)->status == DECODE_PARTS)

napi_status decode_register(napi_env env, napi_value exports);
/* reads and decodes a file (on any thread): r's buffers as decode_bytes and read_file use them */
void decode_read_file(const char *path, struct decode_result *r);
/* the result object for JavaScript; the memory r owns passes to Buffers */
napi_value decode_result_object(napi_env env, struct decode_result *r);
/* a Uint8Array argument's memory, or nothing for null/undefined; -1 with a TypeError otherwise */
int decode_optional_bytes(napi_env env, const char *fn, napi_value v, uint8_t **data, size_t *len);
#endif
