// Which paths are regular files, and their sizes (src/file/regular-files.ts, modinfo's is_module_filename
// for all its arguments): the addon's one call and the fs.statSync fallback agree on every kind of path.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { regularFileSizes, useNativeRegularFileSizes } from '../../src/file/regular-files';
import { loadNativeAddon } from '../../src/native-addon';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-regular-files-'));

afterAll(() => {
  useNativeRegularFileSizes(true);
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('regularFileSizes', () => {
  it('the addon and fs.statSync give the same answers for every kind of path', () => {
    const file = path.join(tmp, 'a.ko');
    fs.writeFileSync(file, 'x'.repeat(1234));
    fs.writeFileSync(path.join(tmp, 'empty.ko'), '');
    fs.symlinkSync('a.ko', path.join(tmp, 'link.ko'));
    fs.symlinkSync('nowhere', path.join(tmp, 'dangling.ko'));
    fs.mkdirSync(path.join(tmp, 'dir.ko'));
    fs.symlinkSync('dir.ko', path.join(tmp, 'dirlink.ko'));
    // a name that is not UTF-8, held as a binary string (its chars are its bytes), as argv gives it
    const odd = `${tmp}/b\xffd.ko`;
    fs.writeFileSync(Buffer.from(odd, 'latin1'), 'y'.repeat(77));
    // and one that is UTF-8 ("é" as its two bytes), also given as an ordinary string
    const utf8 = `${tmp}/caf\u00e9.ko`;
    fs.writeFileSync(utf8, 'z'.repeat(5));
    const paths = [
      file, path.join(tmp, 'empty.ko'), path.join(tmp, 'link.ko'), path.join(tmp, 'dangling.ko'), path.join(tmp, 'dir.ko'),
      path.join(tmp, 'dirlink.ko'), path.join(tmp, 'missing.ko'), `${file}/below.ko`, `${file}\0x`, '', '/dev/null', odd,
      Buffer.from(utf8, 'utf8').toString('latin1'), `${tmp}/${'x'.repeat(10_000)}.ko`, `a\u0100b.ko`,
    ];
    const want = [1234, 0, 1234, undefined, undefined, undefined, undefined, undefined, undefined, undefined, undefined, 77, 5, undefined, undefined];
    expect(useNativeRegularFileSizes(true), 'the native helper is built (npm run build)').toBe(true);
    expect(regularFileSizes(paths)).toEqual(want);
    expect(regularFileSizes([])).toEqual([]);
    expect(useNativeRegularFileSizes(false)).toBe(false);
    expect(regularFileSizes(paths)).toEqual(want);
  });

  it('the addon refuses what is not an array of strings with a TypeError, not a crash', () => {
    const addon = loadNativeAddon();
    if (addon instanceof Error) throw addon;
    const call = addon.regularFileSizes as unknown as (...a: unknown[]) => unknown;
    expect(() => call()).toThrow(TypeError);
    expect(() => call('a.ko')).toThrow(/paths must be an array/);
    expect(() => call([1, 2])).toThrow(/paths must be strings/);
    expect(() => call([{}])).toThrow(TypeError);
  });
});
