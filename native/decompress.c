/*
 * Module file decompression with the system's own liblzma and libzstd, opened with dlopen at first use
 * as kmod 34.2 opens them (no headers and no link-time dependency: the few prototypes, constants and
 * the lzma_stream layout are declared here). The calls and checks are libkmod's (kmod_file_load_xz,
 * kmod_file_load_zstd), so every verdict and message is the library's and libkmod's:
 *   xz:   lzma_stream_decoder(UINT64_MAX, LZMA_CONCATENATED), the input given BUFSIZ bytes at a time
 *         with LZMA_RUN and LZMA_FINISH once it is all consumed, until LZMA_STREAM_END or an error;
 *   zstd: ZSTD_getFrameContentSize of the first frame (0, unknown or an error: refused), then one
 *         ZSTD_decompress of the whole file into exactly that many bytes.
 * gzip goes to decode_gzip.c, which decodes what is certain to come out as node:zlib's and leaves the
 * rest to the caller (node:zlib in JavaScript). This file is plain C (no Node-API: it runs on
 * libuv's threads too, and alone under the sanitizers); decode_napi.c gives it to JavaScript.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "decompress.h"
#include "decode_gzip.h"

/* ---- the libraries, as declared by lzma/base.h and zstd.h ---- */

/* lzma_stream (lzma/base.h): stable ABI since liblzma 5.0 */
typedef struct {
	const uint8_t *next_in;
	size_t avail_in;
	uint64_t total_in;
	uint8_t *next_out;
	size_t avail_out;
	uint64_t total_out;
	const void *allocator;
	void *internal;
	void *reserved_ptr[4];
	uint64_t seek_pos;
	uint64_t reserved_int2;
	size_t reserved_int3;
	size_t reserved_int4;
	int reserved_enum1;
	int reserved_enum2;
} lzma_stream_abi;

enum { LZMA_OK = 0, LZMA_STREAM_END = 1, LZMA_MEM_ERROR = 5, LZMA_FORMAT_ERROR = 7 };
enum { LZMA_OPTIONS_ERROR = 8, LZMA_DATA_ERROR = 9, LZMA_BUF_ERROR = 10 };
enum { LZMA_RUN = 0, LZMA_FINISH = 3 };
#define LZMA_CONCATENATED 0x08u
/* libkmod reads the file BUFSIZ bytes at a time (glibc: 8192) */
#define XZ_READ_CHUNK 8192

#define ZSTD_CONTENTSIZE_UNKNOWN (0ULL - 1)
#define ZSTD_CONTENTSIZE_ERROR (0ULL - 2)

struct lzma_api {
	int (*stream_decoder)(lzma_stream_abi *, uint64_t, uint32_t);
	int (*code)(lzma_stream_abi *, int);
	void (*end)(lzma_stream_abi *);
	uint32_t (*version_number)(void);
};

static struct {
	pthread_once_t once;
	int loaded;
	struct lzma_api api;
	/* another copy of liblzma to use when it is newer than the system's (decode_offer_liblzma) */
	char *alternative;
	uint32_t version;
} lzma = { PTHREAD_ONCE_INIT, 0, { NULL, NULL, NULL, NULL }, NULL, 0 };

static struct {
	pthread_once_t once;
	int loaded;
	size_t (*decompress)(void *, size_t, const void *, size_t);
	const char *(*get_error_name)(size_t);
	unsigned long long (*get_frame_content_size)(const void *, size_t);
	unsigned (*is_error)(size_t);
	unsigned (*version_number)(void);
	/* a context per thread instead of ZSTD_decompress's own (thread_dctx); NULL where not exported */
	void *(*create_dctx)(void);
	size_t (*free_dctx)(void *);
	size_t (*decompress_dctx)(void *, void *, size_t, const void *, size_t);
} zstd = { PTHREAD_ONCE_INIT, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL };

/* a library's own symbols first: Node 22+ exports a bundled zstd (decisions.md, session 16); not for ASan */
#if defined(__SANITIZE_ADDRESS__) || !defined(RTLD_DEEPBIND)
#define OWN_SYMBOLS_FIRST 0
#else
#define OWN_SYMBOLS_FIRST RTLD_DEEPBIND
#endif

