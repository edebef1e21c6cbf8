/*
 * depmod's whole scan of one module in C (src/depmod/module-scan.ts scanModuleImage's results): the
 * ELF header and section-table checks of src/file/elf.ts, its section lookup, the alias=, softdep=
 * and weakdep= values of .modinfo, and module_symbols.c's symbol scan. It runs on the pool thread that
 * read and decoded the file (read_batch.c), so that only the scan's strings and numbers reach
 * JavaScript, never the image: on the cloud tree as .ko.zst, the images' copies, the page faults of
 * their fresh buffers, their scan and the collections they caused were most of depmod's main thread
 * (docs/decisions.md, issue 14).
 *
 * An uncompressed module is read in parts (read_parts: only what the scan reads, each at its offset of
 * the job's buffer); compressed ones are read whole and decoded into the job's other buffer.
 *
 * It handles the well-formed case only. Anything the JavaScript scan treats otherwise (a header check
 * failing, an offset outside the image, a library missing, gzip, a decoding error) hands the file's
 * bytes and image to JavaScript as read_batch.c always did, so that every verdict and message still
 * comes from the code that matches kmod. Being stricter than JavaScript is safe; accepting what it
 * rejects is not.
 *
 * The block handed back (native-scan.ts reads it), in the host's byte order:
 *   u32 counts[12]: aliases, softdeps, weakdeps, exports, imports, import name bytes, errno, string
 *   bytes; 1 when the block has alias pieces (else 0), their line bytes and key bytes, and a 0
 *   the strings: every alias, softdep, weakdep and export name, in that order, joined by NULs
 *   zero padding to a multiple of 8
 *   the numbers as ScanStore keeps them (scan-store.ts scanNumbers): export CRCs and import CRCs
 *   (f64), import keys (i32), import name lengths (u32), weak flags (u8), import names joined by NULs
 *   where the block has alias pieces (alias-files.ts AliasPieces, made here when the file's path is
 *   known and no alias needs a message): zero padding to a multiple of 8, a u32 key length per
 *   alias, the modules.alias lines, the keys
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <node_api.h>
#include "alias_pieces.h"
#include "decode_napi.h"
#include "elf_image.h"
#include "module_scan.h"
#include "module_symbols.h"
#include "napi_args.h"
#include "vec.h"

#define EM_SPARC 2
#define EM_SPARCV9 43
#define HEADER_WORDS 12
/* a job's buffers for a file's bytes and for its image (scan_read_file) */
#define RAW_RESERVE ((size_t)32 << 20)
#define IMAGE_RESERVE ((size_t)64 << 20)

/* the sections depmod reads (module-scan.ts WANTED), in the order of module_symbols.h's IN_* pairs */
enum { SEC_STRTAB, SEC_SYMTAB, SEC_VERSIONS, SEC_MODINFO, SEC_KSYMTAB_STRINGS, SEC_COUNT };
static const char *const wanted[SEC_COUNT] = { ".strtab", ".symtab", "__versions", ".modinfo", "__ksymtab_strings" };

/* Elf.findSectionRangesInto over `wanted`: offset and size of each (0 and 0 when absent, as module-scan.ts) */
static void find_sections(const struct elf *e, uint64_t sec[2 * SEC_COUNT])
{
	int left = SEC_COUNT, found[SEC_COUNT] = { 0 };
	memset(sec, 0, 2 * SEC_COUNT * sizeof sec[0]);
	for (unsigned i = 1; i < e->shnum && left > 0; i++) {
		uint64_t ho = e->shoff + (uint64_t)i * e->shentsize, name = u32_at(e, ho), off, size;
		if (name >= e->str_size)
			continue;
		for (int k = 0; k < SEC_COUNT; k++) {
			if (found[k] || !name_at(e, e->str_off + name, wanted[k]))
				continue;
			section_range(e, ho, &off, &size);
			/* an invalid header does not count: a later section of the name may */
			if (!range_valid(e, off, size))
				break;
			sec[2 * k] = off;
			sec[2 * k + 1] = size;
			found[k] = 1;
			left--;
		}
	}
}

/* this thread's [start, end) pairs of the modinfo values of each key, kept from module to module */
static _Thread_local vec_t values[3];
static _Thread_local size_t n_values[3];
/* this thread's alias pieces of the module just scanned, and whether it has them */
static _Thread_local struct alias_pieces pieces;
static _Thread_local int has_pieces;

