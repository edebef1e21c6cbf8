// depmod's cache of per-module scan results (docs/decisions.md, "Incremental depmod"): what a module's
// scan found (module-scan.ts's ModuleScan), kept for the next run, keyed by the module file's path and
// its stat (device, inode, size, mtime and ctime in nanoseconds). Only scans are cached: everything not
// tied to one module file (depmod.d, modules.order, modules.builtin*, -E/-F, the options) is read again
// on every run.
//
// The file (scan-cache-format.ts) is read whole; loading is one CRC, one decoding of the paths and the
// checks of the records, the import dictionary and (by the addon, in one call, where it is there) every
// entry's import references, and a hit one decoding of its strings (its numbers
// and alias pieces are made when read: cached-scan.ts). Each entry keeps its share of
// modules.alias(.bin) ready made (alias-files.ts' AliasPieces), so that a hit makes no string for its
// aliases (only a module with a devname: alias has them decoded, for modules.devname), and its imports
// as references into the dictionary of all distinct imports (import-dictionary.ts). Whatever is wrong
// with the file (missing, unreadable, short, corrupt, another version, counts or offsets out of
// bounds) makes load() return undefined, and the run scans every module; an entry whose strings,
// references or keys do not add up to its counts misses (its module is read). scan-cache-writer.ts
// writes it to a temporary file and renames it, so readers see a whole old or a whole new cache. The
// file ends with the walk record (walk-record.ts), which readHead() reads before the walk.
import * as fs from '../file/binary-os';
import { CachedAliasPieces, CachedScan, type CachedNumbers } from './cached-scan';
import { ImportDictionary, REF_INDEX } from './import-dictionary';
import type { ModuleScan } from './module-scan';
import { ALIAS_TEXT, ALIASES, AT, COUNTS_LINE, ERRNO, EXPORTS, FLAGS, HAS_DEVNAME, HAS_PIECES, header, IMPORTS, KEY_BYTES, keyCount, layout, LINE_BYTES, MAX_ENTRIES, MAX_WALK_RECORD, numbersBytes, RECORD_WORDS, SOFTDEPS, TEXT_BYTES, WEAKDEPS, checksum, checksumHex } from './scan-cache-format';
import { KEY_WORDS, sameKey } from './stat-keys';
import { loadNativeReadWithCrc, loadNativeWordRangesBelow, nativeFunction, type NulsInRangesFn, type ReadWithCrcFn, type WordRangeSumsFn, type WordRangesBelowFn } from '../native-addon';

export { SCAN_CACHE_FILE } from './scan-cache-format';
export { ScanCacheWriter } from './scan-cache-writer';

/** An entry's parts as stored, for the next cache: its record, its text, its numbers. */
export interface StoredEntry {
  record: Uint32Array;
  text: Uint8Array;
  /** its export CRCs' bytes */
  exportCrcs: Uint8Array;
  /** its alias key lengths' bytes */
  keyLengths: Uint8Array;
  /** its imports: references into a cache's dictionary, or (null) into that of the cache being written */
  imports: { refs: Uint32Array; dictionary: ImportDictionary | null };
}

/** a StoredEntry's imports */
export function storedImports(refs: Uint32Array, dictionary: ImportDictionary | null): StoredEntry['imports'] {
  return { refs, dictionary };
}

/** A loaded cache: scans by path, each valid for one stat. */
export class ScanCache {
  private constructor(
    private readonly index: Map<string, number>,
    private readonly keys: Uint32Array,
    private readonly records: Uint32Array,
    /** each entry's strings: offset in `texts` */
    private readonly textAt: Float64Array,
    private readonly texts: Buffer,
    private readonly block: ArrayBuffer,
    private readonly blockAt: number,
    readonly dictionary: ImportDictionary,
    private readonly checks: EntryChecks,
  ) {
    this.blockWords = new Uint32Array(block, 0, block.byteLength >>> 2);
  }

  /** the file's buffer as 32-bit words (the references and lengths are checked through it, without a view per entry) */
  private readonly blockWords: Uint32Array;

  get size(): number {
    return this.index.size;
  }

