#!/usr/bin/env node
// npm run fuzz -- [--target NAME[,NAME...]] [--count N] [--seed S] [--start I] [--faults DIR]
// Runs the mutation fuzzer of test/fuzz/ over more inputs than the test run's slice (which uses seed 1).
// Prints the inputs run and the faults found per target; exit status 1 when there is a fault. A fault
// names its target, seed and index: `--target T --seed S --start I --count 1` runs that input again.
'use strict';
const path = require('node:path');
const root = path.resolve(__dirname, '..');
require(path.join(root, 'test/fuzz/register-ts.cjs'));
const { fuzz } = require(path.join(root, 'test/fuzz/engine.ts'));
const { targets } = require(path.join(root, 'test/fuzz/targets.ts'));

function parseArgs(argv) {
  const o = { target: undefined, count: undefined, seed: Date.now() % 0x7fffffff, start: 0, faults: path.join(root, 'fuzz-faults') };
  for (let i = 0; i < argv.length; i++) {
    const [k, inline] = argv[i].split('=', 2);
    const v = inline ?? argv[++i];
    if (v === undefined) throw new Error(`${k} needs a value`);
    if (k === '--target') o.target = v.split(',');
    else if (k === '--count') o.count = Number(v);
    else if (k === '--seed') o.seed = Number(v);
    else if (k === '--start') o.start = Number(v);
    else if (k === '--faults') o.faults = path.resolve(v);
    else throw new Error(`unknown option ${k} (see scripts/fuzz.js)`);
  }
  return o;
}

async function run() {
  let o;
  try {
    o = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`fuzz: ${err.message}\n`);
    return 2;
  }
  const chosen = o.target ? targets.filter((t) => o.target.includes(t.name)) : targets;
  if (o.target && chosen.length !== o.target.length) {
    process.stderr.write(`fuzz: unknown target; targets: ${targets.map((t) => t.name).join(', ')}\n`);
    return 2;
  }
  let faults = 0;
  for (const t of chosen) {
    const r = await fuzz({ target: t.name, seed: o.seed, count: o.count ?? t.ciCount * 10, start: o.start, perInputMs: t.perInputMs, faultDir: o.faults });
    process.stdout.write(`${t.name}: ${r.inputs} inputs (seed ${o.seed}), ${r.faults.length} faults\n`);
    for (const f of r.faults) process.stdout.write(`  input ${f.index} (from ${f.from}, copy in ${f.file}): ${f.what.split('\n').slice(0, 6).join('\n    ')}\n`);
    faults += r.faults.length;
  }
  return faults > 0 ? 1 : 0;
}

run().then((s) => (process.exitCode = s), (err) => {
  process.stderr.write(`fuzz: ${err.stack}\n`);
  process.exitCode = 2;
});
