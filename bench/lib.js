// Shared timing helpers for `npm run bench`: medians of several runs, ratios side by side.
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

/** Environment for timed commands: no NODE_EXTRA_CA_CERTS, which costs Node 20 ~34 ms per start. */
function benchEnv(extra = {}) {
  return { PATH: process.env.PATH, LANG: 'C', LC_ALL: 'C', ...extra };
}

/** Median wall time in ms of `runs` executions of argv (after one warm-up), and peak RSS in KiB. */
function time(argv, opts = {}) {
  return timeSideBySide([argv], opts)[0];
}

/**
 * Several commands timed side by side: each round runs every argv once, in turn, so that a machine
 * that speeds up or slows down during the benchmark affects them all alike (timing one command's runs
 * and then the next one's turns such drift into a difference). Returns, per argv, the median wall
 * time in ms and the peak RSS in KiB.
 */
function timeSideBySide(argvs, { runs = 9, env = benchEnv(), cwd } = {}) {
  for (const argv of argvs) spawnSync(argv[0], argv.slice(1), { env, cwd, stdio: 'ignore' });
  const ms = argvs.map(() => []);
  const peak = argvs.map(() => 0);
  for (let i = 0; i < runs; i++) {
    argvs.forEach((argv, j) => {
      const t0 = process.hrtime.bigint();
      const r = spawnSync('/usr/bin/time', ['-f', '%M', ...argv], { env, cwd, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
      ms[j].push(Number(process.hrtime.bigint() - t0) / 1e6);
      const kb = Number.parseInt((r.stderr || '').trim().split('\n').pop(), 10);
      if (kb > peak[j]) peak[j] = kb;
    });
  }
  return ms.map((list, j) => {
    list.sort((a, b) => a - b);
    return { ms: list[Math.floor(list.length / 2)], peakKiB: peak[j] };
  });
}

/** kmod 34.2's tool as argv */
function kmodArgv(ref, tool, args) {
  const k = ref.KMOD_ROOT;
  return [`${k}/usr/lib64/ld-linux-x86-64.so.2`, '--library-path', `${k}/usr/lib/x86_64-linux-gnu`, '--argv0', tool, `${k}/usr/bin/kmod`, ...args];
}

/** kmodts' tool as argv */
function kmodtsArgv(tool, args, settings = []) {
  return [process.execPath, path.join(repoRoot, 'bin/kmodts.js'), ...settings, tool, ...args];
}

function row(label, value) {
  console.log(`${label.padEnd(58)} ${value}`);
}

module.exports = { repoRoot, reference, benchEnv, time, timeSideBySide, kmodArgv, kmodtsArgv, row };
