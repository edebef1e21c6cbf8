/*
 * A whole module index (.bin) built at once in C: the same trie and the same bytes as
 * src/indexes/writer.ts IndexBuilder (insert in the given order, then serialize, kmod 34's pre-order
 * layout), which stays the reference and the path taken without this helper. depmod builds three large
 * indexes after its scan, on one thread; in JavaScript their tries were a large part of that tail.
 *
 * The caller has checked the strings (7-bit); this file only builds and writes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <node_api.h>
#include "napi_args.h"
#include "index_writer.h"

#define INDEX_MAGIC 0xb007f457u
#define INDEX_VERSION 0x00020001u
#define NODE_PREFIX 0x80000000u
#define NODE_VALUES 0x40000000u
#define NODE_CHILDS 0x20000000u

typedef struct {
	const uint8_t *p;
	uint32_t len;
} str_t;

typedef struct value {
	str_t s;
	uint32_t priority;
	int32_t next; /* index in the value arena, -1 for none */
} value_t;

typedef struct {
	str_t prefix;
	int32_t child;   /* first child (ascending character), -1 for none */
	int32_t sibling; /* next sibling, -1 for none */
	int32_t values;  /* first value, -1 for none */
	uint32_t size, total;
	uint8_t ch;
} node_t;

typedef struct {
	node_t *nodes;
	size_t n_nodes, cap_nodes;
	value_t *values;
	size_t n_values, cap_values;
	/* compute_sizes' and write_nodes' stack */
	int32_t *stack;
	size_t cap_stack;
	int oom;
} trie_t;

/*
 * The arrays of the last build, kept for the next one: depmod builds several indexes in a row, and on
 * a virtual machine memory touched for the first time costs as much as the build itself (each page
 * faulted in). One per thread, as module_symbols.c's scratch.
 */
static _Thread_local trie_t T;

/* room for `nodes` nodes and `values` values without growing (the contents are not kept) */
static int reserve(trie_t *t, size_t nodes, size_t values)
{
	if (nodes > t->cap_nodes) {
		free(t->nodes);
		t->nodes = malloc(nodes * sizeof(node_t));
		t->cap_nodes = t->nodes == NULL ? 0 : nodes;
	}
	if (values > t->cap_values) {
		free(t->values);
		t->values = malloc(values * sizeof(value_t));
		t->cap_values = t->values == NULL ? 0 : values;
	}
	return t->nodes == NULL || t->values == NULL ? -1 : 0;
}

/* the stack for n entries */
static int32_t *stack_of(trie_t *t, size_t n)
{
	if (n > t->cap_stack) {
		free(t->stack);
		t->stack = malloc(n * sizeof(int32_t));
		t->cap_stack = t->stack == NULL ? 0 : n;
	}
	return t->stack;
}

static int32_t new_node(trie_t *t, const uint8_t *p, uint32_t len, uint8_t ch)
{
	node_t *n;
	if (t->n_nodes == t->cap_nodes) {
		size_t cap = t->cap_nodes ? t->cap_nodes * 2 : 1024;
		node_t *nodes = realloc(t->nodes, cap * sizeof(node_t));
		if (nodes == NULL) {
			t->oom = 1;
			return -1;
		}
		t->nodes = nodes;
		t->cap_nodes = cap;
	}
	n = &t->nodes[t->n_nodes];
	n->prefix.p = p;
	n->prefix.len = len;
	n->child = n->sibling = n->values = -1;
	n->size = n->total = 0;
	n->ch = ch;
	return (int32_t)t->n_nodes++;
}

/* addValue: a new value goes before the first one with a priority >= its own */
static void add_value(trie_t *t, int32_t node, str_t s, uint32_t priority)
{
	int32_t v, *link;
	if (t->n_values == t->cap_values) {
		size_t cap = t->cap_values ? t->cap_values * 2 : 1024;
		value_t *values = realloc(t->values, cap * sizeof(value_t));
		if (values == NULL) {
			t->oom = 1;
			return;
		}
		t->values = values;
		t->cap_values = cap;
	}
	v = (int32_t)t->n_values++;
	t->values[v].s = s;
	t->values[v].priority = priority;
	link = &t->nodes[node].values;
	while (*link >= 0 && t->values[*link].priority < priority)
		link = &t->values[*link].next;
	t->values[v].next = *link;
	*link = v;
}

