// Text fallbacks give the same answers as the binary indexes for the Debian tree.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BinaryIndex } from '../../src/indexes/binary';
import { openTextIndex } from '../../src/indexes/text';
import { moduleDir } from '../support/reference';

const MODDIR = moduleDir();

describe('text index fallback', () => {
  it('modules.dep: same line for every module', () => {
    const b = BinaryIndex.open(path.join(MODDIR, 'modules.dep.bin'))!;
    const t = openTextIndex(MODDIR, 'dep')!;
    const names = b.entries().map((e) => e.key);
    expect(names.length).toBeGreaterThan(1000);
    for (const n of names) expect(t.search(n)).toBe(b.search(n));
  });

  it('modules.alias, modules.symbols, modules.builtin, builtin aliases: same entries and dump', () => {
    for (const name of ['alias', 'symbols', 'builtin', 'builtinAlias'] as const) {
      const file = { alias: 'modules.alias.bin', symbols: 'modules.symbols.bin', builtin: 'modules.builtin.bin', builtinAlias: 'modules.builtin.alias.bin' }[name];
      const b = BinaryIndex.open(path.join(MODDIR, file))!;
      const t = openTextIndex(MODDIR, name)!;
      expect(t.dump('alias ')).toBe(b.dump('alias '));
    }
  });

  it('wildcard search: same modules in the same order', () => {
    const b = BinaryIndex.open(path.join(MODDIR, 'modules.alias.bin'))!;
    const t = openTextIndex(MODDIR, 'alias')!;
    for (const key of ['net_pf_40', 'pci:v00008086d000010D3sv00001234sd00005678bc02sc00i00', 'fs_xfs', 'nothing']) {
      expect(t.searchWild(key)).toEqual(b.searchWild(key));
    }
  });

  it('is undefined when the text file is missing too', () => {
    expect(openTextIndex('/nonexistent', 'dep')).toBeUndefined();
    expect(openTextIndex('/nonexistent', 'builtinAlias')).toBeUndefined();
  });
});
