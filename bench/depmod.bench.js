// depmod: kmodts vs kmod 34.2 on the full Debian 6.12 amd64 tree (linux-image-amd64, ~4,200 .ko.xz) and on
// the cloud-amd64 tree, each also recompressed as .ko.zst (KMODTS_BENCH_DEPMOD=xz or zst for one kind), wall
// time (median) and peak RSS side by side. Both index a scratch copy of the tree
// (hard links) with -C /dev/null so that the host's depmod.d plays no part.
'use strict';
const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { reference, timeSideBySide, kmodArgv, kmodtsArgv, row, repoRoot, benchEnv } = require('./lib');

function scratchTree(moddir, kver) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-bench-depmod-'));
  const dst = path.join(root, 'lib/modules', kver);
  fs.mkdirSync(dst, { recursive: true });
  execFileSync('cp', ['-al', path.join(moddir, 'kernel'), dst]);
  for (const f of ['modules.order', 'modules.builtin', 'modules.builtin.modinfo']) fs.copyFileSync(path.join(moddir, f), path.join(dst, f));
  return root;
}

/** median wall and CPU (user+sys) seconds and peak RSS of argv, with /usr/bin/time */
function timeCpu(argv, runs) {
  const wall = [];
  const cpu = [];
  let peak = 0;
  for (let i = 0; i < runs; i++) {
    const r = spawnSync('/usr/bin/time', ['-f', '%e %U %S %M', ...argv], { env: benchEnv(), stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
    const [e, u, sy, m] = r.stderr.trim().split('\n').pop().split(' ').map(Number);
    wall.push(e);
    cpu.push(u + sy);
    peak = Math.max(peak, m);
  }
  const med = (a) => a.sort((x, y) => x - y)[Math.floor(a.length / 2)];
  return { wall: med(wall), cpu: med(cpu), peakKiB: peak };
}

function compare(label, moddir, kver, runs) {
  const root = scratchTree(moddir, kver);
  const n = execFileSync('find', [path.join(root, 'lib/modules', kver), '-name', '*.ko*'], { encoding: 'utf8' }).split('\n').filter(Boolean).length;
  const args = ['-C', '/dev/null', '-b', root, kver];
  // kmod and kmodts in turn, round after round (drift on a shared machine hits both alike)
  const [k, t] = timeSideBySide([kmodArgv(ref, 'depmod', args), kmodtsArgv('depmod', args)], { runs });
  row(`${label} (${n} modules): kmod 34.2`, `${k.ms.toFixed(0)} ms, peak ${(k.peakKiB / 1024).toFixed(1)} MiB`);
  row(`${label}: kmodts (${os.availableParallelism()} cores)`, `${t.ms.toFixed(0)} ms, peak ${(t.peakKiB / 1024).toFixed(1)} MiB`);
  row(`${label}: ratio kmodts/kmod`, `time ${(t.ms / k.ms).toFixed(2)}x (goal <= 0.6), memory ${(t.peakKiB / k.peakKiB).toFixed(2)}x (goal <= 2)`);
  // on a busy host the second core is not free: CPU time shows the work itself
  const kc = timeCpu(kmodArgv(ref, 'depmod', args), 3);
  const tc = timeCpu(kmodtsArgv('depmod', args), 3);
  row(`${label}: CPU seconds (user+sys) kmod / kmodts`, `${kc.cpu.toFixed(2)} / ${tc.cpu.toFixed(2)} (${(tc.cpu / kc.cpu).toFixed(2)}x)`);
  fs.rmSync(root, { recursive: true, force: true });
}

const ref = reference();
const full = execFileSync('bash', [path.join(repoRoot, 'scripts/fetch-tree.sh'), 'amd64', 'linux-image-amd64'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
const ktree = /^KTREE=(.*)$/m.exec(full)[1];
const kver = /^KVER=(.*)$/m.exec(full)[1];
row('load average before the depmod runs (other work skews times)', os.loadavg()[0].toFixed(2));
/** the tree recompressed as .ko.zst (scripts/zst-tree.sh, cached beside it) */
const zstTree = (tree) => execFileSync('bash', [path.join(repoRoot, 'scripts/zst-tree.sh'), tree], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
const only = process.env.KMODTS_BENCH_DEPMOD;
if (!only || only === 'xz') {
  compare('full amd64 tree', path.join(ktree, 'lib/modules', kver), kver, 5);
  compare('cloud-amd64 tree', ref.MODDIR, ref.KVER, 7);
}
if (!only || only === 'zst') {
  compare('full amd64 tree as .ko.zst', path.join(zstTree(ktree), 'lib/modules', kver), kver, 5);
  compare('cloud-amd64 tree as .ko.zst', path.join(zstTree(ref.KTREE), 'lib/modules', ref.KVER), ref.KVER, 7);
}
row('load average after', os.loadavg()[0].toFixed(2));
