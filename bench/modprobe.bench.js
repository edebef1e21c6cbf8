// modprobe resolution start-up: `modprobe -D <module>` on the Debian 6.12 tree, kmodts vs kmod 34.2
// vs a bare `node -e 0` (the runtime's floor), as medians and ratios. First the goals table's row
// (`modprobe -D btrfs`, on Node 20, 24 and 26: <= 1.2x `node -e 0`), then, unless rows were picked, more
// modules, CPU time through perf, and what start-up loads. bin/kmodts.js runs the tool's start-up
// bundle (scripts/bundle-cli.js); the last row runs dist/'s files instead, for comparison.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { repoRoot, reference, benchEnv, time, timeSideBySide, kmodArgv, kmodtsArgv, row, rounds, wanted, details, measureGoal } = require('./lib');

const ref = reference();
const tree = ['-d', ref.KTREE, '-S', ref.KVER];
const runs = rounds(41);

const goalWork = '`modprobe -D btrfs`';
if (wanted(goalWork)) {
  const args = [...tree, '-D', 'btrfs'];
  // never fewer than the 21 runs: a run is ~30 ms, and with 3 (`--rounds 3 goals`) a few
  // milliseconds of noise moved this row by 0.3x between tables
  measureGoal({ work: goalWork, kmod: kmodArgv(ref, 'modprobe', args), kmodts: (node) => kmodtsArgv('modprobe', args, [], node), runs: Math.max(21, rounds(21)), timeGoal: 1.2, against: 'node' });
}
if (details()) moreRows();

/** a PCI alias of the reference tree (its first in modules.alias): an alias lookup, whatever the tree holds */
function pciAlias() {
  const text = fs.readFileSync(path.join(ref.KTREE, 'lib/modules', ref.KVER, 'modules.alias'), 'latin1');
  const m = /^alias (pci:\S+) /m.exec(text);
  if (m === null) throw new Error(`bench: no PCI alias in ${ref.KTREE}'s modules.alias`);
  return m[1];
}

function moreRows() {
  /**
   * CPU time (task-clock, mean of `runs`) through perf(1) when it is installed: on a shared, loaded
   * machine wall-clock medians swing by 2x while CPU time stays within a few percent.
   */
  function cpuMs(argv) {
    const r = spawnSync('perf', ['stat', '-r', String(runs), '-e', 'task-clock', '-x,', ...argv], { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'], env: benchEnv() });
    if (r.error || r.status !== 0) return undefined;
    const line = r.stderr.split('\n').find((l) => l.includes('task-clock'));
    return line ? Number.parseFloat(line.split(',')[0]) : undefined;
  }
  const fmtCpu = (v) => (v === undefined ? '' : `, ${v.toFixed(1)} ms CPU`);

  // bin/kmodts.js ignores a bundle older than tsc's output (someone ran tsc alone): say so, as the rows
  // below then measure dist/'s files
  const bundleOf = (f) => fs.statSync(path.join(repoRoot, 'dist', f), { throwIfNoEntry: false })?.mtimeMs;
  if (!(bundleOf('bundle/modprobe.js') >= bundleOf('cli/main.js'))) row('WARNING', 'dist/bundle/modprobe.js is missing or stale: the kmodts rows measure dist/ files (npm run build)');

  const node0Argv = [process.execPath, '-e', '0'];
  const node0Cpu = cpuMs(node0Argv);
  let node0 = time(node0Argv, { runs });
  row('node -e 0', `${node0.ms.toFixed(1)} ms wall${fmtCpu(node0Cpu)}`);
  for (const mod of ['nfsd', 'ext4', pciAlias()]) {
    const args = [...tree, '-D', mod];
    // node -e 0, kmod and kmodts in turn, round after round: the ratios compare runs made side by side
    const [n0, k, t] = timeSideBySide([node0Argv, kmodArgv(ref, 'modprobe', args), kmodtsArgv('modprobe', args)], { runs });
    node0 = n0;
    const tCpu = cpuMs(kmodtsArgv('modprobe', args));
    const cpuRatio = tCpu !== undefined && node0Cpu !== undefined ? `; CPU ${(tCpu / node0Cpu).toFixed(2)}x node -e 0` : '';
    row(`kmod modprobe -D ${mod}`, `${k.ms.toFixed(1)} ms  ${k.peakKiB} KiB`);
    row(`kmodts modprobe -D ${mod}`, `${t.ms.toFixed(1)} ms  ${t.peakKiB} KiB  ${(t.ms / n0.ms).toFixed(2)}x node -e 0 (${n0.ms.toFixed(1)} ms alongside), ${(t.ms / k.ms).toFixed(1)}x kmod${fmtCpu(tCpu)}${cpuRatio}`);
  }

  // modules `modprobe -D nfsd` runs (what start-up pays for), whether from its bundle or from dist/
  const probe = spawnSync(process.execPath, ['-e', `
    process.argv = [process.argv[0], ${JSON.stringify(path.join(repoRoot, 'bin/kmodts.js'))}, 'modprobe', ${tree.map((a) => JSON.stringify(a)).join(',')}, '-D', 'nfsd'];
    const before = new Set(Object.keys(require.cache));
    process.on('exit', () => { const n = Object.keys(require.cache).filter((k) => !before.has(k)); process.stderr.write('MODULES ' + n.length + ' ' + n.map((f) => require('path').relative(${JSON.stringify(repoRoot)}, f)).join(' ') + '\\n'); });
    require(${JSON.stringify(path.join(repoRoot, 'bin/kmodts.js'))});
  `], { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
  const m = /MODULES (\d+) (.*)/.exec(probe.stderr || '');
  if (m) row('modules run by kmodts modprobe -D nfsd', `${m[1]}: ${m[2]}`);

  // the same without the start-up bundle: dist/'s CommonJS module graph, file by file
  {
    const entry = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-unbundled-')), 'kmodts.js');
    fs.writeFileSync(entry, `require(${JSON.stringify(path.join(repoRoot, 'dist/cli/main.js'))}).runFromProcess();\n`);
    const argv = [process.execPath, entry, 'modprobe', ...tree, '-D', 'nfsd'];
    const [n0, t] = timeSideBySide([node0Argv, argv], { runs });
    row('kmodts modprobe -D nfsd (dist/ files, no bundle)', `${t.ms.toFixed(1)} ms  ${(t.ms / n0.ms).toFixed(2)}x node -e 0${fmtCpu(cpuMs(argv))}`);
    fs.rmSync(path.dirname(entry), { recursive: true, force: true });
  }
}
