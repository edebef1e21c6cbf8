/*
 * depmod's table of the symbols that modules export (src/depmod/symbols.ts), for a run that reports
 * nothing about imports (no -e, -E or -v): each name owned by the last module in module order that
 * exports it, and the owned names in kmod's hash order (modules.symbols' order), with the module names
 * that modules.symbols and its index pair them with. In JavaScript, a Map entry and an object per
 * export, then the ordering and the joins for the files, cost ~15-20 ms of a run that takes every
 * module from the scan cache (15,500 exports on Debian's full tree).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <node_api.h>
#include "napi_args.h"
#include "name_table.h"
#include "hash_order.h"
#include "symbol_table.h"

/* an export: its name (without -P's prefix) and its module's index */
typedef struct {
	name_t name;
	uint32_t owner;
} export_t;

/* the distinct names of the exports, in order of first appearance, each with its highest owner */
typedef struct {
	name_t *names;
	uint32_t *owners;
	size_t count;
} distinct_t;

/* the distinct names of the n exports into d (room for n); 0, or -1 out of memory */
static int distinct_exports(const export_t *exports, size_t n, distinct_t *d)
{
	name_table_t t;
	if (name_table_init(&t, n) < 0)
		return -1;
	d->count = 0;
	for (size_t k = 0; k < n; k++) {
		const export_t *e = &exports[k];
		uint32_t *slot = name_table_slot(&t, d->names, e->name.p, e->name.len);
		if (*slot == 0) {
			d->names[d->count] = e->name;
			d->owners[d->count] = e->owner;
			*slot = (uint32_t)++d->count;
		} else if (e->owner > d->owners[*slot - 1]) {
			/* kmod adds modules in order, each replacing the owner: the last module keeps it */
			d->owners[*slot - 1] = e->owner;
		}
	}
	free(t.slots);
	return 0;
}

typedef struct {
	const uint8_t *names;
	size_t nbytes;
	const uint32_t *counts, *owners;
	size_t nmods;
	int32_t prefix;
	uint32_t buckets;
	const uint8_t *modnames;
	const uint32_t *modname_lengths;
	size_t nmodnames, nmodname_bytes;
} table_args_t;

/*
 * The exports of the arguments, split at their NULs: counts[i] names of module owners[i] after those of
 * the modules before it, each without -P's prefix. Returns a message for arguments that do not add up.
 */
static const char *split_exports(const table_args_t *a, export_t *out, size_t total)
{
	uint64_t at = 0;
	size_t k = 0;
	for (size_t i = 0; i < a->nmods; i++) {
		if (a->owners[i] >= a->nmodnames)
			return "ownedSymbols: an owner is not a module";
		for (uint32_t j = 0; j < a->counts[i]; j++, k++) {
			if (k >= total || at > a->nbytes)
				return "ownedSymbols: the names and counts do not add up";
			const uint8_t *p = a->names + at;
			const uint8_t *nul = at < a->nbytes ? memchr(p, 0, a->nbytes - at) : NULL;
			uint32_t len = (uint32_t)(nul == NULL ? a->nbytes - at : (size_t)(nul - p));
			out[k].name = (name_t){ p, len };
			out[k].owner = a->owners[i];
			if (a->prefix >= 0 && len > 0 && p[0] == (uint8_t)a->prefix) {
				out[k].name.p++;
				out[k].name.len--;
			}
			at += (uint64_t)len + 1;
		}
	}
	/* the last name ends the bytes (no NUL after it) */
	return k == total && (total == 0 ? a->nbytes == 0 : at == a->nbytes + 1) ? NULL : "ownedSymbols: the names and counts do not add up";
}

/* the five results as a JavaScript array; NULL when something could not be made */
static napi_value make_result(napi_env env, const table_args_t *a, const distinct_t *d, const uint32_t *order)
{
	napi_value names, name_lengths, owners, values, value_lengths, ab[3], result;
	void *names_data, *values_data, *lengths_data[3];
	uint64_t name_bytes = 0, value_bytes = 0;
	uint64_t *modname_at = malloc((a->nmodnames + 1) * sizeof(uint64_t));
	napi_status s = modname_at == NULL ? napi_generic_failure : napi_ok;

	for (size_t m = 0, at = 0; s == napi_ok && m < a->nmodnames; at += a->modname_lengths[m], m++)
		modname_at[m] = at;
	size_t n = d->count;
	for (size_t j = 0; j < n; j++) {
		name_bytes += d->names[j].len;
		value_bytes += a->modname_lengths[d->owners[j]];
	}
	if (s == napi_ok && (name_bytes > INT32_MAX || value_bytes > INT32_MAX))
		s = napi_generic_failure;
	if (s == napi_ok)
		s = napi_create_buffer(env, (size_t)name_bytes, &names_data, &names);
	if (s == napi_ok)
		s = napi_create_buffer(env, (size_t)value_bytes, &values_data, &values);
	for (int t = 0; s == napi_ok && t < 3; t++)
		s = napi_create_arraybuffer(env, n * sizeof(uint32_t), &lengths_data[t], &ab[t]);
	if (s == napi_ok) {
		uint8_t *np = names_data, *vp = values_data;
		uint32_t *nl = lengths_data[0], *ow = lengths_data[1], *vl = lengths_data[2];
		for (size_t j = 0; j < n; j++) {
			const name_t *u = &d->names[order[j]];
			uint32_t owner = d->owners[order[j]];
			np = put_bytes(np, u->p, u->len);
			nl[j] = u->len;
			ow[j] = owner;
			vp = put_bytes(vp, a->modnames + modname_at[owner], a->modname_lengths[owner]);
			vl[j] = a->modname_lengths[owner];
		}
		s = napi_create_typedarray(env, napi_uint32_array, n, ab[0], 0, &name_lengths);
	}
	if (s == napi_ok)
		s = napi_create_typedarray(env, napi_uint32_array, n, ab[1], 0, &owners);
	if (s == napi_ok)
		s = napi_create_typedarray(env, napi_uint32_array, n, ab[2], 0, &value_lengths);
	if (s == napi_ok)
		s = napi_create_array_with_length(env, 5, &result);
	napi_value parts[5] = { names, name_lengths, owners, values, value_lengths };
	for (uint32_t t = 0; s == napi_ok && t < 5; t++)
		s = napi_set_element(env, result, t, parts[t]);
	free(modname_at);
	return s == napi_ok ? result : NULL;
}

