/*
 * depmod's symbol extraction from a decompressed module image, in C: the same rules as
 * src/depmod/module-scan.ts symbolsOf() (libkmod's kmod_elf_get_symbols and
 * kmod_elf_get_dependency_symbols), which stays the reference and the path taken without this helper.
 * depmod walks every symbol of thousands of modules; in JavaScript that loop and its compilation were
 * the largest part of the CPU time besides decompression. The rules are docs/symbol-rules.md's,
 * pinned by test/file/symbol-rules.corpus.ts for all three readers.
 *
 * Every read is checked against the image: a bad offset ends the call with status -1 and the caller
 * takes the JavaScript path, which reports it as before.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <node_api.h>
#include "napi_args.h"
#include "module_symbols.h"
#include "vec.h"

#define SHN_UNDEF 0
#define SHN_ABS 0xfff1
#define STB_WEAK 2
#define STT_REGISTER 13
#define VERLEN 64
#define FNV_OFFSET 0x811c9dc5u
#define FNV_PRIME 0x01000193u
#define ENODATA_ 61
#define EINVAL_ 22
/* 2**64 - 1 as a double (what the JavaScript path computes) */
#define U64_MAX_D 18446744073709551616.0

/* what the call gives back in io[OUT_BASE..] */
enum { OUT_BASE = 16, OUT_EXPORTS = OUT_BASE, OUT_ERRNO, OUT_IMPORTS, OUT_BYTES, OUT_COUNT };

typedef struct {
	const uint8_t *d;
	size_t n;
	int le, is64;
	int bad; /* a read outside the image was asked for */
} image_t;

/* are the len bytes at off inside the image? (if not, the call is marked bad) */
static int inside(image_t *im, double off, double len)
{
	if (off >= 0 && off + len <= (double)im->n)
		return 1;
	im->bad = 1;
	return 0;
}

static uint32_t rd32(image_t *im, double off)
{
	size_t o;
	if (!inside(im, off, 4))
		return 0;
	o = (size_t)off;
	if (im->le)
		return (uint32_t)im->d[o] | (uint32_t)im->d[o + 1] << 8 | (uint32_t)im->d[o + 2] << 16 | (uint32_t)im->d[o + 3] << 24;
	return (uint32_t)im->d[o + 3] | (uint32_t)im->d[o + 2] << 8 | (uint32_t)im->d[o + 1] << 16 | (uint32_t)im->d[o] << 24;
}

static uint16_t rd16(image_t *im, double off)
{
	size_t o;
	if (!inside(im, off, 2))
		return 0;
	o = (size_t)off;
	return im->le ? (uint16_t)(im->d[o] | im->d[o + 1] << 8) : (uint16_t)(im->d[o + 1] | im->d[o] << 8);
}

static uint8_t rd8(image_t *im, double off)
{
	return inside(im, off, 1) ? im->d[(size_t)off] : 0;
}

/* u64 as the JavaScript path has it: hi * 2**32 + lo, rounded to a double */
static double rd64(image_t *im, double off)
{
	double hi = rd32(im, off + (im->le ? 4 : 0));
	double lo = rd32(im, off + (im->le ? 0 : 4));
	return hi * 4294967296.0 + lo;
}

static double rdword(image_t *im, double off)
{
	return im->is64 ? rd64(im, off) : rd32(im, off);
}

/* the end of the C string at o: its NUL, or the end of the image */
static size_t cstr_end(const image_t *im, size_t o)
{
	const uint8_t *p;
	if (o >= im->n)
		return im->n;
	p = memchr(im->d + o, 0, im->n - o);
	return p == NULL ? im->n : (size_t)(p - im->d);
}

typedef struct {
	/* exports: [start, end) pairs and CRCs */
	vec_t ranges, crcs;
	size_t n_exports;
	/* imports: names joined by NULs, their keys, lengths, CRCs, weak flags */
	vec_t bytes, keys, lengths, icrcs, weak;
	size_t n_imports, n_bytes;
	/* scratch: the __crc_ and undefined symbols' entries, the __versions table */
	vec_t crcsyms, undef, slots, vkeys, vlens, used;
	int oom;
} scan_t;

static _Thread_local scan_t S;

