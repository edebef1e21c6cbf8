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
import { chunkedWrite, writeAllAt, type ChunkedWrite } from '../file/chunked-write';
import { ENODATA, ESRCH, errnoOf } from '../errno';
import { modnameFromPath } from '../names/modname';
import { aliasPieces, hasDevname, type AliasPieces } from './alias-files';
import { ImportDictionaryBuilder, REF_INDEX, WEAK_REF, dictionaryBytes, type ImportDictionary } from './import-dictionary';
import type { ModuleScan } from './module-scan';
import { ScanStore, scanNumbers, scanNumbersSize } from './scan-store';
import { CacheSections } from './scan-cache-sections';
import { AT, EXPORTS as EXPORTS_WORD, HAS_DEVNAME, HAS_PIECES, IMPORTS, RECORD_WORDS, SCAN_CACHE_FILE, checksumHex, checksumUpdate, header, layout, numbersBytes, pad8 } from './scan-cache-format';
import { loadNativeWordRangesMark } from '../native-addon';
import type { ScanCache, StoredEntry } from './scan-cache';
import { KEY_WORDS, keyFileSize, oldOnDevice } from './stat-keys';
import type { WalkRecord } from './walk-record';

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
/**
 * A cache is also rewritten, with no new scan, when its walk record would gain more than this many
 * directories (listed in this run, and old enough to be recorded): a directory listed again costs
 * ~13 us a run, the rewrite ~45 ms once. (A tree's first run finds its directories just made, to be
 * recorded by its next.)
 */
const WALK_REWRITE_COUNT = 32;

const bytesOf = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
const EMPTY = new Uint8Array(0);
const NO_REFS = new Uint32Array(0);

/**
 * A scan added in this run after a cache was read, as it will be stored; until its imports are in the
 * new file's dictionary (which starts from the old one's, at the write), its references are empty and
 * `numbers` holds a copy of its numbers in scanNumbers' layout.
 */
interface AddedScan {
  stored: StoredEntry;
  numbers: Uint8Array;
}

/**
 * What a new cache file holds: its entries in order, with their stat keys and paths, and its dictionary.
 * `sections`: the entries are those of these sections, all and in order (`entries` is then empty).
 */
interface FilePlan {
  keys: Uint32Array[];
  paths: string[];
  entries: StoredEntry[];
  sections?: CacheSections;
  /** the walk record (walk-record.ts), the file's last part */
  walkRecord: Uint8Array;
  dictionary: ImportDictionaryBuilder;
  /** the old dictionary, when the new one starts as it (startDictionary) */
  kept?: ImportDictionary;
  /** old dictionary entry -> new one, otherwise */
  remap?: Uint32Array;
}

/** The cache the run will write: the scans of this run's modules, added as they come in. */
export class ScanCacheWriter {
  private readonly paths: string[] = [];
  /** each entry's stat key (as given: the caller does not change it afterwards) */
  private readonly keys: Uint32Array[] = [];
  /**
   * each entry's parts: a number for one in `sections`, undefined for one kept from the cache (taken
   * from it only if the file is written)
   */
  private readonly entries: (AddedScan | number | undefined)[] = [];
  /** the scans added while the new file's dictionary was `early`, in the file's layout */
  private readonly sections = new CacheSections();
  /** the cache the kept entries come from */
  private source: ScanCache | undefined;
  /** 1 for the entries that were scanned in this run (not taken from the cache) */
  private readonly scanned: number[] = [];
  /** process.hrtime.bigint() before the first module was looked at */
  private readonly started = process.hrtime.bigint();
  /** the new file's dictionary, made as the scans are added when no entry was kept before them */
  private early: ImportDictionaryBuilder | undefined;
  /** the added scans' export CRCs (and numbers, when copied) */
  private readonly copies = new ScanStore();

  /**
   * `fewKeptOut`: a few small new scans leave a cache read at the start as it is (worthRewriting);
   * false: any new scan rewrites it. `walk`: the run's walk record, stored with the scans.
   */
  constructor(
    private readonly fewKeptOut = true,
    private readonly walk?: WalkRecord,
  ) {}

  /** a module taken from `cache` (whose get() gave its scan for this stat): its entry is kept as it is */
  keep(path: string, key: Uint32Array, cache: ScanCache): void {
    // nothing is taken from the cache yet: most runs that keep entries add none and write nothing
    this.source = cache;
    this.push(path, key, undefined, 0);
  }

  private push(path: string, key: Uint32Array, entry: AddedScan | number | undefined, scanned: number): void {
    this.paths.push(path);
    this.keys.push(key);
    this.entries.push(entry);
    this.scanned.push(scanned);
  }

