// What depmod needs from one module image, extracted the way libkmod does it (libkmod-elf.c:
// kmod_elf_get_symbols, kmod_elf_get_dependency_symbols, kmod_elf_get_modinfo_strings), on top of the
// shared ELF header/section parser. The symbol tables are walked with direct reads instead of building
// a symbol object per entry: depmod reads every symbol of thousands of modules. The symbol-table rules
// are docs/symbol-rules.md's, pinned for this file, src/file/module-elf.ts and native/module_symbols.c
// by test/file/symbol-rules.corpus.ts.
import { Elf, EM_SPARC, EM_SPARCV9, SHN_ABS, SHN_UNDEF, STB_WEAK } from '../file/elf';
import { ENODATA, EINVAL } from '../errno';
import { KmodError } from '../errors';
import { FNV_OFFSET, FNV_PRIME, symbolKeyOfBytes } from './hash';
import { makeScan, scanNumbers, scanNumbersSize, ScanStore, type ModuleScan } from './scan-store';
import { findVersion, indexVersions, versionIndex } from './version-index';

export { ScanStore, type ModuleScan } from './scan-store';
import { loadNativeSymbols, type ScanSymbolsFn } from '../native-addon';

/** A growable typed array reused from module to module (the scan's scratch space). */
function grown<T extends Float64Array | Int32Array | Uint32Array | Uint8Array>(a: T, need: number, make: (n: number) => T): T {
  if (need <= a.length) return a;
  const b = make(Math.max(need, a.length * 2));
  b.set(a);
  return b;
}

/**
 * What the scan of one module found, as positions in its image (copied into its ModuleScan before the
 * next module replaces the image). Module-level and reused: the per-symbol results go into typed
 * arrays that only grow, so that a module leaves no garbage but its few modinfo lists.
 */
class Found {
  errno = 0;
  /** the strings found, as [start, end) pairs in the image */
  aliases: number[] = [];
  softdeps: number[] = [];
  weakdeps: number[] = [];
  /** exported names as [start, end) pairs, and their CRCs */
  exportRanges = new Uint32Array(1024);
  exportCrcs = new Float64Array(512);
  nExports = 0;
  readonly imports = new ImportNames();
  reset(): void {
    // new small arrays: cheaper than truncating the old ones, which frees and regrows their storage
    this.errno = 0;
    this.aliases = [];
    this.softdeps = [];
    this.weakdeps = [];
    this.nExports = 0;
    this.imports.reset();
  }
  addExport(start: number, end: number, crc: number): void {
    const n = this.nExports;
    if (n === this.exportCrcs.length) {
      this.exportCrcs = grown(this.exportCrcs, n + 1, (k) => new Float64Array(k));
      this.exportRanges = grown(this.exportRanges, 2 * (n + 1), (k) => new Uint32Array(k));
    }
    this.exportRanges[2 * n] = start;
    this.exportRanges[2 * n + 1] = end;
    this.exportCrcs[n] = crc;
    this.nExports = n + 1;
  }
}

const STT_REGISTER = 13;
const U64_MAX = 2 ** 64 - 1;

/** The image's fields in its byte order and word size. */
class Reader {
  readonly is64: boolean;
  readonly le: boolean;
  readonly symlen: number;
  private readonly view: DataView;
  constructor(readonly elf: Elf, readonly d: Buffer) {
    this.is64 = elf.is64;
    this.le = !elf.msb;
    this.symlen = elf.is64 ? 24 : 16;
    this.view = new DataView(d.buffer, d.byteOffset, d.byteLength);
  }
  u16(o: number): number {
    return this.view.getUint16(o, this.le);
  }
  u32(o: number): number {
    return this.view.getUint32(o, this.le);
  }
  u64(o: number): number {
    const le = this.le;
    return this.view.getUint32(o + (le ? 4 : 0), le) * 0x100000000 + this.view.getUint32(o + (le ? 0 : 4), le);
  }
  symName(sym: number): number {
    return this.u32(sym);
  }
  symInfo(sym: number): number {
    return this.d[sym + (this.is64 ? 4 : 12)];
  }
  symShndx(sym: number): number {
    return this.u16(sym + (this.is64 ? 6 : 14));
  }
  /** an address-sized word: u64 in ELF64, u32 in ELF32 */
  word(o: number): number {
    return this.is64 ? this.u64(o) : this.u32(o);
  }
  symValue(sym: number): number {
    return this.word(sym + (this.is64 ? 8 : 4));
  }
}

