// Incremental depmod against kmod 34.2's full run: a copy of the Debian cloud-amd64 tree goes through a
// seeded random sequence of changes (modules added, removed, replaced in place and by rename, touched,
// renamed, moved between directories; depmod.d and modules.order edited; the scan cache corrupted,
// truncated, replaced by another version's or deleted; kmodts' depmod killed at a random moment), and
// after every step all eleven files, stdout, stderr and the exit status of kmodts' depmod (using its
// scan cache) must equal those of kmod's full run on the same tree.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { prng } from '../support/prng';
import { reference, repoRoot, runKmodts } from '../support/reference';
import { buildTree, configDir, copyTree, differingFiles, moduleBytes, moduleFiles, runBoth, snapshot, SYN_KVER, temporaryFiles, tmpRoot, type SynModule } from './support';

const CACHE = 'modules.kmodts-cache.bin';

interface Tree {
  root: string;
  moddir: string;
  conf: string;
}

function copyOf(srcModdir: string, kver: string): Tree {
  const { root, moddir } = copyTree(srcModdir, kver, 'incremental', 'copy');
  const conf = path.join(root, 'depmod.d');
  fs.mkdirSync(conf);
  return { root, moddir, conf };
}

function modules(moddir: string): string[] {
  return moduleFiles(path.join(moddir, 'kernel')).sort();
}

/** exported symbols of the tree, from kmod's last modules.symbols */
function exportedSymbols(moddir: string): string[] {
  const f = path.join(moddir, 'modules.symbols');
  if (!fs.existsSync(f)) return [];
  return fs
    .readFileSync(f, 'latin1')
    .split('\n')
    .filter((l) => l.startsWith('alias symbol:'))
    .map((l) => l.slice('alias symbol:'.length).split(' ')[0]);
}

type Random = () => number;
const pick = <T>(random: Random, list: T[]): T => list[Math.floor(random() * list.length)];

/** a module of our own using a few of the tree's symbols, with aliases and softdeps */
function synthetic(random: Random, moddir: string, n: number): SynModule {
  const syms = exportedSymbols(moddir);
  const imports = syms.length > 0 ? [pick(random, syms), pick(random, syms)] : [];
  return {
    rel: `kernel/extra/syn${n}.ko`,
    exports: [`syn${n}_export`],
    imports: [...new Set(imports)],
    modinfo: [
      ['alias', `syn-${n}-alias`],
      ['softdep', 'pre: loop'],
      ...(random() < 0.5 ? ([['alias', `char-major-240-${n % 256}`], ['alias', `devname:syn${n}`]] as [string, string][]) : []),
    ],
  };
}

