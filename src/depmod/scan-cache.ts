// depmod's cache of per-module scan results (docs/decisions.md, "Incremental depmod"): what a module's
// scan found (module-scan.ts's ModuleScan), kept for the next run, keyed by the module file's path and
// its stat (device, inode, size, mtime and ctime in nanoseconds). Only scans are cached: everything not
// tied to one module file (depmod.d, modules.order, modules.builtin*, -E/-F, the options) is read again
// on every run.
//
// The file: a header line with the format and kmodts' version, a line with the number of entries, the
// byte lengths of their parts and the body's CRC-32, then the binary body (layout() below): each entry's
// stat key and record (counts and offsets), the paths, the entries' strings and their numbers, so that
// loading is one decoding of the paths, and a hit one decoding of its strings and typed-array views
// into the file's buffer. Whatever is wrong with it (missing, unreadable, short, corrupt, another
// version, counts or offsets out of bounds) makes load() return undefined, and the run scans every
// module; an entry whose strings or names do not add up to its counts misses (its module is read). It is written to a temporary file and renamed, so readers see a whole old or
// a whole new cache; concurrent runs each rename their own complete file.
//
// An entry is stored only if its file's ctime is older than the run's start by more than a timestamp
// tick, measured on the clock of the cache's filesystem (the file must be on that filesystem): a file
// changed again within the tick in which it was last changed could keep its stat, and a stat read
// later could not tell. Every write of a file's data and every rename changes its ctime, which no
// program can set, so a stat that matches an old enough entry means the file is as it was scanned.
import * as fs from '../file/binary-os';
import { crc32 } from 'node:zlib';
import { ENODATA, ESRCH, errnoOf } from '../errno';
import type { ModuleScan } from './module-scan';
import { KEY_WORDS, keyCtimeNs, keyDev, sameKey } from './stat-keys';

/** the cache file's name in the output directory */
export const SCAN_CACHE_FILE = 'modules.kmodts-cache.bin';
/** bumped whenever what a scan finds or how it is stored changes */
const FORMAT = 2;
/** the coarsest timestamp tick of the filesystems modules live on (FAT: 2 s) */
const TICK_NS = 2_000_000_000n;
/**
 * 32-bit words of an entry's record: bytes of its strings, numbers of aliases, softdeps, weakdeps and
 * exports, number of imports, bytes of the import names, offset of its numbers in the block,
 * symbolsErrno (0: none)
 */
const RECORD_WORDS = 9;
const [TEXT_BYTES, ALIASES, SOFTDEPS, WEAKDEPS, EXPORTS, IMPORTS, NAMES, AT, ERRNO] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
/** more entries than any tree has: a count above it is damage */
const MAX_ENTRIES = 1 << 22;

function header(): string {
  const version = (require('../../package.json') as { version: string }).version;
  return `kmodts depmod scan cache ${FORMAT} ${version}\n`;
}

/** the body's CRC-32 as 8 hex digits (damage, not tampering, is what it is for: see decisions.md) */
function checksum(parts: Uint8Array[]): string {
  let crc = 0;
  for (const part of parts) crc = crc32(part, crc);
  return crc.toString(16).padStart(8, '0');
}

/** the numbers' bytes of an entry with e exports, n imports and `names` bytes of names, 8-aligned */
function numbersBytes(e: number, n: number, names: number): number {
  const bytes = 8 * (e + n) + 9 * n + names;
  return bytes + ((8 - (bytes & 7)) & 7);
}
const pad8 = (n: number): number => (8 - (n & 7)) & 7;

/**
 * The body's layout for `count` entries whose paths and strings take the given bytes: keys (stat-keys.ts'
 * words), records (32-bit words), the paths (UTF-8, joined by NULs), the entries' strings (latin1, each
 * entry's joined by NULs, one after the other), padding to 8 bytes, the numbers' block.
 */