/* IndexBuilder.insert without its checks and duplicate report */
static void insert(trie_t *t, const uint8_t *key, uint32_t klen, str_t value, uint32_t priority)
{
	int32_t node = 0;
	uint32_t i = 0;
	for (;;) {
		node_t *n = &t->nodes[node];
		uint32_t plen = n->prefix.len;
		uint32_t j = 0;
		while (j < plen && i + j < klen && n->prefix.p[j] == key[i + j])
			j++;
		if (j < plen) {
			/* split: the node keeps prefix[0..j), a new child at prefix[j] takes the rest and the contents */
			int32_t c = new_node(t, n->prefix.p + j + 1, plen - j - 1, n->prefix.p[j]);
			if (c < 0)
				return;
			n = &t->nodes[node];
			t->nodes[c].child = n->child;
			t->nodes[c].values = n->values;
			n->prefix.len = j;
			n->child = c;
			n->values = -1;
		}
		i += j;
		if (i == klen) {
			add_value(t, node, value, priority);
			return;
		}
		uint8_t ch = key[i];
		int32_t *link = &t->nodes[node].child;
		while (*link >= 0 && t->nodes[*link].ch < ch)
			link = &t->nodes[*link].sibling;
		if (*link < 0 || t->nodes[*link].ch != ch) {
			int32_t c = new_node(t, key + i + 1, klen - i - 1, ch);
			if (c < 0)
				return;
			/* the arena may have moved: find the link again */
			link = &t->nodes[node].child;
			while (*link >= 0 && t->nodes[*link].ch < ch)
				link = &t->nodes[*link].sibling;
			t->nodes[c].sibling = *link;
			*link = c;
			add_value(t, c, value, priority);
			return;
		}
		node = *link;
		i++;
	}
}

static uint32_t mask(const node_t *n)
{
	uint32_t m = 0;
	if (n->child >= 0)
		m |= NODE_CHILDS;
	if (n->prefix.len > 0)
		m |= NODE_PREFIX;
	if (n->values >= 0)
		m |= NODE_VALUES;
	return m;
}

/* computeSize, iteratively in post-order (a key thousands of bytes long makes a deep trie) */
static int compute_sizes(trie_t *t, uint64_t *total_out)
{
	int32_t *stack = stack_of(t, t->n_nodes * 2);
	size_t sp = 0;
	if (stack == NULL)
		return -1;
	/* entries: node index, with the top bit set once its children have been pushed */
	stack[sp++] = 0;
	while (sp > 0) {
		int32_t e = stack[sp - 1];
		if (e >= 0) {
			stack[sp - 1] = e | INT32_MIN;
			for (int32_t c = t->nodes[e].child; c >= 0; c = t->nodes[c].sibling)
				stack[sp++] = c;
			continue;
		}
		sp--;
		node_t *n = &t->nodes[e & INT32_MAX];
		uint64_t size = 0, total = 0;
		if (n->child >= 0) {
			uint8_t first = t->nodes[n->child].ch, last = first;
			for (int32_t c = n->child; c >= 0; c = t->nodes[c].sibling) {
				last = t->nodes[c].ch;
				total += t->nodes[c].total;
			}
			size += 2 + (uint64_t)(last - first + 1) * 4;
		}
		if (n->prefix.len > 0)
			size += n->prefix.len + 1;
		if (n->values >= 0) {
			size += 4;
			for (int32_t v = n->values; v >= 0; v = t->values[v].next)
				size += 4 + t->values[v].s.len + 1;
		}
		if (size + total > 0x0fffffff)
			return -2;
		n->size = (uint32_t)size;
		n->total = (uint32_t)(size + total);
	}
	*total_out = t->nodes[0].total;
	return 0;
}

static void put32(uint8_t *out, size_t pos, uint32_t v)
{
	out[pos] = (uint8_t)(v >> 24);
	out[pos + 1] = (uint8_t)(v >> 16);
	out[pos + 2] = (uint8_t)(v >> 8);
	out[pos + 3] = (uint8_t)v;
}

static size_t put_string(uint8_t *out, size_t pos, str_t s)
{
	/* (an empty string may have no bytes at all) */
	if (s.len > 0)
		memcpy(out + pos, s.p, s.len);
	out[pos + s.len] = 0;
	return pos + s.len + 1;
}

