// depmod's walk of the module tree (src/depmod/tree-walk.ts): the addon's walk (native/tree_walk.c) finds
// the same modules in the same order as the readdirSync walk, and gives the walk back to JavaScript
// (null) wherever that walk gives up for kmod's raw-order walk, which then reports what it met.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadNativeTreeWalk } from '../../src/native-addon';
import { RunContext } from '../../src/depmod/run-context';
import { ModuleTable, useNativeTreeWalk } from '../../src/depmod/tree-walk';
import { tmpRoot } from './support';

const root = tmpRoot('tree-walk');
let serial = 0;

/** a module directory made of `files` (relative path -> contents; a directory when it ends in '/') */
function tree(files: Record<string, string>): string {
  const dir = path.join(root, `t${serial++}`, 'lib/modules/1.0');
  fs.mkdirSync(dir, { recursive: true });
  for (const [rel, body] of Object.entries(files)) {
    const full = Buffer.from(`${dir}/${rel}`, 'latin1');
    if (rel.endsWith('/')) fs.mkdirSync(full, { recursive: true });
    else {
      fs.mkdirSync(path.dirname(full.toString('latin1')), { recursive: true });
      fs.writeFileSync(full, body);
    }
  }
  return dir;
}

/** the modules a walk finds (paths, in the table's order) and the messages it gave */
function walk(dir: string, native: boolean, excludes: string[] = [], externals: string[] = []): { paths: string[]; log: string[] } {
  expect(useNativeTreeWalk(native)).toBe(native);
  const log: string[] = [];
  const ctx = new RunContext({ kernelVersion: '1.0', basedir: dir.slice(0, -'/lib/modules/1.0'.length), log: (_p, m) => log.push(m) });
  ctx.cfg.excludes = new Set(excludes);
  ctx.cfg.externals = externals;
  const table = new ModuleTable(ctx);
  table.search();
  return { paths: [...table.byName.values()].map((m) => m.path), log };
}

function sameWalk(dir: string, excludes: string[] = [], externals: string[] = []): string[] {
  const js = walk(dir, false, excludes, externals);
  const native = walk(dir, true, excludes, externals);
  expect(native).toEqual(js);
  return native.paths;
}

