// modules.alias and modules.alias.bin made by the addon from the modules' alias pieces where they lie
// (native/alias_files.c: a cached run's in its scan cache's buffer, a new scan's copied), against the
// JavaScript path (alias-files.ts), on random modules; and its malformed arguments. The depmod
// differentials compare the files with kmod 34.2's.
import { afterAll, describe, expect, it } from 'vitest';
import { aliasPieces, buildAliasFiles, useNativeAliasFiles, type AliasPieces, type AliasSource, type BuiltFile } from '../../src/depmod/alias-files';
import { CachedAliasPieces, type CachedNumbers } from '../../src/depmod/cached-scan';
import { ImportDictionary } from '../../src/depmod/import-dictionary';
import { IndexBuilder } from '../../src/indexes/writer';
import { nativeFunction } from '../../src/native-addon';
import { prng } from '../support/prng';

const aliasFiles = nativeFunction('aliasFiles')!;
afterAll(() => useNativeAliasFiles(true));

/** a random alias: dashes, classes, the odd devname: and major-minor alias */
function randomAlias(rand: () => number): string {
  const pick = <T>(a: T[]): T => a[Math.floor(rand() * a.length)];
  const part = (): string => pick(['pci', 'usb', 'of', 'acpi', 'x-y', 'a_b', 'v*d*', 'sc[0-9]', 'fs-', 'char-major-10-1', 'devname:dm', '*']);
  let s = part();
  for (let n = Math.floor(rand() * 4); n > 0; n--) s += pick([':', '-', '_', '']) + part();
  return s;
}

interface Made {
  sources: AliasSource[];
  /** the same modules with their pieces in one buffer, as a scan cache holds them */
  cached: AliasSource[];
}

/** random modules with pieces, as new scans make them and as a cache holds them */
function randomModules(seed: number, count: number): Made {
  const rand = prng(seed);
  const sources: AliasSource[] = [];
  for (let k = 0; k < count; k++) {
    const modname = `mod_${k}_${Math.floor(rand() * 1000)}`;
    const aliases: string[] = [];
    for (let n = Math.floor(rand() * (rand() < 0.2 ? 0 : 12)); n > 0; n--) aliases.push(randomAlias(rand));
    const pieces = aliasPieces({ modname, aliases })!;
    expect(pieces, modname).not.toBeNull();
    sources.push({ modname, aliases, softdeps: [], weakdeps: [], pieces });
  }
  return { sources, cached: inOneBuffer(sources) };
}

/** the modules' pieces copied into one buffer (lines then keys; key lengths 8-aligned, after 8 bytes of "exports"), as CachedAliasPieces */
function inOneBuffer(sources: AliasSource[]): AliasSource[] {
  const textBytes = sources.reduce((n, s) => n + s.pieces!.lines.length + s.pieces!.keys.length, 0);
  const numbers = sources.reduce((n, s) => n + 8 + 8 * Math.ceil(s.pieces!.keyLengths.length / 2), 0);
  // texts at an odd offset of the buffer: placeRow must count it in
  const block = new ArrayBuffer(numbers + textBytes + 3);
  const texts = Buffer.from(block, numbers + 3, textBytes);
  const dictionary = ImportDictionary.parse(new ArrayBuffer(8), 0, 0, 0)!;
  let text = 0;
  let at = 0;
  return sources.map((s) => {
    const p = s.pieces!;
    texts.set(p.lines, text);
    texts.set(p.keys, text + p.lines.length);
    // one "export" (8 bytes of CRC) before the key lengths
    new Uint32Array(block, at + 8, p.keyLengths.length).set(p.keyLengths);
    const n: CachedNumbers = { block, at, exports: 1, imports: 0, keys: p.keyLengths.length, dictionary };
    const pieces = new CachedAliasPieces(texts, text, p.lines.length, p.keys.length, n);
    text += p.lines.length + p.keys.length;
    at += 8 + 8 * Math.ceil(p.keyLengths.length / 2);
    return { ...s, pieces };
  });
}

/** modules.alias and modules.alias.bin as made, with their messages and FATALs */
async function made(sources: AliasSource[], native: boolean): Promise<[string, string, BuiltFile['logs'], string | undefined]> {
  expect(useNativeAliasFiles(native), 'the native helper is built (npm run build)').toBe(native);
  const files = buildAliasFiles(sources, { dryRun: false, warnDuplicates: false, inBackground: true });
  const text = Buffer.from((await files['modules.alias'].data) as Uint8Array).toString('latin1');
  const bin = files['modules.alias.bin'];
  const binData = bin.data === null ? '' : Buffer.from((await bin.data) as Uint8Array).toString('hex');
  return [text, binData, bin.logs, bin.fatal];
}