/* all of `names` from `file` into `slots`, or nothing (the library stays open for the process) */
static int resolve(const char *file, int flags, const char *const *names, void **slots, size_t n)
{
	void *dl = dlopen(file, flags | RTLD_LOCAL | OWN_SYMBOLS_FIRST);
	size_t i;

	if (dl == NULL)
		return 0;
	for (i = 0; i < n; i++) {
		slots[i] = dlsym(dl, names[i]);
		if (slots[i] == NULL) {
			dlclose(dl);
			return 0;
		}
	}
	return 1;
}

static int resolve_lzma(const char *file, int flags, struct lzma_api *api)
{
	static const char *const names[] = { "lzma_stream_decoder", "lzma_code", "lzma_end", "lzma_version_number" };
	void *slots[4];

	if (!resolve(file, flags, names, slots, 4))
		return 0;
	*(void **)&api->stream_decoder = slots[0];
	*(void **)&api->code = slots[1];
	*(void **)&api->end = slots[2];
	*(void **)&api->version_number = slots[3];
	return 1;
}

/*
 * The system's liblzma.so.5, as kmod opens it; or the alternative offered (a liblzma linked into another
 * module of the process, e.g. node-liblzma's) when it is a newer release: liblzma's verdicts on a file
 * do not change between releases, its decoder's speed does (5.8 decodes ~1.5x as fast as 5.4).
 */
static void load_lzma(void)
{
	struct lzma_api sys, alt;
	int have_sys = resolve_lzma("liblzma.so.5", RTLD_NOW, &sys);
	int have_alt = lzma.alternative != NULL && resolve_lzma(lzma.alternative, RTLD_LAZY, &alt);

	if (have_alt && (!have_sys || alt.version_number() > sys.version_number()))
		lzma.api = alt;
	else if (have_sys)
		lzma.api = sys;
	else
		return;
	lzma.version = lzma.api.version_number();
	lzma.loaded = 1;
}

void decode_offer_liblzma(const char *file)
{
	/* (only before the library is first used: load_lzma reads it once) */
	if (lzma.alternative == NULL && file != NULL)
		lzma.alternative = strdup(file);
}

static void load_zstd(void)
{
	static const char *const names[] = { "ZSTD_decompress", "ZSTD_getErrorName", "ZSTD_getFrameContentSize", "ZSTD_isError", "ZSTD_versionNumber" };
	void *slots[5];

	if (!resolve("libzstd.so.1", RTLD_NOW, names, slots, 5))
		return;
	*(void **)&zstd.decompress = slots[0];
	*(void **)&zstd.get_error_name = slots[1];
	*(void **)&zstd.get_frame_content_size = slots[2];
	*(void **)&zstd.is_error = slots[3];
	*(void **)&zstd.version_number = slots[4];
	{
		static const char *const ctx_names[] = { "ZSTD_createDCtx", "ZSTD_freeDCtx", "ZSTD_decompressDCtx" };
		void *ctx[3];
		if (resolve("libzstd.so.1", RTLD_NOW, ctx_names, ctx, 3)) {
			*(void **)&zstd.create_dctx = ctx[0];
			*(void **)&zstd.free_dctx = ctx[1];
			*(void **)&zstd.decompress_dctx = ctx[2];
		}
	}
	zstd.loaded = 1;
}

static int have_lzma(void)
{
	pthread_once(&lzma.once, load_lzma);
	return lzma.loaded;
}

static int have_zstd(void)
{
	pthread_once(&zstd.once, load_zstd);
	return zstd.loaded;
}

uint32_t decode_liblzma_version(void)
{
	return have_lzma() ? lzma.version : 0;
}

uint32_t decode_libzstd_version(void)
{
	return have_zstd() ? zstd.version_number() : 0;
}

/* ---- decoding ---- */

static const uint8_t XZ_MAGIC[6] = { 0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00 };
static const uint8_t ZSTD_MAGIC[4] = { 0x28, 0xb5, 0x2f, 0xfd };
static const uint8_t GZIP_MAGIC[2] = { 0x1f, 0x8b };

