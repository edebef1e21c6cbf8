// One specification for reading a module's symbol table (docs/symbol-rules.md), three implementations:
// src/file/module-elf.ts, depmod's scan in JavaScript (src/depmod/module-scan.ts) and in C
// (native/module_symbols.c, also as depmod's whole scan on the pool, native/module_scan.c). Each must
// read every case of the corpus as the corpus says, and the three must read the same from real modules
// of the cached Debian tree.
import { describe, expect, it } from 'vitest';
import { KmodError } from '../../src/errors';
import { decompress } from '../../src/file/decompress';
import { Elf } from '../../src/file/elf';
import { dependencySymbols, exportedSymbols } from '../../src/file/module-elf';
import { scanModuleImage, useNativeSymbols, type ModuleScan } from '../../src/depmod/module-scan';
import { scanImageInC } from '../../src/depmod/native-scan';
import { moduleFiles } from '../support/reference';
import { symbolRuleCases, type Expected, type ExpectedExport, type ExpectedImport } from './symbol-rules.corpus';
import * as fs from 'node:fs';

interface Reading {
  exports: Expected<ExpectedExport>;
  imports: Expected<ExpectedImport>;
}

const FILE = '/corpus/m.ko';

function errnoOf(err: unknown): { errno: number } {
  if (!(err instanceof KmodError)) throw err;
  return { errno: err.errno };
}

function attempt<T>(read: () => T[]): Expected<T> {
  try {
    return read();
  } catch (err) {
    return errnoOf(err);
  }
}

function viaModuleElf(image: Buffer): Reading {
  const elf = new Elf(image, FILE);
  return {
    exports: attempt(() => exportedSymbols(elf).map((s) => ({ symbol: s.symbol, crc: Number(s.crc) }))),
    imports: attempt(() => dependencySymbols(elf).map((s) => ({ symbol: s.symbol, crc: Number(s.crc), weak: s.bind === 'weak' }))),
  };
}

function fromScan(s: ModuleScan): Reading {
  const imports: ExpectedImport[] = [];
  let at = 0;
  for (let i = 0; i < s.importLengths.length; i++) {
    const len = s.importLengths[i];
    imports.push({ symbol: Buffer.from(s.importNames.subarray(at, at + len)).toString('latin1'), crc: s.importCrcs[i], weak: s.importWeak[i] === 1 });
    at += len + 1;
  }
  const exports = s.symbolsErrno !== undefined ? { errno: s.symbolsErrno } : s.exports.map((symbol, i) => ({ symbol, crc: s.exportCrcs[i] }));
  return { exports, imports };
}

function viaScan(image: Buffer, native: boolean): Reading {
  expect(useNativeSymbols(native)).toBe(native);
  try {
    return fromScan(scanModuleImage(image, FILE));
  } finally {
    useNativeSymbols(true);
  }
}

/** depmod's scan has no import list for a module whose imports cannot be read (rule I5) */
const forScan = (r: Reading): Reading => ({ exports: r.exports, imports: Array.isArray(r.imports) ? r.imports : [] });

describe('symbol-table rules (docs/symbol-rules.md)', () => {
  it('the native helper is built (npm install builds native/; without it depmod takes the JavaScript path)', () => {
    expect(useNativeSymbols(true)).toBe(true);
  });

  const cases = symbolRuleCases();
  /** the corpus cases depmod's scan on the pool took (the others it leaves to module-scan.ts) */
  let takenOnPool = 0;
  it('the corpus covers every rule', () => {
    const covered = new Set(cases.flatMap((c) => c.rules));
    expect([...covered].sort()).toEqual(['E1', 'E2', 'E3', 'E4', 'I1', 'I2', 'I3', 'I4', 'I5']);
  });

  describe.each(cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const expected: Reading = { exports: c.exports, imports: c.imports };
    it('module-elf.ts', () => {
      expect(viaModuleElf(c.image)).toEqual(expected);
    });
    it('module-scan.ts (JavaScript)', () => {
      expect(viaScan(c.image, false)).toEqual(forScan(expected));
    });
    it('module_symbols.c (native)', () => {
      expect(viaScan(c.image, true)).toEqual(forScan(expected));
    });
    it('module_scan.c (depmod on the pool, else left to module-scan.ts)', () => {
      const s = scanImageInC(c.image);
      if (s !== undefined) takenOnPool++;
      expect(s === undefined ? viaScan(c.image, true) : fromScan(s)).toEqual(forScan(expected));
    });
  });

  it('module_scan.c took most of the corpus', () => {
    expect(takenOnPool).toBeGreaterThan(cases.length / 2);
  });

  it('the three read the same from every 8th module of the Debian tree', () => {
    const files = moduleFiles().filter((_, i) => i % 8 === 0);
    expect(files.length).toBeGreaterThan(100);
    let withExports = 0;
    for (const file of files) {
      const image = decompress(fs.readFileSync(file), file);
      const elf = viaModuleElf(image);
      expect(Array.isArray(elf.imports), file).toBe(true);
      if (Array.isArray(elf.exports) && elf.exports.length > 0) withExports++;
      expect(viaScan(image, false), file).toEqual(forScan(elf));
      expect(viaScan(image, true), file).toEqual(forScan(elf));
    }
    expect(withExports).toBeGreaterThan(10);
  });
});
