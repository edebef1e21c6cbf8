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
  exportCrcs: number[];
  /** imported symbol names joined by '\0' (kmod_module_get_dependency_symbols order); null: none readable */
  imports: string | null;
  importCrcs: number[];
  /** 1 where the import is a weak reference */
  importWeak: number[];
  /** errno when kmod_module_get_symbols fails (other than ENODATA), for "failed to load symbols" */
  symbolsErrno?: number;
}

const CRC_PREFIX = [0x5f, 0x5f, 0x63, 0x72, 0x63, 0x5f]; // "__crc_"
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
  symValue(sym: number): number {
    return this.is64 ? this.u64(sym + 8) : this.u32(sym + 4);
  }
}

function section(elf: Elf, name: string): Tab | undefined {
  const s = elf.findSection(name);
  return s === undefined ? undefined : { off: s.offset, size: s.size };
}

function splitStrings(d: Buffer, off: number, size: number): string[] {
  const out: string[] = [];
  let start = off;
  const end = off + size;
  for (let i = off; i <= end; i++) {
    if (i === end || d[i] === 0) {
      if (i > start) out.push(d.toString('latin1', start, i));
      start = i + 1;
    }
  }
  return out;
}

function modinfo(elf: Elf, d: Buffer, scan: ModuleScan): void {
  const s = section(elf, '.modinfo');
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

function isCrcName(d: Buffer, o: number): boolean {
  for (let k = 0; k < 6; k++) if (d[o + k] !== CRC_PREFIX[k]) return false;
  return true;
}

function resolveCrc(r: Reader, crc: number, shndx: number): number {
  if (shndx === SHN_ABS || shndx === SHN_UNDEF) return crc;
  const s = r.elf.section(shndx);
  if (s === undefined) return U64_MAX;
  if (s.size < 4 || crc > s.size - 4) return U64_MAX;
  return r.u32(s.offset + crc);
}

/** kmod_elf_get_symbols: __crc_* symbols, else the strings of __ksymtab_strings (CRC 0). */
function exportsOf(r: Reader, scan: ModuleScan): void {
  const d = r.d;
  const str = section(r.elf, '.strtab');
  const sym = section(r.elf, '.symtab');
  let useSymtab = str !== undefined && sym !== undefined && str.off !== 0 && sym.off !== 0 && sym.size % r.symlen === 0;
  const names: string[] = [];
  if (useSymtab) {
    const count = sym!.size / r.symlen;
    let found = 0;
    for (let i = 1, o = sym!.off + r.symlen; i < count; i++, o += r.symlen) {
      const no = r.symName(o);
      if (no >= str!.size) {
        useSymtab = false;
        break;
      }
      if (isCrcName(d, str!.off + no)) found++;
    }
    if (useSymtab && found > 0) {
      for (let i = 1, o = sym!.off + r.symlen; i < count; i++, o += r.symlen) {
        const no = str!.off + r.symName(o);
        if (!isCrcName(d, no)) continue;
        names.push(r.cstr(no + 6));
        scan.exportCrcs.push(resolveCrc(r, r.symValue(o), r.symShndx(o)));
      }
      scan.exports = names.join('\0');
      return;
    }
  }
  const ks = section(r.elf, '__ksymtab_strings');
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
  for (let i = 0; i < list.length; i++) scan.exportCrcs.push(0);
}

/** kmod_elf_get_dependency_symbols: undefined symbols (CRC from __versions), then unmatched __versions. */
function importsOf(r: Reader, scan: ModuleScan): void {
  const d = r.d;
  let ver = section(r.elf, '__versions');
  const verlen = 64;
  const crclen = r.is64 ? 8 : 4;
  const namlen = verlen - crclen;
  if (ver !== undefined && (ver.off === 0 || ver.size % verlen !== 0)) ver = undefined;
  const str = section(r.elf, '.strtab');
  const sym = section(r.elf, '.symtab');
  if (str === undefined || sym === undefined || str.off === 0 || sym.off === 0) return;
  if (sym.size % r.symlen !== 0) return;
  // first __versions entry of each name (kmod_elf_crc_find scans from the start)
  const vercount = ver === undefined ? 0 : ver.size / verlen;
  const verNames: (string | null)[] = new Array(vercount);
  const verIndex = new Map<string, number>();
  for (let i = 0; i < vercount; i++) {
    const no = ver!.off + i * verlen + crclen;
    const end = d.indexOf(0, no);
    if (end < 0 || end - no >= namlen) {
      verNames[i] = null;
      continue;
    }
    const name = d.toString('latin1', no, end);
    verNames[i] = name;
    if (!verIndex.has(name)) verIndex.set(name, i);
  }
  const visited = new Uint8Array(vercount);
  const sparc = r.elf.machine === EM_SPARC || r.elf.machine === EM_SPARCV9;
  const names: string[] = [];
  const crcs: number[] = [];
  const weak: number[] = [];
  const count = sym.size / r.symlen;
  for (let i = 1, o = sym.off + r.symlen; i < count; i++, o += r.symlen) {
    if (r.symShndx(o) !== SHN_UNDEF) continue;
    const info = r.symInfo(o);
    if (sparc && (info & 0xf) === STT_REGISTER) continue;
    const no = r.symName(o);
    if (no >= str.size) return; // -EINVAL: no dependency symbols at all
    if (d[str.off + no] === 0) continue;
    const name = r.cstr(str.off + no);
    const vi = verIndex.get(name);
    let crc = 0;
    if (vi !== undefined) {
      visited[vi] = 1;
      crc = r.is64 ? r.u64(ver!.off + vi * verlen) : r.u32(ver!.off + vi * verlen);
    }
    names.push(name);
    crcs.push(crc);
    weak.push(info >> 4 === STB_WEAK ? 1 : 0);
  }
  for (let i = 0; i < vercount; i++) {
    if (visited[i]) continue;
    if (verNames[i] === null) return; // name without NUL in its slot: -EINVAL
  }
  for (let i = 0; i < vercount; i++) {
    if (visited[i]) continue;
    names.push(verNames[i]!);
    crcs.push(r.is64 ? r.u64(ver!.off + i * verlen) : r.u32(ver!.off + i * verlen));
    weak.push(0);
  }
  if (names.length === 0) return;
  scan.imports = names.join('\0');
  scan.importCrcs = crcs;
  scan.importWeak = weak;
}

/** Extracts depmod's inputs from a decompressed module image. Throws KmodError for an unusable ELF. */
export function scanModuleImage(data: Buffer, file: string): ModuleScan {
  const scan: ModuleScan = { aliases: [], softdeps: [], weakdeps: [], exports: '', exportCrcs: [], imports: null, importCrcs: [], importWeak: [] };
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
  const r = new Reader(elf, data);
  exportsOf(r, scan);
  modinfo(elf, data, scan);
  importsOf(r, scan);
  return scan;
}

/** An empty scan for a file that could not be read at all (errno for the "failed to load symbols" error). */
export function failedScan(errno: number): ModuleScan {
  return { aliases: [], softdeps: [], weakdeps: [], exports: '', exportCrcs: [], imports: null, importCrcs: [], importWeak: [], symbolsErrno: errno };
}
