// The compiled helper (native/): where it is and what it offers. The package ships it prebuilt for
// linux x64 and arm64 (prebuilds/, made at pack time by scripts/prebuild-native.js); elsewhere, or where
// the prebuilt one does not load, the install step builds it when a C compiler is there. The native backend needs it for the module system calls; depmod uses its symbol
// extraction and index writer when it is there and their JavaScript twins (depmod/module-scan.ts,
// indexes/writer.ts) when it is not.
import * as path from 'node:path';

/** native/module_symbols.c scanSymbols: 0 done, 1 an array too small (io has the counts), -1 declined */
export type ScanSymbolsFn = (
  image: Uint8Array,
  io: Float64Array,
  exportRanges: Uint32Array,
  exportCrcs: Float64Array,
  importBytes: Uint8Array,
  importKeys: Int32Array,
  importLengths: Uint32Array,
  importCrcs: Float64Array,
  importWeak: Uint8Array,
) => number;

/**
 * native/index_writer.c buildIndex: the entries' keys, values and priorities in insertion order -> the
 * .bin; each value follows the one before, or starts at valueStarts[k] where given (entries may share one)
 */
export type BuildIndexFn = (keys: Uint8Array, keyLengths: Uint32Array, values: Uint8Array, valueLengths: Uint32Array, priorities: Uint32Array, valueStarts?: Uint32Array) => Buffer;
/** native/index_writer.c buildIndexInBackground: buildIndex on libuv's thread pool (the arrays must not change until it settles) */
export type BuildIndexInBackgroundFn = (...args: Parameters<BuildIndexFn>) => Promise<Buffer>;

/**
 * native/file_crc.c readWithCrc: a whole file read on libuv's thread pool, with the CRC-32 (zlib's) of
 * what follows its first `skipLines` lines (-1 when it has fewer); rejects when the file cannot be read
 */
export type ReadWithCrcFn = (path: string, skipLines: number) => Promise<[Buffer, number]>;

/** 32-bit words of a file's stat key (native/stat_key.h), from statKeys and from the reader's table (src/depmod/stat-keys.ts) */
export const STAT_KEY_WORDS = 12;
/** native/stat_keys.c statKeys: STAT_KEY_WORDS words of stat() per path (src/depmod/stat-keys.ts) */
export type StatKeysFn = (paths: string[]) => Uint32Array;
/** native/stat_keys.c statKeysInBackground: statKeys with the stat()s on libuv's thread pool */
export type StatKeysInBackgroundFn = (paths: string[]) => Promise<Uint32Array>;
/** native/stat_keys.c regularFileSizes: per path its size when a regular file, -1 another kind, -2 no stat() (src/file/regular-files.ts) */
export type RegularFileSizesFn = (paths: string[]) => Float64Array;
/**
 * native/tree_walk.c walkModules: the module files under root in depmod's sorted walk, joined by NULs,
 * or null where the walk meets anything it would have to report (src/depmod/tree-walk.ts)
 */
export type WalkModulesFn = (root: string, excludes: string[], memo?: object) => string | null;

/** native/walk_record.c: the record of a walk's directory listings, taken by the next walk (src/depmod/walk-record.ts) */
export interface NativeWalkRecordFns {
  /** a memo from a record (any damage: an empty one); nowSec stands for CLOCK_REALTIME (tests) */
  walkMemoNew(record: Uint8Array | null, nowSec?: number): object;
  /** the next record (its directories on dev older than the horizon) and how many of them were listed in this walk */
  walkMemoRecord(memo: object, devLo: number, devHi: number, horizonSec: number, horizonNsec: number): [Buffer, number];
  /** directories listed, taken from the record, listed and recordable */
  walkMemoStats(memo: object): [number, number, number];
}

/**
 * native/hash_order.c hashOrder: the indices of keys (binary strings as bytes, one after another,
 * lengths[i] bytes each) in kmod's hash table order for `buckets` buckets (src/depmod/hash.ts)
 */
export type HashOrderFn = (keys: Uint8Array, lengths: Uint32Array, buckets: number) => Uint32Array;

