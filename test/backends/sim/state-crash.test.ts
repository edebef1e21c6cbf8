// Crash safety of the simulated kernel's state: writers killed with SIGKILL at every step of their
// changes to the directory (before each write, rename, link or unlink, and in the middle of each write),
// at random points, and several writers at once. After every run the invariants hold: the journal reads
// back (validated, holders consistent with users), no operation completed before is lost, the killed
// operation is applied wholly or not at all, and the next writer goes on at once.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { prng } from '../../support/prng';
import { cli, expectNoFault, loaded, MODDIR, modprobe, moduleListProblem, sim, SimBackend, SimStore, startCli } from './state-support';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-simcrash-'));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));
const hook = path.join(__dirname, 'crash-hook.cjs');

const FANCY = ['greet_core', 'greet_fancy', 'greet_hello', 'greet_log'];
const file = (m: string): string => path.join(MODDIR, m === 'greet_hello' ? 'kernel/drivers/greet/greet-hello.ko' : m.startsWith('greet_log') || m === 'greet_core' ? `kernel/lib/${m}.ko` : `kernel/drivers/greet/${m}.ko`);

/** The invariants after any run, killed or not; returns the loaded modules. */
function checkInvariants(dir: string): string[] {
  const st = new SimStore(dir).current(); // throws on any damage
  const mods = st?.data.modules ?? [];
  expect(moduleListProblem(mods)).toBeUndefined();
  new SimStore(dir).readKmsg();
  // the next writer takes the lock at once, and cuts a torn line off
  const next = new SimStore(dir, { lock: { noticeMs: 0, onWait: (h) => { throw new Error(`waited for ${JSON.stringify(h)} after a crash`); } } });
  next.withLock(() => undefined);
  // nor are temp files of the killed writer left behind
  expect(fs.readdirSync(dir).filter((f) => !['state.jsonl', 'kmsg'].includes(f))).toEqual([]);
  if (fs.existsSync(path.join(dir, 'state.jsonl'))) {
    const text = fs.readFileSync(path.join(dir, 'state.jsonl'), 'utf8');
    expect(text.endsWith('\n')).toBe(true);
  }
  return mods.map((m) => m.name).sort();
}

/** Loads what is missing of greet_fancy's set in-process, in dependency order, as modprobe would. */
function finishLoad(dir: string): void {
  const b = new SimBackend(dir);
  for (const m of ['greet_core', 'greet_hello', 'greet_log', 'greet_fancy']) if (!loaded(dir).includes(m)) b.finitModule(file(m), '', 0);
}

interface Scenario {
  name: string;
  /** what is there before the killed command, made by completed commands */
  before: string[][];
  killed: string[];
  /** the module sets allowed after the kill: wholly or not at all, per operation */
  allowed: string[][];
}

function scenarios(dir: string): Scenario[] {
  return [
    // boot: snapshot and log written, then one load
    { name: 'boot and load', before: [], killed: modprobe(dir, 'greet_core'), allowed: [[], ['greet_core']] },
    // three loads on a kernel that has run
    {
      name: 'loads',
      before: [modprobe(dir, 'greet_log')],
      killed: modprobe(dir, 'greet_fancy'),
      allowed: [['greet_log'], ['greet_core', 'greet_log'], ['greet_core', 'greet_hello', 'greet_log'], FANCY],
    },
    // removals
    {
      name: 'removals',
      before: [modprobe(dir, 'greet_fancy')],
      killed: modprobe(dir, '-r', 'greet_fancy'),
      // filled in from an uninterrupted run: the sets left after each removal, in modprobe's order
      allowed: [FANCY],
    },
  ];
}

/** The state made by a scenario's completed commands, made once and copied for each run. */
const prepared = new Map<string, string>();
function prepare(dir: string, s: Scenario): void {
  let ready = prepared.get(s.name);
  if (!ready) {
    ready = path.join(work, `ready-${prepared.size}`);
    fs.rmSync(dir, { recursive: true, force: true });
    for (const args of s.before) expect(cli(args).status).toBe(0);
    if (fs.existsSync(dir)) fs.cpSync(dir, ready, { recursive: true });
    else fs.mkdirSync(ready);
    prepared.set(s.name, ready);
  }
  fs.rmSync(dir, { recursive: true, force: true });
  fs.cpSync(ready, dir, { recursive: true });
}

/**
 * Runs a scenario's killed command with the crash hook, checks the invariants, and returns whether it
 * was killed and, for a run that was not, its steps ('1' for a write that can be torn, '0' otherwise).
 */
