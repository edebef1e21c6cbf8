/*
 * depmod's walk of a module tree in one call (src/depmod/tree-walk.ts, searchSorted): the module files
 * under a directory, each directory's entries in strcmp order (libuv's scandir order, which
 * fs.readdirSync gives), build/, source/ and depmod.d's excluded names skipped, links followed. In
 * JavaScript the walk made a Dirent object and a path string per entry; a run that takes every module
 * from the scan cache spent more time walking than on anything else but the index files.
 *
 * Anything the walk would have to report (a directory that cannot be read, an entry that cannot be
 * stat()ed, a file that is neither regular nor a directory) gives null: the caller then walks again in
 * JavaScript, in kmod's raw order, and reports it there.
 *
 * Given a memo (walk_record.c), each directory is stat()ed and taken from the record of the last walk
 * when its key is unchanged, and only listed otherwise: listing a directory costs ~13 us on ext4, a
 * stat ~1 us. Exclusions are applied here either way, so that the record does not depend on them.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <node_api.h>
#include "tree_walk.h"
#include "walk_record.h"

/* a growing byte buffer; oom set once an allocation failed */
typedef struct {
	char *p;
	size_t len, cap;
	int oom;
} buf_t;

static int buf_reserve(buf_t *b, size_t more)
{
	if (b->oom)
		return -1;
	if (b->len + more + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (b->len + more + 1 > cap)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (p == NULL) {
			b->oom = 1;
			return -1;
		}
		b->p = p;
		b->cap = cap;
	}
	return 0;
}

static int buf_put(buf_t *b, const char *s, size_t n)
{
	if (buf_reserve(b, n) < 0)
		return -1;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

typedef struct {
	buf_t out;        /* the module files' paths, each ended by a NUL */
	char **excludes;  /* depmod.d's exclude names */
	size_t n_excludes;
	walk_memo_t *memo; /* NULL: every directory listed */
} walk_t;

typedef walk_entry_t entry_t;

static int by_name(const void *a, const void *b)
{
	return strcmp(((const entry_t *)a)->name, ((const entry_t *)b)->name);
}

static int excluded(const walk_t *w, const char *name)
{
	if (strcmp(name, "build") == 0 || strcmp(name, "source") == 0)
		return 1;
	for (size_t i = 0; i < w->n_excludes; i++)
		if (strcmp(name, w->excludes[i]) == 0)
			return 1;
	return 0;
}

/* path_ends_with_kmod_ext (src/names/modname.ts): a module extension with something before it */
int tree_walk_module_name(const char *name, size_t len)
{
	static const char *const exts[] = { ".ko", ".ko.gz", ".ko.xz", ".ko.zst" };
	for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
		size_t n = strlen(exts[i]);
		if (len > n && memcmp(name + len - n, exts[i], n) == 0)
			return 1;
	}
	return 0;
}

enum { WALK_OK = 0, WALK_GIVE_UP = 1, WALK_OOM = -1 };

/* the entries of directory `path` (NUL-terminated), sorted; the names are in one block at *block */
static int list_dir(const char *path, entry_t **entries_out, size_t *count_out, buf_t *names)
{
	DIR *d = opendir(path);
	entry_t *entries = NULL;
	size_t count = 0, cap = 0;
	size_t *offsets = NULL;
	struct dirent *de;

	if (d == NULL)
		return WALK_GIVE_UP;
	for (;;) {
		errno = 0;
		de = readdir(d);
		if (de == NULL)
			break;
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (count == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			entry_t *e = realloc(entries, ncap * sizeof(entry_t));
			size_t *o = e == NULL ? NULL : realloc(offsets, ncap * sizeof(size_t));
			if (e != NULL)
				entries = e;
			if (o == NULL)
				goto oom;
			offsets = o;
			cap = ncap;
		}
		offsets[count] = names->len;
		entries[count].type = de->d_type;
		if (buf_put(names, de->d_name, strlen(de->d_name) + 1) < 0)
			goto oom;
		count++;
	}
	if (errno != 0) {
		closedir(d);
		free(entries);
		free(offsets);
		return WALK_GIVE_UP;
	}
	closedir(d);
	/* the names' block is complete (no more reallocations): point into it */
	for (size_t i = 0; i < count; i++)
		entries[i].name = names->p + offsets[i];
	free(offsets);
	/* (an empty directory has no array to sort) */
	if (count > 1)
		qsort(entries, count, sizeof(entry_t), by_name);
	*entries_out = entries;
	*count_out = count;
	return WALK_OK;
oom:
	closedir(d);
	free(entries);
	free(offsets);
	return WALK_OOM;
}

/* list_dir, or the memo's entries for `path` when its record is that of its stat (which is taken first) */
static int list_or_recall(walk_t *w, const buf_t *path, entry_t **entries, size_t *count, buf_t *names)
{
	struct stat st;
	int r;
	if (w->memo == NULL || path->p[0] != '/' || stat(path->p, &st) != 0)
		return list_dir(path->p, entries, count, names);
	r = walk_memo_recall(w->memo, path->p, path->len, &st, entries, count);
	if (r != 0)
		return r > 0 ? WALK_OK : WALK_OOM;
	r = list_dir(path->p, entries, count, names);
	if (r == WALK_OK && walk_memo_note(w->memo, path->p, path->len, &st, *entries, *count) < 0)
		return WALK_OOM;
	return r;
}

