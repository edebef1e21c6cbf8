/*
 * depmod's walk record (docs/decisions.md, "Session 18: the walk record"): each directory of the
 * last walk with its stat key and the entries that matter to the walk (subdirectories and module file
 * names, before any exclusion), so that the next walk lists again only the directories whose key
 * changed. The record is kept in the scan cache file (src/depmod/walk-record.ts); its bytes are made
 * and checked here only:
 *
 *   head:   magic, number of directories, payload bytes, CRC-32 of the payload (32-bit words, LE)
 *   per directory: dev, ino, size, nlink, ctime s, mtime s (64-bit), ctime ns, mtime ns, path bytes,
 *           entry bytes, entry count (32-bit); the path (absolute, no NUL); the entries in strcmp
 *           order, each a type ('d' directory, 'f' file) and its name with a NUL.
 *
 * Anything wrong with a record (size, CRC, counts, a length past its end, an unordered or strange
 * name, a path twice) makes it empty: every directory is listed.
 *
 * Why a matching key means an unchanged listing: every change of a directory's entries sets its mtime
 * and ctime to the file system's clock, a coarse one never ahead of real time, and ctime cannot be set
 * by any program. A directory is recorded only when both times are more than a tick (TICK_SEC, FAT's
 * 2 s) older than CLOCK_REALTIME at the memo's making, before the walk: a change after the listing then
 * gets a ctime no older than that start less one tick, which no recorded ctime can equal. Its stat is
 * taken before it is listed, so a change between the two leaves the old key with the new listing.
 * A directory holding an entry of another type (a link, DT_UNKNOWN) is never recorded: what is behind
 * a link can change while the directory does not.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "file_crc.h"
#include "napi_args.h"
#include "tree_walk.h"
#include "walk_record.h"

#define RECORD_MAGIC 0x3152574bu /* "KWR1" */
#define RECORD_HEAD 16
#define KEY_BYTES 56
#define DIR_HEAD (KEY_BYTES + 12)
#define TICK_SEC 2
/* a record above this is damage (Debian's full tree's is ~250 KB) */
#define RECORD_MAX (256u << 20)

typedef struct {
	uint64_t dev, ino, size, nlink;
	int64_t ctime_s, mtime_s;
	uint32_t ctime_ns, mtime_ns;
} dir_key_t;

/* a directory's bytes in a record (DIR_HEAD, path, entries), at `at` of its buffer */
typedef struct {
	size_t at, bytes;
	dir_key_t key;
	int fresh; /* listed in this walk (not taken from the old record) */
} dir_chunk_t;

struct walk_memo {
	uint8_t *old;          /* the record read, once checked (NULL: none) */
	dir_chunk_t *old_dirs;
	size_t n_old;
	uint32_t *slots;       /* hash table of old_dirs by path: index + 1, 0 free */
	size_t n_slots;
	int64_t horizon_s;     /* CLOCK_REALTIME at the making, less a tick */
	uint32_t horizon_ns;
	uint8_t *next;         /* the directories of this walk, for the next record */
	size_t next_len, next_cap;
	dir_chunk_t *next_dirs;
	size_t n_next, next_dirs_cap;
	int walked;
	uint32_t listed, recalled;
};

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

static void key_of(const struct stat *st, dir_key_t *k)
{
	k->dev = (uint64_t)st->st_dev;
	k->ino = (uint64_t)st->st_ino;
	k->size = (uint64_t)st->st_size;
	k->nlink = (uint64_t)st->st_nlink;
	k->ctime_s = (int64_t)st->st_ctim.tv_sec;
	k->mtime_s = (int64_t)st->st_mtim.tv_sec;
	k->ctime_ns = (uint32_t)st->st_ctim.tv_nsec;
	k->mtime_ns = (uint32_t)st->st_mtim.tv_nsec;
}

static void key_put(uint8_t *p, const dir_key_t *k)
{
	put64(p, k->dev);
	put64(p + 8, k->ino);
	put64(p + 16, k->size);
	put64(p + 24, k->nlink);
	put64(p + 32, (uint64_t)k->ctime_s);
	put64(p + 40, (uint64_t)k->mtime_s);
	put32(p + 48, k->ctime_ns);
	put32(p + 52, k->mtime_ns);
}

static void key_get(const uint8_t *p, dir_key_t *k)
{
	k->dev = get64(p);
	k->ino = get64(p + 8);
	k->size = get64(p + 16);
	k->nlink = get64(p + 24);
	k->ctime_s = (int64_t)get64(p + 32);
	k->mtime_s = (int64_t)get64(p + 40);
	k->ctime_ns = get32(p + 48);
	k->mtime_ns = get32(p + 52);
}