static int add_value(int list, size_t start, size_t end)
{
	if (vec_reserve(&values[list], 2 * (n_values[list] + 1), sizeof(size_t)))
		return -1;
	VEC(values[list], size_t)[2 * n_values[list]] = start;
	VEC(values[list], size_t)[2 * n_values[list] + 1] = end;
	n_values[list]++;
	return 0;
}

/* module-scan.ts modinfo(): the alias=, softdep= and weakdep= values at off (size bytes); -1 out of memory */
static int modinfo_values(const uint8_t *d, size_t off, size_t size)
{
	static const char *const keys[3] = { "alias", "softdep", "weakdep" };
	size_t end = off + size;
	n_values[0] = n_values[1] = n_values[2] = 0;
	/* an absent section, or one at offset 0, has no strings for libkmod */
	if (off == 0)
		return 0;
	for (size_t start = off; start < end;) {
		const uint8_t *p = memchr(d + start, 0, end - start);
		size_t nul = p == NULL ? end : (size_t)(p - d);
		int list = d[start] == 'a' ? 0 : d[start] == 's' ? 1 : d[start] == 'w' ? 2 : -1;
		if (nul > start && list >= 0) {
			size_t len = strlen(keys[list]);
			if (nul - start >= len && memcmp(d + start, keys[list], len) == 0 && (start + len == nul || d[start + len] == '=')) {
				size_t v = start + len;
				if (add_value(list, v == nul ? v : v + 1, nul))
					return -1;
			}
		}
		start = nul + 1;
	}
	return 0;
}

/* the scan of image d: 0 (values and *sym set), or -1 to leave the file to JavaScript */
static int scan_image(const uint8_t *d, size_t n, struct symbols_found *sym)
{
	struct elf e;
	uint64_t sec[2 * SEC_COUNT];
	double in[IN_COUNT];

	if (elf_open(&e, d, n) < 0)
		return -1;
	find_sections(&e, sec);
	/* module-scan.ts keeps them in a Uint32Array: anything larger would differ there */
	for (int k = 0; k < 2 * SEC_COUNT; k++)
		if (sec[k] > UINT32_MAX)
			return -1;
	if (modinfo_values(d, (size_t)sec[2 * SEC_MODINFO], (size_t)sec[2 * SEC_MODINFO + 1]) < 0)
		return -1;
	in[IN_STRTAB] = (double)sec[2 * SEC_STRTAB];
	in[IN_STRTAB_SIZE] = (double)sec[2 * SEC_STRTAB + 1];
	in[IN_SYMTAB] = (double)sec[2 * SEC_SYMTAB];
	in[IN_SYMTAB_SIZE] = (double)sec[2 * SEC_SYMTAB + 1];
	in[IN_VERSIONS] = (double)sec[2 * SEC_VERSIONS];
	in[IN_VERSIONS_SIZE] = (double)sec[2 * SEC_VERSIONS + 1];
	in[IN_KSYMTAB_STRINGS] = (double)sec[2 * SEC_KSYMTAB_STRINGS];
	in[IN_KSYMTAB_STRINGS_SIZE] = (double)sec[2 * SEC_KSYMTAB_STRINGS + 1];
	in[IN_IS64] = e.is64;
	in[IN_LE] = e.le;
	in[IN_SPARC] = e.machine == EM_SPARC || e.machine == EM_SPARCV9;
	in[IN_SHOFF] = (double)e.shoff;
	in[IN_SHENTSIZE] = e.shentsize;
	in[IN_SHNUM] = e.shnum;
	in[IN_SHSTRTAB_SIZE] = (double)e.str_size;
	return symbols_scan(d, n, in, sym) == 0 ? 0 : -1;
}

/* bytes of the strings part of the block: every value and export name, NUL-joined */
static size_t strings_size(const struct symbols_found *sym, size_t *count)
{
	size_t bytes = 0, k;
	*count = 0;
	for (int list = 0; list < 3; list++)
		for (k = 0; k < n_values[list]; k++, (*count)++)
			bytes += VEC(values[list], size_t)[2 * k + 1] - VEC(values[list], size_t)[2 * k];
	for (k = 0; k < sym->n_exports; k++, (*count)++)
		bytes += sym->ranges[2 * k + 1] - sym->ranges[2 * k];
	return *count > 0 ? bytes + *count - 1 : 0;
}

