/*
 * depmod's dependency lists from import dictionaries, for a run that reports nothing about its imports
 * (no -e, -E or -v): src/depmod/dep-graph.ts. Each distinct import of the tree (~20,000 names, in a
 * dictionary) is looked up once in a table of the symbols that modules export, and each module's
 * references into the dictionary (~180,000 on Debian's full tree) become the modules it needs, in the
 * order first needed. In JavaScript, which depmod runs without its optimizing compilers, the lookups and
 * the loop over the references took ~18 ms of a run that takes every module from the scan cache.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <node_api.h>
#include "napi_args.h"
#include "name_table.h"
#include "import_owners.h"

/* the table of the n names, a name given twice at its last index (as a Map's set would); 0, or -1 out of memory */
static int table_of(name_table_t *t, const name_t *names, uint32_t n)
{
	if (name_table_init(t, n) < 0)
		return -1;
	for (uint32_t k = 0; k < n; k++)
		*name_table_slot(t, names, names[k].p, names[k].len) = k + 1;
	return 0;
}

/*
 * The n names lying one after another in bytes[0, size), lengths[k] bytes each and each followed by
 * `gap` bytes (a dictionary's NUL, or none), but for the last, whose gap may be left out (a scan's
 * imports, joined by NULs); -1 when they do not fill the bytes exactly.
 */
static int split_names(const uint8_t *bytes, size_t size, const uint32_t *lengths, size_t n, uint32_t gap, name_t *out)
{
	uint64_t at = 0;
	for (size_t k = 0; k < n; k++) {
		if (at + lengths[k] > size)
			return -1;
		out[k].p = bytes + at;
		out[k].len = lengths[k];
		at += (uint64_t)lengths[k] + gap;
	}
	return at == size || (n > 0 && at == size + gap) ? 0 : -1;
}

static napi_value throw_range(napi_env env, const char *msg)
{
	napi_throw_range_error(env, NULL, msg);
	return NULL;
}

/*
 * importOwners(symNames: Uint8Array, symLengths: Uint32Array, symOwners: Uint32Array, dictNames:
 * Uint8Array, dictLengths: Uint32Array, prefix: number): Int32Array
 * For each entry of an import dictionary (its names each followed by a NUL; the last one's may be left
 * out, as in a scan's imports), the owner of the symbol
 * that the import resolves to as kmod's symbol_find has it: a leading '.' dropped, then `prefix`
 * (depmod -P's character; -1 for none). symNames holds the exported names one after another (no
 * separator), symOwners[k] the module index owning name k. -1 where no exported name matches.
 * A name given twice resolves to its last owner.
 */
static napi_value import_owners_js(napi_env env, napi_callback_info info)
{
	static const char fn[] = "importOwners";
	napi_value argv[6], ab, result;
	size_t argc = 6, nsym_bytes, nsyms, nowners, ndict_bytes, ndict;
	void *sym_bytes, *sym_lengths, *sym_owners, *dict_bytes, *dict_lengths, *out_data;
	int32_t prefix;
	name_t *syms = NULL, *dict = NULL;
	name_table_t table = { 0 };

	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 6) {
		napi_throw_type_error(env, NULL, "importOwners: missing arguments");
		return NULL;
	}
	if (typed_array_arg(env, fn, argv[0], napi_uint8_array, &sym_bytes, &nsym_bytes) < 0 ||
	    typed_array_arg(env, fn, argv[1], napi_uint32_array, &sym_lengths, &nsyms) < 0 ||
	    typed_array_arg(env, fn, argv[2], napi_uint32_array, &sym_owners, &nowners) < 0 ||
	    typed_array_arg(env, fn, argv[3], napi_uint8_array, &dict_bytes, &ndict_bytes) < 0 ||
	    typed_array_arg(env, fn, argv[4], napi_uint32_array, &dict_lengths, &ndict) < 0)
		return NULL;
	if (napi_get_value_int32(env, argv[5], &prefix) != napi_ok) {
		napi_throw_type_error(env, NULL, "importOwners: the prefix must be a number");
		return NULL;
	}
	if (nowners != nsyms || nsyms > UINT32_MAX / 2 || ndict > UINT32_MAX)
		return throw_range(env, "importOwners: the symbols' arrays differ in length");
	syms = malloc((nsyms ? nsyms : 1) * sizeof(name_t));
	dict = malloc((ndict ? ndict : 1) * sizeof(name_t));
	if (syms == NULL || dict == NULL) {
		napi_throw_error(env, NULL, "importOwners: out of memory");
		goto done;
	}
	if (split_names(sym_bytes, nsym_bytes, sym_lengths, nsyms, 0, syms) < 0 ||
	    split_names(dict_bytes, ndict_bytes, dict_lengths, ndict, 1, dict) < 0) {
		throw_range(env, "importOwners: names and lengths do not add up");
		goto done;
	}
	for (size_t k = 0; k < nsyms; k++) {
		if (((const uint32_t *)sym_owners)[k] > INT32_MAX) {
			throw_range(env, "importOwners: an owner is out of range");
			goto done;
		}
	}
	if (table_of(&table, syms, (uint32_t)nsyms) < 0) {
		napi_throw_error(env, NULL, "importOwners: out of memory");
		goto done;
	}
	if (napi_create_arraybuffer(env, ndict * sizeof(int32_t), &out_data, &ab) != napi_ok)
		goto done;
	int32_t *out = out_data;
	const uint32_t *owners = sym_owners;
	for (size_t k = 0; k < ndict; k++) {
		const uint8_t *p = dict[k].p;
		uint32_t len = dict[k].len;
		if (len > 0 && p[0] == '.')
			p++, len--;
		if (len > 0 && prefix >= 0 && p[0] == (uint8_t)prefix)
			p++, len--;
		uint32_t at = *name_table_slot(&table, syms, p, len);
		out[k] = at == 0 ? -1 : (int32_t)owners[at - 1];
	}
	if (napi_create_typedarray(env, napi_int32_array, ndict, ab, 0, &result) == napi_ok) {
		free(table.slots);
		free(syms);
		free(dict);
		return result;
	}
