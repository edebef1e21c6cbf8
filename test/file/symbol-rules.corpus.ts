// The symbol-table rules of docs/symbol-rules.md as a table of cases: an image, and the exports and
// imports every implementation (src/file/module-elf.ts, src/depmod/module-scan.ts in JavaScript and
// native/module_symbols.c) must read from it. Each case names the rules it pins. Images are built with
// test/support/tiny-elf.ts on the four ELF kinds, and with test/support/elf-writer.ts for modules shaped
// like kbuild's.
import { buildModule, type ModuleSpec } from '../support/elf-writer';
import { buildTinyElf, strings, symtab, versions, type TinySymbol } from '../support/tiny-elf';

export interface ExpectedExport {
  symbol: string;
  crc: number;
}
export interface ExpectedImport {
  symbol: string;
  crc: number;
  weak: boolean;
}
/** what a read gives: the symbols, or the errno of a failed read */
export type Expected<T> = T[] | { errno: number };

export interface SymbolRuleCase {
  name: string;
  /** the rules of docs/symbol-rules.md this case pins */
  rules: string[];
  image: Buffer;
  exports: Expected<ExpectedExport>;
  imports: Expected<ExpectedImport>;
}

const ENODATA = 61;
const EINVAL = 22;
const SHN_ABS = 0xfff1;
const SHN_COMMON = 0xfff2;
const STB_LOCAL = 0;
const STB_GLOBAL = 1;
const STB_WEAK = 2;
const EM_SPARCV9 = 43;
const STT_REGISTER = 13;
/** 2^64 - 1, the CRC of a __crc_ symbol whose section cannot hold it */
const U64_MAX = 2 ** 64 - 1;

/** section indexes in every tiny image (a section left out is renamed, so that indexes never move) */
const CRC_DATA = 5;

interface TinyModule {
  syms?: TinySymbol[];
  /** __versions records, or raw bytes */
  versions?: { name: string; crc: number }[] | Buffer;
  ksymtabStrings?: Buffer;
  /** .rodata, where section-relative __crc_ values point */
  crcData?: Buffer;
  /** sections to leave out (by name) */
  omit?: string[];
  /** bytes cut from the end of .symtab */
  symtabCut?: number;
  /** a name offset to write into .symtab entry n (1-based, as in the table) */
  badName?: { entry: number; offset: number };
  machine?: number;
}

/** A module-shaped tiny ELF: .strtab, .symtab, __versions, __ksymtab_strings, .rodata (indexes 1..5). */
function tiny(is64: boolean, msb: boolean, m: TinyModule): Buffer {
  const st = symtab(is64, msb, m.syms ?? []);
  let symBytes = st.symtab;
  if (m.badName) {
    const o = m.badName.entry * (is64 ? 24 : 16);
    symBytes = Buffer.from(symBytes);
    if (msb) symBytes.writeUInt32BE(m.badName.offset, o);
    else symBytes.writeUInt32LE(m.badName.offset, o);
  }
  if (m.symtabCut) symBytes = symBytes.subarray(0, symBytes.length - m.symtabCut);
  const vers = Buffer.isBuffer(m.versions) ? m.versions : versions(is64, msb, m.versions ?? []);
  const sections = [
    { name: '.strtab', type: 3, data: st.strtab },
    { name: '.symtab', type: 2, data: symBytes, link: 1, entsize: is64 ? 24 : 16 },
    { name: '__versions', type: 1, data: vers },
    { name: '__ksymtab_strings', type: 1, data: m.ksymtabStrings ?? Buffer.alloc(0) },
    { name: '.rodata', type: 1, data: m.crcData ?? Buffer.alloc(8) },
  ].map((s) => (m.omit?.includes(s.name) ? { ...s, name: `.omitted${s.name}` } : s));
  return buildTinyElf({ is64, msb, machine: m.machine, sections }).image;
}

function u32s(msb: boolean, words: number[]): Buffer {
  const b = Buffer.alloc(4 * words.length);
  words.forEach((w, i) => (msb ? b.writeUInt32BE(w, 4 * i) : b.writeUInt32LE(w, 4 * i)));
  return b;
}

const KINDS = [
  [true, false, 'ELF64 LE'],
  [true, true, 'ELF64 BE'],
  [false, false, 'ELF32 LE'],
  [false, true, 'ELF32 BE'],
] as const;

