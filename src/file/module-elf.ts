// What the module tools read from a module's ELF image: .modinfo, __versions, exported and undefined
// symbols with their CRCs, the module name in .gnu.linkonce.this_module, the kernel symbol tables.
// The rules (which sections, which entries are skipped, which failures are errors) are libkmod-elf.c's,
// so that depmod, modinfo and modprobe --show-* see exactly what kmod sees. The symbol-table rules are
// written down once in docs/symbol-rules.md and pinned by test/file/symbol-rules.corpus.ts, which this
// file, depmod's scan (src/depmod/module-scan.ts) and native/module_symbols.c must all pass.
import { FormatError, KmodError } from '../errors';
import { Elf, EM_SPARC, EM_SPARCV9, SHN_ABS, SHN_UNDEF, STB_GLOBAL, STB_LOCAL, STB_WEAK, type ElfSymbol } from './elf';
import { ENODATA } from '../errno';

/** kmod's symbol binding classes (KMOD_SYMBOL_*) */
export type SymbolBind = 'none' | 'local' | 'global' | 'weak' | 'undef';

export interface ModuleSymbol {
  symbol: string;
  crc: bigint;
  bind: SymbolBind;
}

function noData(elf: Elf, what: string): KmodError {
  return new KmodError(ENODATA, `${elf.file}: no ${what} section`, { file: elf.file });
}

/** Skips leading NULs of a string section as libkmod does (keeping at least one byte). */
function skipPadding(elf: Elf, off: number, size: number): { off: number; size: number } {
  while (size > 1 && elf.data[off] === 0) {
    off++;
    size--;
  }
  // (an object, not a pair to destructure: unoptimized, those allocate iterators (decisions.md))
  return { off, size };
}

/**
 * The strings of .modinfo in order (kmod_elf_get_modinfo_strings): NUL-separated, runs of NULs skipped,
 * a last string without NUL kept. No .modinfo section: KmodError ENODATA.
 */
export function modinfoStrings(elf: Elf): string[] {
  const sec = elf.findSection('.modinfo');
  if (!sec) throw noData(elf, '.modinfo');
  const { off, size } = skipPadding(elf, sec.offset, sec.size);
  if (size <= 1) return [];
  // one string for the section, cut at its NULs: a conversion per entry costs more than the cutting
  const text = elf.data.toString('latin1', off, off + size);
  const out: string[] = [];
  let i = 0;
  while (i < size) {
    let end = text.indexOf('\0', i);
    if (end < 0) end = size;
    out.push(text.slice(i, end));
    i = end;
    while (i < size && text.charCodeAt(i) === 0) i++;
  }
  return out;
}

/** .modinfo as key/value pairs, split at the first '=' (no '=': the whole string is the key, value empty). */
export function modinfoPairs(elf: Elf): [string, string][] {
  return modinfoStrings(elf).map((s) => {
    const eq = s.indexOf('=');
    return eq < 0 ? [s, ''] : [s.slice(0, eq), s.slice(eq + 1)];
  });
}

/** modversion entry layout: {u64 crc; char name[56]} in ELF64, {u32 crc; char name[60]} in ELF32 */
function versionLayout(elf: Elf): { verlen: number; crclen: number; namlen: number } {
  return elf.is64 ? { verlen: 64, crclen: 8, namlen: 56 } : { verlen: 64, crclen: 4, namlen: 60 };
}

/**
 * The __versions entries in section order (kmod_elf_get_modversions), a leading '.' stripped (PPC64).
 * No section: ENODATA; size not a multiple of 64 or an unterminated name: FormatError (EINVAL).
 */