static int same_key(const dir_key_t *a, const dir_key_t *b)
{
	return a->ctime_ns == b->ctime_ns && a->ctime_s == b->ctime_s && a->mtime_ns == b->mtime_ns && a->mtime_s == b->mtime_s &&
	       a->ino == b->ino && a->dev == b->dev && a->size == b->size && a->nlink == b->nlink;
}

static int before(int64_t s, uint32_t ns, int64_t hs, uint32_t hns)
{
	return s < hs || (s == hs && ns < hns);
}

/* both times of the key older than the horizon */
static int old_enough(const dir_key_t *k, int64_t hs, uint32_t hns)
{
	return before(k->ctime_s, k->ctime_ns, hs, hns) && before(k->mtime_s, k->mtime_ns, hs, hns);
}

static uint64_t path_hash(const char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)p[i]) * 0x100000001b3ull;
	return h;
}

/* the slot of `path` in the old record's table: the one holding it, or the free one it would take */
static size_t slot_of(const walk_memo_t *m, const char *path, size_t len)
{
	size_t mask = m->n_slots - 1, s = (size_t)path_hash(path, len) & mask;
	while (m->slots[s] != 0) {
		const dir_chunk_t *d = &m->old_dirs[m->slots[s] - 1];
		const uint8_t *at = m->old + d->at;
		if (get32(at + KEY_BYTES) == len && memcmp(at + DIR_HEAD, path, len) == 0)
			return s;
		s = (s + 1) & mask;
	}
	return s;
}

