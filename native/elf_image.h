/*
 * An ELF image as depmod's and modinfo's C readers see it (module_scan.c, modinfo_parts.c): the header
 * fields, the section-name table, and the field reads in the image's byte order. The checks are those
 * of src/file/elf.ts (kmod_elf_new's), so that an image the C takes is one JavaScript takes too.
 */
#ifndef KMODTS_ELF_IMAGE_H
#define KMODTS_ELF_IMAGE_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct elf {
	const uint8_t *d;
	size_t n;
	int is64, le;
	unsigned machine, shentsize, shnum, shstrndx;
	uint64_t shoff, str_off, str_size;
};

/* reads of fields the caller has checked to lie inside the image */
static inline uint32_t u16_at(const struct elf *e, uint64_t o)
{
	const uint8_t *p = e->d + o;
	return e->le ? (uint32_t)(p[0] | p[1] << 8) : (uint32_t)(p[1] | p[0] << 8);
}

static inline uint32_t u32_at(const struct elf *e, uint64_t o)
{
	const uint8_t *p = e->d + o;
	if (e->le)
		return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
	return (uint32_t)p[3] | (uint32_t)p[2] << 8 | (uint32_t)p[1] << 16 | (uint32_t)p[0] << 24;
}

static inline uint64_t u64_at(const struct elf *e, uint64_t o)
{
	uint64_t lo = u32_at(e, o + (e->le ? 0 : 4)), hi = u32_at(e, o + (e->le ? 4 : 0));
	return hi << 32 | lo;
}

/* Elf.rangeValid: off..off+len inside the image, without overflow */
static inline int range_valid(const struct elf *e, uint64_t off, uint64_t len)
{
	return off <= e->n && len <= e->n - off;
}

/* offset and size of the section whose header is at ho (inside the table, which lies inside the image) */
static inline void section_range(const struct elf *e, uint64_t ho, uint64_t *off, uint64_t *size)
{
	*off = e->is64 ? u64_at(e, ho + 24) : u32_at(e, ho + 16);
	*size = e->is64 ? u64_at(e, ho + 32) : u32_at(e, ho + 20);
}

/* elf.ts nameAt: the section name at start (ending at its NUL or the table's end) is `name` */
static inline int name_at(const struct elf *e, uint64_t start, const char *name)
{
	size_t len = strlen(name);
	uint64_t end = e->str_off + e->str_size;
	if (start + len > end || memcmp(e->d + start, name, len) != 0)
		return 0;
	return start + len == end || e->d[start + len] == 0;
}

/* the Elf constructor's checks (kmod_elf_new's) on image d: 0 when all pass, -1 for any failing */
int elf_open(struct elf *e, const uint8_t *d, size_t n);

/* len bytes at off of the file into `to`; 0, or -1 (an error, or fewer bytes than asked) */
int pread_full(int fd, uint8_t *to, uint64_t off, uint64_t len);

/* len bytes at off of the file into d + off; 0, or -1 (an error, or fewer bytes than asked) */
int pread_at(int fd, uint8_t *d, uint64_t off, uint64_t len);

/*
 * The ELF header, the section table and the section names of the file at fd (n bytes, by fstat) read
 * into buf (n bytes) at their own offsets, and checked by elf_open: 0, or -1 where the file is to be
 * read whole (not ELF by these checks, a table outside the file, a short read). The rest of buf is left
 * as it was.
 */
int elf_read_headers(int fd, uint8_t *buf, size_t n, struct elf *e);
#endif