static void add_export(scan_t *s, size_t start, size_t end, double crc)
{
	if (vec_reserve(&s->ranges, 2 * (s->n_exports + 1), sizeof(uint32_t)) || vec_reserve(&s->crcs, s->n_exports + 1, sizeof(double))) {
		s->oom = 1;
		return;
	}
	VEC(s->ranges, uint32_t)[2 * s->n_exports] = (uint32_t)start;
	VEC(s->ranges, uint32_t)[2 * s->n_exports + 1] = (uint32_t)end;
	VEC(s->crcs, double)[s->n_exports] = crc;
	s->n_exports++;
}

/* FNV-1a of d[start..end) as a signed 32-bit key (hash.ts symbolKey) */
static int32_t fnv(const uint8_t *d, size_t start, size_t end)
{
	uint32_t h = FNV_OFFSET;
	for (size_t i = start; i < end; i++)
		h = (h ^ d[i]) * FNV_PRIME;
	return (int32_t)h;
}

/* adds the name at start (to its NUL or the end of the image); returns its end and its FNV-1a */
static size_t add_import(scan_t *s, image_t *im, size_t start, int32_t *full)
{
	size_t end;
	if (start > im->n) {
		im->bad = 1;
		*full = 0;
		return im->n;
	}
	end = cstr_end(im, start);
	size_t len = end - start;
	size_t pos = s->n_bytes;
	size_t n = s->n_imports;
	uint8_t *b;
	if (vec_reserve(&s->bytes, pos + len + 1, 1) || vec_reserve(&s->keys, n + 1, sizeof(int32_t)) ||
	    vec_reserve(&s->lengths, n + 1, sizeof(uint32_t)) || vec_reserve(&s->icrcs, n + 1, sizeof(double)) ||
	    vec_reserve(&s->weak, n + 1, 1)) {
		s->oom = 1;
		*full = 0;
		return end;
	}
	b = VEC(s->bytes, uint8_t);
	if (n > 0)
		b[pos++] = 0;
	memcpy(b + pos, im->d + start, len);
	s->n_bytes = pos + len;
	*full = fnv(im->d, start, end);
	/* symbol_find drops one leading '.' */
	VEC(s->keys, int32_t)[n] = start < im->n && im->d[start] == 0x2e ? fnv(im->d, start + 1, end) : *full;
	VEC(s->lengths, uint32_t)[n] = (uint32_t)len;
	VEC(s->icrcs, double)[n] = 0;
	VEC(s->weak, uint8_t)[n] = 0;
	s->n_imports = n + 1;
	return end;
}

static void set_last(scan_t *s, double crc, int weak)
{
	if (s->n_imports == 0 || s->oom)
		return;
	VEC(s->icrcs, double)[s->n_imports - 1] = crc;
	VEC(s->weak, uint8_t)[s->n_imports - 1] = weak ? 1 : 0;
}

typedef struct {
	size_t names, stride, count, mask;
} versions_t;

static int same_version(scan_t *s, const image_t *im, const versions_t *v, size_t i, size_t start, size_t len, int32_t h)
{
	if (VEC(s->vkeys, int32_t)[i] != h || VEC(s->vlens, int32_t)[i] != (int32_t)len)
		return 0;
	return memcmp(im->d + v->names + i * v->stride, im->d + start, len) == 0;
}

/*
 * indexes the __versions entries by name, the first of each name kept (kmod_elf_crc_find scans from
 * the start): 0, -1 for entries outside the image, -2 out of memory
 */
static int index_versions(scan_t *s, image_t *im, versions_t *v, size_t names, size_t count, size_t namlen)
{
	size_t size = 16;
	while (size < count * 2)
		size *= 2;
	v->names = names;
	v->stride = VERLEN;
	v->count = count;
	v->mask = size - 1;
	if (vec_reserve(&s->slots, size, sizeof(int32_t)) || vec_reserve(&s->vkeys, count + 1, sizeof(int32_t)) ||
	    vec_reserve(&s->vlens, count + 1, sizeof(int32_t)) || vec_reserve(&s->used, count + 1, 1))
		return -2;
	memset(s->slots.p, 0, size * sizeof(int32_t));
	memset(s->used.p, 0, count + 1);
	if (count > 0 && names + (count - 1) * VERLEN + namlen > im->n)
		return -1;
	for (size_t i = 0; i < count; i++) {
		size_t no = names + i * VERLEN;
		const uint8_t *p = memchr(im->d + no, 0, namlen);
		size_t slot;
		int32_t h;
		if (p == NULL) {
			VEC(s->vlens, int32_t)[i] = -1;
			continue;
		}
		size_t len = (size_t)(p - (im->d + no));
		h = fnv(im->d, no, no + len);
		VEC(s->vkeys, int32_t)[i] = h;
		VEC(s->vlens, int32_t)[i] = (int32_t)len;
		for (slot = (uint32_t)h & v->mask; VEC(s->slots, int32_t)[slot] != 0; slot = (slot + 1) & v->mask)
			if (same_version(s, im, v, (size_t)VEC(s->slots, int32_t)[slot] - 1, no, len, h))
				break;
		if (VEC(s->slots, int32_t)[slot] == 0)
			VEC(s->slots, int32_t)[slot] = (int32_t)i + 1;
	}
	return 0;
}

