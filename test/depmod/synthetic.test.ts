// Differential tests of depmod against kmod 34.2 on small synthetic trees: every depmod.d directive,
// duplicates, modules.order handling, symbol checks, cycles, builtin files, options and their errors.
// Each case runs kmod's depmod and kmodts' depmod on the same tree and compares stdout, stderr, exit
// status and every output file byte for byte.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  buildTree,
  configDir,
  differingFiles,
  kmodDepmod,
  kmodtsDepmod,
  normalizePointers,
  removeOutputs,
  runBoth,
  snapshot,
  SYN_KVER,
  temporaryFiles,
  crcOf,
  type SynModule,
  type SynTree,
} from './support';
import { prng } from '../support/prng';
import type { RunResult } from '../support/reference';

const base: SynModule[] = [
  { rel: 'kernel/lib/core.ko', exports: ['core_a', 'core_b'], modinfo: [['description', 'core']] },
  {
    rel: 'kernel/drivers/mid.ko.xz',
    imports: ['core_a', 'printk'],
    exports: ['mid_x'],
    modinfo: [
      ['alias', 'pci:v00001234d*sv*sd*bc*sc*i*'],
      ['alias', 'mid-alias'],
      ['alias', 'char-major-10-200'],
      ['alias', 'devname:mid'],
    ],
  },
  {
    rel: 'kernel/drivers/top-level.ko.zst',
    imports: ['mid_x', 'core_b'],
    modinfo: [
      ['softdep', 'pre: core post: mid'],
      ['weakdep', 'core'],
      ['alias', 'top-[ab]-x'],
    ],
  },
  { rel: 'kernel/fs/blk.ko', imports: ['core_a'], modinfo: [['alias', 'devname:blk0'], ['alias', 'block-major-8-0'], ['alias', 'blk']] },
  { rel: 'kernel/misc/nodev.ko', modinfo: [['alias', 'devname:nodev']] },
  { rel: 'kernel/misc/weak.ko.xz', imports: ['nosuch_symbol', 'core_a'], weakImports: ['weak_missing', 'mid_x'] },
  { rel: 'kernel/misc/brk.ko', modinfo: [['alias', 'foo]bar'], ['alias', 'ok[-]x-y'], ['weakdep', 'mid blk']] },
  { rel: 'kernel/misc/dupal.ko', modinfo: [['alias', 'same'], ['alias', 'same'], ['alias', 'z-other']] },
  { rel: 'kernel/misc/provider2.ko', exports: ['core_b', 'p2_only'] },
  { rel: 'kernel/misc/user2.ko', imports: ['p2_only', 'core_b'] },
];

async function expectSame(args: string[], tree: SynTree, opts: { outDir?: string; cwd?: string; before?: () => void } = {}) {
  const outDir = opts.outDir ?? tree.moddir;
  const r = await runBoth(args, outDir, opts);
  expect(r.kmodts.stderr).toBe(r.kmod.stderr);
  expect(r.kmodts.stdout).toBe(r.kmod.stdout);
  expect(r.kmodts.status).toBe(r.kmod.status);
  expect(differingFiles(r.kmod === undefined ? new Map() : r.kmodFiles, r.kmodtsFiles)).toEqual([]);
  expect(temporaryFiles(outDir)).toEqual([]);
  return r;
}

/** kmodts' run of `args` writes the files kmod's run just wrote in the tree (its result: `kmod`); kmodts' result */
async function expectSameFiles(args: string[], tree: SynTree, kmod: RunResult): Promise<RunResult> {
  const kmodFiles = snapshot(tree.moddir);
  removeOutputs(tree.moddir);
  const ours = await kmodtsDepmod(args);
  expect(differingFiles(kmodFiles, snapshot(tree.moddir))).toEqual([]);
  expect([ours.status, ours.stdout]).toEqual([kmod.status, kmod.stdout]);
  return ours;
}

function withConfig(tree: SynTree, files: Record<string, string>): string[] {
  return ['-C', configDir(tree.root, files), '-b', tree.root, SYN_KVER];
}

