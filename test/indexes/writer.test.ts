import { describe, expect, it } from 'vitest';
import { BinaryIndex } from '../../src/indexes/binary';
import { IndexBatch, IndexBuilder, IndexCharacterError, useNativeIndexBuilder } from '../../src/indexes/writer';
import { loadNativeIndexBuilder, loadNativeIndexBuilderInBackground } from '../../src/native-addon';
import { prng } from '../support/prng';

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

describe('IndexBatch: the same bytes from the native helper (native/index_writer.c) and from IndexBuilder', () => {
  type Entry = [key: string, value: string, priority: number];
  const bothWays = (entries: Entry[]): { native: Buffer; js: Buffer } => {
    expect(useNativeIndexBuilder(true)).toBe(true);
    const a = new IndexBatch();
    for (const [k, v, p] of entries) expect(a.insert(k, v, p)).toBe(false);
    const native = a.serialize();
    const b = new IndexBuilder();
    for (const [k, v, p] of entries) b.insert(k, v, p);
    return { native, js: b.serialize() };
  };

  it('is built, and gives the 12-byte header for an empty index', () => {
    const r = bothWays([]);
    expect(hex(r.native)).toBe(hex(r.js));
    expect(r.native.length).toBe(12);
  });
  it('agrees on random tries: shared prefixes, splits, a key ending inside a prefix, empty keys and values, repeated keys, equal priorities', () => {
    const rand = prng(0x1d3e5);
    for (let round = 0; round < 300; round++) {
      const alphabet = 'ab:*-_0123456789xyz'.slice(0, 2 + Math.floor(rand() * 18));
      const n = Math.floor(rand() * 300);
      const entries: Entry[] = [];
      for (let k = 0; k < n; k++) {
        let key = '';
        const len = Math.floor(rand() * 24);
        for (let c = 0; c < len; c++) key += alphabet[Math.floor(rand() * alphabet.length)];
        if (rand() < 0.1 && entries.length > 0) key = entries[Math.floor(rand() * entries.length)][0];
        const value = rand() < 0.05 ? '' : `v${Math.floor(rand() * 40)}`;
        entries.push([key, value, Math.floor(rand() * 8)]);
      }
      const r = bothWays(entries);
      expect(hex(r.native), `round ${round}`).toBe(hex(r.js));
    }
  });
  it('agrees on a deep trie (keys thousands of characters long) and reads back', () => {
    const entries: Entry[] = [];
    for (let k = 0; k < 50; k++) entries.push(['p'.repeat(4000 + k * 7) + String.fromCharCode(33 + k), `deep${k}`, k]);
    entries.push(['p', 'short', 1]);
    const r = bothWays(entries);
    expect(r.native.equals(r.js)).toBe(true);
    const idx = new BinaryIndex(r.native, 'deep.bin');
    expect(idx.search('p'.repeat(4000) + '!')).toBe('deep0');
    expect(idx.search('p')).toBe('short');
  });
  it('takes keys as bytes (insertKeys) among string keys, with the same bytes natively and without the helper', () => {
    const rand = prng(0x5eed);
    for (let round = 0; round < 100; round++) {
      const entries: Entry[] = [];
      const batches = [new IndexBatch()];
      useNativeIndexBuilder(false);
      batches.push(new IndexBatch());
      useNativeIndexBuilder(true);
      const groups = Math.floor(rand() * 12);
      for (let g = 0; g < groups; g++) {
        const keys: string[] = [];
        const n = Math.floor(rand() * 5);
        for (let k = 0; k < n; k++) keys.push('ab:*_01'.slice(0, 1 + Math.floor(rand() * 7)).repeat(1 + Math.floor(rand() * 3)).slice(Math.floor(rand() * 3)));
        const value = `m${g}`;
        for (const key of keys) entries.push([key, value, g]);
        for (const b of batches) {
          if (rand() < 0.5) for (const key of keys) b.insert(key, value, g);
          else b.insertKeys(Buffer.from(keys.join(''), 'latin1'), Uint32Array.from(keys, (k) => k.length), value, g);
        }
      }
      const js = bothWays(entries).js;
      expect(hex(batches[0].serialize()), `round ${round}, native`).toBe(hex(js));
      try {
        useNativeIndexBuilder(false);
        expect(hex(batches[1].serialize()), `round ${round}, without the helper`).toBe(hex(js));
      } finally {
        useNativeIndexBuilder(true);
      }
    }
    expect(() => new IndexBatch().insertKeys(Buffer.from('k'), Uint32Array.of(1), 'valu\xe9', 0)).toThrow(IndexCharacterError);
    expect(() => new IndexBatch().insertKeys(Buffer.from('key'), Uint32Array.of(1, 1), 'v', 0)).toThrow(RangeError);
  });
  it('takes runs of entries (insertRun) with the same bytes, and the same error at the same entry', () => {
    const rand = prng(0x7a11);
    for (let round = 0; round < 50; round++) {
      const entries: Entry[] = [];
      const batch = new IndexBatch();
      for (let run = Math.floor(rand() * 6); run > 0; run--) {
        const part: Entry[] = [];
        for (let k = Math.floor(rand() * 20); k > 0; k--) part.push(['symbol:ab_*'.slice(0, Math.floor(rand() * 11)) + String(Math.floor(rand() * 50)), `m${Math.floor(rand() * 5)}`, Math.floor(rand() * 9)]);
        // the values as strings, or as bytes (insertRunBytes), in turn
        if (rand() < 0.5) batch.insertRun(part.map((e) => e[0]).join(''), part.map((e) => e[0].length), part.map((e) => e[1]), part.map((e) => e[2]));
        else batch.insertRunBytes(part.map((e) => e[0]).join(''), part.map((e) => e[0].length), Buffer.from(part.map((e) => e[1]).join(''), 'latin1'), part.map((e) => e[1].length), part.map((e) => e[2]));
        entries.push(...part);
      }
      expect(hex(batch.serialize()), `round ${round}`).toBe(hex(bothWays(entries).js));
    }
    // the first bad string in insert()'s order: the key before the value, entry by entry
    const errorOf = (f: () => void): string => {
      try {
        f();
      } catch (err) {
        return (err as Error).message;
      }
      return 'none';
    };
    const bad: Entry[] = [['ok', 'fine', 0], ['k', 'valu\xe9', 1], ['k\xe9y', 'x', 2]];
    const one = new IndexBatch();
    const expected = errorOf(() => bad.forEach(([k, v, p]) => one.insert(k, v, p)));
    expect(expected).toMatch(/valu/);
    expect(errorOf(() => new IndexBatch().insertRun(bad.map((e) => e[0]).join(''), bad.map((e) => e[0].length), bad.map((e) => e[1]), bad.map((e) => e[2])))).toBe(expected);
    expect(() => new IndexBatch().insertRun('abc', [1, 1], ['x', 'y'], [0, 0])).toThrow(RangeError);
    const badBytes = Buffer.from(bad.map((e) => e[1]).join(''), 'latin1');
    expect(errorOf(() => new IndexBatch().insertRunBytes(bad.map((e) => e[0]).join(''), bad.map((e) => e[0].length), badBytes, bad.map((e) => e[1].length), bad.map((e) => e[2])))).toBe(expected);
    // lengths that do not add up to the bytes, or counts that differ
    expect(() => new IndexBatch().insertRunBytes('ab', [1, 1], Buffer.from('xyz'), [1, 1], [0, 0])).toThrow(RangeError);
    expect(() => new IndexBatch().insertRunBytes('ab', [1, 1], Buffer.from('xy'), [2], [0, 0])).toThrow(RangeError);
    expect(() => new IndexBatch().insertRunBytes('ab', [1, 1], Buffer.from('xy'), [1, 1], [0])).toThrow(RangeError);
  });
  it('falls back to IndexBuilder without the helper, with the same checks', () => {
    try {
      expect(useNativeIndexBuilder(false)).toBe(false);
      const a = new IndexBatch();
      a.insert('k', 'v', 3);
      expect(hex(a.serialize())).toBe(hex(bothWays([['k', 'v', 3]]).js));
    } finally {
      useNativeIndexBuilder(true);
    }
    const a = new IndexBatch();
    expect(() => a.insert('caf\xe9', 'x', 0)).toThrow(IndexCharacterError);
    expect(() => a.insert('ok', 'valu\xe9', 0)).toThrow(/only 7-bit ASCII is supported/);
  });
  it("refuses the helper's arguments when their lengths do not fit", () => {
    const build = loadNativeIndexBuilder()!;
    const u8 = (s: string) => Buffer.from(s, 'latin1');
    expect(() => build(u8('ab'), Uint32Array.of(3), u8('v'), Uint32Array.of(1), Uint32Array.of(0))).toThrow(RangeError);
    expect(() => build(u8('ab'), Uint32Array.of(2), u8('v'), Uint32Array.of(1, 0), Uint32Array.of(0))).toThrow(RangeError);
    expect(() => (build as unknown as (...a: unknown[]) => Buffer)(u8('ab'), [2], u8('v'), Uint32Array.of(1), Uint32Array.of(0))).toThrow(TypeError);
    expect(new BinaryIndex(build(u8('ab'), Uint32Array.of(2), u8('v'), Uint32Array.of(1), Uint32Array.of(0)), 'x.bin').search('ab')).toBe('v');
  });
  it('takes where each value starts, so that entries share one, and refuses starts that do not fit', async () => {
    const build = loadNativeIndexBuilder()!;
    const inBackground = loadNativeIndexBuilderInBackground()!;
    const u8 = (s: string) => Buffer.from(s, 'latin1');
    // keys a, bb, c: values "mod1" (shared by a and c) and "m2"
    const args = [u8('abbc'), Uint32Array.of(1, 2, 1), u8('mod1m2'), Uint32Array.of(4, 2, 4), Uint32Array.of(0, 1, 2)] as const;
    const shared = build(...args, Uint32Array.of(0, 4, 0));
    const plain = build(u8('abbc'), Uint32Array.of(1, 2, 1), u8('mod1m2mod1'), Uint32Array.of(4, 2, 4), Uint32Array.of(0, 1, 2));
    expect(shared.equals(plain)).toBe(true);
    expect((await inBackground(...args, Uint32Array.of(0, 4, 0))).equals(plain)).toBe(true);
    const idx = new BinaryIndex(shared, 'x.bin');
    expect([idx.search('a'), idx.search('bb'), idx.search('c')]).toEqual(['mod1', 'm2', 'mod1']);
    // past the values, overflowing them, one start too few, not a Uint32Array
    for (const fn of [build, inBackground] as ((...a: unknown[]) => unknown)[]) {
      expect(() => fn(...args, Uint32Array.of(0, 5, 0))).toThrow(/lengths beyond the bytes given/);
      expect(() => fn(...args, Uint32Array.of(0, 0xffffffff, 0))).toThrow(RangeError);
      expect(() => fn(...args, Uint32Array.of(0, 4))).toThrow(/differ in size/);
      expect(() => fn(...args, [0, 4, 0])).toThrow(TypeError);
    }
    // undefined: each value follows the one before
    expect(build(...args.slice(0, 2), u8('mod1m2mod1'), ...args.slice(3), undefined).equals(plain)).toBe(true);
  });
  it('builds on the thread pool (serializeInBackground) the same bytes as serialize, several builds at once, natively and without the helper', async () => {
    const rand = prng(0xb6);
    const batches: IndexBatch[] = [];
    const expected: string[] = [];
    for (let round = 0; round < 40; round++) {
      const entries: Entry[] = [];
      for (let k = Math.floor(rand() * (round < 4 ? 20000 : 400)); k > 0; k--) {
        entries.push([`${'ab:*_0'.slice(0, 1 + Math.floor(rand() * 6)).repeat(1 + Math.floor(rand() * 4))}${Math.floor(rand() * 900)}`, `m${Math.floor(rand() * 30)}`, Math.floor(rand() * 9)]);
      }
      const batch = new IndexBatch();
      for (const [k, v, p] of entries) batch.insert(k, v, p);
      batches.push(batch);
      expected.push(hex(bothWays(entries).js));
    }
    // all started before any is waited for: they run on the pool's threads side by side
    const built = await Promise.all(batches.map((b) => b.serializeInBackground()));
    built.forEach((buf, k) => expect(hex(buf), `batch ${k}`).toBe(expected[k]));
    try {
      useNativeIndexBuilder(false);
      expect(hex(await batches[5].serializeInBackground())).toBe(expected[5]);
    } finally {
      useNativeIndexBuilder(true);
    }
  });
  it("refuses buildIndexInBackground's malformed arguments at once, as buildIndex's", async () => {
    const build = loadNativeIndexBuilderInBackground()!;
    expect(build).not.toBeNull();
    const loose = build as unknown as (...a: unknown[]) => Promise<Buffer>;
    const u8 = (s: string) => Buffer.from(s, 'latin1');
    expect(() => build(u8('ab'), Uint32Array.of(3), u8('v'), Uint32Array.of(1), Uint32Array.of(0))).toThrow(/^buildIndexInBackground: lengths beyond the bytes given$/);
    expect(() => build(u8('ab'), Uint32Array.of(2), u8('v'), Uint32Array.of(2), Uint32Array.of(0))).toThrow(RangeError);
    expect(() => build(u8('ab'), Uint32Array.of(2), u8('v'), Uint32Array.of(1, 0), Uint32Array.of(0))).toThrow(/differ in size/);
    expect(() => loose(u8('ab'), [2], u8('v'), Uint32Array.of(1), Uint32Array.of(0))).toThrow(TypeError);
    expect(() => loose(u8('ab'), Uint32Array.of(2), 'v', Uint32Array.of(1), Uint32Array.of(0))).toThrow(/unexpected argument type/);
    expect(() => loose(u8('ab'), Uint32Array.of(2), u8('v'), Uint32Array.of(1), Int32Array.of(0))).toThrow(TypeError);
    expect(() => loose(u8('ab'), Uint32Array.of(2), u8('v'), Uint32Array.of(1))).toThrow(/missing arguments/);
    expect(() => loose()).toThrow(TypeError);
    expect(() => loose(null, undefined, 1, {}, 'x')).toThrow(TypeError);
    expect((await build(new Uint8Array(0), new Uint32Array(0), new Uint8Array(0), new Uint32Array(0), new Uint32Array(0))).length).toBe(12);
    expect(new BinaryIndex(await build(u8('ab'), Uint32Array.of(2), u8('v'), Uint32Array.of(1), Uint32Array.of(0)), 'x.bin').search('ab')).toBe('v');
  });
});