done:
	free(table.slots);
	free(syms);
	free(dict);
	return NULL;
}

/*
 * importDeps(refs: Uint32Array, starts: Uint32Array, counts: Uint32Array, owners: Int32Array, modules:
 * number): Int32Array
 * Module i's references are refs[starts[i], starts[i] + counts[i]) (the top bit, weak, is ignored):
 * each names a dictionary entry, whose owner is owners[entry] (-1: none). The result holds first, for
 * each module i, the end of its list (an index into the result), then the lists one after another:
 * each module's owners in the order first referenced, each once. Owners are below `modules`.
 */
static napi_value import_deps_js(napi_env env, napi_callback_info info)
{
	static const char fn[] = "importDeps";
	napi_value argv[5], ab, result;
	size_t argc = 5, nrefs, n, ncounts, nowners;
	void *refs_data, *starts_data, *counts_data, *owners_data, *out_data;
	uint32_t modules;
	uint64_t total = 0;

	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 5) {
		napi_throw_type_error(env, NULL, "importDeps: missing arguments");
		return NULL;
	}
	if (typed_array_arg(env, fn, argv[0], napi_uint32_array, &refs_data, &nrefs) < 0 ||
	    typed_array_arg(env, fn, argv[1], napi_uint32_array, &starts_data, &n) < 0 ||
	    typed_array_arg(env, fn, argv[2], napi_uint32_array, &counts_data, &ncounts) < 0 ||
	    typed_array_arg(env, fn, argv[3], napi_int32_array, &owners_data, &nowners) < 0)
		return NULL;
	if (napi_get_value_uint32(env, argv[4], &modules) != napi_ok) {
		napi_throw_type_error(env, NULL, "importDeps: the module count must be a number");
		return NULL;
	}
	const uint32_t *refs = refs_data, *starts = starts_data, *counts = counts_data;
	const int32_t *owners = owners_data;
	if (ncounts != n)
		return throw_range(env, "importDeps: starts and counts differ in length");
	for (size_t i = 0; i < n; i++) {
		if ((uint64_t)starts[i] + counts[i] > nrefs)
			return throw_range(env, "importDeps: a range lies outside the references");
		total += counts[i];
	}
	for (size_t k = 0; k < nowners; k++)
		if (owners[k] >= (int64_t)modules)
			return throw_range(env, "importDeps: an owner is not a module");
	/* a list is no longer than its references; the marks say which module last took each owner */
	if (n + total > INT32_MAX)
		return throw_range(env, "importDeps: too many references");
	int32_t *list = malloc((n + total ? n + total : 1) * sizeof(int32_t));
	uint32_t *marks = calloc(modules ? modules : 1, sizeof(uint32_t));
	if (list == NULL || marks == NULL) {
		free(list);
		free(marks);
		napi_throw_error(env, NULL, "importDeps: out of memory");
		return NULL;
	}
	size_t at = n;
	for (size_t i = 0; i < n; i++) {
		const uint32_t *r = refs + starts[i];
		for (uint32_t j = 0; j < counts[i]; j++) {
			uint32_t k = r[j] & 0x7fffffffu;
			if (k >= nowners) {
				free(list);
				free(marks);
				return throw_range(env, "importDeps: a reference is not an entry");
			}
			int32_t o = owners[k];
			/* marks hold the module's number plus one: 0 is no module */
			if (o < 0 || marks[o] == i + 1)
				continue;
			marks[o] = (uint32_t)(i + 1);
			list[at++] = o;
		}
		list[i] = (int32_t)at;
	}
	free(marks);
	napi_status s = napi_create_arraybuffer(env, at * sizeof(int32_t), &out_data, &ab);
	if (s == napi_ok) {
		/* (an empty ArrayBuffer's data may be NULL) */
		put_bytes(out_data, (const uint8_t *)list, at * sizeof(int32_t));
		s = napi_create_typedarray(env, napi_int32_array, at, ab, 0, &result);
	}
	free(list);
	return s == napi_ok ? result : NULL;
}

napi_status import_owners_register(napi_env env, napi_value exports)
{
	const napi_property_descriptor props[] = {
		{ "importOwners", NULL, import_owners_js, NULL, NULL, NULL, napi_enumerable, NULL },
		{ "importDeps", NULL, import_deps_js, NULL, NULL, NULL, napi_enumerable, NULL },
	};
	return napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
