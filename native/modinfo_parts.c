/*
 * modinfo's reading of a module file in one call (src/file/modinfo-parts.ts): open, the ELF header,
 * fstat, the section header table, the section names, each section named .modinfo and an appended
 * signature, each read at its own offset into the caller's buffer, then close. In JavaScript these
 * were a dozen fs calls per file, and modinfo of every module of a tree pays them per module
 * (docs/decisions.md, issue 14). On the pool, a compressed file is decompressed first and the same
 * parts are taken from its image. Nothing here decides a verdict: whatever is unusual (an error, not
 * ELF, a table outside the file, a short read, a file the decoder refuses) gives MP_FALLBACK, and the
 * caller reads the file the usual way, so that messages and errors stay the full reader's. The headers
 * are read and checked as depmod's scan reads them (elf_image.c); the caller still parses them
 * (src/file/elf.ts) on what was read.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <node_api.h>
#include "decode_napi.h"
#include "elf_image.h"
#include "modinfo_parts.h"
#include "module_scan.h"
#include "stat_key.h"
#include "napi_args.h"

/* the results of reading the parts */
enum { MP_FALLBACK = 0, MP_READ = 1, MP_TOO_SMALL = 2 };

/* below a page, reading the whole file costs the same */
#define MP_MIN_SIZE 4096
/* the .modinfo sections whose ranges are reported (a module has one) */
#define MP_MAX_RANGES 4
/* the pieces of the file read: the ELF header, the section table, its names, each .modinfo, the signature's trailer and body */
#define MP_MAX_SEGS (3 + MP_MAX_RANGES + 2)
/* a signed module's trailer: struct module_signature (12 bytes) then the magic */
static const char SIG_MAGIC[] = "~Module signature appended~\n";
#define MODSIG_SIZE 12

/*
 * The parts packed one after another (so that a pool thread reads them into a small buffer, not one of
 * the file's size): a header of doubles, then each piece's bytes in the order read.
 * Header: the file's size, the number of pieces, the number of .modinfo sections, then offset and
 * length of each piece (MP_MAX_SEGS pairs), then offset and size of each .modinfo (MP_MAX_RANGES pairs).
 */
enum { H_SIZE, H_SEGS, H_RANGES, H_SEG0, H_RANGE0 = H_SEG0 + 2 * MP_MAX_SEGS, H_DOUBLES = H_RANGE0 + 2 * MP_MAX_RANGES };
#define PACK_HEAD (H_DOUBLES * sizeof(double))

struct packer {
	/* the file's bytes: read from fd, or (a decompressed image) in mem */
	int fd;
	const uint8_t *mem;
	uint64_t size;
	uint8_t *out;
	uint64_t cap, used;
	double head[H_DOUBLES];
	/* the packed buffer was too small for the parts */
	int full;
};

/* len bytes at off of the file appended to the packed pieces; where they are, or NULL */
static const uint8_t *pack_read(struct packer *k, uint64_t off, uint64_t len)
{
	unsigned n = (unsigned)k->head[H_SEGS];
	uint8_t *at;
	if (off > k->size || len > k->size - off || n == MP_MAX_SEGS)
		return NULL;
	if (len > k->cap - k->used) {
		k->full = 1;
		return NULL;
	}
	at = k->out + k->used;
	if (k->mem != NULL)
		memcpy(at, k->mem + off, len);
	else if (pread_full(k->fd, at, off, len) < 0)
		return NULL;
	k->head[H_SEG0 + 2 * n] = (double)off;
	k->head[H_SEG0 + 2 * n + 1] = (double)len;
	k->head[H_SEGS] = n + 1;
	k->used += len;
	return at;
}

/* the signature's trailer and, when the magic is there, what it describes before it; 0, or -1 */
static int pack_signature(struct packer *k)
{
	const uint64_t magic_len = sizeof SIG_MAGIC - 1, tail = magic_len + MODSIG_SIZE;
	const uint8_t *st;
	if (k->size < tail || (st = pack_read(k, k->size - tail, tail)) == NULL)
		return -1;
	if (memcmp(st + MODSIG_SIZE, SIG_MAGIC, magic_len) != 0)
		return 0;
	uint64_t described = (uint64_t)st[8] << 24 | (uint64_t)st[9] << 16 | (uint64_t)st[10] << 8 | st[11];
	uint64_t end = k->size - tail, start;
	described += (uint64_t)st[3] + st[4];
	start = described > end ? 0 : end - described;
	return pack_read(k, start, end - start) == NULL ? -1 : 0;
}

