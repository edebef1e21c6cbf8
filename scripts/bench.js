// `npm run bench [--rounds N] [WORD...]`: runs the bench/*.bench.js files in turn (each prints its own
// rows), then the goals table (issue 14's rows: kmodts against kmod 34.2 on Node 20, 24 and 26).
//   no WORD: every bench file;
//   a WORD that is part of a bench file's name picks that file (`npm run bench depmod`: depmod and
//   depmod-trees); the other WORDs pick rows of the goals table by key (`npm run bench zst`: the zst
//   rows of every file that measures goal rows, `npm run bench depmod cloud`: depmod's cloud rows;
//   `npm run bench goals`: the goals table alone);
//   --rounds N: N rounds instead of each bench's default (KMODTS_BENCH_ROUNDS does the same; through
//   npm: `npm run bench -- --rounds 3 goals`, else npm takes --rounds as its own setting).
// The machine should be quiet: on a shared one, say so next to the figures.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const dir = path.join(__dirname, '..', 'bench');
const files = fs.readdirSync(dir).filter((n) => n.endsWith('.bench.js')).sort();
const words = [];
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i++) {
  const m = /^--rounds(?:=(.*))?$/.exec(args[i]);
  if (!m) { words.push(args[i]); continue; }
  const n = m[1] ?? args[++i];
  if (!/^[1-9][0-9]*$/.test(n ?? '')) {
    console.error('bench: --rounds needs a positive whole number');
    process.exit(2);
  }
  process.env.KMODTS_BENCH_ROUNDS = n;
}
const fileWords = words.filter((w) => files.some((f) => f.includes(w)));
const rowWords = words.filter((w) => !fileWords.includes(w));
process.env.KMODTS_BENCH_ROWS = rowWords.join(' ');
// the files measuring goal rows are the ones calling measureGoal
const measuresGoals = (f) => fs.readFileSync(path.join(dir, f), 'utf8').includes('measureGoal(');
const chosen = files.filter((f) => (fileWords.length ? fileWords.some((w) => f.includes(w)) : rowWords.length === 0 || measuresGoals(f)));
const os = require('node:os');
console.log(`bench: ${chosen.length} file(s), load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')} on ${os.availableParallelism()} cores`);
for (const f of chosen) {
  console.log(`\n== ${f.replace('.bench.js', '')}`);
  require(path.join(dir, f));
}
require(path.join(dir, 'lib.js')).printTable();
console.log(`\nload average at the end: ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
