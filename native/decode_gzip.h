/* gzip module files decoded by the zlib Node links in, where the outcome is certain (decode_gzip.c) */
#ifndef KMODTS_DECODE_GZIP_H
#define KMODTS_DECODE_GZIP_H
#include <stddef.h>
#include <stdint.h>
#include "decompress.h"

/*
 * data (a gzip file) decoded into r (r->image/r->cap: a buffer to use while it fits): 0 with the image
 * and DECODE_OK, or -1, r's status untouched, when the caller's zlib is to decode or judge it
 */
int decode_gzip(const uint8_t *data, size_t len, struct decode_result *r);
#endif