  /** the bytes of the file it was read from */
  get fileBytes(): number {
    return this.block.byteLength;
  }

  /** The cache in `file`, or undefined when there is none or it cannot be used (never throws). */
  static load(file: string): ScanCache | undefined {
    try {
      return ScanCache.parse(fs.readFileSync(file));
    } catch {
      return undefined;
    }
  }

  /**
   * The first two lines of `file` when it is a cache of this version, and its walk record (walk-record.ts)
   * where it has one: read before the walk, from one open file (the record, at its end, then belongs to
   * the lines read; loadInBackground checks that the file it reads has them too). Undefined for no
   * file, another version or a second line that does not parse.
   */
  static readHead(file: string): { lines: string; walkRecord: Buffer | undefined } | undefined {
    const head = header();
    // the two lines are ~100 bytes: a longer second line is damage
    const buf = Buffer.allocUnsafe(head.length + 256);
    try {
      const fd = fs.openSync(file, 'r');
      try {
        const got = fs.readSync(fd, buf, 0, buf.length, 0);
        if (got < head.length || buf.toString('latin1', 0, head.length) !== head) return undefined;
        const nl = buf.subarray(0, got).indexOf(0x0a, head.length);
        const m = nl < 0 ? null : COUNTS_LINE.exec(buf.toString('latin1', head.length, nl));
        if (m === null) return undefined;
        const walkBytes = Number(m[7]);
        const size = fs.fstatSync(fd).size;
        let walkRecord: Buffer | undefined;
        if (walkBytes > 0 && walkBytes <= MAX_WALK_RECORD && walkBytes <= size - nl - 1) {
          walkRecord = Buffer.allocUnsafe(walkBytes);
          if (fs.readSync(fd, walkRecord, 0, walkBytes, size - walkBytes) !== walkBytes) walkRecord = undefined;
        }
        return { lines: buf.toString('latin1', 0, nl + 1), walkRecord };
      } finally {
        fs.closeSync(fd);
      }
    } catch {
      return undefined;
    }
  }

  /**
   * load(), with the file read on libuv's thread pool in one read (fs.readFile would read it in
   * pieces, each waiting for this thread), so that the read overlaps depmod's walk of the tree. Resolves
   * to undefined for anything wrong, as load() does, and for a file whose first lines are not `lines`
   * where given (readHead's: another version of the file than the walk record was read from).
   */
  static loadInBackground(file: string, lines?: string): Promise<ScanCache | undefined> {
    if (readWithCrc === undefined) readWithCrc = loadNativeReadWithCrc();
    // with the addon, the body's checksum is computed there too: its first pass over the fresh memory
    // of the read is then not this thread's
    const read: Promise<[Buffer, number | undefined]> = readWithCrc !== null ? readWithCrc(file, 2) : readWhole(file).then((data) => [data, undefined]);
    return read.then(
      ([data, bodyCrc]) => {
        try {
          return ScanCache.parse(data, bodyCrc, lines);
        } catch {
          return undefined;
        }
      },
      () => undefined,
    );
  }