describe('depmod tree walk', () => {
  afterAll(() => {
    useNativeTreeWalk(true);
    // rm(1) removes the deep test's tree, deeper than a path fs.rmSync can name
    execFileSync('rm', ['-rf', root]);
  });

  it('finds the same modules in the same order as the JavaScript walk', () => {
    const dir = tree({
      'kernel/b/z.ko': '',
      'kernel/b/a-b.ko.xz': '',
      'kernel/a/y.ko.zst': '',
      'kernel/a/x.ko.gz': '',
      'kernel/a/README': '',
      'kernel/a/.ko': '',
      'kernel/a/build/hidden.ko': '',
      'kernel/source/hidden2.ko': '',
      'kernel/skipme/hidden3.ko': '',
      'kernel/c/skipme': '',
      'kernel/empty/': '',
      'updates/B.ko': '',
      'updates/\xe9t\xe9.ko': '',
      'updates/b\xffd.ko': '',
      'updates/x.ko.bz2': '',
      'modules.dep': '',
    });
    fs.symlinkSync('z.ko', `${dir}/kernel/b/zz.ko`);
    // a link to a directory outside the tree: walked as a directory of the tree
    const outside = fs.mkdtempSync(path.join(root, 'outside-'));
    fs.writeFileSync(`${outside}/z2.ko`, '');
    fs.symlinkSync(outside, `${dir}/kernel/linked-dir`);
    const paths = sameWalk(dir, ['skipme', 'nul\0name', '\u0100']);
    expect(paths.map((p) => p.slice(dir.length + 1))).toEqual([
      'kernel/a/x.ko.gz',
      'kernel/a/y.ko.zst',
      'kernel/b/a-b.ko.xz',
      'kernel/b/z.ko',
      'kernel/b/zz.ko',
      'kernel/linked-dir/z2.ko',
      'updates/B.ko',
      'updates/b\xffd.ko',
      'updates/\xe9t\xe9.ko',
    ]);
  });

  it('a module name found twice: both walks give up the sorted order alike', () => {
    const dir = tree({ 'kernel/a/x.ko': '', 'kernel/b/m.ko': '' });
    fs.symlinkSync('a', `${dir}/kernel/c`);
    expect(loadNativeTreeWalk()!(dir, [])).toBe(`${dir}/kernel/a/x.ko\0${dir}/kernel/b/m.ko\0${dir}/kernel/c/x.ko`);
    expect(sameWalk(dir)).toHaveLength(2);
  });

  it('walks external directories after the module directory', () => {
    const dir = tree({ 'kernel/m.ko': '' });
    const ext = tree({ 'extra/e.ko': '', 'extra/build/f.ko': '' });
    expect(sameWalk(dir, [], [ext]).map((p) => path.basename(p))).toEqual(['m.ko', 'e.ko']);
  });

  it('gives the walk back where it would have to report something', () => {
    const walkModules = loadNativeTreeWalk();
    expect(walkModules, 'the native helper is built (npm run build)').not.toBeNull();
    const broken = tree({ 'kernel/m.ko': '' });
    fs.symlinkSync('nowhere', `${broken}/kernel/dangling.ko`);
    expect(walkModules!(broken, [])).toBeNull();
    const fifo = tree({ 'kernel/m.ko': '' });
    fs.mkdirSync(`${fifo}/kernel/sub`);
    execFileSync('mkfifo', [`${fifo}/kernel/sub/pipe`]);
    expect(walkModules!(fifo, [])).toBeNull();
    // excluded, the pipe is not met
    expect(walkModules!(fifo, ['sub'])).toBe(`${fifo}/kernel/m.ko`);
    const loop = tree({ 'kernel/m.ko': '' });
    fs.symlinkSync('.', `${loop}/kernel/self`);
    expect(walkModules!(loop, [])).toBeNull();
    expect(walkModules!(`${root}/missing`, [])).toBeNull();
    expect(walkModules!(`${broken}/kernel/m.ko`, [])).toBeNull();
    expect(walkModules!(`${broken}\0x`, [])).toBeNull();
    expect(walkModules!(tree({}), [])).toBe('');
    // and the walks still agree, messages included
    for (const dir of [broken, fifo, loop]) sameWalk(dir);
    expect(walk(broken, true).log.join('')).toContain('dangling.ko');
  });

  it('a long path: the walk gives up where readdir does', () => {
    const deep = tree({ 'kernel/m.ko': '' });
    // 22 levels of 200-byte names, made one level at a time from inside (mkdir of the whole path fails)
    const name = 'd'.repeat(200);
    const script = `for (let i = 0; i < 22; i++) { require('fs').mkdirSync('${name}'); process.chdir('${name}'); }`;
    execFileSync(process.execPath, ['-e', script], { cwd: deep });
    expect(loadNativeTreeWalk()!(deep, [])).toBeNull();
    expect(walk(deep, true)).toEqual(walk(deep, false));
  });

  it('walks on below PATH_MAX as kmod does by descriptor, and reports each module there as kmod_module_new_from_path fails', () => {
    const deep = tree({ 'kernel/m.ko': '' });
    // 25 levels of 200-byte names, each with a module, made one level at a time from inside
    const name = 'd'.repeat(200);
    const script = `const fs = require('fs'); for (let i = 0; i < 25; i++) { fs.mkdirSync('${name}'); process.chdir('${name}'); fs.writeFileSync('m' + i + '.ko', ''); fs.writeFileSync('notes', ''); }`;
    execFileSync(process.execPath, ['-e', script], { cwd: deep });
    const levels = Array.from({ length: 25 }, (_, i) => `${deep}/${`${name}/`.repeat(i + 1)}m${i}.ko`);
    const found = levels.filter((p) => p.length < 4096);
    const tooLong = levels.filter((p) => p.length >= 4096);
    expect(found.length).toBeGreaterThan(10);
    expect(tooLong.length).toBeGreaterThan(2);
    for (const native of [true, false]) {
      const { paths, log } = walk(deep, native);
      expect(paths.sort()).toEqual([`${deep}/kernel/m.ko`, ...found].sort());
      // (in readdir order: a level's module before or after its subdirectory)
      expect([...log].sort()).toEqual(tooLong.flatMap((p) => [`could not create module ${p}: File name too long\n`, `failed ${p}: File name too long\n`]).sort());
    }
  });

  it('refuses arguments of the wrong types', () => {
    const walkModules = loadNativeTreeWalk()!;
    expect(() => (walkModules as unknown as (...a: unknown[]) => unknown)(1, [])).toThrow(TypeError);
    expect(() => (walkModules as unknown as (...a: unknown[]) => unknown)('/', 'x')).toThrow(TypeError);
    expect(() => (walkModules as unknown as (...a: unknown[]) => unknown)('/', [1])).toThrow(TypeError);
    expect(() => (walkModules as unknown as (...a: unknown[]) => unknown)('/')).toThrow(TypeError);
  });
});
