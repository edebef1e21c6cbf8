// depmod: kmodts vs kmod 34.2 on the full Debian 6.12 amd64 tree (linux-image-amd64, ~4,200 .ko.xz) and on
// the cloud-amd64 tree (their .ko.zst copies: bench/depmod-trees.bench.js), wall time (median) and peak RSS side by side. Both index a scratch copy of the tree
// (hard links) with -C /dev/null so that the host's depmod.d plays no part. The cold rows remove kmodts'
// scan cache before each of its runs (a first run, which also writes the cache); the incremental rows
// (one module added, replaced, removed) run on a real copy of the full tree with a warm cache, as .ko.xz
// and as .ko.zst (a goal for one tree holds for every tree).
'use strict';
const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { reference, timeSideBySide, kmodArgv, kmodtsArgv, row, repoRoot, benchEnv, rounds } = require('./lib');
const { zstCopy } = require('./trees');

const CACHE = 'modules.kmodts-cache.bin';

function scratchTree(moddir, kver, copy = '-al') {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-bench-depmod-'));
  const dst = path.join(root, 'lib/modules', kver);
  fs.mkdirSync(dst, { recursive: true });
  execFileSync('cp', [copy, path.join(moddir, 'kernel'), dst]);
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

function compare(label, moddir, kver, runs, goal) {
  const root = scratchTree(moddir, kver);
  const n = execFileSync('find', [path.join(root, 'lib/modules', kver), '-name', '*.ko*'], { encoding: 'utf8' }).split('\n').filter(Boolean).length;
  const args = ['-C', '/dev/null', '-b', root, kver];
  // kmod and kmodts in turn, round after round (drift on a shared machine hits both alike); kmodts
  // without its scan cache each time (a first run)
  const cold = ['sh', '-c', 'rm -f "$0" && exec "$@"', path.join(root, 'lib/modules', kver, CACHE), ...kmodtsArgv('depmod', args)];
  // memory as the goals table counts it: kmodts' peak less `node -e 0`'s own
  const [k, t, n0] = timeSideBySide([kmodArgv(ref, 'depmod', args), cold, [process.execPath, '-e', '0']], { runs });
  row(`${label} (${n} modules): kmod 34.2`, `${k.ms.toFixed(0)} ms, peak ${(k.peakKiB / 1024).toFixed(1)} MiB`);
  row(`${label}: kmodts (${os.availableParallelism()} cores)`, `${t.ms.toFixed(0)} ms, peak ${(t.peakKiB / 1024).toFixed(1)} MiB (node -e 0: ${(n0.peakKiB / 1024).toFixed(1)} MiB)`);
  row(`${label}: ratio kmodts/kmod`, `time ${(t.ms / k.ms).toFixed(2)}x (goal <= ${goal}), memory ${((t.peakKiB - n0.peakKiB) / k.peakKiB).toFixed(2)}x (goal <= 2)`);
  // on a busy host the second core is not free: CPU time shows the work itself
  const kc = timeCpu(kmodArgv(ref, 'depmod', args), 3);
  const tc = timeCpu(cold, 3);
  row(`${label}: CPU seconds (user+sys) kmod / kmodts`, `${kc.cpu.toFixed(2)} / ${tc.cpu.toFixed(2)} (${(tc.cpu / kc.cpu).toFixed(2)}x)`);
  fs.rmSync(root, { recursive: true, force: true });
}

/** wall ms and CPU seconds (user+sys) of one run of argv */
function timed(argv) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/time', ['-f', '%U %S', ...argv], { env: benchEnv(), stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${argv.join(' ')}: status ${r.status}`);
  const [u, sy] = r.stderr.trim().split('\n').pop().split(' ').map(Number);
  return { ms, cpu: u + sy };
}

const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

/**
 * kmodts' depmod with its scan cache after one change to the tree, against kmod's full run on the same
 * tree: each round makes the change, runs both (in alternating order), and undoes it. The cache is
 * warmed first, on a tree copied (real copies) more than a timestamp tick before.
 */