describe('depmod on a synthetic tree (kmod 34.2 differential)', () => {
  const tree = buildTree('base', base);
  const args = withConfig(tree, {});

  it('writes identical files (deps, aliases, softdep, weakdep, symbols, devname, builtin)', async () => {
    const r = await expectSame(args, tree);
    expect(r.kmod.status).toBe(0);
    // the tree exercises what it claims to
    const dep = r.kmodFiles.get('modules.dep')!.toString();
    expect(dep).toMatch(/^kernel\/drivers\/top-level\.ko\.zst: kernel\/misc\/provider2\.ko kernel\/drivers\/mid\.ko\.xz /m);
    expect(r.kmodFiles.get('modules.devname')!.toString()).toContain('mid mid c10:200');
    expect(r.kmod.stderr).toContain("Module 'nodev' has devname (nodev) but lacks major and minor information");
    expect(r.kmod.stderr).toContain('Unmatched bracket in foo]bar');
  });
  it('the real CLI (spawned bin/kmodts.js) behaves the same', async () => {
    const { runKmodts } = await import('../support/reference');
    const { kmodDepmod, snapshot, removeOutputs } = await import('./support');
    removeOutputs(tree.moddir);
    const k = kmodDepmod([...args.slice(0, 4), '-v', SYN_KVER]);
    const kf = snapshot(tree.moddir);
    removeOutputs(tree.moddir);
    const t = runKmodts('depmod', [...args.slice(0, 4), '-v', SYN_KVER]);
    expect(t).toEqual(k);
    expect(differingFiles(kf, snapshot(tree.moddir))).toEqual([]);
    const kn = kmodDepmod([...args.slice(0, 4), '-n', SYN_KVER]);
    expect(runKmodts('depmod', [...args.slice(0, 4), '-n', SYN_KVER])).toEqual(kn);
  });
  it('on a terminal, shows its progress on stderr and clears it at the end (only there)', async () => {
    const { repoRoot } = await import('../support/reference');
    const { snapshot, removeOutputs } = await import('./support');
    removeOutputs(tree.moddir);
    // every module is read (none comes from the scan cache of the runs before)
    fs.rmSync(path.join(tree.moddir, 'modules.kmodts-cache.bin'), { force: true });
    // script(1) gives the command a terminal and copies what it writes to our stdout
    const cmd = [process.execPath, path.join(repoRoot, 'bin/kmodts.js'), 'depmod', ...args].map((a) => `'${a}'`).join(' ');
    const r = spawnSync('script', ['-qec', cmd, '/dev/null'], { encoding: 'latin1', env: { PATH: process.env.PATH, LANG: 'C' } });
    if (r.error) throw new Error(`script(1) cannot run (package util-linux is needed): ${r.error.message}`);
    expect(r.status).toBe(0);
    const shown = r.stdout.replace(/\r\n/g, '\n');
    expect(shown).toMatch(new RegExp(`\\rdepmod: reading modules \\d+/${base.length}\\x1b\\[K`));
    // the progress line is cleared before anything else is written
    const last = shown.lastIndexOf('reading modules');
    expect(shown.indexOf('\x1b[K', last)).toBeGreaterThan(last);
    expect(shown.slice(shown.indexOf('\x1b[K', last) + 3).startsWith('\r\x1b[K')).toBe(true);
    expect(snapshot(tree.moddir).get('modules.dep')).toBeDefined();
  });
  it('-n prints the text files', async () => {
    const r = await expectSame([...args.slice(0, 4), '-n', SYN_KVER], tree);
    expect(r.kmod.stdout).toContain('# Aliases extracted from modules themselves.');
  });
  it('-v shows every dependency', async () => {
    const r = await expectSame([...args.slice(0, 4), '-v', SYN_KVER], tree);
    expect(r.kmod.stdout).toContain('needs "core_a"');
  });
  it('-vv shows INFO messages', async () => {
    await expectSame([...args.slice(0, 4), '-vv', '-n', SYN_KVER], tree);
  });
  it('-w warns about duplicates', async () => {
    const r = await expectSame([...args.slice(0, 4), '-w', SYN_KVER], tree);
    expect(r.kmod.stderr).toContain('duplicate module alias');
  });
  it('-e without -E/-F warns', async () => {
    const r = await expectSame([...args.slice(0, 4), '-e', '-n', SYN_KVER], tree);
    expect(r.kmod.stderr).toContain('-e needs -E or -F');
  });
  it('-e -E Module.symvers reports unknown symbols and version mismatches', async () => {
    const symvers = path.join(tree.root, 'Module.symvers');
    fs.writeFileSync(
      symvers,
      `0x12345678\tprintk\tvmlinux\tEXPORT_SYMBOL\t\n` +
        `0x12345678\tcore_a\tvmlinux\tEXPORT_SYMBOL_GPL\t\n` +
        `0x${crcOf('module_layout').toString(16)}\tmodule_layout\tvmlinux\tEXPORT_SYMBOL\t\n` +
        `0xzz\tbad\tvmlinux\tEXPORT_SYMBOL\t\n` +
        `0x1\tother\tdrivers/foo\tEXPORT_SYMBOL\t\n` +
        `short line\n`,
    );
    const r = await expectSame(['-C', path.join(tree.root, 'depmod.d'), '-b', tree.root, '-e', '-E', symvers, SYN_KVER], tree);
    expect(r.kmod.stderr).toContain('needs unknown symbol nosuch_symbol');
    expect(r.kmod.stderr).toContain('disagrees about version of symbol');
  });
  it('-e -F System.map', async () => {
    const map = path.join(tree.root, 'System.map');
    fs.writeFileSync(map, 'ffffffff81000000 T _text\nffffffff82000000 r __ksymtab_printk\nffffffff82000010 r __ksymtab_module_layout\nbadline\n');
    const r = await expectSame(['-C', path.join(tree.root, 'depmod.d'), '-b', tree.root, '-e', '-F', map, '-n', SYN_KVER], tree);
    expect(r.kmod.stderr).toContain('invalid line');
  });
  it('-E and -F: lines longer than kmod\'s 10240-byte buffer, NUL bytes, CRCs out of range (stale errno)', async () => {
    const long = (prefix: string) => `${prefix}${'0'.repeat(10300)}\n`;
    const symvers = path.join(tree.root, 'Module.symvers.odd');
    fs.writeFileSync(
      symvers,
      `0x12\tbad_x\tvmlinux\tE\n0x1ffffffffffffffffff\tcore_b\tvmlinux\tE\n-0x1ffffffffffffffffff\tcore_a\tvmlinux\tE\n` +
        `0xq\tafter\tvmlinux\tE\n\v\tvt\tvmlinux\tE\n0x5\tpri\0ntk\tvmlinux\tE\n${long('0x1\tx\tvmlinux\t')}${' '.repeat(10236)}0x3\tmid_x\tvmlinux\tE\n`,
    );
    const r = await expectSame(['-C', path.join(tree.root, 'depmod.d'), '-b', tree.root, '-e', '-E', symvers, '-n', SYN_KVER], tree);
    expect(r.kmod.stderr).toContain('Invalid symbol version 0xq: Numerical result out of range');
    const map = path.join(tree.root, 'System.map.odd');
    fs.writeFileSync(map, `a b __ksymtab_pri\0ntk\n${long('a b ')}${' '.repeat(10236)}a b __ksymtab_core_a\n`);
    const m = await expectSame(['-C', path.join(tree.root, 'depmod.d'), '-b', tree.root, '-e', '-F', map, '-n', SYN_KVER], tree);
    expect(m.kmod.stderr).toMatch(/System\.map\.odd:3: invalid line: 0+\n\n/);
  });
  it('-E with a missing file is fatal', async () => {
    await expectSame(['-C', path.join(tree.root, 'depmod.d'), '-b', tree.root, '-E', '/nonexistent/Module.symvers', SYN_KVER], tree);
  });
  it('-E and -F naming a directory: read as empty (kmod\'s fgets loop ends at the read error), -e reports every import', async () => {
    for (const opt of ['-E', '-F']) await expectSame(['-C', path.join(tree.root, 'depmod.d'), '-b', tree.root, '-e', opt, tree.root, SYN_KVER], tree);
  });
  it('-m and -o move the module and output directories', async () => {
    const alt = path.join(tree.root, 'usr/lib/modules');
    fs.mkdirSync(alt, { recursive: true });
    fs.cpSync(tree.moddir, path.join(alt, SYN_KVER), { recursive: true });
    const out = path.join(tree.root, 'out');
    await expectSame(['-C', path.join(tree.root, 'depmod.d'), '-b', tree.root, '-m', '/usr/lib/modules', '-o', out, SYN_KVER], tree, {
      outDir: path.join(out, 'usr/lib/modules', SYN_KVER),
    });
  });
  it('a file that cannot be renamed into place stops the run there, before the next file and its messages', async () => {
    // modules.alias cannot replace the directory of that name; modules.alias.bin, made next, has -w
    // warnings (dupal's alias "same" twice) that kmod never prints
    const out = path.join(tree.root, 'blocked');
    const dir = path.join(out, 'lib/modules', SYN_KVER);
    const run = async (tool: 'kmod' | 'kmodts') => {
      fs.rmSync(out, { recursive: true, force: true });
      fs.mkdirSync(path.join(dir, 'modules.alias', 'in-the-way'), { recursive: true });
      const a = ['-w', '-C', path.join(tree.root, 'depmod.d'), '-b', tree.root, '-o', out, SYN_KVER];
      const r = tool === 'kmod' ? kmodDepmod(a) : await kmodtsDepmod(a);
      const left = fs.readdirSync(dir).map((n) => n.replace(/\.\d+\.\d+\.\d+$/, '.TMP')).sort();
      fs.rmSync(path.join(dir, 'modules.alias'), { recursive: true });
      // the temporary file's name has the process id and the time in it
      const n = normalizePointers(r);
      return { r: { ...n, stderr: n.stderr.replace(/(modules\.[a-z.]+)\.\d+\.\d+\.\d+,/g, '$1.TMP,') }, files: snapshot(dir), left };
    };
    const k = await run('kmod');
    const t = await run('kmodts');
    expect(k.r.stderr).toMatch(/renameat\(.*modules\.alias\): Is a directory/);
    expect(k.r.stderr).not.toContain('duplicate module alias');
    expect(t.r.stderr).toBe(k.r.stderr);
    expect(t.r.stdout).toBe(k.r.stdout);
    expect(t.r.status).toBe(k.r.status);
    expect(differingFiles(k.files, t.files)).toEqual([]);
    expect(t.left).toEqual(k.left);
  });
  it('relative -b and -o are taken from the working directory', async () => {
    await expectSame(['-C', 'depmod.d', '-b', '.', '-o', 'rel-out', SYN_KVER], tree, { cwd: tree.root, outDir: path.join(tree.root, 'rel-out/lib/modules', SYN_KVER) });
  });
  it('-A does nothing when modules.dep is newer, and runs when a module is newer', async () => {
    const kmodts = await import('./support');
    kmodts.removeOutputs(tree.moddir);
    // a fresh modules.dep, newer than every module: nothing to do
    const upToDate = () => {
      fs.writeFileSync(path.join(tree.moddir, 'modules.dep'), 'stale\n');
      const t = new Date(Date.now() + 100_000);
      fs.utimesSync(path.join(tree.moddir, 'modules.dep'), t, t);
    };
    const a = await kmodts.kmodDepmod([...args.slice(0, 4), '-A', SYN_KVER]);
    void a;
    for (const before of [upToDate]) {
      before();
      const k = kmodts.kmodDepmod([...args.slice(0, 4), '-A', SYN_KVER]);
      const kDep = fs.readFileSync(path.join(tree.moddir, 'modules.dep'), 'latin1');
      before();
      const t = await kmodts.kmodtsDepmod([...args.slice(0, 4), '-A', SYN_KVER]);
      const tDep = fs.readFileSync(path.join(tree.moddir, 'modules.dep'), 'latin1');
      expect(t).toEqual(k);
      expect(tDep).toBe(kDep);
      expect(kDep).toBe('stale\n');
    }
    // an old modules.dep: full run
    const outdated = () => {
      fs.writeFileSync(path.join(tree.moddir, 'modules.dep'), 'stale\n');
      const t = new Date(Date.now() - 1_000_000);
      fs.utimesSync(path.join(tree.moddir, 'modules.dep'), t, t);
    };
    const r = await runBoth([...args.slice(0, 4), '-A', SYN_KVER], tree.moddir, { before: outdated });
    expect(r.kmodts).toEqual(r.kmod);
    expect(differingFiles(r.kmodFiles, r.kmodtsFiles)).toEqual([]);
    expect(r.kmodFiles.get('modules.dep')!.toString()).not.toBe('stale\n');
  });
  it('explicit module paths index only those modules', async () => {
    const paths = ['kernel/lib/core.ko', 'kernel/drivers/mid.ko.xz', 'kernel/fs/blk.ko'].map((p) => path.join(tree.moddir, p));
    await expectSame(['-b', tree.root, SYN_KVER, ...paths], tree);
  });
  it('explicit module paths: relative, missing and duplicate paths are fatal', async () => {
    await expectSame(['-b', tree.root, SYN_KVER, 'kernel/lib/core.ko'], tree);
    await expectSame(['-b', tree.root, SYN_KVER, path.join(tree.moddir, 'kernel/lib/nope.ko')], tree);
    const core = path.join(tree.moddir, 'kernel/lib/core.ko');
    await expectSame(['-b', tree.root, SYN_KVER, core, core], tree);
    const other = path.join(tree.root, 'core.ko');
    fs.copyFileSync(core, other);
    await expectSame(['-b', tree.root, SYN_KVER, core, other], tree);
  });
  it('explicit module paths without a size (a device, a /proc file) fail to load, EINVAL as libkmod\'s mmap: /dev/zero is not read for ever', async () => {
    const sizeless = ['/dev/zero', '/dev/urandom', '/dev/null', '/proc/self/status'];
    const r = await expectSame(['-n', '-b', tree.root, SYN_KVER, ...sizeless], tree);
    for (const f of sizeless) expect(r.kmod.stderr).toContain(`failed to load symbols from ${f}: Invalid argument\n`);
    // without the addon: the JavaScript reads (a process of its own, bounded, as the addon is chosen once per process)
    const { runKmodts } = await import('../support/reference');
    const env = { KMODTS_NATIVE_ADDON: path.join(tree.root, 'no-such-addon.node') };
    expect(runKmodts('depmod', ['-n', '-b', tree.root, SYN_KVER, ...sizeless], { env, wrap: ['timeout', '60'] })).toEqual(normalizePointers(r.kmod));
  });
  it('-a with module paths indexes the whole tree', async () => {
    await expectSame([...args.slice(0, 4), '-a', SYN_KVER, path.join(tree.moddir, 'kernel/lib/core.ko')], tree);
  });
  it('option errors', async () => {
    await expectSame(['-b', tree.root, 'notaversion'], tree);
    await expectSame(['-P', 'ab', '-b', tree.root, SYN_KVER], tree);
    await expectSame(['--bogus', SYN_KVER], tree);
    await expectSame(['-Z', SYN_KVER], tree);
    await expectSame(['-b'], tree);
    await expectSame(['--symbol-prefix'], tree);
  });
  it('a missing module directory is fatal', async () => {
    await expectSame(['-C', path.join(tree.root, 'depmod.d'), '-b', tree.root, '9.9.9'], tree, { outDir: path.join(tree.root, 'lib/modules/9.9.9') });
  });
});