/** The cases on one ELF kind. */
function tinyCases(is64: boolean, msb: boolean, kind: string): SymbolRuleCase[] {
  const c = (name: string, rules: string[], m: TinyModule, exports: Expected<ExpectedExport>, imports: Expected<ExpectedImport>): SymbolRuleCase => ({
    name: `${kind}: ${name}`,
    rules,
    image: tiny(is64, msb, m),
    exports,
    imports,
  });
  const crcSyms: TinySymbol[] = [
    { name: 'mod.c', type: 4, bind: STB_LOCAL, shndx: SHN_ABS },
    { name: '__crc_alpha', value: 0x11, shndx: SHN_ABS, bind: STB_GLOBAL },
    { name: '__crc_beta', value: 0x22, shndx: SHN_ABS, bind: STB_WEAK },
    { name: 'local_fn', shndx: CRC_DATA, bind: STB_LOCAL },
  ];
  const someImports: TinySymbol[] = [
    { name: 'printk', bind: STB_GLOBAL },
    { name: 'maybe_there', bind: STB_WEAK },
  ];
  const importsNoVersions: ExpectedImport[] = [
    { symbol: 'printk', crc: 0, weak: false },
    { symbol: 'maybe_there', crc: 0, weak: true },
  ];
  return [
    c('exports are the __crc_ symbols in table order, with their absolute values', ['E1', 'E2'], { syms: crcSyms }, [
      { symbol: 'alpha', crc: 0x11 },
      { symbol: 'beta', crc: 0x22 },
    ], []),
    c('a __crc_ symbol in a section: the word at st_value there, 2^64-1 when out of reach', ['E2'], {
      syms: [
        { name: '__crc_in_data', value: 4, shndx: CRC_DATA },
        { name: '__crc_last_word', value: 8, shndx: CRC_DATA },
        { name: '__crc_past_end', value: 9, shndx: CRC_DATA },
        { name: '__crc_no_section', value: 0, shndx: 77 },
        { name: '__crc_common', value: 0, shndx: SHN_COMMON },
        { name: '__crc_undef_value', value: 7, shndx: 0 },
      ],
      crcData: u32s(msb, [0xaaaaaaaa, 0xdeadbeef, 0x01020304]),
    }, [
      { symbol: 'in_data', crc: 0xdeadbeef },
      { symbol: 'last_word', crc: 0x01020304 },
      { symbol: 'past_end', crc: U64_MAX },
      { symbol: 'no_section', crc: U64_MAX },
      { symbol: 'common', crc: U64_MAX },
      { symbol: 'undef_value', crc: 7 },
    ], [{ symbol: '__crc_undef_value', crc: 0, weak: false }]),
    c('no __crc_ symbol: the strings of __ksymtab_strings, CRC 0, leading and repeated NULs skipped', ['E3', 'E4'], {
      syms: someImports,
      ksymtabStrings: Buffer.from('\0\0first\0\0second\0', 'latin1'),
    }, [
      { symbol: 'first', crc: 0 },
      { symbol: 'second', crc: 0 },
    ], importsNoVersions),
    c('no __crc_ symbol and no __ksymtab_strings: ENODATA', ['E4'], { syms: someImports, omit: ['__ksymtab_strings'] }, { errno: ENODATA }, importsNoVersions),
    c('__ksymtab_strings without a final NUL: EINVAL', ['E4'], { ksymtabStrings: Buffer.from('one\0two', 'latin1') }, { errno: EINVAL }, []),
    c('__ksymtab_strings of NULs only: no exports', ['E4'], { ksymtabStrings: Buffer.alloc(5) }, [], []),
    c('a one-byte __ksymtab_strings without NUL: no exports (nothing to check)', ['E4'], { ksymtabStrings: Buffer.from('x', 'latin1') }, [], []),
    c('a defined symbol with a name outside .strtab: exports from __ksymtab_strings, imports unaffected', ['E3', 'I1'], {
      syms: [...crcSyms, ...someImports],
      badName: { entry: 4, offset: 0xfff0 },
      ksymtabStrings: strings(['alpha', 'beta']),
    }, [
      { symbol: 'alpha', crc: 0 },
      { symbol: 'beta', crc: 0 },
    ], importsNoVersions),
    c('an undefined symbol with a name outside .strtab: no imports', ['E3', 'I5'], {
      syms: [...crcSyms, ...someImports],
      badName: { entry: 5, offset: 0xfff0 },
      ksymtabStrings: strings(['alpha']),
    }, [{ symbol: 'alpha', crc: 0 }], { errno: EINVAL }),
    c('.symtab not a whole number of entries: exports from __ksymtab_strings, no imports', ['E3', 'I5'], {
      syms: [...crcSyms, ...someImports],
      symtabCut: 3,
      ksymtabStrings: strings(['alpha']),
    }, [{ symbol: 'alpha', crc: 0 }], { errno: EINVAL }),
    c('no .symtab: exports from __ksymtab_strings, no imports', ['E3', 'I5'], { syms: crcSyms, omit: ['.symtab'], ksymtabStrings: strings(['alpha']) }, [{ symbol: 'alpha', crc: 0 }], { errno: EINVAL }),
    c('no .strtab: exports from __ksymtab_strings, no imports', ['E3', 'I5'], { syms: crcSyms, omit: ['.strtab'], ksymtabStrings: strings(['alpha']) }, [{ symbol: 'alpha', crc: 0 }], { errno: EINVAL }),
    c('imports: undefined named symbols in order, weak flags, CRCs from the first matching __versions record, then the unmatched records', ['I1', 'I2', 'I3'], {
      syms: [
        { name: 'printk', bind: STB_GLOBAL },
        { name: 'defined_here', shndx: CRC_DATA, bind: STB_GLOBAL },
        { name: 'maybe_there', bind: STB_WEAK },
        { name: '', bind: STB_GLOBAL },
        { name: '.dotted', bind: STB_GLOBAL },
      ],
      versions: [
        { name: 'module_layout', crc: 0x11 },
        { name: 'printk', crc: 0x22 },
        { name: 'maybe_there', crc: 0x33 },
        { name: 'printk', crc: 0x44 },
        { name: 'dotted', crc: 0x55 },
      ],
      ksymtabStrings: Buffer.alloc(0),
    }, [], [
      { symbol: 'printk', crc: 0x22, weak: false },
      { symbol: 'maybe_there', crc: 0x33, weak: true },
      { symbol: '.dotted', crc: 0, weak: false },
      { symbol: 'module_layout', crc: 0x11, weak: false },
      { symbol: 'printk', crc: 0x44, weak: false },
      { symbol: 'dotted', crc: 0x55, weak: false },
    ]),
    c('an all-zero __versions record is an unmatched import with an empty name', ['I3'], {
      syms: [{ name: 'printk' }],
      versions: Buffer.concat([versions(is64, msb, [{ name: 'printk', crc: 9 }]), Buffer.alloc(64)]),
    }, [], [
      { symbol: 'printk', crc: 9, weak: false },
      { symbol: '', crc: 0, weak: false },
    ]),
    c('__versions not a multiple of 64 bytes is ignored', ['I4'], {
      syms: [{ name: 'printk' }],
      versions: Buffer.concat([versions(is64, msb, [{ name: 'module_layout', crc: 1 }, { name: 'printk', crc: 2 }]), Buffer.alloc(8)]),
    }, [], [{ symbol: 'printk', crc: 0, weak: false }]),
    c('an unmatched __versions record whose name has no NUL: no imports', ['I5'], {
      syms: [{ name: 'printk' }],
      versions: Buffer.concat([versions(is64, msb, [{ name: 'printk', crc: 2 }]), versions(is64, msb, [{ name: 'x'.repeat(is64 ? 56 : 60), crc: 3 }])]),
    }, [], { errno: EINVAL }),
  ];
}

