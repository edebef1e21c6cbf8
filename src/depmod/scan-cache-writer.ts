// Writing depmod's scan cache (scan-cache.ts reads it; its layout: scan-cache-format.ts).
//
// An entry is stored only if its file's ctime is older than the run's start by more than a timestamp
// tick, measured on the clock of the cache's filesystem (the file must be on that filesystem): a file
// changed again within the tick in which it was last changed could keep its stat, and a stat read
// later could not tell. Every write of a file's data and every rename changes its ctime, which no
// program can set, so a stat that matches an old enough entry means the file is as it was scanned.
// The file is written to a temporary file and renamed, so readers see a whole old or a whole new
// cache; concurrent runs each rename their own complete file. A new file keeps the old one's import
// dictionary whole while its entries use nearly all of it (startDictionary), so that the kept entries'
// numbers are written as they were read.
import * as fs from '../file/binary-os';
import { ENODATA, ESRCH, errnoOf } from '../errno';
import { modnameFromPath } from '../names/modname';
import { aliasPieces, type AliasPieces } from './alias-files';
import { ImportDictionaryBuilder, REF_INDEX, WEAK_REF, dictionaryBytes, type ImportDictionary } from './import-dictionary';
import type { ModuleScan } from './module-scan';
import { numbersView, scanNumbers, scanNumbersSize } from './scan-store';
import { AT, EXPORTS as EXPORTS_WORD, HAS_DEVNAME, HAS_PIECES, IMPORTS, RECORD_WORDS, SCAN_CACHE_FILE, checksum, header, layout, numbersBytes, pad8 } from './scan-cache-format';
import { loadNativeWordRangesMark } from '../native-addon';
import type { ScanCache, StoredEntry } from './scan-cache';
import { KEY_WORDS, keyFileSize, oldOnDevice } from './stat-keys';

/** the coarsest timestamp tick of the filesystems modules live on (FAT: 2 s) */
const TICK_NS = 2_000_000_000n;
/**
 * the share of an old dictionary that may go unused in a new cache that keeps it whole (1/16): more,
 * and the new cache gets a dictionary of what its entries use
 */
const UNUSED_SHARE = 16;

/**
 * A cache read at the start of the run is rewritten only when the modules this run scanned anew (and
 * would store) are more than REWRITE_COUNT, or more than 1/REWRITE_SHARE of its size in file bytes: a
 * few small modules (a DKMS build, one module replaced) are scanned again by the next runs, a
 * millisecond or so each, instead of the whole cache being rewritten now (5 MB for Debian's full tree,
 * ~45 ms). Their number and size add up from run to run until the cache is rewritten.
 */
const REWRITE_COUNT = 8;
const REWRITE_SHARE = 16;

const bytesOf = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/**
 * A scan added in this run, until the cache is written: its lists, and its numbers as the scan laid them
 * out (export CRCs, import CRCs, keys, lengths, weak flags, names).
 */
interface AddedScan {
  aliases: string[];
  /** its alias pieces (null: it has none, see aliasPieces) */
  pieces: AliasPieces | null;
  softdeps: string[];
  weakdeps: string[];
  exports: string[];
  errno: number;
  imports: number;
  numbers: Uint8Array;
}

/** a scan's numbers in ScanStore's layout (scan-store.ts scanNumbers), in a buffer of their own */
function copiedNumbers(scan: ModuleScan): Uint8Array {
  const e = scan.exports.length;
  const n = scan.importKeys.length;
  const numbers = new Uint8Array(scanNumbersSize(e, n, scan.importNames.length));
  const copy = scanNumbers(numbers.buffer, 0, e, n, scan.importNames.length);
  copy.exportCrcs.set(scan.exportCrcs);
  copy.importCrcs.set(scan.importCrcs);
  copy.importKeys.set(scan.importKeys);
  copy.importLengths.set(scan.importLengths);
  copy.importWeak.set(scan.importWeak);
  copy.importNames.set(scan.importNames);
  return numbers;
}