  /**
   * the cache in `data`; bodyCrc, where given, is the CRC-32 of what follows its first two lines, and
   * `lines`, where given, what those must be
   */
  private static parse(data: Buffer, bodyCrc?: number, lines?: string): ScanCache | undefined {
    const head = header();
    if (data.length < head.length || data.toString('latin1', 0, head.length) !== head) return undefined;
    const nl = data.indexOf(0x0a, head.length);
    if (nl < 0 || (lines !== undefined && data.toString('latin1', 0, nl + 1) !== lines)) return undefined;
    const m = COUNTS_LINE.exec(data.toString('latin1', head.length, nl));
    if (m === null) return undefined;
    const [count, pathBytes, textBytes, blockBytes, dictCount, dictNameBytes, walkBytes] = m.slice(1, 8).map(Number);
    if (count > MAX_ENTRIES || dictCount > REF_INDEX) return undefined;
    const at = layout(count, pathBytes, textBytes);
    let body = data.subarray(nl + 1);
    if (blockBytes % 8 !== 0 || body.length !== at.block + blockBytes + 16 * dictCount + dictNameBytes + walkBytes) return undefined;
    if ((bodyCrc === undefined ? checksum([body]) : checksumHex(bodyCrc)) !== m[8]) return undefined;
    // the typed arrays need an 8-aligned start (the writer pads the header line for that)
    if (body.byteOffset % 8 !== 0) {
      const aligned = new Uint8Array(body.length);
      aligned.set(body);
      body = Buffer.from(aligned.buffer);
    }
    const dictionary = ImportDictionary.parse(body.buffer as ArrayBuffer, body.byteOffset + at.block + blockBytes, dictCount, dictNameBytes);
    if (dictionary === undefined) return undefined;
    const keys = new Uint32Array(body.buffer, body.byteOffset, KEY_WORDS * count);
    const records = new Uint32Array(body.buffer, body.byteOffset + at.records, RECORD_WORDS * count);
    const paths = count === 0 ? [] : body.toString('utf8', at.paths, at.texts).split('\0');
    if (paths.length !== count) return undefined;
    const index = new Map<string, number>();
    const textAt = new Float64Array(count);
    let text = 0;
    for (let k = 0; k < count; k++) {
      const r = RECORD_WORDS * k;
      textAt[k] = text;
      text += records[r + TEXT_BYTES];
      if (text > textBytes) return undefined;
      const off = records[r + AT];
      if (records[r + ALIAS_TEXT] + records[r + LINE_BYTES] + records[r + KEY_BYTES] > records[r + TEXT_BYTES]) return undefined;
      if (off % 8 !== 0 || off + numbersBytes(records[r + EXPORTS], records[r + IMPORTS], keyCount(records, r)) > blockBytes) return undefined;
      index.set(paths[k], k);
    }
    if (text !== textBytes || index.size !== count) return undefined;
    const buffer = body.buffer as ArrayBuffer;
    const texts = body.subarray(at.texts, at.texts + textBytes);
    const blockAt = body.byteOffset + at.block;
    return new ScanCache(index, keys, records, textAt, texts, buffer, blockAt, dictionary, ScanCache.entryChecks(records, textAt, texts, buffer, blockAt, dictionary.size));
  }

  /**
   * Every entry's import references, list strings and alias key lengths checked or counted by the addon
   * in one call each (the records' ranges checked already); none without it
   */
  private static entryChecks(records: Uint32Array, textAt: Float64Array, texts: Buffer, buffer: ArrayBuffer, blockAt: number, dictionarySize: number): EntryChecks {
    const [below, nuls, sums] = [rangesBelow(), nulsInRanges(), wordRangeSums()];
    const count = textAt.length;
    if (below === null || nuls === null || sums === null || texts.length > 0xffffffff) return {};
    // where each entry's references and key lengths start in the file's words, and how many; where its lists start in texts, and their bytes
    const refStarts = new Uint32Array(count);
    const refCounts = new Uint32Array(count);
    const keyStarts = new Uint32Array(count);
    const keyCounts = new Uint32Array(count);
    const listStarts = new Uint32Array(count);
    const listLengths = new Uint32Array(count);
    for (let k = 0; k < count; k++) {
      const r = RECORD_WORDS * k;
      const refsAt = (blockAt + records[r + AT] + 8 * records[r + EXPORTS]) >>> 2;
      refStarts[k] = refsAt;
      refCounts[k] = records[r + IMPORTS];
      keyStarts[k] = refsAt + records[r + IMPORTS];
      keyCounts[k] = keyCount(records, r);
      listStarts[k] = textAt[k] + records[r + ALIAS_TEXT];
      listLengths[k] = listBytes(records, r);
    }
    const words = new Uint32Array(buffer, 0, buffer.byteLength >>> 2);
    return { refs: below(words, refStarts, refCounts, REF_INDEX, dictionarySize), listNuls: nuls(texts, listStarts, listLengths), keySums: sums(words, keyStarts, keyCounts) };
  }

