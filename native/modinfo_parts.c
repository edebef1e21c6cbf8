/*
 * modinfo's reading of an uncompressed module file in one call (src/file/modinfo-parts.ts): open, the
 * ELF header, fstat, the section header table, the section names, each section named .modinfo and an
 * appended signature, each read at its own offset into the caller's buffer, then close. In JavaScript
 * these were a dozen fs calls per file, and modinfo of every module of a tree pays them per module
 * (docs/decisions.md, issue 14). Nothing here decides a verdict: whatever is unusual (an error, not
 * ELF, a table outside the file, a short read) gives MP_FALLBACK, and the caller reads the file the
 * usual way, so that messages and errors stay the full reader's. The headers are read and checked as
 * depmod's scan reads them (elf_image.c); the caller still parses them (src/file/elf.ts) on what was
 * read.
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
#include "elf_image.h"
#include "modinfo_parts.h"
#include "napi_args.h"

/* the results of read_modinfo_parts */
enum { MP_FALLBACK = 0, MP_READ = 1, MP_TOO_SMALL = 2 };

/* below a page, reading the whole file costs the same */
#define MP_MIN_SIZE 4096
/* the .modinfo sections whose ranges are reported (a module has one) */
#define MP_MAX_RANGES 4
/* a signed module's trailer: struct module_signature (12 bytes) then the magic */
static const char SIG_MAGIC[] = "~Module signature appended~\n";
#define MODSIG_SIZE 12

struct parts {
	uint64_t size;
	/* offset and size of each .modinfo section read */
	uint64_t ranges[2 * MP_MAX_RANGES];
	unsigned nranges;
};

/* the sections named .modinfo read (all of them: the caller's lookup picks one); 0, or -1 */
static int read_modinfo_sections(int fd, uint8_t *b, const struct elf *e, struct parts *p)
{
	for (unsigned i = 1; i < e->shnum; i++) {
		uint64_t ho = e->shoff + (uint64_t)i * e->shentsize, name = u32_at(e, ho), off, size;
		if (name >= e->str_size || !name_at(e, e->str_off + name, ".modinfo"))
			continue;
		section_range(e, ho, &off, &size);
		if (!range_valid(e, off, size) || p->nranges == MP_MAX_RANGES || pread_at(fd, b, off, size) < 0)
			return -1;
		p->ranges[2 * p->nranges] = off;
		p->ranges[2 * p->nranges + 1] = size;
		p->nranges++;
	}
	return 0;
}

/* the signature's trailer and, when the magic is there, what it describes before it; 0, or -1 */
static int read_signature(int fd, uint8_t *b, uint64_t size)
{
	const uint64_t magic_len = sizeof SIG_MAGIC - 1, tail = magic_len + MODSIG_SIZE;
	if (size < tail || pread_at(fd, b, size - tail, tail) < 0)
		return -1;
	if (memcmp(b + size - magic_len, SIG_MAGIC, magic_len) != 0)
		return 0;
	const uint8_t *st = b + size - tail;
	uint64_t described = (uint64_t)st[8] << 24 | (uint64_t)st[9] << 16 | (uint64_t)st[10] << 8 | st[11];
	uint64_t end = size - tail, start;
	described += (uint64_t)st[3] + st[4];
	start = described > end ? 0 : end - described;
	return pread_at(fd, b, start, end - start);
}

/* the parts of the ELF file at fd into b (cap bytes); MP_READ, MP_TOO_SMALL (p->size set) or MP_FALLBACK */
static int read_parts_of_fd(int fd, uint8_t *b, uint64_t cap, struct parts *p)
{
	struct stat st;
	struct elf e;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
		return MP_FALLBACK;
	p->size = (uint64_t)st.st_size;
	if (p->size < MP_MIN_SIZE)
		return MP_FALLBACK;
	if (p->size > cap)
		return MP_TOO_SMALL;
	if (elf_read_headers(fd, b, p->size, &e) < 0 || read_modinfo_sections(fd, b, &e, p) < 0 || read_signature(fd, b, p->size) < 0)
		return MP_FALLBACK;
	return MP_READ;
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
	struct parts p = { 0 };
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
	if (fd >= 0) {
		status = read_parts_of_fd(fd, into, cap_len, &p);
		close(fd);
	}
	if (path != stack_path)
		free(path);
	double *out = io;
	out[0] = (double)p.size;
	out[1] = p.nranges;
	for (unsigned k = 0; k < 2 * p.nranges; k++)
		out[2 + k] = (double)p.ranges[k];
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

napi_status modinfo_parts_register(napi_env env, napi_value exports)
{
	const napi_property_descriptor props[] = {
		{ "readModinfoParts", NULL, read_modinfo_parts_js, NULL, NULL, NULL, napi_enumerable, NULL },
		{ "hexColumns", NULL, hex_columns_js, NULL, NULL, NULL, napi_enumerable, NULL },
	};
	return napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