/** the sections depmod reads, looked up together (Elf.findSectionRangesInto) */
const WANTED = ['.strtab', '.symtab', '__versions', '.modinfo', '__ksymtab_strings'] as const;
/** the WANTED sections' offsets and sizes as Elf.findSectionRangesInto gives them */
const found64 = new Float64Array(2 * WANTED.length);
/**
 * offset and size of each WANTED section (in that order) in the module being scanned, 0 and 0 when
 * absent: libkmod takes a section at offset 0 for an absent one wherever depmod reads them. Integers
 * (a Float64Array's would reach the hot code as doubles).
 */
const sec = new Uint32Array(2 * WANTED.length);
const STRTAB = 0;
const SYMTAB = 2;
const VERSIONS = 4;
const MODINFO = 6;
const KSYMTAB_STRINGS = 8;

/** does the modinfo string at d[start..end) have the key `key` (the text before its first '=', or all of it)? */
function hasKey(d: Buffer, start: number, end: number, key: string): boolean {
  const len = key.length;
  if (end - start < len) return false;
  for (let k = 0; k < len; k++) if (d[start + k] !== key.charCodeAt(k)) return false;
  return start + len === end || d[start + len] === 0x3d;
}

/** the alias=, softdep= and weakdep= values of .modinfo (at off, size bytes), each list in order */
function modinfo(off: number, size: number, d: Buffer, found: Found): void {
  // an absent section, or one at offset 0, has no strings for libkmod
  if (off === 0) return;
  const end = off + size;
  let start = off;
  while (start < end) {
    let nul = d.indexOf(0, start);
    if (nul < 0 || nul > end) nul = end;
    const c = d[start];
    // the first byte tells which key it can be: most strings are none of the three
    if (nul > start && (c === 0x61 || c === 0x73 || c === 0x77)) {
      const key = c === 0x61 ? 'alias' : c === 0x73 ? 'softdep' : 'weakdep';
      if (hasKey(d, start, nul, key)) {
        const v = start + key.length;
        (c === 0x61 ? found.aliases : c === 0x73 ? found.softdeps : found.weakdeps).push(v === nul ? v : v + 1, nul);
      }
    }
    start = nul + 1;
  }
}

/** the name at o starts with "__crc_" (unrolled: it is asked of every symbol of every module) */
function isCrcName(d: Buffer, o: number): boolean {
  return d[o] === 0x5f && d[o + 1] === 0x5f && d[o + 2] === 0x63 && d[o + 3] === 0x72 && d[o + 4] === 0x63 && d[o + 5] === 0x5f;
}

const HOST_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * The symbol table as 32-bit words when it can be read that way (a little-endian image on a
 * little-endian host, table aligned): typed-array loads instead of a Buffer read per field.
 */
function symbolWords(r: Reader, off: number, size: number): Uint32Array | undefined {
  const at = r.d.byteOffset + off;
  if (!r.le || !HOST_LE || at % 4 !== 0) return undefined;
  return new Uint32Array(r.d.buffer, at, size >>> 2);
}

function resolveCrc(r: Reader, crc: number, shndx: number): number {
  if (shndx === SHN_ABS || shndx === SHN_UNDEF) return crc;
  const s = r.elf.sectionRange(shndx);
  if (s === undefined) return U64_MAX;
  if (s.size < 4 || crc > s.size - 4) return U64_MAX;
  return r.u32(s.offset + crc);
}

/**
 * libkmod's two symbol-table reads in one walk over .symtab: kmod_elf_get_symbols (exports: the
 * __crc_* symbols, else the strings of __ksymtab_strings with CRC 0) and
 * kmod_elf_get_dependency_symbols (imports: undefined symbols with their CRC from __versions, then
 * the __versions entries no symbol used). Each keeps its own rules for a bad name offset: exports
 * fall back to __ksymtab_strings, imports end up empty. Split in parts so that the hot loop is
 * compiled on its own (a function optimized while its loop runs has no feedback for what follows).
 */
