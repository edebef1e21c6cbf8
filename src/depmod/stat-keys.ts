// The stat keys of module files for depmod's scan cache (scan-cache.ts): device, inode, size, mtime and
// ctime with their nanoseconds, as twelve 32-bit words per file (native/stat_keys.c's layout: 64-bit
// values as two words, low first; seconds in two's complement). A run that takes nearly every module
// from the cache stats every module file: one call into the addon for all of them, instead of a stats
// object of fourteen BigInts per file. Without the addon (or with one built before it had statKeys),
// fs.statSync gives the same words.
import * as fs from '../file/binary-os';
import { loadNativeStatKeys, loadNativeStatKeysInBackground, STAT_KEY_WORDS, type StatKeysFn, type StatKeysInBackgroundFn } from '../native-addon';

/** 32-bit words of one file's key */
export const KEY_WORDS = STAT_KEY_WORDS;
/** the last word of a file that could not be stat()ed (no nanosecond count is that large) */
const NO_STAT = 0xffffffff;
const [DEV, SIZE, CTIME_SEC, CTIME_NSEC] = [0, 4, 9, 11];

let native: StatKeysFn | null | undefined;
let nativeInBackground: StatKeysInBackgroundFn | null | undefined;

/** Whether statKeys goes through the addon (false: fs.statSync; tests compare the two). Returns whether it does. */
export function useNativeStatKeys(on: boolean): boolean {
  native = on ? loadNativeStatKeys() : null;
  nativeInBackground = on ? loadNativeStatKeysInBackground() : null;
  return native !== null;
}

function put64(out: Uint32Array, at: number, v: bigint): void {
  const u = BigInt.asUintN(64, v);
  out[at] = Number(u & 0xffffffffn);
  out[at + 1] = Number(u >> 32n);
}

/** one file's words at `at` of `out`, by fs.statSync (links followed) */
function statInto(path: string, out: Uint32Array, at: number): void {
  let st: fs.BigIntStats;
  try {
    st = fs.statSync(path, { bigint: true });
  } catch {
    out[at + KEY_WORDS - 1] = NO_STAT;
    return;
  }
  put64(out, at, st.dev);
  put64(out, at + 2, st.ino);
  put64(out, at + 4, st.size);
  // nanoseconds as seconds (floored) and the nanoseconds within them, as the kernel keeps them
  const [mtimeSec, mtimeNanos] = secondsAndNanos(st.mtimeNs);
  put64(out, at + 6, mtimeSec);
  out[at + 8] = mtimeNanos;
  const [ctimeSec, ctimeNanos] = secondsAndNanos(st.ctimeNs);
  put64(out, at + CTIME_SEC, ctimeSec);
  out[at + CTIME_NSEC] = ctimeNanos;
}

/** The keys of `paths` (KEY_WORDS words each, in order); a file that cannot be stat()ed gets a key that keyOf reads as none. */
export function statKeys(paths: string[]): Uint32Array {
  if (native === undefined) native = loadNativeStatKeys();
  if (native !== null) return native(paths);
  const out = new Uint32Array(KEY_WORDS * paths.length);
  for (let k = 0; k < paths.length; k++) statInto(paths[k], out, KEY_WORDS * k);
  return out;
}

/**
 * statKeys, with the stat()s made on libuv's thread pool by the addon (this thread goes on meanwhile);
 * without it, statKeys' own words, at once.
 */
export function statKeysInBackground(paths: string[]): Promise<Uint32Array> {
  if (nativeInBackground === undefined) nativeInBackground = native === null ? null : loadNativeStatKeysInBackground();
  if (nativeInBackground !== null) return nativeInBackground(paths);
  return Promise.resolve(statKeys(paths));
}

/** file k's key from statKeys' words (a view, no copy), or undefined when it could not be stat()ed */
export function keyOf(keys: Uint32Array, k: number): Uint32Array | undefined {
  if (keys[KEY_WORDS * k + KEY_WORDS - 1] === NO_STAT) return undefined;
  // (one file's words, as a read gives them: already the key)
  return keys.length === KEY_WORDS ? keys : keys.subarray(KEY_WORDS * k, KEY_WORDS * (k + 1));
}

/** one file's key, or undefined */
export function statKey(path: string): Uint32Array | undefined {
  return keyOf(statKeys([path]), 0);
}

/** the key's ctime in nanoseconds */
export function keyCtimeNs(key: Uint32Array): bigint {
  const sec = BigInt.asIntN(64, (BigInt(key[CTIME_SEC + 1]) << 32n) | BigInt(key[CTIME_SEC]));
  return sec * 1_000_000_000n + BigInt(key[CTIME_NSEC]);
}

/** the file's size in the key (exact up to 2^53 bytes) */
export function keyFileSize(key: Uint32Array): number {
  return key[SIZE] + key[SIZE + 1] * 2 ** 32;
}

/** the key's device */
export function keyDev(key: Uint32Array): bigint {
  return (BigInt(key[DEV + 1]) << 32n) | BigInt(key[DEV]);
}

/** seconds (floored) and nanoseconds within them, as statKeys stores times */
function secondsAndNanos(ns: bigint): [bigint, number] {
  const sec = ns >= 0n ? ns / 1_000_000_000n : -((-ns + 999_999_999n) / 1_000_000_000n);
  return [sec, Number(ns - sec * 1_000_000_000n)];
}

/**
 * A test of keys: on device `dev`, with a ctime before `horizonNs` (keyDev(key) === dev && keyCtimeNs(key)
 * < horizonNs), made once for the thousands of keys of a run: the key's words are compared with the
 * bounds' words instead of making BigInts of each key (their nanoseconds are below 10^9, as stat gives them).
 */
export function oldOnDevice(dev: bigint, horizonNs: bigint): (key: Uint32Array) => boolean {
  const devLo = Number(dev & 0xffffffffn);
  const devHi = Number((dev >> 32n) & 0xffffffffn);
  const [sec, nanos] = secondsAndNanos(horizonNs);
  // a key's seconds are a signed 64-bit number: a bound outside that range is above or below them all
  if (sec > 0x7fffffffffffffffn || sec < -0x8000000000000000n) {
    const all = sec > 0n;
    return (key) => key[DEV] === devLo && key[DEV + 1] === devHi && all;
  }
  const secHi = Number(BigInt.asIntN(32, sec >> 32n));
  const secLo = Number(sec & 0xffffffffn);
  return (key) => {
    if (key[DEV] !== devLo || key[DEV + 1] !== devHi) return false;
    const hi = key[CTIME_SEC + 1] | 0;
    if (hi !== secHi) return hi < secHi;
    const lo = key[CTIME_SEC];
    if (lo !== secLo) return lo < secLo;
    return key[CTIME_NSEC] < nanos;
  };
}

/** do two keys (views of KEY_WORDS words) name the same stat? ctime, the likeliest to differ, first */
export function sameKey(a: Uint32Array, b: Uint32Array, at: number): boolean {
  for (let w = KEY_WORDS - 1; w >= 0; w--) if (a[w] !== b[at + w]) return false;
  return true;
}