/* libkmod-file.c's order: zstd, xz, gzip */
int decode_kind(const uint8_t *data, size_t len)
{
	if (len >= sizeof ZSTD_MAGIC && memcmp(data, ZSTD_MAGIC, sizeof ZSTD_MAGIC) == 0)
		return KIND_ZSTD;
	if (len >= sizeof XZ_MAGIC && memcmp(data, XZ_MAGIC, sizeof XZ_MAGIC) == 0)
		return KIND_XZ;
	if (len >= sizeof GZIP_MAGIC && memcmp(data, GZIP_MAGIC, sizeof GZIP_MAGIC) == 0)
		return KIND_GZIP;
	return KIND_NONE;
}

static void fail(struct decode_result *r, const char *fn, const char *detail, int err)
{
	r->status = DECODE_FAILED;
	r->fn = fn;
	snprintf(r->detail, sizeof r->detail, "%s", detail);
	r->err = err;
}

/*
 * Output and input memory of our own: large blocks are mapped, not malloc'd, so that freeing them gives
 * them back at once. (Freed malloc memory stays in the arena of the libuv thread that allocated it: with
 * four pool threads decoding modules of up to tens of MB, that kept ~40 MB resident in depmod.)
 */
#define MAP_FROM (256u << 10)

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

void decode_populate(uint8_t *buf, size_t *touched, size_t need)
{
	static size_t page;
	uintptr_t from, to;
	if (buf == NULL || need <= *touched)
		return;
	if (page == 0)
		page = (size_t)sysconf(_SC_PAGESIZE);
	/* (from the page holding the first untouched byte: populating changes no byte, even another's) */
	from = ((uintptr_t)buf + *touched) & ~(uintptr_t)(page - 1);
	to = (uintptr_t)buf + need;
	(void)madvise((void *)from, to - from, MADV_POPULATE_WRITE);
	*touched = need;
}

/*
 * the image's pages up to `need` bytes populated where the caller asks for it (r->populate), but no
 * further than POPULATE_RATIO times the input (r->raw_len): a damaged stream may state any size, and
 * only what a module's real ratio reaches is made present ahead; the rest faults in if it is written
 */
#define POPULATE_RATIO 32
static void populate_image(struct decode_result *r, size_t need)
{
	size_t most = r->raw_len > SIZE_MAX / POPULATE_RATIO ? SIZE_MAX : r->raw_len * POPULATE_RATIO;
	if (r->populate)
		decode_populate(r->image, &r->touched, need < most ? need : most);
}

void *decode_alloc(size_t n)
{
	void *p;
	if (n < MAP_FROM)
		return malloc(n);
	p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

void decode_free(void *p, size_t n)
{
	if (p == NULL)
		return;
	if (n < MAP_FROM)
		free(p);
	else
		munmap(p, n);
}

void *decode_block_grow(void *old, size_t old_n, size_t used, size_t n)
{
	void *p;
	if (old_n < MAP_FROM && n < MAP_FROM)
		return realloc(old, n);
	p = decode_alloc(n);
	if (p == NULL)
		return NULL;
	if (used > 0)
		memcpy(p, old, used);
	decode_free(old, old_n);
	return p;
}

/* xz_uncompress_belch's wording */
static const char *xz_words(int ret)
{
	switch (ret) {
	case LZMA_MEM_ERROR: return "xz: Cannot allocate memory";
	case LZMA_FORMAT_ERROR: return "xz: File format not recognized";
	case LZMA_OPTIONS_ERROR: return "xz: Unsupported compression options";
	case LZMA_DATA_ERROR: return "xz: File is corrupt";
	case LZMA_BUF_ERROR: return "xz: Unexpected end of input";
	default: return "xz: Internal error (bug)";
	}
}

/* a multibyte integer of the xz index at *pos (before end), or -1 */
static int64_t xz_varint(const uint8_t *d, size_t *pos, size_t end)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 9 && *pos < end; i++) {
		uint8_t b = d[(*pos)++];
		v |= (uint64_t)(b & 0x7f) << (7 * i);
		if ((b & 0x80) == 0)
			return v > (uint64_t)INT64_MAX ? -1 : (int64_t)v;
	}
	return -1;
}

/*
 * The uncompressed size a single-stream xz file's index states (only to size the output buffer:
 * liblzma decides), or 0 when it cannot be read.
 */