describe('depmod modules.order and builtin handling (kmod 34.2 differential)', () => {
  it('without modules.order (hash order, warning)', async () => {
    const tree = buildTree('noorder', base, { order: null });
    const r = await expectSame(withConfig(tree, {}), tree);
    expect(r.kmod.stderr).toContain('could not open modules.order');
  });
  it('modules.order, modules.builtin and modules.builtin.modinfo linked to /dev/zero: refused as too large, the rest as when they are missing (kmod reads them for ever)', async () => {
    const tree = buildTree('zeroinputs', base.slice(0, 3), { order: null, builtin: null, builtinModinfo: null });
    const args = withConfig(tree, {});
    removeOutputs(tree.moddir);
    const kmod = normalizePointers(kmodDepmod(args));
    for (const f of ['modules.order', 'modules.builtin', 'modules.builtin.modinfo']) fs.symlinkSync('/dev/zero', path.join(tree.moddir, f));
    const ours = await expectSameFiles(args, tree, kmod);
    // the walk meets the three as devices (kmod's walk says the same); each read is refused
    const lines = ours.stderr.split('\n');
    expect(lines.filter((l) => / unsupported file type .*: 20000$/.test(l)).length).toBe(3);
    const missing = 'No such file or directory';
    expect(lines.filter((l) => !l.includes('unsupported file type')).join('\n')).toBe(kmod.stderr.split(missing).join('File too large'));
    expect(kmod.stderr.split(missing).length).toBe(4);
    // -E and -F files: fatal, naming the file
    for (const opt of ['-E', '-F']) {
      const r = await kmodtsDepmod(['-e', opt, '/dev/zero', ...args]);
      expect([r.status, r.stderr]).toEqual([1, 'depmod: FATAL: could not load /dev/zero: File too large\n']);
    }
  });
  it('partial modules.order with junk and repeated lines', async () => {
    const order = '#336\nkernel/misc/brk.ko\nkernel/drivers/top-level.ko\nkernel/misc/brk.ko\n\nkernel/nonexistent.ko\nkernel/lib/core.ko\n';
    const tree = buildTree('partorder', base, { order });
    await expectSame(withConfig(tree, {}), tree);
  });
  it('modules.order whose last line misses its newline (no sorting at all)', async () => {
    const tree = buildTree('badorder', base, { order: 'kernel/lib/core.ko\nkernel/misc/brk.ko' });
    const r = await expectSame(withConfig(tree, {}), tree);
    expect(r.kmod.stderr).toContain("corrupted line misses '\\n'");
  });
  it('missing modules.builtin and modules.builtin.modinfo', async () => {
    const tree = buildTree('nobuiltin', base.slice(0, 3), { builtin: null, builtinModinfo: null });
    const r = await expectSame(withConfig(tree, {}), tree);
    expect(r.kmodFiles.get('modules.builtin.bin')!.length).toBe(0);
  });
  it('odd modules.builtin and modules.builtin.modinfo contents', async () => {
    const tree = buildTree('oddbuiltin', base.slice(0, 3), {
      builtin: 'kernel/fs/ext4/ext4.ko\n/abs/path.ko\n1bad.ko\nkernel/no-ext\nkernel/net/unix/unix.ko.xz\n',
      builtinModinfo: Buffer.from(
        'ext4.alias=fs-ext4\0ext4.alias=\0ext4.license=GPL\0bad.alias=x]y\0noequals\0after.alias=after-x\0.alias=nomod\0unix.alias=net-pf-1\0tail.alias=unterminated',
        'latin1',
      ),
    });
    await expectSame(withConfig(tree, {}), tree);
  });
  it('modules.builtin.modinfo names, keys and values around kmod\'s PATH_MAX buffers', async () => {
    const z = (n: number) => '0'.repeat(n);
    const tree = buildTree('longbuiltin', base.slice(0, 1), {
      builtinModinfo: Buffer.from(
        `a.alias=${z(4095)}\0b.alias=${z(4096)}\0c.alias=${z(4097)}\0d.alias=ok-d\0${z(4095)}.alias=x\0${z(4096)}.alias=y\0` +
          `${z(4097)}.alias=z\0e.alias=ok-e\0f.${z(5000)}=w\0g.alias=ok-g\0h.alias=${z(4096)}`,
        'latin1',
      ),
    });
    const r = await expectSame(withConfig(tree, {}), tree);
    expect(r.kmod.stderr.match(/Could not flush stream: 28\. Partial content: 0{4096}\n/g)?.length).toBe(6);
  });
});

