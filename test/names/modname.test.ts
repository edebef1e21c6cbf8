import { describe, expect, it } from 'vitest';
import { aliasNormalize, modnameFromPath, modnameNormalize, pathEndsWithKmodExt, underscores, underscoresInPlace } from '../../src/names/modname';

describe('modnameNormalize (modname_normalize)', () => {
  it.each([
    ['snd-hda-intel', 'snd_hda_intel'],
    ['snd-hda-intel.ko.xz', 'snd_hda_intel'],
    ['ext4', 'ext4'],
    ['a.b.c', 'a'],
    ['.hidden', ''],
    ['', ''],
    ['x-[a-b]', 'x_[a_b]'], // no bracket rule for module names
    ['nul\0-x', 'nul'],
  ])('%j → %j', (input, out) => {
    expect(modnameNormalize(input)).toBe(out);
  });

  it('cuts at kmod\'s PATH_MAX buffer', () => {
    expect(modnameNormalize('a'.repeat(5000))).toBe('a'.repeat(4095));
  });
});

describe('modnameFromPath (path_to_modname)', () => {
  it.each([
    ['kernel/drivers/foo-bar.ko.zst', 'foo_bar'],
    ['/lib/modules/6.1/kernel/fs/ext4/ext4.ko', 'ext4'],
    ['plain', 'plain'],
    ['dir.d/mod-x.ko', 'mod_x'],
  ])('%j → %j', (input, out) => {
    expect(modnameFromPath(input)).toBe(out);
  });

  it('has no name for an empty basename', () => {
    expect(modnameFromPath('')).toBeNull();
    expect(modnameFromPath('some/dir/')).toBeNull();
  });
});

describe('pathEndsWithKmodExt (path_ends_with_kmod_ext)', () => {
  it('needs something before the extension', () => {
    for (const p of ['a.ko', 'a.ko.gz', 'a.ko.xz', 'a.ko.zst', '/x/.ko', './.ko.xz', '-.ko.zst']) expect([p, pathEndsWithKmodExt(p)]).toEqual([p, true]);
    for (const p of ['', '.ko', '.ko.gz', '.ko.xz', '.ko.zst', 'a.ko.bz2', 'a.ko.', 'a.kox', 'a.xz', 'ko']) expect([p, pathEndsWithKmodExt(p)]).toEqual([p, false]);
  });
});

describe('aliasNormalize (alias_normalize)', () => {
  it.each([
    ['snd-pcsp', 'snd_pcsp'],
    ['pci:v*d*[0-9a-f-]*-x', 'pci:v*d*[0-9a-f-]*_x'],
    ['usb:v1234p[0-9A-F]*', 'usb:v1234p[0-9A-F]*'],
    ['[[]-x', '[[]_x'],
    ['a[-]b-c[x-z]', 'a[-]b_c[x-z]'],
    ['', ''],
  ])('%j → %j', (input, out) => {
    expect(aliasNormalize(input)).toBe(out);
  });

  it.each(['a]b', ']', 'a[b', '[a-b', 'a[]]b', 'x[a\0]'])('rejects bad brackets in %j (-EINVAL)', (input) => {
    expect(aliasNormalize(input)).toBeNull();
  });

  it('stops at NUL', () => {
    expect(aliasNormalize('a-b\0c-d')).toBe('a_b');
  });

  it('cuts at kmod\'s PATH_MAX buffer', () => {
    expect(aliasNormalize('a-'.repeat(3000))).toBe('a_'.repeat(3000).slice(0, 4095));
  });
});

describe('underscores', () => {
  it('normalizes like aliasNormalize, without a length limit', () => {
    expect(underscores('my-mod')).toBe('my_mod');
    expect(underscores('a[-]-b')).toBe('a[-]_b');
    expect(underscores('x-'.repeat(3000))).toBe('x_'.repeat(3000));
  });

  it('fails on a missing word and on bad brackets', () => {
    expect(underscores(null)).toBeNull();
    expect(underscores(undefined)).toBeNull();
    expect(underscores('bad]')).toBeNull();
    expect(underscores('bad[')).toBeNull();
  });
});

describe('underscoresInPlace', () => {
  it('leaves what kmod\'s in-place loop leaves, also on failure', () => {
    expect(underscoresInPlace('a-b')).toEqual({ text: 'a_b', valid: true });
    expect(underscoresInPlace('a-b]-c')).toEqual({ text: 'a_b]-c', valid: false });
    expect(underscoresInPlace('x-[a-b')).toEqual({ text: 'x_[a-b', valid: false });
    expect(underscoresInPlace('x-[a-b]-[c')).toEqual({ text: 'x_[a-b]_[c', valid: false });
  });
});
