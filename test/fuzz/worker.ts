// One fuzz worker process: runs inputs [start, start+count) of a target with a seed and reports each on
// stdout as a JSON line, written synchronously so that the supervisor (engine.ts) knows which input was
// running when the process hung or died. Started as: node -r register-ts.cjs worker.ts TARGET SEED START COUNT WORK
import * as fs from 'node:fs';
import * as path from 'node:path';
import { inputRng } from './mutate';
import { mutate, selfTestTargets, targets } from './targets';
import { repoRoot } from '../support/reference';

// the error classes of the built library the targets use
const { KmodError, SimStateError } = require(path.join(repoRoot, 'dist/errors')) as typeof import('../../src/errors');

export type WorkerEvent = { ev: 'seeds'; count: number } | { ev: 'start'; i: number; seed: string } | { ev: 'end'; i: number; fault?: string } | { ev: 'done' };

function say(e: WorkerEvent): void {
  fs.writeSync(1, JSON.stringify(e) + '\n');
}

function main(): void {
  const [name, seedText, startText, countText, work] = process.argv.slice(2);
  const target = [...targets, ...selfTestTargets].find((t) => t.name === name);
  if (!target) throw new Error(`unknown fuzz target ${name}`);
  const seed = Number(seedText);
  const start = Number(startText);
  const count = Number(countText);
  const seeds = target.seeds(work);
  say({ ev: 'seeds', count: seeds.length });
  for (let i = start; i < start + count; i++) {
    const rng = inputRng(seed, i);
    const s = seeds[i % seeds.length];
    const input = mutate(target, s.data, rng);
    fs.writeFileSync(`${work}/current-input`, input);
    fs.writeFileSync(`${work}/index`, String(i));
    say({ ev: 'start', i, seed: s.name });
    let fault: string | undefined;
    try {
      fault = target.run(input, s, work);
    } catch (err) {
      if (!(err instanceof KmodError) && !(err instanceof SimStateError)) fault = `uncaught ${(err as Error)?.stack ?? String(err)}`;
    }
    // a copy of its own for the supervisor: current-input is rewritten for the next input meanwhile
    if (fault !== undefined) fs.writeFileSync(`${work}/fault-${i}`, input);
    say({ ev: 'end', i, fault });
  }
  say({ ev: 'done' });
}

main();