static size_t pad8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

/* the bytes of the alias pieces part of the block (after the numbers' padding), 0 without pieces */
static size_t pieces_size(void)
{
	return has_pieces ? 4 * pieces.n_lengths + pieces.n_lines + pieces.n_keys : 0;
}

/* the block's size for the scan just made */
static size_t block_size(const struct symbols_found *sym, size_t *strings)
{
	size_t count, e = sym->n_exports, i = sym->n_imports, end;
	*strings = strings_size(sym, &count);
	end = pad8(HEADER_WORDS * 4 + *strings) + 8 * (e + i) + 8 * i + i + (i > 0 ? sym->n_bytes : 0);
	return has_pieces ? pad8(end) + pieces_size() : end;
}

/* appends d[start..end) to out at *pos, after a NUL unless it is the first string */
static void put_string(uint8_t *out, size_t *pos, size_t *count, const uint8_t *d, size_t start, size_t end)
{
	if ((*count)++ > 0)
		out[(*pos)++] = 0;
	memcpy(out + *pos, d + start, end - start);
	*pos += end - start;
}

/* the block (block_size bytes at out) for the scan of image d just made */
static void write_block(uint8_t *out, size_t strings, const uint8_t *d, const struct symbols_found *sym)
{
	uint32_t head[HEADER_WORDS] = { (uint32_t)n_values[0], (uint32_t)n_values[1], (uint32_t)n_values[2], (uint32_t)sym->n_exports,
		(uint32_t)sym->n_imports, (uint32_t)(sym->n_imports > 0 ? sym->n_bytes : 0), (uint32_t)sym->err, (uint32_t)strings,
		(uint32_t)has_pieces, (uint32_t)(has_pieces ? pieces.n_lines : 0), (uint32_t)(has_pieces ? pieces.n_keys : 0), 0 };
	size_t pos = sizeof head, count = 0, e = sym->n_exports, i = sym->n_imports, k;
	memcpy(out, head, sizeof head);
	for (int list = 0; list < 3; list++)
		for (k = 0; k < n_values[list]; k++)
			put_string(out, &pos, &count, d, VEC(values[list], size_t)[2 * k], VEC(values[list], size_t)[2 * k + 1]);
	for (k = 0; k < e; k++)
		put_string(out, &pos, &count, d, sym->ranges[2 * k], sym->ranges[2 * k + 1]);
	memset(out + pos, 0, pad8(pos) - pos);
	pos = pad8(pos);
	if (e > 0)
		memcpy(out + pos, sym->crcs, 8 * e);
	pos += 8 * e;
	if (i > 0) {
		memcpy(out + pos, sym->icrcs, 8 * i);
		memcpy(out + pos + 8 * i, sym->keys, 4 * i);
		memcpy(out + pos + 12 * i, sym->lengths, 4 * i);
		memcpy(out + pos + 16 * i, sym->weak, i);
		memcpy(out + pos + 17 * i, sym->bytes, sym->n_bytes);
		pos += 17 * i + sym->n_bytes;
	}
	if (!has_pieces)
		return;
	memset(out + pos, 0, pad8(pos) - pos);
	pos = pad8(pos);
	/* (an empty vec may have no array yet) */
	if (pieces.n_lengths > 0)
		memcpy(out + pos, pieces.lengths.p, 4 * pieces.n_lengths);
	pos += 4 * pieces.n_lengths;
	if (pieces.n_lines > 0)
		memcpy(out + pos, pieces.lines.p, pieces.n_lines);
	if (pieces.n_keys > 0)
		memcpy(out + pos + pieces.n_lines, pieces.keys.p, pieces.n_keys);
}

/* the alias pieces of the scan of image d just made, for the module at path (NULL: none); 0, or -1 out of memory */
static int make_pieces(const uint8_t *d, const char *path)
{
	int made = path == NULL ? 0 : alias_pieces_make(&pieces, d, VEC(values[0], size_t), n_values[0], path);
	has_pieces = made == 1;
	return made < 0 ? -1 : 0;
}

