// The native backend: the addon's load and call cost, and start-up of insmod/rmmod/lsmod against kmod
// 34.2 and `node -e 0`. On a kernel without module support the calls end in ENOSYS at once, so what is
// timed is everything but the kernel's own work (the VM suite proves the loads; TCG timings say nothing).
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { repoRoot, reference, time, kmodArgv, kmodtsArgv, row } = require('./lib');

const ref = reference();
const runs = 15;
const addonFile = path.join(repoRoot, 'build/Release/kmodts_native.node');

// addon load time, in a fresh process each run
const load = [];
for (let i = 0; i < runs; i++) {
  const r = spawnSync(process.execPath, ['-e', `const t0 = process.hrtime.bigint(); require(${JSON.stringify(addonFile)}); console.log(Number(process.hrtime.bigint() - t0) / 1e6)`], { encoding: 'utf8' });
  load.push(Number.parseFloat(r.stdout));
}
load.sort((a, b) => a - b);
row('addon require() (fresh process, median)', `${load[runs >> 1].toFixed(2)} ms  (${fs.statSync(addonFile).size} bytes)`);

// per-call cost of a system call through Node-API (delete_module of a name no kernel has)
const addon = require(addonFile);
const n = 20000;
let t0 = process.hrtime.bigint();
for (let i = 0; i < n; i++) addon.deleteModule('kmodts_no_such_module', 0o4000);
row('addon deleteModule() call', `${(Number(process.hrtime.bigint() - t0) / 1e3 / n).toFixed(2)} us/call (returns ${addon.deleteModule('kmodts_no_such_module', 0o4000)})`);

const node0 = time([process.execPath, '-e', '0'], { runs });
row('node -e 0', `${node0.ms.toFixed(1)} ms`);
const junk = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-bench-')), 'kmodts_junk.ko');
fs.writeFileSync(junk, Buffer.alloc(256, 0x41));
const xz = path.join(ref.MODDIR, 'kernel/drivers/net/dummy.ko.xz');
for (const [tool, args] of [['insmod', [junk]], ['insmod', ['-f', xz]], ['rmmod', ['kmodts_no_such_module']], ['lsmod', []]]) {
  const k = time(kmodArgv(ref, tool, args), { runs });
  const t = time(kmodtsArgv(tool, args), { runs });
  const label = `${tool} ${args.map((a) => path.basename(a)).join(' ')}`;
  row(`kmod ${label}`, `${k.ms.toFixed(1)} ms  ${k.peakKiB} KiB`);
  row(`kmodts ${label}`, `${t.ms.toFixed(1)} ms  ${t.peakKiB} KiB  ${(t.ms / node0.ms).toFixed(2)}x node -e 0, ${(t.ms / k.ms).toFixed(1)}x kmod`);
}