/*
 * The parts modinfo reads, packed: the ELF header, the section table and its names (with
 * elf_read_headers' and elf_open's checks), every section named .modinfo (the caller's lookup picks
 * one) and an appended signature; 0, or -1 where the file is to be read the usual way
 */
static int pack_parts(struct packer *k)
{
	const uint8_t *h = pack_read(k, 0, 64), *tab, *names;
	struct elf v, t, nv;
	uint64_t shoff, str_off, str_size;
	unsigned want, shnum, shstrndx;

	if (h == NULL || memcmp(h, "\x7f" "ELF", 4) != 0 || (h[4] != 1 && h[4] != 2) || (h[5] != 1 && h[5] != 2))
		return -1;
	memset(&v, 0, sizeof v);
	v.d = h;
	v.n = 64;
	v.is64 = h[4] == 2;
	v.le = h[5] == 1;
	want = v.is64 ? 64 : 40;
	shoff = v.is64 ? u64_at(&v, 40) : u32_at(&v, 32);
	shnum = u16_at(&v, v.is64 ? 60 : 48);
	shstrndx = u16_at(&v, v.is64 ? 62 : 50);
	if (u16_at(&v, v.is64 ? 58 : 46) != want || shstrndx == 0 || shstrndx >= shnum ||
	    (tab = pack_read(k, shoff, (uint64_t)want * shnum)) == NULL)
		return -1;
	/* the table's fields read where it was packed: offsets below are the table's own */
	t = v;
	t.d = tab;
	t.n = (size_t)want * shnum;
	section_range(&t, (uint64_t)shstrndx * want, &str_off, &str_size);
	if (str_size == 0 || u32_at(&t, (uint64_t)shstrndx * want) >= str_size || (names = pack_read(k, str_off, str_size)) == NULL ||
	    names[str_size - 1] != 0)
		return -1;
	/* the names where they were packed, for name_at */
	nv = v;
	nv.d = names;
	nv.n = (size_t)str_size;
	nv.str_off = 0;
	nv.str_size = str_size;
	for (unsigned i = 1; i < shnum; i++) {
		uint64_t ho = (uint64_t)i * want, name = u32_at(&t, ho), off, size;
		unsigned r = (unsigned)k->head[H_RANGES];
		if (name >= str_size || !name_at(&nv, name, ".modinfo"))
			continue;
		section_range(&t, ho, &off, &size);
		if (r == MP_MAX_RANGES || pack_read(k, off, size) == NULL)
			return -1;
		k->head[H_RANGE0 + 2 * r] = (double)off;
		k->head[H_RANGE0 + 2 * r + 1] = (double)size;
		k->head[H_RANGES] = r + 1;
	}
	return pack_signature(k);
}

/*
 * The parts of the regular file at fd, or of the decompressed image at mem (size bytes) packed into
 * out (cap bytes, its first PACK_HEAD the header): MP_READ (*used the bytes packed), MP_TOO_SMALL (the
 * parts need more than cap) or MP_FALLBACK
 */
static int pack_source(int fd, const uint8_t *mem, uint64_t size, uint8_t *out, uint64_t cap, uint64_t *used)
{
	struct packer k;
	*used = 0;
	if ((mem == NULL && size < MP_MIN_SIZE) || cap < PACK_HEAD)
		return MP_FALLBACK;
	memset(&k, 0, sizeof k);
	k.fd = fd;
	k.mem = mem;
	k.size = size;
	k.out = out;
	k.cap = cap;
	k.used = PACK_HEAD;
	k.head[H_SIZE] = (double)k.size;
	if (pack_parts(&k) < 0)
		return k.full ? MP_TOO_SMALL : MP_FALLBACK;
	memcpy(out, k.head, PACK_HEAD);
	*used = k.used;
	return MP_READ;
}

/*
 * pack_source of the file at fd (path), MP_FALLBACK where it is not a regular file. A compressed one
 * (by its magic, as libkmod tells) is decompressed into b's buffers first: modinfo of a compressed tree
 * then hands over ~4 KiB a module, not its image; anything the decoder refuses is the caller's to read.
 */