/** SPARC's register symbols are undefined but not imports. */
function sparcCase(): SymbolRuleCase {
  return {
    name: 'ELF64 BE SPARC: STT_REGISTER symbols are not imports',
    rules: ['I1'],
    image: tiny(true, true, {
      machine: EM_SPARCV9,
      syms: [
        { name: '__g2', type: STT_REGISTER, bind: STB_GLOBAL },
        { name: 'printk', bind: STB_GLOBAL },
      ],
    }),
    exports: [],
    imports: [{ symbol: 'printk', crc: 0, weak: false }],
  };
}

const VERMAGIC = '6.12.107+deb12-cloud-amd64 SMP preempt mod_unload modversions ';

/** Modules shaped like kbuild's (x86_64), with what they declare. */
function builtCase(name: string, spec: ModuleSpec, exports: ExpectedExport[], imports: ExpectedImport[]): SymbolRuleCase {
  return { name: `kbuild-shaped: ${name}`, rules: ['E1', 'E2', 'I1', 'I2', 'I3'], image: buildModule(spec), exports, imports };
}

function builtCases(): SymbolRuleCase[] {
  return [
    // __crc_ symbols follow the plain table, then the GPL one
    builtCase('exports with CRCs, versioned imports, module_layout last', {
      name: 'rules_a',
      vermagic: VERMAGIC,
      moduleLayoutCrc: 0x5002fa32,
      exports: [
        { name: 'a_plain', crc: 0x1234 },
        { name: 'b_gpl', crc: 0xfedcba98, gpl: true },
        { name: 'c_ns', crc: 7, namespace: 'NS' },
      ],
      imports: [
        { name: 'printk', crc: 0x11 },
        { name: 'kfree', crc: 0x22, weak: true },
        { name: 'unversioned', crc: null },
      ],
      params: [],
      init: false,
      exit: false,
    }, [
      { symbol: 'a_plain', crc: 0x1234 },
      { symbol: 'c_ns', crc: 7 },
      { symbol: 'b_gpl', crc: 0xfedcba98 },
    ], [
      { symbol: 'printk', crc: 0x11, weak: false },
      { symbol: 'kfree', crc: 0x22, weak: true },
      { symbol: 'unversioned', crc: 0, weak: false },
      { symbol: 'module_layout', crc: 0x5002fa32, weak: false },
    ]),
    builtCase('no modversions: no CRCs anywhere', {
      name: 'rules_b',
      vermagic: '6.12.107 SMP preempt mod_unload ',
      modversions: false,
      exports: [{ name: 'only_export', crc: 0 }],
      imports: [{ name: 'printk', crc: null }],
      init: false,
      exit: false,
    }, [{ symbol: 'only_export', crc: 0 }], [{ symbol: 'printk', crc: 0, weak: false }]),
  ];
}

/** Every case of the corpus. */
export function symbolRuleCases(): SymbolRuleCase[] {
  return [...KINDS.flatMap(([is64, msb, kind]) => tinyCases(is64, msb, kind)), sparcCase(), ...builtCases()];
}
