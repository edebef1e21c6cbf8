// The cache of kmod 34.2's results (kmod-cache.ts, kmod-inputs.ts): every input that can change kmod's
// answer changes the key, scratch paths are normalised and restored, damaged entries are rewritten,
// a disagreeing live sample throws the cache away, and nothing is cached for cases that act.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { withKmodCache } from './kmod-cache';
import { BatchInputs, cacheable, caseKey, normalise, restore, scratchDirs } from './kmod-inputs';
import type { ToolCase } from './kmod-pool';
import type { RunResult } from './reference';

const scratch = (): string => fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-cachetest-'));
const key = (tool: string, c: ToolCase): string => caseKey(tool, c, new BatchInputs()).key;

/** a scratch tree: a config file, a module tree with a linked directory, a fake /sys/module */
function fixture(): { root: string; conf: string; tree: string; linked: string; sys: string } {
  const root = scratch();
  const conf = path.join(root, 'x.conf');
  fs.writeFileSync(conf, 'alias foo bar\n');
  const tree = path.join(root, 'tree');
  const linked = path.join(root, 'elsewhere');
  fs.mkdirSync(path.join(tree, 'lib/modules/1.0'), { recursive: true });
  fs.mkdirSync(linked);
  fs.writeFileSync(path.join(tree, 'lib/modules/1.0/modules.dep'), 'kernel/a.ko:\n');
  fs.writeFileSync(path.join(linked, 'a.ko'), 'module');
  fs.symlinkSync(linked, path.join(tree, 'lib/modules/1.0/kernel'));
  const sys = path.join(root, 'sys');
  fs.mkdirSync(path.join(sys, 'foo/holders'), { recursive: true });
  fs.writeFileSync(path.join(sys, 'foo/initstate'), 'live\n');
  return { root, conf, tree, linked, sys };
}

describe('which cases are cached', () => {
  it('modinfo always; modprobe only when it prints instead of acting', () => {
    expect(cacheable('modinfo', { args: ['x'] })).toBe(true);
    for (const args of [['-D', 'x'], ['-nv', 'x'], ['-Cnone', '-R', 'x'], ['-c'], ['x', '--dry-run'], ['-d', '/t', '--show-depends', 'x']]) {
      expect(cacheable('modprobe', { args }), args.join(' ')).toBe(true);
    }
    for (const args of [['x'], ['-r', 'x'], ['-C', '-D', 'x'], ['-wn', 'x'], ['-d', '-n', 'x'], ['--', '-n'], ['--dry', 'x'], ['--dry-run=1', 'x'], ['-a', 'x', 'y']]) {
      expect(cacheable('modprobe', { args }), args.join(' ')).toBe(false);
    }
    expect(cacheable('modprobe', { args: ['x', '-D'], env: { POSIXLY_CORRECT: '1' } })).toBe(false);
    expect(cacheable('modprobe', { args: ['-D', 'x'], env: { MODPROBE_OPTIONS: '-v -C' } })).toBe(false);
    expect(cacheable('modprobe', { args: ['-D', 'x'], env: { MODPROBE_OPTIONS: '-v -q' } })).toBe(true);
    for (const tool of ['insmod', 'rmmod', 'lsmod', 'depmod', 'kmod']) expect(cacheable(tool, { args: ['-n'] })).toBe(false);
  });
});

