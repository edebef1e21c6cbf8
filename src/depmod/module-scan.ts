// What depmod needs from one module image, extracted the way libkmod does it (libkmod-elf.c:
// kmod_elf_get_symbols, kmod_elf_get_dependency_symbols, kmod_elf_get_modinfo_strings), on top of the
// shared ELF header/section parser. The symbol tables are walked with direct reads instead of building
// a symbol object per entry: depmod reads every symbol of thousands of modules.
import { Elf, EM_SPARC, EM_SPARCV9, SHN_ABS, SHN_UNDEF, STB_WEAK } from '../file/elf';
import { ENODATA, EINVAL } from '../errno';
import { KmodError } from '../errors';
import { FNV_OFFSET, FNV_PRIME, symbolKeyOfBytes } from './hash';

/** What depmod needs from one module, as readScanBatch() gives it back. */
export interface ModuleScan {
  /** modinfo values of alias=, softdep=, weakdep= (each list in .modinfo order) */
  aliases: string[];
  softdeps: string[];
  weakdeps: string[];
  /** exported symbol names (kmod_module_get_symbols order) and their CRCs */
  exports: string[];
  exportCrcs: Float64Array;
  /** imported symbol names as bytes, joined by NULs (kmod_module_get_dependency_symbols order) */
  importNames: Uint8Array;
  /** the length of each import's name in importNames */
  importLengths: Uint32Array;
  importCrcs: Float64Array;
  /** 1 where the import is a weak reference */
  importWeak: Uint8Array;
  /** hash.ts symbolKey of each import's name without a leading '.' (the name symbol_find looks up) */
  importKeys: Int32Array;
  /** errno when kmod_module_get_symbols fails (other than ENODATA), for "failed to load symbols" */
  symbolsErrno?: number;
}

/**
 * What the scan of one module found, as positions in its image (copied into a ScanBatch before the
 * next module replaces the image). Module-level and reused: no garbage per module beyond number lists.
 */
class Found {
  errno = 0;
  /** the strings found, as [start, end) pairs in the image */
  aliases: number[] = [];
  softdeps: number[] = [];
  weakdeps: number[] = [];
  exports: number[] = [];
  exportCrcs: number[] = [];
  readonly imports = new ImportNames();
  importCrcs: number[] = [];
  importWeak: number[] = [];
  reset(): void {
    // new small arrays: cheaper than truncating the old ones, which frees and regrows their storage
    this.errno = 0;
    this.aliases = [];
    this.softdeps = [];
    this.weakdeps = [];
    this.exports = [];
    this.exportCrcs = [];
    this.imports.reset();
    this.importCrcs = [];
    this.importWeak = [];
  }
}

const STT_REGISTER = 13;
const U64_MAX = 2 ** 64 - 1;

interface Tab {
  off: number;
  size: number;
}