function symbolsOf(r: Reader, found: Found): void {
  // the addon is loaded at the first module, not when this file is (the library's other users)
  if (nativeSymbols === undefined) nativeSymbols = loadNativeSymbols();
  if (nativeSymbols !== null && symbolsNative(nativeSymbols, r, found)) return;
  const d = r.d;
  const strOff = sec[STRTAB];
  const symOff = sec[SYMTAB];
  const tableOk = strOff > 0 && symOff > 0 && sec[SYMTAB + 1] % r.symlen === 0;
  const crclen = r.is64 ? 8 : 4;
  const verOff = sec[VERSIONS];
  const vercount = tableOk && verOff > 0 && sec[VERSIONS + 1] % VERLEN === 0 ? sec[VERSIONS + 1] / VERLEN : 0;
  indexVersions(d, verOff + crclen, vercount, VERLEN - crclen, VERLEN);
  if (tableOk) {
    walkSymbols(r);
    if (importsOk) symbolImports(r, vercount, found.imports);
  } else {
    exportsFromTable = false;
    importsOk = false;
    nCrcSyms = 0;
  }
  if (exportsFromTable && nCrcSyms > 0) crcExports(r, found);
  else exportsFromStrings(d, sec[KSYMTAB_STRINGS], sec[KSYMTAB_STRINGS + 1], found);
  unusedVersions(r, vercount, crclen, found.imports);
}

/** the native helper's scanSymbols (native/module_symbols.c), null when it is not built, undefined until the first scan */
let nativeSymbols: ScanSymbolsFn | null | undefined;

/** how often the native helper did symbolsOf's work, here or on the pool (pool-scan.ts; tests) */
export const nativeSymbolStats = { done: 0 };

/** false after useNativeSymbols(false): the pool's C scan (native/module_scan.c) is then not used either */
export function nativeSymbolsAllowed(): boolean {
  return nativeSymbols !== null;
}

/**
 * Whether the scan uses the native helper (when it is built): false makes it take the JavaScript path
 * (tests compare the two). Returns whether the helper is in use.
 */
export function useNativeSymbols(on: boolean): boolean {
  nativeSymbols = on ? loadNativeSymbols() : null;
  return nativeSymbols !== null;
}
/** scanSymbols' io: the layout in, the counts out (module_symbols.c IN_* and OUT_*) */
const nativeIo = new Float64Array(24);

/**
 * symbolsOf through the native helper, into the same arrays. False when it declines (an offset outside
 * the image, which the JavaScript path reports as it always has).
 */
function symbolsNative(scanSymbols: ScanSymbolsFn, r: Reader, found: Found): boolean {
  const io = nativeIo;
  io[0] = sec[STRTAB];
  io[1] = sec[STRTAB + 1];
  io[2] = sec[SYMTAB];
  io[3] = sec[SYMTAB + 1];
  io[4] = sec[VERSIONS];
  io[5] = sec[VERSIONS + 1];
  io[6] = sec[KSYMTAB_STRINGS];
  io[7] = sec[KSYMTAB_STRINGS + 1];
  const elf = r.elf;
  io[8] = r.is64 ? 1 : 0;
  io[9] = r.le ? 1 : 0;
  io[10] = elf.machine === EM_SPARC || elf.machine === EM_SPARCV9 ? 1 : 0;
  io[11] = elf.shoff;
  io[12] = elf.shentsize;
  io[13] = elf.shnum;
  io[14] = elf.sectionNamesSize;
  const im = found.imports;
  for (;;) {
    const status = scanSymbols(r.d, io, found.exportRanges, found.exportCrcs, im.bytes, im.keys, im.lengths, im.crcs, im.weak);
    if (status < 0) return false;
    const nExports = io[16];
    const nImports = io[18];
    const bytes = io[19];
    if (status === 0) {
      found.nExports = nExports;
      if (io[17] !== 0) found.errno = io[17];
      im.count = nImports;
      im.byteLength = bytes;
      nativeSymbolStats.done++;
      return true;
    }
    // an array too small: grown to what the module needs, and the call made again
    found.exportRanges = grown(found.exportRanges, 2 * nExports, (n) => new Uint32Array(n));
    found.exportCrcs = grown(found.exportCrcs, nExports, (n) => new Float64Array(n));
    im.reserve(nImports, bytes);
  }
}

/** __versions entry size */
const VERLEN = 64;