const dupModules: SynModule[] = [
  { rel: 'kernel/lib/core.ko', exports: ['core_a'] },
  { rel: 'kernel/drivers/dup.ko', imports: ['core_a'], modinfo: [['alias', 'dup-kernel']] },
  { rel: 'updates/dup.ko.xz', modinfo: [['alias', 'dup-updates']] },
  { rel: 'extra/dup.ko', modinfo: [['alias', 'dup-extra']] },
  { rel: 'foo/dup.ko', modinfo: [['alias', 'dup-foo']] },
  { rel: 'foobar/dup.ko', modinfo: [['alias', 'dup-foobar']] },
  { rel: 'kernel/drivers/other-dup.ko', modinfo: [['alias', 'od-kernel']] },
  { rel: 'extra/other_dup.ko', modinfo: [['alias', 'od-extra']] },
  { rel: '/ext/a/dup.ko', modinfo: [['alias', 'dup-external-a']] },
  { rel: '/ext/b/ext-only.ko', imports: ['core_a'], modinfo: [['alias', 'ext-only']] },
  { rel: 'kernel/drivers/excluded-file.ko', modinfo: [['alias', 'excl-file']] },
];

describe('depmod.d directives and duplicate modules (kmod 34.2 differential)', () => {
  const tree = buildTree('dups', dupModules);
  const cases: [string, Record<string, string>][] = [
    ['no configuration: updates/ wins', {}],
    ['search extra built-in', { 'a.conf': 'search extra built-in\n' }],
    ['search foobar foo built-in (same prefix)', { 'a.conf': 'search foobar foo built-in\n' }],
    ['search on two lines', { 'a.conf': 'search built-in\nsearch foo\n' }],
    ['search without built-in', { 'a.conf': 'search foo\n' }],
    ['override', { 'a.conf': 'override dup * foo\nsearch updates built-in\n' }],
    ['override by kernel-version regex', { 'a.conf': 'override dup 4\\.4\\..* extra\noverride dup ^5 foo\n' }],
    ['override with a non-matching or invalid regex', { 'a.conf': 'override dup 5.* extra\noverride dup ( foo\n' }],
    // POSIX syntax that JavaScript reads otherwise: a class, \d (the letter d), {,n}, a repeated '*'
    [
      'override and external by POSIX-only regex syntax',
      {
        'a.conf': 'override dup [[:digit:]]\\.4 foo\noverride dup 4\\.\\d extra\noverride dup 4{,1}\\.4 foobar\noverride other_dup 4\\.4** extra\n',
        'b.conf': `external [[:digit:]]+\\.4 ${tree.root}/ext/a\nexternal 4\\.\\d ${tree.root}/ext/b\nsearch external built-in\n`,
      },
    ],
    ['exclude a directory and a file', { 'a.conf': 'exclude updates extra\nexclude excluded-file.ko\n' }],
    ['external first', { 'a.conf': `external 4\\.4\\..* ${tree.root}/ext/a\nexternal * ${tree.root}/ext/b\nsearch external foobar foo built-in\n` }],
    ['external last', { 'a.conf': `external 4\\.4\\..* ${tree.root}/ext/a\nsearch foobar foo built-in external\n` }],
    ['external without search', { 'a.conf': `external * ${tree.root}/ext/a\nexternal * ${tree.root}/ext/b\n` }],
    ['external missing and non-matching', { 'a.conf': `external * ${tree.root}/ext/missing\nexternal 3\\..* ${tree.root}/ext/b\nsearch external built-in\n` }],
    [
      'bad and unimplemented lines, wrapped lines, comments',
      {
        'a.conf': 'bogus line\n  # indented comment\n#comment\ninclude /etc/foo\nmake_map_files\noverride dup\nexternal 4.4\nsearch \\\nextra \\\n built-in\n\n',
        'b.conf': 'search\tfoo\t\tbuilt-in',
      },
    ],
    ['non-.conf files, dot files and subdirectories', { '.hidden.conf': 'search foo built-in\n', 'README': 'x', 'sub.conf': '<dir>', 'x.conf': 'search extra built-in\n' }],
  ];
  for (const [name, files] of cases) {
    it(name, async () => {
      await expectSame(['-vv', ...withConfig(tree, files)], tree);
    });
  }
  it('-C with several paths: files merged by name, the first path wins', async () => {
    const d1 = path.join(tree.root, 'cfg1');
    const d2 = path.join(tree.root, 'cfg2');
    fs.rmSync(d1, { recursive: true, force: true });
    fs.rmSync(d2, { recursive: true, force: true });
    fs.mkdirSync(d1);
    fs.mkdirSync(d2);
    fs.writeFileSync(path.join(d1, 'b.conf'), 'search foo built-in\n');
    fs.writeFileSync(path.join(d2, 'b.conf'), 'search extra built-in\n');
    fs.writeFileSync(path.join(d2, 'a.conf'), 'exclude foobar\n');
    const single = path.join(tree.root, 'single.conf');
    fs.writeFileSync(single, 'override dup * kernel/drivers\n');
    await expectSame(['-C', d1, '-C', d2, '-C', single, '-C', '/nonexistent', '-b', tree.root, SYN_KVER], tree);
  });
  it('-C with a bare file name (no slash): kmod crashes, kmodts reads it as ./NAME does', async () => {
    const dir = configDir(tree.root, { 'ubuntu.conf': 'search extra built-in\noverride dup * foo\n' });
    // kmod 34.2's cfg_files_insert_sorted takes strlen(name) + 1 off the directory part's length,
    // which wraps around when the path has no slash: a heap overrun, then abort or SIGSEGV
    const crashed = kmodDepmod(['-C', 'ubuntu.conf', '-b', tree.root, SYN_KVER], dir);
    expect(crashed.status).toBeGreaterThan(128);
    // kmodts: what kmod does with the same file named ./ubuntu.conf
    const dotted = await runBoth(['-C', './ubuntu.conf', '-b', tree.root, SYN_KVER], tree.moddir, { cwd: dir });
    expect(dotted.kmod.status).toBe(0);
    const bare = await runBoth(['-C', 'ubuntu.conf', '-b', tree.root, SYN_KVER], tree.moddir, { cwd: dir });
    expect(bare.kmodts.stderr).toBe(dotted.kmod.stderr);
    expect(bare.kmodts.stdout).toBe(dotted.kmod.stdout);
    expect(bare.kmodts.status).toBe(0);
    expect(differingFiles(dotted.kmodFiles, bare.kmodtsFiles)).toEqual([]);
    expect(bare.kmodtsFiles.get('modules.dep')?.toString()).toContain('foo/dup.ko');
  });
});