/** The cache the run will write: the scans of this run's modules, added as they come in. */
export class ScanCacheWriter {
  private readonly paths: string[] = [];
  /** each entry's stat key (as given: the caller does not change it afterwards) */
  private readonly keys: Uint32Array[] = [];
  /** each entry's parts; undefined for one kept from the cache (taken from it only if the file is written) */
  private readonly entries: (AddedScan | undefined)[] = [];
  /** the cache the kept entries come from */
  private source: ScanCache | undefined;
  /** 1 for the entries that were scanned in this run (not taken from the cache) */
  private readonly scanned: number[] = [];
  /** process.hrtime.bigint() before the first module was looked at */
  private readonly started = process.hrtime.bigint();

  /** `fewKeptOut`: a few small new scans leave a cache read at the start as it is (worthRewriting); false: any new scan rewrites it */
  constructor(private readonly fewKeptOut = true) {}

  /** a module taken from `cache` (whose get() gave its scan for this stat): its entry is kept as it is */
  keep(path: string, key: Uint32Array, cache: ScanCache): void {
    // nothing is taken from the cache yet: most runs that keep entries add none and write nothing
    this.source = cache;
    this.push(path, key, undefined, 0);
  }

  private push(path: string, key: Uint32Array, entry: AddedScan | undefined, scanned: number): void {
    this.paths.push(path);
    this.keys.push(key);
    this.entries.push(entry);
    this.scanned.push(scanned);
  }

  /**
   * A module's scan with the stat taken before its file was read. Scans that failed for a reason
   * other than the module's contents (ENODATA: no symbols) are left out, to be tried again next time.
   * Its numbers are kept as they are, not copied: the caller keeps them until the cache is written
   * (module-load.ts frees its ScanStore after that). Its alias pieces are made here and left on the scan
   * too, so that the run's modules.alias(.bin) is made from them rather than from each alias again.
   */
  add(path: string, key: Uint32Array, scan: ModuleScan): void {
    if (scan.symbolsErrno !== undefined && scan.symbolsErrno !== ENODATA) return;
    const pieces = scan.aliasPieces ?? aliasPieces({ modname: modnameFromPath(path) ?? '', aliases: scan.aliases });
    if (pieces !== null) scan.aliasPieces = pieces;
    const e = scan.exports.length;
    const n = scan.importKeys.length;
    const numbers = numbersView(scan) ?? copiedNumbers(scan);
    // the lists themselves (take() gives the scan new ones; the module keeps the aliases anyway)
    const { aliases, softdeps, weakdeps, exports } = scan;
    this.push(path, key, { aliases, pieces, softdeps, weakdeps, exports, errno: scan.symbolsErrno ?? 0, imports: n, numbers }, 1);
  }

  /** a scan added in this run, as it is stored: its imports put in `dictionary` */
  private static storedOf(scan: AddedScan, dictionary: ImportDictionaryBuilder): StoredEntry {
    const { aliases, pieces, softdeps, weakdeps, exports, numbers } = scan;
    const e = exports.length;
    const n = scan.imports;
    const devname = aliases.some((a) => a.startsWith('devname:'));
    // the pieces stand for the aliases, which are kept as strings only for modules.devname
    const aliasText = pieces !== null && !devname ? new Uint8Array(0) : Buffer.from(aliases.join('\0'), 'latin1');
    const otherText = Buffer.from([...softdeps, ...weakdeps, ...exports].join('\0'), 'latin1');
    const lines = pieces?.lines ?? new Uint8Array(0);
    const keys = pieces?.keys ?? new Uint8Array(0);
    const text = Buffer.concat([aliasText, otherText, lines, keys]);
    const flags = (pieces === null ? 0 : HAS_PIECES) | (devname ? HAS_DEVNAME : 0);
    const record = Uint32Array.of(text.length, aliases.length, softdeps.length, weakdeps.length, e, n, 0, scan.errno, aliasText.length, lines.length, keys.length, flags);
    // numbers is 8-aligned in its buffer (numbersView): every part is aligned for its view
    const { importCrcs, importKeys, importLengths, importWeak, importNames } = scanNumbers(numbers.buffer as ArrayBuffer, numbers.byteOffset, e, n, numbers.length - scanNumbersSize(e, n, 0));
    const refs = dictionary.addAll(importNames, importLengths, importKeys, importCrcs, importWeak);
    const keyLengths = pieces === null ? new Uint8Array(0) : bytesOf(pieces.keyLengths);
    return { record, text, exportCrcs: numbers.subarray(0, 8 * e), keyLengths, imports: { refs, dictionary: null } };
  }

