// The iteration order of kmod's hash table (shared/hash.c), which decides the order of modules.symbols and
// of modules absent from modules.order: buckets 0..n-1 by Paul Hsieh's SuperFastHash of the key (16-bit
// little-endian reads, as on x86, and signed chars in the tail as x86 C has them), keys sorted bytewise
// inside a bucket. Keys are binary strings (one char per byte).

function s8(c: number): number {
  return c >= 128 ? c - 256 : c;
}

/** hash_superfast(key, strlen(key)) as a uint32 */
export function superFastHash(key: string): number {
  let len = key.length;
  let hash = len >>> 0;
  const rem = len & 3;
  len >>>= 2;
  let i = 0;
  for (; len > 0; len--) {
    hash = (hash + (key.charCodeAt(i) | (key.charCodeAt(i + 1) << 8))) >>> 0;
    const tmp = (((key.charCodeAt(i + 2) | (key.charCodeAt(i + 3) << 8)) << 11) ^ hash) >>> 0;
    hash = ((hash << 16) ^ tmp) >>> 0;
    i += 4;
    hash = (hash + (hash >>> 11)) >>> 0;
  }
  switch (rem) {
    case 3:
      hash = (hash + (key.charCodeAt(i) | (key.charCodeAt(i + 1) << 8))) >>> 0;
      hash = (hash ^ (hash << 16)) >>> 0;
      hash = (hash ^ (s8(key.charCodeAt(i + 2)) << 18)) >>> 0;
      hash = (hash + (hash >>> 11)) >>> 0;
      break;
    case 2:
      hash = (hash + (key.charCodeAt(i) | (key.charCodeAt(i + 1) << 8))) >>> 0;
      hash = (hash ^ (hash << 11)) >>> 0;
      hash = (hash + (hash >>> 17)) >>> 0;
      break;
    case 1:
      hash = (hash + s8(key.charCodeAt(i))) >>> 0;
      hash = (hash ^ (hash << 10)) >>> 0;
      hash = (hash + (hash >>> 1)) >>> 0;
      break;
  }
  hash = (hash ^ (hash << 3)) >>> 0;
  hash = (hash + (hash >>> 5)) >>> 0;
  hash = (hash ^ (hash << 4)) >>> 0;
  hash = (hash + (hash >>> 17)) >>> 0;
  hash = (hash ^ (hash << 25)) >>> 0;
  hash = (hash + (hash >>> 6)) >>> 0;
  return hash;
}

/** bytewise strcmp order of binary strings (JS compares UTF-16 units, equal to bytes below 256) */
export function strcmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The keys in the order kmod's hash_iter visits them for a table of `buckets` buckets (a power of two,
 * as hash_new rounds up).
 */
export function hashOrder<T>(items: T[], key: (item: T) => string, buckets: number): T[] {
  const mask = buckets - 1;
  const withBucket = items.map((item) => {
    const k = key(item);
    return { item, k, b: superFastHash(k) & mask };
  });
  withBucket.sort((x, y) => x.b - y.b || strcmp(x.k, y.k));
  return withBucket.map((x) => x.item);
}