  /** `path`'s entry as stored (for the next cache, without copying), whatever its key */
  stored(path: string): StoredEntry | undefined {
    const k = this.index.get(path);
    if (k === undefined) return undefined;
    const r = this.records.subarray(RECORD_WORDS * k, RECORD_WORDS * (k + 1));
    const at = this.blockAt + r[AT];
    // (each word by itself, and the imports' object made by a call: once per kept entry, where
    // unoptimized code pays for destructuring and for an object literal inside another)
    const e = r[EXPORTS];
    const n = r[IMPORTS];
    const p = keyCount(r, 0);
    return {
      record: r,
      text: this.texts.subarray(this.textAt[k], this.textAt[k] + r[TEXT_BYTES]),
      exportCrcs: new Uint8Array(this.block, at, 8 * e),
      keyLengths: new Uint8Array(this.block, at + 8 * e + 4 * n, 4 * p),
      imports: storedImports(new Uint32Array(this.block, at + 8 * e, n), this.dictionary),
    };
  }

  /**
   * The scan of `path` if its stat key (stat-keys.ts) is still the one cached (a new object: the caller
   * may change it).
   */
  get(path: string, key: Uint32Array): ModuleScan | undefined {
    const k = this.index.get(path);
    if (k === undefined || !sameKey(key, this.keys, KEY_WORDS * k)) return undefined;
    const r = RECORD_WORDS * k;
    const rec = this.records;
    const na = rec[r + ALIASES];
    const ns = rec[r + SOFTDEPS];
    const nw = rec[r + WEAKDEPS];
    const e = rec[r + EXPORTS];
    const n = rec[r + IMPORTS];
    const flags = rec[r + FLAGS];
    const hasPieces = (flags & HAS_PIECES) !== 0;
    const p = hasPieces ? na : 0;
    let text = this.textAt[k];
    const aliasText = text;
    text += rec[r + ALIAS_TEXT];
    const otherBytes = listBytes(rec, r);
    const lists = ns + nw + e;
    let others: string[] | undefined;
    let exportsAt = -1;
    const { listNuls, refs, keySums } = this.checks;
    if (listNuls !== undefined && ns + nw === 0) {
      // the exports alone: counted by the addon, their strings made only where something asks for them
      if (lists === 0 ? otherBytes !== 0 : listNuls[k] !== lists - 1) return undefined;
      exportsAt = text;
    } else {
      others = splitStrings(this.texts, text, text + otherBytes, lists);
      if (others === undefined) return undefined;
    }
    text += otherBytes;
    // with pieces the aliases are needed as strings only for modules.devname
    const aliases = hasPieces && (flags & HAS_DEVNAME) === 0 ? NONE : splitStrings(this.texts, aliasText, aliasText + rec[r + ALIAS_TEXT], na);
    if (aliases === undefined) return undefined;
    const at = this.blockAt + rec[r + AT];
    // every reference must name an entry of the dictionary, every key lie within the keys' bytes
    const words = this.blockWords;
    if (refs !== undefined) {
      if (refs[k] === 0) return undefined;
    } else {
      const entries = this.dictionary.size;
      for (let j = 0, w = (at + 8 * e) >>> 2; j < n; j++) if ((words[w + j] & REF_INDEX) >= entries) return undefined;
    }
    const numbers: CachedNumbers = { block: this.block, at, exports: e, imports: n, keys: p, dictionary: this.dictionary };
    const scan =
      others === undefined
        ? e === 0
          ? new CachedScan(aliases, NONE, NONE, NONE, numbers)
          : new CachedScan(aliases, NONE, NONE, undefined, numbers, this.texts, exportsAt, otherBytes)
        : new CachedScan(aliases, ns === 0 ? NONE : others.slice(0, ns), nw === 0 ? NONE : others.slice(ns, ns + nw), ns + nw === 0 ? others : others.slice(ns + nw), numbers);
    if (hasPieces) {
      let keyBytes = 0;
      if (keySums !== undefined) keyBytes = keySums[k];
      else for (let j = 0, w = (at + 8 * e + 4 * n) >>> 2; j < p; j++) keyBytes += words[w + j];
      if (keyBytes !== rec[r + KEY_BYTES]) return undefined;
      scan.aliasPieces = new CachedAliasPieces(this.texts, text, rec[r + LINE_BYTES], keyBytes, numbers);
    }
    if (rec[r + ERRNO] !== 0) scan.symbolsErrno = rec[r + ERRNO];
    return scan;
  }
}

