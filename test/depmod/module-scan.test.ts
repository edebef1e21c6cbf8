// depmod's symbol extraction in the native helper (native/module_symbols.c) against its JavaScript
// twin (module-scan.ts symbolsOf): the same scans, field by field, on the real trees of three kinds
// (ELF64 little-endian, ELF64 big-endian, ELF32), on synthetic modules that outgrow the scan's arrays,
// and on thousands of damaged images. The helper is part of the build: its absence fails here.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { nativeSymbolStats, scanModuleImage, useNativeSymbols } from '../../src/depmod/module-scan';
import { decompress } from '../../src/file/decompress';
import { Elf } from '../../src/file/elf';
import { loadNativeSymbols } from '../../src/native-addon';
import { buildModule } from '../support/elf-writer';
import { prng } from '../support/prng';
import { plainScan } from './support';
import { moduleFiles, repoRoot } from '../support/reference';

/** the scan of `image` by the native helper and by JavaScript; also whether the helper took it */
function bothScans(image: Buffer, file = 'm.ko'): { native: unknown; js: unknown; tookNative: boolean } {
  const before = nativeSymbolStats.done;
  expect(useNativeSymbols(true)).toBe(true);
  const native = plainScan(scanModuleImage(image, file));
  const tookNative = nativeSymbolStats.done > before;
  useNativeSymbols(false);
  try {
    return { native, js: plainScan(scanModuleImage(image, file)), tookNative };
  } finally {
    useNativeSymbols(true);
  }
}