describe('modules.alias and modules.alias.bin by the addon', () => {
  it('makes the same files as JavaScript from new scans\' pieces, from a cache\'s, and from both', async () => {
    for (const [seed, count] of [[1, 1], [2, 40], [3, 700]] as const) {
      const { sources, cached } = randomModules(seed, count);
      const expected = await made(sources, false);
      expect(expected[0].startsWith('# Aliases extracted from modules themselves.\n')).toBe(true);
      expect(await made(sources, true), `new, seed ${seed}`).toEqual(expected);
      expect(await made(cached, true), `cached, seed ${seed}`).toEqual(expected);
      expect(await made(cached, false), `cached in JavaScript, seed ${seed}`).toEqual(expected);
      const mixed = sources.map((s, k) => (k % 3 === 0 ? s : cached[k]));
      expect(await made(mixed, true), `mixed, seed ${seed}`).toEqual(expected);
    }
  });

  it('leaves modules without pieces, and names or keys above 127, to JavaScript', async () => {
    const { sources } = randomModules(4, 30);
    const without = sources.map((s, k) => (k === 7 ? { ...s, pieces: undefined } : s));
    expect(await made(without, true)).toEqual(await made(without, false));
    const names = new Uint32Array(0);
    expect(aliasFiles([], new Uint32Array(0), new Uint8Array(0), names, 'h')).not.toBeNull();
    // a module's name with a byte above 127: the index refuses it, with the JavaScript path's FATAL
    const odd = sources.map((s, k) => (k === 3 ? { ...s, modname: 'caf\xe9', pieces: aliasPieces({ modname: 'caf\xe9', aliases: ['x'] })! } : s));
    const js = await made(odd, false);
    expect(js[3]).toMatch(/7-bit/);
    expect(await made(odd, true)).toEqual(js);
    // a key above 127 in a cache's pieces (a damaged cache whose hash was made right)
    const bad: AliasPieces = { lines: Buffer.from('alias \xe9 m\n', 'latin1'), keys: Buffer.from('\xe9', 'latin1'), keyLengths: Uint32Array.of(1) };
    const row = Uint32Array.of(0, 0, 10, 10, 1, 1, 0, 1);
    expect(aliasFiles([Buffer.concat([Buffer.from(bad.lines), Buffer.from(bad.keys)]), new Uint8Array(bad.keyLengths.buffer)], row, Buffer.from('m'), Uint32Array.of(1), 'h')).toBeNull();
  });

  it('makes the header alone and an empty index for no modules', async () => {
    const result = aliasFiles([], new Uint32Array(0), new Uint8Array(0), new Uint32Array(0), '# head\n')!;
    expect(result[0].toString('latin1')).toBe('# head\n');
    expect((await result[1]).equals(new IndexBuilder().serialize())).toBe(true);
  });

  it('refuses arguments that do not add up', () => {
    const text = Buffer.from('alias a m\nab', 'latin1');
    const lengths = new Uint8Array(Uint32Array.of(1, 1).buffer);
    const good = Uint32Array.of(0, 0, 10, 10, 2, 1, 0, 2);
    const names = Buffer.from('m');
    const nameLengths = Uint32Array.of(1);
    const call = (...a: unknown[]): unknown => (aliasFiles as (...b: unknown[]) => unknown)(...a);
    expect(call([text, lengths], good, names, nameLengths, 'h')).not.toBeNull();
    const row = (word: number, value: number): Uint32Array => Uint32Array.from(good, (v, i) => (i === word ? value : v));
    const rangeErrors: [string, unknown[]][] = [
      ['a source that is not there', [[text, lengths], row(0, 2), names, nameLengths, 'h']],
      ['lines past their source', [[text, lengths], row(2, 13), names, nameLengths, 'h']],
      ['keys past their source', [[text, lengths], row(3, 11), names, nameLengths, 'h']],
      ['an offset that overflows', [[text, lengths], row(1, 0xffffffff), names, nameLengths, 'h']],
      ['misaligned key lengths', [[text, lengths], row(6, 2), names, nameLengths, 'h']],
      ['key lengths past their source', [[text, lengths], row(7, 3), names, nameLengths, 'h']],
      ['key lengths that do not add up', [[text, lengths], row(4, 1), names, nameLengths, 'h']],
      ['a row too short', [[text, lengths], good.subarray(0, 7), names, nameLengths, 'h']],
      ['names that do not add up', [[text, lengths], good, names, Uint32Array.of(2), 'h']],
      ['a name length per row', [[text, lengths], good, names, Uint32Array.of(1, 0), 'h']],
      ['too many sources', [Array.from({ length: 9 }, () => text), good, names, nameLengths, 'h']],
      ['a header too long', [[text, lengths], good, names, nameLengths, 'h'.repeat(200)]],
    ];
    for (const [what, a] of rangeErrors) expect(() => call(...a), what).toThrow(RangeError);
    const typeErrors: [string, unknown[]][] = [
      ['no arguments', []],
      ['sources not an array', [text, good, names, nameLengths, 'h']],
      ['a source not bytes', [[text, 'x'], good, names, nameLengths, 'h']],
      ['rows not 32-bit', [[text, lengths], Int32Array.from(good), names, nameLengths, 'h']],
      ['names not bytes', [[text, lengths], good, 'm', nameLengths, 'h']],
      ['a header not a string', [[text, lengths], good, names, nameLengths, 1]],
    ];
    for (const [what, a] of typeErrors) expect(() => call(...a), what).toThrow(TypeError);
  });
});
