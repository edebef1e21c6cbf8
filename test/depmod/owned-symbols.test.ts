// The symbols modules own (owned-symbols.ts): the addon's table (native/symbol_table.c ownedSymbols)
// against the JavaScript table's rules (the last module in module order owns a name, -P's prefix
// dropped, kmod's hash order), on malformed arguments, and the lazy forms of OwnedSymbols.
import { describe, expect, it } from 'vitest';
import { nativeFunction } from '../../src/native-addon';
import { hashOrder } from '../../src/depmod/hash';
import { ExportBatch, OwnedSymbols } from '../../src/depmod/owned-symbols';
import type { Mod } from '../../src/depmod/run-context';
import { prng } from '../support/prng';

const ownedSymbols = nativeFunction('ownedSymbols')!;

/** modules as ownedSymbols and ExportBatch see them (an idx and a name) */
function modules(n: number): Mod[] {
  return Array.from({ length: n }, (_, idx) => ({ idx, modname: `mod_${idx}` }) as Mod);
}

/** symbols.ts' rules, plainly: the highest idx owns each (prefix-stripped) name; kmod's hash order */
function expected(exports: [string[], number][], prefix: string | null): [string, number][] {
  const owner = new Map<string, number>();
  for (const [names, idx] of exports) {
    for (let name of names) {
      if (prefix !== null && name.startsWith(prefix)) name = name.slice(1);
      if ((owner.get(name) ?? -1) < idx) owner.set(name, idx);
    }
  }
  return hashOrder([...owner], ([name]) => name, 2048);
}

function viaBatch(exports: [string[], number][], prefix: number, mods: Mod[]): [string, number][] {
  const batch = new ExportBatch();
  for (const [names, idx] of exports) batch.add(names, mods[idx]);
  const owned = batch.owned(prefix, mods)!;
  expect(owned.modnames).toEqual([...owned.priorities].map((k) => `mod_${k}`));
  return owned.names.map((name, k) => [name, owned.priorities[k]]);
}

describe('ownedSymbols (the addon)', () => {
  it('owners, prefixes and order as the JavaScript table has them, on random exports', () => {
    const random = prng(11);
    const pool = Array.from({ length: 300 }, (_, k) => `${k % 3 === 0 ? '_' : ''}sym_${(k * 7919).toString(36)}`);
    for (let round = 0; round < 20; round++) {
      const mods = modules(1 + Math.floor(random() * 40));
      // modules in any order, some twice, some with no exports, an empty name now and then
      const exports: [string[], number][] = [];
      for (let j = Math.floor(random() * 60); j > 0; j--) {
        const names = Array.from({ length: Math.floor(random() * 5) }, () => (random() < 0.02 ? '' : pool[Math.floor(random() * pool.length)]));
        exports.push([names, Math.floor(random() * mods.length)]);
      }
      expect(viaBatch(exports, -1, mods)).toEqual(expected(exports, null));
      expect(viaBatch(exports, '_'.charCodeAt(0), mods)).toEqual(expected(exports, '_'));
    }
  });
  it('nothing exported: an empty table', () => {
    const [names, lengths, owners, values, valueLengths] = ownedSymbols(new Uint8Array(0), new Uint32Array(0), new Uint32Array(0), -1, 2048, Buffer.from('m'), Uint32Array.of(1));
    expect([names.length, lengths.length, owners.length, values.length, valueLengths.length]).toEqual([0, 0, 0, 0, 0]);
  });
  it('refuses arguments that do not add up', () => {
    const names = Buffer.from('a\0b');
    const mod = [Buffer.from('m0m1'), Uint32Array.of(2, 2)] as const;
    expect(ownedSymbols(names, Uint32Array.of(2), Uint32Array.of(1), -1, 2048, ...mod)[2]).toEqual(Uint32Array.of(1, 1));
    expect(() => ownedSymbols(names, Uint32Array.of(3), Uint32Array.of(1), -1, 2048, ...mod)).toThrow(RangeError);
    expect(() => ownedSymbols(names, Uint32Array.of(1), Uint32Array.of(1), -1, 2048, ...mod)).toThrow(RangeError);
    expect(() => ownedSymbols(names, Uint32Array.of(2), Uint32Array.of(2), -1, 2048, ...mod)).toThrow(RangeError);
    expect(() => ownedSymbols(names, Uint32Array.of(2), Uint32Array.of(1, 0), -1, 2048, ...mod)).toThrow(RangeError);
    expect(() => ownedSymbols(names, Uint32Array.of(2), Uint32Array.of(1), -1, 1000, ...mod)).toThrow(RangeError);
    expect(() => ownedSymbols(names, Uint32Array.of(2), Uint32Array.of(1), -1, 2048, mod[0], Uint32Array.of(2, 3))).toThrow(RangeError);
    expect(() => ownedSymbols(names, Uint32Array.of(0xffffffff), Uint32Array.of(1), -1, 2048, ...mod)).toThrow(RangeError);
    expect(() => (ownedSymbols as (...a: unknown[]) => unknown)(names, Uint32Array.of(2))).toThrow(TypeError);
  });
});

describe('ExportBatch and OwnedSymbols', () => {
  it('a name with a char above 0xff has no bytes: the batch declines and replays every export instead', () => {
    const mods = modules(2);
    const batch = new ExportBatch();
    batch.add(['plain', 'x\u0100y'], mods[1]);
    batch.add(['one'], mods[0]);
    expect(batch.owned(-1, mods)).toBeNull();
    const seen: [string, number][] = [];
    batch.replay((name, mod) => seen.push([name, mod.idx]));
    expect(seen).toEqual([
      ['plain', 1],
      ['x\u0100y', 1],
      ['one', 0],
    ]);
  });
  it('strings and bytes made from each other', () => {
    const s = OwnedSymbols.ofStrings(['ab', '', 'c\xff'], ['m', 'nn', 'm'], Uint32Array.of(0, 1, 0));
    expect(Buffer.from(s.nameBytes.bytes!).toString('latin1')).toBe('abc\xff');
    expect([...s.nameBytes.lengths]).toEqual([2, 0, 2]);
    expect([...s.modnameBytes.lengths]).toEqual([1, 2, 1]);
    expect(OwnedSymbols.ofStrings(['\u0100'], ['m'], Uint32Array.of(0)).nameBytes.bytes).toBeNull();
    const b = OwnedSymbols.ofBytes(s.nameBytes, s.modnameBytes, s.priorities);
    expect([b.names, b.modnames, b.count]).toEqual([['ab', '', 'c\xff'], ['m', 'nn', 'm'], 3]);
  });
});