describe('depmod dependency cycles (kmod 34.2 differential)', () => {
  it('reports each cycle and fails without writing files', async () => {
    const tree = buildTree('cycles', [
      { rel: 'kernel/a.ko', exports: ['sa'], imports: ['sb'] },
      { rel: 'kernel/b.ko', exports: ['sb'], imports: ['sa'] },
      { rel: 'kernel/c.ko', exports: ['sc'], imports: ['sd'] },
      { rel: 'kernel/d.ko', exports: ['sd'], imports: ['se'] },
      { rel: 'kernel/e.ko', exports: ['se'], imports: ['sc', 'sx'] },
      { rel: 'kernel/f.ko', imports: ['sa', 'sc'] },
      { rel: 'kernel/x.ko', exports: ['sx'] },
      { rel: 'kernel/self.ko', exports: ['sself'], imports: ['sself'] },
    ]);
    const r = await expectSame(withConfig(tree, {}), tree);
    expect(r.kmod.status).toBe(1);
    expect(r.kmod.stderr).toContain('Cycle detected');
    expect([...r.kmodFiles.values()].every((v) => v === null)).toBe(true);
  });
  it('a cycle reached only through another module (kmod loops forever there; kmodts stops)', async () => {
    const loop = (n: string, exp: string[], imp: string[]): SynModule => ({ rel: `kernel/mod-loop-${n}.ko`, exports: exp, imports: imp });
    const tree = buildTree('loop', [loop('a', ['printA'], ['printB', 'printC']), loop('b', ['printB'], ['printA']), loop('c', ['printC'], ['printD']), loop('d', ['printD'], ['printC'])]);
    const r = await kmodtsDepmod(withConfig(tree, {}));
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/Found \d+ modules in dependency cycles!\n$/);
  });
});