/**
 * native/word_ranges.c wordRangesBelow: per range words[starts[i], starts[i] + counts[i]), 1 when every
 * word masked with `mask` is below `limit` (and the range lies within words), else 0
 */
export type WordRangesBelowFn = (words: Uint32Array, starts: Uint32Array, counts: Uint32Array, mask: number, limit: number) => Uint8Array;

/**
 * native/word_ranges.c wordRangesMark: `size` bytes, 1 at each value a word of the ranges has once masked;
 * null when a range is not within words or a masked word is not below size
 */
export type WordRangesMarkFn = (words: Uint32Array, starts: Uint32Array, counts: Uint32Array, mask: number, size: number) => Uint8Array | null;

/**
 * native/word_ranges.c nulsInRanges: per range bytes[starts[i], starts[i] + lengths[i]), its number of NUL
 * bytes (0xffffffff for a range not within bytes)
 */
export type NulsInRangesFn = (bytes: Uint8Array, starts: Uint32Array, lengths: Uint32Array) => Uint32Array;

/** native/file_crc.c crc32: zlib's crc32(data, crc), on the calling thread */
export type Crc32Fn = (data: Uint8Array, crc: number) => number;

/** native/word_ranges.c wordRangeSums: per range words[starts[i], starts[i] + counts[i]), the sum of its words (-1 for a range not within words) */
export type WordRangeSumsFn = (words: Uint32Array, starts: Uint32Array, counts: Uint32Array) => Float64Array;

/**
 * native/alias_files.c aliasFiles: modules.alias and the promise of modules.alias.bin from every module's
 * alias pieces where they lie (8 numbers a module in rows); null where a key or name is not 7-bit
 */
export type AliasFilesFn = (sources: Uint8Array[], rows: Uint32Array, names: Uint8Array, nameLengths: Uint32Array, header: string) => [Buffer, Promise<Buffer>] | null;

/** native/import_dictionary.c: a scan cache's import dictionary being built (src/depmod/import-dictionary.ts) */
export interface NativeImportDictionaryFns {
  importDictionaryNew(): object;
  /** refs[j]: the entry of name j (added if new), WEAK_REF where weak[j] is 1; 0xffffffff where select[j] is 0. Returns its size. */
  importDictionaryAdd(dict: object, names: Uint8Array, lengths: Uint32Array, keys: Int32Array, crcs: Float64Array, weak: Uint8Array | null, select: Uint8Array | null, refs: Uint32Array): number;
  /** copies of its CRCs, keys, name lengths and names */
  importDictionaryParts(dict: object): [Float64Array, Int32Array, Uint32Array, Uint8Array];
}

/** native/import_owners.c: dependency lists from import dictionaries (src/depmod/dep-graph.ts) */
export interface NativeImportOwnersFns {
  /**
   * per dictionary entry (names each followed by a NUL) the owner (idx, below 2^31) of the exported name
   * (symNames one after another) it resolves to, a leading '.' and then `prefix` (-1: none) dropped; -1 for none
   */
  importOwners(symNames: Uint8Array, symLengths: Uint32Array, symOwners: Uint32Array, dictNames: Uint8Array, dictLengths: Uint32Array, prefix: number): Int32Array;
  /** per module i (refs[starts[i], +counts[i])) the end of its list, then the lists: owners in order first referenced, each once */
  importDeps(refs: Uint32Array, starts: Uint32Array, counts: Uint32Array, owners: Int32Array, modules: number): Int32Array;
}

/**
 * native/pair_lines.c pairLines: for each pair in order head, key, mid, value, tail (keys and values one
 * after another, their lengths given; head, mid and tail below 64 bytes)
 */
export type PairLinesFn = (keys: Uint8Array, keyLengths: Uint32Array, values: Uint8Array, valueLengths: Uint32Array, head: string, mid: string, tail: string) => Buffer;