static int pack_file(int fd, const char *path, struct scan_buffers *b, uint8_t *out, uint64_t cap, uint64_t *used)
{
	struct stat st;
	struct decode_result t;
	uint8_t magic[6];
	*used = 0;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
		return MP_FALLBACK;
	if (st.st_size < (off_t)sizeof magic || pread_full(fd, magic, 0, sizeof magic) < 0 || decode_kind(magic, sizeof magic) == KIND_NONE)
		return pack_source(fd, NULL, (uint64_t)st.st_size, out, cap, used);
	if (scan_buffers_decode(b, path, fd, &t) < 0 || t.status != DECODE_OK)
		return MP_FALLBACK;
	return pack_source(-1, b->image, t.len, out, cap, used);
}

/* x is a whole number from 0 to max (NaN is not) */
static int whole_in(double x, double max)
{
	return x >= 0 && x <= max && x == (double)(uint64_t)x;
}

/*
 * The packed parts put at their own offsets in `into` (a buffer of the file's size or more; its other
 * bytes left as they are), and io as readModinfoParts gives it: MP_READ, MP_TOO_SMALL (io[0] the size
 * needed) or MP_FALLBACK (not a packing of this format)
 */
static int place_parts(const uint8_t *packed, size_t len, uint8_t *into, size_t cap, double *io)
{
	double head[H_DOUBLES];
	uint64_t at = PACK_HEAD, size;
	unsigned nsegs, nranges;
	if (len < PACK_HEAD)
		return MP_FALLBACK;
	memcpy(head, packed, PACK_HEAD);
	/* (each number checked as a double before it is converted: a conversion out of range is undefined) */
	if (!whole_in(head[H_SIZE], 0x1p52) || !whole_in(head[H_SEGS], MP_MAX_SEGS) || !whole_in(head[H_RANGES], MP_MAX_RANGES))
		return MP_FALLBACK;
	size = (uint64_t)head[H_SIZE];
	nsegs = (unsigned)head[H_SEGS];
	nranges = (unsigned)head[H_RANGES];
	io[0] = (double)size;
	if (size > cap)
		return MP_TOO_SMALL;
	for (unsigned s = 0; s < nsegs; s++) {
		double off_d = head[H_SEG0 + 2 * s], n_d = head[H_SEG0 + 2 * s + 1];
		if (!whole_in(off_d, (double)size) || !whole_in(n_d, (double)(size - (uint64_t)off_d)))
			return MP_FALLBACK;
		uint64_t off = (uint64_t)off_d, n = (uint64_t)n_d;
		if (n > len - at)
			return MP_FALLBACK;
		memcpy(into + off, packed + at, n);
		at += n;
	}
	io[1] = nranges;
	for (unsigned r = 0; r < 2 * nranges; r++)
		io[2 + r] = head[H_RANGE0 + r];
	return MP_READ;
}

/* the packed parts read on the JavaScript thread: a stack buffer, or a larger one from the heap */
#define STACK_PACK (32u << 10)
#define HEAP_PACK (4u << 20)

/* the parts of the file at fd into `into` at their offsets, io as readModinfoParts gives it */
static int read_parts_into(int fd, uint8_t *into, size_t cap, double *io)
{
	uint8_t stack_out[STACK_PACK], *heap = NULL;
	uint64_t size, used;
	struct stat st;
	const uint8_t *packed = stack_out;
	int status;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
		return MP_FALLBACK;
	size = (uint64_t)st.st_size;
	io[0] = (double)size;
	/* whether `into` can hold the file is answered before anything is read */
	if (size >= MP_MIN_SIZE && size > cap)
		return MP_TOO_SMALL;
	status = pack_source(fd, NULL, size, stack_out, sizeof stack_out, &used);
	if (status == MP_TOO_SMALL) {
		heap = malloc(HEAP_PACK);
		status = heap == NULL ? MP_FALLBACK : pack_source(fd, NULL, size, heap, HEAP_PACK, &used);
		packed = heap;
		if (status == MP_TOO_SMALL)
			status = MP_FALLBACK;
	}
	if (status == MP_READ)
		status = place_parts(packed, used, into, cap, io);
	free(heap);
	return status;
}

/* a batch's record of one file: whether its parts follow, and their length (then the parts, padded to 8 bytes) */
enum { REC_READ, REC_BYTES, REC_DOUBLES };
#define REC_HEAD (REC_DOUBLES * sizeof(double))

