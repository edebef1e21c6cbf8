// Shared timing helpers for `npm run bench`: medians of several runs, ratios side by side, the runtimes
// kmodts is measured on, and the summary table of the goals (scripts/bench.js prints it at the end).
'use strict';
const { spawnSync, execFileSync } = require('node:child_process');
const path = require('node:path');

const repoRoot = path.resolve(__dirname, '..');

/** The reference material (kmod 34.2, Debian tree), as scripts/fetch-reference.sh reports it. */
function reference() {
  const out = execFileSync('bash', [path.join(repoRoot, 'scripts/fetch-reference.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const r = {};
  for (const line of out.split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line);
    if (m) r[m[1]] = m[2];
  }
  r.MODDIR = path.join(r.KTREE, 'lib/modules', r.KVER);
  return r;
}

/**
 * Environment for timed commands: no NODE_EXTRA_CA_CERTS, which costs Node 20 ~34 ms per start. HOME
 * (and XDG_CACHE_HOME) as the user's shell has them: bin/kmodts.js keeps V8's code cache of each tool
 * there, as it does for every user; without them each run compiled its tool's bundle anew.
 */
function benchEnv(extra = {}) {
  const { HOME, XDG_CACHE_HOME } = process.env;
  return { PATH: process.env.PATH, LANG: 'C', LC_ALL: 'C', ...(HOME && { HOME }), ...(XDG_CACHE_HOME && { XDG_CACHE_HOME }), ...extra };
}

/**
 * What scripts/bench.js was asked for: `--rounds N` (or KMODTS_BENCH_ROUNDS) overrides every bench's
 * own round count; KMODTS_BENCH_ROWS holds the words that named no bench file, which select the rows
 * of the goals table (by their key).
 */
function options() {
  const rowWords = (process.env.KMODTS_BENCH_ROWS || '').split(/\s+/).filter(Boolean);
  const rounds = Number.parseInt(process.env.KMODTS_BENCH_ROUNDS || '', 10);
  return { rowWords, rounds: rounds > 0 ? rounds : undefined };
}

/** Round count: the one asked for on the command line, else the bench's own default. */
function rounds(defaultRounds) {
  return options().rounds ?? defaultRounds;
}

/**
 * Whether the goals-table row `key` is to be measured: all are, unless row words were given; the word
 * `goals` picks every row (and, being a row word, none of the benches' other rows).
 */
function wanted(key) {
  const { rowWords } = options();
  return rowWords.length === 0 || rowWords.some((w) => w === 'goals' || key.includes(w));
}

/** Whether a bench's other rows (beyond the goals table) are to be measured: not when rows were picked. */
function details() {
  return options().rowWords.length === 0;
}

/** Median wall time in ms of `runs` executions of argv (after one warm-up), and peak RSS in KiB. */
function time(argv, opts = {}) {
  return timeSideBySide([argv], opts)[0];
}

const median = (list) => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)];

/**
 * Several commands timed side by side: each round runs every argv once, in turn, so that a machine
 * that speeds up or slows down during the benchmark affects them all alike (timing one command's runs
 * and then the next one's turns such drift into a difference); the order turns by one each round, so
 * that none always runs right after the same other one. `before(j)`, when given, runs untimed before
 * each run of argv j (to remove a cache, say). Returns, per argv, the median wall time in ms, the
 * median CPU time (user + system) in ms, the median and the highest peak RSS in KiB.
 */