/* whether the `bytes` at p are `count` entries as the record holds them, in strcmp order */
static int entries_valid(const uint8_t *p, size_t bytes, uint32_t count)
{
	const char *prev = NULL;
	size_t at = 0;
	for (uint32_t i = 0; i < count; i++) {
		const uint8_t *nul;
		const char *name;
		if (bytes - at < 3 || (p[at] != 'd' && p[at] != 'f'))
			return 0;
		name = (const char *)p + at + 1;
		nul = memchr(p + at + 1, 0, bytes - at - 1);
		if (nul == NULL || nul == p + at + 1 || strchr(name, '/') != NULL || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
			return 0;
		if (prev != NULL && strcmp(prev, name) >= 0)
			return 0;
		prev = name;
		at = (size_t)(nul - p) + 1;
	}
	return at == bytes;
}

/* the directories of record `r` (len bytes) in m's table; 0, or -1 when it is not a whole, valid record */
static int parse_record(walk_memo_t *m, const uint8_t *r, size_t len)
{
	uint32_t count, at = RECORD_HEAD;
	if (len < RECORD_HEAD || len > RECORD_MAX || get32(r) != RECORD_MAGIC || get32(r + 8) != len - RECORD_HEAD)
		return -1;
	file_crc32_prepare();
	if (file_crc32(0, r + RECORD_HEAD, len - RECORD_HEAD) != get32(r + 12))
		return -1;
	count = get32(r + 4);
	if (count > (len - RECORD_HEAD) / DIR_HEAD)
		return -1;
	for (m->n_slots = 16; m->n_slots < 2 * (size_t)count; m->n_slots *= 2)
		;
	m->old_dirs = malloc((count ? count : 1) * sizeof(dir_chunk_t));
	m->slots = calloc(m->n_slots, sizeof(uint32_t));
	if (m->old_dirs == NULL || m->slots == NULL)
		return -1;
	m->old = (uint8_t *)r;
	for (uint32_t i = 0; i < count; i++) {
		const uint8_t *d = r + at;
		uint32_t path_len, entry_bytes;
		size_t rest = len - at, s;
		if (rest < DIR_HEAD)
			return -1;
		path_len = get32(d + KEY_BYTES);
		entry_bytes = get32(d + KEY_BYTES + 4);
		if (path_len == 0 || path_len > rest - DIR_HEAD || entry_bytes > rest - DIR_HEAD - path_len)
			return -1;
		if (d[DIR_HEAD] != '/' || memchr(d + DIR_HEAD, 0, path_len) != NULL ||
		    !entries_valid(d + DIR_HEAD + path_len, entry_bytes, get32(d + KEY_BYTES + 8)))
			return -1;
		s = slot_of(m, (const char *)d + DIR_HEAD, path_len);
		if (m->slots[s] != 0)
			return -1;
		m->old_dirs[i].at = at;
		m->old_dirs[i].bytes = DIR_HEAD + (size_t)path_len + entry_bytes;
		m->old_dirs[i].fresh = 0;
		key_get(d, &m->old_dirs[i].key);
		m->n_old = i + 1;
		m->slots[s] = i + 1;
		at += (uint32_t)m->old_dirs[i].bytes;
	}
	return at == len ? 0 : -1;
}

/* room for `more` bytes and one more directory in the next record; -1 out of memory */
static int next_reserve(walk_memo_t *m, size_t more)
{
	if (m->next_len + more > m->next_cap) {
		size_t cap = m->next_cap ? m->next_cap : 65536;
		while (m->next_len + more > cap)
			cap *= 2;
		uint8_t *p = realloc(m->next, cap);
		if (p == NULL)
			return -1;
		m->next = p;
		m->next_cap = cap;
	}
	if (m->n_next == m->next_dirs_cap) {
		size_t cap = m->next_dirs_cap ? 2 * m->next_dirs_cap : 256;
		dir_chunk_t *p = realloc(m->next_dirs, cap * sizeof(dir_chunk_t));
		if (p == NULL)
			return -1;
		m->next_dirs = p;
		m->next_dirs_cap = cap;
	}
	return 0;
}

static void next_push(walk_memo_t *m, size_t bytes, const dir_key_t *key, int fresh)
{
	dir_chunk_t *c = &m->next_dirs[m->n_next++];
	c->at = m->next_len;
	c->bytes = bytes;
	c->key = *key;
	c->fresh = fresh;
	m->next_len += bytes;
}

void walk_memo_walking(walk_memo_t *m)
{
	m->walked = 1;
}

int walk_memo_recall(walk_memo_t *m, const char *path, size_t len, const struct stat *st, walk_entry_t **entries, size_t *count)
{
	dir_key_t key;
	const dir_chunk_t *d;
	const uint8_t *at;
	uint32_t n;
	walk_entry_t *e;
	size_t s;

	if (m->n_old == 0)
		return 0;
	s = slot_of(m, path, len);
	if (m->slots[s] == 0)
		return 0;
	d = &m->old_dirs[m->slots[s] - 1];
	key_of(st, &key);
	if (!same_key(&key, &d->key))
		return 0;
	at = m->old + d->at;
	n = get32(at + KEY_BYTES + 8);
	e = malloc((n ? n : 1) * sizeof(walk_entry_t));
	if (e == NULL || next_reserve(m, d->bytes) < 0) {
		free(e);
		return -1;
	}
	at += DIR_HEAD + len;
	for (uint32_t i = 0; i < n; i++) {
		e[i].type = at[0] == 'd' ? DT_DIR : DT_REG;
		e[i].name = (char *)at + 1;
		at += strlen(e[i].name) + 2;
	}
	memcpy(m->next + m->next_len, m->old + d->at, d->bytes);
	next_push(m, d->bytes, &d->key, 0);
	m->recalled++;
	*entries = e;
	*count = n;
	return 1;
}

int walk_memo_note(walk_memo_t *m, const char *path, size_t len, const struct stat *st, const walk_entry_t *entries, size_t count)
{
	dir_key_t key;
	size_t bytes = DIR_HEAD + len, n = 0;
	uint8_t *p;

	m->listed++;
	key_of(st, &key);
	if (path[0] != '/' || len > UINT32_MAX || !old_enough(&key, m->horizon_s, m->horizon_ns))
		return 0;
	for (size_t i = 0; i < count; i++) {
		unsigned char t = entries[i].type;
		size_t name_len = strlen(entries[i].name);
		if (t != DT_DIR && t != DT_REG)
			return 0;
		if (t == DT_DIR || tree_walk_module_name(entries[i].name, name_len)) {
			bytes += name_len + 2;
			n++;
		}
	}
	if (bytes - DIR_HEAD - len > UINT32_MAX)
		return 0;
	if (next_reserve(m, bytes) < 0)
		return -1;
	p = m->next + m->next_len;
	key_put(p, &key);
	put32(p + KEY_BYTES, (uint32_t)len);
	put32(p + KEY_BYTES + 4, (uint32_t)(bytes - DIR_HEAD - len));
	put32(p + KEY_BYTES + 8, (uint32_t)n);
	memcpy(p + DIR_HEAD, path, len);
	p += DIR_HEAD + len;
	for (size_t i = 0; i < count; i++) {
		size_t name_len = strlen(entries[i].name);
		if (entries[i].type != DT_DIR && !tree_walk_module_name(entries[i].name, name_len))
			continue;
		*p++ = entries[i].type == DT_DIR ? 'd' : 'f';
		memcpy(p, entries[i].name, name_len + 1);
		p += name_len + 1;
	}
	next_push(m, bytes, &key, 1);
	return 0;
}

static void memo_free(walk_memo_t *m)
{
	free(m->old);
	free(m->old_dirs);
	free(m->slots);
	free(m->next);
	free(m->next_dirs);
	free(m);
}

static void memo_finalize(napi_env env, void *data, void *hint)
{
	(void)env;
	(void)hint;
	memo_free(data);
}

walk_memo_t *walk_memo_arg(napi_env env, napi_value v)
{
	return external_arg(env, "walkModules", v, "a walk memo");
}


/* the directories the next record is made of: this walk's, or the old record's when the memo took part in none */
static size_t record_dirs(const walk_memo_t *m, const dir_chunk_t **dirs, const uint8_t **base)
{
	*dirs = m->walked ? m->next_dirs : m->old_dirs;
	*base = m->walked ? m->next : m->old;
	return m->walked ? m->n_next : m->n_old;
}

/*
 * Which of the n directories go into the next record (1 each, malloc()ed; NULL out of memory): those on
 * `dev` older than the horizon, each path once (roots that overlap, such as an external directory
 * within the module directory, walk a directory twice; a record with a path twice is refused).
 */
static uint8_t *chosen_dirs(const dir_chunk_t *dirs, size_t n, const uint8_t *base, uint64_t dev, int64_t hs, uint32_t hns)
{
	size_t n_slots = 16, mask;
	uint8_t *chosen = calloc(n ? n : 1, 1);
	uint32_t *slots;
	while (n_slots < 2 * n)
		n_slots *= 2;
	slots = calloc(n_slots, sizeof(uint32_t));
	if (chosen == NULL || slots == NULL) {
		free(chosen);
		free(slots);
		return NULL;
	}
	mask = n_slots - 1;
	for (size_t i = 0; i < n; i++) {
		const uint8_t *d = base + dirs[i].at;
		uint32_t len = get32(d + KEY_BYTES);
		size_t s = (size_t)path_hash((const char *)d + DIR_HEAD, len) & mask;
		if (dirs[i].key.dev != dev || !old_enough(&dirs[i].key, hs, hns))
			continue;
		while (slots[s] != 0) {
			const uint8_t *o = base + dirs[slots[s] - 1].at;
			if (get32(o + KEY_BYTES) == len && memcmp(o + DIR_HEAD, d + DIR_HEAD, len) == 0)
				break;
			s = (s + 1) & mask;
		}
		if (slots[s] == 0) {
			slots[s] = (uint32_t)i + 1;
			chosen[i] = 1;
		}
	}
	free(slots);
	return chosen;
}

/*
 * walkMemoRecord(memo, devLo, devHi, horizonSec, horizonNsec): [Buffer, number]
 * The next record: the directories of the walk (of the old record when the memo took part in none) on
 * device dev whose times are older than the horizon (the writer's, on the cache file's clock), and how
 * many of them were listed in this walk.
 */
static napi_value memo_record_js(napi_env env, napi_callback_info info)
{
	napi_value argv[5], buf, fresh_v, result;
	size_t argc = 5, n, len = RECORD_HEAD, count = 0;
	uint32_t dev_lo, dev_hi, hns, fresh = 0;
	uint8_t *chosen;
	int64_t hs;
	const dir_chunk_t *dirs;
	const uint8_t *base;
	walk_memo_t *m;
	void *data;
	uint8_t *p;

	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 5 ||
	    (m = external_arg(env, "walkMemoRecord", argv[0], "a walk memo")) == NULL)
		return NULL;
	if (napi_get_value_uint32(env, argv[1], &dev_lo) != napi_ok || napi_get_value_uint32(env, argv[2], &dev_hi) != napi_ok ||
	    napi_get_value_int64(env, argv[3], &hs) != napi_ok || napi_get_value_uint32(env, argv[4], &hns) != napi_ok) {
		napi_throw_type_error(env, NULL, "walkMemoRecord: expected numbers");
		return NULL;
	}
	n = record_dirs(m, &dirs, &base);
	chosen = chosen_dirs(dirs, n, base, (uint64_t)dev_hi << 32 | dev_lo, hs, hns);
	if (chosen == NULL) {
		napi_throw_error(env, NULL, "walkMemoRecord: out of memory");
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		if (chosen[i]) {
			len += dirs[i].bytes;
			count++;
		}
	}
	/* (too big to be read back: an empty one) */
	if (len > RECORD_MAX)
		len = RECORD_HEAD, count = 0;
	if (napi_create_buffer(env, len, &data, &buf) != napi_ok) {
		free(chosen);
		return NULL;
	}
	p = data;
	put32(p, RECORD_MAGIC);
	put32(p + 4, (uint32_t)count);
	put32(p + 8, (uint32_t)(len - RECORD_HEAD));
	p += RECORD_HEAD;
	for (size_t i = 0; i < n && count > 0; i++) {
		if (!chosen[i])
			continue;
		memcpy(p, base + dirs[i].at, dirs[i].bytes);
		p += dirs[i].bytes;
		fresh += (uint32_t)dirs[i].fresh;
	}
	free(chosen);
	file_crc32_prepare();
	put32((uint8_t *)data + 12, file_crc32(0, (uint8_t *)data + RECORD_HEAD, len - RECORD_HEAD));
	if (napi_create_uint32(env, fresh, &fresh_v) != napi_ok || napi_create_array_with_length(env, 2, &result) != napi_ok ||
	    napi_set_element(env, result, 0, buf) != napi_ok || napi_set_element(env, result, 1, fresh_v) != napi_ok)
		return NULL;
	return result;
}