export function modversions(elf: Elf): ModuleSymbol[] {
  const sec = elf.findSection('__versions');
  if (!sec) throw noData(elf, '__versions');
  const { verlen, crclen, namlen } = versionLayout(elf);
  if (sec.size === 0) return [];
  if (sec.size % verlen !== 0) throw new FormatError(elf.file, `__versions size ${sec.size} is not a multiple of ${verlen}`);
  const out: ModuleSymbol[] = [];
  for (let off = sec.offset; off < sec.offset + sec.size; off += verlen) {
    const crc = elf.uint(off, crclen);
    const nlen = elf.strnlen(off + crclen, namlen);
    if (nlen === namlen) throw new FormatError(elf.file, `__versions entry ${(off - sec.offset) / verlen} has an unterminated name`);
    let symbol = elf.data.toString('latin1', off + crclen, off + crclen + nlen);
    if (symbol.startsWith('.')) symbol = symbol.slice(1);
    out.push({ symbol, crc, bind: 'undef' });
  }
  return out;
}

function bindFromElf(b: number): SymbolBind {
  switch (b) {
    case STB_LOCAL: return 'local';
    case STB_GLOBAL: return 'global';
    case STB_WEAK: return 'weak';
    default: return 'none';
  }
}

interface SymtabView {
  symOff: number;
  symCount: number;
  symlen: number;
  strOff: number;
  strSize: number;
}

/** .symtab/.strtab found by name as libkmod does; undefined when absent or the size is not whole entries */
function symtabView(elf: Elf): SymtabView | 'nostr' | 'nosym' | 'badsize' {
  const str = elf.findSection('.strtab');
  if (!str) return 'nostr';
  const sym = elf.findSection('.symtab');
  if (!sym) return 'nosym';
  const symlen = elf.symbolSize;
  if (sym.size % symlen !== 0) return 'badsize';
  return { symOff: sym.offset, symCount: sym.size / symlen, symlen, strOff: str.offset, strSize: str.size };
}

/** Reads the symbol fields libkmod reads; the name as a C string from .strtab (not limited to it, as kmod). */
function rawSymbol(elf: Elf, v: SymtabView, i: number): { nameOffset: number; value: bigint; info: number; shndx: number } {
  const off = v.symOff + i * v.symlen;
  if (elf.is64) return { nameOffset: elf.u32(off), info: elf.u8(off + 4), shndx: elf.u16(off + 6), value: elf.u64(off + 8) };
  return { nameOffset: elf.u32(off), value: BigInt(elf.u32(off + 4)), info: elf.u8(off + 12), shndx: elf.u16(off + 14) };
}

/** CRC of a __crc_ symbol: its value, or the u32 at that offset inside its section (kmod_elf_resolve_crc). */
function resolveCrc(elf: Elf, crc: bigint, shndx: number): bigint {
  if (shndx === SHN_ABS || shndx === SHN_UNDEF) return crc;
  const sec = elf.section(shndx);
  if (!sec) return 0xffffffffffffffffn;
  if (sec.size < 4 || crc > BigInt(sec.size - 4)) return 0xffffffffffffffffn;
  return BigInt(elf.u32(sec.offset + Number(crc)));
}

/** The strings of __ksymtab_strings as exports with CRC 0 (kmod_elf_get_symbols_symtab). */
function ksymtabStrings(elf: Elf): ModuleSymbol[] {
  const sec = elf.findSection('__ksymtab_strings');
  if (!sec) throw noData(elf, '__ksymtab_strings');
  const { off, size } = skipPadding(elf, sec.offset, sec.size);
  if (size <= 1) return [];
  if (elf.data[off + size - 1] !== 0) throw new FormatError(elf.file, '__ksymtab_strings does not end with a NUL byte');
  const out: ModuleSymbol[] = [];
  let last = 0;
  for (let i = 0; i < size; i++) {
    if (elf.data[off + i] !== 0) continue;
    if (last !== i) out.push({ symbol: elf.data.toString('latin1', off + last, off + i), crc: 0n, bind: 'global' });
    last = i + 1;
  }
  return out;
}

/**
 * Exported symbols with CRCs (kmod_elf_get_symbols): the `__crc_<sym>` symbols of .symtab in order, or,
 * when there are none (or .symtab is unusable), the names in __ksymtab_strings with CRC 0.
 */