static long find_version(scan_t *s, const image_t *im, const versions_t *v, size_t start, size_t end, int32_t h)
{
	int32_t *slots = VEC(s->slots, int32_t);
	for (size_t slot = (uint32_t)h & v->mask; slots[slot] != 0; slot = (slot + 1) & v->mask)
		if (same_version(s, im, v, (size_t)slots[slot] - 1, start, end - start, h))
			return slots[slot] - 1;
	return -1;
}

/* Elf.sectionRange(index)'s validity, then the CRC word resolveCrc reads from it */
static double resolve_crc(image_t *im, const double *in, double crc, unsigned shndx)
{
	double ho, name_off, off, size;
	if (shndx == SHN_ABS || shndx == SHN_UNDEF)
		return crc;
	if (shndx >= in[IN_SHNUM])
		return U64_MAX_D;
	ho = in[IN_SHOFF] + shndx * in[IN_SHENTSIZE];
	name_off = rd32(im, ho);
	off = im->is64 ? rd64(im, ho + 24) : rd32(im, ho + 16);
	size = im->is64 ? rd64(im, ho + 32) : rd32(im, ho + 20);
	if (name_off >= in[IN_SHSTRTAB_SIZE] || off > (double)im->n || size > (double)im->n - off)
		return U64_MAX_D;
	if (size < 4 || crc > size - 4)
		return U64_MAX_D;
	return rd32(im, off + crc);
}

/* kmod_elf_get_symbols without __crc_ symbols: the strings of __ksymtab_strings, CRC 0 */
static int exports_from_strings(scan_t *s, const image_t *im, size_t off, size_t size)
{
	size_t end;
	if (off == 0)
		return ENODATA_;
	while (size > 1 && off < im->n && im->d[off] == 0) {
		off++;
		size--;
	}
	if (size <= 1)
		return 0;
	if (off + size > im->n)
		return -1;
	if (im->d[off + size - 1] != 0)
		return EINVAL_;
	end = off + size;
	for (size_t start = off; start < end;) {
		const uint8_t *p = memchr(im->d + start, 0, im->n - start);
		size_t nul = p == NULL ? end : (size_t)(p - im->d);
		if (nul > end)
			nul = end;
		if (nul > start)
			add_export(s, start, nul, 0);
		start = nul + 1;
	}
	return 0;
}

