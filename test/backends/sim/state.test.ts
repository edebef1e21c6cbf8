// The simulated kernel's state directory: concurrent invocations lose nothing, a crash mid-write (torn
// journal line, lock left by a dead process) does not corrupt anything, compaction keeps the state, and
// the dmesg CLI shows the log.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { reference, repoRoot } from '../../support/reference';
import { debianKernel } from './support';

const dist = path.join(repoRoot, 'dist');
const { createSimBackend, SimBackend } = require(path.join(dist, 'backends/sim/index.js')) as typeof import('../../../src/backends/sim');
const { main } = require(path.join(dist, 'cli/main.js')) as typeof import('../../../src/cli/main');
const { captureIo } = require(path.join(dist, 'cli/io.js')) as typeof import('../../../src/cli/io');

const ref = reference();
const moddir = path.join(ref.KTREE, 'lib/modules', ref.KVER);
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-simstate-'));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

const kernelOpts = debianKernel(ref);

/** Modules without dependencies, for loading in any order. */
function leafModules(n: number): string[] {
  const out: string[] = [];
  for (const line of fs.readFileSync(path.join(moddir, 'modules.dep'), 'utf8').split('\n')) {
    const [file, deps] = line.split(':');
    if (file && deps !== undefined && deps.trim() === '' && /\/(net|block|crypto)\//.test(file)) out.push(file);
    if (out.length === n) break;
  }
  return out;
}

describe('state directory', () => {
  it('concurrent processes loading and removing modules lose nothing', async () => {
    const state = path.join(work, 'concurrent');
    const files = leafModules(24);
    expect(files.length).toBe(24);
    const script = `
      const { createSimBackend } = require(${JSON.stringify(path.join(dist, 'backends/sim/index.js'))});
      const opts = JSON.parse(process.argv[1]);
      const b = createSimBackend({}, opts.kernel);
      for (const f of opts.files) b.finitModule(f, '', 4);
      // churn: remove and load again the first one
      const first = require('path').basename(opts.files[0]).replace(/\\.ko.*$/, '').replace(/-/g, '_');
      b.deleteModule(first, 0o4000);
      b.finitModule(opts.files[0], '', 4);
    `;
    const groups = [0, 1, 2, 3].map((g) => files.filter((_f, i) => i % 4 === g).map((f) => path.join(moddir, f)));
    const codes = await Promise.all(
      groups.map(
        (g) =>
          new Promise<number>((resolve) => {
            const p = spawn(process.execPath, ['-e', script, JSON.stringify({ files: g, kernel: { ...kernelOpts, stateDir: state } })], { stdio: ['ignore', 'ignore', 'inherit'] });
            p.on('exit', (c) => resolve(c ?? 1));
          }),
      ),
    );
    expect(codes).toEqual([0, 0, 0, 0]);
    const b = new SimBackend(state);
    const names = new Set((b.procModules() ?? []).map((p) => p.name));
    expect(names.size).toBe(24);
    expect(fs.existsSync(path.join(state, 'lock'))).toBe(false);
  }, 120_000);

  it('a torn last journal line is ignored and cut by the next writer; a dead holder\'s lock is broken', () => {
    const state = path.join(work, 'torn');
    const b = createSimBackend({}, { ...kernelOpts, stateDir: state });
    b.finitModule(path.join(moddir, 'kernel/drivers/net/dummy.ko.xz'), '', 4);
    fs.appendFileSync(path.join(state, 'state.jsonl'), '{"op":"unload","name":"dum');
    expect(new SimBackend(state).procModules()?.map((p) => p.name)).toEqual(['dummy']);
    // a lock whose holder is gone (old format: the pid alone; new: pid, start time, command)
    fs.writeFileSync(path.join(state, 'lock'), '999999999\n');
    createSimBackend({}, { ...kernelOpts, stateDir: state }).finitModule(path.join(moddir, 'kernel/drivers/net/ifb.ko.xz'), '', 4);
    new SimBackend(state).deleteModule('ifb', 0);
    fs.writeFileSync(path.join(state, 'lock'), '999999999 1234 node\n');
    const c = createSimBackend({}, { ...kernelOpts, stateDir: state });
    c.finitModule(path.join(moddir, 'kernel/drivers/net/ifb.ko.xz'), '', 4);
    expect(new SimBackend(state).procModules()?.map((p) => p.name)).toEqual(['ifb', 'dummy']);
    const journal = fs.readFileSync(path.join(state, 'state.jsonl'), 'utf8');
    expect(journal.endsWith('\n')).toBe(true);
    for (const line of journal.trim().split('\n')) expect(() => JSON.parse(line)).not.toThrow();
  });

  it('damaged journal lines are reported, never skipped; a damaged snapshot never becomes a fresh boot', () => {
    const state = path.join(work, 'damaged');
    const b = createSimBackend({}, { ...kernelOpts, stateDir: state });
    b.finitModule(path.join(moddir, 'kernel/drivers/net/dummy.ko.xz'), '', 4);
    const journal = path.join(state, 'state.jsonl');
    const good = fs.readFileSync(journal);
    for (const bad of ['{"op":"load"}\n', '[1,2]\n', 'not json\n', '{"op":"unload","name":7,"g":null}\n']) {
      fs.writeFileSync(journal, Buffer.concat([good, Buffer.from(bad)]));
      expect(() => new SimBackend(state).procModules(), bad).toThrow(/state\.jsonl:3: damaged state: /);
    }
    fs.writeFileSync(journal, '{"op":"snap","s":{"modules":"x"}}\n');
    const c = createSimBackend({}, { ...kernelOpts, stateDir: state });
    expect(() => c.procModules()).toThrow(/state\.jsonl:1: damaged state: s\.v: missing/);
    expect(() => c.finitModule(path.join(moddir, 'kernel/drivers/net/ifb.ko.xz'), '', 4)).toThrow(/state\.jsonl:1: damaged state/);
    expect(fs.readFileSync(journal, 'utf8')).toBe('{"op":"snap","s":{"modules":"x"}}\n');
  });

  it('compaction rewrites the journal without changing the state', () => {
    const state = path.join(work, 'compact');
    const b = createSimBackend({}, { ...kernelOpts, stateDir: state });
    const dummy = path.join(moddir, 'kernel/drivers/net/dummy.ko.xz');
    b.finitModule(path.join(moddir, 'kernel/drivers/net/ifb.ko.xz'), '', 4);
    for (let i = 0; i < 300; i++) {
      b.finitModule(dummy, '', 4);
      b.deleteModule('dummy', 0);
    }
    b.finitModule(dummy, 'numdummies=2', 4);
    const lines = fs.readFileSync(path.join(state, 'state.jsonl'), 'utf8').trim().split('\n');
    expect(lines.length).toBeLessThan(200);
    expect(new SimBackend(state).procModulesText()).toBe(b.procModulesText());
    expect(b.procModules()?.map((p) => p.name)).toEqual(['dummy', 'ifb']);
  }, 120_000);

  it('dmesg shows the log (times, raw levels, no times), clears it; refuses without the sim backend', async () => {
    const state = path.join(work, 'dmesg');
    const b = createSimBackend({}, { ...kernelOpts, stateDir: state });
    b.finitModule(path.join(moddir, 'kernel/drivers/net/dummy.ko.xz'), 'bogus=1', 4);
    const run = async (args: string[], settings = ['--backend=sim', `--sim-state=${state}`]): Promise<{ status: number; out: string; err: string }> => {
      const io = captureIo({});
      const status = await main('kmodts', [...settings, 'dmesg', ...args], io);
      return { status, out: io.out(), err: io.err() };
    };
    let r = await run([]);
    expect(r.status).toBe(0);
    expect(r.out).toMatch(/^\[ {4}0\.000000\] Linux version .* \(kmodts simulated kernel\)\n\[ *\d+\.\d{6}\] dummy: unknown parameter 'bogus' ignored\n$/);
    r = await run(['-r', '-t']);
    expect(r.out).toBe(`<6>Linux version ${ref.KVER} (kmodts simulated kernel)\n<4>dummy: unknown parameter 'bogus' ignored\n`);
    r = await run(['-C']);
    expect(r).toEqual({ status: 0, out: '', err: '' });
    expect((await run([])).out).toBe('');
    r = await run([], []);
    expect(r.status).toBe(1);
    expect(r.err).toMatch(/--backend=sim/);
    r = await run(['--bogus']);
    expect(r.status).toBe(1);
  });

  it('without any kernel choice, the kernel is the one of the first module loaded, and without Module.symvers the tree gives the exports', async () => {
    const state = path.join(work, 'adopt');
    const env = { KMODTS_SIM_STATE: state, XDG_CACHE_HOME: path.join(work, 'cache'), HOME: work };
    const io = captureIo(env);
    const saved = { ...process.env };
    Object.assign(process.env, env);
    let status: number;
    try {
      status = await main('kmodts', ['--backend=sim', 'modprobe', '-d', ref.KTREE, '-S', ref.KVER, '-C', path.join(work, 'none'), 'macvtap'], io);
    } finally {
      for (const k of Object.keys(env)) delete process.env[k];
      Object.assign(process.env, saved);
    }
    expect({ status, err: io.err() }).toEqual({ status: 0, err: '' });
    const b = new SimBackend(state);
    expect(b.spec().release).toBe(ref.KVER);
    expect(b.spec().symvers).toBeUndefined();
    expect(b.procModules()?.map((p) => p.name)).toEqual(['macvtap', 'macvlan', 'tap']);
    expect(fs.readdirSync(path.join(work, 'cache/kmodts')).some((f) => f.startsWith('symvers-derived-'))).toBe(true);
  }, 120_000);

  it('a module under /lib/modules/ names the kernel only where that directory is a kernel tree', async () => {
    const module = leafModules(1)[0];
    const releaseAfterInsmod = async (name: string, treeFile?: string): Promise<string> => {
      const root = path.join(work, `tree-${name}`);
      const dir = path.join(root, 'lib/modules/external');
      fs.mkdirSync(dir, { recursive: true });
      const file = path.join(dir, path.basename(module));
      fs.copyFileSync(path.join(moddir, module), file);
      if (treeFile !== undefined) fs.writeFileSync(path.join(dir, treeFile), '');
      const state = path.join(work, `state-${name}`);
      const env = { KMODTS_SIM_STATE: state, XDG_CACHE_HOME: path.join(work, 'cache'), HOME: work };
      const saved = { ...process.env };
      Object.assign(process.env, env);
      try {
        await main('kmodts', ['--backend=sim', 'insmod', file], captureIo(env));
      } finally {
        for (const k of Object.keys(env)) delete process.env[k];
        Object.assign(process.env, saved);
      }
      return new SimBackend(state).spec().release;
    };
    // kmod's own testsuite keeps modules in /lib/modules/external: not a kernel's release
    expect(await releaseAfterInsmod('external')).toBe(os.release());
    expect(await releaseAfterInsmod('ordered', 'modules.order')).toBe('external');
    expect(await releaseAfterInsmod('builtin', 'modules.builtin')).toBe('external');
  }, 120_000);
});