static size_t xz_size_hint(const uint8_t *d, size_t n)
{
	uint64_t backward, records, total = 0, i;
	size_t start, pos;

	if (n < 32 || d[n - 2] != 0x59 || d[n - 1] != 0x5a)
		return 0;
	backward = (decode_le32(d + n - 8) + 1) * 4;
	if (backward > n - 24)
		return 0;
	start = n - 12 - (size_t)backward;
	if (start < 12 || d[start] != 0)
		return 0;
	pos = start + 1;
	int64_t v = xz_varint(d, &pos, n - 12);
	if (v < 0 || v > (1 << 20))
		return 0;
	records = (uint64_t)v;
	for (i = 0; i < records; i++) {
		if (xz_varint(d, &pos, n - 12) < 0)
			return 0;
		v = xz_varint(d, &pos, n - 12);
		if (v < 0 || (uint64_t)v > (1ULL << 32))
			return 0;
		total += (uint64_t)v;
		if (total > (1ULL << 32))
			return 0;
	}
	return (size_t)total;
}

void decode_reserve(struct decode_result *r, size_t hint)
{
	uint8_t *p;

	if (hint == 0 || hint >= (256u << 20))
		return;
	if (hint + 1 > r->cap && (p = decode_alloc(hint + 1)) != NULL) {
		if (r->owned)
			decode_free(r->image, r->cap);
		r->image = p;
		r->cap = hint + 1;
		r->owned = 1;
		r->touched = 0;
	}
	if (hint + 1 <= r->cap)
		populate_image(r, hint + 1);
}

int decode_grow(struct decode_result *r, size_t used, size_t need)
{
	size_t cap = r->cap * 2 > need ? r->cap * 2 : need;
	uint8_t *p;

	if (r->owned) {
		p = decode_block_grow(r->image, r->cap, used, cap);
		if (p == NULL)
			return -1;
	} else {
		p = decode_alloc(cap);
		if (p == NULL)
			return -1;
		if (used > 0)
			memcpy(p, r->image, used);
	}
	r->image = p;
	r->cap = cap;
	r->owned = 1;
	r->touched = used;
	return 0;
}

/*
 * A zstd context kept per thread and reused from file to file: ZSTD_decompress makes and frees one of
 * ~160 KB for every file. ZSTD_decompressDCtx is what ZSTD_decompress calls with its new context, and
 * it resets all state when a frame begins, so verdicts and messages are the same. Each thread keeps its
 * context until it exits. (A kept lzma_stream was measured too and gained nothing: liblzma's decoder
 * allocations are small next to its decoding, docs/decisions.md.)
 */
static pthread_key_t dctx_key;
static pthread_once_t keys_once = PTHREAD_ONCE_INIT;
static int keys_made;

static void free_thread_dctx(void *c)
{
	if (c != NULL && zstd.free_dctx != NULL)
		zstd.free_dctx(c);
}

static void make_keys(void)
{
	if (pthread_key_create(&dctx_key, free_thread_dctx) == 0)
		keys_made = 1;
}

/* this thread's zstd context, or NULL (then ZSTD_decompress, as libkmod) */
static void *thread_dctx(void)
{
	void *c;
	pthread_once(&keys_once, make_keys);
	if (!keys_made || zstd.create_dctx == NULL)
		return NULL;
	c = pthread_getspecific(dctx_key);
	if (c == NULL) {
		c = zstd.create_dctx();
		if (c != NULL && pthread_setspecific(dctx_key, c) != 0) {
			zstd.free_dctx(c);
			c = NULL;
		}
	}
	return c;
}

