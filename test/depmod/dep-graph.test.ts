// The dependency graph's addon path (native/import_owners.c, dep-graph.ts nativeDependencies): its two
// functions on their own, malformed arguments included, and depmod's files against kmod 34.2's where
// the imports are dictionary references (a cached run, and a first run of enough modules).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { nativeFunction } from '../../src/native-addon';
import { buildTree, configDir, differingFiles, kmodtsDepmod, runBoth, snapshot, SYN_KVER, type SynModule } from './support';
import { prng } from '../support/prng';

const importOwners = nativeFunction('importOwners')!;
const importDeps = nativeFunction('importDeps')!;

/** names one after another (exports) or each followed by a NUL (a dictionary's) */
function joined(names: string[], nul: boolean): { bytes: Uint8Array; lengths: Uint32Array } {
  return { bytes: Buffer.from(names.map((n) => (nul ? `${n}\0` : n)).join(''), 'latin1'), lengths: Uint32Array.from(names, (n) => n.length) };
}

function owners(exports: [string, number][], imports: string[], prefix = -1): number[] {
  const e = joined(exports.map(([n]) => n), false);
  const d = joined(imports, true);
  return [...importOwners(e.bytes, e.lengths, Uint32Array.from(exports, ([, o]) => o), d.bytes, d.lengths, prefix)];
}

/** importDeps' result as one list per module */
function lists(result: Int32Array, n: number): number[][] {
  const out: number[][] = [];
  for (let i = 0, at = n; i < n; at = result[i], i++) out.push([...result.subarray(at, result[i])]);
  return out;
}

describe('importOwners (the addon)', () => {
  it('resolves as symbol_find: by name, a leading "." then the -P character dropped, -1 for none', () => {
    expect(owners([['alpha', 3], ['beta', 0], ['', 7]], ['alpha', '.alpha', '..alpha', 'gamma', 'beta', '', '.'])).toEqual([3, 3, -1, -1, 0, 7, 7]);
    expect(owners([['core', 2]], ['_core', '._core', '__core', 'core'], '_'.charCodeAt(0))).toEqual([2, 2, -1, 2]);
    // without a prefix, a name starting with '_' is itself
    expect(owners([['core', 2]], ['_core'])).toEqual([-1]);
  });
  it('compares names, not hashes, and takes a name given twice at its last owner', () => {
    // pairs with equal 32-bit FNV-1a
    expect(owners([['costarring', 1], ['liquid', 2]], ['declinate', 'costarring', 'macallums', 'liquid'])).toEqual([-1, 1, -1, 2]);
    expect(owners([['dup', 1], ['dup', 5]], ['dup'])).toEqual([5]);
  });
  it('many names: every one found, none invented', () => {
    const names = Array.from({ length: 5000 }, (_, k) => `sym_${k.toString(36)}_${(k * 7919) % 1000}`);
    const got = owners(names.map((n, k) => [n, k]), [...names, ...names.map((n) => `${n}x`)]);
    expect(got).toEqual([...names.map((_, k) => k), ...names.map(() => -1)]);
  });
  it('refuses arguments that do not add up', () => {
    const e = joined(['a', 'b'], false);
    const d = joined(['a'], true);
    const o = Uint32Array.of(0, 1);
    expect(() => importOwners(e.bytes, Uint32Array.of(1, 2), o, d.bytes, d.lengths, -1)).toThrow(RangeError);
    expect(() => importOwners(e.bytes, e.lengths, Uint32Array.of(0), d.bytes, d.lengths, -1)).toThrow(RangeError);
    // the last name's NUL may be left out (a scan's imports), no more
    expect(owners([['a', 4]], ['a'])).toEqual([4]);
    expect([...importOwners(e.bytes, e.lengths, o, d.bytes.subarray(0, 1), d.lengths, -1)]).toEqual([0]);
    expect(() => importOwners(e.bytes, e.lengths, o, d.bytes.subarray(0, 0), d.lengths, -1)).toThrow(RangeError);
    expect(() => importOwners(e.bytes, e.lengths, o, Buffer.from('a\0\0'), d.lengths, -1)).toThrow(RangeError);
    expect(() => importOwners(e.bytes, e.lengths, o, Buffer.from('a\0b\0'), d.lengths, -1)).toThrow(RangeError);
    expect(() => importOwners(e.bytes, e.lengths, Uint32Array.of(0, 0x80000000), d.bytes, d.lengths, -1)).toThrow(RangeError);
    expect(() => importOwners(e.bytes, e.lengths, Int32Array.of(0, 1) as never, d.bytes, d.lengths, -1)).toThrow(TypeError);
    expect(() => (importOwners as (...a: unknown[]) => unknown)(e.bytes, e.lengths)).toThrow(TypeError);
  });
});