function foreignTree(arch: string, meta: string): string[] {
  const out = execFileSync('bash', [path.join(repoRoot, 'scripts/fetch-tree.sh'), arch, meta], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const ktree = /^KTREE=(.*)$/m.exec(out)![1];
  const kver = /^KVER=(.*)$/m.exec(out)![1];
  return execFileSync('find', [path.join(ktree, 'lib/modules', kver), '-name', '*.ko*'], { encoding: 'utf8' }).trim().split('\n').sort();
}

describe('native symbol extraction', () => {
  it('is built (npm install builds native/) and used by default', () => {
    expect(useNativeSymbols(true)).toBe(true);
    const before = nativeSymbolStats.done;
    scanModuleImage(buildModule({ name: 'm', vermagic: '6.1 SMP ', exports: [{ name: 'e', crc: 1 }] }), 'm.ko');
    expect(nativeSymbolStats.done).toBe(before + 1);
  });

  it('refuses arguments of the wrong kind, and layouts that do not fit the image', () => {
    const scan = loadNativeSymbols()!;
    const arrays = [new Uint32Array(8), new Float64Array(4), new Uint8Array(64), new Int32Array(4), new Uint32Array(4), new Float64Array(4), new Uint8Array(4)] as const;
    const image = buildModule({ name: 'm', vermagic: '6.1 SMP ', imports: [{ name: 'i', crc: 1 }] });
    expect(() => (scan as unknown as (...a: unknown[]) => number)(image, new Float64Array(24))).toThrow(TypeError);
    expect(() => scan(image, new Float64Array(24), new Float64Array(8) as unknown as Uint32Array, ...arrays.slice(1) as [Float64Array, Uint8Array, Int32Array, Uint32Array, Float64Array, Uint8Array])).toThrow(TypeError);
    expect(() => scan(image, new Float64Array(8), ...arrays)).toThrow(RangeError);
    for (const v of [-1, NaN, Infinity, image.length + 1e6]) {
      const io = new Float64Array(24);
      io[2] = v;
      expect(scan(image, io, ...arrays)).toBe(-1);
    }
    // an empty layout (no sections): no symbols at all, and __ksymtab_strings absent (ENODATA)
    const io = new Float64Array(24);
    io[8] = 1;
    io[9] = 1;
    expect(scan(image, io, ...arrays)).toBe(0);
    expect([io[16], io[17], io[18], io[19]]).toEqual([0, 61, 0, 0]);
  });

  it.each([
    ['Debian 6.12 cloud-amd64 (ELF64 little-endian)', () => moduleFiles(), 1],
    ['Debian s390x (ELF64 big-endian), every 4th module', () => foreignTree('s390x', 'linux-image-s390x'), 4],
    ['Debian armhf (ELF32 little-endian), every 4th module', () => foreignTree('armhf', 'linux-image-armmp'), 4],
  ] as const)('gives the JavaScript scan of every module of the %s tree', (_, files, step) => {
    const list = files();
    expect(list.length).toBeGreaterThan(1000);
    let compared = 0;
    let imports = 0;
    for (let i = 0; i < list.length; i += step) {
      const image = decompress(fs.readFileSync(list[i]), list[i]);
      const r = bothScans(image, list[i]);
      expect(r.tookNative, list[i]).toBe(true);
      expect(r.native, list[i]).toEqual(r.js);
      imports += (r.js as { importLengths: number[] }).importLengths.length;
      compared++;
    }
    expect(compared).toBeGreaterThan(250);
    expect(imports).toBeGreaterThan(10_000);
  });

  it('grows the arrays it is given for modules with many symbols and long names', () => {
    const imports = Array.from({ length: 6000 }, (_, k) => ({ name: `imported_symbol_${'x'.repeat(k % 30)}_${k}`, crc: k % 3 === 0 ? null : k, weak: k % 7 === 0 }));
    const exports = Array.from({ length: 1500 }, (_, k) => ({ name: `exported_${k}`, crc: k + 1 }));
    const m = buildModule({ name: 'big', vermagic: '6.1 SMP ', imports, exports, modinfo: [['alias', 'big-1']] });
    const r = bothScans(m);
    expect(r.tookNative).toBe(true);
    expect(r.native).toEqual(r.js);
    const s = r.js as { importLengths: number[]; exports: string[]; importNames: string };
    expect(s.importLengths.length).toBeGreaterThan(6000);
    expect(s.importNames.length).toBeGreaterThan(64 << 10);
    expect(s.exports.length).toBe(1500);
    // and a small module after it still gets its own results
    const small = bothScans(buildModule({ name: 's', vermagic: '6.1 SMP ', imports: [{ name: '.dot', crc: 5 }] }));
    expect(small.native).toEqual(small.js);
  });

  it('agrees on damaged images: bytes flipped in the symbol, string and version tables and the section headers, and truncations', () => {
    const sources = [
      ...moduleFiles().filter((_, k) => k % 97 === 0),
      ...foreignTree('s390x', 'linux-image-s390x').filter((_, k) => k % 401 === 0),
      ...foreignTree('armhf', 'linux-image-armmp').filter((_, k) => k % 401 === 0),
    ];
    const rand = prng(0x6b6d6f64);
    let cases = 0;
    let native = 0;
    for (const file of sources) {
      const image = decompress(fs.readFileSync(file), file);
      const elf = new Elf(image, file);
      const ranges = elf
        .findSectionRanges(['.symtab', '.strtab', '__versions', '__ksymtab_strings', '.modinfo'])
        .filter((r): r is { offset: number; size: number } => r !== undefined && r.size > 0);
      ranges.push({ offset: elf.shoff, size: elf.shnum * elf.shentsize });
      for (let round = 0; round < 40; round++) {
        const bad = Buffer.from(image);
        const r = ranges[Math.floor(rand() * ranges.length)];
        const flips = 1 + Math.floor(rand() * 8);
        for (let k = 0; k < flips; k++) {
          const at = r.offset + Math.floor(rand() * r.size);
          bad[at] = rand() < 0.3 ? 0 : rand() < 0.5 ? 0xff : bad[at] ^ (1 << Math.floor(rand() * 8));
        }
        const both = bothScans(bad, file);
        expect(both.native, `${file} round ${round}`).toEqual(both.js);
        cases++;
        if (both.tookNative) native++;
      }
      for (let k = 1; k <= 8; k++) {
        const both = bothScans(image.subarray(0, Math.floor((image.length * k) / 9)), file);
        expect(both.native).toEqual(both.js);
        cases++;
      }
    }
    expect(cases).toBeGreaterThan(500);
    // most damaged images are still the helper's to scan (it declines only reads outside the image)
    expect(native).toBeGreaterThan(cases / 2);
  });
});