/**
 * Disjoint simple cycles (lengths as given, each member importing the next one's symbol), some members
 * also using a module outside every cycle, with modules.order listing all of them in a shuffled order:
 * where each report starts depends on how kmod takes reported modules off its list of starting points.
 * (Only simple cycles: kmod walks forever around a cycle that does not pass through its starting point.)
 */
function cycleTree(tag: string, lengths: number[], seed: number): SynTree {
  const random = prng(seed);
  const mods: SynModule[] = [{ rel: 'kernel/leaf/shared.ko', exports: ['shared_sym'] }];
  lengths.forEach((len, c) => {
    for (let k = 0; k < len; k++) {
      const name = `cyc${c}_${String.fromCharCode(97 + k)}`;
      const next = `cyc${c}_${String.fromCharCode(97 + ((k + 1) % len))}`;
      const imports = [`${next}_sym`];
      if (random() < 0.3) imports.push('shared_sym');
      mods.push({ rel: `kernel/c${c}/${name}.ko`, exports: [`${name}_sym`], imports });
    }
  });
  // Fisher-Yates with the seeded generator: the tree is the same on every run
  const order = mods.map((m) => `${m.rel}\n`);
  for (let k = order.length - 1; k > 0; k--) {
    const j = Math.floor(random() * (k + 1));
    [order[k], order[j]] = [order[j], order[k]];
  }
  return buildTree(tag, mods, { order: order.join('') });
}

