// The ELF reader and the module views on all four ELF kinds, and on malformed images: every cut at a
// section boundary, every header byte flipped, bad string-table offsets. Failures must be FormatError /
// KmodError naming the file, never another exception or an out-of-range read.
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FormatError, KmodError } from '../../src/errors';
import { Elf, SHT_RELA, SHT_REL } from '../../src/file/elf';
import { openModuleFile } from '../../src/file/module-file';
import { dependencySymbols, exportedSymbols, kernelSymbolExports, modinfoPairs, modinfoStrings, modversions, thisModuleName } from '../../src/file/module-elf';
import { moduleDir, moduleFiles } from '../support/reference';
import { buildTinyElf, strings, symtab, versions, type TinyElf } from '../support/tiny-elf';

const FILE = '/test/mod.ko';

function sample(is64: boolean, msb: boolean): { spec: TinyElf; image: Buffer; shoff: number; offsets: number[] } {
  const { strtab, symtab: syms } = symtab(is64, msb, [
    { name: 'mod.c', type: 4, bind: 0, shndx: 0xfff1 },
    { name: '__crc_exported_a', value: 4, shndx: 6, bind: 1 },
    { name: '__crc_exported_b', value: 0x12345678, shndx: 0xfff1, bind: 2 },
    { name: 'printk', shndx: 0, bind: 1 },
    { name: 'weak_thing', shndx: 0, bind: 2 },
    { name: '', shndx: 0, bind: 1 },
    { name: 'local_fn', value: 0, shndx: 1, bind: 0 },
  ]);
  const crcs = Buffer.alloc(8);
  if (msb) crcs.writeUInt32BE(0xdeadbeef, 4);
  else crcs.writeUInt32LE(0xdeadbeef, 4);
  const thisModule = Buffer.alloc(is64 ? 0x80 : 0x50);
  thisModule.write('tiny_mod', is64 ? 24 : 12, 'latin1');
  const relEntry = Buffer.alloc(is64 ? 24 : 8);
  if (is64) {
    (msb ? relEntry.writeBigUInt64BE : relEntry.writeBigUInt64LE).call(relEntry, 0x10n, 0);
    (msb ? relEntry.writeBigUInt64BE : relEntry.writeBigUInt64LE).call(relEntry, (4n << 32n) | 2n, 8);
    (msb ? relEntry.writeBigInt64BE : relEntry.writeBigInt64LE).call(relEntry, -4n, 16);
  } else {
    (msb ? relEntry.writeUInt32BE : relEntry.writeUInt32LE).call(relEntry, 0x10, 0);
    (msb ? relEntry.writeUInt32BE : relEntry.writeUInt32LE).call(relEntry, (4 << 8) | 2, 4);
  }
  const spec: TinyElf = {
    is64,
    msb,
    sections: [
      { name: '.modinfo', type: 1, data: Buffer.concat([Buffer.alloc(3), strings(['license=GPL', 'alias=foo-bar', 'noequals', 'parm=x:an x', 'depends=']), Buffer.alloc(2)]) },
      { name: '__versions', type: 1, data: versions(is64, msb, [{ name: 'module_layout', crc: 0x11 }, { name: 'printk', crc: 0x22 }, { name: '.dotted', crc: 0x33 }]) },
      { name: '.strtab', type: 3, data: strtab },
      { name: '.symtab', type: 2, data: syms, link: 3, entsize: is64 ? 24 : 16 },
      { name: '__ksymtab_strings', type: 1, data: strings(['exported_a', 'exported_b']) },
      { name: '.rodata', type: 1, data: crcs },
      { name: is64 ? '.rela.text' : '.rel.text', type: is64 ? SHT_RELA : SHT_REL, data: relEntry, link: 4, info: 1 },
      { name: '.gnu.linkonce.this_module', type: 1, data: thisModule },
    ],
  };
  return { spec, ...buildTinyElf(spec) };
}