// what walkSymbols found besides the imports: plain variables, not an object's fields, since the
// function is often compiled while its first loop runs and the code after it has no type feedback yet
let exportsFromTable = false;
let importsOk = false;
let nCrcSyms = 0;

/**
 * The walk over .symtab, from its last entry to its first: the entries of __crc_ symbols into
 * scratchCrcSyms, those of the undefined symbols to import into scratchUndef, each in reverse table
 * order (nCrcSyms, nUndef). Backwards because both kinds are global symbols, which an ELF symbol table
 * keeps after all the local ones: the loop meets them first, so the code they take has type feedback
 * before the long run of locals gets the loop optimized (walking forwards, the optimized loop was
 * thrown away and rebuilt several times per thread, at the first import, the first __crc_, ...).
 */
function walkSymbols(r: Reader): void {
  const d = r.d;
  const strOff = sec[STRTAB];
  const strSize = sec[STRTAB + 1];
  const symOff = sec[SYMTAB];
  const sparc = r.elf.machine === EM_SPARC || r.elf.machine === EM_SPARCV9;
  const symlen = r.symlen;
  const count = sec[SYMTAB + 1] / symlen;
  const words = symbolWords(r, symOff, sec[SYMTAB + 1]);
  // per entry: st_name is word 0; st_info, st_other and st_shndx share word 1 (ELF64) or 3 (ELF32)
  const stride = symlen >>> 2;
  const infoWord = r.is64 ? 1 : 3;
  let fromTable = true;
  let ok = true;
  let crcSyms = scratchCrcSyms;
  let undef = scratchUndef;
  let nCrc = 0;
  let nU = 0;
  for (let i = count - 1, o = symOff + i * symlen, wi = i * stride; i >= 1; i--, o -= symlen, wi -= stride) {
    const no = words !== undefined ? words[wi] : r.symName(o);
    if (no >= strSize) fromTable = false;
    else if (fromTable && isCrcName(d, strOff + no)) {
      if (nCrc === crcSyms.length) scratchCrcSyms = crcSyms = grown(crcSyms, nCrc + 1, (n) => new Uint32Array(n));
      crcSyms[nCrc++] = o;
    }
    if (!ok) continue;
    if ((words !== undefined ? words[wi + infoWord] >>> 16 : r.symShndx(o)) !== SHN_UNDEF) continue;
    if (no >= strSize) {
      ok = false; // -EINVAL: no dependency symbols at all
      continue;
    }
    const info = words !== undefined ? words[wi + infoWord] & 0xff : r.symInfo(o);
    if (!(sparc && (info & 0xf) === STT_REGISTER) && d[strOff + no] !== 0) {
      if (nU === undef.length) scratchUndef = undef = grown(undef, nU + 1, (n) => new Uint32Array(n));
      undef[nU++] = o;
    }
  }
  exportsFromTable = fromTable;
  importsOk = ok;
  nCrcSyms = nCrc;
  nUndef = nU;
}

/** the undefined symbols walkSymbols found, as imports in table order (kmod_elf_get_dependency_symbols) */
function symbolImports(r: Reader, vercount: number, names: ImportNames): void {
  const undef = scratchUndef;
  const strOff = sec[STRTAB];
  for (let k = nUndef - 1; k >= 0; k--) {
    const o = undef[k];
    addImport(r, strOff + r.symName(o), r.symInfo(o), vercount, names);
  }
}

/** the entries of the undefined symbols walkSymbols found (reused from module to module) */
let scratchUndef = new Uint32Array(1024);
let nUndef = 0;

/**
 * An undefined symbol (name at `start`, st_info `info`) as an import, with its __versions CRC. A
 * function of its own: walkSymbols is compiled while its loop runs, often before any import is met.
 */
function addImport(r: Reader, start: number, info: number, vercount: number, names: ImportNames): void {
  const end = names.add(r.d, start);
  const vi = vercount > 0 ? findVersion(start, end, names.fullKey) : -1;
  let crc = 0;
  if (vi >= 0) {
    versionIndex.used[vi] = 1;
    crc = r.word(sec[VERSIONS] + vi * VERLEN);
  }
  names.setLast(crc, info >> 4 === STB_WEAK);
}