  /**
   * A module's scan with the stat taken before its file was read. Scans that failed for a reason
   * other than the module's contents (ENODATA: no symbols) are left out, to be tried again next time.
   * The entry is made now, with copies of the numbers it needs (the scans' store is freed before the
   * files are made). Its alias pieces are left on the scan too, so that the run's modules.alias(.bin) is
   * made from them rather than from each alias again. `imports`: its imports' references into a
   * dictionary already made (the run's, module-load.ts), which the new file's then is, where it can be.
   * `modname`: the module's name where the caller has it (else it is made from the path again).
   */
  add(path: string, key: Uint32Array, scan: ModuleScan, imports?: { refs: Uint32Array; dictionary: ImportDictionaryBuilder }, modname?: string): void {
    if (scan.symbolsErrno !== undefined && scan.symbolsErrno !== ENODATA) return;
    const pieces = scan.aliasPieces ?? aliasPieces({ modname: modname ?? modnameFromPath(path) ?? '', aliases: scan.aliases });
    if (pieces !== null) scan.aliasPieces = pieces;
    const { aliases, softdeps, weakdeps } = scan;
    // (a C scan's exports as its block held them, not made strings here)
    const joined = scan.exportsJoined;
    const e = joined === undefined ? scan.exports.length : scan.exportCrcs.length;
    const n = scan.importKeys.length;
    const devname = hasDevname(aliases);
    // the pieces stand for the aliases, which are kept as strings only for modules.devname
    const aliasText = pieces !== null && !devname ? '' : aliases.join('\0');
    // (most modules have no softdep or weakdep: no array made for them)
    const exportsText = joined ?? scan.exports.join('\0');
    const depCount = softdeps.length + weakdeps.length;
    const deps = depCount === 0 ? '' : softdeps.concat(weakdeps).join('\0');
    const strings = aliasText + (depCount === 0 ? exportsText : e === 0 ? deps : `${deps}\0${exportsText}`);
    const lines = pieces?.lines ?? EMPTY;
    const keys = pieces?.keys ?? EMPTY;
    const flags = (pieces === null ? 0 : HAS_PIECES) | (devname ? HAS_DEVNAME : 0);
    // nothing kept from a cache (yet): the new file's dictionary starts empty, and the imports go in now
    if (this.source === undefined) this.early ??= imports?.dictionary ?? new ImportDictionaryBuilder();
    if (this.early !== undefined) {
      const refs =
        imports !== undefined && imports.dictionary === this.early ? imports.refs : this.early.addAll(scan.importNames, scan.importLengths, scan.importKeys, scan.importCrcs, scan.importWeak);
      const i = this.sections.add({
        aliases: aliases.length,
        softdeps: softdeps.length,
        weakdeps: weakdeps.length,
        exports: e,
        imports: n,
        errno: scan.symbolsErrno ?? 0,
        aliasTextBytes: aliasText.length,
        flags,
        strings,
        lines,
        keys,
        exportCrcs: scan.exportCrcs,
        refs,
        keyLengths: pieces?.keyLengths,
      });
      this.push(path, key, i, 1);
      return;
    }
    // a cache was read: the imports go into the new file's dictionary once it starts from the old one's
    // (plan), from a copy of the scan's numbers. The strings (binary: a byte per char), then the pieces,
    // in one buffer.
    const text = Buffer.allocUnsafe(strings.length + lines.length + keys.length);
    text.write(strings, 0, 'latin1');
    text.set(lines, strings.length);
    text.set(keys, strings.length + lines.length);
    // the record and the CRCs in this writer's store: views, not an ArrayBuffer of their own per module
    // (every ArrayBuffer is tracked and swept by each collection)
    const { buffer: ab, at } = this.copies.place(4 * RECORD_WORDS + 8 * e);
    const record = new Uint32Array(ab, at, RECORD_WORDS);
    record.set([text.length, aliases.length, softdeps.length, weakdeps.length, e, n, 0, scan.symbolsErrno ?? 0, aliasText.length, lines.length, keys.length, flags]);
    const exportCrcs = new Uint8Array(ab, at + 4 * RECORD_WORDS, 8 * e);
    exportCrcs.set(bytesOf(scan.exportCrcs));
    const stored: StoredEntry = { record, text, exportCrcs, keyLengths: pieces === null ? EMPTY : bytesOf(pieces.keyLengths), imports: { refs: NO_REFS, dictionary: null } };
    this.push(path, key, { stored, numbers: this.copiedNumbers(scan) }, 1);
  }

