/*
 * A module file's bytes, read whole on a pool thread into the caller's buffer while they fit
 * (decompress.h's struct decode_result), with the stat key of the file read.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "decompress.h"
#include "stat_key.h"

/* the whole file into r->raw (the caller's buffer while it fits); 0, or -1 with r->err set */
int read_file(const char *path, struct decode_result *r)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), got;

	stat_key_none(r->key);
	if (fd < 0) {
		r->err = errno;
		return -1;
	}
	got = read_fd(fd, r);
	close(fd);
	return got;
}

/* read_file of a file open at fd, from its current offset (the caller closes it) */
int read_fd(int fd, struct decode_result *r)
{
	size_t used = 0;
	struct stat st;

	stat_key_none(r->key);
	if (fstat(fd, &st) == 0)
		stat_key_of(&st, r->key);
	else
		st.st_size = 0;
	if (st.st_size > 0 && (uint64_t)st.st_size + 1 > r->raw_cap && (uint64_t)st.st_size < SIZE_MAX / 2) {
		/* one byte more, so that the end of the file is seen without growing */
		uint8_t *p = decode_alloc((size_t)st.st_size + 1);
		if (p != NULL) {
			if (r->raw_owned)
				decode_free(r->raw, r->raw_cap);
			r->raw = p;
			r->raw_cap = (size_t)st.st_size + 1;
			r->raw_owned = 1;
			r->raw_touched = 0;
		}
	}
	if (r->populate && st.st_size > 0 && (uint64_t)st.st_size < r->raw_cap)
		decode_populate(r->raw, &r->raw_touched, (size_t)st.st_size + 1);
	for (;;) {
		ssize_t got;
		if (used == r->raw_cap) {
			size_t cap = r->raw_cap < 4096 ? 65536 : r->raw_cap * 2;
			uint8_t *p = r->raw_owned ? decode_block_grow(r->raw, r->raw_cap, used, cap) : decode_alloc(cap);
			if (p == NULL) {
				r->err = ENOMEM;
				return -1;
			}
			if (!r->raw_owned && used > 0)
				memcpy(p, r->raw, used);
			r->raw = p;
			r->raw_cap = cap;
			r->raw_owned = 1;
			r->raw_touched = used;
		}
		got = read(fd, r->raw + used, r->raw_cap - used);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			r->err = errno;
			return -1;
		}
		if (got == 0)
			break;
		used += (size_t)got;
		/*
		 * no size (a device, a /proc file) and no compression's magic in its first six bytes: libkmod
		 * maps such a file by its size, and mmap of 0 bytes is EINVAL; reading it to its end might
		 * never end (/dev/zero)
		 */
		if (st.st_size == 0 && used >= 6 && decode_kind(r->raw, used) == KIND_NONE) {
			r->err = EINVAL;
			return -1;
		}
	}
	r->raw_len = used;
	return 0;
}