  /**
   * An entry's numbers (scan-cache-format.ts' numbersBytes) put into `body` at byte `at` (8-aligned),
   * its imports as references into the new file's dictionary: as they are where they are already (an
   * added scan's, or a kept entry's when the old dictionary was kept whole), else through `remap` (old
   * entry -> new one). Returns where the next entry's numbers go.
   */
  private static putNumbers(body: Buffer, at: number, entry: StoredEntry, kept: ImportDictionary | undefined, remap: Uint32Array | undefined): number {
    const imports = entry.imports;
    const n = entry.record[IMPORTS];
    const crcBytes = entry.exportCrcs.length;
    const bytes = numbersBytes(entry.record[EXPORTS_WORD], n, entry.keyLengths.length >>> 2);
    // the dictionary the new file starts with: its references stay as they are, and so do its numbers,
    // which lie one after the other in the old file (CRCs, references, key lengths, padding)
    if (imports.dictionary !== null && imports.dictionary === kept) {
      body.set(new Uint8Array(entry.exportCrcs.buffer, entry.exportCrcs.byteOffset, bytes), at);
      return at + bytes;
    }
    body.set(entry.exportCrcs, at);
    if (imports.dictionary === null) body.set(bytesOf(imports.refs), at + crcBytes);
    else {
      if (remap === undefined) throw new Error('scan cache: an entry of another dictionary');
      const refs = new Uint32Array(body.buffer, body.byteOffset + at + crcBytes, n);
      for (let j = 0; j < n; j++) refs[j] = (remap[imports.refs[j] & REF_INDEX] | (imports.refs[j] & WEAK_REF)) >>> 0;
    }
    const end = at + crcBytes + 4 * n;
    body.set(entry.keyLengths, end);
    body.fill(0, end + entry.keyLengths.length, at + bytes);
    return at + bytes;
  }

  /**
   * Which entries of the old cache's dictionary the kept entries use (1 each; marked by the addon where
   * it can), or undefined when no entry is kept.
   */
  private oldDictionaryUse(kept: StoredEntry[]): { d: ImportDictionary; used: Uint8Array } | undefined {
    const d = this.source?.dictionary;
    if (d === undefined || kept.length === 0) return undefined;
    if (kept.some((e) => e.imports.dictionary !== d)) throw new Error('scan cache: a kept entry of another dictionary');
    const mark = loadNativeWordRangesMark();
    const buffer = kept[0].imports.refs.buffer;
    if (mark !== null && kept.every((e) => e.imports.refs.buffer === buffer)) {
      const starts = Uint32Array.from(kept, (e) => e.imports.refs.byteOffset >>> 2);
      const counts = Uint32Array.from(kept, (e) => e.imports.refs.length);
      const used = mark(new Uint32Array(buffer, 0, buffer.byteLength >>> 2), starts, counts, REF_INDEX, d.size);
      if (used !== null) return { d, used };
    }
    const used = new Uint8Array(d.size);
    for (const e of kept) for (const r of e.imports.refs) if ((r & REF_INDEX) < d.size) used[r & REF_INDEX] = 1;
    return { d, used };
  }

  /**
   * The new file's dictionary, holding the old one's entries that the kept entries use: the old
   * dictionary whole while they use all but a small share of it (UNUSED_SHARE), so that their references
   * and numbers are written as they were read (`kept`) instead of each of their ~200,000 imports being
   * mapped again; else only the entries they use (`remap`: old entry -> new one).
   */
  private static startDictionary(use: { d: ImportDictionary; used: Uint8Array } | undefined): { dictionary: ImportDictionaryBuilder; kept?: ImportDictionary; remap?: Uint32Array } {
    const dictionary = new ImportDictionaryBuilder();
    if (use === undefined) return { dictionary };
    const { d, used } = use;
    let unused = 0;
    for (let k = used.indexOf(0); k >= 0 && unused <= d.size / UNUSED_SHARE; k = used.indexOf(0, k + 1)) unused++;
    if (unused <= d.size / UNUSED_SHARE && dictionary.seed(d)) return { dictionary, kept: d };
    // a fresh builder: one whose seed() failed is unusable
    const fresh = new ImportDictionaryBuilder();
    return { dictionary: fresh, remap: fresh.addAll(d.names, d.lengths, d.keys, d.crcs, null, used) };
  }