/* writeNode for every node, in pre-order; returns the end of what was written */
static size_t write_nodes(trie_t *t, uint8_t *out, size_t start)
{
	int32_t *stack = stack_of(t, t->n_nodes + 1);
	size_t sp = 0, pos = start;
	if (stack == NULL)
		return 0;
	stack[sp++] = 0;
	while (sp > 0) {
		node_t *n = &t->nodes[stack[--sp]];
		size_t offset = pos;
		if (n->prefix.len > 0)
			pos = put_string(out, pos, n->prefix);
		if (n->child >= 0) {
			uint8_t first = t->nodes[n->child].ch, last = first;
			for (int32_t c = n->child; c >= 0; c = t->nodes[c].sibling)
				last = t->nodes[c].ch;
			out[pos++] = first;
			out[pos++] = last;
			memset(out + pos, 0, (size_t)(last - first + 1) * 4);
			size_t child_off = offset + n->size;
			int32_t count = 0;
			for (int32_t c = n->child; c >= 0; c = t->nodes[c].sibling) {
				put32(out, pos + 4 * (size_t)(t->nodes[c].ch - first), (uint32_t)child_off | mask(&t->nodes[c]));
				child_off += t->nodes[c].total;
				count++;
			}
			pos += (size_t)(last - first + 1) * 4;
			/* children next, the first on top */
			sp += (size_t)count;
			size_t k = sp;
			for (int32_t c = n->child; c >= 0; c = t->nodes[c].sibling)
				stack[--k] = c;
		}
		if (n->values >= 0) {
			uint32_t count = 0;
			for (int32_t v = n->values; v >= 0; v = t->values[v].next)
				count++;
			put32(out, pos, count);
			pos += 4;
			for (int32_t v = n->values; v >= 0; v = t->values[v].next) {
				put32(out, pos, t->values[v].priority);
				pos = put_string(out, pos + 4, t->values[v].s);
			}
		}
	}
	return pos;
}

/* the arguments of buildIndex and buildIndexInBackground, checked */
typedef struct {
	const uint8_t *keys, *values;
	const uint32_t *klens, *vlens, *prios;
	/* where each value starts in values; NULL: each follows the one before */
	const uint32_t *vstarts;
	size_t n;
} index_input_t;

/* the most arguments they take */
#define INDEX_ARGS 6

/*
 * The arguments' data, with every length checked against its bytes; 0, or -1 with the exception
 * thrown (a TypeError for a missing or mistyped argument, a RangeError for lengths that do not fit).
 */
static int input_args(napi_env env, const char *fn, size_t argc, napi_value *argv, index_input_t *in)
{
	size_t nk, nkl, nv, nvl, np, nvs = 0, koff = 0, voff = 0;
	void *keys, *klens, *values, *vlens, *prios, *vstarts = NULL;
	napi_valuetype type = napi_undefined;
	char msg[96];

	if (argc < 5) {
		snprintf(msg, sizeof msg, "%s: missing arguments", fn);
		napi_throw_type_error(env, NULL, msg);
		return -1;
	}
	if (typed_array_arg(env, fn, argv[0], napi_uint8_array, &keys, &nk) ||
	    typed_array_arg(env, fn, argv[1], napi_uint32_array, &klens, &nkl) ||
	    typed_array_arg(env, fn, argv[2], napi_uint8_array, &values, &nv) ||
	    typed_array_arg(env, fn, argv[3], napi_uint32_array, &vlens, &nvl) ||
	    typed_array_arg(env, fn, argv[4], napi_uint32_array, &prios, &np))
		return -1;
	if (argc >= 6 && napi_typeof(env, argv[5], &type) != napi_ok)
		return -1;
	if (type != napi_undefined && typed_array_arg(env, fn, argv[5], napi_uint32_array, &vstarts, &nvs))
		return -1;
	if (nkl != nvl || nkl != np || (vstarts != NULL && nvs != nkl)) {
		snprintf(msg, sizeof msg, "%s: the length arrays differ in size", fn);
		napi_throw_range_error(env, NULL, msg);
		return -1;
	}
	in->keys = keys;
	in->values = values;
	in->klens = klens;
	in->vlens = vlens;
	in->prios = prios;
	in->vstarts = vstarts;
	in->n = nkl;
	for (size_t k = 0; k < nkl; k++) {
		if (in->vstarts != NULL)
			voff = in->vstarts[k];
		if (in->klens[k] > nk - koff || voff > nv || in->vlens[k] > nv - voff) {
			snprintf(msg, sizeof msg, "%s: lengths beyond the bytes given", fn);
			napi_throw_range_error(env, NULL, msg);
			return -1;
		}
		koff += in->klens[k];
		voff += in->vlens[k];
	}
	return 0;
}

