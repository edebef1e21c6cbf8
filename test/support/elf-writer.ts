// A writer of small x86_64 kernel-module-shaped ELF relocatable objects, for fixtures and tampering tests.
//
// API (everything else in this file is internal):
//
//   buildModule(spec: ModuleSpec): Buffer
//     Returns the bytes of an ET_REL / EM_X86_64 / ELF64 little-endian object laid out like a module that
//     kbuild + modpost produce for Linux 6.12: .text/.init.text/.exit.text code that calls the imports,
//     .rodata, .data, __param (40-byte kernel_param entries), __ksymtab[_gpl] (12-byte PREL32 kernel_symbol
//     entries, sorted by name) with __kcrctab[_gpl] and __crc_<sym> symbols, __ksymtab_strings (name and
//     namespace strings), .modinfo, __versions (64-byte modversion_info entries, module_layout first),
//     .gnu.linkonce.this_module (struct module: name at 0x18, init/exit relocations), .symtab, .strtab,
//     .shstrtab and a RELA section for every section that has relocations.
//
//   interface ModuleSpec {
//     name: string;                     // struct module name and modinfo name= (use underscores)
//     vermagic: string;                 // modinfo vermagic= (x86_64 kernels end it with a space)
//     license?: string;                 // modinfo license=, default 'GPL'; null: no license entry
//     modinfo?: [key, value][];         // entries written first, in order (alias, softdep, author, import_ns, ...)
//     depends?: string;                 // modinfo depends= (modpost's list of module names), default ''
//     intree?: boolean;                 // modinfo intree=Y, default true
//     exports?: { name, crc, gpl?, namespace? }[];  // EXPORT_SYMBOL[_GPL][_NS]
//     imports?: { name, crc: number | null, weak? }[];  // undefined symbols; crc null: no __versions entry
//     params?: { name, type, description?, perm? }[];   // module_param; type: int, uint, long, ulong, short,
//                                       // ushort, byte, ullong, hexint, charp, bool, invbool, bint
//     paramOpsCrcs?: Record<string, number>;  // CRCs of the param_ops_<type> symbols the params import
//                                       // (needed when params are given and modversions is on)
//     moduleLayoutCrc?: number | null;  // __versions entry for module_layout; null: none. Default 0
//     modversions?: boolean;            // write __versions at all (default true)
//     init?: boolean; exit?: boolean;   // init_module / cleanup_module present (default true)
//     thisModule?: { size, initOffset, exitOffset };  // default 6.12: 0x500, 0x138, 0x4b0
//   }
//
// The output is deterministic (same spec, same bytes). It is a model, not a compiler: the code does nothing
// but call each import once, so every import is the target of a relocation as in a real module.
import * as zlib from 'node:zlib';

export interface ExportSpec {
  name: string;
  crc: number;
  gpl?: boolean;
  namespace?: string;
}

export interface ImportSpec {
  name: string;
  /** CRC written to __versions; null leaves the symbol without a version entry */
  crc: number | null;
  weak?: boolean;
}

export type ParamType =
  | 'int' | 'uint' | 'long' | 'ulong' | 'short' | 'ushort' | 'byte' | 'ullong' | 'hexint'
  | 'charp' | 'bool' | 'invbool' | 'bint';

export interface ParamSpec {
  name: string;
  type: ParamType;
  description?: string;
  /** sysfs permissions, default 0o444 */
  perm?: number;
}

export interface ModuleSpec {
  name: string;
  vermagic: string;
  license?: string | null;
  modinfo?: [string, string][];
  depends?: string;
  intree?: boolean;
  exports?: ExportSpec[];
  imports?: ImportSpec[];
  params?: ParamSpec[];
  paramOpsCrcs?: Record<string, number>;
  moduleLayoutCrc?: number | null;
  modversions?: boolean;
  init?: boolean;
  exit?: boolean;
  thisModule?: { size: number; initOffset: number; exitOffset: number };
}

/** A CRC for made-up symbols: stable, and different for different names. */
export function symbolCrc(name: string): number {
  return zlib.crc32(name) >>> 0;
}