function layout(count: number, pathBytes: number, textBytes: number): { records: number; paths: number; texts: number; block: number } {
  const records = 4 * KEY_WORDS * count;
  const paths = records + 4 * RECORD_WORDS * count;
  const texts = paths + pathBytes;
  const block = texts + textBytes + pad8(texts + textBytes);
  return { records, paths, texts, block };
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
  ) {}

  get size(): number {
    return this.index.size;
  }

  /** The cache in `file`, or undefined when there is none or it cannot be used (never throws). */
  static load(file: string): ScanCache | undefined {
    try {
      return ScanCache.parse(fs.readFileSync(file));
    } catch {
      return undefined;
    }
  }

  private static parse(data: Buffer): ScanCache | undefined {
    const head = header();
    if (data.length < head.length || data.toString('latin1', 0, head.length) !== head) return undefined;
    const nl = data.indexOf(0x0a, head.length);
    if (nl < 0) return undefined;
    const m = /^(\d+) (\d+) (\d+) (\d+) ([0-9a-f]{8}) *$/.exec(data.toString('latin1', head.length, nl));
    if (m === null) return undefined;
    const [count, pathBytes, textBytes, blockBytes] = [Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4])];
    if (count > MAX_ENTRIES) return undefined;
    const at = layout(count, pathBytes, textBytes);
    let body = data.subarray(nl + 1);
    if (body.length !== at.block + blockBytes) return undefined;
    if (checksum([body]) !== m[5]) return undefined;
    // the typed arrays need an 8-aligned start (the writer pads the header line for that)
    if (body.byteOffset % 8 !== 0) {
      const aligned = new Uint8Array(body.length);
      aligned.set(body);
      body = Buffer.from(aligned.buffer);
    }
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
      if (off % 8 !== 0 || off + numbersBytes(records[r + EXPORTS], records[r + IMPORTS], records[r + NAMES]) > blockBytes) return undefined;
      index.set(paths[k], k);
    }
    if (text !== textBytes || index.size !== count) return undefined;
    return new ScanCache(index, keys, records, textAt, body.subarray(at.texts, at.texts + textBytes), body.buffer as ArrayBuffer, body.byteOffset + at.block);
  }

  /** `path`'s entry as stored (for the next cache, without copying), whatever its key */
  stored(path: string): StoredEntry | undefined {
    const k = this.index.get(path);
    if (k === undefined) return undefined;
    const r = this.records.subarray(RECORD_WORDS * k, RECORD_WORDS * (k + 1));
    return {
      record: r,
      text: this.texts.subarray(this.textAt[k], this.textAt[k] + r[TEXT_BYTES]),
      numbers: new Uint8Array(this.block, this.blockAt + r[AT], numbersBytes(r[EXPORTS], r[IMPORTS], r[NAMES])),
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
    const [na, ns, nw, e, n, names] = [rec[r + ALIASES], rec[r + SOFTDEPS], rec[r + WEAKDEPS], rec[r + EXPORTS], rec[r + IMPORTS], rec[r + NAMES]];
    // one decoding and one split for all of the entry's strings
    const strings = na + ns + nw + e === 0 ? [] : this.texts.toString('latin1', this.textAt[k], this.textAt[k] + rec[r + TEXT_BYTES]).split('\0');
    if (strings.length !== na + ns + nw + e) return undefined;
    const at = this.blockAt + rec[r + AT];
    const importLengths = new Uint32Array(this.block, at + 8 * (e + n) + 4 * n, n);
    // every name must lie within the names' bytes (the lookups read them)
    let end = 0;
    for (let j = 0; j < n; j++) end += importLengths[j] + 1;
    if (end > names + 1) return undefined;
    const scan: ModuleScan = {
      aliases: strings.slice(0, na),
      softdeps: strings.slice(na, na + ns),
      weakdeps: strings.slice(na + ns, na + ns + nw),
      exports: na + ns + nw === 0 ? strings : strings.slice(na + ns + nw),
      exportCrcs: new Float64Array(this.block, at, e),
      importCrcs: new Float64Array(this.block, at + 8 * e, n),
      importKeys: new Int32Array(this.block, at + 8 * (e + n), n),
      importLengths,
      importWeak: new Uint8Array(this.block, at + 8 * (e + n) + 8 * n, n),
      importNames: new Uint8Array(this.block, at + 8 * (e + n) + 9 * n, names),
    };
    if (rec[r + ERRNO] !== 0) scan.symbolsErrno = rec[r + ERRNO];
    return scan;
  }
}