const kinds = [
  [true, false, 'ELF64 LE'],
  [true, true, 'ELF64 BE'],
  [false, false, 'ELF32 LE'],
  [false, true, 'ELF32 BE'],
] as const;

/** findSectionRanges finds what findSection finds, for every name in the image and some that are not */
function rangesAgree(elf: Elf): void {
  const names = [...new Set(elf.sections().map((s) => s.name).filter((n): n is string => n !== undefined)), '.nothere', ''];
  expect(elf.findSectionRanges(names)).toEqual(
    names.map((n) => {
      const s = elf.findSection(n);
      return s === undefined ? undefined : { offset: s.offset, size: s.size };
    }),
  );
}

/** runs every view; anything thrown must be a KmodError that names the file */
function allViews(elf: Elf): void {
  rangesAgree(elf);
  for (const view of [
    () => elf.sections(),
    () => elf.symbols(),
    () => elf.relocations(),
    () => modinfoPairs(elf),
    () => modversions(elf),
    () => exportedSymbols(elf),
    () => dependencySymbols(elf),
    () => thisModuleName(elf),
    () => kernelSymbolExports(elf),
  ]) {
    try {
      view();
    } catch (err) {
      expect(err).toBeInstanceOf(KmodError);
      expect((err as KmodError).message).toContain(FILE);
    }
  }
}

function parseOrFormatError(image: Buffer): Elf | undefined {
  try {
    return new Elf(image, FILE);
  } catch (err) {
    expect(err).toBeInstanceOf(FormatError);
    expect((err as FormatError).file).toBe(FILE);
    expect((err as FormatError).message.startsWith(`${FILE}: `)).toBe(true);
    return undefined;
  }
}

