// Runs inside the booted Debian system (kmodts-system.service, after multi-user.target): the steps
// of scenarios.json with whichever tools the system has under kmod's names, reporting each scenario
// as one line "KMODTS-RESULT <base64 JSON>" on /dev/ttyS1 (ttyS0 is the console), then DONE.
// Plain CommonJS run by trixie's node, no dependencies.
'use strict';
const fs = require('node:fs');
const { spawnSync } = require('node:child_process');

const out = fs.openSync('/dev/ttyS1', 'w');
function emit(type, obj) {
  fs.writeSync(out, `KMODTS-${type} ${Buffer.from(JSON.stringify(obj)).toString('base64')}\n`);
}

function readOrNull(file) {
  try {
    return fs.readFileSync(file, 'latin1');
  } catch {
    return null;
  }
}

/** /proc/modules without the load address (KASLR), sorted: load order depends on timing (udev runs
 *  its workers in parallel), not on the tools */
function procModules() {
  return (readOrNull('/proc/modules') ?? '').split('\n').filter((l) => l !== '').map((l) => {
    const f = l.split(' ');
    return [f[0], f[1], f[2], f[3], f[4], f[6] ?? ''].join(' ');
  }).sort();
}

function sh(command) {
  const r = spawnSync('/bin/sh', ['-c', command], {
    encoding: 'latin1',
    env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C', HOME: '/root' },
    cwd: '/',
    timeout: 300_000,
  });
  return {
    stdout: r.stdout ?? '',
    stderr: (r.stderr ?? '') + (r.error ? `\n[guest: ${r.error.message}]` : ''),
    status: r.status ?? `signal ${r.signal}`,
  };
}

const kver = fs.readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
const tools = {};
for (const p of ['/usr/bin/kmod', '/usr/bin/lsmod', '/usr/sbin/depmod', '/usr/sbin/insmod', '/usr/sbin/lsmod', '/usr/sbin/modinfo', '/usr/sbin/modprobe', '/usr/sbin/rmmod']) {
  try {
    tools[p] = fs.readlinkSync(p);
  } catch (err) {
    tools[p] = err.code === 'EINVAL' ? 'file' : err.code;
  }
}
emit('HELLO', {
  kver,
  tools,
  kernelModprobe: readOrNull('/proc/sys/kernel/modprobe'),
  sbinModprobe: fs.realpathSync('/sbin/modprobe'),
  cmdline: readOrNull('/proc/cmdline'),
  uptime: readOrNull('/proc/uptime'),
});
/** The kernel's requests still running (request_module waits for /sbin/modprobe; the crypto API
 *  holds references on algorithms meanwhile): the scenarios start once none has been seen for 3 s,
 *  so that /proc/modules does not depend on how fast the tools are. Returns what it waited for. */
function waitForModprobes(limitMs) {
  const seen = new Set();
  const t0 = Date.now();
  let quietSince = Date.now();
  while (Date.now() - quietSince < 3000 && Date.now() - t0 < limitMs) {
    for (const pid of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
      const argv = (readOrNull(`/proc/${pid}/cmdline`) ?? '').split('\0');
      if (argv.slice(0, 2).some((a) => /(^|\/)modprobe$/.test(a))) {
        seen.add(argv.filter((a) => a !== '').join(' '));
        quietSince = Date.now();
      }
    }
    spawnSync('sleep', ['0.2']);
  }
  return { seen: [...seen].sort(), ms: Date.now() - t0 };
}

/** whether the crypto API's self-tests or lookups are running (crypto/algboss.c's kernel threads) */
function cryptoManagerBusy() {
  for (const pid of fs.readdirSync('/proc')) {
    if (/^\d+$/.test(pid) && /^cryptomgr_/.test(readOrNull(`/proc/${pid}/comm`) ?? '')) return true;
  }
  return false;
}

/** The crypto API's own references (its self-tests and algorithm lookups hold modules such as
 *  aesni_intel for a while after they load, longer under TCG, and longer still on a busy host, where
 *  one test can wait more than 10 s for a modprobe) are not the tools': the scenarios start once
 *  /proc/modules has not changed for 10 s and no crypto manager thread is left. Returns how long that
 *  took and what changed. */
function waitForStableModules(limitMs) {
  const t0 = Date.now();
  let last = procModules().join('\n');
  let stableSince = Date.now();
  const changes = [];
  let busyMs = 0;
  while (Date.now() - stableSince < 10_000 && Date.now() - t0 < limitMs) {
    spawnSync('sleep', ['0.5']);
    const now = procModules().join('\n');
    if (now !== last) {
      const before = new Set(last.split('\n'));
      changes.push({ ms: Date.now() - t0, lines: now.split('\n').filter((l) => !before.has(l)) });
      last = now;
      stableSince = Date.now();
    } else if (cryptoManagerBusy()) {
      busyMs += 500;
      stableSince = Date.now();
    }
  }
  return { ms: Date.now() - t0, stable: Date.now() - stableSince >= 10_000, changes, cryptoManagerBusyMs: busyMs };
}

sh('udevadm settle -t 600');
const settled = waitForModprobes(600_000);
emit('SETTLED', { ...settled, modules: waitForStableModules(300_000) });
const { scenarios } = JSON.parse(fs.readFileSync('/usr/local/lib/kmodts-system/scenarios.json', 'utf8'));
const started = Date.now();
for (const sc of scenarios) {
  const steps = [];
  try {
    for (const step of sc.steps) {
      const t0 = Date.now();
      const r = sh(step.run.split('$KVER').join(kver));
      steps.push({ run: step.run, ...r, procModules: procModules(), ms: Date.now() - t0 });
    }
    emit('RESULT', { scenario: sc.name, steps });
  } catch (err) {
    emit('RESULT', { scenario: sc.name, steps, error: String((err && err.stack) || err) });
  }
}
emit('DONE', { ms: Date.now() - started });
fs.closeSync(out);