/** the changes a step can make; each says what it did (for the failure message) */
function changes(tree: Tree, random: Random): Record<string, () => string> {
  let added = 0;
  const someModule = (): string => pick(random, modules(tree.moddir));
  const rel = (p: string): string => path.relative(tree.moddir, p);
  return {
    add: () => {
      const m = synthetic(random, tree.moddir, added++);
      const file = path.join(tree.moddir, m.rel);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, moduleBytes(m));
      return `add ${m.rel}`;
    },
    remove: () => {
      const f = someModule();
      fs.unlinkSync(f);
      return `remove ${rel(f)}`;
    },
    'replace by rename': () => {
      const f = someModule();
      const other = someModule();
      fs.copyFileSync(other, `${f}.new`);
      fs.renameSync(`${f}.new`, f);
      return `replace ${rel(f)} with ${rel(other)}`;
    },
    'replace in place, same size and mtime': () => {
      // the change a stat key can miss: same inode, size and mtime; only the ctime moves
      const f = path.join(tree.moddir, 'kernel/extra/racy.ko');
      const variant = (c: string): Buffer => moduleBytes({ rel: 'kernel/extra/racy.ko', exports: [`racy_sym_${c}`], modinfo: [['alias', `racy-${c}`]] });
      const [a, b] = [variant('a'), variant('b')];
      expect(a.length).toBe(b.length);
      if (!fs.existsSync(f)) {
        fs.mkdirSync(path.dirname(f), { recursive: true });
        fs.writeFileSync(f, a);
        return 'add kernel/extra/racy.ko';
      }
      const st = fs.statSync(f);
      const next = fs.readFileSync(f).equals(a) ? b : a;
      const fd = fs.openSync(f, 'r+');
      fs.writeSync(fd, next, 0, next.length, 0);
      fs.closeSync(fd);
      fs.utimesSync(f, st.atime, st.mtime);
      return 'rewrite kernel/extra/racy.ko in place';
    },
    touch: () => {
      const f = someModule();
      const t = new Date(Date.now() - Math.floor(random() * 1e9));
      fs.utimesSync(f, t, t);
      return `touch ${rel(f)}`;
    },
    rename: () => {
      const f = someModule();
      const to = path.join(path.dirname(f), `renamed-${path.basename(f)}`);
      fs.renameSync(f, to);
      return `rename ${rel(f)} to ${rel(to)}`;
    },
    'move to another directory': () => {
      const f = someModule();
      const dirs = [...new Set(modules(tree.moddir).map((p) => path.dirname(p)))];
      const to = path.join(pick(random, dirs), path.basename(f));
      if (fs.existsSync(to)) return 'move (nothing: the name is taken there)';
      fs.renameSync(f, to);
      return `move ${rel(f)} to ${rel(to)}`;
    },
    'edit depmod.d': () => {
      const lines = pick(random, [
        'search extra built-in\n',
        'search built-in extra\nexclude net\n',
        `override ${path.basename(someModule()).replace(/\.ko.*$/, '')} * extra\n`,
        'exclude drivers\n',
        '',
      ]);
      fs.writeFileSync(path.join(tree.conf, 'test.conf'), lines);
      return `depmod.d: ${JSON.stringify(lines)}`;
    },
    'edit modules.order': () => {
      const f = path.join(tree.moddir, 'modules.order');
      const lines = fs.readFileSync(f, 'latin1').split('\n').filter(Boolean);
      for (let k = lines.length - 1; k > 0; k--) {
        const j = Math.floor(random() * (k + 1));
        [lines[k], lines[j]] = [lines[j], lines[k]];
      }
      fs.writeFileSync(f, lines.slice(0, Math.floor(lines.length * (0.5 + random() / 2))).join('\n') + '\n');
      return 'modules.order shuffled and cut';
    },
    'damage the cache': () => {
      const f = path.join(tree.moddir, CACHE);
      if (!fs.existsSync(f)) return 'damage the cache (there is none)';
      const data = fs.readFileSync(f);
      const how = pick(random, ['flip', 'truncate', 'delete', 'garbage', 'other version', 'empty']);
      if (how === 'flip') {
        const at = Math.floor(random() * data.length);
        data[at] ^= 1 + Math.floor(random() * 255);
        fs.writeFileSync(f, data);
      } else if (how === 'truncate') fs.writeFileSync(f, data.subarray(0, Math.floor(random() * data.length)));
      else if (how === 'delete') fs.unlinkSync(f);
      else if (how === 'garbage') fs.writeFileSync(f, Buffer.from('not a cache at all\n'));
      else if (how === 'other version') fs.writeFileSync(f, Buffer.concat([Buffer.from(data.toString('latin1').replace(/^(kmodts depmod scan cache \d+) \S+/, '$1 0.0.0-other'), 'latin1')]));
      else fs.writeFileSync(f, '');
      return `cache: ${how}`;
    },
  };
}

/** kmodts' depmod as a process, killed after `ms` (SIGKILL), whatever it was doing */
function killedRun(args: string[], ms: number): Promise<string> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(repoRoot, 'bin/kmodts.js'), 'depmod', ...args], { stdio: 'ignore', env: { PATH: process.env.PATH, LANG: 'C' } });
    const timer = setTimeout(() => child.kill('SIGKILL'), ms);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve(signal === 'SIGKILL' ? `killed after ${ms} ms` : `finished (${code}) before the kill at ${ms} ms`);
    });
  });
}

/** the kmod-style temporary files a killed run left (kmod leaves them too) */
function removeKilledLeftovers(moddir: string): void {
  for (const f of temporaryFiles(moddir)) fs.rmSync(path.join(moddir, f));
}