// ELF constants
const SHT_PROGBITS = 1, SHT_SYMTAB = 2, SHT_STRTAB = 3, SHT_RELA = 4, SHT_NOBITS = 8;
const SHF_WRITE = 1, SHF_ALLOC = 2, SHF_EXECINSTR = 4, SHF_MERGE = 0x10, SHF_STRINGS = 0x20, SHF_INFO_LINK = 0x40;
const STB_LOCAL = 0, STB_GLOBAL = 1, STB_WEAK = 2;
const STT_NOTYPE = 0, STT_OBJECT = 1, STT_FUNC = 2, STT_SECTION = 3;
const R_X86_64_64 = 1, R_X86_64_PC32 = 2, R_X86_64_PLT32 = 4;
const SHN_UNDEF = 0;

interface Section {
  name: string;
  type: number;
  flags: number;
  data: Buffer;
  align: number;
  entsize?: number;
  /** NOBITS size */
  size?: number;
  link?: string;
  info?: string | number;
  relocs?: Reloc[];
}

interface Reloc {
  offset: number;
  symbol: string; // key in the symbol table
  type: number;
  addend: number;
}

interface Sym {
  key: string;
  name: string;
  bind: number;
  type: number;
  section: string | null; // null: SHN_UNDEF
  value: number;
  size: number;
}

/** Growing byte buffer with alignment. */
class Bytes {
  private parts: Buffer[] = [];
  length = 0;
  align(n: number): void {
    const pad = (n - (this.length % n)) % n;
    if (pad) this.push(Buffer.alloc(pad));
  }
  push(b: Buffer): number {
    const at = this.length;
    this.parts.push(b);
    this.length += b.length;
    return at;
  }
  cstr(s: string): number {
    return this.push(Buffer.from(s + '\0', 'latin1'));
  }
  u32(v: number): number {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v >>> 0);
    return this.push(b);
  }
  toBuffer(): Buffer {
    return Buffer.concat(this.parts, this.length);
  }
}

/** A string table that deduplicates. */
class StrTab {
  private b = new Bytes();
  private seen = new Map<string, number>();
  constructor() {
    this.b.cstr('');
    this.seen.set('', 0);
  }
  add(s: string): number {
    let at = this.seen.get(s);
    if (at === undefined) {
      at = this.b.cstr(s);
      this.seen.set(s, at);
    }
    return at;
  }
  toBuffer(): Buffer {
    return this.b.toBuffer();
  }
}

const paramOps: Record<ParamType, string> = {
  int: 'param_ops_int', uint: 'param_ops_uint', long: 'param_ops_long', ulong: 'param_ops_ulong',
  short: 'param_ops_short', ushort: 'param_ops_ushort', byte: 'param_ops_byte', ullong: 'param_ops_ullong',
  hexint: 'param_ops_hexint', charp: 'param_ops_charp', bool: 'param_ops_bool', invbool: 'param_ops_invbool',
  bint: 'param_ops_bint',
};