/** An entry's parts as stored: its record (its offset not yet set), its strings' bytes, its numbers. */
interface StoredEntry {
  record: Uint32Array;
  text: Uint8Array;
  numbers: Uint8Array;
}

/** The cache the run will write: the scans of this run's modules, added as they come in. */
export class ScanCacheWriter {
  private readonly paths: string[] = [];
  /** each entry's stat key (as given: the caller does not change it afterwards) */
  private readonly keys: Uint32Array[] = [];
  /** each entry's parts; undefined for one kept from the cache (taken from it only if the file is written) */
  private readonly entries: (StoredEntry | undefined)[] = [];
  /** the cache the kept entries come from */
  private source: ScanCache | undefined;
  /** 1 for the entries that were scanned in this run (not taken from the cache) */
  private readonly scanned: number[] = [];
  /** process.hrtime.bigint() before the first module was looked at */
  private readonly started = process.hrtime.bigint();

  /** a module taken from `cache` (whose get() gave its scan for this stat): its entry is kept as it is */
  keep(path: string, key: Uint32Array, cache: ScanCache): void {
    // nothing is taken from the cache yet: most runs that keep entries add none and write nothing
    this.source = cache;
    this.push(path, key, undefined, 0);
  }

  private push(path: string, key: Uint32Array, entry: StoredEntry | undefined, scanned: number): void {
    this.paths.push(path);
    this.keys.push(key);
    this.entries.push(entry);
    this.scanned.push(scanned);
  }

