/*
 * A module's share of modules.alias and modules.alias.bin (src/depmod/alias-files.ts aliasPieces),
 * made by the pool thread that scanned the module (module_scan.c), so that depmod's main thread does
 * not make a string per alias and per line: on Debian's full tree that was ~50 ms of its time in a run
 * that writes the scan cache and ~30 ms in one that does not (docs/decisions.md, issue 14).
 * alias-files.ts stays the reference; test/depmod/native-scan.test.ts compares the two on every module.
 */
#include <string.h>
#include "alias_pieces.h"

/* alias_normalize's buffer and path_to_modname's (src/names/modname.ts NAME_MAX_CHARS): longer names are cut */
#define NAME_MAX_CHARS 4095

/* modnameFromPath: the basename up to its first '.', '-' made '_', at most NAME_MAX_CHARS; its length, or -1 without a basename */
static long modname_of_path(const char *path, char out[NAME_MAX_CHARS])
{
	const char *slash = strrchr(path, '/'), *base = slash != NULL ? slash + 1 : path;
	long n = 0;
	if (*base == '\0')
		return -1;
	for (; base[n] != '\0' && base[n] != '.' && n < NAME_MAX_CHARS; n++)
		out[n] = base[n] == '-' ? '_' : base[n];
	return n;
}

/*
 * aliasNormalize of the alias at d[s, e) appended to p's keys: '-' made '_' outside [...] classes, cut
 * after NAME_MAX_CHARS characters (a class begun before the cut is kept whole); 1 done, 0 for an
 * unmatched bracket or a byte above 127 in the key (alias-files.ts gives those their messages), -1
 * out of memory.
 */
static int append_key(struct alias_pieces *p, const uint8_t *d, size_t s, size_t e)
{
	size_t len = e - s, at = p->n_keys, i;
	uint8_t *key;
	if (vec_reserve(&p->keys, at + len, 1))
		return -1;
	key = VEC(p->keys, uint8_t);
	for (i = 0; i < NAME_MAX_CHARS && i < len; i++) {
		uint8_t c = d[s + i];
		if (c == ']')
			return 0;
		if (c == '[') {
			const uint8_t *close = memchr(d + s + i, ']', len - i);
			size_t to;
			if (close == NULL)
				return 0;
			to = (size_t)(close - (d + s));
			memcpy(key + p->n_keys, d + s + i, to - i + 1);
			p->n_keys += to - i + 1;
			i = to;
			continue;
		}
		key[p->n_keys++] = c == '-' ? '_' : c;
	}
	for (i = at; i < p->n_keys; i++)
		if (key[i] > 0x7f)
			return 0;
	return 1;
}

/* "alias <alias> <modname>\n" appended to p's lines; 0, or -1 out of memory */
static int append_line(struct alias_pieces *p, const uint8_t *alias, size_t len, const char *modname, size_t mlen)
{
	size_t size = 6 + len + 1 + mlen + 1;
	uint8_t *line;
	if (vec_reserve(&p->lines, p->n_lines + size, 1))
		return -1;
	line = VEC(p->lines, uint8_t) + p->n_lines;
	memcpy(line, "alias ", 6);
	memcpy(line + 6, alias, len);
	line[6 + len] = ' ';
	memcpy(line + 7 + len, modname, mlen);
	line[7 + len + mlen] = '\n';
	p->n_lines += size;
	return 0;
}

int alias_pieces_make(struct alias_pieces *p, const uint8_t *d, const size_t *ranges, size_t n, const char *path)
{
	char modname[NAME_MAX_CHARS];
	long mlen = modname_of_path(path, modname);
	p->n_lines = p->n_keys = p->n_lengths = 0;
	if (mlen < 0)
		return 0;
	if (vec_reserve(&p->lengths, n > 0 ? n : 1, sizeof(uint32_t)))
		return -1;
	for (size_t k = 0; k < n; k++) {
		size_t s = ranges[2 * k], e = ranges[2 * k + 1], at = p->n_keys;
		int made = append_key(p, d, s, e);
		if (made <= 0) {
			p->n_lines = p->n_keys = 0;
			return made;
		}
		VEC(p->lengths, uint32_t)[k] = (uint32_t)(p->n_keys - at);
		if (append_line(p, d + s, e - s, modname, (size_t)mlen) < 0)
			return -1;
	}
	p->n_lengths = n;
	return 1;
}