  /** whether the cache read at the start (if any) should make way for one with the `news` chosen entries scanned in this run */
  private worthRewriting(chosen: number[], news: number): boolean {
    if (!this.fewKeptOut || this.source === undefined || news > REWRITE_COUNT) return true;
    let bytes = 0;
    for (const k of chosen) if (this.scanned[k] === 1) bytes += keyFileSize(this.keys[k]);
    return bytes * REWRITE_SHARE > this.source.fileBytes;
  }

  /** the file (its header line, its body) from the entries that are old enough, or null when none is new (or too little is: worthRewriting) */
  private parts(own: fs.BigIntStats): Uint8Array[] | null {
    // the run's start on the clock of the cache's filesystem: the new file's ctime, less the time since
    const horizon = own.ctimeNs - (process.hrtime.bigint() - this.started) - TICK_NS;
    const old = oldOnDevice(own.dev, horizon);
    let chosen: number[] = [];
    let news = 0;
    for (let k = 0; k < this.entries.length; k++) {
      if (!old(this.keys[k])) continue;
      news += this.scanned[k];
      chosen.push(k);
    }
    // only files changed just now were scanned: nothing to add, the cache stays as it is
    if (news === 0 || !this.worthRewriting(chosen, news)) return null;
    const entries = new Map<number, StoredEntry>();
    // the kept entries first: whether the old dictionary can be kept whole depends on them, and it must
    // be in the new one before the added scans' imports are
    for (const k of chosen) {
      if (this.entries[k] !== undefined) continue;
      const entry = this.source?.stored(this.paths[k]);
      if (entry !== undefined) entries.set(k, entry);
    }
    const { dictionary, kept, remap } = ScanCacheWriter.startDictionary(this.oldDictionaryUse([...entries.values()]));
    for (const k of chosen) {
      const added = this.entries[k];
      if (added !== undefined) entries.set(k, ScanCacheWriter.storedOf(added, dictionary));
    }
    chosen = chosen.filter((k) => entries.has(k));
    const list = chosen.map((k) => entries.get(k)!);
    const count = chosen.length;
    const paths = Buffer.from(chosen.map((k) => this.paths[k]).join('\0'), 'utf8');
    let textBytes = 0;
    let blockBytes = 0;
    for (const entry of list) {
      textBytes += entry.text.length;
      blockBytes += numbersBytes(entry.record[EXPORTS_WORD], entry.record[IMPORTS], entry.keyLengths.length >>> 2);
    }
    const at = layout(count, paths.length, textBytes);
    const dict = dictionary.parts();
    let dictBytes = 0;
    for (const part of dict) dictBytes += part.length;
    if (dictionaryBytes(dictionary.size, dict[3].length) !== dictBytes) throw new Error('scan cache: dictionary size');
    // the body in one buffer of its own (offset 0: every part 8-aligned for its views), made in place
    const body = Buffer.allocUnsafeSlow(at.block + blockBytes + dictBytes);
    const keys = new Uint32Array(body.buffer, 0, KEY_WORDS * count);
    const records = new Uint32Array(body.buffer, at.records, RECORD_WORDS * count);
    body.set(paths, at.paths);
    let t = at.texts;
    let b = at.block;
    for (let i = 0; i < count; i++) {
      const entry = list[i];
      keys.set(this.keys[chosen[i]], KEY_WORDS * i);
      records.set(entry.record, RECORD_WORDS * i);
      records[RECORD_WORDS * i + AT] = b - at.block;
      body.set(entry.text, t);
      t += entry.text.length;
      b = ScanCacheWriter.putNumbers(body, b, entry, kept, remap);
    }
    body.fill(0, t, at.block);
    for (const part of dict) {
      body.set(part, b);
      b += part.length;
    }
    let line = `${header()}${count} ${paths.length} ${textBytes} ${blockBytes} ${dictionary.size} ${dict[3].length} ${checksum([body])}`;
    // padded so that the body starts 8-aligned in the file (and in the buffer it is read into)
    line = line.padEnd(line.length + pad8(line.length + 1), ' ');
    return [Buffer.from(`${line}\n`, 'latin1'), body];
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

/** `parts` written in order (short writes continued) */
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