describe.each(kinds)('%s %s (%s)', (is64, msb) => {
  const { image } = sample(is64, msb);

  it('reads the header, sections, symbols and relocations', () => {
    const elf = new Elf(image, FILE);
    expect([elf.is64, elf.msb, elf.type]).toEqual([is64, msb, 1]);
    expect(elf.sections().map((s) => s.name)).toEqual(['', '.modinfo', '__versions', '.strtab', '.symtab', '__ksymtab_strings', '.rodata', is64 ? '.rela.text' : '.rel.text', '.gnu.linkonce.this_module', '.shstrtab']);
    expect(elf.findSection('__versions')?.index).toBe(2);
    const syms = elf.symbols();
    expect(syms.map((s) => s.name)).toEqual(['', 'mod.c', '__crc_exported_a', '__crc_exported_b', 'printk', 'weak_thing', '', 'local_fn']);
    expect(syms[3]).toMatchObject({ value: 0x12345678n, shndx: 0xfff1, bind: 2 });
    const rel = elf.relocations();
    expect(rel).toHaveLength(1);
    expect(rel[0]).toMatchObject({ target: 1, symtab: 4 });
    expect(rel[0].entries).toEqual([{ offset: 0x10n, symbol: 4, type: 2, addend: is64 ? -4n : undefined }]);
  });

  it('module views: .modinfo, __versions, exports, dependencies, this_module', () => {
    const elf = new Elf(image, FILE);
    expect(modinfoStrings(elf)).toEqual(['license=GPL', 'alias=foo-bar', 'noequals', 'parm=x:an x', 'depends=']);
    expect(modinfoPairs(elf)).toEqual([['license', 'GPL'], ['alias', 'foo-bar'], ['noequals', ''], ['parm', 'x:an x'], ['depends', '']]);
    expect(modversions(elf)).toEqual([
      { symbol: 'module_layout', crc: 0x11n, bind: 'undef' },
      { symbol: 'printk', crc: 0x22n, bind: 'undef' },
      { symbol: 'dotted', crc: 0x33n, bind: 'undef' },
    ]);
    expect(exportedSymbols(elf)).toEqual([
      { symbol: 'exported_a', crc: 0xdeadbeefn, bind: 'global' },
      { symbol: 'exported_b', crc: 0x12345678n, bind: 'weak' },
    ]);
    expect(dependencySymbols(elf)).toEqual([
      { symbol: 'printk', crc: 0x22n, bind: 'undef' },
      { symbol: 'weak_thing', crc: 0n, bind: 'weak' },
      { symbol: 'module_layout', crc: 0x11n, bind: 'undef' },
      { symbol: '.dotted', crc: 0x33n, bind: 'undef' },
    ]);
    expect(thisModuleName(elf)).toBe('tiny_mod');
  });

  it('every cut at a section boundary or inside the section table is a FormatError; views never throw anything else', () => {
    const { offsets, shoff } = sample(is64, msb);
    const cuts = new Set<number>([0, 1, 15, 16, 17, 51, 52, 53, 63, 64, 65, shoff, image.length - 1]);
    for (const o of offsets) cuts.add(o);
    for (let h = shoff; h < image.length; h += is64 ? 64 : 40) cuts.add(h).add(h + 4);
    for (const n of cuts) {
      const elf = parseOrFormatError(image.subarray(0, n));
      // everything before the end of the section table is unusable
      if (n < image.length) expect(elf).toBeUndefined();
    }
  });

  it('every header byte flipped: a valid ELF or a FormatError, and all views stay within bounds', () => {
    const ehsize = is64 ? 64 : 52;
    for (let i = 0; i < ehsize; i++) {
      for (const mask of [0xff, 0x80, 0x01]) {
        const d = Buffer.from(image);
        d[i] ^= mask;
        const elf = parseOrFormatError(d);
        if (elf) allViews(elf);
      }
    }
  });

  it('section headers pointing anywhere: sections become invalid, views fail cleanly', () => {
    const { shoff } = sample(is64, msb);
    const shentsize = is64 ? 64 : 40;
    const fields = is64 ? [0, 4, 24, 29, 32, 37, 40] : [0, 4, 16, 19, 20, 23, 24];
    for (let i = 1; i < (image.length - shoff) / shentsize; i++) {
      for (const f of fields) {
        for (const mask of [0xff, 0x80]) {
          const d = Buffer.from(image);
          d[shoff + i * shentsize + f] ^= mask;
          const elf = parseOrFormatError(d);
          if (elf) allViews(elf);
        }
      }
    }
  });
});

