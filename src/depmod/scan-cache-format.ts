// The layout of depmod's scan cache file (scan-cache.ts reads it, scan-cache-writer.ts writes it):
// a header line with the format and kmodts' version, a line with the number of entries, the byte
// lengths of their parts, the import dictionary's size, the walk record's bytes and the body's CRC-32,
// then the binary body:
// - every entry's stat key (stat-keys.ts' twelve 32-bit words);
// - every entry's record (RECORD_WORDS 32-bit words: counts and offsets);
// - the paths (UTF-8, joined by NULs);
// - every entry's text, one after the other (latin1: its aliases joined by NULs unless its alias
//   pieces stand for them, its softdeps, weakdeps and exports joined by NULs, its modules.alias lines,
//   its alias keys), padded to 8 bytes;
// - every entry's numbers (numbersBytes: export CRCs, one reference into the import dictionary per
//   import, alias key lengths), each padded to 8 bytes;
// - the import dictionary (import-dictionary.ts);
// - the walk record (walk-record.ts), last, so that it is read by itself from the end of the file
//   before the walk, while the rest is read on the thread pool.
import { loadNativeCrc32, type Crc32Fn } from '../native-addon';
import { KEY_WORDS } from './stat-keys';

/** the cache file's name in the output directory */
export const SCAN_CACHE_FILE = 'modules.kmodts-cache.bin';
/** bumped whenever what a scan finds or how it is stored changes */
const FORMAT = 5;
/**
 * 32-bit words of an entry's record: bytes of its text, numbers of aliases, softdeps, weakdeps and
 * exports, number of imports, offset of its numbers in the block, symbolsErrno (0: none), bytes of its
 * aliases (joined), of its modules.alias lines and of its alias keys (alias-files.ts' AliasPieces),
 * flags
 */
export const RECORD_WORDS = 12;
export const [TEXT_BYTES, ALIASES, SOFTDEPS, WEAKDEPS, EXPORTS, IMPORTS, AT, ERRNO, ALIAS_TEXT, LINE_BYTES, KEY_BYTES, FLAGS] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
/** flags: the entry has its alias pieces (one key length per alias); one of its aliases starts with "devname:" */
export const [HAS_PIECES, HAS_DEVNAME] = [1, 2];
/**
 * the second line: entries, bytes of the paths, texts and numbers, the dictionary's entries and name
 * bytes, the walk record's bytes, the body's CRC-32
 */
export const COUNTS_LINE = /^(\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) ([0-9a-f]{8}) *$/;
/** a walk record bigger than this is damage (Debian's full tree's is ~250 KB) */
export const MAX_WALK_RECORD = 256 << 20;
/** more entries than any tree has: a count above it is damage */
export const MAX_ENTRIES = 1 << 22;

export function header(): string {
  const version = (require('../../package.json') as { version: string }).version;
  return `kmodts depmod scan cache ${FORMAT} ${version}\n`;
}

/**
 * the body's CRC-32 as 8 hex digits (damage, not tampering, is what it is for: see decisions.md), of its
 * parts in order
 */
export function checksum(parts: Uint8Array[]): string {
  let crc = 0;
  for (const part of parts) crc = checksumUpdate(crc, part);
  return checksumHex(crc);
}

/**
 * the CRC-32 `crc` continued over `part`. Empty parts are skipped: zlib's crc32() starts again from 0
 * when given no buffer, which is what Node passes for an empty typed array that has no memory of its
 * own (`new Uint8Array(0)`), so the checksum of the parts came out different from that of the file read
 * back.
 */
export function checksumUpdate(crc: number, part: Uint8Array): number {
  if (part.length === 0) return crc;
  crc32 ??= loadNativeCrc32() ?? (require('node:zlib') as typeof import('node:zlib')).crc32;
  return crc32(part, crc);
}

/**
 * The addon's crc32 where it loads, else zlib's, loaded when first needed: node:zlib brings ~25 of
 * Node's modules (its streams) with it, 3-5 ms of a run that writes the cache (docs/decisions.md, issue
 * 14), and a run that writes none needs neither
 */
let crc32: Crc32Fn | undefined;

export const checksumHex = (crc: number): string => crc.toString(16).padStart(8, '0');

export const pad8 = (n: number): number => (8 - (n & 7)) & 7;

/** the numbers' bytes of an entry with e exports, n imports and p alias keys, 8-aligned */
export function numbersBytes(e: number, n: number, p: number): number {
  const bytes = 8 * e + 4 * n + 4 * p;
  return bytes + pad8(bytes);
}

/** the number of alias keys of the record at r (its number of aliases when it has pieces) */
export function keyCount(records: Uint32Array, r: number): number {
  return (records[r + FLAGS] & HAS_PIECES) !== 0 ? records[r + ALIASES] : 0;
}

/** The body's offsets for `count` entries whose paths and texts take the given bytes. */
export function layout(count: number, pathBytes: number, textBytes: number): { records: number; paths: number; texts: number; block: number } {
  const records = 4 * KEY_WORDS * count;
  const paths = records + 4 * RECORD_WORDS * count;
  const texts = paths + pathBytes;
  const block = texts + textBytes + pad8(texts + textBytes);
  return { records, paths, texts, block };
}
