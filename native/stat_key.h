/*
 * A file's stat key for depmod's scan cache (src/depmod/stat-keys.ts): twelve 32-bit words, 64-bit
 * values as two words with the low one first: device, inode, size, mtime seconds, mtime nanoseconds,
 * ctime seconds, ctime nanoseconds. A file without a stat has STAT_KEY_NONE as its last word, which no
 * nanosecond count can be. stat_keys.c stats paths for it; read_file (decompress.c) takes it with the
 * fstat() of the file it opened, before reading it.
 */
#ifndef KMODTS_STAT_KEY_H
#define KMODTS_STAT_KEY_H
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

#define STAT_KEY_WORDS 12
#define STAT_KEY_NONE 0xffffffffu

static inline void stat_key_put64(uint32_t *w, uint64_t v)
{
	w[0] = (uint32_t)v;
	w[1] = (uint32_t)(v >> 32);
}

static inline void stat_key_of(const struct stat *st, uint32_t *w)
{
	stat_key_put64(w, (uint64_t)st->st_dev);
	stat_key_put64(w + 2, (uint64_t)st->st_ino);
	stat_key_put64(w + 4, (uint64_t)st->st_size);
	stat_key_put64(w + 6, (uint64_t)(int64_t)st->st_mtim.tv_sec);
	w[8] = (uint32_t)st->st_mtim.tv_nsec;
	stat_key_put64(w + 9, (uint64_t)(int64_t)st->st_ctim.tv_sec);
	w[11] = (uint32_t)st->st_ctim.tv_nsec;
}

static inline void stat_key_none(uint32_t *w)
{
	memset(w, 0, STAT_KEY_WORDS * 4);
	w[STAT_KEY_WORDS - 1] = STAT_KEY_NONE;
}
#endif
