// The iteration order of kmod's hash table (shared/hash.c), which decides the order of modules.symbols and
// of modules absent from modules.order: buckets 0..n-1 by Paul Hsieh's SuperFastHash of the key (16-bit
// little-endian reads, as on x86, and signed chars in the tail as x86 C has them), keys sorted bytewise
// inside a bucket. Keys are binary strings (one char per byte). Many keys are ordered by the addon
// (native/hash_order.c), which has the same algorithm.
import { loadNativeHashOrder, type HashOrderFn } from '../native-addon';
import { joinedBytes } from './joined-bytes';

function s8(c: number): number {
  return c >= 128 ? c - 256 : c;
}

/**
 * hash_superfast(key, strlen(key)) as a uint32. Computed in int32 arithmetic (`| 0`) and made unsigned
 * once at the end: depmod runs this code unoptimized (bin/kmodts.js turns TurboFan off), where each
 * intermediate uint32 of 2^31 or more (`>>> 0`) was a heap number; 15.5k names of the full tree took
 * ~27 ms that way (docs/decisions.md, issue 14). Only `>>>` by 1 or more is used inside, whose results
 * are below 2^31.
 */
export function superFastHash(key: string): number {
  let len = key.length;
  let hash = len | 0;
  const rem = len & 3;
  len >>>= 2;
  let i = 0;
  for (; len > 0; len--) {
    hash = (hash + (key.charCodeAt(i) | (key.charCodeAt(i + 1) << 8))) | 0;
    const tmp = ((key.charCodeAt(i + 2) | (key.charCodeAt(i + 3) << 8)) << 11) ^ hash;
    hash = (hash << 16) ^ tmp;
    i += 4;
    hash = (hash + (hash >>> 11)) | 0;
  }
  switch (rem) {
    case 3:
      hash = (hash + (key.charCodeAt(i) | (key.charCodeAt(i + 1) << 8))) | 0;
      hash ^= hash << 16;
      hash ^= s8(key.charCodeAt(i + 2)) << 18;
      hash = (hash + (hash >>> 11)) | 0;
      break;
    case 2:
      hash = (hash + (key.charCodeAt(i) | (key.charCodeAt(i + 1) << 8))) | 0;
      hash ^= hash << 11;
      hash = (hash + (hash >>> 17)) | 0;
      break;
    case 1:
      hash = (hash + s8(key.charCodeAt(i))) | 0;
      hash ^= hash << 10;
      hash = (hash + (hash >>> 1)) | 0;
      break;
  }
  hash ^= hash << 3;
  hash = (hash + (hash >>> 5)) | 0;
  hash ^= hash << 4;
  hash = (hash + (hash >>> 17)) | 0;
  hash ^= hash << 25;
  hash = (hash + (hash >>> 6)) | 0;
  return hash >>> 0;
}

/** bytewise strcmp order of binary strings (JS compares UTF-16 units, equal to bytes below 256) */
export function strcmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** below this many keys hashOrder stays in JavaScript (the addon's call and the keys' copy cost more) */
const NATIVE_FROM = 64;

let native: HashOrderFn | null | undefined;

/** Whether hashOrder uses the addon for many keys (false: JavaScript alone; tests compare the two). Returns whether it does. */
export function useNativeHashOrder(on: boolean): boolean {
  native = on ? loadNativeHashOrder() : null;
  return native !== null;
}

/**
 * The keys in the order kmod's hash_iter visits them for a table of `buckets` buckets (a power of two,
 * as hash_new rounds up).
 */
export function hashOrder<T>(items: T[], key: (item: T) => string, buckets: number): T[] {
  const keys = items.map(key);
  if (native === undefined) native = loadNativeHashOrder();
  const order = native !== null && items.length >= NATIVE_FROM ? nativeOrder(native, keys, buckets) : jsOrder(keys, buckets);
  const out: T[] = new Array(items.length);
  for (let j = 0; j < order.length; j++) out[j] = items[order[j]];
  return out;
}

/**
 * hashOrder's indices of the keys, given also as bytes one after another with their lengths (which the
 * caller has made anyway); `bytes` null: a key has a char above 0xff, which has no byte
 */
export function hashOrderIndices(keys: string[], buckets: number, bytes: Uint8Array | null, lengths: Uint32Array): Uint32Array {
  if (native === undefined) native = loadNativeHashOrder();
  return native !== null && bytes !== null && keys.length >= NATIVE_FROM ? native(bytes, lengths, buckets) : jsOrder(keys, buckets);
}

/** the addon's order of keys: their bytes joined once, and their lengths */
function nativeOrder(fn: HashOrderFn, keys: string[], buckets: number): Uint32Array {
  const { bytes, lengths } = joinedBytes(keys);
  // a char above 0xff has no byte (latin1 would truncate it): JavaScript compares such keys as they are
  return bytes === null ? jsOrder(keys, buckets) : fn(bytes, lengths, buckets);
}

/** the keys' indices in hash order: a counting sort by bucket, then each (short) bucket sorted by key */
function jsOrder(keys: string[], buckets: number): Uint32Array {
  const mask = buckets - 1;
  const bucketOf = new Uint32Array(keys.length);
  const start = new Uint32Array(buckets + 1);
  for (let i = 0; i < keys.length; i++) {
    const b = superFastHash(keys[i]) & mask;
    bucketOf[i] = b;
    start[b + 1]++;
  }
  for (let b = 0; b < buckets; b++) start[b + 1] += start[b];
  const slots = new Uint32Array(keys.length);
  const fill = start.slice(0, buckets);
  for (let i = 0; i < keys.length; i++) slots[fill[bucketOf[i]]++] = i;
  for (let b = 0; b < buckets; b++) {
    const lo = start[b];
    const hi = start[b + 1];
    if (hi - lo > 1) slots.subarray(lo, hi).sort((x, y) => strcmp(keys[x], keys[y]));
  }
  return slots;
}

/** 32-bit FNV-1a: start from FNV_OFFSET, then h = Math.imul(h ^ byte, FNV_PRIME) for each byte */
export const FNV_OFFSET = 0x811c9dc5;
export const FNV_PRIME = 0x01000193;

/**
 * depmod's own key for an import's name (FNV-1a over the bytes of d[start..end)): the scan threads
 * compute it from the image's bytes (or inline where they copy the bytes anyway), and the import
 * dictionaries hash the names by it (native/import_dictionary.c, import-dictionary.ts).
 */
export function symbolKeyOfBytes(d: Uint8Array, start: number, end: number): number {
  let h = FNV_OFFSET;
  for (let i = start; i < end; i++) h = Math.imul(h ^ d[i], FNV_PRIME);
  return h | 0;
}
