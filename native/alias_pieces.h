/* a module's share of modules.alias and modules.alias.bin, made on the pool thread that scanned it (alias_pieces.c) */
#ifndef KMODTS_ALIAS_PIECES_H
#define KMODTS_ALIAS_PIECES_H
#include <stddef.h>
#include <stdint.h>
#include "vec.h"

/* src/depmod/alias-files.ts AliasPieces: the lines (n_lines bytes), the keys (n_keys bytes), a u32 length per key */
struct alias_pieces {
	vec_t lines, keys, lengths;
	size_t n_lines, n_keys, n_lengths;
};

/*
 * The pieces of the aliases at ranges ([start, end) pairs of d, n of them) of the module at `path`
 * (its name is the path's, as src/names/modname.ts modnameFromPath makes it): 1 made, 0 none (no
 * basename, or an alias that alias-files.ts goes through one by one for its message), -1 out of memory.
 */
int alias_pieces_make(struct alias_pieces *p, const uint8_t *d, const size_t *ranges, size_t n, const char *path);
#endif