/**
 * native/dep_lines.c depLines: module k needs deps[ends[k-1], ends[k]) directly, sortIdx[k] is its place
 * in the topological order, names[k] its name in modules.dep (nameLengths[k] bytes, one after another).
 * Returns modules.dep's text, its lines without their newlines one after another, and their lengths.
 */
export type DepLinesFn = (deps: Int32Array, ends: Uint32Array, sortIdx: Int32Array, names: Uint8Array, nameLengths: Uint32Array) => [Buffer, Buffer, Uint32Array];

/**
 * native/symbol_table.c ownedSymbols: the exports (joined by NULs; counts[i] of module owners[i]), a
 * leading `prefix` byte (-1: none) dropped, each name owned by the highest module exporting it, in kmod's
 * hash order for `buckets` buckets: names (bytes, lengths), owners, owners' names (bytes, lengths)
 */
export type OwnedSymbolsFn = (
  names: Uint8Array,
  counts: Uint32Array,
  owners: Uint32Array,
  prefix: number,
  buckets: number,
  modnames: Uint8Array,
  modnameLengths: Uint32Array,
) => [Buffer, Uint32Array, Uint32Array, Buffer, Uint32Array];

export interface NativeAddon extends Partial<NativeImportDictionaryFns>, Partial<NativeImportOwnersFns>, Partial<NativeWalkRecordFns> {
  pairLines?: PairLinesFn;
  depLines?: DepLinesFn;
  ownedSymbols?: OwnedSymbolsFn;
  finitModule(fd: number, params: string, flags: number): number;
  initModule(image: Uint8Array, params: string): number;
  deleteModule(name: string, flags: number): number;
  scanSymbols?: ScanSymbolsFn;
  buildIndex?: BuildIndexFn;
  buildIndexInBackground?: BuildIndexInBackgroundFn;
  readWithCrc?: ReadWithCrcFn;
  crc32?: Crc32Fn;
  statKeys?: StatKeysFn;
  statKeysInBackground?: StatKeysInBackgroundFn;
  regularFileSizes?: RegularFileSizesFn;
  walkModules?: WalkModulesFn;
  hashOrder?: HashOrderFn;
  wordRangesBelow?: WordRangesBelowFn;
  wordRangesMark?: WordRangesMarkFn;
  nulsInRanges?: NulsInRangesFn;
  wordRangeSums?: WordRangeSumsFn;
  aliasFiles?: AliasFilesFn;
  /** native/modinfo_parts.c: bytes in modinfo's hex form (src/file/signature.ts hexString) */
  hexColumns?: (data: Uint8Array) => string;
  /** native/module_scan.c: depmod's scan of an image as a block (src/depmod/native-scan.ts), -1 where it leaves it to JavaScript */
  scanImage?: (image: Uint8Array, into: Uint8Array, path?: string) => number;
  /** native/buffer_release.c: the ArrayBuffers detached, their memory freed (src/depmod/release.ts); how many were */
  detachBuffers?: (buffers: ArrayBuffer[]) => number;
  /** the format of scanImage's and the reader's scan blocks (src/depmod/native-scan.ts SCAN_BLOCK_FORMAT) */
  readerScans?: boolean | number;
}

interface NativePrebuilds {
  prebuildFile(root: string): string;
  localBuildFile(root: string): string;
}

const packageRoot = path.join(__dirname, '..');
const prebuildRulesFile = path.join(packageRoot, 'scripts/native-prebuilds.js');

/**
 * Where the addon may be, in the order tried: KMODTS_NATIVE_ADDON alone when set (tests of the paths
 * without it); else a local build first (it exists only where the prebuilt one was missing or did not
 * load at install time, or after `npm rebuild kmodts`), then the prebuilt one for this platform.
 */
export function nativeAddonCandidates(): string[] {
  if (process.env.KMODTS_NATIVE_ADDON) return [process.env.KMODTS_NATIVE_ADDON];
  // the one place that names the files (shared with the install and pack scripts, which are plain JS)
  let files: NativePrebuilds;
  try {
    files = require(prebuildRulesFile) as NativePrebuilds;
  } catch {
    // a copy of the package without its scripts/: no helper can be found (loadNativeAddon says so)
    return [];
  }
  return [files.localBuildFile(packageRoot), files.prebuildFile(packageRoot)];
}

