// Directory order of sysfs (kernfs): entries are kept sorted by a hash of their name, so readdir of
// /sys/module/<m>/holders lists them in that order, which is what lsmod prints.

const GOLDEN_RATIO_64 = 0x61c8864680b583ebn;
const U64 = (1n << 64n) - 1n;

/** kernfs_name_hash(name, NULL) */
export function kernfsNameHash(name: string): number {
  let hash = 0n;
  const bytes = Buffer.from(name, 'latin1');
  for (const c of bytes) {
    const cc = BigInt(c);
    hash = ((hash + (cc << 4n) + (cc >> 4n)) * 11n) & U64;
  }
  // end_name_hash() = hash_long(hash, 32) on 64-bit
  let h = Number(((hash * GOLDEN_RATIO_64) & U64) >> 32n);
  h &= 0x7fffffff;
  if (h < 2) h += 2;
  if (h >= 0x7fffffff) h = 0x7fffffff - 1;
  return h;
}

/** Names in kernfs directory order: by hash, then by name. */
export function kernfsOrder(names: string[]): string[] {
  return names
    .map((n) => ({ n, h: kernfsNameHash(n) }))
    .sort((a, b) => a.h - b.h || (a.n < b.n ? -1 : a.n > b.n ? 1 : 0))
    .map((x) => x.n);
}