export function buildModule(spec: ModuleSpec): Buffer {
  if (spec.name.length >= 56) throw new Error(`module name too long: ${spec.name}`);
  const exports = [...(spec.exports ?? [])].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const imports = spec.imports ?? [];
  const params = spec.params ?? [];
  const hasInit = spec.init ?? true;
  const hasExit = spec.exit ?? true;
  const tm = spec.thisModule ?? { size: 0x500, initOffset: 0x138, exitOffset: 0x4b0 };
  const modversions = spec.modversions ?? true;

  const syms: Sym[] = [];
  const sections: Section[] = [];
  const sym = (s: Sym): void => {
    syms.push(s);
  };

  // --- code: each exported function is a stub; init_module calls every import once
  const ENDBR = Buffer.from([0xf3, 0x0f, 0x1e, 0xfa]);
  const RET0 = Buffer.from([0x31, 0xc0, 0xc3]); // xor eax,eax; ret
  const text = new Bytes();
  const textRel: Reloc[] = [];
  for (const e of exports) {
    text.align(16);
    const at = text.push(ENDBR);
    text.push(RET0);
    sym({ key: e.name, name: e.name, bind: STB_GLOBAL, type: STT_FUNC, section: '.text', value: at, size: text.length - at });
  }
  if (text.length === 0) text.push(Buffer.from([0xc3]));
  sections.push({ name: '.text', type: SHT_PROGBITS, flags: SHF_ALLOC | SHF_EXECINSTR, data: text.toBuffer(), align: 16, relocs: textRel });

  const initText = new Bytes();
  const initRel: Reloc[] = [];
  if (hasInit) {
    initText.push(ENDBR);
    for (const imp of imports) {
      const at = initText.push(Buffer.from([0xe8, 0, 0, 0, 0])); // call rel32
      initRel.push({ offset: at + 1, symbol: 'U:' + imp.name, type: R_X86_64_PLT32, addend: -4 });
    }
    initText.push(RET0);
    sections.push({ name: '.init.text', type: SHT_PROGBITS, flags: SHF_ALLOC | SHF_EXECINSTR, data: initText.toBuffer(), align: 16, relocs: initRel });
    sym({ key: 'init_module', name: 'init_module', bind: STB_GLOBAL, type: STT_FUNC, section: '.init.text', value: 0, size: initText.length });
  }
  if (hasExit) {
    const exitText = Buffer.concat([ENDBR, Buffer.from([0xc3])]);
    sections.push({ name: '.exit.text', type: SHT_PROGBITS, flags: SHF_ALLOC | SHF_EXECINSTR, data: exitText, align: 16 });
    sym({ key: 'cleanup_module', name: 'cleanup_module', bind: STB_GLOBAL, type: STT_FUNC, section: '.exit.text', value: 0, size: exitText.length });
  }

  // --- parameters: names in .rodata, storage in .data, kernel_param entries in __param
  if (params.length > 0) {
    const rodata = new Bytes();
    const data = new Bytes();
    const param = new Bytes();
    const paramRel: Reloc[] = [];
    for (const p of params) {
      const nameAt = rodata.cstr(p.name);
      data.align(8);
      const storeAt = data.push(Buffer.alloc(8));
      const entry = Buffer.alloc(40);
      entry.writeUInt16LE(p.perm ?? 0o444, 24); // perm
      entry.writeInt8(-1, 26); // level
      const at = param.push(entry);
      paramRel.push({ offset: at + 0, symbol: 'S:.rodata', type: R_X86_64_64, addend: nameAt });
      paramRel.push({ offset: at + 8, symbol: '__this_module', type: R_X86_64_64, addend: 0 });
      paramRel.push({ offset: at + 16, symbol: 'U:' + paramOps[p.type], type: R_X86_64_64, addend: 0 });
      paramRel.push({ offset: at + 32, symbol: 'S:.data', type: R_X86_64_64, addend: storeAt });
    }
    sections.push({ name: '.rodata', type: SHT_PROGBITS, flags: SHF_ALLOC, data: rodata.toBuffer(), align: 8 });
    sections.push({ name: '.data', type: SHT_PROGBITS, flags: SHF_ALLOC | SHF_WRITE, data: data.toBuffer(), align: 8 });
    sections.push({ name: '__param', type: SHT_PROGBITS, flags: SHF_ALLOC, data: param.toBuffer(), align: 8, relocs: paramRel });
  }

  // --- exports: __ksymtab_strings, __ksymtab[_gpl], __kcrctab[_gpl]
  if (exports.length > 0) {
    const strings = new Bytes();
    const strAt = new Map<string, [number, number]>();
    for (const e of exports) {
      const n = strings.cstr(e.name);
      const ns = strings.cstr(e.namespace ?? '');
      strAt.set(e.name, [n, ns]);
      sym({ key: '__kstrtab_' + e.name, name: '__kstrtab_' + e.name, bind: STB_LOCAL, type: STT_NOTYPE, section: '__ksymtab_strings', value: n, size: 0 });
      sym({ key: '__kstrtabns_' + e.name, name: '__kstrtabns_' + e.name, bind: STB_LOCAL, type: STT_NOTYPE, section: '__ksymtab_strings', value: ns, size: 0 });
    }
    for (const gpl of [false, true]) {
      const list = exports.filter((e) => !!e.gpl === gpl);
      if (list.length === 0) continue;
      const suffix = gpl ? '_gpl' : '';
      const ksymtab = new Bytes();
      const kcrctab = new Bytes();
      const rel: Reloc[] = [];
      for (const e of list) {
        const at = ksymtab.push(Buffer.alloc(12));
        rel.push({ offset: at, symbol: e.name, type: R_X86_64_PC32, addend: 0 });
        rel.push({ offset: at + 4, symbol: '__kstrtab_' + e.name, type: R_X86_64_PC32, addend: 0 });
        rel.push({ offset: at + 8, symbol: '__kstrtabns_' + e.name, type: R_X86_64_PC32, addend: 0 });
        sym({ key: '__ksymtab_' + e.name, name: '__ksymtab_' + e.name, bind: STB_LOCAL, type: STT_NOTYPE, section: '__ksymtab' + suffix, value: at, size: 0 });
        const c = kcrctab.u32(e.crc);
        sym({ key: '__crc_' + e.name, name: '__crc_' + e.name, bind: STB_LOCAL, type: STT_NOTYPE, section: '__kcrctab' + suffix, value: c, size: 0 });
      }
      sections.push({ name: '__ksymtab' + suffix, type: SHT_PROGBITS, flags: SHF_ALLOC, data: ksymtab.toBuffer(), align: 4, relocs: rel });
      sections.push({ name: '__kcrctab' + suffix, type: SHT_PROGBITS, flags: SHF_ALLOC, data: kcrctab.toBuffer(), align: 4 });
    }
    sections.push({ name: '__ksymtab_strings', type: SHT_PROGBITS, flags: SHF_ALLOC | SHF_MERGE | SHF_STRINGS, entsize: 1, data: strings.toBuffer(), align: 1 });
  }

  // --- .modinfo
  const modinfo = new Bytes();
  const info = (k: string, v: string): void => {
    modinfo.cstr(`${k}=${v}`);
  };
  const license = spec.license === undefined ? 'GPL' : spec.license;
  if (license !== null) info('license', license);
  for (const [k, v] of spec.modinfo ?? []) info(k, v);
  for (const p of params) {
    if (p.description !== undefined) info('parm', `${p.name}:${p.description}`);
    info('parmtype', `${p.name}:${p.type === 'hexint' ? 'hexint' : p.type}`);
  }
  info('depends', spec.depends ?? '');
  if (spec.intree ?? true) info('intree', 'Y');
  info('name', spec.name);
  info('retpoline', 'Y');
  info('vermagic', spec.vermagic);
  sections.push({ name: '.modinfo', type: SHT_PROGBITS, flags: SHF_ALLOC, data: modinfo.toBuffer(), align: 1 });

  // --- __versions: module_layout, then every import that has a CRC, then param ops
  const paramImports = [...new Set(params.map((p) => paramOps[p.type]))];
  if (modversions) {
    const versions = new Bytes();
    const entry = (name: string, crc: number): void => {
      if (name.length >= 56) throw new Error(`symbol name too long for __versions: ${name}`);
      const b = Buffer.alloc(64);
      b.writeUInt32LE(crc >>> 0, 0);
      b.write(name, 8, 'latin1');
      versions.push(b);
    };
    const layout = spec.moduleLayoutCrc === undefined ? 0 : spec.moduleLayoutCrc;
    if (layout !== null) entry('module_layout', layout);
    for (const imp of imports) if (imp.crc !== null) entry(imp.name, imp.crc);
    for (const op of paramImports) {
      if (imports.some((i) => i.name === op)) continue;
      const crc = spec.paramOpsCrcs?.[op];
      if (crc === undefined) throw new Error(`no CRC for ${op} (paramOpsCrcs)`);
      entry(op, crc);
    }
    sections.push({ name: '__versions', type: SHT_PROGBITS, flags: SHF_ALLOC, data: versions.toBuffer(), align: 32 });
  }

  // --- struct module
  const thisModule = Buffer.alloc(tm.size);
  thisModule.write(spec.name, 0x18, 'latin1');
  const tmRel: Reloc[] = [];
  if (hasInit) tmRel.push({ offset: tm.initOffset, symbol: 'init_module', type: R_X86_64_64, addend: 0 });
  if (hasExit) tmRel.push({ offset: tm.exitOffset, symbol: 'cleanup_module', type: R_X86_64_64, addend: 0 });
  sections.push({ name: '.gnu.linkonce.this_module', type: SHT_PROGBITS, flags: SHF_ALLOC | SHF_WRITE, data: thisModule, align: 64, relocs: tmRel });
  sym({ key: '__this_module', name: '__this_module', bind: STB_GLOBAL, type: STT_OBJECT, section: '.gnu.linkonce.this_module', value: 0, size: tm.size });
  sections.push({ name: '.bss', type: SHT_NOBITS, flags: SHF_ALLOC | SHF_WRITE, data: Buffer.alloc(0), size: 0, align: 8 });
  sections.push({ name: '.note.GNU-stack', type: SHT_PROGBITS, flags: 0, data: Buffer.alloc(0), align: 1 });

  // undefined symbols: imports, then param ops not already imported
  for (const imp of imports) {
    sym({ key: 'U:' + imp.name, name: imp.name, bind: imp.weak ? STB_WEAK : STB_GLOBAL, type: STT_NOTYPE, section: null, value: 0, size: 0 });
  }
  for (const op of paramImports) {
    if (imports.some((i) => i.name === op)) continue;
    sym({ key: 'U:' + op, name: op, bind: STB_GLOBAL, type: STT_NOTYPE, section: null, value: 0, size: 0 });
  }
  return link(sections, syms);
}

