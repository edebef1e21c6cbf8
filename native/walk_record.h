/*
 * depmod's record of the directory listings of its last walk (walk_record.c), which the walk
 * (tree_walk.c) takes instead of listing a directory again whose stat has not changed
 */
#ifndef KMODTS_WALK_RECORD_H
#define KMODTS_WALK_RECORD_H
#include <stddef.h>
#include <sys/stat.h>
#include <node_api.h>

/* a directory entry as the walk takes it: its name and its readdir d_type */
typedef struct {
	char *name;
	unsigned char type;
} walk_entry_t;

typedef struct walk_memo walk_memo_t;

/* the memo held by a walkMemoNew() value; NULL with a TypeError thrown for anything else */
walk_memo_t *walk_memo_arg(napi_env env, napi_value v);

/* the memo takes part in a walk (an unused memo hands on the record it was made from) */
void walk_memo_walking(walk_memo_t *m);

/*
 * The recorded entries of directory `path` (len bytes, NUL-terminated) if its record's key is that of
 * `st`: 1 with *entries (malloc()ed, sorted, names within the memo) and *count; 0 none; -1 out of memory
 */
int walk_memo_recall(walk_memo_t *m, const char *path, size_t len, const struct stat *st, walk_entry_t **entries, size_t *count);

/* the sorted entries of directory `path`, listed after `st` was taken, for the next record; -1 out of memory */
int walk_memo_note(walk_memo_t *m, const char *path, size_t len, const struct stat *st, const walk_entry_t *entries, size_t count);

napi_status walk_record_register(napi_env env, napi_value exports);
#endif