class Reader {
  readonly is64: boolean;
  readonly msb: boolean;
  readonly symlen: number;
  constructor(readonly elf: Elf, readonly d: Buffer) {
    this.is64 = elf.is64;
    this.msb = elf.msb;
    this.symlen = elf.is64 ? 24 : 16;
  }
  u16(o: number): number {
    return this.msb ? this.d.readUInt16BE(o) : this.d.readUInt16LE(o);
  }
  u32(o: number): number {
    return this.msb ? this.d.readUInt32BE(o) : this.d.readUInt32LE(o);
  }
  u64(o: number): number {
    const hi = this.msb ? this.d.readUInt32BE(o) : this.d.readUInt32LE(o + 4);
    const lo = this.msb ? this.d.readUInt32BE(o + 4) : this.d.readUInt32LE(o);
    return hi * 0x100000000 + lo;
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

/** the sections depmod reads, looked up together (Elf.findSectionRanges) */
const WANTED = ['.strtab', '.symtab', '__versions', '.modinfo', '__ksymtab_strings'] as const;

interface Wanted {
  str?: Tab;
  sym?: Tab;
  versions?: Tab;
  modinfo?: Tab;
  ksymtabStrings?: Tab;
}

function wantedSections(elf: Elf): Wanted {
  const [str, sym, versions, modinfo, ksymtabStrings] = elf.findSectionRanges(WANTED).map((r) => (r === undefined ? undefined : { off: r.offset, size: r.size }));
  return { str, sym, versions, modinfo, ksymtabStrings };
}

/** does the modinfo string at d[start..end) have the key `key` (the text before its first '=', or all of it)? */
function hasKey(d: Buffer, start: number, end: number, key: string): boolean {
  const len = key.length;
  if (end - start < len) return false;
  for (let k = 0; k < len; k++) if (d[start + k] !== key.charCodeAt(k)) return false;
  return start + len === end || d[start + len] === 0x3d;
}

/** the alias=, softdep= and weakdep= values of .modinfo, each list in order */
function modinfo(s: Tab | undefined, d: Buffer, found: Found): void {
  if (s === undefined || s.off === 0) return;
  const end = s.off + s.size;
  let start = s.off;
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

/**
 * A module's __versions entries by name, for the first entry of each name (kmod_elf_crc_find scans
 * from the start): an open-addressing table in typed arrays reused from module to module, keyed by
 * FNV-1a and confirmed byte by byte. No string is made for an entry.
 */
class VersionIndex {
  private static slots = new Int32Array(256);
  private static keys = new Int32Array(128);
  private static lens = new Int32Array(128);
  private static used = new Uint8Array(128);
  private readonly mask: number;
  /** `names` is the offset of entry 0's name, entries `stride` bytes apart with `namlen`-byte names */
  constructor(private readonly d: Buffer, private readonly names: number, count: number, namlen: number, private readonly stride = 64) {
    let size = 16;
    while (size < count * 2) size *= 2;
    this.mask = size - 1;
    if (VersionIndex.slots.length < size) VersionIndex.slots = new Int32Array(size);
    if (VersionIndex.keys.length < count) {
      VersionIndex.keys = new Int32Array(size);
      VersionIndex.lens = new Int32Array(size);
      VersionIndex.used = new Uint8Array(size);
    }
    VersionIndex.used.fill(0, 0, count);
    const slots = VersionIndex.slots;
    slots.fill(0, 0, size);
    for (let i = 0; i < count; i++) {
      const no = names + i * stride;
      // the name's length and FNV-1a in one pass
      let len = 0;
      let h = FNV_OFFSET;
      for (let c = d[no]; len < namlen && c !== 0; c = d[no + ++len]) h = Math.imul(h ^ c, FNV_PRIME);
      h |= 0;
      if (len === namlen) {
        VersionIndex.lens[i] = -1; // no NUL in the slot
        continue;
      }
      VersionIndex.keys[i] = h;
      VersionIndex.lens[i] = len;
      let slot = h & this.mask;
      for (; slots[slot] !== 0; slot = (slot + 1) & this.mask) if (this.same(slots[slot] - 1, no, len, h)) break;
      if (slots[slot] === 0) slots[slot] = i + 1;
    }
  }
  /** 1 for each entry a symbol has used (reused from module to module, cleared per module) */
  get visited(): Uint8Array {
    return VersionIndex.used;
  }
  /** the entry's name length, -1 when its slot holds no NUL */
  nameLength(i: number): number {
    return VersionIndex.lens[i];
  }
  private same(i: number, start: number, len: number, h: number): boolean {
    if (VersionIndex.keys[i] !== h || VersionIndex.lens[i] !== len) return false;
    const vo = this.names + i * this.stride;
    for (let k = 0; k < len; k++) if (this.d[vo + k] !== this.d[start + k]) return false;
    return true;
  }
  /** the first entry named like d[start..end) (whose FNV-1a is h), or -1 */
  find(start: number, end: number, h: number): number {
    const slots = VersionIndex.slots;
    for (let slot = h & this.mask; slots[slot] !== 0; slot = (slot + 1) & this.mask) {
      if (this.same(slots[slot] - 1, start, end - start, h)) return slots[slot] - 1;
    }
    return -1;
  }
}

const HOST_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * The symbol table as 32-bit words when it can be read that way (a little-endian image on a
 * little-endian host, table aligned): typed-array loads instead of a Buffer read per field.
 */
function symbolWords(r: Reader, sym: Tab): Uint32Array | undefined {
  const at = r.d.byteOffset + sym.off;
  if (r.msb || !HOST_LE || at % 4 !== 0) return undefined;
  return new Uint32Array(r.d.buffer, at, sym.size >>> 2);
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
 * fall back to __ksymtab_strings, imports end up empty.
 */
function symbolsOf(r: Reader, w: Wanted, found: Found): void {
  const d = r.d;
  const { str, sym } = w;
  const tableOk = str !== undefined && sym !== undefined && str.off !== 0 && sym.off !== 0 && sym.size % r.symlen === 0;

  let ver = w.versions;
  const verlen = 64;
  const crclen = r.is64 ? 8 : 4;
  if (ver !== undefined && (ver.off === 0 || ver.size % verlen !== 0)) ver = undefined;
  const vercount = ver === undefined || !tableOk ? 0 : ver.size / verlen;
  const versions = new VersionIndex(d, vercount === 0 ? 0 : ver!.off + crclen, vercount, verlen - crclen);

  let exportsFromTable = tableOk;
  const crcSyms: number[] = [];
  let importsOk = tableOk;
  const names = found.imports;
  const crcs = found.importCrcs;
  const weak = found.importWeak;
  const visited = versions.visited;
  if (tableOk) {
    const sparc = r.elf.machine === EM_SPARC || r.elf.machine === EM_SPARCV9;
    const count = sym!.size / r.symlen;
    const strOff = str!.off;
    const strSize = str!.size;
    const words = symbolWords(r, sym!);
    // per entry: st_name is word 0; st_info, st_other and st_shndx share word 1 (ELF64) or 3 (ELF32)
    const stride = r.symlen >>> 2;
    const infoWord = r.is64 ? 1 : 3;
    for (let i = 1, o = sym!.off + r.symlen; i < count; i++, o += r.symlen) {
      const no = words !== undefined ? words[i * stride] : r.symName(o);
      if (no >= strSize) exportsFromTable = false;
      else if (exportsFromTable && isCrcName(d, strOff + no)) crcSyms.push(o);
      if (!importsOk) continue;
      const w = words !== undefined ? words[i * stride + infoWord] : 0;
      if ((words !== undefined ? w >>> 16 : r.symShndx(o)) !== SHN_UNDEF) continue;
      const info = words !== undefined ? w & 0xff : r.symInfo(o);
      if (sparc && (info & 0xf) === STT_REGISTER) continue;
      if (no >= strSize) {
        importsOk = false; // -EINVAL: no dependency symbols at all
        continue;
      }
      const start = strOff + no;
      if (d[start] === 0) continue;
      const end = names.add(d, start);
      const vi = vercount > 0 ? versions.find(start, end, names.fullKey) : -1;
      let crc = 0;
      if (vi >= 0) {
        visited[vi] = 1;
        crc = r.word(ver!.off + vi * verlen);
      }
      crcs.push(crc);
      weak.push(info >> 4 === STB_WEAK ? 1 : 0);
    }
  }

  // exports
  if (exportsFromTable && crcSyms.length > 0) {
    for (let k = 0; k < crcSyms.length; k++) {
      const o = crcSyms[k];
      const start = str!.off + r.symName(o) + 6;
      found.exports.push(start, cstrEnd(d, start));
      found.exportCrcs.push(resolveCrc(r, r.symValue(o), r.symShndx(o)));
    }
  } else {
    exportsFromStrings(d, w.ksymtabStrings, found);
  }

  // imports: none at all when they cannot all be read
  let importsFail = !importsOk;
  for (let i = 0; i < vercount && !importsFail; i++) {
    if (!visited[i] && versions.nameLength(i) < 0) importsFail = true; // name without NUL in its slot: -EINVAL
  }
  if (importsFail) {
    names.reset();
    found.importCrcs = [];
    found.importWeak = [];
    return;
  }
  for (let i = 0; i < vercount; i++) {
    if (visited[i]) continue;
    names.add(d, ver!.off + i * verlen + crclen);
    crcs.push(r.word(ver!.off + i * verlen));
    weak.push(0);
  }
}

/** the end of the C string at o (its NUL, or the end of the image) */
function cstrEnd(d: Buffer, o: number): number {
  const end = d.indexOf(0, o);
  return end < 0 ? d.length : end;
}

/**
 * The imported names of one module, copied into a buffer reused from module to module and joined by
 * NULs, with the symbolKey of each (of the name without a leading '.'): one string is made per module
 * instead of one per import.
 */
class ImportNames {
  private static bytes = Buffer.allocUnsafe(64 << 10);
  private static keyBuf = new Int32Array(4096);
  private static lengthBuf = new Uint32Array(4096);
  private pos = 0;
  private count = 0;
  reset(): void {
    this.pos = this.count = 0;
  }
  /** the names' bytes, joined by NULs */
  get byteLength(): number {
    return this.pos;
  }
  copyTo(target: Buffer, at: number): number {
    return ImportNames.bytes.copy(target, at, 0, this.pos);
  }
  /** FNV-1a of the whole name last added (to find its __versions entry) */
  fullKey = 0;
  get keys(): Int32Array {
    return ImportNames.keyBuf;
  }
  get lengths(): Uint32Array {
    return ImportNames.lengthBuf;
  }
  /** adds the name at d[start..] (to its NUL or the end of the image); returns where it ends */
  add(d: Buffer, start: number): number {
    let end = start;
    while (end < d.length && d[end] !== 0) end++;
    let bytes = ImportNames.bytes;
    if (this.pos + end - start + 1 > bytes.length) {
      const bigger = Buffer.allocUnsafe(Math.max(bytes.length * 2, this.pos + end - start + 1));
      bytes.copy(bigger, 0, 0, this.pos);
      ImportNames.bytes = bytes = bigger;
    }
    if (this.count > 0) bytes[this.pos++] = 0;
    let h = FNV_OFFSET;
    for (let i = start; i < end; i++) {
      const c = d[i];
      bytes[this.pos++] = c;
      h = Math.imul(h ^ c, FNV_PRIME);
    }
    this.fullKey = h | 0;
    // symbol_find drops one leading '.'
    if (d[start] === 0x2e) h = symbolKeyOfBytes(d, start + 1, end);
    if (this.count === ImportNames.keyBuf.length) {
      const keys = new Int32Array(this.count * 2);
      keys.set(ImportNames.keyBuf);
      ImportNames.keyBuf = keys;
      const lengths = new Uint32Array(this.count * 2);
      lengths.set(ImportNames.lengthBuf);
      ImportNames.lengthBuf = lengths;
    }
    ImportNames.lengthBuf[this.count] = end - start;
    ImportNames.keyBuf[this.count++] = h | 0;
    return end;
  }
}

/** kmod_elf_get_symbols without __crc_ symbols: the strings of __ksymtab_strings, CRC 0. */
function exportsFromStrings(d: Buffer, ks: Tab | undefined, found: Found): void {
  if (ks === undefined || ks.off === 0) {
    found.errno = ENODATA;
    return;
  }
  let off = ks.off;
  let size = ks.size;
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
      found.exports.push(start, nul);
      found.exportCrcs.push(0);
    }
    start = nul + 1;
  }
}

const found = new Found();

/**
 * Scans a decompressed module image into `batch` (depmod's inputs, extracted as libkmod does). An
 * unusable ELF is recorded with its errno.
 */
export function scanModuleImage(data: Buffer, file: string, batch: ScanBatchWriter): void {
  found.reset();
  let elf: Elf | undefined;
  try {
    elf = new Elf(data, file);
  } catch (err) {
    if (!(err instanceof KmodError)) throw err;
    found.errno = err.errno;
  }
  if (elf !== undefined) {
    const w = wantedSections(elf);
    modinfo(w.modinfo, data, found);
    symbolsOf(new Reader(elf, data), w, found);
  }
  batch.add(found, data);
}

/** A module that could not be read at all, with the errno for its "failed to load symbols" error. */
export function addFailedScan(batch: ScanBatchWriter, errno: number): void {
  found.reset();
  found.errno = errno;
  batch.add(found, EMPTY);
}

const EMPTY = Buffer.alloc(0);

/** One image's scan, read back (tests and one-off uses). */
export function scanOneImage(data: Buffer, file: string): ModuleScan {
  const batch = new ScanBatchWriter();
  scanModuleImage(data, file, batch);
  return readScanBatch(batch.take())[0];
}

/**
 * The scans of a batch of modules in one ArrayBuffer, made on a scan thread and transferred (not
 * copied) to depmod's thread, where readScanBatch() gives them back. Per module, 8-byte aligned:
 *   u32 errno+1 (0: none), u32 counts of aliases, softdeps, weakdeps, exports, imports,
 *   u32 string bytes, u32 import name bytes, u32 length of each string; (aligned to 8)
 *   f64 export CRCs, f64 import CRCs, i32 import keys, u32 import name lengths, u8 import weak flags,
 *   the strings' bytes, the import names' bytes (joined by NULs).
 * The data stays outside the JS heap until depmod turns what it needs into strings.
 */
export class ScanBatchWriter {
  private buf!: Buffer;
  private u32!: Uint32Array;
  private i32!: Int32Array;
  private f64!: Float64Array;
  private pos = 8;
  private count = 0;

  constructor() {
    this.allocate(256 << 10);
  }

  /** a buffer of its own (8-aligned), with host-endian views of it */
  private allocate(size: number): void {
    const ab = new ArrayBuffer(align8(size));
    const buf = Buffer.from(ab);
    if (this.buf !== undefined) this.buf.copy(buf, 0, 0, this.pos);
    this.buf = buf;
    this.u32 = new Uint32Array(ab);
    this.i32 = new Int32Array(ab);
    this.f64 = new Float64Array(ab);
  }

  private reserve(n: number): void {
    if (this.pos + n > this.buf.length) this.allocate(Math.max(this.buf.length * 2, this.pos + n));
  }

  add(f: Found, image: Buffer): void {
    const strings = [f.aliases, f.softdeps, f.weakdeps, f.exports];
    let nStrings = 0;
    let stringBytes = 0;
    for (const list of strings) {
      nStrings += list.length >>> 1;
      for (let k = 0; k < list.length; k += 2) stringBytes += list[k + 1] - list[k];
    }
    const nImports = f.importCrcs.length;
    const nExports = f.exports.length >>> 1;
    const nameBytes = f.imports.byteLength;
    const head = align8(4 * (8 + nStrings));
    const size = align8(head + 8 * (nExports + nImports) + 9 * nImports + stringBytes + nameBytes);
    this.reserve(size);
    const { buf: b, u32, i32, f64 } = this;
    // word indexes: every part below starts aligned for its type
    let w = this.pos >>> 2;
    u32[w++] = f.errno === 0 ? 0 : f.errno + 1;
    u32[w++] = f.aliases.length >>> 1;
    u32[w++] = f.softdeps.length >>> 1;
    u32[w++] = f.weakdeps.length >>> 1;
    u32[w++] = nExports;
    u32[w++] = nImports;
    u32[w++] = stringBytes;
    u32[w++] = nameBytes;
    for (const list of strings) for (let k = 0; k < list.length; k += 2) u32[w++] = list[k + 1] - list[k];
    let d = (this.pos + head) >>> 3;
    for (const v of f.exportCrcs) f64[d++] = v;
    for (const v of f.importCrcs) f64[d++] = v;
    w = d << 1;
    const keys = f.imports.keys;
    for (let k = 0; k < nImports; k++) i32[w++] = keys[k];
    const lengths = f.imports.lengths;
    for (let k = 0; k < nImports; k++) u32[w++] = lengths[k];
    let p = w << 2;
    for (let k = 0; k < nImports; k++) b[p++] = f.importWeak[k];
    for (const list of strings) {
      for (let k = 0; k < list.length; k += 2) {
        image.copy(b, p, list[k], list[k + 1]);
        p += list[k + 1] - list[k];
      }
    }
    f.imports.copyTo(b, p);
    this.pos += size;
    this.count++;
  }

  /** the batch so far, in a buffer of its own (to transfer); the writer starts over */
  take(): ArrayBuffer {
    this.u32[0] = this.count;
    const out = new ArrayBuffer(this.pos);
    new Uint8Array(out).set(this.buf.subarray(0, this.pos));
    this.pos = 8;
    this.count = 0;
    return out;
  }
}

function align8(n: number): number {
  return (n + 7) & ~7;
}

/** The scans of a batch, in the order they were added. Typed arrays are views of the batch's buffer. */
export function readScanBatch(ab: ArrayBuffer): ModuleScan[] {
  const b = Buffer.from(ab);
  const u32 = new Uint32Array(ab, 0, ab.byteLength >>> 2);
  const count = u32[0];
  const out: ModuleScan[] = [];
  let pos = 8;
  for (let m = 0; m < count; m++) {
    const at = (i: number): number => u32[(pos >>> 2) + i];
    const errno = at(0);
    const nA = at(1);
    const nS = at(2);
    const nW = at(3);
    const nE = at(4);
    const nI = at(5);
    const stringBytes = at(6);
    const nameBytes = at(7);
    const nStrings = nA + nS + nW + nE;
    let p = pos + align8(4 * (8 + nStrings));
    const exportCrcs = new Float64Array(ab, p, nE);
    p += 8 * nE;
    const importCrcs = new Float64Array(ab, p, nI);
    p += 8 * nI;
    const importKeys = new Int32Array(ab, p, nI);
    p += 4 * nI;
    const importLengths = new Uint32Array(ab, p, nI);
    p += 4 * nI;
    const importWeak = new Uint8Array(ab, p, nI);
    p += nI;
    let s = p;
    const strings = (first: number, n: number): string[] => {
      const list: string[] = new Array(n);
      for (let k = 0; k < n; k++) {
        const len = at(8 + first + k);
        list[k] = b.toString('latin1', s, s + len);
        s += len;
      }
      return list;
    };
    const scan: ModuleScan = {
      aliases: strings(0, nA),
      softdeps: strings(nA, nS),
      weakdeps: strings(nA + nS, nW),
      exports: strings(nA + nS + nW, nE),
      exportCrcs,
      importNames: new Uint8Array(ab, p + stringBytes, nameBytes),
      importLengths,
      importCrcs,
      importWeak,
      importKeys,
    };
    if (errno !== 0) scan.symbolsErrno = errno - 1;
    out.push(scan);
    pos += align8(p + stringBytes + nameBytes - pos);
  }
  return out;
}
