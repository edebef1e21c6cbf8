/* module file decompression with the system's liblzma and libzstd, and Node's zlib (decompress.c) */
#ifndef KMODTS_DECOMPRESS_H
#define KMODTS_DECOMPRESS_H
#include <stddef.h>
#include <stdint.h>
#include "stat_key.h"

enum { KIND_NONE = 0, KIND_XZ = 1, KIND_ZSTD = 2, KIND_GZIP = 3 };

enum {
	/* image..image+len is the decoded file */
	DECODE_OK = 0,
	/* libkmod refuses the file: fn, detail (may be empty: libkmod logs nothing) and err say how */
	DECODE_FAILED = 1,
	/* the library for this kind cannot be opened or lacks a symbol */
	DECODE_UNAVAILABLE = 2,
	/* uncompressed, or gzip left to the caller's zlib (decode_gzip): nothing decoded */
	DECODE_NOT_COMPRESSED = 3,
};

struct decode_result {
	int kind;
	int status;
	int err;
	const char *fn;
	char detail[192];
	/* the output: the caller's buffer (owned == 0) of cap bytes, or a block of cap bytes of our own (owned == 1, decode_free) */
	uint8_t *image;
	size_t cap;
	size_t len;
	int owned;
	/* read_file's input, likewise */
	uint8_t *raw;
	size_t raw_cap;
	size_t raw_len;
	int raw_owned;
	/*
	 * set by a caller that reuses its buffers from file to file: the bytes at the start of image and of
	 * raw whose pages are already in memory (touched, raw_touched); the rest of a size known before the
	 * bytes are written is populated in one call (decode_populate), not faulted in a page at a time: the
	 * file's size for raw, and for the image the size the stream states, up to 32 times raw_len (the
	 * input's length, which such a caller passes to decode_bytes)
	 */
	int populate;
	size_t touched;
	size_t raw_touched;
	/* read_file's stat key of the file (stat_key.h), taken after it opened it and before it read it */
	uint32_t key[STAT_KEY_WORDS];
};

/* the little-endian 32-bit number at p (the xz index's and the gzip trailer's) */
static inline uint64_t decode_le32(const uint8_t *p)
{
	return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24;
}

/* KIND_* of a file from its first bytes, checked in libkmod's order */
int decode_kind(const uint8_t *data, size_t len);
/* decodes data into r (r->image/r->cap: a buffer to use while it fits, or NULL/0) */
void decode_bytes(const uint8_t *data, size_t len, struct decode_result *r);
/*
 * r's output grown to at least `need` bytes, its first `used` kept (moved out of the caller's buffer
 * if it was there); 0, or -1 when out of memory
 */
int decode_grow(struct decode_result *r, size_t used, size_t need);
/*
 * r's output made one byte more than the size a stream states (`hint`; 0: none), in one block now
 * rather than grown to it, where that is plausible (under 256 MiB) and more than r has; else, or when
 * out of memory, left as it is (growing will do). Where r->populate, the pages for that size populated
 * (up to 32 times r->raw_len).
 */
void decode_reserve(struct decode_result *r, size_t hint);
/*
 * the pages of buf up to `need` bytes that are not yet in memory (past *touched) made present in one
 * madvise(MADV_POPULATE_WRITE), and *touched raised to need: a module's image takes hundreds of page
 * faults, and on the VM measured a fault cost ~11 us against about half that a page populated
 * (docs/decisions.md, issue 14); a kernel without it (before 5.14) says EINVAL, and the pages fault in
 * as before
 */
void decode_populate(uint8_t *buf, size_t *touched, size_t need);
/* a block of n bytes for an image or raw block (decode_free frees it); NULL when out of memory */
void *decode_alloc(size_t n);
/* frees an image or raw block the result owns (its cap or raw_cap bytes) */
void decode_free(void *p, size_t n);
/* a block of `n` bytes holding the first `used` of `old` (a block of `old_n` bytes, freed); NULL when out of memory */
void *decode_block_grow(void *old, size_t old_n, size_t used, size_t n);
/* reads a whole file into r->raw (r->raw/r->raw_cap likewise), its stat key into r->key; 0, or -1 with r->err (read_file.c) */
int read_file(const char *path, struct decode_result *r);
/* read_file of a file already open at fd, from its current offset; fd stays open */
int read_fd(int fd, struct decode_result *r);
/* another liblzma (a file holding it) to prefer when it is newer than the system's: before the first decode */
void decode_offer_liblzma(const char *file);
/* LZMA_VERSION / ZSTD_VERSION_NUMBER of the library in use, 0 when none can be opened */
uint32_t decode_liblzma_version(void);
uint32_t decode_libzstd_version(void);
#endif
