// The stat keys of depmod's scan cache (src/depmod/stat-keys.ts): the addon's batch stat and the
// fs.statSync fallback give the same words, and every part of a file's stat is in them.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { KEY_WORDS, keyCtimeNs, keyDev, keyOf, oldOnDevice, statKeys, statKeysInBackground, useNativeStatKeys } from '../../src/depmod/stat-keys';
import { tmpRoot } from './support';

const dir = tmpRoot('stat-keys');

describe('stat keys', () => {
  afterAll(() => {
    useNativeStatKeys(true);
  });

  it('the addon and fs.statSync give the same words', async () => {
    const file = path.join(dir, 'a.ko');
    fs.writeFileSync(file, 'x'.repeat(1234));
    fs.symlinkSync('a.ko', path.join(dir, 'link.ko'));
    // times before 1970 and with nanoseconds: seconds are floored, as the kernel keeps them
    const old = path.join(dir, 'old.ko');
    fs.writeFileSync(old, '');
    fs.utimesSync(old, new Date(-1250), new Date(-1250));
    // a name that is not UTF-8, held as a binary string (its chars are its bytes), as the walk gives it
    const odd = `${dir}/b\xffd.ko`;
    fs.writeFileSync(Buffer.from(odd, 'latin1'), 'y'.repeat(77));
    const paths = [file, path.join(dir, 'link.ko'), old, path.join(dir, 'missing.ko'), '/', `${file}\0x`, path.join(dir, 'dangling.ko'), odd];
    fs.symlinkSync('nowhere', path.join(dir, 'dangling.ko'));
    expect(useNativeStatKeys(true), 'the native helper is built (npm run build)').toBe(true);
    const native = statKeys(paths);
    // the same on the thread pool, also for no paths and a long path
    expect([...(await statKeysInBackground(paths))]).toEqual([...native]);
    expect((await statKeysInBackground([])).length).toBe(0);
    expect(keyOf(await statKeysInBackground([`${dir}/${'x'.repeat(10_000)}`]), 0)).toBeUndefined();
    expect(useNativeStatKeys(false)).toBe(false);
    const fallback = statKeys(paths);
    expect([...native]).toEqual([...fallback]);
    expect([...(await statKeysInBackground(paths))]).toEqual([...fallback]);
    expect(native.length).toBe(KEY_WORDS * paths.length);
    // the link is its target; the missing, NUL-bearing and dangling paths have no key
    expect(keyOf(native, 1)).toEqual(keyOf(native, 0));
    expect([3, 5, 6].map((k) => keyOf(native, k))).toEqual([undefined, undefined, undefined]);
    expect(keyOf(native, 7)).toBeDefined();
    const st = fs.statSync(file, { bigint: true });
    const key = keyOf(native, 0)!;
    expect(keyCtimeNs(key)).toBe(st.ctimeNs);
    expect(keyDev(key)).toBe(st.dev);
    expect(key[2] + key[3] * 2 ** 32).toBe(Number(st.ino));
    expect(key[4]).toBe(1234);
    const before = fs.statSync(old, { bigint: true });
    expect(before.mtimeNs).toBeLessThan(0n);
    expect(keyOf(native, 2)![8]).toBe(Number(((before.mtimeNs % 1_000_000_000n) + 1_000_000_000n) % 1_000_000_000n));
  });

  it('oldOnDevice says what keyDev and keyCtimeNs say, at every boundary', () => {
    // keys as statKeys lays them out: device words 0-1, ctime seconds words 9-10 (signed), nanoseconds word 11
    const key = (dev: bigint, sec: bigint, nanos: number): Uint32Array => {
      const k = new Uint32Array(KEY_WORDS);
      const d = BigInt.asUintN(64, dev);
      const s = BigInt.asUintN(64, sec);
      [k[0], k[1], k[9], k[10], k[11]] = [Number(d & 0xffffffffn), Number(d >> 32n), Number(s & 0xffffffffn), Number(s >> 32n), nanos];
      return k;
    };
    const secs = [0n, 1n, -1n, 1_700_000_000n, 0xffffffffn, 0x100000000n, -0x100000000n, 0x7fffffffffffffffn, -0x8000000000000000n];
    const nanos = [0, 1, 499_999_999, 999_999_999];
    const devs = [0n, 2049n, 0x100000000n + 2049n, 0xffffffffffffffffn];
    const keys = devs.flatMap((d) => secs.flatMap((s) => nanos.map((n) => key(d, s, n))));
    const horizons = [...secs.flatMap((s) => [-1n, 0n, 1n, 500_000_000n].map((n) => s * 1_000_000_000n + n)), 2n ** 70n, -(2n ** 70n)];
    let checked = 0;
    for (const dev of devs) {
      for (const horizon of horizons) {
        const old = oldOnDevice(dev, horizon);
        for (const k of keys) {
          expect(old(k), `dev ${dev} horizon ${horizon} key ${keyDev(k)} ${keyCtimeNs(k)}`).toBe(keyDev(k) === dev && keyCtimeNs(k) < horizon);
          checked++;
        }
      }
    }
    expect(checked).toBe(devs.length * horizons.length * keys.length);
  });

  it('refuses what is not a list of strings', () => {
    useNativeStatKeys(true);
    expect(() => statKeys([1 as unknown as string])).toThrow(TypeError);
    expect(() => statKeys('x' as unknown as string[])).toThrow(TypeError);
    expect(() => statKeysInBackground([1 as unknown as string])).toThrow(TypeError);
    expect(() => statKeysInBackground('x' as unknown as string[])).toThrow(TypeError);
  });
});