static void decode_xz(const uint8_t *data, size_t len, struct decode_result *r)
{
	lzma_stream_abi strm;
	size_t consumed = 0, produced = 0;
	int action = LZMA_RUN, ret;

	memset(&strm, 0, sizeof strm);
	ret = lzma.api.stream_decoder(&strm, UINT64_MAX, LZMA_CONCATENATED);
	if (ret == LZMA_MEM_ERROR) {
		fail(r, "kmod_file_load_xz", "xz: Cannot allocate memory", ENOMEM);
		return;
	}
	if (ret != LZMA_OK) {
		fail(r, "kmod_file_load_xz", "xz: Internal error (bug)", EINVAL);
		return;
	}
	/* (a stream longer than its index states is caught without a copy) */
	decode_reserve(r, xz_size_hint(data, len));
	if (r->cap == 0 && decode_grow(r, 0, 1 << 16) < 0) {
		lzma.api.end(&strm);
		fail(r, "kmod_file_load_xz", "", ENOMEM);
		return;
	}
	for (;;) {
		if (strm.avail_in == 0) {
			size_t chunk = len - consumed < XZ_READ_CHUNK ? len - consumed : XZ_READ_CHUNK;
			strm.next_in = data + consumed;
			strm.avail_in = chunk;
			consumed += chunk;
			if (chunk == 0)
				action = LZMA_FINISH;
		}
		if (produced == r->cap && decode_grow(r, produced, produced + 1) < 0) {
			/* libkmod's realloc failing: -ENOMEM and no message */
			lzma.api.end(&strm);
			fail(r, "xz_uncompress", "", ENOMEM);
			return;
		}
		strm.next_out = r->image + produced;
		strm.avail_out = r->cap - produced;
		ret = lzma.api.code(&strm, action);
		produced = r->cap - strm.avail_out;
		if (ret == LZMA_STREAM_END)
			break;
		if (ret != LZMA_OK) {
			lzma.api.end(&strm);
			fail(r, "xz_uncompress_belch", xz_words(ret), EINVAL);
			return;
		}
	}
	lzma.api.end(&strm);
	r->len = produced;
	r->status = DECODE_OK;
}

static void decode_zstd(const uint8_t *data, size_t len, struct decode_result *r)
{
	unsigned long long frame_size = zstd.get_frame_content_size(data, len);
	void *dctx;
	size_t n;

	if (frame_size == 0 || frame_size == ZSTD_CONTENTSIZE_UNKNOWN || frame_size == ZSTD_CONTENTSIZE_ERROR) {
		fail(r, "kmod_file_load_zstd", "zstd: Failed to determine decompression size", EINVAL);
		return;
	}
	if (frame_size > SIZE_MAX) {
		fail(r, "kmod_file_load_zstd", "", ENOMEM);
		return;
	}
	if (frame_size > r->cap) {
		/* libkmod's malloc of exactly the stated size; its failure is -errno and no message */
		uint8_t *p = decode_alloc((size_t)frame_size);
		if (p == NULL) {
			fail(r, "kmod_file_load_zstd", "", ENOMEM);
			return;
		}
		r->image = p;
		r->owned = 1;
		r->touched = 0;
	}
	r->cap = (size_t)frame_size;
	populate_image(r, r->cap);
	dctx = thread_dctx();
	n = dctx != NULL ? zstd.decompress_dctx(dctx, r->image, r->cap, data, len) : zstd.decompress(r->image, r->cap, data, len);
	if (zstd.is_error(n)) {
		char words[160];
		snprintf(words, sizeof words, "zstd: %s", zstd.get_error_name(n));
		fail(r, "kmod_file_load_zstd", words, EINVAL);
		return;
	}
	r->len = n;
	r->status = DECODE_OK;
}

void decode_bytes(const uint8_t *data, size_t len, struct decode_result *r)
{
	r->kind = decode_kind(data, len);
	switch (r->kind) {
	case KIND_XZ:
		if (!have_lzma()) {
			r->status = DECODE_UNAVAILABLE;
			return;
		}
		decode_xz(data, len, r);
		break;
	case KIND_ZSTD:
		if (!have_zstd()) {
			r->status = DECODE_UNAVAILABLE;
			return;
		}
		decode_zstd(data, len, r);
		break;
	case KIND_GZIP:
		/* what decode_gzip leaves (or without zlib): the bytes themselves, for the caller's zlib */
		if (decode_gzip(data, len, r) < 0)
			r->status = DECODE_NOT_COMPRESSED;
		break;
	default:
		/* uncompressed: the bytes themselves */
		r->status = DECODE_NOT_COMPRESSED;
		break;
	}
	if (r->status != DECODE_OK && r->owned) {
		decode_free(r->image, r->cap);
		r->image = NULL;
		r->owned = 0;
	}
}