/** kmod_elf_get_symbols from the __crc_ symbols walkSymbols found */
function crcExports(r: Reader, found: Found): void {
  const d = r.d;
  const crcSyms = scratchCrcSyms;
  // walkSymbols found them last to first
  for (let k = nCrcSyms - 1; k >= 0; k--) {
    const o = crcSyms[k];
    const start = sec[STRTAB] + r.symName(o) + 6;
    found.addExport(start, cstrEnd(d, start), resolveCrc(r, r.symValue(o), r.symShndx(o)));
  }
}

/** the imports end with the __versions entries no symbol used; none at all when any cannot be read */
function unusedVersions(r: Reader, vercount: number, crclen: number, names: ImportNames): void {
  const visited = versionIndex.used;
  const lens = versionIndex.lens;
  let importsFail = !importsOk;
  for (let i = 0; i < vercount && !importsFail; i++) {
    if (visited[i] === 0 && lens[i] < 0) importsFail = true; // name without NUL in its slot: -EINVAL
  }
  if (importsFail) {
    names.reset();
    return;
  }
  const verOff = sec[VERSIONS];
  for (let i = 0; i < vercount; i++) {
    if (visited[i] !== 0) continue;
    names.add(r.d, verOff + i * VERLEN + crclen);
    names.setLast(r.word(verOff + i * VERLEN), false);
  }
}

/** the symbol entries of the __crc_ symbols found (reused from module to module) */
let scratchCrcSyms = new Uint32Array(256);

/** the end of the C string at o (its NUL, or the end of the image) */
function cstrEnd(d: Buffer, o: number): number {
  const end = d.indexOf(0, o);
  return end < 0 ? d.length : end;
}

/**
 * The imports of one module: their names copied into a buffer reused from module to module and
 * joined by NULs, with the symbolKey of each (of the name without a leading '.'), its length, CRC and
 * weak flag, all in typed arrays that only grow: one string is made per module instead of one per
 * import, and no garbage.
 */
class ImportNames {
  bytes = Buffer.allocUnsafe(64 << 10);
  keys = new Int32Array(4096);
  lengths = new Uint32Array(4096);
  crcs = new Float64Array(4096);
  weak = new Uint8Array(4096);
  /** bytes used in `bytes` */
  byteLength = 0;
  count = 0;
  /** FNV-1a of the whole name last added (to find its __versions entry) */
  fullKey = 0;
  reset(): void {
    this.byteLength = this.count = 0;
  }
  /** adds the name at d[start..] (to its NUL or the end of the image); returns where it ends */
  add(d: Buffer, start: number): number {
    let end = d.indexOf(0, start);
    if (end < 0) end = d.length;
    const len = end - start;
    let pos = this.byteLength;
    let bytes = this.bytes;
    if (pos + len + 1 > bytes.length) {
      const bigger = Buffer.allocUnsafe(Math.max(bytes.length * 2, pos + len + 1));
      bytes.copy(bigger, 0, 0, pos);
      this.bytes = bytes = bigger;
    }
    if (this.count > 0) bytes[pos++] = 0;
    let h = FNV_OFFSET;
    for (let i = start; i < end; i++) {
      const c = d[i];
      bytes[pos++] = c;
      h = Math.imul(h ^ c, FNV_PRIME);
    }
    this.byteLength = pos;
    this.fullKey = h | 0;
    // symbol_find drops one leading '.'
    if (d[start] === 0x2e) h = symbolKeyOfBytes(d, start + 1, end);
    const n = this.count;
    if (n === this.keys.length) {
      const make = <T extends Int32Array | Uint32Array | Float64Array | Uint8Array>(a: T, k: (n: number) => T): T => grown(a, n + 1, k);
      this.keys = make(this.keys, (k) => new Int32Array(k));
      this.lengths = make(this.lengths, (k) => new Uint32Array(k));
      this.crcs = make(this.crcs, (k) => new Float64Array(k));
      this.weak = make(this.weak, (k) => new Uint8Array(k));
    }
    this.lengths[n] = len;
    this.keys[n] = h | 0;
    this.count = n + 1;
    return end;
  }
  /** room for `count` names of `bytes` bytes in all */
  reserve(count: number, bytes: number): void {
    if (bytes > this.bytes.length) {
      const bigger = Buffer.allocUnsafe(Math.max(this.bytes.length * 2, bytes));
      this.bytes.copy(bigger, 0, 0, this.byteLength);
      this.bytes = bigger;
    }
    this.keys = grown(this.keys, count, (k) => new Int32Array(k));
    this.lengths = grown(this.lengths, count, (k) => new Uint32Array(k));
    this.crcs = grown(this.crcs, count, (k) => new Float64Array(k));
    this.weak = grown(this.weak, count, (k) => new Uint8Array(k));
  }
  /** the CRC and weak flag of the name last added */
  setLast(crc: number, weak: boolean): void {
    this.crcs[this.count - 1] = crc;
    this.weak[this.count - 1] = weak ? 1 : 0;
  }
}