let loaded: NativeAddon | Error | undefined;
let loadedFrom: string | undefined;

/** the addon's file once loaded; before, or without one, where a local build puts it */
export function nativeAddonPath(): string {
  return loadedFrom ?? nativeAddonCandidates()[0] ?? prebuildRulesFile;
}

/** The addon, loaded on first use, or the error of loading it (the first candidate's that exists). */
export function loadNativeAddon(): NativeAddon | Error {
  if (loaded !== undefined) return loaded;
  const errors: Error[] = [];
  for (const file of nativeAddonCandidates()) {
    try {
      loaded = require(file) as NativeAddon;
      loadedFrom = file;
      return loaded;
    } catch (err) {
      errors.push(err instanceof Error ? err : new Error(String(err)));
    }
  }
  // a file that is there but does not load says more than the absence of another one
  const firstError = errors.find((e) => (e as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') ?? errors[0];
  loaded = firstError ?? new Error(`${prebuildRulesFile} is missing: the native helper cannot be found`);
  return loaded;
}

/**
 * The addon's function `name`, or null without the addon (or with one built before it had that
 * function): what each feature that has a JavaScript twin asks for.
 */
export function nativeFunction<K extends keyof NativeAddon>(name: K): NonNullable<NativeAddon[K]> | null {
  const a = loadNativeAddon();
  return a instanceof Error || typeof a[name] !== 'function' ? null : (a[name] as NonNullable<NativeAddon[K]>);
}

/** The addon's symbol extraction, or null without the addon (or with one built before it had it). */
export function loadNativeSymbols(): ScanSymbolsFn | null {
  return nativeFunction('scanSymbols');
}

/** The addon's index writer, or null without the addon (or with one built before it had it). */
export function loadNativeIndexBuilder(): BuildIndexFn | null {
  return nativeFunction('buildIndex');
}

/** The addon's index writer on the thread pool, or null without it. */
export function loadNativeIndexBuilderInBackground(): BuildIndexInBackgroundFn | null {
  return nativeFunction('buildIndexInBackground');
}

/** The addon's file read with a CRC-32 on the thread pool, or null without it. */
export function loadNativeReadWithCrc(): ReadWithCrcFn | null {
  return nativeFunction('readWithCrc');
}

/** The addon's CRC-32 (zlib's), or null without it. */
export function loadNativeCrc32(): Crc32Fn | null {
  return nativeFunction('crc32');
}

/** The addon's batch stat for depmod's scan cache, or null without the addon (or with one built before it had it). */
export function loadNativeStatKeys(): StatKeysFn | null {
  return nativeFunction('statKeys');
}

/** The addon's batch stat on the thread pool, or null without it. */
export function loadNativeStatKeysInBackground(): StatKeysInBackgroundFn | null {
  return nativeFunction('statKeysInBackground');
}

/** The addon's hash table order, or null without it. */
export function loadNativeHashOrder(): HashOrderFn | null {
  return nativeFunction('hashOrder');
}

/** The addon's bounds check of word ranges, or null without it. */
export function loadNativeWordRangesBelow(): WordRangesBelowFn | null {
  return nativeFunction('wordRangesBelow');
}

/** The addon's marking of the values in word ranges, or null without it. */
export function loadNativeWordRangesMark(): WordRangesMarkFn | null {
  return nativeFunction('wordRangesMark');
}

/** The addon's walk of a module tree, or null without it. */
export function loadNativeTreeWalk(): WalkModulesFn | null {
  return nativeFunction('walkModules');
}

/** The addon's walk record functions, or null without them. */
export function loadNativeWalkRecord(): NativeWalkRecordFns | null {
  const a = loadNativeAddon();
  return a instanceof Error || typeof a.walkMemoNew !== 'function' || typeof a.walkMemoRecord !== 'function' || typeof a.walkMemoStats !== 'function' ? null : (a as NativeWalkRecordFns);
}
