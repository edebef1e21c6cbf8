// The simulated kernel: loading the full dependency closure of the largest modules (btrfs, xfs) through
// modprobe's library flow, and every module of the Debian tree in one `kmodts --backend=sim modprobe -a`
// (a fresh simulated kernel each run), reported with the time per module loaded.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { repoRoot, reference, row, benchEnv } = require('./lib');

const ref = reference();
const dist = path.join(repoRoot, 'dist');
const { Context } = require(path.join(dist, 'resolution/context.js'));
const { probeInsertModule, PROBE_APPLY_BLACKLIST_ALIAS_ONLY } = require(path.join(dist, 'resolution/probe.js'));
const { createSimBackend } = require(path.join(dist, 'backends/sim/index.js'));

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-sim-bench-'));
const emptyConf = path.join(tmp, 'conf');
fs.mkdirSync(emptyConf);
const kernel = {
  kernelVersion: ref.KVER,
  moduleDir: ref.MODDIR,
  symvers: ref.SYMVERS,
  config: path.join(ref.KTREE, 'boot', `config-${ref.KVER}`),
  vmlinuz: ref.VMLINUZ,
};

function median(values) {
  const v = [...values].sort((a, b) => a - b);
  return v[Math.floor(v.length / 2)];
}

/** modprobe <name> in-process into a fresh simulated kernel: ms and modules loaded */
function closure(name, run) {
  const sim = createSimBackend({}, { stateDir: path.join(tmp, `state-${name}-${run}`), env: {}, ...kernel });
  const ctx = new Context({ root: ref.KTREE, kernelVersion: ref.KVER, backend: sim, configPaths: [emptyConf] });
  const t0 = process.hrtime.bigint();
  const r = probeInsertModule(ctx.lookup(name)[0], PROBE_APPLY_BLACKLIST_ALIAS_ONLY, undefined);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r !== 0) throw new Error(`modprobe ${name} failed: ${r}`);
  return { ms, count: sim.procModules().length };
}

for (const name of ['btrfs', 'xfs']) {
  closure(name, 'warm');
  const runs = [1, 2, 3, 4, 5].map((i) => closure(name, i));
  const ms = median(runs.map((r) => r.ms));
  const n = runs[0].count;
  row(`sim: modprobe ${name} in-process (closure of ${n} modules)`, `${ms.toFixed(1)} ms  (${(ms / n).toFixed(2)} ms/module)`);
}

// every module of the tree in one modprobe -a, through the CLI
const names = fs
  .readFileSync(path.join(ref.MODDIR, 'modules.dep'), 'utf8')
  .split('\n')
  .filter((l) => l !== '')
  .map((l) => path.basename(l.slice(0, l.indexOf(':'))).replace(/\.ko(\..*)?$/, ''));
const times = [];
const cpu = [];
for (let i = 0; i < 3; i++) {
  const state = path.join(tmp, `state-all-${i}`);
  const env = benchEnv({
    KMODTS_SIM_STATE: state,
    KMODTS_SIM_KVER: ref.KVER,
    KMODTS_SIM_MODDIR: ref.MODDIR,
    KMODTS_SIM_SYMVERS: ref.SYMVERS,
    KMODTS_SIM_CONFIG: kernel.config,
    KMODTS_SIM_VMLINUZ: ref.VMLINUZ,
  });
  const t0 = process.hrtime.bigint();
  // user+system CPU from time(1): the wall time depends on what else the machine runs
  const r = spawnSync('/usr/bin/time', ['-f', 'CPU %U %S', process.execPath, path.join(repoRoot, 'bin/kmodts.js'), '--backend=sim', 'modprobe', '-a', '-d', ref.KTREE, '-S', ref.KVER, '-C', emptyConf, ...names], { env, encoding: 'utf8' });
  times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  if (r.status !== 0) throw new Error(`modprobe -a failed: ${r.stderr}`);
  const m = /CPU ([\d.]+) ([\d.]+)/.exec(r.stderr);
  if (m) cpu.push((Number(m[1]) + Number(m[2])) * 1000);
  const loaded = createSimBackend({}, { stateDir: state, env: {} }).procModules().length;
  if (loaded !== names.length) throw new Error(`modprobe -a loaded ${loaded} of ${names.length}`);
}
const all = median(times);
row(`sim: modprobe -a of all ${names.length} modules (CLI, fresh kernel)`, `${(all / 1000).toFixed(2)} s  (${(all / names.length).toFixed(2)} ms/module)`);
if (cpu.length > 0) {
  const c = median(cpu);
  row('  same, CPU time (user + system)', `${(c / 1000).toFixed(2)} s  (${(c / names.length).toFixed(2)} ms/module)`);
}
fs.rmSync(tmp, { recursive: true, force: true });
