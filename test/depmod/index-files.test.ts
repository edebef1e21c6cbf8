// The addon's text makers for depmod's files (index-files.ts): pairLines (modules.symbols' lines) and
// depLines (modules.dep's lines and modules.dep.bin's values), against plain JavaScript and on
// malformed arguments. The depmod differentials compare the files they make with kmod 34.2's; here
// also what a full disk leaves (as root: a small tmpfs as the output directory).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { nativeFunction } from '../../src/native-addon';
import { runKmodts } from '../support/reference';
import { buildTree, configDir, differingFiles, kmodDepmod, kmodtsDepmod, runBoth, snapshot, SYN_KVER, temporaryFiles, tmpRoot } from './support';
import { prng } from '../support/prng';

const pairLines = nativeFunction('pairLines')!;
const depLines = nativeFunction('depLines')!;

function bytes(parts: string[]): [Buffer, Uint32Array] {
  return [Buffer.from(parts.join(''), 'latin1'), Uint32Array.from(parts, (p) => p.length)];
}

describe('pairLines (the addon)', () => {
  it('head, key, mid, value, tail for each pair in order; binary bytes kept', () => {
    const [k, kl] = bytes(['symbol:a', 'symbol:\xe9t\xe9', '']);
    const [v, vl] = bytes(['mod_a', 'm\xff', 'x']);
    expect(pairLines(k, kl, v, vl, 'alias ', ' ', '\n').toString('latin1')).toBe('alias symbol:a mod_a\nalias symbol:\xe9t\xe9 m\xff\nalias  x\n');
    expect(pairLines(k, kl, v, vl, '', '', '').toString('latin1')).toBe('symbol:amod_asymbol:\xe9t\xe9m\xffx');
    expect(pairLines(new Uint8Array(0), new Uint32Array(0), new Uint8Array(0), new Uint32Array(0), 'a', 'b', 'c').length).toBe(0);
  });
  it('refuses lengths that do not add up, pairs that differ in number and long or missing strings', () => {
    const [k, kl] = bytes(['ab', 'c']);
    const [v, vl] = bytes(['x', 'y']);
    expect(() => pairLines(k, Uint32Array.of(2, 2), v, vl, '', ' ', '\n')).toThrow(RangeError);
    expect(() => pairLines(k, kl, v, Uint32Array.of(1), '', ' ', '\n')).toThrow(RangeError);
    expect(() => pairLines(k, kl, v, Uint32Array.of(1, 0xffffffff), '', ' ', '\n')).toThrow(RangeError);
    expect(() => pairLines(k, kl, v, vl, 'x'.repeat(64), ' ', '\n')).toThrow(TypeError);
    expect(() => (pairLines as (...a: unknown[]) => unknown)(k, kl, v, vl, '', 1, '\n')).toThrow(TypeError);
    expect(() => (pairLines as (...a: unknown[]) => unknown)(k, kl)).toThrow(TypeError);
  });
});

/** dep-graph.ts allDeps and index-files.ts depLines, plainly: every module reachable, by sort index */
function expectedLines(direct: number[][], sortIdx: number[], names: string[]): string[] {
  return direct.map((_, m) => {
    const seen = new Set<number>();
    const stack = [m];
    while (stack.length > 0) {
      for (const d of direct[stack.pop()!]) {
        if (seen.has(d)) continue;
        seen.add(d);
        stack.push(d);
      }
    }
    const list = [...seen].sort((a, b) => sortIdx[a] - sortIdx[b]);
    return [`${names[m]}:`, ...list.map((d) => names[d])].join(' ');
  });
}

function args(direct: number[][], sortIdx: number[], names: string[]): Parameters<typeof depLines> {
  const ends = new Uint32Array(direct.length);
  let total = 0;
  direct.forEach((d, k) => (ends[k] = total += d.length));
  const [nb, nl] = bytes(names);
  return [Int32Array.from(direct.flat()), ends, Int32Array.from(sortIdx), nb, nl];
}

describe('depLines (the addon)', () => {
  it('gives what the JavaScript walk gives, on random acyclic graphs', () => {
    const random = prng(7);
    for (let round = 0; round < 40; round++) {
      const n = 1 + Math.floor(random() * 60);
      // module k needs only modules after it: acyclic; their topological places are a shuffle
      const direct = Array.from({ length: n }, (_, k) => {
        const deps = new Set<number>();
        for (let j = Math.floor(random() * 4); j > 0 && k + 1 < n; j--) deps.add(k + 1 + Math.floor(random() * (n - k - 1)));
        return [...deps];
      });
      const sortIdx = Array.from({ length: n }, (_, k) => k).sort(() => random() - 0.5);
      const names = Array.from({ length: n }, (_, k) => `kernel/d${k % 3}/m\xe9${k}.ko`);
      const [text, values, lengths] = depLines(...args(direct, sortIdx, names));
      const lines = expectedLines(direct, sortIdx, names);
      expect(text.toString('latin1')).toBe(lines.map((l) => `${l}\n`).join(''));
      expect(values.toString('latin1')).toBe(lines.join(''));
      expect([...lengths]).toEqual(lines.map((l) => l.length));
    }
  });
  it('no modules: nothing', () => {
    const [text, values, lengths] = depLines(new Int32Array(0), new Uint32Array(0), new Int32Array(0), new Uint8Array(0), new Uint32Array(0));
    expect([text.length, values.length, lengths.length]).toEqual([0, 0, 0]);
  });
  it('refuses indices out of bounds and lengths that do not add up', () => {
    const good = args([[1], []], [0, 1], ['a', 'b']);
    expect(() => depLines(...good)).not.toThrow();
    const bad = (k: number, v: unknown) => good.map((a, j) => (j === k ? v : a)) as Parameters<typeof depLines>;
    expect(() => depLines(...bad(0, Int32Array.of(2)))).toThrow(RangeError);
    expect(() => depLines(...bad(0, Int32Array.of(-1)))).toThrow(RangeError);
    expect(() => depLines(...bad(1, Uint32Array.of(2, 1)))).toThrow(RangeError);
    expect(() => depLines(...bad(1, Uint32Array.of(1)))).toThrow(RangeError);
    expect(() => depLines(...bad(2, Int32Array.of(0, 2)))).toThrow(RangeError);
    expect(() => depLines(...bad(4, Uint32Array.of(1, 2)))).toThrow(RangeError);
    expect(() => depLines(...bad(3, Uint32Array.of(1, 2)))).toThrow(TypeError);
  });
});

