// The stat keys of depmod's scan cache (src/depmod/stat-keys.ts): the addon's batch stat and the
// fs.statSync fallback give the same words, and every part of a file's stat is in them.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { KEY_WORDS, keyCtimeNs, keyDev, keyOf, statKeys, statKeysInBackground, useNativeStatKeys } from '../../src/depmod/stat-keys';
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
    const paths = [file, path.join(dir, 'link.ko'), old, path.join(dir, 'missing.ko'), '/', `${file}\0x`, path.join(dir, 'dangling.ko')];
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

  it('refuses what is not a list of strings', () => {
    useNativeStatKeys(true);
    expect(() => statKeys([1 as unknown as string])).toThrow(TypeError);
    expect(() => statKeys('x' as unknown as string[])).toThrow(TypeError);
    expect(() => statKeysInBackground([1 as unknown as string])).toThrow(TypeError);
    expect(() => statKeysInBackground('x' as unknown as string[])).toThrow(TypeError);
  });
});