/*
 * read_batch.c's modinfo mode, on a pool thread: the parts of each file of `paths` (n bytes, the paths
 * joined by NULs; compressed ones decompressed into b's buffers first) packed into r's image
 * (DECODE_PARTS, r->len the bytes used): first a table of doubles, for each file the byte where its
 * record starts (-1: none), then the records. A file that is to be read the usual way (an error, not
 * plain ELF, a stream the decoder refuses, parts larger than the room left) has a record without parts;
 * the files after the buffer is full have none. The caller reads those itself, and every verdict is
 * then the usual path's.
 */
void modinfo_parts_read_files(const char *paths, size_t n, struct decode_result *r, struct scan_buffers *b)
{
	size_t files = 1, k = 0;
	uint64_t at;
	r->kind = KIND_NONE;
	r->status = DECODE_PARTS;
	r->err = 0;
	r->raw_len = 0;
	r->len = 0;
	stat_key_none(r->key);
	for (size_t i = 0; i < n; i++)
		files += paths[i] == 0;
	if (r->image == NULL || r->cap < files * sizeof(double))
		return;
	at = files * sizeof(double);
	for (size_t start = 0; k < files; k++) {
		/* (the path ends at its NUL, the last one at paths + n, which is one) */
		const char *path = paths + start;
		double rec[REC_DOUBLES] = { 0, 0 }, where = -1;
		uint64_t used = 0;
		start += strlen(path) + 1;
		if (at > r->cap || r->cap - at < REC_HEAD) {
			memcpy(r->image + k * sizeof(double), &where, sizeof where);
			continue;
		}
		/* (a FIFO put there since the caller's stat must not hold the pool thread: pack_file refuses it) */
		int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
		if (fd >= 0) {
			if (pack_file(fd, path, b, r->image + at + REC_HEAD, r->cap - at - REC_HEAD, &used) == MP_READ) {
				rec[REC_READ] = 1;
				rec[REC_BYTES] = (double)used;
			} else
				used = 0;
			close(fd);
		}
		memcpy(r->image + at, rec, REC_HEAD);
		where = (double)at;
		memcpy(r->image + k * sizeof(double), &where, sizeof where);
		at += REC_HEAD + ((used + 7) & ~(uint64_t)7);
	}
	r->len = (size_t)(at < r->cap ? at : r->cap);
}

/*
 * readModinfoParts(path: string, into: Uint8Array, io: Float64Array): 1 read (io[0] the file's size,
 * io[1] the number of .modinfo sections read, then offset and size of each), 2 `into` is smaller than
 * the file (io[0] its size), 0 read it the usual way. The path is a binary string (its bytes).
 */
static napi_value read_modinfo_parts_js(napi_env env, napi_callback_info info)
{
	size_t argc = 3, len, cap_len, io_len;
	napi_value argv[3], result;
	void *into, *io;
	char stack_path[4096], *path = stack_path;
	int status = MP_FALLBACK;

	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 ||
	    napi_get_value_string_latin1(env, argv[0], NULL, 0, &len) != napi_ok) {
		napi_throw_type_error(env, NULL, "readModinfoParts: path must be a string");
		return NULL;
	}
	if (typed_array_arg(env, "readModinfoParts", argv[1], napi_uint8_array, &into, &cap_len) < 0 ||
	    typed_array_arg(env, "readModinfoParts", argv[2], napi_float64_array, &io, &io_len) < 0)
		return NULL;
	if (io_len < 2 + 2 * MP_MAX_RANGES) {
		napi_throw_range_error(env, NULL, "readModinfoParts: io is too short");
		return NULL;
	}
	if (len + 1 > sizeof stack_path && (path = malloc(len + 1)) == NULL) {
		napi_throw_error(env, NULL, "readModinfoParts: out of memory");
		return NULL;
	}
	napi_get_value_string_latin1(env, argv[0], path, len + 1, &len);
	/* a path with a NUL in it names no file: the usual way says so */
	int fd = strlen(path) == len ? open(path, O_RDONLY | O_CLOEXEC) : -1;
	double *out = io;
	out[0] = 0;
	out[1] = 0;
	if (fd >= 0) {
		status = read_parts_into(fd, into, cap_len, out);
		close(fd);
	}
	if (path != stack_path)
		free(path);
	napi_create_int32(env, status, &result);
	return result;
}

/*
 * hexColumns(bytes): the bytes as modinfo prints a signature or a key id (src/file/signature.ts'
 * hexString): upper-case pairs joined by ':', with ":\n\t\t" after every 20th. modinfo of every
 * module of a tree formats a 512-byte signature per module, and its JavaScript runs unoptimized there
 * (bin/kmodts.js): ~15 us a signature in JavaScript, under one here.
 */