  /** a scan's numbers in ScanStore's layout (scan-store.ts scanNumbers), copied into this writer's store */
  private copiedNumbers(scan: ModuleScan): Uint8Array {
    const e = scan.exportCrcs.length;
    const n = scan.importKeys.length;
    const size = scanNumbersSize(e, n, scan.importNames.length);
    const { buffer: ab, at } = this.copies.place(size);
    const copy = scanNumbers(ab, at, e, n, scan.importNames.length);
    copy.exportCrcs.set(scan.exportCrcs);
    copy.importCrcs.set(scan.importCrcs);
    copy.importKeys.set(scan.importKeys);
    copy.importLengths.set(scan.importLengths);
    copy.importWeak.set(scan.importWeak);
    copy.importNames.set(scan.importNames);
    return new Uint8Array(ab, at, size);
  }

  /** an added scan's entry, its imports put in `dictionary` where they are not in one yet */
  private static storedOf(added: AddedScan, dictionary: ImportDictionaryBuilder): StoredEntry {
    const { stored, numbers } = added;
    const e = stored.record[EXPORTS_WORD];
    const n = stored.record[IMPORTS];
    const { importCrcs, importKeys, importLengths, importWeak, importNames } = scanNumbers(numbers.buffer as ArrayBuffer, numbers.byteOffset, e, n, numbers.length - scanNumbersSize(e, n, 0));
    stored.imports.refs = dictionary.addAll(importNames, importLengths, importKeys, importCrcs, importWeak);
    return stored;
  }