describe('depmod cycle reports start where kmod 34.2 starts them (differential)', () => {
  const cases: [string, number[], number][] = [
    ['three', [3], 1],
    ['two-three', [2, 3], 2],
    ['three-two-one', [3, 2, 1], 3],
    ['four-two-three-five', [4, 2, 3, 5], 4],
    ['many', [2, 5, 1, 3, 4, 2], 5],
    ['many-again', [3, 3, 2, 6, 1], 6],
  ];
  for (const [tag, lengths, seed] of cases) {
    it(`cycles of lengths ${lengths.join(', ')} in shuffled module order`, async () => {
      const tree = cycleTree(`cyc-${tag}`, lengths, seed);
      const r = await expectSame(withConfig(tree, {}), tree);
      expect(r.kmod.status).toBe(1);
      expect(r.kmod.stderr.match(/Cycle detected: /g)?.length).toBe(lengths.length);
    });
  }
  it('without modules.order (hash order)', async () => {
    const tree = buildTree(
      'cyc-hash',
      [3, 2, 4].flatMap((len, c) =>
        Array.from({ length: len }, (_, k) => ({ rel: `kernel/h${c}${k}.ko`, exports: [`h${c}${k}`], imports: [`h${c}${(k + 1) % len}`] })),
      ),
      { order: null },
    );
    const r = await expectSame(withConfig(tree, {}), tree);
    expect(r.kmod.stderr.match(/Cycle detected: /g)?.length).toBe(3);
  });
});