  /**
   * A module's scan with the stat taken before its file was read. Scans that failed for a reason
   * other than the module's contents (ENODATA: no symbols) are left out, to be tried again next time.
   */
  add(path: string, key: Uint32Array, scan: ModuleScan): void {
    if (scan.symbolsErrno !== undefined && scan.symbolsErrno !== ENODATA) return;
    const e = scan.exports.length;
    const n = scan.importKeys.length;
    const names = scan.importNames.length;
    const numbers = new Uint8Array(numbersBytes(e, n, names));
    const put = (a: ArrayBufferView, at: number): void => numbers.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), at);
    put(scan.exportCrcs, 0);
    put(scan.importCrcs, 8 * e);
    put(scan.importKeys, 8 * (e + n));
    put(scan.importLengths, 8 * (e + n) + 4 * n);
    put(scan.importWeak, 8 * (e + n) + 8 * n);
    put(scan.importNames, 8 * (e + n) + 9 * n);
    const text = Buffer.from([...scan.aliases, ...scan.softdeps, ...scan.weakdeps, ...scan.exports].join('\0'), 'latin1');
    const record = Uint32Array.of(text.length, scan.aliases.length, scan.softdeps.length, scan.weakdeps.length, e, n, names, 0, scan.symbolsErrno ?? 0);
    this.push(path, key, { record, text, numbers }, 1);
  }

  /** the file's parts (header line first) from the entries that are old enough, or null when none is new */
  private parts(own: fs.BigIntStats): Uint8Array[] | null {
    // the run's start on the clock of the cache's filesystem: the new file's ctime, less the time since
    const horizon = own.ctimeNs - (process.hrtime.bigint() - this.started) - TICK_NS;
    let chosen: number[] = [];
    let news = 0;
    for (let k = 0; k < this.entries.length; k++) {
      const key = this.keys[k];
      if (keyDev(key) !== own.dev || keyCtimeNs(key) >= horizon) continue;
      news += this.scanned[k];
      chosen.push(k);
    }
    // only files changed just now were scanned: nothing to add, the cache stays as it is
    if (news === 0) return null;
    const entries = new Map<number, StoredEntry>();
    for (const k of chosen) {
      const entry = this.entries[k] ?? this.source?.stored(this.paths[k]);
      if (entry !== undefined) entries.set(k, entry);
    }
    chosen = chosen.filter((k) => entries.has(k));
    const count = chosen.length;
    const paths = Buffer.from(chosen.map((k) => this.paths[k]).join('\0'), 'utf8');
    let textBytes = 0;
    for (const k of chosen) textBytes += entries.get(k)!.text.length;
    const at = layout(count, paths.length, textBytes);
    const keys = new Uint32Array(KEY_WORDS * count);
    const records = new Uint32Array(RECORD_WORDS * count);
    const texts: Uint8Array[] = [];
    const numbers: Uint8Array[] = [];
    let blockBytes = 0;
    chosen.forEach((k, i) => {
      const entry = entries.get(k)!;
      keys.set(this.keys[k], KEY_WORDS * i);
      records.set(entry.record, RECORD_WORDS * i);
      records[RECORD_WORDS * i + AT] = blockBytes;
      texts.push(entry.text);
      numbers.push(entry.numbers);
      blockBytes += entry.numbers.length;
    });
    const body = [new Uint8Array(keys.buffer), new Uint8Array(records.buffer), paths, ...texts, new Uint8Array(at.block - at.texts - textBytes), ...numbers];
    const hash = checksum(body);
    let line = `${header()}${count} ${paths.length} ${textBytes} ${blockBytes} ${hash}`;
    // padded so that the body starts 8-aligned in the file (and in the buffer it is read into)
    line = line.padEnd(line.length + pad8(line.length + 1), ' ');
    return [Buffer.from(`${line}\n`, 'latin1'), ...body];
  }

  /**
   * Writes the cache into `dir` (temporary file, then rename) when it would store a scan the cache read
   * at the start did not have; otherwise that cache stays as it is (its entries for files gone since
   * are never hit: a file that comes back has another inode or ctime). A cache that cannot be written
   * is no error of depmod's: false is returned and the next run scans again.
   */
  write(dir: string): boolean {
    if (!this.scanned.includes(1)) return false;
    const tmp = `${dir}/${SCAN_CACHE_FILE}.tmp-${process.pid}-${Math.floor(Math.random() * 0x100000000).toString(16)}`;
    let fd: number;
    try {
      fd = fs.openSync(tmp, fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_WRONLY, 0o644);
    } catch {
      return false;
    }
    try {
      const parts = this.parts(fs.fstatSync(fd, { bigint: true }));
      if (parts === null) {
        fs.closeSync(fd);
        removeQuietly(tmp);
        return false;
      }
      writeAll(fd, parts);
      fs.closeSync(fd);
      fs.renameSync(tmp, `${dir}/${SCAN_CACHE_FILE}`);
      return true;
    } catch {
      try {
        fs.closeSync(fd);
      } catch {
        // closed already
      }
      removeQuietly(tmp);
      return false;
    } finally {
      removeAbandoned(dir);
    }
  }
}

/** `parts` written in order, a few hundred at a time (no copy of the whole file in memory) */
function writeAll(fd: number, parts: Uint8Array[]): void {
  const BATCH = 512;
  for (let first = 0; first < parts.length; first += BATCH) {
    const batch = parts.slice(first, first + BATCH);
    let left = 0;
    for (const part of batch) left += part.length;
    let done = fs.writevSync(fd, batch);
    // a short write: the rest of this batch part by part
    if (done < left) {
      for (const part of batch) {
        let off = Math.min(done, part.length);
        done -= off;
        while (off < part.length) off += fs.writeSync(fd, part, off, part.length - off);
      }
    }
  }
}

function removeQuietly(file: string): void {
  try {
    fs.unlinkSync(file);
  } catch {
    // gone already, or not ours to remove
  }
}

/** temporary caches of runs that were killed before they renamed theirs (their process is gone) */
function removeAbandoned(dir: string): void {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  const prefix = `${SCAN_CACHE_FILE}.tmp-`;
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number.parseInt(name.slice(prefix.length), 10);
    if (!(pid > 0) || pid === process.pid) continue;
    try {
      process.kill(pid, 0);
    } catch (err) {
      // a process of another namespace looks gone too: removing its file makes only its rename fail,
      // which leaves the cache as it was
      if (errnoOf(err) === ESRCH) removeQuietly(`${dir}/${name}`);
    }
  }
}