describe('incremental depmod on the cloud-amd64 tree (kmod 34.2 full run differential)', () => {
  it('equals kmod after every step of a random sequence of changes', async () => {
    const ref = reference();
    const tree = copyOf(path.join(ref.KTREE, 'lib/modules', ref.KVER), ref.KVER);
    const args = ['-C', tree.conf, '-b', tree.root, ref.KVER];
    const random = prng(20261205);
    const ops = changes(tree, random);
    const names = Object.keys(ops);
    const done: string[] = [];
    const steps = 16;
    let killed = 0;
    for (let step = 0; step <= steps; step++) {
      if (step > 0) {
        // every op at least once in the first steps, then at random; a kill every fourth step
        const name = step <= names.length ? names[step - 1] : pick(random, names);
        done.push(ops[name]());
        if (step % 4 === 0) {
          // within the first 450 ms; a run that ends before its kill (a cached run of this tree can take
          // under 300 ms on a quiet machine) is run again with half the delay, so that each of these
          // steps does kill one run, wherever it then was
          for (let ms = 50 + Math.floor(random() * 400); ; ms = Math.floor(ms / 2)) {
            const outcome = await killedRun(args, ms);
            done.push(outcome);
            removeKilledLeftovers(tree.moddir);
            if (outcome.startsWith('killed after') || ms < 4) break;
          }
          killed++;
        }
      }
      const r = await runBoth(args, tree.moddir, { reindex: true });
      const where = `after: ${done.join('; ')}`;
      expect(r.kmodts.stderr, where).toBe(r.kmod.stderr);
      expect(r.kmodts.stdout, where).toBe(r.kmod.stdout);
      expect(r.kmodts.status, where).toBe(r.kmod.status);
      expect(differingFiles(r.kmodFiles, r.kmodtsFiles), where).toEqual([]);
      expect(temporaryFiles(tree.moddir), where).toEqual([]);
      // a killed run's temporary cache is removed by the next run
      expect(fs.readdirSync(tree.moddir).filter((n) => n.startsWith(`${CACHE}.tmp-`)), where).toEqual([]);
    }
    expect(killed).toBeGreaterThan(2);
    // every kill step killed a run before it finished
    expect(done.filter((d) => d.startsWith('killed after')).length, done.join('\n')).toBe(killed);
    // the runs did use the cache: most modules come from it now
    const { depmod } = require(path.join(repoRoot, 'dist/depmod/depmod.js')) as typeof import('../../src/depmod/depmod');
    let stats: { hits: number; scanned: number } | undefined;
    await depmod({ kernelVersion: ref.KVER, basedir: tree.root, configPaths: [tree.conf], dryRun: true, onScanCache: (s) => (stats = s) });
    expect(stats!.hits).toBeGreaterThan(1000);
    fs.rmSync(tree.root, { recursive: true, force: true });
  }, 900_000);
});