export function exportedSymbols(elf: Elf): ModuleSymbol[] {
  const v = symtabView(elf);
  if (typeof v === 'string') return ksymtabStrings(elf);
  const found: { i: number; name: string }[] = [];
  for (let i = 1; i < v.symCount; i++) {
    const s = rawSymbol(elf, v, i);
    if (s.nameOffset >= v.strSize) return ksymtabStrings(elf);
    const name = elf.cstring(v.strOff + s.nameOffset);
    if (name.startsWith('__crc_')) found.push({ i, name: name.slice(6) });
  }
  if (found.length === 0) return ksymtabStrings(elf);
  return found.map(({ i, name }) => {
    const s = rawSymbol(elf, v, i);
    return { symbol: name, crc: resolveCrc(elf, s.value, s.shndx), bind: bindFromElf(s.info >> 4) };
  });
}

/**
 * Symbols the module needs (kmod_elf_get_dependency_symbols): every undefined, named .symtab entry in order
 * (bind weak or undef; CRC from the matching __versions entry, else 0), then the __versions entries no
 * symbol matched (module_layout), in section order. Missing .symtab/.strtab: FormatError (EINVAL).
 */
export function dependencySymbols(elf: Elf): ModuleSymbol[] {
  const { verlen, crclen, namlen } = versionLayout(elf);
  let ver = elf.findSection('__versions');
  if (ver && ver.size % verlen !== 0) ver = undefined;
  const v = symtabView(elf);
  if (v === 'nostr') throw new FormatError(elf.file, 'no .strtab section');
  if (v === 'nosym') throw new FormatError(elf.file, 'no .symtab section');
  if (v === 'badsize') throw new FormatError(elf.file, `.symtab size is not a multiple of ${elf.symbolSize}`);
  // __versions names, or undefined for unterminated ones (never matched, as in kmod_elf_crc_find)
  const verNames: (string | undefined)[] = [];
  const verCrcs: bigint[] = [];
  if (ver) {
    for (let off = ver.offset; off < ver.offset + ver.size; off += verlen) {
      const nlen = elf.strnlen(off + crclen, namlen);
      verNames.push(nlen === namlen ? undefined : elf.data.toString('latin1', off + crclen, off + crclen + nlen));
      verCrcs.push(elf.uint(off, crclen));
    }
  }
  const verIndex = new Map<string, number>();
  verNames.forEach((n, i) => {
    if (n !== undefined && !verIndex.has(n)) verIndex.set(n, i);
  });
  const visited = new Uint8Array(verNames.length);
  const sparc = elf.machine === EM_SPARC || elf.machine === EM_SPARCV9;
  const out: ModuleSymbol[] = [];
  for (let i = 1; i < v.symCount; i++) {
    const s = rawSymbol(elf, v, i);
    if (s.shndx !== SHN_UNDEF) continue;
    if (sparc && (s.info & 0xf) === 13 /* STT_REGISTER */) continue;
    if (s.nameOffset >= v.strSize) throw new FormatError(elf.file, `.symtab entry ${i} has a name offset outside .strtab`);
    const name = elf.cstring(v.strOff + s.nameOffset);
    if (name === '') continue;
    const idx = verIndex.get(name);
    let crc = 0n;
    if (idx !== undefined) {
      visited[idx] = 1;
      crc = verCrcs[idx];
    }
    out.push({ symbol: name, crc, bind: s.info >> 4 === STB_WEAK ? 'weak' : 'undef' });
  }
  for (let i = 0; i < verNames.length; i++) {
    if (visited[i]) continue;
    const n = verNames[i];
    if (n === undefined) throw new FormatError(elf.file, `__versions entry ${i} has an unterminated name`);
    out.push({ symbol: n, crc: verCrcs[i], bind: 'undef' });
  }
  return out;
}

/**
 * The module name stored in .gnu.linkonce.this_module (struct module's name field: offset 24 with
 * MODULE_NAME_LEN 56 on 64-bit, offset 12 with 60 on 32-bit); undefined without that section.
 */
export function thisModuleName(elf: Elf): string | undefined {
  const sec = elf.findSection('.gnu.linkonce.this_module');
  if (!sec) return undefined;
  const [off, len] = elf.is64 ? [24, 56] : [12, 60];
  if (sec.size < off + len) throw new FormatError(elf.file, `.gnu.linkonce.this_module is too small (${sec.size} bytes) to hold a module name`);
  const n = elf.strnlen(sec.offset + off, len);
  return elf.data.toString('latin1', sec.offset + off, sec.offset + off + n);
}