/** kmod_elf_get_symbols without __crc_ symbols: the strings of __ksymtab_strings, CRC 0. */
function exportsFromStrings(d: Buffer, off: number, size: number, found: Found): void {
  if (off === 0) {
    found.errno = ENODATA;
    return;
  }
  while (size > 1 && d[off] === 0) {
    off++;
    size--;
  }
  if (size <= 1) return;
  if (d[off + size - 1] !== 0) {
    found.errno = EINVAL;
    return;
  }
  // the non-empty strings
  const end = off + size;
  for (let start = off; start < end; ) {
    let nul = d.indexOf(0, start);
    if (nul < 0 || nul > end) nul = end;
    if (nul > start) {
      found.addExport(start, nul, 0);
    }
    start = nul + 1;
  }
}

const found = new Found();

/**
 * Scans a decompressed module image (depmod's inputs, extracted as libkmod does); the image may be
 * reused once this returns, the scan's numbers are kept in `store`. An unusable ELF is recorded with
 * its errno.
 */
export function scanModuleImage(data: Buffer, file: string, store: ScanStore = oneOffStore): ModuleScan {
  found.reset();
  let elf: Elf | undefined;
  try {
    elf = new Elf(data, file);
  } catch (err) {
    if (!(err instanceof KmodError)) throw err;
    found.errno = err.errno;
  }
  if (elf !== undefined) {
    elf.findSectionRangesInto(WANTED, found64);
    for (let k = 0; k < sec.length; k += 2) {
      const absent = found64[k] < 0;
      sec[k] = absent ? 0 : found64[k];
      sec[k + 1] = absent ? 0 : found64[k + 1];
    }
    modinfo(sec[MODINFO], sec[MODINFO + 1], data, found);
    symbolsOf(new Reader(elf, data), found);
  }
  return foundScan(data, store);
}

/** A module that could not be read at all, with the errno for its "failed to load symbols" error. */
export function failedScan(errno: number): ModuleScan {
  found.reset();
  found.errno = errno;
  return foundScan(EMPTY, oneOffStore);
}

const EMPTY = Buffer.alloc(0);

/** the strings of [start, end) pairs of the image */
function strings(d: Buffer, ranges: ArrayLike<number>, n: number): string[] {
  const list: string[] = new Array(n);
  for (let k = 0; k < n; k++) list[k] = d.toString('latin1', ranges[2 * k], ranges[2 * k + 1]);
  return list;
}

/** the store of scans made without one (tests, one-off uses): never released */
const oneOffStore = new ScanStore();

/** what `found` holds, copied out of the image and the reused arrays */
function foundScan(d: Buffer, store: ScanStore): ModuleScan {
  const im = found.imports;
  const n = im.count;
  const e = found.nExports;
  const { buffer: ab, at } = store.place(scanNumbersSize(e, n, im.byteLength));
  const numbers = scanNumbers(ab, at, e, n, im.byteLength);
  numbers.exportCrcs.set(found.exportCrcs.subarray(0, e));
  numbers.importCrcs.set(im.crcs.subarray(0, n));
  numbers.importKeys.set(im.keys.subarray(0, n));
  numbers.importLengths.set(im.lengths.subarray(0, n));
  numbers.importWeak.set(im.weak.subarray(0, n));
  numbers.importNames.set(im.bytes.subarray(0, im.byteLength));
  return makeScan(
    strings(d, found.aliases, found.aliases.length >>> 1),
    strings(d, found.softdeps, found.softdeps.length >>> 1),
    strings(d, found.weakdeps, found.weakdeps.length >>> 1),
    strings(d, found.exportRanges, e),
    numbers,
    found.errno,
  );
}