describe('malformed tables', () => {
  it('a symbol name offset outside .strtab: symbols() and dependencySymbols() fail, exports fall back to __ksymtab_strings', () => {
    const { image, spec } = sample(true, false);
    const symOff = buildTinyElf(spec).offsets[4];
    const d = Buffer.from(image);
    d.writeUInt32LE(0xffff, symOff + 24 * 4); // printk's st_name
    const elf = new Elf(d, FILE);
    expect(() => elf.symbols()).toThrow(FormatError);
    expect(() => dependencySymbols(elf)).toThrow(/outside \.strtab/);
    // __crc_ scan stops at the bad entry and uses the string table instead
    expect(exportedSymbols(elf)).toEqual([
      { symbol: 'exported_a', crc: 0n, bind: 'global' },
      { symbol: 'exported_b', crc: 0n, bind: 'global' },
    ]);
  });

  it('__versions with a partial entry or an unterminated name is EINVAL; no section is ENODATA', () => {
    const mk = (v: Buffer): Elf => {
      const s = sample(true, false).spec;
      s.sections[1] = { ...s.sections[1], data: v };
      return new Elf(buildTinyElf(s).image, FILE);
    };
    expect(() => modversions(mk(Buffer.alloc(63)))).toThrow(FormatError);
    const long = versions(true, false, [{ name: 'x'.repeat(56), crc: 1 }]);
    expect(() => modversions(mk(long))).toThrow(/unterminated/);
    expect(modversions(mk(Buffer.alloc(0)))).toEqual([]);
    const s = sample(true, false).spec;
    s.sections[1] = { ...s.sections[1], name: '__other' };
    const err = (() => {
      try {
        modversions(new Elf(buildTinyElf(s).image, FILE));
      } catch (e) {
        return e as KmodError;
      }
    })();
    expect(err?.errno).toBe(61);
  });

  it('.shstrtab without a final NUL, or a name offset beyond it, is rejected as libkmod does', () => {
    const { image } = sample(false, true);
    const elf0 = new Elf(image, FILE);
    const shstr = elf0.sections()[elf0.shstrndx];
    const e = Buffer.from(image);
    e[shstr.offset + shstr.size - 1] = 0x41;
    expect(() => new Elf(e, FILE)).toThrow(/does not end with a NUL/);
    // a section whose name offset is beyond .shstrtab is skipped by name lookups
    const f = Buffer.from(image);
    const modinfoHdr = elf0.sections()[1].headerOffset;
    f.writeUInt32BE(shstr.size + 5, modinfoHdr);
    const elf = new Elf(f, FILE);
    expect(elf.sections()[1].valid).toBe(false);
    expect(() => modinfoPairs(elf)).toThrow(/no \.modinfo/);
  });

  it('a .modinfo without trailing NUL keeps its last string; one of only NULs is empty', () => {
    const s = sample(true, false).spec;
    s.sections[0] = { ...s.sections[0], data: Buffer.from('\0\0a=1\0\0b=2', 'latin1') };
    expect(modinfoPairs(new Elf(buildTinyElf(s).image, FILE))).toEqual([['a', '1'], ['b', '2']]);
    s.sections[0] = { ...s.sections[0], data: Buffer.alloc(5) };
    expect(modinfoPairs(new Elf(buildTinyElf(s).image, FILE))).toEqual([]);
  });
});

describe('a real module (Debian 6.12 af_key)', () => {
  it('parses every table: symbols, relocations, this_module name, kernel symbol table', () => {
    const img = execFileSync('xz', ['-dc', path.join(moduleDir(), 'kernel/net/key/af_key.ko.xz')]);
    const elf = new Elf(img, FILE);
    expect(elf.symbols().length).toBeGreaterThan(100);
    const rel = elf.relocations();
    expect(rel.some((r) => r.section.name === '.rela.gnu.linkonce.this_module')).toBe(true);
    expect(thisModuleName(elf)).toBe('af_key');
    expect(modversions(elf).some((v) => v.symbol === 'module_layout')).toBe(true);
    expect(kernelSymbolExports(elf)).toEqual([]);
    const failover = new Elf(execFileSync('xz', ['-dc', path.join(moduleDir(), 'kernel/net/core/failover.ko.xz')]), FILE);
    const k = kernelSymbolExports(failover);
    expect(k.map((e) => e.symbol).sort()).toEqual(exportedSymbols(failover).map((e) => e.symbol).sort());
    expect(k.every((e) => e.gpl && e.namespace === '' && e.crc === exportedSymbols(failover).find((x) => x.symbol === e.symbol)?.crc)).toBe(true);
  });
});

describe('every module of the Debian 6.12 tree', () => {
  it('parses all tables (symbols, relocations, dependencies, kernel symbol tables); this_module name = modinfo name', () => {
    const files = moduleFiles();
    expect(files.length).toBe(1138);
    let relocations = 0;
    for (const f of files) {
      const m = openModuleFile(f);
      const elf = m.elf;
      expect(elf.symbols().length).toBeGreaterThan(0);
      relocations += elf.relocations().reduce((n, r) => n + r.entries.length, 0);
      dependencySymbols(elf);
      kernelSymbolExports(elf);
      expect(m.thisModuleName()).toBe(Object.fromEntries(m.modinfo()).name);
    }
    expect(relocations).toBeGreaterThan(1_000_000);
  });
});