/** The .symtab symbols (entry 0 included) — for tools that need every field (the simulated kernel). */
export function symbolTable(elf: Elf): ElfSymbol[] {
  return elf.symbols();
}

/** An EXPORT_SYMBOL entry of the module's own __ksymtab / __ksymtab_gpl tables. */
export interface KernelSymbolExport {
  symbol: string;
  /** from __ksymtab_gpl */
  gpl: boolean;
  /** EXPORT_SYMBOL_NS namespace, '' for none */
  namespace: string;
  /** the matching __kcrctab / __kcrctab_gpl entry, when the module has CRCs */
  crc?: bigint;
}

/**
 * The kernel symbol tables a loaded module contributes: entries of __ksymtab and __ksymtab_gpl in order,
 * with names and namespaces resolved through the tables' relocations (each field points at symbol +
 * addend, for PREL32 12-byte entries and absolute-pointer entries alike), and the CRC from
 * __kcrctab/__kcrctab_gpl at the same index.
 */
export function kernelSymbolExports(elf: Elf): KernelSymbolExport[] {
  const out: KernelSymbolExport[] = [];
  const relocs = elf.relocations();
  let symbols: ElfSymbol[] | undefined;
  for (const [tab, crcTab, gpl] of [['__ksymtab', '__kcrctab', false], ['__ksymtab_gpl', '__kcrctab_gpl', true]] as const) {
    const sec = elf.findSection(tab);
    if (!sec || sec.size === 0) continue;
    const relocsHere = relocs.filter((r) => r.target === sec.index).flatMap((r) => r.entries);
    // PREL32 tables (x86_64 and most 64-bit arches) have 4-byte fields; others hold pointers
    const fieldSize = !elf.is64 || relocsHere.some((e) => e.offset % 8n !== 0n) ? 4 : 8;
    const entsize = 3 * fieldSize;
    if (sec.size % entsize !== 0) throw new FormatError(elf.file, `${tab} size ${sec.size} is not a multiple of ${entsize}`);
    // field offset within the section -> symbol + addend (REL: the addend is the stored value)
    const byOffset = new Map<number, { symbol: number; addend: bigint }>();
    for (const e of relocsHere) {
      const at = sec.offset + Number(e.offset);
      const addend = e.addend ?? (fieldSize === 8 ? elf.i64(at) : BigInt(elf.i32(at)));
      byOffset.set(Number(e.offset), { symbol: e.symbol, addend });
    }
    symbols ??= elf.symbols();
    const target = (fieldOff: number, what: string): { section: number; offset: number } => {
      const r = byOffset.get(fieldOff);
      if (!r) throw new FormatError(elf.file, `${tab} entry at ${fieldOff} has no relocation for its ${what}`);
      const s = symbols![r.symbol];
      if (!s) throw new FormatError(elf.file, `${tab} relocation refers to symbol ${r.symbol}, out of range`);
      return { section: s.shndx, offset: Number(s.value + r.addend) };
    };
    const stringAt = (t: { section: number; offset: number }, what: string): string => {
      const s = elf.section(t.section);
      if (!s || t.offset < 0 || t.offset >= s.size) throw new FormatError(elf.file, `${tab} ${what} points outside its section`);
      return elf.cstring(s.offset + t.offset, s.offset + s.size);
    };
    const crcSec = elf.findSection(crcTab);
    const count = sec.size / entsize;
    for (let i = 0; i < count; i++) {
      const base = i * entsize;
      const symbol = stringAt(target(base + fieldSize, 'name'), 'name');
      const namespace = byOffset.has(base + 2 * fieldSize) ? stringAt(target(base + 2 * fieldSize, 'namespace'), 'namespace') : '';
      let crc: bigint | undefined;
      if (crcSec && crcSec.size >= (i + 1) * 4) crc = BigInt(elf.u32(crcSec.offset + i * 4));
      out.push({ symbol, gpl, namespace, crc });
    }
  }
  return out;
}
