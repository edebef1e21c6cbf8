/* The ELF checks and header reads shared by depmod's and modinfo's C readers (elf_image.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <unistd.h>
#include "elf_image.h"

int elf_open(struct elf *e, const uint8_t *d, size_t n)
{
	uint64_t ho, off, size;
	unsigned want;

	e->d = d;
	e->n = n;
	if (n <= 16 || d[0] != 0x7f || d[1] != 'E' || d[2] != 'L' || d[3] != 'F')
		return -1;
	if (d[4] != 1 && d[4] != 2)
		return -1;
	e->is64 = d[4] == 2;
	if (n <= (size_t)(e->is64 ? 64 : 52) || (d[5] != 1 && d[5] != 2))
		return -1;
	e->le = d[5] == 1;
	e->machine = u16_at(e, 18);
	e->shoff = e->is64 ? u64_at(e, 40) : u32_at(e, 32);
	e->shentsize = u16_at(e, e->is64 ? 58 : 46);
	e->shnum = u16_at(e, e->is64 ? 60 : 48);
	e->shstrndx = u16_at(e, e->is64 ? 62 : 50);
	want = e->is64 ? 64 : 40;
	if (e->shentsize != want || !range_valid(e, e->shoff, (uint64_t)want * e->shnum))
		return -1;
	if (e->shstrndx == 0 || e->shstrndx >= e->shnum)
		return -1;
	ho = e->shoff + (uint64_t)e->shstrndx * want;
	section_range(e, ho, &off, &size);
	if (!range_valid(e, off, size) || u32_at(e, ho) >= size || size == 0 || d[off + size - 1] != 0)
		return -1;
	e->str_off = off;
	e->str_size = size;
	return 0;
}

int pread_full(int fd, uint8_t *to, uint64_t off, uint64_t len)
{
	while (len > 0) {
		ssize_t got = pread(fd, to, (size_t)len, (off_t)off);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return -1;
		to += got;
		off += (uint64_t)got;
		len -= (uint64_t)got;
	}
	return 0;
}

int pread_at(int fd, uint8_t *d, uint64_t off, uint64_t len)
{
	return pread_full(fd, d + off, off, len);
}

int elf_read_headers(int fd, uint8_t *buf, size_t n, struct elf *e)
{
	uint64_t off, size;
	unsigned want, shstrndx;

	if (n < 64 || pread_at(fd, buf, 0, 64) < 0 || memcmp(buf, "\x7f" "ELF", 4) != 0 || (buf[4] != 1 && buf[4] != 2) ||
	    (buf[5] != 1 && buf[5] != 2))
		return -1;
	e->d = buf;
	e->n = n;
	e->is64 = buf[4] == 2;
	e->le = buf[5] == 1;
	e->shoff = e->is64 ? u64_at(e, 40) : u32_at(e, 32);
	e->shentsize = u16_at(e, e->is64 ? 58 : 46);
	e->shnum = u16_at(e, e->is64 ? 60 : 48);
	shstrndx = u16_at(e, e->is64 ? 62 : 50);
	want = e->is64 ? 64 : 40;
	if (e->shentsize != want || shstrndx == 0 || shstrndx >= e->shnum || !range_valid(e, e->shoff, (uint64_t)want * e->shnum) ||
	    pread_at(fd, buf, e->shoff, (uint64_t)want * e->shnum) < 0)
		return -1;
	section_range(e, e->shoff + (uint64_t)shstrndx * want, &off, &size);
	if (!range_valid(e, off, size) || pread_at(fd, buf, off, size) < 0)
		return -1;
	return elf_open(e, buf, n);
}
