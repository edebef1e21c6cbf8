// depmod's cache of per-module scan results (docs/decisions.md, "Incremental depmod"): what a module's
// scan found (module-scan.ts's ModuleScan), kept for the next run, keyed by the module file's path and
// its stat (device, inode, size, mtime and ctime in nanoseconds). Only scans are cached: everything not
// tied to one module file (depmod.d, modules.order, modules.builtin*, -E/-F, the options) is read again
// on every run.
//
// The file: a header line with the format and kmodts' version, a line with the lengths of the two parts
// and their CRC-32, then a JSON list of entries and a binary block of their numbers. Whatever is wrong
// with it (missing, unreadable, short, corrupt, another version) makes load() return undefined, and the
// run scans every module. It is written to a temporary file and renamed, so readers see a whole old or
// a whole new cache; concurrent runs each rename their own complete file.
//
// An entry is stored only if its file's ctime is older than the run's start by more than a timestamp
// tick, measured on the clock of the cache's filesystem (the file must be on that filesystem): a file
// changed again within the tick in which it was last changed could keep its stat, and a stat read
// later could not tell. Every write of a file's data and every rename changes its ctime, which no
// program can set, so a stat that matches an old enough entry means the file is as it was scanned.
import * as fs from 'node:fs';
import { crc32 } from 'node:zlib';
import { ENODATA, ESRCH, errnoOf } from '../errno';
import type { ModuleScan } from './module-scan';

/** the cache file's name in the output directory */
export const SCAN_CACHE_FILE = 'modules.kmodts-cache.bin';
/** bumped whenever what a scan finds or how it is stored changes */
const FORMAT = 1;
/** the coarsest timestamp tick of the filesystems modules live on (FAT: 2 s) */
const TICK_NS = 2_000_000_000n;

function header(): string {
  const version = (require('../../package.json') as { version: string }).version;
  return `kmodts depmod scan cache ${FORMAT} ${version}\n`;
}

/** the part of a module file's stat that any change to it changes */
export function statKey(st: fs.BigIntStats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}

/** the stat of a module file (followed, as the walk follows links), or undefined */
export function statModule(path: string): fs.BigIntStats | undefined {
  try {
    return fs.statSync(path, { bigint: true });
  } catch {
    return undefined;
  }
}

/**
 * An entry as stored: path, statKey, aliases, softdeps, weakdeps, exports, number of imports, bytes of
 * the import names, offset of its numbers in the binary block, symbolsErrno (0: none).
 */
type Entry = [string, string, string[], string[], string[], string[], number, number, number, number];

function isStringList(v: unknown): v is string[] {
  if (!Array.isArray(v)) return false;
  for (let k = 0; k < v.length; k++) if (typeof v[k] !== 'string') return false;
  return true;
}

/** the body's CRC-32 as 8 hex digits (damage, not tampering, is what it is for: see decisions.md) */
function checksum(...parts: Uint8Array[]): string {
  let crc = 0;
  for (const part of parts) crc = crc32(part, crc);
  return crc.toString(16).padStart(8, '0');
}
const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/** the numbers' bytes of an entry with e exports, n imports and `names` bytes of names, 8-aligned */
function numbersBytes(e: number, n: number, names: number): number {
  const bytes = 8 * (e + n) + 9 * n + names;
  return bytes + ((8 - (bytes & 7)) & 7);
}

/** A loaded cache: scans by path, each valid for one stat. */
export class ScanCache {
  private constructor(private readonly entries: Map<string, { key: string; entry: Entry }>, private readonly block: ArrayBuffer) {}

  get size(): number {
    return this.entries.size;
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
    const m = /^(\d+) (\d+) ([0-9a-f]{8})$/.exec(data.toString('latin1', head.length, nl));
    if (m === null) return undefined;
    const jsonBytes = Number(m[1]);
    const blockBytes = Number(m[2]);
    const body = data.subarray(nl + 1);
    if (body.length !== jsonBytes + blockBytes) return undefined;
    if (checksum(body) !== m[3]) return undefined;
    const list: unknown = JSON.parse(body.toString('utf8', 0, jsonBytes));
    if (!Array.isArray(list)) return undefined;
    // the numbers get a buffer of their own: aligned for their typed arrays
    const block = new ArrayBuffer(blockBytes);
    new Uint8Array(block).set(body.subarray(jsonBytes));
    const entries = new Map<string, { key: string; entry: Entry }>();
    for (const item of list) {
      if (!ScanCache.valid(item, blockBytes)) return undefined;
      entries.set(item[0], { key: item[1], entry: item });
    }
    return new ScanCache(entries, block);
  }

  /** is this a well-formed entry whose numbers lie within the block? */
  private static valid(item: unknown, blockBytes: number): item is Entry {
    if (!Array.isArray(item) || item.length !== 10) return false;
    const [path, key, aliases, softdeps, weakdeps, exports, n, names, at, errno] = item as unknown[];
    if (typeof path !== 'string' || typeof key !== 'string') return false;
    if (!isStringList(aliases) || !isStringList(softdeps) || !isStringList(weakdeps) || !isStringList(exports)) return false;
    if (!isCount(n) || !isCount(names) || !isCount(at) || !isCount(errno) || at % 8 !== 0) return false;
    return at + numbersBytes(exports.length, n, names) <= blockBytes;
  }