/* n bytes of src into the caller's buffer (*dst, *cap bytes) when they fit, else into a block of its own */
static int hand_over(const uint8_t *src, size_t n, uint8_t **dst, size_t *cap, int *owned)
{
	if (*dst == NULL || n > *cap) {
		uint8_t *p = decode_alloc(n > 0 ? n : 1);
		if (p == NULL)
			return -1;
		*dst = p;
		*cap = n > 0 ? n : 1;
		*owned = 1;
	}
	if (n > 0)
		memcpy(*dst, src, n);
	return 0;
}

/* a block of this thread's buffers given up for a larger one the decoder made (it owns it) */
static void adopt(uint8_t **buf, size_t *cap, struct decode_result *t, int raw)
{
	if (raw ? !t->raw_owned : !t->owned)
		return;
	decode_free(*buf, *cap);
	*buf = raw ? t->raw : t->image;
	*cap = raw ? t->raw_cap : t->cap;
}

/* the scan of image d just made (of the module at path), as the block in r (DECODE_SCANNED); 0, or -1 out of memory */
static int put_block(struct decode_result *r, const uint8_t *d, const struct symbols_found *sym, const char *path)
{
	size_t strings, size;
	if (make_pieces(d, path) < 0)
		return -1;
	size = block_size(sym, &strings);
	/* into the caller's buffer when it fits, else a block of its own (which JavaScript then takes) */
	if (r->image == NULL || size > r->cap) {
		uint8_t *out = decode_alloc(size);
		if (out == NULL)
			return -1;
		r->image = out;
		r->cap = size;
		r->owned = 1;
	}
	write_block(r->image, strings, d, sym);
	r->len = size;
	r->status = DECODE_SCANNED;
	return 0;
}

/*
 * The CRC words resolve_crc (module_symbols.c) reads: for each __crc_ symbol defined in a section, the
 * 32-bit word at its value there (a superset: every such symbol, whether or not its CRC is used),
 * read in one span. 0, or -1.
 */
static int read_crc_words(int fd, const struct elf *e, const uint64_t sec[2 * SEC_COUNT])
{
	uint64_t sym_off = sec[2 * SEC_SYMTAB], sym_end = sym_off + sec[2 * SEC_SYMTAB + 1];
	uint64_t str_off = sec[2 * SEC_STRTAB], str_size = sec[2 * SEC_STRTAB + 1], lo = UINT64_MAX, hi = 0;
	unsigned symlen = e->is64 ? 24 : 16;

	if (sym_off == 0 || str_off == 0 || (sym_end - sym_off) % symlen != 0)
		return 0;
	for (uint64_t o = sym_off + symlen; o + symlen <= sym_end; o += symlen) {
		uint64_t name = u32_at(e, o), value = e->is64 ? u64_at(e, o + 8) : u32_at(e, o + 4), off, size;
		unsigned shndx = u16_at(e, o + (e->is64 ? 6 : 14));
		if (name >= str_size || str_off + name + 6 > e->n || memcmp(e->d + str_off + name, "__crc_", 6) != 0)
			continue;
		if (shndx == 0 || shndx == 0xfff1 || shndx >= e->shnum)
			continue;
		section_range(e, e->shoff + (uint64_t)shndx * e->shentsize, &off, &size);
		if (!range_valid(e, off, size) || size < 4 || value > size - 4)
			continue;
		lo = off + value < lo ? off + value : lo;
		hi = off + value + 4 > hi ? off + value + 4 : hi;
	}
	return lo < hi ? pread_at(fd, (uint8_t *)e->d, lo, hi - lo) : 0;
}

/*
 * An uncompressed module's parts that the scan reads, each at its own offset of buf (the file's size,
 * n bytes): the ELF header, the section table, the section names, the five sections and the CRC words.
 * Every read of scan_image then falls inside them: names end at .strtab's last NUL (required here),
 * __versions names within their entries, __ksymtab_strings at its last NUL (else EINVAL before any
 * read), .modinfo within itself. So the rest of buf (bytes of earlier files) is never looked at.
 * 0 when the scan may run on buf; -1 when the file is to be read whole (not an ELF file by these
 * checks, a .strtab without its final NUL, a read short of what fstat said).
 */
