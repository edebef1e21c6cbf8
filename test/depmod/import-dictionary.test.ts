// The scan cache's dictionary of imports (src/depmod/import-dictionary.ts): what the builder keeps once
// and what it keeps apart, and that its part of the file reads back as written (or not at all).
import { describe, expect, it } from 'vitest';
import { symbolKey } from '../../src/depmod/hash';
import { ImportDictionary, ImportDictionaryBuilder, dictionaryBytes } from '../../src/depmod/import-dictionary';

/** the builder's part of the file in one buffer (8-aligned, as in the file) */
function written(b: ImportDictionaryBuilder): { buffer: ArrayBuffer; nameBytes: number } {
  const parts = b.parts();
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return { buffer: out.buffer, nameBytes: parts[3].length };
}

const add = (b: ImportDictionaryBuilder, name: string, crc: number, key = symbolKey(name.replace(/^\./, ''))): number => {
  const bytes = Buffer.from(`xx${name}yy`, 'latin1');
  return b.add(bytes, 2, 2 + name.length, key, crc);
};

describe('import dictionary', () => {
  it('keeps each (name, CRC) once, and apart what differs in either', () => {
    const b = new ImportDictionaryBuilder();
    expect(add(b, 'printk', 1)).toBe(0);
    expect(add(b, 'printk', 1)).toBe(0);
    expect(add(b, 'printk', 2)).toBe(1);
    // one symbolKey for both (the key leaves the dot out), two names
    expect(add(b, '.printk', 1)).toBe(2);
    expect(add(b, 'print', 1, symbolKey('printk'))).toBe(3);
    expect(add(b, 'nan', Number.NaN)).toBe(4);
    expect(add(b, 'nan', Number.NaN)).toBe(4);
    expect(add(b, '', 0)).toBe(5);
    expect(b.size).toBe(6);
    const { buffer, nameBytes } = written(b);
    expect(buffer.byteLength).toBe(dictionaryBytes(6, nameBytes));
    const d = ImportDictionary.parse(buffer, 0, 6, nameBytes)!;
    expect(d).toBeDefined();
    const names = [...Array(6).keys()].map((k) => Buffer.from(d.names.subarray(d.starts[k], d.starts[k] + d.lengths[k])).toString('latin1'));
    expect(names).toEqual(['printk', 'printk', '.printk', 'print', 'nan', '']);
    expect([...d.crcs]).toEqual([1, 2, 1, 1, Number.NaN, 0]);
    expect(d.keys[2]).toBe(symbolKey('printk'));
  });

  it('grows past its first arrays and name buffer', () => {
    const b = new ImportDictionaryBuilder();
    const long = 'x'.repeat(300);
    for (let k = 0; k < 3000; k++) expect(add(b, `${long}${k}`, k)).toBe(k);
    for (let k = 0; k < 3000; k += 7) expect(add(b, `${long}${k}`, k)).toBe(k);
    const { buffer, nameBytes } = written(b);
    const d = ImportDictionary.parse(buffer, 0, 3000, nameBytes)!;
    expect(Buffer.from(d.names.subarray(d.starts[2999], d.starts[2999] + d.lengths[2999])).toString()).toBe(`${long}2999`);
  });

  it('seeded with a dictionary, keeps its entries where they were and finds them before and after indexing them', () => {
    const a = new ImportDictionaryBuilder();
    // names sharing one symbolKey too, and a NaN CRC
    for (let k = 0; k < 2000; k++) add(a, `sym${k}`, k);
    add(a, 'print', 1, symbolKey('printk'));
    add(a, 'printk', 1);
    add(a, 'nan', Number.NaN);
    const { buffer, nameBytes } = written(a);
    const old = ImportDictionary.parse(buffer, 0, a.size, nameBytes)!;
    const b = new ImportDictionaryBuilder();
    b.seed(old);
    expect(b.size).toBe(2003);
    expect(() => b.seed(old)).toThrow(/seeded after/);
    // found by search (fewer lookups than the indexing takes)
    expect(add(b, 'printk', 1)).toBe(2001);
    expect(add(b, 'print', 1, symbolKey('printk'))).toBe(2000);
    expect(add(b, 'nan', Number.NaN)).toBe(2002);
    expect(add(b, 'printk', 2)).toBe(2003);
    expect(add(b, 'sym7', 7)).toBe(7);
    expect(add(b, 'sym7', 8)).toBe(2004);
    // enough lookups to index the seeded entries: the same answers after
    for (let k = 0; k < 2000; k++) expect(add(b, `sym${k}`, k)).toBe(k);
    expect(add(b, 'printk', 1)).toBe(2001);
    expect(add(b, 'printk', 2)).toBe(2003);
    expect(add(b, 'sym7', 8)).toBe(2004);
    expect(add(b, 'new', 0)).toBe(2005);
    const w = written(b);
    const d = ImportDictionary.parse(w.buffer, 0, b.size, w.nameBytes)!;
    expect(Buffer.from(d.names.subarray(0, nameBytes)).equals(Buffer.from(old.names))).toBe(true);
    expect([...d.crcs.subarray(0, old.size)]).toEqual([...old.crcs]);
  });

  it('reads a part whose names and lengths do not add up as no dictionary', () => {
    const b = new ImportDictionaryBuilder();
    add(b, 'one', 1);
    add(b, 'two', 2);
    const { buffer, nameBytes } = written(b);
    expect(ImportDictionary.parse(buffer, 0, 2, nameBytes)).toBeDefined();
    expect(ImportDictionary.parse(buffer, 0, 3, nameBytes)).toBeUndefined();
    expect(ImportDictionary.parse(buffer, 0, 2, nameBytes - 1)).toBeUndefined();
    expect(ImportDictionary.parse(buffer, 4, 2, nameBytes)).toBeUndefined();
    const lengths = new Uint32Array(buffer, 24, 2);
    lengths[0] = 4;
    expect(ImportDictionary.parse(buffer, 0, 2, nameBytes)).toBeUndefined();
    lengths[0] = 3;
    new Uint8Array(buffer)[32 + 3] = 0x41;
    expect(ImportDictionary.parse(buffer, 0, 2, nameBytes)).toBeUndefined();
  });
});
