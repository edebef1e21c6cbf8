// Shared by the state suites: kmodts runs with a bound on their time, over the example tree.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { repoRoot } from '../../support/reference';

export const TREE = path.join(repoRoot, 'examples/tree');
export const KVER = '6.12.0-example';
export const MODDIR = path.join(TREE, 'lib/modules', KVER);
const KMODTS = path.join(repoRoot, 'bin/kmodts.js');
const dist = path.join(repoRoot, 'dist');

export const { SimBackend } = require(path.join(dist, 'backends/sim/index.js')) as typeof import('../../../src/backends/sim');
export const { SimStore } = require(path.join(dist, 'backends/sim/state.js')) as typeof import('../../../src/backends/sim/state');
export const { moduleListProblem } = require(path.join(dist, 'backends/sim/state-records.js')) as typeof import('../../../src/backends/sim/state-records');
export const { SimStateError } = require(path.join(dist, 'errors.js')) as typeof import('../../../src/errors');

export interface CliResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** node bin/kmodts.js ARGS, killed after timeoutMs (a hang shows as timedOut). */
export function cli(args: string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv; preload?: string } = {}): CliResult {
  const pre = opts.preload ? ['-r', opts.preload] : [];
  const r = spawnSync(process.execPath, [...pre, KMODTS, ...args], {
    env: { PATH: process.env.PATH, LANG: 'C', ...opts.env },
    encoding: 'latin1',
    timeout: opts.timeoutMs ?? 60_000,
    killSignal: 'SIGKILL',
  });
  const timedOut = (r.error as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT';
  return { status: r.status, signal: r.signal, stdout: r.stdout ?? '', stderr: r.stderr ?? '', timedOut };
}

/** The same, without waiting: for processes run side by side, or killed at a chosen moment. */
export function startCli(args: string[], opts: { timeoutMs?: number } = {}): { done: Promise<CliResult>; kill: () => void } {
  const p = spawn(process.execPath, [KMODTS, ...args], { env: { PATH: process.env.PATH, LANG: 'C' }, stdio: ['ignore', 'pipe', 'pipe'] });
  const done = new Promise<CliResult>((resolve) => {
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      p.kill('SIGKILL');
    }, opts.timeoutMs ?? 60_000);
    p.stdout.on('data', (c: Buffer) => (stdout += c.toString('latin1')));
    p.stderr.on('data', (c: Buffer) => (stderr += c.toString('latin1')));
    p.on('exit', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, stdout, stderr, timedOut });
    });
  });
  return { done, kill: () => p.kill('SIGKILL') };
}

/** Settings and modprobe arguments for the example tree in state directory `dir`. */
export const sim = (dir: string): string[] => ['--backend=sim', `--sim-state=${dir}`];
export const modprobe = (dir: string, ...args: string[]): string[] => [...sim(dir), 'modprobe', '-d', TREE, '-S', KVER, ...args];

/** Names of the loaded modules, read and validated as any command would. */
export function loaded(dir: string): string[] {
  return (new SimStore(dir).current()?.data.modules ?? []).map((m) => m.name).sort();
}

/** Every line of a state file, as bytes, for "left as it was" checks. */
export function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of fs.readdirSync(dir).sort()) {
    const p = path.join(dir, f);
    if (fs.statSync(p).isFile()) out[f] = fs.readFileSync(p, 'latin1');
  }
  return out;
}

/** No uncaught exception, stack trace, signal or hang: what every command must never end in. */
export function expectNoFault(r: CliResult): void {
  if (r.timedOut || r.signal || r.status === 70 || /internal error|^\s+at .*:\d+:\d+\)?$/m.test(r.stderr)) {
    throw new Error(`kmodts faulted (status ${r.status}, signal ${r.signal}, timed out ${r.timedOut}):\n${r.stderr}`);
  }
}
