/*
 * gzip module files decoded on any thread (decompress.c's decode_bytes calls this, on libuv's pool
 * too), with the zlib Node links in, and only where the outcome is certain to be node:zlib's: one
 * member, inflated without error, ending exactly at the end of the file. Everything else (a second
 * member, bytes after the member, a damaged or cut stream, no zlib in the process) is left to the
 * caller, whose node:zlib decodes or judges it, so that every verdict and message stays its own.
 * Plain C, no Node-API (as decompress.c).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include "decompress.h"
#include "decode_gzip.h"

/* z_stream (zlib.h): stable ABI since zlib 1.0; inflateInit2_ checks the size we pass */
typedef struct {
	const uint8_t *next_in;
	unsigned avail_in;
	unsigned long total_in;
	uint8_t *next_out;
	unsigned avail_out;
	unsigned long total_out;
	const char *msg;
	void *state;
	void *zalloc;
	void *zfree;
	void *opaque;
	int data_type;
	unsigned long adler;
	unsigned long reserved;
} z_stream_abi;

enum { Z_OK = 0, Z_STREAM_END = 1, Z_NO_FLUSH = 0 };
/* windowBits for a gzip stream only, with the largest window */
#define GZIP_WINDOW_BITS (16 + 15)

static struct {
	pthread_once_t once;
	int loaded;
	int (*inflate_init2)(z_stream_abi *, int, const char *, int);
	int (*inflate)(z_stream_abi *, int);
	int (*inflate_end)(z_stream_abi *);
	const char *(*version)(void);
} zlib = { PTHREAD_ONCE_INIT, 0, NULL, NULL, NULL, NULL };

/*
 * The process's own zlib, not the system's libz.so.1: Node links zlib in and exports its functions, so
 * a second zlib opened beside it has its internal calls (inflateReset2, crc32, ...) bound to Node's
 * copy, whose state differs (crashes, seen here). Node's is also what node:zlib, the judge of every
 * gzip file decode_gzip leaves, runs on. Not there (the C tests alone): gzip stays the caller's.
 */
static void load_zlib(void)
{
	static const char *const names[] = { "inflateInit2_", "inflate", "inflateEnd", "zlibVersion" };
	void *slots[4];
	size_t i;

	for (i = 0; i < 4; i++)
		if ((slots[i] = dlsym(RTLD_DEFAULT, names[i])) == NULL)
			return;
	*(void **)&zlib.inflate_init2 = slots[0];
	*(void **)&zlib.inflate = slots[1];
	*(void **)&zlib.inflate_end = slots[2];
	*(void **)&zlib.version = slots[3];
	zlib.loaded = 1;
}

static int have_zlib(void)
{
	pthread_once(&zlib.once, load_zlib);
	return zlib.loaded;
}

/*
 * gzip, where the outcome is certain: one member, inflated without error, ending at the end of the data,
 * with at least one byte out. Returns 0 with the image in r, or -1 (r unchanged but for its buffers):
 * the caller's zlib decides (a second member, bytes after the member, a damaged or cut stream, ...).
 */
int decode_gzip(const uint8_t *data, size_t len, struct decode_result *r)
{
	z_stream_abi strm;
	size_t produced = 0;
	int ret;

	if (!have_zlib() || len < 18 || len > UINT32_MAX)
		return -1;
	memset(&strm, 0, sizeof strm);
	if (zlib.inflate_init2(&strm, GZIP_WINDOW_BITS, zlib.version(), (int)sizeof strm) != Z_OK)
		return -1;
	/* the trailer's ISIZE: the length modulo 2^32 */
	decode_reserve(r, (size_t)decode_le32(data + len - 4));
	strm.next_in = data;
	strm.avail_in = (unsigned)len;
	for (;;) {
		unsigned room;
		if ((r->cap == 0 || produced == r->cap) && decode_grow(r, produced, produced < (1 << 16) ? (1 << 16) : produced + 1) < 0)
			break;
		room = r->cap - produced > UINT32_MAX ? UINT32_MAX : (unsigned)(r->cap - produced);
		strm.next_out = r->image + produced;
		strm.avail_out = room;
		ret = zlib.inflate(&strm, Z_NO_FLUSH);
		produced += room - strm.avail_out;
		if (ret == Z_STREAM_END) {
			zlib.inflate_end(&strm);
			if (strm.avail_in != 0 || produced == 0)
				return -1;
			r->len = produced;
			r->status = DECODE_OK;
			return 0;
		}
		if (ret != Z_OK)
			break;
	}
	zlib.inflate_end(&strm);
	return -1;
}