static int read_parts(int fd, uint8_t *buf, size_t n)
{
	struct elf e;
	uint64_t sec[2 * SEC_COUNT];

	if (elf_read_headers(fd, buf, n, &e) < 0)
		return -1;
	find_sections(&e, sec);
	for (int k = 0; k < SEC_COUNT; k++)
		if (pread_at(fd, buf, sec[2 * k], sec[2 * k + 1]) < 0)
			return -1;
	if (sec[2 * SEC_STRTAB + 1] > 0 && buf[sec[2 * SEC_STRTAB] + sec[2 * SEC_STRTAB + 1] - 1] != 0)
		return -1;
	return read_crc_words(fd, &e, sec);
}

/*
 * An uncompressed module scanned from only the parts the scan reads (read_parts): 0 when done (r holds
 * the block), -1 when the file is to be read whole as any other (then every verdict is that path's).
 * A cloud .ko is ~100 KB of which the scan reads about a third; read() was 65 of the pool's 110 ms.
 */
static int scan_parts(const char *path, struct decode_result *r, struct scan_buffers *b)
{
	struct symbols_found sym;
	struct stat st;
	size_t len = strlen(path);
	int fd, done = -1;

	/* (compressed files are read whole: the name spares them an open and a read here) */
	if (len < 3 || strcmp(path + len - 3, ".ko") != 0 || (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= 64 && (uint64_t)st.st_size <= b->raw_cap &&
	    read_parts(fd, b->raw, (size_t)st.st_size) == 0 && scan_image(b->raw, (size_t)st.st_size, &sym) == 0 &&
	    put_block(r, b->raw, &sym, path) == 0) {
		/* (the fstat before the reads, as read_file's) */
		stat_key_of(&st, r->key);
		r->kind = KIND_NONE;
		done = 0;
	}
	close(fd);
	return done;
}

/*
 * address space for the largest modules at once, not grown from file to file: a page is touched
 * (and faulted in) once per job instead of once per larger buffer, and page faults were a sixth of
 * depmod's CPU time on the cloud tree as .ko.zst (untouched pages cost nothing)
 */
static void reserve(struct scan_buffers *b)
{
	if (b->raw == NULL && (b->raw = decode_alloc(RAW_RESERVE)) != NULL)
		b->raw_cap = RAW_RESERVE;
	if (b->image == NULL && (b->image = decode_alloc(IMAGE_RESERVE)) != NULL)
		b->image_cap = IMAGE_RESERVE;
}

int scan_buffers_decode(struct scan_buffers *b, const char *path, int fd, struct decode_result *t)
{
	int got;
	reserve(b);
	memset(t, 0, sizeof *t);
	/*
	 * read into this job's buffer: mapping the file instead (libkmod maps uncompressed modules) was
	 * measured slower here for every kind, the munmap of each file costing more than the copy it saves
	 */
	t->raw = b->raw;
	t->raw_cap = b->raw_cap;
	t->populate = 1;
	t->raw_touched = b->raw_touched;
	got = fd >= 0 ? read_fd(fd, t) : read_file(path, t);
	adopt(&b->raw, &b->raw_cap, t, 1);
	b->raw_touched = t->raw_touched;
	t->raw_owned = 0;
	if (got < 0)
		return -1;
	/* the image in this job's buffer too (a larger one the decoder makes for a larger module is kept) */
	t->image = b->image;
	t->cap = b->image_cap;
	t->touched = b->image_touched;
	decode_bytes(b->raw, t->raw_len, t);
	/* (decode_zstd sets cap to the frame's size even in the caller's buffer: the block's own is kept) */
	if (t->status == DECODE_OK && t->owned)
		adopt(&b->image, &b->image_cap, t, 0);
	/* (a block the decoder made and freed again, refusing the stream, is not this job's) */
	if (t->image == b->image)
		b->image_touched = t->touched;
	t->owned = 0;
	return 0;
}

/*
 * The file as read_batch.c's decode_read_file gives it (r: the caller's buffers), except that a file
 * scanned here comes back as the scan's block (DECODE_SCANNED) in place of its image.
 */
void scan_read_file(const char *path, struct decode_result *r, struct scan_buffers *b)
{
	struct decode_result t;
	struct symbols_found sym;
	const uint8_t *image;
	size_t len;
	int got;

	reserve(b);
	if (scan_parts(path, r, b) == 0)
		return;
	got = scan_buffers_decode(b, path, -1, &t);
	/* (the key read_file took, or the words that say there is none) */
	memcpy(r->key, t.key, sizeof r->key);
	if (got < 0) {
		r->status = DECODE_READ_FAILED;
		r->err = t.err;
		return;
	}
	if (t.status == DECODE_OK) {
		image = b->image;
		len = t.len;
	} else {
		image = b->raw;
		len = t.raw_len;
	}
	r->kind = t.kind;
	/* libkmod needs the 6 bytes of the longest magic before it looks at a file (pool-scan.ts) */
	if (t.raw_len >= 6 && (t.status == DECODE_OK || (t.status == DECODE_NOT_COMPRESSED && t.kind == KIND_NONE)) &&
	    scan_image(image, len, &sym) == 0 && put_block(r, image, &sym, path) == 0)
		return;
	/* everything else as decode_read_file has it: the bytes, and the image where there is one */
	r->status = t.status;
	r->err = t.err;
	r->fn = t.fn;
	memcpy(r->detail, t.detail, sizeof r->detail);
	if (hand_over(b->raw, t.raw_len, &r->raw, &r->raw_cap, &r->raw_owned) < 0 ||
	    (t.status == DECODE_OK && hand_over(b->image, t.len, &r->image, &r->cap, &r->owned) < 0)) {
		r->status = DECODE_READ_FAILED;
		r->err = ENOMEM;
		return;
	}
	r->raw_len = t.raw_len;
	r->len = t.status == DECODE_OK ? t.len : 0;
}

void scan_buffers_free(struct scan_buffers *b)
{
	decode_free(b->raw, b->raw_cap);
	decode_free(b->image, b->image_cap);
	memset(b, 0, sizeof *b);
}

/*
 * scanImage(image: Uint8Array, into: Uint8Array, path?: binary string): number
 * The scan of a decompressed image as a block in `into`: its size (nothing written when that is more
 * than into's length: call again with a larger one), or -1 when the image is left to JavaScript. With
 * `path`, the block has the alias pieces of the module at that path, as on the pool.
 * (Tests and the fuzz target compare it with module-scan.ts; depmod scans on the pool.)
 */
static napi_value scan_image_js(napi_env env, napi_callback_info info)
{
	napi_value argv[3], out;
	size_t argc = 3, n, cap, strings, size, len = 0;
	void *image, *into;
	struct symbols_found sym;
	double result = -1;
	char *path = NULL;

	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2) {
		napi_throw_type_error(env, NULL, "scanImage: missing arguments");
		return NULL;
	}
	if (typed_array_arg(env, "scanImage", argv[0], napi_uint8_array, &image, &n) ||
	    typed_array_arg(env, "scanImage", argv[1], napi_uint8_array, &into, &cap))
		return NULL;
	if (argc >= 3 && napi_get_value_string_latin1(env, argv[2], NULL, 0, &len) == napi_ok) {
		if ((path = malloc(len + 1)) == NULL) {
			napi_throw_error(env, NULL, "out of memory");
			return NULL;
		}
		napi_get_value_string_latin1(env, argv[2], path, len + 1, &len);
	}
	if (n >= 6 && scan_image(image, n, &sym) == 0 && make_pieces(image, path) == 0) {
		size = block_size(&sym, &strings);
		if (size <= cap)
			write_block(into, strings, image, &sym);
		result = (double)size;
	}
	free(path);
	if (napi_create_double(env, result, &out) != napi_ok)
		return NULL;
	return out;
}

/* the format of the blocks (native-scan.ts SCAN_BLOCK_FORMAT): 2 with the 12-word header above (an addon that made 8-word ones said `true`) */
#define BLOCK_FORMAT 2

napi_status module_scan_register(napi_env env, napi_value exports)
{
	const napi_property_descriptor props[] = {
		{ "scanImage", NULL, scan_image_js, NULL, NULL, NULL, napi_enumerable, NULL },
	};
	napi_status s = napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
	/* readerSubmit's `scan` argument is understood, and the blocks' format (an older addon ignores it and sends images) */
	return s != napi_ok ? s : define_int32(env, exports, "readerScans", BLOCK_FORMAT);
}