/* walkMemoStats(memo): [directories listed, directories taken from the record, directories listed that the next record may hold] */
static napi_value memo_stats_js(napi_env env, napi_callback_info info)
{
	napi_value argv[1], result, v;
	size_t argc = 1;
	uint32_t counts[3], fresh = 0;
	walk_memo_t *m;

	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
	    (m = external_arg(env, "walkMemoStats", argv[0], "a walk memo")) == NULL)
		return NULL;
	for (size_t i = 0; i < m->n_next; i++)
		fresh += (uint32_t)m->next_dirs[i].fresh;
	counts[0] = m->listed;
	counts[1] = m->recalled;
	counts[2] = fresh;
	if (napi_create_array_with_length(env, 3, &result) != napi_ok)
		return NULL;
	for (uint32_t i = 0; i < 3; i++)
		if (napi_create_uint32(env, counts[i], &v) != napi_ok || napi_set_element(env, result, i, v) != napi_ok)
			return NULL;
	return result;
}

/* a memo's old record, as when none was given */
static void forget_record(walk_memo_t *m)
{
	free(m->old);
	free(m->old_dirs);
	free(m->slots);
	m->old = NULL;
	m->old_dirs = NULL;
	m->slots = NULL;
	m->n_old = m->n_slots = 0;
}

