// The fuzz supervisor: runs a target's inputs in worker processes (worker.ts), bounds each input's time,
// and turns a hang, a crash or an uncaught exception into a fault that names the input (target, seed,
// index: enough to make it again) and keeps a copy of its bytes.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { moduleDir } from '../support/reference';
import type { WorkerEvent } from './worker';

export interface Fault {
  target: string;
  seed: number;
  index: number;
  /** the seed input it was made from */
  from: string;
  what: string;
  /** a copy of the input */
  file: string;
}

export interface FuzzReport {
  target: string;
  seed: number;
  inputs: number;
  faults: Fault[];
}

export interface FuzzOptions {
  target: string;
  seed: number;
  count: number;
  /** the first input's index (default 0) */
  start?: number;
  perInputMs: number;
  /** where faulty inputs are copied (default: a temp directory) */
  faultDir?: string;
}

const here = __dirname;
let referenceModDir: string | undefined;

interface WorkerRun {
  next: number;
  inputs: number;
  faults: Fault[];
}

/** Runs inputs [from, end) in one worker; stops at the first hang or crash, which it records. */
function runWorker(o: FuzzOptions, from: number, end: number, work: string, faultDir: string): Promise<WorkerRun> {
  fs.mkdirSync(work, { recursive: true });
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-r', path.join(here, 'register-ts.cjs'), path.join(here, 'worker.ts'), o.target, String(o.seed), String(from), String(end - from), work], {
      stdio: ['ignore', 'pipe', 'pipe'],
      // the reference tree's place, found once here rather than by each worker (fetch-reference.sh is slow)
      env: { ...process.env, NODE_EXTRA_CA_CERTS: '', KMODTS_FUZZ_MODDIR: (referenceModDir ??= moduleDir()) },
    });
    const run: WorkerRun = { next: from, inputs: 0, faults: [] };
    let current: { i: number; seed: string } | undefined;
    let timer: NodeJS.Timeout | undefined;
    let hung = false;
    let stderr = '';
    let seedsReady = false;
    // A fault the worker reports comes with its input saved as fault-<i>; after a hang or a crash the
    // worker is gone and current-input holds the input. (Copying current-input while a live worker
    // rewrote it for its next input took the wrong bytes, and on Node 24 copyFileSync spun forever on
    // the file shrinking under it.)
    const record = (i: number, seed: string, what: string): void => {
      const file = path.join(faultDir, `${o.target}-${o.seed}-${i}`);
      const saved = path.join(work, `fault-${i}`);
      try {
        fs.mkdirSync(faultDir, { recursive: true });
        fs.copyFileSync(fs.existsSync(saved) ? saved : path.join(work, 'current-input'), file);
      } catch {
        /* no copy */
      }
      run.faults.push({ target: o.target, seed: o.seed, index: i, from: seed, what, file });
    };
    const arm = (ms: number): void => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => {
        hung = true;
        child.kill('SIGKILL');
      }, ms);
    };
    arm(120_000); // seeds: start-up, and for some targets a booted kernel
    let buffered = '';
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const e = JSON.parse(buffered.slice(0, nl)) as WorkerEvent;
        buffered = buffered.slice(nl + 1);
        if (e.ev === 'seeds') seedsReady = true;
        else if (e.ev === 'start') {
          current = { i: e.i, seed: e.seed };
          arm(o.perInputMs);
        } else if (e.ev === 'end') {
          run.inputs++;
          run.next = e.i + 1;
          if (e.fault) record(e.i, current?.seed ?? '?', e.fault);
          current = undefined;
        }
      }
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString('utf8');
    });
    child.on('exit', (code, signal) => {
      if (timer) clearTimeout(timer);
      if (!seedsReady) {
        reject(new Error(`fuzz worker for ${o.target} failed before its first input (${code ?? signal}): ${stderr}`));
        return;
      }
      if (current) {
        run.inputs++;
        run.next = current.i + 1;
        record(current.i, current.seed, hung ? `hang: more than ${o.perInputMs} ms` : `crash: worker ended by ${signal ?? `exit ${code}`}: ${stderr.slice(-2000)}`);
      } else if (code !== 0 && run.next < end) {
        reject(new Error(`fuzz worker for ${o.target} ended (${code ?? signal}) between inputs: ${stderr}`));
        return;
      }
      resolve(run);
    });
  });
}

/** Runs `count` inputs of a target; a worker that hangs or dies is replaced and the run goes on. */
export async function fuzz(o: FuzzOptions): Promise<FuzzReport> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), `kmodts-fuzz-${o.target.replace(/\W/g, '_')}-`));
  const faultDir = o.faultDir ?? path.join(work, 'faults');
  const report: FuzzReport = { target: o.target, seed: o.seed, inputs: 0, faults: [] };
  const end = (o.start ?? 0) + o.count;
  try {
    for (let next = o.start ?? 0; next < end; ) {
      const r = await runWorker(o, next, end, path.join(work, 'w'), faultDir);
      report.inputs += r.inputs;
      report.faults.push(...r.faults);
      next = r.next;
    }
  } finally {
    // faulty inputs are kept (outside the work directory when faultDir was given)
    for (const e of fs.readdirSync(work)) if (e !== 'faults') fs.rmSync(path.join(work, e), { recursive: true, force: true });
    if (report.faults.length === 0 || o.faultDir !== undefined) fs.rmSync(work, { recursive: true, force: true });
  }
  return report;
}