enum { BUILD_OK = 0, BUILD_OOM = -1, BUILD_TOO_LARGE = -2, BUILD_SIZE_MISMATCH = -3 };

/* the trie of the (checked) entries in t, and the size of its file in *size */
static int build_trie(trie_t *t, const index_input_t *in, size_t *size)
{
	uint64_t total = 0;
	int r;

	/* each insert adds at most two nodes (a split and a leaf) and one value */
	t->n_nodes = t->n_values = 0;
	t->oom = 0;
	if (in->n > (SIZE_MAX / sizeof(node_t) - 1) / 2 || reserve(t, 2 * in->n + 1, in->n ? in->n : 1) < 0 || new_node(t, NULL, 0, 0) < 0)
		return BUILD_OOM;
	for (size_t k = 0, koff = 0, voff = 0; k < in->n; k++) {
		if (in->vstarts != NULL)
			voff = in->vstarts[k];
		str_t value = { in->values + voff, in->vlens[k] };
		insert(t, in->keys + koff, in->klens[k], value, in->prios[k]);
		if (t->oom)
			return BUILD_OOM;
		koff += in->klens[k];
		voff += in->vlens[k];
	}
	r = compute_sizes(t, &total);
	if (r == -1)
		return BUILD_OOM;
	if (r == -2)
		return BUILD_TOO_LARGE;
	*size = (size_t)total + 12;
	return BUILD_OK;
}

/* the file of the trie built by build_trie into out (size bytes) */
static int write_index(trie_t *t, uint8_t *out, size_t size)
{
	put32(out, 0, INDEX_MAGIC);
	put32(out, 4, INDEX_VERSION);
	put32(out, 8, 12u | mask(&t->nodes[0]));
	return write_nodes(t, out, 12) == size ? BUILD_OK : BUILD_SIZE_MISMATCH;
}

/* the exception for a failed build */
static void throw_build_error(napi_env env, const char *fn, int r)
{
	char msg[112];
	if (r == BUILD_TOO_LARGE) {
		snprintf(msg, sizeof msg, "%s: the index would be larger than its offsets can address", fn);
		napi_throw_range_error(env, NULL, msg);
		return;
	}
	snprintf(msg, sizeof msg, "%s: %s", fn, r == BUILD_OOM ? "out of memory" : "wrote a different size than computed");
	napi_throw_error(env, NULL, msg);
}

/*
 * buildIndex(keys: Uint8Array, keyLengths: Uint32Array, values: Uint8Array, valueLengths: Uint32Array,
 *            priorities: Uint32Array, valueStarts?: Uint32Array): Buffer
 * Entry k's key and value are the next keyLengths[k] and valueLengths[k] bytes of keys and values (its
 * value at valueStarts[k] where given: entries may share one); the entries are inserted in order. Throws
 * a RangeError for lengths that do not fit the byte arrays.
 */
static napi_value build_index_js(napi_env env, napi_callback_info info)
{
	napi_value argv[INDEX_ARGS], result;
	size_t argc = INDEX_ARGS, size = 0;
	index_input_t in;
	uint8_t *out;
	int r;

	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok)
		argc = 0;
	if (input_args(env, "buildIndex", argc, argv, &in) < 0)
		return NULL;
	r = build_trie(&T, &in, &size);
	if (r == BUILD_OK) {
		if (napi_create_buffer(env, size, (void **)&out, &result) != napi_ok)
			return NULL;
		r = write_index(&T, out, size);
	}
	if (r != BUILD_OK) {
		throw_build_error(env, "buildIndex", r);
		return NULL;
	}
	return result;
}

/*
 * buildIndexInBackground(the same arguments): Promise<Buffer>, buildIndex's file made on libuv's thread
 * pool (depmod makes its text files meanwhile). Bad arguments throw at once, as buildIndex's do; the
 * arrays are held (not copied) until the work is done, so the caller must not change them meanwhile.
 */
typedef struct {
	napi_async_work work;
	napi_deferred deferred;
	napi_ref held[INDEX_ARGS];
	/* the input's arrays where the job owns them (index_build_owned_in_background), freed with it */
	void *owned[INDEX_ARGS];
	index_input_t in;
	uint8_t *out;
	size_t size;
	int result;
	const char *fn;
} index_job_t;

