// kmod's hash table order (src/depmod/hash.ts): the addon's hashOrder (native/hash_order.c) and the
// JavaScript one give the same order, for every tail length, bytes above 127 (signed chars in the
// hash's tail), keys that are prefixes of others, equal keys and any bucket count.
import { afterAll, describe, expect, it } from 'vitest';
import { hashOrder, superFastHash, useNativeHashOrder } from '../../src/depmod/hash';
import { loadNativeHashOrder } from '../../src/native-addon';
import { prng } from '../support/prng';

/** n binary-string keys: random lengths 0..40 and bytes 1..255, with prefixes and repeats among them */
function randomKeys(n: number, seed: number): string[] {
  const uniform = prng(seed);
  const next = (): number => Math.floor(uniform() * 0x100000000);
  const keys: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = next() % 10;
    if (r === 0 && keys.length > 0) {
      keys.push(keys[next() % keys.length]);
      continue;
    }
    if (r === 1 && keys.length > 0) {
      const k = keys[next() % keys.length];
      keys.push(k.slice(0, next() % (k.length + 1)));
      continue;
    }
    let k = '';
    const len = next() % 41;
    for (let j = 0; j < len; j++) k += String.fromCharCode(1 + (next() % 255));
    keys.push(k);
  }
  return keys;
}

interface Item {
  key: string;
  n: number;
}

function orderOf(keys: string[], buckets: number, native: boolean): number[] {
  expect(useNativeHashOrder(native)).toBe(native);
  return hashOrder(
    keys.map((key, n): Item => ({ key, n })),
    (item) => item.key,
    buckets,
  ).map((item) => item.n);
}

describe('hashOrder by the addon', () => {
  afterAll(() => {
    useNativeHashOrder(true);
  });

  it('gives the JavaScript order', () => {
    expect(loadNativeHashOrder(), 'the native helper is built (npm run build)').not.toBeNull();
    for (const [n, seed] of [
      [64, 1],
      [500, 2],
      [5000, 3],
    ]) {
      const keys = randomKeys(n, seed);
      // 2^16 buckets: nearly one key each, so that the order is the hashes' (most bits of a wrong hash show)
      for (const buckets of [1, 2, 512, 2048, 1 << 16]) expect(orderOf(keys, buckets, true), `${n} keys, ${buckets} buckets`).toEqual(orderOf(keys, buckets, false));
    }
  });

  it('keeps equal keys in their order and sorts a key before the keys it is a prefix of', () => {
    const keys = ['b', 'ab', 'a', 'b', 'a\xff', 'a\x01', 'ab', ...Array.from({ length: 64 }, (_, i) => `k${i}`)];
    const order = orderOf(keys, 1, true);
    expect(order.slice(0, 7)).toEqual([2, 5, 1, 6, 4, 0, 3]);
    expect(order).toEqual(orderOf(keys, 1, false));
  });

  it('leaves keys with a char above 0xff to JavaScript', () => {
    const keys = [...randomKeys(100, 4), 'x\u0100', 'x\u00ff'];
    expect(orderOf(keys, 1, true)).toEqual(orderOf(keys, 1, false));
  });

  it('refuses arguments it cannot take', () => {
    const fn = loadNativeHashOrder()!;
    const bytes = new Uint8Array(4);
    expect(() => fn(bytes, Uint32Array.of(2, 3), 4)).toThrow(/lengths exceed/);
    expect(() => fn(bytes, Uint32Array.of(1), 3)).toThrow(/power of two/);
    expect(() => fn(bytes, Uint32Array.of(1), 0)).toThrow(/power of two/);
    expect(() => fn(bytes, Uint32Array.of(1), 1 << 25)).toThrow(/power of two/);
    expect(() => fn(new Uint16Array(2) as unknown as Uint8Array, Uint32Array.of(1), 4)).toThrow(TypeError);
    expect(() => fn(bytes, [1] as unknown as Uint32Array, 4)).toThrow(TypeError);
    expect(Array.from(fn(bytes, new Uint32Array(0), 4))).toEqual([]);
  });

  it('hashes as the JavaScript superFastHash does (one key per bucket of 2^24)', () => {
    const keys = ['', 'a', 'ab', 'abc', 'abcd', 'abcde', '\xff', '\xff\x80', '\xff\x80x', '\x80\x81\x82\x83\x84\x85\x86'];
    const items = Array.from({ length: 64 }, (_, i) => keys[i % keys.length] + 'z'.repeat(Math.floor(i / keys.length)));
    const byHash = [...items.keys()].sort((a, b) => (superFastHash(items[a]) & 0xffffff) - (superFastHash(items[b]) & 0xffffff) || (items[a] < items[b] ? -1 : items[a] > items[b] ? 1 : 0));
    expect(orderOf(items, 1 << 24, true)).toEqual(byHash);
  });
});