describe('importDeps (the addon)', () => {
  it('each module: owners in the order first referenced, each once, weak bit ignored, -1 skipped', () => {
    const owners = Int32Array.of(2, -1, 0, 2, 1);
    const refs = Uint32Array.of(0, 1, 2, 3, 0x80000004, 2, /* second module */ 4, 4, 0x80000001, 0);
    const result = importDeps(refs, Uint32Array.of(0, 6, 10), Uint32Array.of(6, 4, 0), owners, 3);
    expect(lists(result, 3)).toEqual([[2, 0, 1], [1, 2], []]);
    expect(lists(importDeps(refs, new Uint32Array(0), new Uint32Array(0), owners, 3), 0)).toEqual([]);
  });
  it('refuses ranges, references and owners out of bounds', () => {
    const owners = Int32Array.of(0, 1);
    const refs = Uint32Array.of(0, 1);
    expect(() => importDeps(refs, Uint32Array.of(1), Uint32Array.of(2), owners, 2)).toThrow(RangeError);
    expect(() => importDeps(refs, Uint32Array.of(0xffffffff), Uint32Array.of(2), owners, 2)).toThrow(RangeError);
    expect(() => importDeps(refs, Uint32Array.of(0), Uint32Array.of(1, 1), owners, 2)).toThrow(RangeError);
    expect(() => importDeps(Uint32Array.of(5), Uint32Array.of(0), Uint32Array.of(1), owners, 2)).toThrow(RangeError);
    expect(() => importDeps(refs, Uint32Array.of(0), Uint32Array.of(2), owners, 1)).toThrow(RangeError);
    expect(() => importDeps(refs, Uint32Array.of(0), Uint32Array.of(2), Uint32Array.of(0, 1) as never, 2)).toThrow(TypeError);
  });
});

/**
 * A tree whose imports take every path of symbol_find: names exported by two modules (the later one in
 * module order owns them), "."-prefixed imports, -P's '_', names with equal FNV-1a keys, unknown and
 * weak imports. Providers import nothing; each user imports only from providers and earlier users (no
 * cycles).
 */
function randomTree(tag: string, seed: number, count: number): { root: string; moddir: string } {
  const random = prng(seed);
  const pick = <T>(a: T[]): T => a[Math.floor(random() * a.length)];
  const pool = ['costarring', 'declinate', 'liquid', 'macallums', 'altarage', 'zinke', '_under', '__twice'];
  const modules: SynModule[] = [];
  const providers = Math.floor(count / 3);
  for (let k = 0; k < providers; k++) {
    const exports = [`p${k}_own`, pick(pool), pick(pool)].filter((n, j, a) => a.indexOf(n) === j);
    modules.push({ rel: `kernel/p${k % 5}/prov${k}.ko`, exports });
  }
  const exported: string[] = [...pool, ...modules.flatMap((m) => m.exports ?? [])];
  for (let k = providers; k < count; k++) {
    const imports = new Set<string>();
    for (let j = Math.floor(random() * 6); j > 0; j--) {
      const name = pick(exported);
      imports.add(random() < 0.2 ? `.${name}` : random() < 0.1 ? `_${name}` : name);
    }
    if (random() < 0.2) imports.add(`missing_${k}`);
    const weakImports = random() < 0.3 ? [pick(exported)].filter((n) => !imports.has(n)) : [];
    const own = `u${k}_own`;
    modules.push({ rel: `kernel/u${k % 7}/user${k}.ko`, imports: [...imports], weakImports, exports: [own] });
    exported.push(own);
  }
  return buildTree(tag, modules);
}

describe('dependencies from dictionary references, against kmod 34.2', () => {
  const cases = [24, 90].flatMap((count, k) => [[], ['-P', '_']].map((prefix) => ({ count, seed: k + 1, prefix, tree: randomTree(`deps${count}`, k + 1, count) })));
  // the scan cache keeps no file changed within the last two seconds (a timestamp tick of FAT)
  const cacheable = Date.now() + 2300;
  for (const { count, seed, prefix, tree } of cases) {
    it(`${count} modules (seed ${seed}${prefix.length > 0 ? ', -P _' : ''}): the first run and a run from the cache write kmod's files`, async () => {
        await new Promise((r) => setTimeout(r, Math.max(0, cacheable - Date.now())));
        const args = [...prefix, '-C', configDir(tree.root, {}), '-b', tree.root, SYN_KVER];
        const r = await runBoth(args, tree.moddir, { reindex: true });
        expect(r.kmod.status).toBe(0);
        expect(r.kmodts).toEqual(r.kmod);
        expect(differingFiles(r.kmodFiles, r.kmodtsFiles)).toEqual([]);
        // the dependencies found in the tree at all (a tree where nothing needs anything proves little)
        expect(r.kmodFiles.get('modules.dep')!.toString().match(/: \S/g)?.length ?? 0).toBeGreaterThan(count / 3);
        expect(fs.readdirSync(tree.moddir)).toContain('modules.kmodts-cache.bin');
        const again = await kmodtsDepmod(args);
        expect(again).toEqual(r.kmod);
        expect(differingFiles(r.kmodFiles, snapshot(tree.moddir))).toEqual([]);
    });
  }
});