/** a tmpfs of `size` mounted at a new directory, or null where mounting is not allowed (not root) */
function smallDisk(size: string): string | null {
  if (process.getuid?.() !== 0) return null;
  const dir = tmpRoot('disk');
  return spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]).status === 0 ? dir : null;
}

describe('depmod on a full disk (kmod 34.2 differential)', () => {
  const tree = buildTree('fulldisk', [
    { rel: 'kernel/a.ko', exports: Array.from({ length: 300 }, (_, k) => `sym_${k}_${'x'.repeat(40)}`) },
    { rel: 'kernel/b.ko', imports: ['sym_1_' + 'x'.repeat(40)], modinfo: Array.from({ length: 100 }, (_, k): [string, string] => ['alias', `b-alias-${k}-${'y'.repeat(40)}`]) },
  ]);
  // the size of the first files written, and one that modules.symbols, written later, does not fit
  it.each(['8k', '24k'])('writes what fits, renames the truncated file into place and stops (%s)', async (size) => {
    const run = async (tool: 'kmod' | 'kmodts') => {
      const disk = smallDisk(size);
      if (disk === null) return null;
      try {
        const a = ['-C', configDir(tree.root, {}), '-b', tree.root, '-o', disk, SYN_KVER];
        const r = tool === 'kmod' ? kmodDepmod(a) : await kmodtsDepmod(a);
        return { r: { ...r, stderr: r.stderr.split(disk).join('/DISK') }, files: snapshot(path.join(disk, 'lib/modules', SYN_KVER)) };
      } finally {
        spawnSync('umount', [disk]);
      }
    };
    const k = await run('kmod');
    if (k === null) return; // mounting needs root
    const t = (await run('kmodts'))!;
    expect(k.r.stderr).toMatch(/Could not create index 'modules\.[a-z.]+'\. Output is truncated: No space left on device/);
    expect(t.r).toEqual(k.r);
    expect(differingFiles(k.files, t.files)).toEqual([]);
    expect([...t.files.keys()].sort()).toEqual([...k.files.keys()].sort());
  });
});

describe('depmod input files that are directories (kmod 34.2 differential)', () => {
  // each opens (O_RDONLY), and its first read fails: modules.order and modules.builtin read as empty,
  // modules.builtin.modinfo's stream error stops the run at modules.builtin.alias.bin
  it.each(['modules.order', 'modules.builtin', 'modules.builtin.modinfo'])('%s', async (name) => {
    const tree = buildTree(`dir-${name}`, [
      { rel: 'kernel/a.ko', exports: ['a_x'], modinfo: [['alias', 'char-major-10-1'], ['alias', 'devname:a']] },
      { rel: 'kernel/b.ko', imports: ['a_x'] },
    ]);
    fs.rmSync(path.join(tree.moddir, name));
    fs.mkdirSync(path.join(tree.moddir, name));
    for (const dry of [[], ['-n']]) {
      const r = await runBoth(['-C', configDir(tree.root, {}), '-b', tree.root, ...dry, SYN_KVER], tree.moddir);
      expect(r.kmodts).toEqual(r.kmod);
      expect(differingFiles(r.kmodFiles, r.kmodtsFiles)).toEqual([]);
      expect(temporaryFiles(tree.moddir)).toEqual([]);
    }
  });
});

describe('depmod -o where the output directory cannot be made (kmod 34.2 differential)', () => {
  const tree = buildTree('outdir', [{ rel: 'kernel/a.ko', exports: ['a_x'] }]);
  // /proc/self/lib: mkdir keeps saying ENOENT (Node's recursive mkdirSync loops there for ever); a file in
  // the way; as root, a read-only tmpfs (EROFS for the first directory made)
  const ro = tmpRoot('ro');
  const mounted = process.getuid?.() === 0 && spawnSync('mount', ['-t', 'tmpfs', '-o', 'ro', 'tmpfs', ro]).status === 0;
  const outs = ['/proc/self', path.join(tree.moddir, 'kernel/a.ko'), ...(mounted ? [ro] : [])];
  it.each(outs)('-o %s', async (out) => {
    const a = ['-C', configDir(tree.root, {}), '-b', tree.root, '-o', out, SYN_KVER];
    const k = kmodDepmod(a);
    expect(k.stderr).toMatch(/^depmod: FATAL: could not create directory .*: (No such file or directory|Not a directory|Read-only file system)\n$/);
    // the real CLI, under timeout(1): a mkdir loop must fail the test, not hang it
    expect(runKmodts('depmod', a, { wrap: ['timeout', '30'] })).toEqual(k);
  });
  afterAll(() => {
    if (mounted) spawnSync('umount', [ro]);
  });
});
