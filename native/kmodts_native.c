/*
 * kmodts' native helper: the three module system calls, each returning 0 or -errno.
 * glibc has no finit_module wrapper, so all three go through syscall(2) alike.
 * The JavaScript side (src/backends/native.ts) does everything else. The addon also carries depmod's
 * symbol extraction (module_symbols.c), index writer (index_writer.c) and module decompression with
 * the system's liblzma and libzstd (decompress.c, decode_napi.c, read_batch.c).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <node_api.h>
#include "decode_napi.h"
#include "index_writer.h"
#include "file_crc.h"
#include "buffer_release.h"
#include "read_batch.h"
#include "stat_keys.h"
#include "hash_order.h"
#include "word_ranges.h"
#include "alias_files.h"
#include "import_dictionary.h"
#include "import_owners.h"
#include "pair_lines.h"
#include "dep_lines.h"
#include "symbol_table.h"
#include "tree_walk.h"
#include "walk_record.h"
#include "module_symbols.h"
#include "modinfo_parts.h"
#include "module_scan.h"

#define CHECK(call)                                                            \
	do {                                                                   \
		if ((call) != napi_ok)                                         \
			return NULL;                                           \
	} while (0)

/* Copies a binary string argument (one char per byte: module parameters and names as kmodts holds them) into a NUL-terminated heap buffer. */
static char *get_string(napi_env env, napi_value v)
{
	size_t len = 0;
	char *s;

	if (napi_get_value_string_latin1(env, v, NULL, 0, &len) != napi_ok) {
		napi_throw_type_error(env, NULL, "expected a string");
		return NULL;
	}
	s = malloc(len + 1);
	if (s == NULL) {
		napi_throw_error(env, NULL, "out of memory");
		return NULL;
	}
	if (napi_get_value_string_latin1(env, v, s, len + 1, &len) != napi_ok) {
		free(s);
		napi_throw_type_error(env, NULL, "expected a string");
		return NULL;
	}
	return s;
}

static napi_value result(napi_env env, long r)
{
	napi_value out;
	CHECK(napi_create_int32(env, r < 0 ? -errno : 0, &out));
	return out;
}

static int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv)
{
	size_t argc = want;
	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok)
		return -1;
	if (argc < want) {
		napi_throw_type_error(env, NULL, "missing arguments");
		return -1;
	}
	return 0;
}

/* finitModule(fd: number, params: string, flags: number): number */
static napi_value finit_module_js(napi_env env, napi_callback_info info)
{
	napi_value argv[3];
	int32_t fd, flags;
	char *params;
	long r;

	if (get_args(env, info, 3, argv) < 0)
		return NULL;
	if (napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
	    napi_get_value_int32(env, argv[2], &flags) != napi_ok) {
		napi_throw_type_error(env, NULL, "fd and flags must be numbers");
		return NULL;
	}
	params = get_string(env, argv[1]);
	if (params == NULL)
		return NULL;
	r = syscall(SYS_finit_module, fd, params, flags);
	free(params);
	return result(env, r);
}

/* initModule(image: Uint8Array, params: string): number */
static napi_value init_module_js(napi_env env, napi_callback_info info)
{
	napi_value argv[2];
	napi_typedarray_type type;
	size_t length, offset;
	napi_value buffer;
	void *data;
	char *params;
	long r;

	if (get_args(env, info, 2, argv) < 0)
		return NULL;
	if (napi_get_typedarray_info(env, argv[0], &type, &length, &data, &buffer, &offset) != napi_ok ||
	    type != napi_uint8_array) {
		napi_throw_type_error(env, NULL, "image must be a Uint8Array");
		return NULL;
	}
	params = get_string(env, argv[1]);
	if (params == NULL)
		return NULL;
	r = syscall(SYS_init_module, data, (unsigned long)length, params);
	free(params);
	return result(env, r);
}

/* deleteModule(name: string, flags: number): number */
static napi_value delete_module_js(napi_env env, napi_callback_info info)
{
	napi_value argv[2];
	uint32_t flags;
	char *name;
	long r;

	if (get_args(env, info, 2, argv) < 0)
		return NULL;
	if (napi_get_value_uint32(env, argv[1], &flags) != napi_ok) {
		napi_throw_type_error(env, NULL, "flags must be a number");
		return NULL;
	}
	name = get_string(env, argv[0]);
	if (name == NULL)
		return NULL;
	r = syscall(SYS_delete_module, name, flags);
	free(name);
	return result(env, r);
}

static napi_value init(napi_env env, napi_value exports)
{
	const napi_property_descriptor props[] = {
		{ "finitModule", NULL, finit_module_js, NULL, NULL, NULL, napi_enumerable, NULL },
		{ "initModule", NULL, init_module_js, NULL, NULL, NULL, napi_enumerable, NULL },
		{ "deleteModule", NULL, delete_module_js, NULL, NULL, NULL, napi_enumerable, NULL },
	};
	CHECK(napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props));
	CHECK(module_symbols_register(env, exports));
	CHECK(index_writer_register(env, exports));
	CHECK(file_crc_register(env, exports));
	CHECK(buffer_release_register(env, exports));
	CHECK(stat_keys_register(env, exports));
	CHECK(hash_order_register(env, exports));
	CHECK(word_ranges_register(env, exports));
	CHECK(alias_files_register(env, exports));
	CHECK(import_dictionary_register(env, exports));
	CHECK(import_owners_register(env, exports));
	CHECK(pair_lines_register(env, exports));
	CHECK(dep_lines_register(env, exports));
	CHECK(symbol_table_register(env, exports));
	CHECK(decode_register(env, exports));
	CHECK(read_batch_register(env, exports));
	CHECK(modinfo_parts_register(env, exports));
	CHECK(tree_walk_register(env, exports));
	CHECK(walk_record_register(env, exports));
	CHECK(module_scan_register(env, exports));
	return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