function runKilled(dir: string, s: Scenario, step: number, mode: 'before' | 'torn'): { killed: boolean; steps: string } {
  prepare(dir, s);
  const count = path.join(work, 'steps');
  fs.rmSync(count, { force: true });
  const r = cli(s.killed, { preload: hook, env: { KMODTS_CRASH_DIR: dir, KMODTS_CRASH_STEP: String(step), KMODTS_CRASH_MODE: mode, KMODTS_CRASH_COUNT: count } });
  const killed = r.signal === 'SIGKILL';
  if (!killed) expect({ status: r.status, err: r.stderr }).toEqual({ status: 0, err: '' });
  const mods = checkInvariants(dir);
  expect(s.allowed, `${s.name}, step ${step} (${mode}): ${mods.join(',')}`).toContainEqual(mods);
  return { killed, steps: killed ? '' : fs.readFileSync(count, 'utf8') };
}

describe('state crash safety', () => {
  it('SIGKILL before and in the middle of every write step: invariants hold, the next writer goes on', () => {
    const dir = path.join(work, 'steps-dir');
    let runs = 0;
    for (const s of scenarios(dir)) {
      // a run without a kill lists the steps
      if (s.name === 'removals') {
        prepare(dir, s);
        expect(cli(s.killed).status).toBe(0);
        const order = fs.readFileSync(path.join(dir, 'state.jsonl'), 'utf8').split('\n').filter((l) => l.startsWith('{"op":"unload"')).map((l) => (JSON.parse(l) as { name: string }).name);
        // like kmod, modprobe -r leaves greet_core: it tried that one while greet_hello still held it
        expect(order).toEqual(['greet_fancy', 'greet_hello', 'greet_log']);
        for (let i = 1; i <= order.length; i++) s.allowed.push(FANCY.filter((m) => !order.slice(0, i).includes(m)));
      }
      const steps = runKilled(dir, s, 0, 'before').steps;
      expect(steps.length).toBeGreaterThan(3);
      for (let step = 1; step <= steps.length; step++) {
        for (const mode of steps[step - 1] === '1' ? (['before', 'torn'] as const) : (['before'] as const)) {
          expect(runKilled(dir, s, step, mode).killed).toBe(true);
          runs++;
          // the next writer finishes the killed operation: nothing was left half-done
          if (s.name !== 'removals') {
            finishLoad(dir);
            expect(checkInvariants(dir)).toEqual(FANCY);
          }
        }
      }
    }
    // three scenarios of 8 to 20 steps each, killed before and within each step
    expect(runs).toBeGreaterThan(40);
  }, 600_000);

  it('SIGKILL at random moments (seeded) of writers loading and removing', async () => {
    const rng = prng(15);
    const dir = path.join(work, 'random');
    expect(cli(modprobe(dir, 'greet_log')).status).toBe(0);
    let killedRuns = 0;
    for (let run = 0; run < 16; run++) {
      const args = run % 2 === 0 ? modprobe(dir, 'greet_fancy') : modprobe(dir, '-r', 'greet_fancy');
      const p = startCli(args);
      // kill after a random delay: from start-up to after the last write
      const timer = setTimeout(p.kill, Math.floor(rng() * 500));
      const res = await p.done;
      clearTimeout(timer);
      if (res.signal === 'SIGKILL') killedRuns++;
      else expectNoFault(res);
      const mods = checkInvariants(dir);
      expect(mods.every((m) => FANCY.includes(m))).toBe(true);
    }
    // the seed kills some runs and lets some finish
    expect(killedRuns).toBeGreaterThan(0);
    finishLoad(dir);
    expect(checkInvariants(dir)).toEqual(FANCY);
  }, 600_000);

  it('several processes loading and removing at once lose nothing', async () => {
    const dir = path.join(work, 'concurrent');
    expect(cli([...modprobe(dir, 'greet_core')]).status).toBe(0);
    // each process owns one module and ends with it removed; greet_core, shared, stays (held by the first
    // load). greet_hello goes in by insmod: modprobe would also load greet_log, its softdep, whenever that
    // loop had just removed it, and leave it loaded at the end (a race of the test, not of the state)
    const hello = path.join(MODDIR, 'kernel/drivers/greet/greet-hello.ko');
    const loop = async (m: string): Promise<void> => {
      const load = m === 'greet_hello' ? [...sim(dir), 'insmod', hello] : modprobe(dir, m);
      for (let i = 0; i < 4; i++) {
        for (const args of [load, [...sim(dir), 'rmmod', m]]) {
          const r = await startCli(args, { timeoutMs: 120_000 }).done;
          expectNoFault(r);
          expect({ args: args.slice(-2), status: r.status, err: r.stderr }).toEqual({ args: args.slice(-2), status: 0, err: '' });
        }
      }
    };
    await Promise.all(['greet_log', 'greet_bonjour', 'greet_hello'].map(loop));
    expect(checkInvariants(dir)).toEqual(['greet_core']);
    // 3 processes x 4 rounds x (load + remove) = 24 changes, each one journal line after the boot
    const lines = fs.readFileSync(path.join(dir, 'state.jsonl'), 'utf8').trim().split('\n');
    expect(lines.filter((l) => l.startsWith('{"op":"load"')).length).toBe(1 + 12);
    expect(lines.filter((l) => l.startsWith('{"op":"unload"')).length).toBe(12);
  }, 600_000);
});