function timeSideBySide(argvs, { runs = 9, env = benchEnv(), cwd, before, warmup = true } = {}) {
  const runOnce = (j) => {
    if (before) before(j);
    const argv = argvs[j];
    const t0 = process.hrtime.bigint();
    const r = spawnSync('/usr/bin/time', ['-f', '%U %S %M', ...argv], { env, cwd, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8', maxBuffer: 1 << 26 });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (r.error) throw new Error(`bench: cannot run /usr/bin/time (Debian package time): ${r.error.message}`);
    const [user, sys, kib] = (r.stderr || '').trim().split('\n').pop().split(' ').map(Number);
    if (r.status !== 0 || !(kib > 0)) throw new Error(`bench: ${argv.join(' ')} failed (status ${r.status}): ${(r.stderr || '').slice(-500)}`);
    return { ms, cpuMs: (user + sys) * 1000, kib };
  };
  if (warmup) argvs.forEach((_, j) => runOnce(j));
  const runsOf = argvs.map(() => []);
  for (let i = 0; i < runs; i++) {
    for (let n = 0; n < argvs.length; n++) {
      const j = (i + n) % argvs.length;
      runsOf[j].push(runOnce(j));
    }
  }
  return runsOf.map((list) => ({
    ms: median(list.map((r) => r.ms)),
    cpuMs: median(list.map((r) => r.cpuMs)),
    peakKiB: Math.max(...list.map((r) => r.kib)),
    medianKiB: median(list.map((r) => r.kib)),
  }));
}

/** kmod 34.2's tool as argv */
function kmodArgv(ref, tool, args) {
  const k = ref.KMOD_ROOT;
  return [`${k}/usr/lib64/ld-linux-x86-64.so.2`, '--library-path', `${k}/usr/lib/x86_64-linux-gnu`, '--argv0', tool, `${k}/usr/bin/kmod`, ...args];
}

/** kmodts' tool as argv, run by `node` (this process's runtime unless another is given) */
function kmodtsArgv(tool, args, settings = [], node = process.execPath) {
  return [node, path.join(repoRoot, 'bin/kmodts.js'), ...settings, tool, ...args];
}

let runtimeList;
/**
 * The runtimes kmodts is measured on: the machine's Node (the floor, 20) and the LTS releases users run
 * (24, and 26, the active LTS since October 2026; from scripts/fetch-node.sh, cached per machine).
 * KMODTS_BENCH_NODES=20,22,... picks others.
 */
function runtimes() {
  if (runtimeList) return runtimeList;
  const majors = (process.env.KMODTS_BENCH_NODES || '20,24,26').split(',').map((s) => s.trim()).filter(Boolean);
  const own = process.versions.node.split('.')[0];
  const others = majors.filter((m) => m !== own);
  const paths = {};
  if (others.length) {
    const out = execFileSync('bash', [path.join(repoRoot, 'scripts/fetch-node.sh'), ...others], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    for (const m of out.matchAll(/^NODE_(\d+)=(.*)$/gm)) paths[m[1]] = m[2];
  }
  paths[own] = process.execPath;
  runtimeList = majors.map((m) => {
    if (!paths[m]) throw new Error(`bench: no Node ${m} (scripts/fetch-node.sh ${m})`);
    const version = execFileSync(paths[m], ['--version'], { encoding: 'utf8' }).trim();
    return { label: `Node ${m}`, version, node: paths[m] };
  });
  return runtimeList;
}

function row(label, value) {
  console.log(`${label.padEnd(58)} ${value}`);
}

/** The rows of the goals table measured so far in this `npm run bench`, printed at its end. */
const tableRows = [];

/**
 * One row of the goals table: `kmod` is kmod 34.2's figure, `perRuntime` kmodts' and `node -e 0`'s on
 * each runtime. The time ratio is kmodts over kmod, or over `node -e 0` when `against` is 'node';
 * memory is kmodts' peak RSS minus `node -e 0`'s own peak, over kmod's peak (medians of the runs' peaks).
 */
function goalRow({ work, kmod, perRuntime, timeGoal, memGoal = 2, against = 'kmod' }) {
  const cells = perRuntime.map(({ runtime, kmodts, node0 }) => {
    const base = against === 'node' ? node0.ms : kmod.ms;
    const time = kmodts.ms / base;
    const memory = Math.max(0, kmodts.medianKiB - node0.medianKiB) / kmod.medianKiB;
    return { runtime, time, memory, timeMet: time <= timeGoal, memMet: memory <= memGoal, kmodts, node0 };
  });
  const entry = { work, kmod, cells, timeGoal, memGoal, against };
  tableRows.push(entry);
  row(`${work}: kmod 34.2`, `${fmtMs(kmod.ms)}, ${fmtMiB(kmod.medianKiB)} (CPU ${fmtMs(kmod.cpuMs)})`);
  for (const c of cells) {
    row(`${work}: kmodts, ${c.runtime.label}`, `${fmtMs(c.kmodts.ms)}, ${fmtMiB(c.kmodts.medianKiB)} (CPU ${fmtMs(c.kmodts.cpuMs)}); node -e 0 ${fmtMs(c.node0.ms)}, ${fmtMiB(c.node0.medianKiB)}`);
    const cpuBase = against === 'node' ? c.node0.cpuMs : kmod.cpuMs;
    row(`${work}: ratios, ${c.runtime.label}`, `${cellText(c, entry)}; CPU ${(c.kmodts.cpuMs / cpuBase).toFixed(2)}x`);
  }
  return entry;
}

const fmtMs = (ms) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(ms < 100 ? 1 : 0)} ms`);
const fmtMiB = (kib) => `${(kib / 1024).toFixed(0)} MB`;
const mark = (met) => (met ? 'met' : 'NOT met');

function cellText(c, { timeGoal, memGoal, against }) {
  const versus = against === 'node' ? ' node -e 0' : '';
  return `time ${c.time.toFixed(2)}x${versus} (goal <= ${timeGoal}: ${mark(c.timeMet)}), memory ${c.memory.toFixed(2)}x (goal <= ${memGoal}: ${mark(c.memMet)})`;
}

/** The goals table, as Markdown, of the rows measured in this run. */
function printTable() {
  if (!tableRows.length) return;
  const list = runtimes();
  console.log('\n== goals (kmodts / kmod 34.2; memory = (kmodts peak - node -e 0 peak) / kmod peak; medians)');
  console.log(`| work | kmod 34.2 | ${list.map((r) => `${r.label} (${r.version}): time, memory`).join(' | ')} | goal: time, memory |`);
  console.log(`|---|---|${list.map(() => '---|').join('')}---|`);
  for (const e of tableRows) {
    const cells = list.map((r) => {
      const c = e.cells.find((x) => x.runtime.node === r.node);
      if (!c) return '—';
      const versus = e.against === 'node' ? ` node -e 0 (${fmtMs(c.kmodts.ms)} vs ${fmtMs(c.node0.ms)})` : '';
      return `${c.time.toFixed(2)}x${versus} ${c.timeMet ? 'ok' : 'MISSED'}, ${c.memory.toFixed(2)}x ${c.memMet ? 'ok' : 'MISSED'}`;
    });
    console.log(`| ${e.work} | ${fmtMs(e.kmod.ms)}, ${fmtMiB(e.kmod.medianKiB)} | ${cells.join(' | ')} | <= ${e.timeGoal}x${e.against === 'node' ? ' node -e 0' : ''}, <= ${e.memGoal}x |`);
  }
}

/**
 * Measures one row of the goals table: kmod 34.2 (`kmod`, an argv), and on each runtime `node -e 0`
 * and kmodts (`kmodts(node)` gives its argv), all in turn, round after round. `before(kind)` runs
 * untimed before each run ('kmod', 'node0' or 'kmodts').
 */
function measureGoal({ work, kmod, kmodts, runs, before, timeGoal, memGoal, against }) {
  const list = runtimes();
  const argvs = [kmod];
  const kinds = ['kmod'];
  for (const r of list) {
    argvs.push([r.node, '-e', '0'], kmodts(r.node));
    kinds.push('node0', 'kmodts');
  }
  const res = timeSideBySide(argvs, { runs, before: before && ((j) => before(kinds[j])) });
  const perRuntime = list.map((runtime, i) => ({ runtime, node0: res[1 + 2 * i], kmodts: res[2 + 2 * i] }));
  return goalRow({ work, kmod: res[0], perRuntime, timeGoal, memGoal, against });
}

module.exports = {
  repoRoot, reference, benchEnv, options, rounds, wanted, details, measureGoal, time, timeSideBySide, median, kmodArgv, kmodtsArgv, runtimes, row, goalRow, printTable, fmtMs,
};
