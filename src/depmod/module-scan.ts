// What depmod needs from one module image, extracted the way libkmod does it (libkmod-elf.c:
// kmod_elf_get_symbols, kmod_elf_get_dependency_symbols, kmod_elf_get_modinfo_strings), on top of the
// shared ELF header/section parser. The symbol tables are walked with direct reads instead of building
// a symbol object per entry: depmod reads every symbol of thousands of modules.
import { Elf, EM_SPARC, EM_SPARCV9, SHN_ABS, SHN_UNDEF, STB_WEAK } from '../file/elf';
import { ENODATA, EINVAL } from '../errno';
import { KmodError } from '../errors';

/** The result for one module, flattened for cheap transfer between threads. */
export interface ModuleScan {
  /** modinfo values of alias=, softdep=, weakdep= (each list in .modinfo order) */
  aliases: string[];
  softdeps: string[];
  weakdeps: string[];
  /** exported symbol names joined by '\0' (kmod_module_get_symbols order) */
  exports: string;
  /** their CRCs (typed arrays: one allocation, and copied as a block between threads) */
  exportCrcs: Float64Array;
  /** imported symbol names joined by '\0' (kmod_module_get_dependency_symbols order); null: none readable */
  imports: string | null;
  importCrcs: Float64Array;
  /** 1 where the import is a weak reference */
  importWeak: Uint8Array;
  /** errno when kmod_module_get_symbols fails (other than ENODATA), for "failed to load symbols" */
  symbolsErrno?: number;
}

const NO_CRCS = new Float64Array(0);
const NO_FLAGS = new Uint8Array(0);

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
  /** C string at o (to the first NUL of the image) */
  cstr(o: number): string {
    const end = this.d.indexOf(0, o);
    return this.d.toString('latin1', o, end < 0 ? this.d.length : end);
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

function splitStrings(d: Buffer, off: number, size: number): string[] {
  const out: string[] = [];
  let start = off;
  const end = off + size;
  while (start < end) {
    let nul = d.indexOf(0, start);
    if (nul < 0 || nul > end) nul = end;
    if (nul > start) out.push(d.toString('latin1', start, nul));
    start = nul + 1;
  }
  return out;
}

function modinfo(s: Tab | undefined, d: Buffer, scan: ModuleScan): void {
  if (s === undefined || s.off === 0) return;
  for (const str of splitStrings(d, s.off, s.size)) {
    const eq = str.indexOf('=');
    const key = eq < 0 ? str : str.slice(0, eq);
    const value = eq < 0 ? '' : str.slice(eq + 1);
    if (key === 'alias') scan.aliases.push(value);
    else if (key === 'softdep') scan.softdeps.push(value);
    else if (key === 'weakdep') scan.weakdeps.push(value);
  }
}

/** the name at o starts with "__crc_" (unrolled: it is asked of every symbol of every module) */
function isCrcName(d: Buffer, o: number): boolean {
  return d[o] === 0x5f && d[o + 1] === 0x5f && d[o + 2] === 0x63 && d[o + 3] === 0x72 && d[o + 4] === 0x63 && d[o + 5] === 0x5f;
}

/** a number from a name's length and its first two and last three bytes (end > start) */
function nameKey(d: Buffer, start: number, end: number): number {
  const len = end - start;
  let k = (len * 0x01000193) ^ (d[start] << 8) ^ d[start + (len > 1 ? 1 : 0)];
  k = Math.imul(k, 0x01000193) ^ (d[end - 1] << 16) ^ (d[end - (len > 1 ? 2 : 1)] << 8) ^ d[end - (len > 2 ? 3 : 1)];
  return k | 0;
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
  const s = r.elf.section(shndx);
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
function symbolsOf(r: Reader, w: Wanted, scan: ModuleScan): void {
  const d = r.d;
  const { str, sym } = w;
  const tableOk = str !== undefined && sym !== undefined && str.off !== 0 && sym.off !== 0 && sym.size % r.symlen === 0;

  // __versions: the first entry of each name (kmod_elf_crc_find scans from the start). Entries are
  // found by a number made from their bytes, then compared byte by byte: no string per entry (a
  // module has hundreds; only those no symbol uses become strings, at the end).
  let ver = w.versions;
  const verlen = 64;
  const crclen = r.is64 ? 8 : 4;
  const namlen = verlen - crclen;
  if (ver !== undefined && (ver.off === 0 || ver.size % verlen !== 0)) ver = undefined;
  const vercount = ver === undefined || !tableOk ? 0 : ver.size / verlen;
  /** name length of each entry; -1 when the slot holds no NUL */
  const verLen = new Int32Array(vercount);
  const verFirst = new Map<number, number>();
  /** next entry with the same key, in ascending order; -1 ends the chain */
  const verNext = new Int32Array(vercount).fill(-1);
  for (let i = 0; i < vercount; i++) {
    const no = ver!.off + i * verlen + crclen;
    const end = d.indexOf(0, no);
    if (end < 0 || end - no >= namlen) {
      verLen[i] = -1;
      continue;
    }
    verLen[i] = end - no;
    const key = nameKey(d, no, end);
    const first = verFirst.get(key);
    if (first === undefined) verFirst.set(key, i);
    else {
      let j = first;
      while (verNext[j] >= 0) j = verNext[j];
      verNext[j] = i;
    }
  }
  /** the first __versions entry named like the string at start..end, or -1 */
  const findVersion = (start: number, end: number): number => {
    const len = end - start;
    for (let i = verFirst.get(nameKey(d, start, end)) ?? -1; i >= 0; i = verNext[i]) {
      if (verLen[i] !== len) continue;
      const vo = ver!.off + i * verlen + crclen;
      let k = 0;
      while (k < len && d[vo + k] === d[start + k]) k++;
      if (k === len) return i;
    }
    return -1;
  };

  let exportsFromTable = tableOk;
  const crcSyms: number[] = [];
  let importsOk = tableOk;
  const names: string[] = [];
  const crcs: number[] = [];
  const weak: number[] = [];
  const visited = new Uint8Array(vercount);
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
      let end = d.indexOf(0, start);
      if (end < 0) end = d.length;
      const name = d.toString('latin1', start, end);
      const vi = vercount > 0 ? findVersion(start, end) : -1;
      let crc = 0;
      if (vi >= 0) {
        visited[vi] = 1;
        crc = r.word(ver!.off + vi * verlen);
      }
      names.push(name);
      crcs.push(crc);
      weak.push(info >> 4 === STB_WEAK ? 1 : 0);
    }
  }

  // exports
  if (exportsFromTable && crcSyms.length > 0) {
    const exportNames: string[] = [];
    const exportCrcs = new Float64Array(crcSyms.length);
    for (let k = 0; k < crcSyms.length; k++) {
      const o = crcSyms[k];
      exportNames.push(r.cstr(str!.off + r.symName(o) + 6));
      exportCrcs[k] = resolveCrc(r, r.symValue(o), r.symShndx(o));
    }
    scan.exports = exportNames.join('\0');
    scan.exportCrcs = exportCrcs;
  } else {
    exportsFromStrings(d, w.ksymtabStrings, scan);
  }

  // imports
  if (!importsOk) return;
  for (let i = 0; i < vercount; i++) {
    if (visited[i]) continue;
    if (verLen[i] < 0) return; // name without NUL in its slot: -EINVAL
  }
  for (let i = 0; i < vercount; i++) {
    if (visited[i]) continue;
    const no = ver!.off + i * verlen + crclen;
    names.push(d.toString('latin1', no, no + verLen[i]));
    crcs.push(r.word(ver!.off + i * verlen));
    weak.push(0);
  }
  if (names.length === 0) return;
  scan.imports = names.join('\0');
  scan.importCrcs = new Float64Array(crcs);
  scan.importWeak = new Uint8Array(weak);
}