static void index_job_free(napi_env env, index_job_t *job)
{
	for (int i = 0; i < INDEX_ARGS; i++) {
		if (job->held[i] != NULL)
			napi_delete_reference(env, job->held[i]);
		free(job->owned[i]);
	}
	free(job->out);
	free(job);
}

static void index_job_execute(napi_env env, void *data)
{
	index_job_t *job = data;
	(void)env;
	job->result = build_trie(&T, &job->in, &job->size);
	if (job->result != BUILD_OK)
		return;
	job->out = malloc(job->size);
	if (job->out == NULL) {
		job->result = BUILD_OOM;
		return;
	}
	job->result = write_index(&T, job->out, job->size);
}

static void index_job_complete(napi_env env, napi_status status, void *data)
{
	index_job_t *job = data;
	napi_value result, err;

	if (status != napi_ok && job->result == BUILD_OK)
		job->result = BUILD_OOM;
	if (job->result == BUILD_OK) {
		if (buffer_of_malloced(env, (void **)&job->out, job->size, &result) < 0)
			job->result = BUILD_OOM;
	}
	if (job->result == BUILD_OK) {
		napi_resolve_deferred(env, job->deferred, result);
	} else {
		throw_build_error(env, job->fn, job->result);
		if (napi_get_and_clear_last_exception(env, &err) == napi_ok)
			napi_reject_deferred(env, job->deferred, err);
	}
	napi_delete_async_work(env, job->work);
	index_job_free(env, job);
}

/* the job queued on the pool: its promise; else the job freed, and NULL with an error naming job->fn thrown */
static napi_value start_index_job(napi_env env, index_job_t *job)
{
	char msg[96];
	napi_value promise = queue_promised_work(env, "kmodts.buildIndex", index_job_execute, index_job_complete, job, &job->deferred, &job->work);
	if (promise != NULL)
		return promise;
	snprintf(msg, sizeof msg, "%s: could not start the work", job->fn);
	index_job_free(env, job);
	napi_throw_error(env, NULL, msg);
	return NULL;
}

static napi_value build_index_background_js(napi_env env, napi_callback_info info)
{
	napi_value argv[INDEX_ARGS];
	size_t argc = INDEX_ARGS;
	index_job_t *job;

	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok)
		argc = 0;
	job = calloc(1, sizeof(*job));
	if (job == NULL) {
		throw_build_error(env, "buildIndexInBackground", BUILD_OOM);
		return NULL;
	}
	job->fn = "buildIndexInBackground";
	if (input_args(env, "buildIndexInBackground", argc, argv, &job->in) < 0) {
		free(job);
		return NULL;
	}
	/* (valueStarts, the last, only where given) */
	for (int i = 0; i < (job->in.vstarts != NULL ? INDEX_ARGS : INDEX_ARGS - 1); i++) {
		if (napi_create_reference(env, argv[i], 1, &job->held[i]) != napi_ok)
			goto failed;
	}
	return start_index_job(env, job);
failed:
	index_job_free(env, job);
	napi_throw_error(env, NULL, "buildIndexInBackground: could not start the work");
	return NULL;
}

napi_value index_build_owned_in_background(napi_env env, const char *fn, uint8_t *keys, uint32_t *klens, uint8_t *values,
					   uint32_t *vlens, uint32_t *prios, uint32_t *vstarts, size_t n)
{
	index_job_t *job = calloc(1, sizeof(*job));
	void *arrays[INDEX_ARGS] = { keys, klens, values, vlens, prios, vstarts };

	if (job == NULL) {
		for (int i = 0; i < INDEX_ARGS; i++)
			free(arrays[i]);
		throw_build_error(env, fn, BUILD_OOM);
		return NULL;
	}
	memcpy(job->owned, arrays, sizeof arrays);
	job->fn = fn;
	job->in = (index_input_t){ .keys = keys, .values = values, .klens = klens, .vlens = vlens, .prios = prios, .vstarts = vstarts, .n = n };
	return start_index_job(env, job);
}

napi_status index_writer_register(napi_env env, napi_value exports)
{
	const napi_property_descriptor props[] = {
		{ "buildIndex", NULL, build_index_js, NULL, NULL, NULL, napi_enumerable, NULL },
		{ "buildIndexInBackground", NULL, build_index_background_js, NULL, NULL, NULL, napi_enumerable, NULL },
	};
	return napi_define_properties(env, exports, 2, props);
}