describe('where the scan cache is read and written', () => {
  const mods: SynModule[] = [
    { rel: 'kernel/a.ko', exports: ['a_sym'], modinfo: [['alias', 'a-alias']] },
    { rel: 'kernel/b.ko.xz', imports: ['a_sym'] },
  ];
  type Stats = { loaded: boolean; hits: number; scanned: number; written: boolean };
  /** the scans' part of a run's cache stats (the walk record's are tested in walk-record.test.ts) */
  const scanStats = ({ loaded, hits, scanned, written }: Stats): Stats => ({ loaded, hits, scanned, written });
  const { depmod } = require(path.join(repoRoot, 'dist/depmod/depmod.js')) as typeof import('../../src/depmod/depmod');
  async function run(opts: Partial<Parameters<typeof depmod>[0]>): Promise<Stats> {
    let stats: Stats | undefined;
    await depmod({ kernelVersion: SYN_KVER, configPaths: ['/dev/null'], onScanCache: (s) => (stats = scanStats(s)), ...opts });
    return stats!;
  }

  it('beside the indexes, from the second indexing on; -n reads it and writes nothing; -o uses the output directory', async () => {
    const tree = buildTree('cache-where', mods);
    const cache = path.join(tree.moddir, CACHE);
    // the files must be older than the run by more than a timestamp tick to be stored
    await new Promise((r) => setTimeout(r, 2300));
    expect(await run({ basedir: tree.root, dryRun: true })).toEqual({ loaded: false, hits: 0, scanned: 2, written: false });
    expect(fs.existsSync(cache)).toBe(false);
    // a first indexing (no modules.dep yet: mkinitramfs's depmod -b of the image it builds) leaves none
    expect(await run({ basedir: tree.root })).toEqual({ loaded: false, hits: 0, scanned: 2, written: false });
    expect(fs.existsSync(cache)).toBe(false);
    expect(await run({ basedir: tree.root })).toEqual({ loaded: false, hits: 0, scanned: 2, written: true });
    expect(await run({ basedir: tree.root, dryRun: true })).toEqual({ loaded: true, hits: 2, scanned: 0, written: false });
    const out = tmpRoot('cache-out');
    expect(await run({ basedir: tree.root, outdir: out })).toEqual({ loaded: false, hits: 0, scanned: 2, written: false });
    expect(fs.existsSync(path.join(out, 'lib/modules', SYN_KVER, CACHE))).toBe(false);
    expect(await run({ basedir: tree.root, outdir: out })).toEqual({ loaded: false, hits: 0, scanned: 2, written: true });
    expect(fs.existsSync(path.join(out, 'lib/modules', SYN_KVER, CACHE))).toBe(true);
    // nothing new to store: the cache is left as it is
    const before = fs.readFileSync(path.join(out, 'lib/modules', SYN_KVER, CACHE));
    expect(await run({ basedir: tree.root, outdir: out })).toEqual({ loaded: true, hits: 2, scanned: 0, written: false });
    expect(fs.readFileSync(path.join(out, 'lib/modules', SYN_KVER, CACHE)).equals(before)).toBe(true);
    // the same files with the cache and without it
    const withCache = snapshot(path.join(out, 'lib/modules', SYN_KVER));
    await run({ basedir: tree.root, outdir: out, scanCache: false });
    expect(differingFiles(withCache, snapshot(path.join(out, 'lib/modules', SYN_KVER)))).toEqual([]);
  }, 30_000);

  it('a few small modules scanned anew leave the cache as it is, until they add up; the files are the same either way', async () => {
    // 300 modules with long export names make a cache much larger than one module file
    const many: SynModule[] = Array.from({ length: 300 }, (_, i) => ({
      rel: `kernel/m${i}.ko`,
      exports: Array.from({ length: 8 }, (_, j) => `module_${i}_exports_a_rather_long_symbol_name_${j}`),
      imports: i > 0 ? [`module_${i - 1}_exports_a_rather_long_symbol_name_0`] : [],
      modinfo: [['alias', `pci:v0000${i}d*sv*sd*bc*sc*i*`]],
    }));
    const tree = buildTree('cache-rewrite', many);
    const cache = path.join(tree.moddir, CACHE);
    const added = (names: string[]): void => {
      for (const name of names) fs.copyFileSync(path.join(tree.moddir, 'kernel/m7.ko'), path.join(tree.moddir, `kernel/${name}.ko`));
    };
    const same = async (): Promise<void> => {
      const withCache = snapshot(tree.moddir);
      await run({ basedir: tree.root, scanCache: false });
      expect(differingFiles(withCache, snapshot(tree.moddir))).toEqual([]);
    };
    fs.writeFileSync(path.join(tree.moddir, 'modules.dep'), '');
    await new Promise((r) => setTimeout(r, 2300));
    expect(await run({ basedir: tree.root })).toEqual({ loaded: false, hits: 0, scanned: 300, written: true });
    const first = fs.readFileSync(cache);
    expect(first.length).toBeGreaterThan(16 * fs.statSync(path.join(tree.moddir, 'kernel/m7.ko')).size);
    // one module added, old enough to be stored: scanned, but the cache stays, and the next run scans it again
    added(['x1']);
    await new Promise((r) => setTimeout(r, 2300));
    expect(await run({ basedir: tree.root })).toEqual({ loaded: true, hits: 300, scanned: 1, written: false });
    expect(fs.readFileSync(cache).equals(first)).toBe(true);
    await same();
    expect(await run({ basedir: tree.root })).toEqual({ loaded: true, hits: 300, scanned: 1, written: false });
    // more than REWRITE_COUNT of them: the cache is rewritten with them all
    added(['x2', 'x3', 'x4', 'x5', 'x6', 'x7', 'x8', 'x9']);
    await new Promise((r) => setTimeout(r, 2300));
    expect(await run({ basedir: tree.root })).toEqual({ loaded: true, hits: 300, scanned: 9, written: true });
    expect(await run({ basedir: tree.root })).toEqual({ loaded: true, hits: 309, scanned: 0, written: false });
    // one module as large as a 16th of the cache: rewritten at once
    const big = fs.readFileSync(path.join(tree.moddir, 'kernel/m7.ko'));
    fs.writeFileSync(path.join(tree.moddir, 'kernel/m7.ko'), Buffer.concat([big, Buffer.alloc(Math.ceil(fs.statSync(cache).size / 16))]));
    await new Promise((r) => setTimeout(r, 2300));
    expect(await run({ basedir: tree.root })).toEqual({ loaded: true, hits: 308, scanned: 1, written: true });
    await same();
  }, 60_000);

  it('without the addon: caches written by the JavaScript paths and by the addon read each other, with the same files', () => {
    // more than module-load.ts' RUN_DICTIONARY_FROM: the cold runs put the imports in one dictionary,
    // without the addon the JavaScript one, which the cache being written shares
    const many: SynModule[] = Array.from({ length: 70 }, (_, i) => ({
      rel: `kernel/n${i}.ko${i % 2 === 0 ? '' : '.xz'}`,
      exports: [`n${i}_sym`],
      imports: i > 0 ? [`n${i - 1}_sym`, 'n0_sym'] : [],
      modinfo: [['alias', `n-${i}`]],
    }));
    const tree = buildTree('cache-engines', many);
    const cache = path.join(tree.moddir, CACHE);
    const noAddon = { KMODTS_NATIVE_ADDON: path.join(tree.root, 'no-such-addon.node') };
    // depmod through the library in a process of its own (the addon is chosen once per process): its cache stats and files
    const depmodIn = (env: Record<string, string>, scanCache = true): { stats: Stats; files: ReturnType<typeof snapshot> } => {
      const script = `require(${JSON.stringify(path.join(repoRoot, 'dist/depmod/depmod.js'))}).depmod(${JSON.stringify({ kernelVersion: SYN_KVER, configPaths: ['/dev/null'], basedir: tree.root, scanCache })
        .slice(0, -1)}, onScanCache: (s) => console.log(JSON.stringify(s)) }).catch((e) => { console.error(e); process.exit(1); });`;
      const r = spawnSync(process.execPath, ['-e', script], { env: { PATH: process.env.PATH, ...env }, encoding: 'utf8' });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      return { stats: scanStats(JSON.parse(r.stdout) as Stats), files: snapshot(tree.moddir) };
    };
    fs.writeFileSync(path.join(tree.moddir, 'modules.dep'), '');
    spawnSync('sleep', ['2.3']);
    let full = depmodIn({}, false).files;
    // written without the addon (its dictionary built in JavaScript), read with it and without it
    expect(depmodIn(noAddon).stats).toEqual({ loaded: false, hits: 0, scanned: 70, written: true });
    expect(differingFiles(full, snapshot(tree.moddir))).toEqual([]);
    const jsCache = fs.readFileSync(cache);
    for (const env of [{}, noAddon]) {
      const run = depmodIn(env);
      expect(run.stats).toEqual({ loaded: true, hits: 70, scanned: 0, written: false });
      expect(differingFiles(full, run.files)).toEqual([]);
    }
    expect(fs.readFileSync(cache).equals(jsCache)).toBe(true);
    // more new modules than a run leaves out: the cache is rewritten keeping the old dictionary (seeded),
    // by the addon, then after more by JavaScript; each read by the other
    let count = 70;
    for (const [round, env, reader] of [[1, {}, noAddon], [2, noAddon, {}]] as const) {
      for (let k = 0; k < 9; k++) fs.copyFileSync(path.join(tree.moddir, 'kernel/n3.ko.xz'), path.join(tree.moddir, `kernel/r${round}_${k}.ko.xz`));
      spawnSync('sleep', ['2.3']);
      full = depmodIn({}, false).files;
      const writing = depmodIn(env);
      expect(writing.stats, `round ${round}`).toEqual({ loaded: true, hits: count, scanned: 9, written: true });
      expect(differingFiles(full, writing.files)).toEqual([]);
      count += 9;
      const reading = depmodIn(reader);
      expect(reading.stats, `round ${round}`).toEqual({ loaded: true, hits: count, scanned: 0, written: false });
      expect(differingFiles(full, reading.files)).toEqual([]);
    }
  }, 60_000);

  it('KMODTS_DEPMOD_CACHE=off: depmod neither reads nor writes it', () => {
    const tree = buildTree('cache-off', mods);
    const cache = path.join(tree.moddir, CACHE);
    const args = ['-C', configDir(tree.root, {}), '-b', tree.root, SYN_KVER];
    for (const off of ['off', 'OFF', '0', 'no', 'false']) {
      expect(runKmodts('depmod', args, { env: { KMODTS_DEPMOD_CACHE: off } }).status).toBe(0);
      expect(fs.existsSync(cache), off).toBe(false);
    }
    // the files must be older than the run by more than a timestamp tick to be stored
    spawnSync('sleep', ['2.3']);
    expect(runKmodts('depmod', args, { env: { KMODTS_DEPMOD_CACHE: 'on' } }).status).toBe(0);
    expect(fs.existsSync(cache)).toBe(true);
    // a cache that cannot be read is not even looked at: garbage in it changes nothing
    fs.writeFileSync(cache, 'garbage');
    const r = runKmodts('depmod', args, { env: { KMODTS_DEPMOD_CACHE: 'off' } });
    expect(r).toEqual({ stdout: '', stderr: '', status: 0 });
    expect(fs.readFileSync(cache, 'latin1')).toBe('garbage');
  });
});
