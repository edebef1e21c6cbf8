// The scan cache's dictionary of imports (src/depmod/import-dictionary.ts): what the builder keeps once
// and what it keeps apart, and that its part of the file reads back as written (or not at all).
import { describe, expect, it } from 'vitest';
import { symbolKey } from './support';
import { ImportDictionary, ImportDictionaryBuilder, dictionaryBytes } from '../../src/depmod/import-dictionary';
import { nativeFunction } from '../../src/native-addon';

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

/** the entry of one name, added if new (a list of one) */
const add = (b: ImportDictionaryBuilder, name: string, crc: number, key = symbolKey(name.replace(/^\./, ''))): number =>
  b.addAll(Buffer.from(name, 'latin1'), Uint32Array.of(name.length), Int32Array.of(key), Float64Array.of(crc), null)[0];

describe.each([
  ['the addon', true],
  ['JavaScript', false],
] as const)('import dictionary, built in %s', (_engine, useAddon) => {
  const builder = (): ImportDictionaryBuilder => new ImportDictionaryBuilder(useAddon);

  it('is built where it says', () => {
    // the addon is built in every test run (scripts/build-native.js): without its builder this fails
    expect(builder().engine).toBe(useAddon ? 'addon' : 'javascript');
  });

  it('keeps each (name, CRC) once, and apart what differs in either', () => {
    const b = builder();
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

  it('gives a view of its entries as they are, which later additions leave alone', () => {
    const b = builder();
    expect(b.view().size).toBe(0);
    add(b, 'printk', 1);
    add(b, '.printk', 2);
    add(b, '', 0);
    const v = b.view();
    add(b, 'kfree', 3);
    expect(v.size).toBe(3);
    const names = [...Array(3).keys()].map((k) => Buffer.from(v.names.subarray(v.starts[k], v.starts[k] + v.lengths[k])).toString('latin1'));
    expect(names).toEqual(['printk', '.printk', '']);
    expect([...v.crcs]).toEqual([1, 2, 0]);
    expect([...v.keys]).toEqual([symbolKey('printk'), symbolKey('printk'), symbolKey('')]);
    expect(b.view().size).toBe(4);
  });

  it('grows past its first arrays and name buffer', () => {
    const b = builder();
    const long = 'x'.repeat(300);
    for (let k = 0; k < 3000; k++) expect(add(b, `${long}${k}`, k)).toBe(k);
    for (let k = 0; k < 3000; k += 7) expect(add(b, `${long}${k}`, k)).toBe(k);
    const { buffer, nameBytes } = written(b);
    const d = ImportDictionary.parse(buffer, 0, 3000, nameBytes)!;
    expect(Buffer.from(d.names.subarray(d.starts[2999], d.starts[2999] + d.lengths[2999])).toString()).toBe(`${long}2999`);
  });

  it('seeded with a dictionary, keeps its entries where they were and finds them before and after indexing them', () => {
    const a = builder();
    // names sharing one symbolKey too, and a NaN CRC
    for (let k = 0; k < 2000; k++) add(a, `sym${k}`, k);
    add(a, 'print', 1, symbolKey('printk'));
    add(a, 'printk', 1);
    add(a, 'nan', Number.NaN);
    const { buffer, nameBytes } = written(a);
    const old = ImportDictionary.parse(buffer, 0, a.size, nameBytes)!;
    const b = builder();
    expect(b.seed(old)).toBe(true);
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
    const b = builder();
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

  it('adds a list of names at once: weak flags in the references, names not selected passed over', () => {
    const b = builder();
    const names = Buffer.from('alpha\0beta\0\0alpha\0gamma', 'latin1');
    const lengths = Uint32Array.of(5, 4, 0, 5, 5);
    const keys = Int32Array.from(['alpha', 'beta', '', 'alpha', 'gamma'], (n) => symbolKey(n));
    const crcs = Float64Array.of(1, 2, 3, 1, Number.NaN);
    const refs = b.addAll(names, lengths, keys, crcs, Uint8Array.of(0, 1, 0, 1, 0), Uint8Array.of(1, 1, 1, 1, 0));
    expect([...refs]).toEqual([0, 0x80000001, 2, 0x80000000, 0xffffffff]);
    expect(b.size).toBe(3);
    expect([...b.addAll(names, lengths, keys, crcs, null)]).toEqual([0, 1, 2, 0, 3]);
    expect(b.size).toBe(4);
  });

  it('refuses lists that do not add up, before adding any of them', () => {
    const b = builder();
    const names = Buffer.from('one\0two', 'latin1');
    const keys = Int32Array.of(1, 2);
    const crcs = Float64Array.of(1, 2);
    expect(() => b.addAll(names, Uint32Array.of(3, 4), keys, crcs, null)).toThrow(/runs past the names/);
    expect(() => b.addAll(names, Uint32Array.of(3), keys, crcs, null)).toThrow(/differ in length/);
    expect(() => b.addAll(names, Uint32Array.of(3, 3), keys, crcs, Uint8Array.of(1))).toThrow(/shorter than the names/);
    expect(b.size).toBe(0);
    expect([...b.addAll(names, Uint32Array.of(3, 3), keys, crcs, null)]).toEqual([0, 1]);
  });
});

describe('import dictionary in the addon', () => {
  it('declines to be seeded with a dictionary that holds an entry twice', () => {
    const bytes = Buffer.from('twice\0twice\0', 'latin1');
    const lengths = Uint32Array.of(5, 5);
    // two equal entries, as no writer makes them
    const buffer = new ArrayBuffer(2 * 16 + bytes.length);
    new Float64Array(buffer, 0, 2).set([1, 1]);
    new Int32Array(buffer, 16, 2).set([symbolKey('twice'), symbolKey('twice')]);
    new Uint32Array(buffer, 24, 2).set(lengths);
    new Uint8Array(buffer, 32).set(bytes);
    const d = ImportDictionary.parse(buffer, 0, 2, bytes.length)!;
    expect(d).toBeDefined();
    expect(new ImportDictionaryBuilder(true).seed(d)).toBe(false);
    expect(new ImportDictionaryBuilder(false).seed(d)).toBe(true);
  });

  it('throws a TypeError for a handle that is not one of its dictionaries', () => {
    const add = nativeFunction('importDictionaryAdd')!;
    expect(() => add({}, new Uint8Array(0), new Uint32Array(0), new Int32Array(0), new Float64Array(0), null, null, new Uint32Array(0))).toThrow(TypeError);
    expect(() => nativeFunction('importDictionaryParts')!(Object.create(null))).toThrow(TypeError);
  });
});
