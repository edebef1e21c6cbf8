import { describe, expect, it } from 'vitest';
import { BinaryIndex } from '../../src/indexes/binary';
import { IndexBuilder, IndexCharacterError } from '../../src/indexes/writer';

const hex = (b: Buffer) => b.toString('hex');

describe('index writer (kmod 34 pre-order layout)', () => {
  it('an empty index is the 12-byte header with root 0x0000000c', () => {
    expect(hex(new IndexBuilder().serialize())).toBe('b007f457' + '00020001' + '0000000c');
  });
  it('KMOD.md §6.3 example: modules.builtin.bin holding only "unix"', () => {
    const idx = new IndexBuilder();
    idx.insert('unix', '', 0);
    expect(hex(idx.serialize())).toBe('b007f457' + '00020001' + '2000000c' + '7575' + 'c0000012' + Buffer.from('nix\0').toString('hex') + '00000001' + '00000000' + '00');
  });
  it('splits prefixes, orders values by priority (later first on ties) and reads back', () => {
    const idx = new IndexBuilder();
    expect(idx.insert('abcd', 'v1', 5)).toBe(false);
    idx.insert('abxy', 'v2', 1);
    idx.insert('ab', 'v3', 2);
    idx.insert('abcd', 'v0', 5);
    expect(idx.insert('abcd', 'v1', 9)).toBe(true); // duplicate value
    idx.insert('b', 'v4', 0);
    const r = new BinaryIndex(idx.serialize(), 'mem');
    expect(r.search('abcd')).toBe('v0');
    expect(r.search('ab')).toBe('v3');
    expect(r.search('abx')).toBeUndefined();
    expect(r.dump('')).toBe('ab v3\nabcd v0\nabcd v1\nabcd v1\nabxy v2\nb v4\n');
  });
  it('rejects characters above 127 as kmod does', () => {
    const idx = new IndexBuilder();
    expect(() => idx.insert('caf\xe9', 'x', 0)).toThrow(IndexCharacterError);
    expect(() => idx.insert('ok', 'valu\xe9', 0)).toThrow(/only 7-bit ASCII is supported/);
    // a value is checked again until it has passed once (the writer skips re-checking a repeated one)
    expect(() => idx.insert('ok2', 'valu\xe9', 0)).toThrow(IndexCharacterError);
    expect(idx.insert('k1', 'mod', 0)).toBe(false);
    expect(idx.insert('k2', 'mod', 0)).toBe(false);
    expect(() => idx.insert('k\xe9', 'mod', 0)).toThrow(IndexCharacterError);
  });
});