/* the walk below directory `path` (path->p, without a trailing '/'); path is as it was on return */
static int walk_dir(walk_t *w, buf_t *path)
{
	buf_t names = { 0 };
	entry_t *entries = NULL;
	size_t count = 0, base = path->len;
	int r = list_or_recall(w, path, &entries, &count, &names);

	for (size_t i = 0; r == WALK_OK && i < count; i++) {
		const char *name = entries[i].name;
		size_t len = strlen(name);
		int is_dir;
		if (excluded(w, name))
			continue;
		path->len = base;
		if (buf_put(path, "/", 1) < 0 || buf_put(path, name, len) < 0) {
			r = WALK_OOM;
			break;
		}
		if (entries[i].type == DT_REG) {
			is_dir = 0;
		} else if (entries[i].type == DT_DIR) {
			is_dir = 1;
		} else {
			/* a link (followed, as fstatat without AT_SYMLINK_NOFOLLOW) or a type readdir does not give */
			struct stat st;
			if (stat(path->p, &st) != 0 || !(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))) {
				r = WALK_GIVE_UP;
				break;
			}
			is_dir = S_ISDIR(st.st_mode);
		}
		if (is_dir)
			r = walk_dir(w, path);
		else if (tree_walk_module_name(name, len) && buf_put(&w->out, path->p, path->len + 1) < 0)
			r = WALK_OOM;
	}
	path->len = base;
	if (path->p != NULL)
		path->p[base] = '\0';
	free(entries);
	free(names.p);
	return r;
}

/* a string argument as latin1 bytes (a binary string), malloc'ed; NULL with *has_nul when it holds a NUL */
static char *latin1_arg(napi_env env, napi_value v, size_t *len_out, int *has_nul)
{
	size_t len;
	char *s;
	*has_nul = 0;
	if (napi_get_value_string_latin1(env, v, NULL, 0, &len) != napi_ok)
		return NULL;
	s = malloc(len + 1);
	if (s == NULL || napi_get_value_string_latin1(env, v, s, len + 1, &len) != napi_ok) {
		free(s);
		return NULL;
	}
	if (strlen(s) != len) {
		*has_nul = 1;
		free(s);
		return NULL;
	}
	*len_out = len;
	return s;
}

/*
 * walkModules(root: string, excludes: string[], memo?: walk memo): string | null
 * The module files under root as "<root>/<dir>/.../<name>", joined by NULs ("" for none), or null
 * (see above). Strings are binary (latin1). A root or an exclude holding a NUL gives null too. With a
 * memo (walkMemoNew), directories are taken from its record where they can be, and noted in it.
 */
static napi_value walk_modules_js(napi_env env, napi_callback_info info)
{
	napi_value argv[3], result = NULL;
	size_t argc = 3, root_len = 0;
	uint32_t n = 0;
	bool is_array = false;
	walk_t w = { { 0 }, NULL, 0, NULL };
	buf_t path = { 0 };
	char *root = NULL;
	int has_nul = 0, r;
	napi_valuetype t;

	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
	    napi_typeof(env, argv[0], &t) != napi_ok || t != napi_string ||
	    napi_is_array(env, argv[1], &is_array) != napi_ok || !is_array ||
	    napi_get_array_length(env, argv[1], &n) != napi_ok) {
		napi_throw_type_error(env, NULL, "walkModules: expected a path and an array of names");
		return NULL;
	}
	if (argc >= 3 && napi_typeof(env, argv[2], &t) == napi_ok && t != napi_undefined && t != napi_null) {
		w.memo = walk_memo_arg(env, argv[2]);
		if (w.memo == NULL)
			return NULL;
		walk_memo_walking(w.memo);
	}
	w.excludes = calloc(n ? n : 1, sizeof(char *));
	if (w.excludes == NULL)
		goto oom;
	for (uint32_t i = 0; i < n; i++) {
		napi_value e;
		size_t len;
		if (napi_get_element(env, argv[1], i, &e) != napi_ok || napi_typeof(env, e, &t) != napi_ok || t != napi_string) {
			napi_throw_type_error(env, NULL, "walkModules: the excluded names must be strings");
			goto done;
		}
		w.excludes[w.n_excludes] = latin1_arg(env, e, &len, &has_nul);
		/* a name with a NUL matches no directory entry */
		if (has_nul)
			continue;
		if (w.excludes[w.n_excludes] == NULL)
			goto oom;
		w.n_excludes++;
	}
	root = latin1_arg(env, argv[0], &root_len, &has_nul);
	if (has_nul) {
		napi_get_null(env, &result);
		goto done;
	}
	if (root == NULL || buf_put(&path, root, root_len) < 0)
		goto oom;
	r = walk_dir(&w, &path);
	if (r == WALK_OOM || w.out.oom)
		goto oom;
	if (r == WALK_GIVE_UP) {
		napi_get_null(env, &result);
		goto done;
	}
	/* no NUL after the last path */
	if (napi_create_string_latin1(env, w.out.len ? w.out.p : "", w.out.len ? w.out.len - 1 : 0, &result) != napi_ok)
		result = NULL;
	goto done;
oom:
	napi_throw_error(env, NULL, "walkModules: out of memory");
	result = NULL;
done:
	for (size_t i = 0; i < w.n_excludes; i++)
		free(w.excludes[i]);
	free(w.excludes);
	free(w.out.p);
	free(path.p);
	free(root);
	return result;
}

napi_status tree_walk_register(napi_env env, napi_value exports)
{
	const napi_property_descriptor props[] = {
		{ "walkModules", NULL, walk_modules_js, NULL, NULL, NULL, napi_enumerable, NULL },
	};
	return napi_define_properties(env, exports, 1, props);
}