/** kmod_elf_get_symbols without __crc_ symbols: the strings of __ksymtab_strings, CRC 0. */
function exportsFromStrings(d: Buffer, ks: Tab | undefined, scan: ModuleScan): void {
  if (ks === undefined || ks.off === 0) {
    scan.symbolsErrno = ENODATA;
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
    scan.symbolsErrno = EINVAL;
    return;
  }
  const list = splitStrings(d, off, size);
  scan.exports = list.join('\0');
  scan.exportCrcs = new Float64Array(list.length);
}

/** Extracts depmod's inputs from a decompressed module image. Throws KmodError for an unusable ELF. */
export function scanModuleImage(data: Buffer, file: string): ModuleScan {
  const scan = emptyScan();
  let elf: Elf;
  try {
    elf = new Elf(data, file);
  } catch (err) {
    if (err instanceof KmodError) {
      scan.symbolsErrno = err.errno;
      return scan;
    }
    throw err;
  }
  const w = wantedSections(elf);
  modinfo(w.modinfo, data, scan);
  symbolsOf(new Reader(elf, data), w, scan);
  return scan;
}

function emptyScan(): ModuleScan {
  return { aliases: [], softdeps: [], weakdeps: [], exports: '', exportCrcs: NO_CRCS, imports: null, importCrcs: NO_CRCS, importWeak: NO_FLAGS };
}

/** An empty scan for a file that could not be read at all (errno for the "failed to load symbols" error). */
export function failedScan(errno: number): ModuleScan {
  const scan = emptyScan();
  scan.symbolsErrno = errno;
  return scan;
}