/*
 * ownedSymbols(names: Uint8Array, counts: Uint32Array, owners: Uint32Array, prefix: number, buckets:
 * number, modnames: Uint8Array, modnameLengths: Uint32Array): [Buffer, Uint32Array, Uint32Array,
 * Buffer, Uint32Array]
 * names: the exports of the modules, joined by NULs (no NUL after the last): counts[i] of them
 * exported by module owners[i] (an index into the module names, which lie one after another in
 * modnames). A leading `prefix` byte (-1: none) is dropped from each. Returns the distinct names, each
 * owned by the highest module index exporting it, in kmod's hash order for `buckets` buckets: their
 * bytes one after another and lengths, their owners, and their owners' names one after another and
 * their lengths.
 */
static napi_value owned_symbols_js(napi_env env, napi_callback_info info)
{
	static const char fn[] = "ownedSymbols";
	napi_value argv[7], result = NULL;
	size_t argc = 7, ncounts;
	void *names, *counts, *owners, *modnames, *modname_lengths;
	table_args_t a;
	export_t *exports = NULL;
	distinct_t d = { NULL, NULL, 0 };
	uint32_t *order = NULL, *lens = NULL;
	uint64_t *start = NULL;
	const char *bad;

	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 7) {
		napi_throw_type_error(env, NULL, "ownedSymbols: missing arguments");
		return NULL;
	}
	if (typed_array_arg(env, fn, argv[0], napi_uint8_array, &names, &a.nbytes) < 0 ||
	    typed_array_arg(env, fn, argv[1], napi_uint32_array, &counts, &ncounts) < 0 ||
	    typed_array_arg(env, fn, argv[2], napi_uint32_array, &owners, &a.nmods) < 0 ||
	    typed_array_arg(env, fn, argv[5], napi_uint8_array, &modnames, &a.nmodname_bytes) < 0 ||
	    typed_array_arg(env, fn, argv[6], napi_uint32_array, &modname_lengths, &a.nmodnames) < 0)
		return NULL;
	if (napi_get_value_int32(env, argv[3], &a.prefix) != napi_ok || napi_get_value_uint32(env, argv[4], &a.buckets) != napi_ok) {
		napi_throw_type_error(env, NULL, "ownedSymbols: the prefix and buckets must be numbers");
		return NULL;
	}
	a.names = names;
	a.counts = counts;
	a.owners = owners;
	a.modnames = modnames;
	a.modname_lengths = modname_lengths;
	uint64_t total = 0, modname_total = 0;
	for (size_t i = 0; i < ncounts; i++)
		total += a.counts[i];
	for (size_t m = 0; m < a.nmodnames; m++)
		modname_total += a.modname_lengths[m];
	if (ncounts != a.nmods || !hash_buckets_ok(a.buckets) || modname_total != a.nmodname_bytes || total > a.nbytes + 1 || total > UINT32_MAX / 2) {
		napi_throw_range_error(env, NULL, "ownedSymbols: the arguments do not add up");
		return NULL;
	}
	exports = malloc((total ? total : 1) * sizeof(export_t));
	d.names = malloc((total ? total : 1) * sizeof(name_t));
	d.owners = malloc((total ? total : 1) * sizeof(uint32_t));
	if (exports == NULL || d.names == NULL || d.owners == NULL) {
		napi_throw_error(env, NULL, "ownedSymbols: out of memory");
		goto done;
	}
	bad = split_exports(&a, exports, (size_t)total);
	if (bad != NULL) {
		napi_throw_range_error(env, NULL, bad);
		goto done;
	}
	int distinct = distinct_exports(exports, (size_t)total, &d);
	order = malloc((d.count + 1) * sizeof(uint32_t));
	start = malloc((d.count + 1) * sizeof(uint64_t));
	lens = malloc((d.count + 1) * sizeof(uint32_t));
	if (distinct < 0 || order == NULL || start == NULL || lens == NULL) {
		napi_throw_error(env, NULL, "ownedSymbols: out of memory");
		goto done;
	}
	for (size_t j = 0; j < d.count; j++) {
		start[j] = (uint64_t)(d.names[j].p - a.names);
		lens[j] = d.names[j].len;
	}
	if (hash_order_indices(a.names, start, lens, d.count, a.buckets, order) < 0) {
		napi_throw_error(env, NULL, "ownedSymbols: out of memory");
		goto done;
	}
	result = make_result(env, &a, &d, order);
	if (result == NULL)
		napi_throw_error(env, NULL, "ownedSymbols: the result could not be made");
done:
	free(exports);
	free(d.names);
	free(d.owners);
	free(order);
	free(start);
	free(lens);
	return result;
}

napi_status symbol_table_register(napi_env env, napi_value exports)
{
	const napi_property_descriptor props[] = {
		{ "ownedSymbols", NULL, owned_symbols_js, NULL, NULL, NULL, napi_enumerable, NULL },
	};
	return napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