  /**
   * An entry's numbers (scan-cache-format.ts' numbersBytes) put out, its imports as references into the
   * new file's dictionary: as they are where they are already (an added scan's, or a kept entry's when
   * the old dictionary was kept whole), else through `remap` (old entry -> new one).
   */
  private static putNumbers(out: ChunkedWrite, entry: StoredEntry, kept: ImportDictionary | undefined, remap: Uint32Array | undefined): void {
    const imports = entry.imports;
    const n = entry.record[IMPORTS];
    const bytes = numbersBytes(entry.record[EXPORTS_WORD], n, entry.keyLengths.length >>> 2);
    // the dictionary the new file starts with: its references stay as they are, and so do its numbers,
    // which lie one after the other in the old file (CRCs, references, key lengths, padding)
    if (imports.dictionary !== null && imports.dictionary === kept) {
      out.put(new Uint8Array(entry.exportCrcs.buffer, entry.exportCrcs.byteOffset, bytes));
      return;
    }
    out.put(entry.exportCrcs);
    if (imports.dictionary === null) out.put(bytesOf(imports.refs));
    else {
      if (remap === undefined) throw new Error('scan cache: an entry of another dictionary');
      const refs = new Uint32Array(n);
      for (let j = 0; j < n; j++) refs[j] = (remap[imports.refs[j] & REF_INDEX] | (imports.refs[j] & WEAK_REF)) >>> 0;
      out.put(bytesOf(refs));
    }
    out.put(entry.keyLengths);
    out.zeros(bytes - entry.exportCrcs.length - 4 * n - entry.keyLengths.length);
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

  /**
   * The entries to store, in order, with the new file's dictionary, from those that are old enough; null
   * when none is new (or too little is: worthRewriting).
   */
  private plan(own: fs.BigIntStats): FilePlan | null {
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
    const walk = this.walk?.recordFor(own.dev, horizon) ?? { bytes: EMPTY, fresh: 0 };
    // only files changed just now were scanned: nothing to add, the cache stays as it is
    if ((news === 0 || !this.worthRewriting(chosen, news)) && walk.fresh <= WALK_REWRITE_COUNT) return null;
    // every entry is one of the sections', in their order (no cache read, every file old enough)
    if (this.early !== undefined && chosen.length === this.entries.length && this.sections.count === this.entries.length) {
      return { keys: this.keys, paths: this.paths, entries: [], sections: this.sections, walkRecord: walk.bytes, dictionary: this.early };
    }
    const entries = new Map<number, StoredEntry>();
    // the kept entries first: whether the old dictionary can be kept whole depends on them, and it must
    // be in the new one before the added scans' imports are
    for (let c = 0; c < chosen.length; c++) {
      const k = chosen[c];
      if (this.entries[k] !== undefined) continue;
      const entry = this.source?.stored(this.paths[k]);
      if (entry !== undefined) entries.set(k, entry);
    }
    const use = this.oldDictionaryUse([...entries.values()]);
    // the scans' imports in a dictionary already: the kept entries' go into it too (keep() after add())
    const { dictionary, kept, remap } =
      this.early === undefined ? ScanCacheWriter.startDictionary(use) : { dictionary: this.early, kept: undefined, remap: use && this.early.addAll(use.d.names, use.d.lengths, use.d.keys, use.d.crcs, null, use.used) };
    for (let c = 0; c < chosen.length; c++) {
      const k = chosen[c];
      const added = this.entries[k];
      if (typeof added === 'number') entries.set(k, this.sections.stored(added));
      else if (added !== undefined) entries.set(k, ScanCacheWriter.storedOf(added, dictionary));
    }
    chosen = chosen.filter((k) => entries.has(k));
    return { keys: chosen.map((k) => this.keys[k]), paths: chosen.map((k) => this.paths[k]), entries: chosen.map((k) => entries.get(k)!), walkRecord: walk.bytes, dictionary, kept, remap };
  }

  /**
   * The file written at the start of `fd`: its header line (with a checksum of zeros, then the real one
   * written over it) and its body, streamed through a small buffer (file/chunked-write.ts).
   */
  private static writeFile(fd: number, plan: FilePlan): void {
    const { entries, dictionary, kept, remap, sections } = plan;
    const count = sections === undefined ? entries.length : sections.count;
    const paths = Buffer.from(plan.paths.join('\0'), 'utf8');
    // the keys and records, each record with where its numbers start in the block
    const keys = new Uint32Array(KEY_WORDS * count);
    for (let i = 0; i < count; i++) keys.set(plan.keys[i], KEY_WORDS * i);
    let records: Uint32Array;
    let textBytes = 0;
    let blockBytes = 0;
    if (sections !== undefined) {
      records = sections.allRecords();
      textBytes = sections.texts.bytes;
      blockBytes = sections.numbers.bytes;
    } else {
      records = new Uint32Array(RECORD_WORDS * count);
      for (let i = 0; i < count; i++) {
        const entry = entries[i];
        records.set(entry.record, RECORD_WORDS * i);
        records[RECORD_WORDS * i + AT] = blockBytes;
        textBytes += entry.text.length;
        blockBytes += numbersBytes(entry.record[EXPORTS_WORD], entry.record[IMPORTS], entry.keyLengths.length >>> 2);
      }
    }
    const at = layout(count, paths.length, textBytes);
    const dict = dictionary.parts();
    let dictBytes = 0;
    for (const part of dict) dictBytes += part.length;
    if (dictionaryBytes(dictionary.size, dict[3].length) !== dictBytes) throw new Error('scan cache: dictionary size');
    let line = `${header()}${count} ${paths.length} ${textBytes} ${blockBytes} ${dictionary.size} ${dict[3].length} ${plan.walkRecord.length} `;
    const hashAt = Buffer.byteLength(line, 'latin1');
    line += '00000000';
    // padded so that the body starts 8-aligned in the file (and in the buffer it is read into)
    line = line.padEnd(line.length + pad8(line.length + 1), ' ');
    const head = Buffer.from(`${line}\n`, 'latin1');
    writeAllAt(fd, head, 0);
    let crc = 0;
    const out = chunkedWrite(fd, head.length, (bytes) => (crc = checksumUpdate(crc, bytes)));
    out.put(bytesOf(keys));
    out.put(bytesOf(records));
    out.put(paths);
    // (indexed: unoptimized, those allocate iterators (decisions.md))
    const texts = sections === undefined ? entries.map((e) => e.text) : sections.texts.parts();
    for (let k = 0; k < texts.length; k++) out.put(texts[k]);
    out.zeros(at.block - at.texts - textBytes);
    if (sections !== undefined) {
      const numbers = sections.numbers.parts();
      for (let k = 0; k < numbers.length; k++) out.put(numbers[k]);
    } else {
      for (let k = 0; k < entries.length; k++) ScanCacheWriter.putNumbers(out, entries[k], kept, remap);
    }
    for (const part of dict) out.put(part);
    out.put(plan.walkRecord);
    out.finish();
    writeAllAt(fd, Buffer.from(checksumHex(crc), 'latin1'), hashAt);
  }

  /**
   * Writes the cache into `dir` (temporary file, then rename) when it would store a scan the cache read
   * at the start did not have, or enough directories its walk record lacked (WALK_REWRITE_COUNT);
   * otherwise that cache stays as it is (its entries for files gone since
   * are never hit: a file that comes back has another inode or ctime). A cache that cannot be written
   * is no error of depmod's: false is returned and the next run scans again.
   */
  write(dir: string): boolean {
    if (!this.scanned.includes(1) && !(this.walk !== undefined && this.walk.stats().fresh > WALK_REWRITE_COUNT)) return false;
    const tmp = `${dir}/${SCAN_CACHE_FILE}.tmp-${process.pid}-${Math.floor(Math.random() * 0x100000000).toString(16)}`;
    let fd: number;
    try {
      fd = fs.openSync(tmp, fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_WRONLY, 0o644);
    } catch {
      return false;
    }
    try {
      const plan = this.plan(fs.fstatSync(fd, { bigint: true }));
      if (plan === null) {
        fs.closeSync(fd);
        removeQuietly(tmp);
        return false;
      }
      ScanCacheWriter.writeFile(fd, plan);
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