/* the whole of symbolsOf: 0, or -1 when an offset lies outside the image */
static int scan_symbols(scan_t *s, image_t *im, const double *in, int *err)
{
	const size_t str_off = (size_t)in[IN_STRTAB], str_size = (size_t)in[IN_STRTAB_SIZE];
	const size_t sym_off = (size_t)in[IN_SYMTAB], sym_size = (size_t)in[IN_SYMTAB_SIZE];
	const size_t ver_off = (size_t)in[IN_VERSIONS], ver_size = (size_t)in[IN_VERSIONS_SIZE];
	const size_t symlen = im->is64 ? 24 : 16, crclen = im->is64 ? 8 : 4;
	const int sparc = in[IN_SPARC] != 0;
	const int table_ok = str_off > 0 && sym_off > 0 && sym_size % symlen == 0;
	const size_t vercount = table_ok && ver_off > 0 && ver_size % VERLEN == 0 ? ver_size / VERLEN : 0;
	int from_table = 0, imports_ok = 0;
	size_t n_crc = 0, n_undef = 0;
	versions_t v;
	int r;

	s->n_exports = s->n_imports = s->n_bytes = 0;
	s->oom = 0;
	*err = 0;
	r = index_versions(s, im, &v, ver_off + crclen, vercount, VERLEN - crclen);
	if (r < 0)
		return r;
	if (table_ok) {
		const size_t count = sym_size / symlen;
		if (sym_off + sym_size > im->n || str_off + str_size > im->n)
			return -1;
		if (vec_reserve(&s->crcsyms, count, sizeof(uint32_t)) || vec_reserve(&s->undef, count, sizeof(uint32_t)))
			return -2;
		from_table = 1;
		imports_ok = 1;
		/* from the last entry to the first, as walkSymbols (which keeps them in reverse table order) */
		for (size_t i = count - 1; i >= 1 && count > 0; i--) {
			size_t o = sym_off + i * symlen;
			uint32_t no = rd32(im, (double)o);
			unsigned shndx;
			if (no >= str_size)
				from_table = 0;
			else if (from_table) {
				size_t p = str_off + no;
				if (p + 6 <= im->n && memcmp(im->d + p, "__crc_", 6) == 0)
					VEC(s->crcsyms, uint32_t)[n_crc++] = (uint32_t)o;
			}
			if (!imports_ok)
				continue;
			shndx = rd16(im, (double)(o + (im->is64 ? 6 : 14)));
			if (shndx != SHN_UNDEF)
				continue;
			if (no >= str_size) {
				imports_ok = 0; /* -EINVAL: no dependency symbols at all */
				continue;
			}
			unsigned info = im->d[o + (im->is64 ? 4 : 12)];
			if (!(sparc && (info & 0xf) == STT_REGISTER) && im->d[str_off + no] != 0)
				VEC(s->undef, uint32_t)[n_undef++] = (uint32_t)o;
		}
		if (imports_ok) {
			for (size_t k = n_undef; k-- > 0;) {
				size_t o = VEC(s->undef, uint32_t)[k];
				size_t start = str_off + rd32(im, (double)o);
				int32_t full;
				size_t end = add_import(s, im, start, &full);
				long vi = vercount > 0 ? find_version(s, im, &v, start, end, full) : -1;
				double crc = 0;
				if (vi >= 0) {
					VEC(s->used, uint8_t)[vi] = 1;
					crc = rdword(im, (double)(ver_off + (size_t)vi * VERLEN));
				}
				set_last(s, crc, rd8(im, (double)(o + (im->is64 ? 4 : 12))) >> 4 == STB_WEAK);
			}
		}
	}
	if (from_table && n_crc > 0) {
		for (size_t k = n_crc; k-- > 0;) {
			size_t o = VEC(s->crcsyms, uint32_t)[k];
			size_t start = str_off + rd32(im, (double)o) + 6;
			double value = rdword(im, (double)(o + (im->is64 ? 8 : 4)));
			unsigned shndx = rd16(im, (double)(o + (im->is64 ? 6 : 14)));
			add_export(s, start, cstr_end(im, start), resolve_crc(im, in, value, shndx));
		}
	} else {
		int e = exports_from_strings(s, im, (size_t)in[IN_KSYMTAB_STRINGS], (size_t)in[IN_KSYMTAB_STRINGS_SIZE]);
		if (e < 0)
			return -1;
		*err = e;
	}
	/* the imports end with the __versions entries no symbol used; none at all when any cannot be read */
	int fail = !imports_ok;
	for (size_t i = 0; i < vercount && !fail; i++)
		if (VEC(s->used, uint8_t)[i] == 0 && VEC(s->vlens, int32_t)[i] < 0)
			fail = 1;
	if (fail) {
		s->n_imports = s->n_bytes = 0;
	} else {
		for (size_t i = 0; i < vercount; i++) {
			int32_t full;
			if (VEC(s->used, uint8_t)[i] != 0)
				continue;
			add_import(s, im, ver_off + i * VERLEN + crclen, &full);
			set_last(s, rdword(im, (double)(ver_off + i * VERLEN)), 0);
		}
	}
	if (s->oom)
		return -2;
	return im->bad ? -1 : 0;
}