/** Lays out sections, RELA sections, the symbol table and the section headers. */
function link(sections: Section[], syms: Sym[]): Buffer {
  // final section list: each section followed by its RELA section, then .symtab .strtab .shstrtab
  const all: Section[] = [];
  for (const s of sections) {
    all.push(s);
    if (s.relocs && s.relocs.length > 0) {
      // '.rela.text', '.rela__param': the target's name appended, as binutils does
      all.push({ name: '.rela' + s.name, type: SHT_RELA, flags: SHF_INFO_LINK, data: Buffer.alloc(0), align: 8, entsize: 24, link: '.symtab', info: s.name, relocs: s.relocs });
    }
  }
  const index = new Map<string, number>();
  all.forEach((s, i) => index.set(s.name, i + 1));
  const symtabIdx = all.length + 1;
  const strtabIdx = all.length + 2;
  const shstrtabIdx = all.length + 3;

  // section symbols for sections referenced as 'S:<name>' by relocations
  const sectionSyms = new Set<string>();
  for (const s of all) for (const r of s.relocs ?? []) if (r.symbol.startsWith('S:')) sectionSyms.add(r.symbol.slice(2));
  const ordered: Sym[] = [];
  for (const s of all) {
    if (sectionSyms.has(s.name)) ordered.push({ key: 'S:' + s.name, name: '', bind: STB_LOCAL, type: STT_SECTION, section: s.name, value: 0, size: 0 });
  }
  ordered.push(...syms.filter((s) => s.bind === STB_LOCAL));
  const firstGlobal = ordered.length + 1;
  ordered.push(...syms.filter((s) => s.bind !== STB_LOCAL && s.section !== null));
  ordered.push(...syms.filter((s) => s.bind !== STB_LOCAL && s.section === null));
  const symIndex = new Map<string, number>();
  ordered.forEach((s, i) => symIndex.set(s.key, i + 1));

  const strtab = new StrTab();
  const symtab = Buffer.alloc(24 * (ordered.length + 1));
  ordered.forEach((s, i) => {
    const o = 24 * (i + 1);
    symtab.writeUInt32LE(s.name ? strtab.add(s.name) : 0, o);
    symtab.writeUInt8((s.bind << 4) | s.type, o + 4);
    symtab.writeUInt8(0, o + 5);
    const shndx = s.section === null ? SHN_UNDEF : index.get(s.section);
    if (shndx === undefined) throw new Error(`symbol ${s.name} in unknown section ${s.section}`);
    symtab.writeUInt16LE(shndx, o + 6);
    symtab.writeBigUInt64LE(BigInt(s.value), o + 8);
    symtab.writeBigUInt64LE(BigInt(s.size), o + 16);
  });

  for (const s of all) {
    if (s.type !== SHT_RELA) continue;
    const b = Buffer.alloc(24 * s.relocs!.length);
    s.relocs!.forEach((r, i) => {
      const si = symIndex.get(r.symbol);
      if (si === undefined) throw new Error(`relocation against unknown symbol ${r.symbol}`);
      b.writeBigUInt64LE(BigInt(r.offset), 24 * i);
      b.writeBigUInt64LE((BigInt(si) << 32n) | BigInt(r.type), 24 * i + 8);
      b.writeBigInt64LE(BigInt(r.addend), 24 * i + 16);
    });
    s.data = b;
  }

  all.push({ name: '.symtab', type: SHT_SYMTAB, flags: 0, data: symtab, align: 8, entsize: 24, link: '.strtab', info: firstGlobal });
  index.set('.symtab', symtabIdx);
  all.push({ name: '.strtab', type: SHT_STRTAB, flags: 0, data: strtab.toBuffer(), align: 1 });
  index.set('.strtab', strtabIdx);
  const shstr = new StrTab();
  const nameOff = all.map((s) => shstr.add(s.name));
  const shstrtabName = shstr.add('.shstrtab');
  all.push({ name: '.shstrtab', type: SHT_STRTAB, flags: 0, data: shstr.toBuffer(), align: 1 });
  nameOff.push(shstrtabName);

  const file = new Bytes();
  file.push(Buffer.alloc(64)); // ELF header, filled below
  const offsets: number[] = [];
  for (const s of all) {
    if (s.type === SHT_NOBITS) {
      offsets.push(file.length);
      continue;
    }
    file.align(s.align);
    offsets.push(file.push(s.data));
  }
  file.align(8);
  const shoff = file.length;
  const shdrs = Buffer.alloc(64 * (all.length + 1));
  all.forEach((s, i) => {
    const o = 64 * (i + 1);
    shdrs.writeUInt32LE(nameOff[i], o);
    shdrs.writeUInt32LE(s.type, o + 4);
    shdrs.writeBigUInt64LE(BigInt(s.flags), o + 8);
    shdrs.writeBigUInt64LE(0n, o + 16); // sh_addr
    shdrs.writeBigUInt64LE(BigInt(offsets[i]), o + 24);
    shdrs.writeBigUInt64LE(BigInt(s.type === SHT_NOBITS ? s.size ?? 0 : s.data.length), o + 32);
    shdrs.writeUInt32LE(s.link ? index.get(s.link)! : 0, o + 40);
    const info = typeof s.info === 'string' ? index.get(s.info)! : s.info ?? 0;
    shdrs.writeUInt32LE(info, o + 44);
    shdrs.writeBigUInt64LE(BigInt(s.align), o + 48);
    shdrs.writeBigUInt64LE(BigInt(s.entsize ?? 0), o + 56);
  });
  file.push(shdrs);
  const out = file.toBuffer();

  // ELF header
  out.write('\x7fELF', 0, 'latin1');
  out[4] = 2; // ELFCLASS64
  out[5] = 1; // little endian
  out[6] = 1; // EV_CURRENT
  out[7] = 0; // SYSV ABI
  out.writeUInt16LE(1, 16); // ET_REL
  out.writeUInt16LE(62, 18); // EM_X86_64
  out.writeUInt32LE(1, 20);
  out.writeBigUInt64LE(0n, 24); // e_entry
  out.writeBigUInt64LE(0n, 32); // e_phoff
  out.writeBigUInt64LE(BigInt(shoff), 40);
  out.writeUInt32LE(0, 48); // e_flags
  out.writeUInt16LE(64, 52); // e_ehsize
  out.writeUInt16LE(0, 54); // e_phentsize
  out.writeUInt16LE(0, 56); // e_phnum
  out.writeUInt16LE(64, 58); // e_shentsize
  out.writeUInt16LE(all.length + 1, 60);
  out.writeUInt16LE(shstrtabIdx, 62);
  return out;
}