#define HEX_ROW 20
static napi_value hex_columns_js(napi_env env, napi_callback_info info)
{
	static const char digits[] = "0123456789ABCDEF";
	size_t argc = 1, n;
	napi_value argv[1], result = NULL;
	void *data;
	char stack_out[2048], *out = stack_out;

	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1) {
		napi_throw_type_error(env, NULL, "hexColumns: bytes must be a Uint8Array");
		return NULL;
	}
	if (typed_array_arg(env, "hexColumns", argv[0], napi_uint8_array, &data, &n) < 0)
		return NULL;
	/* 3 characters a byte (the last has no ':'), and 3 more for each line break */
	size_t cap = 3 * n + 3 * (n / HEX_ROW) + 1;
	if (cap > sizeof stack_out && (out = malloc(cap)) == NULL) {
		napi_throw_error(env, NULL, "hexColumns: out of memory");
		return NULL;
	}
	const uint8_t *b = data;
	size_t len = 0;
	for (size_t i = 0; i < n; i++) {
		if (i > 0) {
			out[len++] = ':';
			if (i % HEX_ROW == 0) {
				out[len++] = '\n';
				out[len++] = '\t';
				out[len++] = '\t';
			}
		}
		out[len++] = digits[b[i] >> 4];
		out[len++] = digits[b[i] & 15];
	}
	if (napi_create_string_latin1(env, out, len, &result) != napi_ok)
		napi_throw_error(env, NULL, "hexColumns: cannot make the string");
	if (out != stack_out)
		free(out);
	return result;
}

/*
 * placeModinfoParts(batch: Uint8Array, at: number, into: Uint8Array, io: Float64Array): the parts of the
 * file whose record (modinfo_parts_read_files) starts at byte `at` of a batch put at their offsets in
 * `into`; the result and io as readModinfoParts gives them (MP_FALLBACK for a record without parts)
 */
static napi_value place_modinfo_parts_js(napi_env env, napi_callback_info info)
{
	size_t argc = 4, batch_len, cap, io_len;
	napi_value argv[4], result;
	void *batch, *into, *io;
	double at = -1;
	int status = MP_FALLBACK;

	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4 ||
	    napi_get_value_double(env, argv[1], &at) != napi_ok) {
		napi_throw_type_error(env, NULL, "placeModinfoParts: missing arguments");
		return NULL;
	}
	if (typed_array_arg(env, "placeModinfoParts", argv[0], napi_uint8_array, &batch, &batch_len) < 0 ||
	    typed_array_arg(env, "placeModinfoParts", argv[2], napi_uint8_array, &into, &cap) < 0 ||
	    typed_array_arg(env, "placeModinfoParts", argv[3], napi_float64_array, &io, &io_len) < 0)
		return NULL;
	if (io_len < 2 + 2 * MP_MAX_RANGES) {
		napi_throw_range_error(env, NULL, "placeModinfoParts: io is too short");
		return NULL;
	}
	if (whole_in(at, (double)batch_len) && (size_t)at % 8 == 0 && batch_len - (size_t)at >= REC_HEAD) {
		double rec[REC_DOUBLES];
		size_t from = (size_t)at + REC_HEAD;
		memcpy(rec, (const uint8_t *)batch + (size_t)at, REC_HEAD);
		if (rec[REC_READ] == 1 && rec[REC_BYTES] >= 0 && rec[REC_BYTES] <= (double)(batch_len - from))
			status = place_parts((const uint8_t *)batch + from, (size_t)rec[REC_BYTES], into, cap, io);
	}
	napi_create_int32(env, status, &result);
	return result;
}

napi_status modinfo_parts_register(napi_env env, napi_value exports)
{
	const napi_property_descriptor props[] = {
		{ "readModinfoParts", NULL, read_modinfo_parts_js, NULL, NULL, NULL, napi_enumerable, NULL },
		{ "placeModinfoParts", NULL, place_modinfo_parts_js, NULL, NULL, NULL, napi_enumerable, NULL },
		{ "hexColumns", NULL, hex_columns_js, NULL, NULL, NULL, napi_enumerable, NULL },
	};
	napi_status st = napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
	/* the batch's modinfo mode decompresses compressed files (batch-read.ts modinfoPartsDecode) */
	return st != napi_ok ? st : define_int32(env, exports, "modinfoPartsDecode", 1);
}