int symbols_scan(const uint8_t *d, size_t n, const double *in, struct symbols_found *found)
{
	image_t im;
	scan_t *s = &S;
	int err = 0, r;

	im.d = d;
	im.n = n;
	im.le = in[IN_LE] != 0;
	im.is64 = in[IN_IS64] != 0;
	im.bad = 0;
	/* offsets and sizes lie inside the image (the caller found them so): anything else is refused */
	for (int k = 0; k < IN_COUNT; k++)
		if (!(in[k] >= 0 && in[k] <= (double)n + 65536.0))
			return -1;
	r = scan_symbols(s, &im, in, &err);
	if (r != 0)
		return r;
	found->ranges = s->ranges.p;
	found->crcs = s->crcs.p;
	found->n_exports = s->n_exports;
	found->bytes = s->bytes.p;
	found->n_bytes = s->n_bytes;
	found->keys = s->keys.p;
	found->lengths = s->lengths.p;
	found->icrcs = s->icrcs.p;
	found->weak = s->weak.p;
	found->n_imports = s->n_imports;
	found->err = err;
	return 0;
}

/*
 * scanSymbols(image: Uint8Array, io: Float64Array, exportRanges: Uint32Array, exportCrcs: Float64Array,
 *             importBytes: Uint8Array, importKeys: Int32Array, importLengths: Uint32Array,
 *             importCrcs: Float64Array, importWeak: Uint8Array): number
 * 0: the results are in the arrays, their counts in io; 1: an array is too small (io holds the counts
 * needed: call again with larger ones); -1: an offset outside the image (take the JavaScript path).
 */
static napi_value scan_symbols_js(napi_env env, napi_callback_info info)
{
	napi_value argv[9], out;
	size_t argc = 9, n, io_len, len[7];
	void *img, *io_p, *arr[7];
	static const napi_typedarray_type types[7] = { napi_uint32_array, napi_float64_array, napi_uint8_array,
		napi_int32_array, napi_uint32_array, napi_float64_array, napi_uint8_array };
	double *io;
	struct symbols_found f;
	int r;

	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 9) {
		napi_throw_type_error(env, NULL, "scanSymbols: missing arguments");
		return NULL;
	}
	if (typed_array_arg(env, "scanSymbols", argv[0], napi_uint8_array, &img, &n) ||
	    typed_array_arg(env, "scanSymbols", argv[1], napi_float64_array, &io_p, &io_len))
		return NULL;
	for (int k = 0; k < 7; k++)
		if (typed_array_arg(env, "scanSymbols", argv[2 + k], types[k], &arr[k], &len[k]))
			return NULL;
	if (io_len < OUT_COUNT) {
		napi_throw_range_error(env, NULL, "scanSymbols: io too short");
		return NULL;
	}
	io = io_p;
	r = symbols_scan(img, n, io, &f);
	if (r == 0) {
		io[OUT_EXPORTS] = (double)f.n_exports;
		io[OUT_ERRNO] = f.err;
		io[OUT_IMPORTS] = (double)f.n_imports;
		io[OUT_BYTES] = (double)f.n_bytes;
		if (len[0] < 2 * f.n_exports || len[1] < f.n_exports || len[2] < f.n_bytes || len[3] < f.n_imports ||
		    len[4] < f.n_imports || len[5] < f.n_imports || len[6] < f.n_imports) {
			r = 1;
		} else {
			/* (an empty array's pointer may be NULL: memcpy is not given it) */
			if (f.n_exports > 0) {
				memcpy(arr[0], f.ranges, 2 * f.n_exports * sizeof(uint32_t));
				memcpy(arr[1], f.crcs, f.n_exports * sizeof(double));
			}
			if (f.n_imports > 0) {
				memcpy(arr[2], f.bytes, f.n_bytes);
				memcpy(arr[3], f.keys, f.n_imports * sizeof(int32_t));
				memcpy(arr[4], f.lengths, f.n_imports * sizeof(uint32_t));
				memcpy(arr[5], f.icrcs, f.n_imports * sizeof(double));
				memcpy(arr[6], f.weak, f.n_imports);
			}
		}
	} else if (r == -2) {
		napi_throw_error(env, NULL, "scanSymbols: out of memory");
		return NULL;
	}
	if (napi_create_int32(env, r, &out) != napi_ok)
		return NULL;
	return out;
}

napi_status module_symbols_register(napi_env env, napi_value exports)
{
	const napi_property_descriptor props[] = {
		{ "scanSymbols", NULL, scan_symbols_js, NULL, NULL, NULL, napi_enumerable, NULL },
	};
	return napi_define_properties(env, exports, 1, props);
}
