/* depmod's scan of one module in C, on the pool thread that read it (module_scan.c) */
#ifndef KMODTS_MODULE_SCAN_H
#define KMODTS_MODULE_SCAN_H
#include <stddef.h>
#include <stdint.h>
#include <node_api.h>
#include "decompress.h"

/* a pool job's buffers for the files' bytes and images, reused from file to file (decode_alloc'd) */
struct scan_buffers {
	uint8_t *raw;
	size_t raw_cap;
	uint8_t *image;
	size_t image_cap;
	/* the bytes at the start of each whose pages are in memory (decode_populate) */
	size_t raw_touched;
	size_t image_touched;
};

/* decode_read_file, with the scan's block (DECODE_SCANNED) in r's image in place of the image where it can */
void scan_read_file(const char *path, struct decode_result *r, struct scan_buffers *b);
/*
 * the file at path (or already open at fd, when fd >= 0) read into b's raw buffer and decoded into b's
 * image buffer (each kept, and grown where the file needs more); t as read_file (or read_fd) and
 * decode_bytes leave it, owning nothing: the image is b->image where t->status is DECODE_OK. 0, or -1
 * where the file could not be read (t->err)
 */
int scan_buffers_decode(struct scan_buffers *b, const char *path, int fd, struct decode_result *t);
void scan_buffers_free(struct scan_buffers *b);
napi_status module_scan_register(napi_env env, napi_value exports);
#endif