describe('the key', () => {
  it('misses when a named config file, a tree file (through a link), env, cmdline, /sys/module or cwd change', () => {
    const f = fixture();
    const base: ToolCase = { args: ['-d', f.tree, '-S', '1.0', '-C', f.conf, '-D', 'foo'], sysModule: f.sys, cmdline: 'foo.x=1' };
    const k0 = key('modprobe', base);
    expect(key('modprobe', base)).toBe(k0);
    fs.writeFileSync(f.conf, 'alias foo bar\n'); // rewritten, same content
    expect(key('modprobe', base)).toBe(k0);
    const changes: [string, () => void, () => void][] = [
      ['config', () => fs.writeFileSync(f.conf, 'alias foo baz\n'), () => fs.writeFileSync(f.conf, 'alias foo bar\n')],
      ['tree file behind a link', () => fs.writeFileSync(path.join(f.linked, 'a.ko'), 'modulE'), () => fs.writeFileSync(path.join(f.linked, 'a.ko'), 'module')],
      ['new tree file', () => fs.writeFileSync(path.join(f.tree, 'lib/modules/1.0/modules.softdep'), ''), () => fs.rmSync(path.join(f.tree, 'lib/modules/1.0/modules.softdep'))],
      ['sys initstate', () => fs.writeFileSync(path.join(f.sys, 'foo/initstate'), 'coming\n'), () => fs.writeFileSync(path.join(f.sys, 'foo/initstate'), 'live\n')],
      ['sys holder', () => fs.symlinkSync('../../bar', path.join(f.sys, 'foo/holders/bar')), () => fs.rmSync(path.join(f.sys, 'foo/holders/bar'))],
    ];
    for (const [what, change, undo] of changes) {
      change();
      expect(key('modprobe', base), what).not.toBe(k0);
      undo();
      expect(key('modprobe', base), `${what} undone`).toBe(k0);
    }
    expect(key('modprobe', { ...base, cmdline: 'foo.x=2' })).not.toBe(k0);
    expect(key('modprobe', { ...base, cmdline: undefined })).not.toBe(k0);
    expect(key('modprobe', { ...base, sysModule: undefined })).not.toBe(k0);
    expect(key('modprobe', { ...base, env: { MODPROBE_OPTIONS: '-v' } })).not.toBe(k0);
    expect(key('modprobe', { ...base, env: { KMOD_LOG: 'debug' } })).not.toBe(k0);
    expect(key('modinfo', base)).not.toBe(k0);
    expect(key('modprobe', { ...base, args: [...base.args, 'x=1'] })).not.toBe(k0);
    expect(key('modprobe', { ...base, cwd: f.root })).not.toBe(k0);
  });

  it('a relative path is keyed by what it names from the case\'s cwd, absent paths too', () => {
    const f = fixture();
    const c: ToolCase = { args: ['-C', 'x.conf', '-D', 'later'], cwd: f.root };
    const k0 = key('modprobe', c);
    fs.writeFileSync(path.join(f.root, 'x.conf'), 'alias foo other\n');
    expect(key('modprobe', c)).not.toBe(k0);
    const k1 = key('modprobe', c);
    fs.writeFileSync(path.join(f.root, 'later'), 'now here'); // a module name that became a file
    expect(key('modprobe', c)).not.toBe(k1);
    const k2 = key('modprobe', { args: ['-D', 'x'], cwd: f.root, env: { MODPROBE_OPTIONS: `-C '${f.conf}'` } });
    fs.writeFileSync(f.conf, 'alias foo none\n'); // named in the environment only
    expect(key('modprobe', { args: ['-D', 'x'], cwd: f.root, env: { MODPROBE_OPTIONS: `-C '${f.conf}'` } })).not.toBe(k2);
    // words that cannot name a file are keyed by the error kmod would meet too
    expect(key('modprobe', { args: ['-D', 'x'.repeat(5000)] })).not.toBe(key('modprobe', { args: ['-D', 'x'.repeat(5001)] }));
    expect(key('modprobe', { args: ['-D', `${f.conf}/below`] })).toBe(key('modprobe', { args: ['-D', `${f.conf}/below`] }));
    const k3 = key('modprobe', { args: [`--config=${f.conf}`, '-D', 'x'] });
    fs.writeFileSync(f.conf, 'alias foo again\n'); // after '='
    expect(key('modprobe', { args: [`--config=${f.conf}`, '-D', 'x'] })).not.toBe(k3);
  });

  it('scratch directories of different runs with the same content give the same key, restored in output', () => {
    const a = fixture();
    const b = fixture();
    const ka = caseKey('modprobe', { args: ['-C', a.conf, '-d', a.tree, '-D', 'foo'] }, new BatchInputs());
    const kb = caseKey('modprobe', { args: ['-C', b.conf, '-d', b.tree, '-D', 'foo'] }, new BatchInputs());
    expect(ka.key).toBe(kb.key);
    expect(ka.dirs).toEqual([a.root]);
    const out = `insmod ${a.tree}/lib/modules/1.0/kernel/a.ko\n`;
    const kept = normalise(out, ka.dirs);
    expect(kept).not.toContain(a.root);
    expect(restore(kept, kb.dirs)).toBe(`insmod ${b.tree}/lib/modules/1.0/kernel/a.ko\n`);
    expect(scratchDirs([`${os.tmpdir()}/kmodts-cachetest-abc/x`])).toEqual([]); // not a mkdtemp name
  });
});