function incremental(label, moddirSrc, kver, runs, suffix) {
  const root = scratchTree(moddirSrc, kver, '-a');
  const moddir = path.join(root, 'lib/modules', kver);
  const args = ['-C', '/dev/null', '-b', root, kver];
  const files = execFileSync('find', [path.join(moddir, 'kernel'), '-name', `*${suffix}`], { encoding: 'utf8', maxBuffer: 1 << 26 }).split('\n').filter(Boolean).sort();
  const [a, b] = [files[Math.floor(files.length / 3)], files[Math.floor((2 * files.length) / 3)]];
  const keep = `${root}/kept${suffix}`;
  const added = path.join(path.dirname(b), `kmodts-bench-added${suffix}`);
  fs.copyFileSync(a, keep);
  const changes = {
    'one module added': [() => fs.copyFileSync(b, added), () => fs.unlinkSync(added)],
    'one module replaced': [() => (fs.copyFileSync(b, `${a}.new`), fs.renameSync(`${a}.new`, a)), () => (fs.copyFileSync(keep, `${a}.new`), fs.renameSync(`${a}.new`, a))],
    'one module removed': [() => fs.unlinkSync(a), () => fs.copyFileSync(keep, a)],
  };
  spawnSync('sleep', ['3']);
  // a first indexing, then a re-indexing that keeps the scan cache (depmod keeps none for a fresh tree)
  timed(kmodtsArgv('depmod', args));
  timed(kmodtsArgv('depmod', args));
  for (const [change, [make, undo]] of Object.entries(changes)) {
    const k = [];
    const t = [];
    for (let i = 0; i < runs; i++) {
      make();
      if (i % 2 === 0) {
        k.push(timed(kmodArgv(ref, 'depmod', args)));
        t.push(timed(kmodtsArgv('depmod', args)));
      } else {
        t.push(timed(kmodtsArgv('depmod', args)));
        k.push(timed(kmodArgv(ref, 'depmod', args)));
      }
      undo();
    }
    const [km, tm] = [median(k.map((x) => x.ms)), median(t.map((x) => x.ms))];
    const [kc, tc] = [median(k.map((x) => x.cpu)), median(t.map((x) => x.cpu))];
    row(`${label}, ${change}: kmod 34.2 / kmodts (cache)`, `${km.toFixed(0)} ms / ${tm.toFixed(0)} ms, ratio ${(tm / km).toFixed(2)}x (goal <= 0.1); CPU ${kc.toFixed(2)} / ${tc.toFixed(2)} s (${(tc / kc).toFixed(2)}x)`);
  }
  const kc = timeCpu(kmodArgv(ref, 'depmod', args), 3);
  const tc = timeCpu(kmodtsArgv('depmod', args), 3);
  row(`${label}, nothing changed: CPU seconds kmod / kmodts (cache)`, `${kc.cpu.toFixed(2)} / ${tc.cpu.toFixed(2)} (${(tc.cpu / kc.cpu).toFixed(2)}x)`);
  fs.rmSync(root, { recursive: true, force: true });
}

const ref = reference();
const full = execFileSync('bash', [path.join(repoRoot, 'scripts/fetch-tree.sh'), 'amd64', 'linux-image-amd64'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
const ktree = /^KTREE=(.*)$/m.exec(full)[1];
const kver = /^KVER=(.*)$/m.exec(full)[1];
row('load average before the depmod runs (other work skews times)', os.loadavg()[0].toFixed(2));
compare('full amd64 tree', path.join(ktree, 'lib/modules', kver), kver, rounds(5), 0.6);
compare('cloud-amd64 tree', ref.MODDIR, ref.KVER, rounds(7), 0.8);
incremental('full tree', path.join(ktree, 'lib/modules', kver), kver, rounds(7), '.ko.xz');
const zst = zstCopy({ root: ktree, kver, moddir: path.join(ktree, 'lib/modules', kver) });
incremental('full tree as .ko.zst', zst.moddir, kver, rounds(7), '.ko.zst');
row('load average after', os.loadavg()[0].toFixed(2));