describe('depmod on odd module files (kmod 34.2 differential)', () => {
  it('non-ELF, truncated and empty module files, -P prefix, symlinks', async () => {
    const good: SynModule[] = [
      { rel: 'kernel/lib/core.ko', exports: ['_core_a', 'core_b'] },
      { rel: 'kernel/lib/user.ko', imports: ['_core_a', 'core_b'] },
    ];
    const tree = buildTree('odd', [
      ...good,
      { rel: 'kernel/bad/garbage.ko', raw: Buffer.from('this is not an ELF file at all, just text\n') },
      { rel: 'kernel/bad/empty.ko', raw: Buffer.alloc(0) },
      { rel: 'kernel/bad/elfhead.ko', raw: Buffer.from('\x7fELF\x02\x01\x01', 'latin1') },
    ]);
    fs.writeFileSync(path.join(tree.moddir, 'kernel/bad/trunc.ko.xz'), fs.readFileSync(path.join(tree.moddir, 'kernel/lib/core.ko')).subarray(0, 10));
    fs.symlinkSync(path.join(tree.moddir, 'kernel/lib'), path.join(tree.moddir, 'kernel/linked'));
    fs.writeFileSync(path.join(tree.moddir, 'kernel/lib/README'), 'not a module\n');
    fs.mkdirSync(path.join(tree.moddir, 'build'));
    fs.copyFileSync(path.join(tree.moddir, 'kernel/lib/core.ko'), path.join(tree.moddir, 'build/inbuild.ko'));
    await expectSame(withConfig(tree, {}), tree);
    await expectSame(['-P', '_', ...withConfig(tree, {})], tree);
  });
  it('dangling links, link loops and FIFOs at several depths: kmod\'s messages, descriptor numbers included, in the walk and with -A', async () => {
    const tree = buildTree('walkerr', [
      { rel: 'kernel/lib/core.ko', exports: ['core_a'] },
      { rel: 'kernel/a/b/user.ko', imports: ['core_a'] },
    ]);
    const m = tree.moddir;
    fs.symlinkSync('nowhere.ko', path.join(m, 'top-dangling.ko'));
    fs.symlinkSync('nowhere', path.join(m, 'kernel/dangling.ko.xz'));
    fs.symlinkSync('loop.ko', path.join(m, 'kernel/a/loop.ko'));
    fs.symlinkSync('../../../nowhere', path.join(m, 'kernel/a/b/deep.ko'));
    spawnSync('mkfifo', [path.join(m, 'kernel/a/fifo.ko')]);
    expect(fs.statSync(path.join(m, 'kernel/a/fifo.ko')).isFIFO()).toBe(true);
    await expectSame(withConfig(tree, {}), tree);
    // -A walks with its own loop (depfile_up_to_date): an old modules.dep makes it look at every file
    const outdated = () => {
      fs.writeFileSync(path.join(m, 'modules.dep'), 'stale\n');
      const t = new Date(Date.now() - 1_000_000);
      fs.utimesSync(path.join(m, 'modules.dep'), t, t);
    };
    const args = ['-A', ...withConfig(tree, {})];
    outdated();
    const k = normalizePointers(kmodDepmod(args));
    outdated();
    const t = normalizePointers(await kmodtsDepmod(args));
    // kernel/a/b is three levels down: descriptor 6
    expect(k.stderr).toMatch(/fstatat\(6, deep\.ko\)/);
    expect(t).toEqual(k);
  });
  it('-A on an up-to-date tree: FIFOs named by kmod\'s path buffer, paths too long for it', async () => {
    const tree = buildTree('uptodate', [{ rel: 'kernel/lib/core.ko', exports: ['core_a'] }]);
    const m = tree.moddir;
    // alone in its directory, the FIFO is printed as the directory's path (nothing written after it)
    fs.mkdirSync(path.join(m, 'kernel/f'));
    spawnSync('mkfifo', [path.join(m, 'kernel/f/fifo.ko')]);
    // a chain of directories whose last one leaves room for no name of NAME_MAX bytes below PATH_MAX
    let dir = `${m}/kernel`;
    while (dir.length + 1 + 200 < 3839) dir = `${dir}/${'d'.repeat(200)}`;
    dir = `${dir}/${'e'.repeat(3839 - dir.length - 2)}`;
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(`${dir}/${'x'.repeat(252)}.ko`, '');
    fs.mkdirSync(`${dir.slice(0, dir.lastIndexOf('/'))}/${'g'.repeat(250)}`);
    fs.writeFileSync(path.join(m, 'modules.dep'), 'kernel/lib/core.ko:\n');
    const future = new Date(Date.now() + 1_000_000);
    fs.utimesSync(path.join(m, 'modules.dep'), future, future);
    const args = ['-A', ...withConfig(tree, {})];
    const k = normalizePointers(kmodDepmod(args));
    const t = normalizePointers(await kmodtsDepmod(args));
    expect(k.stderr).toContain(`unsupported file type ${m}/kernel/f/: 10000\n`);
    expect(k.stderr).toMatch(/path is too long .*x{252}\.ko\n/);
    expect(k.stderr).toMatch(/directory path is too long .*g{250}\n/);
    expect(t).toEqual(k);
  });
  it('symbol names with equal lookup keys and "."-prefixed imports resolve as by name', async () => {
    // pairs with equal 32-bit FNV-1a (hash.ts symbolKey): the lookup must compare names, not keys
    const tree = buildTree('keys', [
      { rel: 'kernel/a.ko', exports: ['costarring', 'declinate'] },
      { rel: 'kernel/b.ko', exports: ['liquid'] },
      { rel: 'kernel/c.ko', imports: ['liquid', 'macallums'] },
      { rel: 'kernel/d.ko', imports: ['.costarring', 'zinke'] },
      { rel: 'kernel/e.ko', exports: ['altarage'], imports: ['..liquid'] },
    ]);
    const map = path.join(tree.root, 'System.map');
    fs.writeFileSync(map, 'ffffffff81000000 T zinke\nffffffff81000010 r __ksymtab_zinke\n');
    const r = await expectSame(['-v', '-e', '-F', map, ...withConfig(tree, {})], tree);
    expect(r.kmod.stdout).toContain('kernel/c.ko needs "liquid": ');
    expect(r.kmod.stdout).toContain('kernel/d.ko needs "costarring": ');
    expect(r.kmod.stderr).toMatch(/needs unknown symbol macallums/);
  });
  it('modules readable by kmod but with names that need normalising', async () => {
    const tree = buildTree('names', [
      { rel: 'kernel/a-b-c.ko', exports: ['abc'], modinfo: [['alias', 'x-y-z'], ['softdep', 'pre: d-e']] },
      { rel: 'kernel/d_e.ko.xz', imports: ['abc'] },
      { rel: 'kernel/sub/dir/deep-name.ko.zst', imports: ['abc'] },
    ]);
    await expectSame(withConfig(tree, {}), tree);
  });
});

// xz/zstd are needed to build the compressed fixtures: fail loudly if they are missing
it('the compressors used by the fixtures exist', () => {
  for (const tool of ['xz', 'zstd', 'gzip']) expect(spawnSync(tool, ['--version']).status).toBe(0);
});