  /** `path`'s entry as stored and the bytes of its numbers (for the next cache, without copying) */
  stored(path: string): [Entry, Uint8Array] | undefined {
    const found = this.entries.get(path);
    if (found === undefined) return undefined;
    const e = found.entry;
    return [e, new Uint8Array(this.block, e[8], numbersBytes(e[5].length, e[6], e[7]))];
  }

  /** The scan of `path` if its stat is still the one cached (a new object: the caller may change it). */
  get(path: string, st: fs.BigIntStats): ModuleScan | undefined {
    const found = this.entries.get(path);
    if (found === undefined || found.key !== statKey(st)) return undefined;
    const [, , aliases, softdeps, weakdeps, exports, n, names, at, errno] = found.entry;
    const e = exports.length;
    const importLengths = new Uint32Array(this.block, at + 8 * (e + n) + 4 * n, n);
    // every name must lie within the names' bytes (the lookups read them)
    let end = 0;
    for (let j = 0; j < n; j++) end += importLengths[j] + 1;
    if (end > names + 1) return undefined;
    const scan: ModuleScan = {
      aliases: aliases.slice(),
      softdeps: softdeps.slice(),
      weakdeps: weakdeps.slice(),
      exports: exports.slice(),
      exportCrcs: new Float64Array(this.block, at, e),
      importCrcs: new Float64Array(this.block, at + 8 * e, n),
      importKeys: new Int32Array(this.block, at + 8 * (e + n), n),
      importLengths,
      importWeak: new Uint8Array(this.block, at + 8 * (e + n) + 8 * n, n),
      importNames: new Uint8Array(this.block, at + 8 * (e + n) + 9 * n, names),
    };
    if (errno !== 0) scan.symbolsErrno = errno;
    return scan;
  }
}

/** The cache the run will write: the scans of this run's modules, added as they come in. */
export class ScanCacheWriter {
  private readonly entries: Entry[] = [];
  /** ctimes, by entry */
  private readonly ctimes: bigint[] = [];
  private readonly devs: bigint[] = [];
  private readonly chunks: Uint8Array[] = [];
  /** 1 for the entries that were scanned in this run (not taken from the cache) */
  private readonly scanned: number[] = [];
  /** process.hrtime.bigint() before the first module was looked at */
  private readonly started = process.hrtime.bigint();

  /** a module taken from `cache` (whose get() gave its scan for this stat): its entry is kept as it is */
  keep(path: string, st: fs.BigIntStats, cache: ScanCache): void {
    const stored = cache.stored(path);
    if (stored === undefined) return;
    this.entries.push(stored[0].slice() as Entry);
    this.ctimes.push(st.ctimeNs);
    this.devs.push(st.dev);
    this.chunks.push(stored[1]);
    this.scanned.push(0);
  }

  /**
   * A module's scan with the stat taken before its file was read. Scans that failed for a reason
   * other than the module's contents (ENODATA: no symbols) are left out, to be tried again next time.
   */
  add(path: string, st: fs.BigIntStats, scan: ModuleScan): void {
    if (scan.symbolsErrno !== undefined && scan.symbolsErrno !== ENODATA) return;
    const e = scan.exports.length;
    const n = scan.importKeys.length;
    const names = scan.importNames.length;
    const bytes = new Uint8Array(numbersBytes(e, n, names));
    const put = (a: ArrayBufferView, at: number): void => bytes.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), at);
    put(scan.exportCrcs, 0);
    put(scan.importCrcs, 8 * e);
    put(scan.importKeys, 8 * (e + n));
    put(scan.importLengths, 8 * (e + n) + 4 * n);
    put(scan.importWeak, 8 * (e + n) + 8 * n);
    put(scan.importNames, 8 * (e + n) + 9 * n);
    this.entries.push([path, statKey(st), scan.aliases, scan.softdeps, scan.weakdeps, scan.exports, n, names, 0, scan.symbolsErrno ?? 0]);
    this.ctimes.push(st.ctimeNs);
    this.devs.push(st.dev);
    this.chunks.push(bytes);
    this.scanned.push(1);
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
      // the run's start on the clock of the cache's filesystem: the new file's ctime, less the time since
      const own = fs.fstatSync(fd, { bigint: true });
      const horizon = own.ctimeNs - (process.hrtime.bigint() - this.started) - TICK_NS;
      const json: Entry[] = [];
      const block: Uint8Array[] = [];
      let at = 0;
      let news = 0;
      for (let k = 0; k < this.entries.length; k++) {
        if (this.devs[k] !== own.dev || this.ctimes[k] >= horizon) continue;
        news += this.scanned[k];
        const entry = this.entries[k];
        entry[8] = at;
        json.push(entry);
        block.push(this.chunks[k]);
        at += this.chunks[k].length;
      }
      if (news === 0) {
        // only files changed just now were scanned: nothing to add, the cache stays as it is
        fs.closeSync(fd);
        removeQuietly(tmp);
        return false;
      }
      // written in its parts, the checksum carried over them: no copy of the whole file in memory
      const parts = [Buffer.from(JSON.stringify(json), 'utf8'), ...block];
      const hash = checksum(...parts);
      parts.unshift(Buffer.from(`${header()}${parts[0].length} ${at} ${hash}\n`, 'latin1'));
      for (const part of parts) {
        let off = 0;
        while (off < part.length) off += fs.writeSync(fd, part, off, part.length - off);
      }
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
