/* kmod's hash table iteration order of many keys in one call (hash_order.c), registered on the addon's exports */
#ifndef KMODTS_HASH_ORDER_H
#define KMODTS_HASH_ORDER_H
#include <stddef.h>
#include <stdint.h>
#include <node_api.h>
napi_status hash_order_register(napi_env env, napi_value exports);
/* the n keys (key i: len[i] bytes at bytes + start[i]) in kmod's hash order for `buckets` buckets, as indices into out; 0, or -1 out of memory */
int hash_order_indices(const uint8_t *bytes, const uint64_t *start, const uint32_t *len, size_t n, uint32_t buckets, uint32_t *out);
/* a table size kmod's hash_new could have made: a power of two, up to 2^24 */
static inline int hash_buckets_ok(uint32_t buckets)
{
	return buckets != 0 && (buckets & (buckets - 1)) == 0 && buckets <= (1u << 24);
}
#endif