let nativeRanges: WordRangesBelowFn | null | undefined;

/** the addon's check of the references, or null (get() checks each entry's) */
function rangesBelow(): WordRangesBelowFn | null {
  if (nativeRanges === undefined) nativeRanges = loadNativeWordRangesBelow();
  return nativeRanges;
}

let nativeNuls: NulsInRangesFn | null | undefined;

/** the addon's count of the NULs in ranges, or null (get() splits each entry's lists) */
function nulsInRanges(): NulsInRangesFn | null {
  if (nativeNuls === undefined) nativeNuls = nativeFunction('nulsInRanges');
  return nativeNuls;
}

let nativeSums: WordRangeSumsFn | null | undefined;

/** the addon's sums of word ranges, or null (get() adds each entry's key lengths) */
function wordRangeSums(): WordRangeSumsFn | null {
  if (nativeSums === undefined) nativeSums = nativeFunction('wordRangeSums');
  return nativeSums;
}

/**
 * What the addon checked or counted of every entry when the cache was loaded; each undefined without it
 * (get() then checks the entry itself)
 */
interface EntryChecks {
  /** 1 when the entry's import references all name an entry of the dictionary */
  refs?: Uint8Array;
  /** the NULs in its softdeps, weakdeps and exports: their number checked without making the strings */
  listNuls?: Uint32Array;
  /** what its alias key lengths add up to */
  keySums?: Float64Array;
}

/**
 * Whether caches loaded from now on are checked by the addon when loaded (false: each entry in get();
 * tests try both). Returns whether they are.
 */
export function useNativeRefChecks(on: boolean): boolean {
  nativeRanges = on ? loadNativeWordRangesBelow() : null;
  nativeNuls = on ? nativeFunction('nulsInRanges') : null;
  nativeSums = on ? nativeFunction('wordRangeSums') : null;
  return nativeRanges !== null && nativeNuls !== null && nativeSums !== null;
}

/** the bytes of an entry's softdeps, weakdeps and exports (its lists), from its record at r */
function listBytes(records: Uint32Array, r: number): number {
  return records[r + TEXT_BYTES] - records[r + ALIAS_TEXT] - records[r + LINE_BYTES] - records[r + KEY_BYTES];
}

/** the empty list of the scans that have none of a kind (shared: nothing adds to a scan's lists) */
const NONE: string[] = [];

let readWithCrc: ReadWithCrcFn | null | undefined;

/**
 * Whether the cache is read by the addon's readWithCrc (when it is built): false makes it read in
 * JavaScript, with zlib's checksum (tests compare the two). Returns whether the addon is in use.
 */
export function useNativeCacheRead(on: boolean): boolean {
  readWithCrc = on ? loadNativeReadWithCrc() : null;
  return readWithCrc !== null;
}

/** the whole of `file`, read on the thread pool: one read() unless it comes short */
function readWhole(file: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let fd: number;
    let data: Buffer;
    try {
      fd = fs.openSync(file, 'r');
    } catch (err) {
      reject(err);
      return;
    }
    const done = (err: unknown): void => {
      fs.close(fd, () => (err === null ? resolve(data) : reject(err)));
    };
    try {
      data = Buffer.allocUnsafe(fs.fstatSync(fd).size);
    } catch (err) {
      done(err);
      return;
    }
    let got = 0;
    const next = (): void => {
      fs.read(fd, data, got, data.length - got, got, (err, n) => {
        if (err !== null) return done(err);
        got += n;
        if (n === 0 || got === data.length) {
          // a file that shrank meanwhile is read as it is (its counts will not add up)
          data = data.subarray(0, got);
          return done(null);
        }
        next();
      });
    };
    if (data.length === 0) done(null);
    else next();
  });
}

/** `count` strings joined by NULs in texts[from, to), or undefined when there are not that many */
function splitStrings(texts: Buffer, from: number, to: number, count: number): string[] | undefined {
  if (count === 0) return to === from ? NONE : undefined;
  const strings = texts.toString('latin1', from, to).split('\0');
  return strings.length === count ? strings : undefined;
}