describe('the cache', () => {
  afterEach(() => {
    vi.restoreAllMocks();
    delete process.env.KMODTS_TEST_KMOD_CACHE;
  });
  const cases: ToolCase[] = Array.from({ length: 50 }, (_, i) => ({ args: [`/nonexistent/m${i}.ko`] }));
  const answer = (c: ToolCase): RunResult => ({ stdout: '', stderr: `modinfo: ERROR: Module ${c.args[0]} not found.\n`, status: 1 });
  const same = (a: RunResult, b: RunResult): boolean => JSON.stringify(a) === JSON.stringify(b);
  function counted(f: (c: ToolCase) => RunResult = answer): { live: (cs: ToolCase[]) => Promise<RunResult[]>; runs: number[] } {
    const runs: number[] = [];
    return { runs, live: async (cs) => (runs.push(cs.length), cs.map(f)) };
  }
  function stderr(): string[] {
    const said: string[] = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((s) => (said.push(String(s)), true));
    return said;
  }

  it('a miss runs everything and stores; a hit re-runs only a sample live', async () => {
    const dir = path.join(scratch(), 'results');
    const first = counted();
    expect(await withKmodCache('modinfo', cases, { live: first.live, same, dir })).toEqual(cases.map(answer));
    expect(first.runs).toEqual([50]);
    expect(fs.readdirSync(dir).filter((n) => n.endsWith('.json'))).toHaveLength(1);
    const second = counted();
    expect(await withKmodCache('modinfo', cases, { live: second.live, same, dir })).toEqual(cases.map(answer));
    expect(second.runs).toEqual([2]); // 3% of 50, rounded up
  });

  it('cases that act always run live, also on a hit', async () => {
    const dir = path.join(scratch(), 'results');
    const mixed: ToolCase[] = [{ args: ['-D', 'a'] }, { args: ['a'] }, { args: ['-n', 'b'] }];
    await withKmodCache('modprobe', mixed, { live: counted().live, same, dir });
    const again = counted();
    await withKmodCache('modprobe', mixed, { live: again.live, same, dir });
    expect(again.runs).toEqual([2]); // the loading case and a one-case sample
    const none = counted();
    await withKmodCache('insmod', mixed, { live: none.live, same, dir });
    expect(none.runs).toEqual([3]);
  });

  it('a case where kmod died of a signal is not kept: it runs live on every hit', async () => {
    const dir = path.join(scratch(), 'results');
    const crashing = (c: ToolCase): RunResult => (c === cases[7] ? { stdout: 'partial', stderr: '', status: 139 } : answer(c));
    await withKmodCache('modinfo', cases, { live: counted(crashing).live, same, dir });
    const run = counted(crashing);
    expect(await withKmodCache('modinfo', cases, { live: run.live, same, dir })).toEqual(cases.map(crashing));
    expect(run.runs).toEqual([3]); // the crash and a 2-case sample of the 49 others
  });

  it('a damaged entry is said, ignored and rewritten', async () => {
    const dir = path.join(scratch(), 'results');
    await withKmodCache('modinfo', cases, { live: counted().live, same, dir });
    const [name] = fs.readdirSync(dir);
    const file = path.join(dir, name);
    const good = fs.readFileSync(file, 'utf8');
    for (const damaged of [good.slice(0, good.length / 2), '', 'null', good.replace('"status":1', '"status":"1"'), good.replace(/"results":\[.*\]/, '"results":[]')]) {
      fs.writeFileSync(file, damaged);
      const said = stderr();
      const run = counted();
      expect(await withKmodCache('modinfo', cases, { live: run.live, same, dir })).toEqual(cases.map(answer));
      vi.restoreAllMocks();
      expect(run.runs).toEqual([50]);
      expect(said.join('')).toContain(`${file} is damaged: ignored, running live and rewriting it`);
      expect(fs.readFileSync(file, 'utf8')).toBe(good);
    }
  });

  it('a live sample that disagrees discards the whole cache and runs everything live', async () => {
    const dir = path.join(scratch(), 'results');
    await withKmodCache('modinfo', cases, { live: counted().live, same, dir });
    const other = path.join(dir, 'other.json');
    fs.writeFileSync(other, '{}');
    const said = stderr();
    const changed = (c: ToolCase): RunResult => ({ ...answer(c), status: 2 });
    const run = counted(changed);
    expect(await withKmodCache('modinfo', cases, { live: run.live, same, dir })).toEqual(cases.map(changed));
    vi.restoreAllMocks();
    expect(run.runs).toEqual([2, 50]);
    expect(said.join('')).toMatch(/differs from kmod's live run \(sample seed \d+\): discarding the whole cache .* running these 50 cases live/);
    expect(fs.existsSync(other)).toBe(false);
    // the fresh live results are what is kept
    const next = counted(changed);
    expect(await withKmodCache('modinfo', cases, { live: next.live, same, dir })).toEqual(cases.map(changed));
    expect(next.runs).toEqual([2]);
  });

  it('concurrent writers of one entry leave one whole entry and no temporary files', async () => {
    const dir = path.join(scratch(), 'results');
    const runs = await Promise.all(Array.from({ length: 6 }, () => withKmodCache('modinfo', cases, { live: counted().live, same, dir })));
    for (const r of runs) expect(r).toEqual(cases.map(answer));
    expect(fs.readdirSync(dir)).toHaveLength(1);
    const run = counted();
    await withKmodCache('modinfo', cases, { live: run.live, same, dir });
    expect(run.runs).toEqual([2]);
  });

  it('KMODTS_TEST_KMOD_CACHE=off runs everything live and stores nothing', async () => {
    const dir = path.join(scratch(), 'results');
    process.env.KMODTS_TEST_KMOD_CACHE = 'off';
    const run = counted();
    await withKmodCache('modinfo', cases, { live: run.live, same, dir });
    await withKmodCache('modinfo', cases, { live: run.live, same, dir });
    expect(run.runs).toEqual([50, 50]);
    expect(fs.existsSync(dir)).toBe(false);
    process.env.KMODTS_TEST_KMOD_CACHE = 'maybe';
    await expect(withKmodCache('modinfo', cases, { live: run.live, same, dir })).rejects.toThrow('KMODTS_TEST_KMOD_CACHE must be "on" or "off"');
  });
});
