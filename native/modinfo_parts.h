/* modinfo's one-call read of an uncompressed module file's headers, .modinfo and signature */
#ifndef KMODTS_MODINFO_PARTS_H
#define KMODTS_MODINFO_PARTS_H
#include <node_api.h>
#include "decompress.h"
#include "module_scan.h"

/*
 * read_batch.c's modinfo mode, on a pool thread: the parts of each file of `paths` (n bytes, joined by
 * NULs) packed into r's image, a record a file (DECODE_PARTS, r->len bytes; placeModinfoParts puts
 * one file's in place); compressed files decompressed first, in the pool job's buffers b
 */
void modinfo_parts_read_files(const char *paths, size_t n, struct decode_result *r, struct scan_buffers *b);

napi_status modinfo_parts_register(napi_env env, napi_value exports);
#endif
