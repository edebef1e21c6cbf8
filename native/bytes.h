/* byte helpers shared by the addon's table and text makers */
#ifndef KMODTS_BYTES_H
#define KMODTS_BYTES_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* len bytes copied to out (none from an empty typed array's NULL data); the end of the copy */
static inline uint8_t *put_bytes(uint8_t *out, const uint8_t *p, size_t len)
{
	if (len > 0)
		memcpy(out, p, len);
	return out + len;
}

/* 32-bit FNV-1a of p[0, len): the hash of the addon's open-addressing name tables */
static inline uint32_t fnv1a32(const uint8_t *p, uint32_t len)
{
	uint32_t h = 0x811c9dc5u;
	for (uint32_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 0x01000193u;
	return h;
}
#endif