/*
 * walkMemoNew(record: Uint8Array | null, nowSec?: number): a memo for walkModules, from a record as
 * walkMemoRecord made it (copied; any damage makes it empty). nowSec stands for the clock (tests).
 */
static napi_value memo_new_js(napi_env env, napi_callback_info info)
{
	napi_value argv[2], result;
	size_t argc = 2, len = 0;
	napi_valuetype t;
	struct timespec now;
	walk_memo_t *m;
	void *data = NULL;
	bool is_typed = false;

	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok)
		return NULL;
	m = calloc(1, sizeof(*m));
	if (m == NULL) {
		napi_throw_error(env, NULL, "walkMemoNew: out of memory");
		return NULL;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	if (argc >= 2 && napi_typeof(env, argv[1], &t) == napi_ok && t == napi_number) {
		int64_t sec;
		napi_get_value_int64(env, argv[1], &sec);
		now.tv_sec = (time_t)sec;
		now.tv_nsec = 0;
	}
	m->horizon_s = (int64_t)now.tv_sec - TICK_SEC;
	m->horizon_ns = (uint32_t)now.tv_nsec;
	if (argc >= 1 && napi_is_typedarray(env, argv[0], &is_typed) == napi_ok && is_typed) {
		if (typed_array_arg(env, "walkMemoNew", argv[0], napi_uint8_array, &data, &len) < 0) {
			memo_free(m);
			return NULL;
		}
		uint8_t *copy = len <= RECORD_MAX ? malloc(len ? len : 1) : NULL;
		if (copy != NULL) {
			/* (an empty typed array may have no data at all) */
			if (len > 0)
				memcpy(copy, data, len);
			if (parse_record(m, copy, len) < 0) {
				if (m->old != copy)
					free(copy);
				forget_record(m);
			}
		}
	}
	if (napi_create_external(env, m, memo_finalize, NULL, &result) != napi_ok) {
		memo_free(m);
		return NULL;
	}
	return result;
}

napi_status walk_record_register(napi_env env, napi_value exports)
{
	const napi_property_descriptor props[] = {
		{ "walkMemoNew", NULL, memo_new_js, NULL, NULL, NULL, napi_enumerable, NULL },
		{ "walkMemoRecord", NULL, memo_record_js, NULL, NULL, NULL, napi_enumerable, NULL },
		{ "walkMemoStats", NULL, memo_stats_js, NULL, NULL, NULL, napi_enumerable, NULL },
	};
	return napi_define_properties(env, exports, 3, props);
}
