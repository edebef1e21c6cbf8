// modprobe.d configuration: `modprobe -c` of the configuration alone (a module tree without indexes),
// kmod 34.2 vs kmodts vs a bare Node start, and loadConfig in-process on small and large inputs.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { repoRoot, reference, time, kmodArgv, kmodtsArgv, row } = require('./lib');

const ref = reference();
const fix = path.join(repoRoot, 'test/fixtures/modprobe.d');
const dirs = ['etc', 'run', 'usr-local-lib', 'usr-lib', 'lib'].map((d) => path.join(fix, d));
const args = ['-c', '-d', path.join(fix, 'root'), '-S', '1.0-test', ...dirs.flatMap((d) => ['-C', d])];

const node0 = time([process.execPath, '-e', '0']);
const k = time(kmodArgv(ref, 'modprobe', args));
const t = time(kmodtsArgv('modprobe', args));
row('node -e 0', `${node0.ms.toFixed(1)} ms`);
row('kmod modprobe -c (fixture config, no indexes)', `${k.ms.toFixed(1)} ms  ${k.peakKiB} KiB`);
row('kmodts modprobe -c (same)', `${t.ms.toFixed(1)} ms  ${t.peakKiB} KiB  (${(t.ms / k.ms).toFixed(1)}x kmod, +${(t.ms - node0.ms).toFixed(1)} ms over node -e 0)`);

// in-process: median of many calls
const { loadConfig } = require(path.join(repoRoot, 'dist/resolution/config.js'));
function median(fn, runs) {
  fn();
  const ms = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  ms.sort((a, b) => a - b);
  return ms[Math.floor(ms.length / 2)];
}
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-config-bench-'));
const big = path.join(tmp, 'big.conf');
const lines = [];
for (let i = 0; i < 20000; i++) {
  lines.push(`alias pci:v0000${i}d*sv*sd*bc*sc*i* mod-${i}`, `options mod-${i} a=${i} b=x\\`, `  c=y`, `softdep mod-${i} pre: p-${i} post: q-${i}`);
}
fs.writeFileSync(big, lines.join('\n'));
const moduleDir = path.join(ref.KTREE, 'lib/modules', ref.KVER);
row('loadConfig: fixture dirs + Debian modules.softdep', `${median(() => loadConfig({ configPaths: dirs, moduleDir, procDir: tmp }), 50).toFixed(2)} ms`);
row('loadConfig: one file of 80000 lines (2.9 MB)', `${median(() => loadConfig({ configPaths: [big], moduleDir, procDir: tmp }), 9).toFixed(1)} ms`);
fs.rmSync(tmp, { recursive: true, force: true });
