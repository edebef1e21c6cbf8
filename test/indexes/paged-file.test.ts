// Index files read in chunks as searches touch them (src/indexes/paged-file.ts): the same answers as
// the whole file read at once, the file as it was opened even when replaced or cut short afterwards,
// and the descriptor let go once every chunk is in.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FormatError } from '../../src/errors';
import { BinaryIndex } from '../../src/indexes/binary';
import { IndexBuilder } from '../../src/indexes/writer';
import { moduleDir } from '../support/reference';

const MODDIR = moduleDir();

function openFds(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

/** an index of `n` keys with long values: several MB, hundreds of chunks */
function bigIndex(n: number): Buffer {
  const b = new IndexBuilder();
  for (let i = 0; i < n; i++) b.insert(`key${(i * 7919) % n}_${i % 13}`, `value-${i}-${'x'.repeat(i % 200)}`, i);
  return b.serialize();
}

describe('index files read as searched', () => {
  it('answers as the whole file read at once, on the reference modules.alias.bin and modules.dep.bin', () => {
    for (const name of ['modules.alias.bin', 'modules.dep.bin', 'modules.symbols.bin']) {
      const file = path.join(MODDIR, name);
      const whole = new BinaryIndex(fs.readFileSync(file), file);
      const keys = whole.entries().map((e) => e.key);
      const paged = BinaryIndex.open(file)!;
      // every 37th key exactly, and wildcard searches, first on a fresh file then on a fuller one
      for (let i = 0; i < keys.length; i += 37) expect(paged.search(keys[i]), keys[i]).toBe(whole.search(keys[i]));
      for (const key of ['pci:v00008086d000010D3sv00001234sd00005678bc02sc00i00', 'fs_xfs', 'usb:v046Dp0A4Dd0100dc00dsc00dp00ic01isc01ip00in00', 'nothing']) {
        expect(BinaryIndex.open(file)!.searchWild(key)).toEqual(whole.searchWild(key));
      }
      expect(BinaryIndex.open(file)!.dump('x ')).toBe(whole.dump('x '));
    }
  });

  it('a search reads part of a large file and keeps it open; a dump reads it all and closes it', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-paged-'));
    const file = path.join(dir, 'big.bin');
    const data = bigIndex(40000);
    expect(data.length).toBeGreaterThan(4 << 20);
    fs.writeFileSync(file, data);
    const whole = new BinaryIndex(data, file);
    const before = openFds();
    const idx = BinaryIndex.open(file)!;
    expect(idx.search('key5_5')).toBe(whole.search('key5_5'));
    expect(openFds()).toBe(before + 1);
    expect(idx.dump('')).toBe(whole.dump(''));
    expect(openFds()).toBe(before);
    // after the dump's whole read, searches answer from it
    expect(idx.search('key7_7')).toBe(whole.search('key7_7'));
    expect(idx.searchWild('key3*')).toEqual(whole.searchWild('key3*'));
  });

  it('a sparse file of 10 GB (an index with zeros after it, which kmod maps): the same answers, on every runtime', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-paged-'));
    const file = path.join(dir, 'sparse.bin');
    const data = bigIndex(5000);
    fs.writeFileSync(file, data);
    fs.truncateSync(file, 10 * 2 ** 30);
    const whole = new BinaryIndex(data, file);
    const idx = BinaryIndex.open(file)!;
    for (const { key } of whole.entries().filter((_, i) => i % 50 === 0)) expect(idx.search(key), key).toBe(whole.search(key));
    expect(idx.searchWild('key1*')).toEqual(whole.searchWild('key1*'));
    fs.rmSync(dir, { recursive: true });
  });

  it('reads the file it opened: one renamed over it afterwards changes nothing', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-paged-'));
    const file = path.join(dir, 'x.bin');
    const data = bigIndex(20000);
    fs.writeFileSync(file, data);
    const idx = BinaryIndex.open(file)!;
    const other = new IndexBuilder();
    other.insert('key1_1', 'replaced', 0);
    fs.writeFileSync(`${file}.tmp`, other.serialize());
    fs.renameSync(`${file}.tmp`, file);
    expect(idx.dump('')).toBe(new BinaryIndex(data, file).dump(''));
  });

  it('a file cut short after it was opened: the searches that reach past its end are FormatErrors naming it, never stale bytes', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-paged-'));
    const file = path.join(dir, 'cut.bin');
    const data = bigIndex(20000);
    fs.writeFileSync(file, data);
    const whole = new BinaryIndex(data, file);
    const keys = whole.entries().map((e) => e.key);
    const idx = BinaryIndex.open(file)!;
    fs.truncateSync(file, 100000);
    let found = 0;
    let refused = 0;
    for (let i = 0; i < keys.length; i += 97) {
      try {
        const v = idx.search(keys[i]);
        if (v !== undefined) {
          expect(v).toBe(whole.search(keys[i]));
          found++;
        }
      } catch (err) {
        expect(err).toBeInstanceOf(FormatError);
        expect((err as Error).message).toContain(file);
        refused++;
      }
    }
    expect(refused).toBeGreaterThan(0);
    expect(found + refused).toBeGreaterThan(0);
  });
});
