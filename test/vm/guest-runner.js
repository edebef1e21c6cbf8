// Runs inside the QEMU guest (started by the initramfs /init): every scenario of /vm/scenarios.json,
// once with kmod 34.2 and once with kmodts, and reports each run to the host as one line
// "KMODTS-RESULT <base64 JSON>" on /dev/ttyS1 (the console, ttyS0, carries the kernel's messages).
// Plain CommonJS with no dependencies: it runs on the bare guest.
'use strict';
const fs = require('node:fs');
const { spawnSync } = require('node:child_process');

const O_NONBLOCK = 0o4000;
const O_TRUNC = 0o1000;
const input = JSON.parse(fs.readFileSync('/vm/scenarios.json', 'utf8'));
const kver = fs.readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
const moddir = `/lib/modules/${kver}`;
const out = fs.openSync('/dev/ttyS1', 'w');
const addon = require('/kmodts/build/Release/kmodts_native.node');

function emit(type, obj) {
  fs.writeSync(out, `KMODTS-${type} ${Buffer.from(JSON.stringify(obj)).toString('base64')}\n`);
}

const KMOD = '/kmod';
const implementations = {
  kmod: (tool, args) => [
    `${KMOD}/usr/lib64/ld-linux-x86-64.so.2`, '--library-path', `${KMOD}/usr/lib/x86_64-linux-gnu`,
    '--argv0', tool, `${KMOD}/usr/bin/kmod`, ...args,
  ],
  // through a symlink named after the tool, as an installed kmodts is used
  kmodts: (tool, args) => ['/usr/bin/node', `/kmodts/sbin/${tool}`, ...args],
};

function readOrNull(file) {
  try {
    return fs.readFileSync(file, 'latin1');
  } catch {
    return null;
  }
}

function rawDir(dir) {
  let d;
  try {
    d = fs.opendirSync(dir);
  } catch {
    return null;
  }
  const names = [];
  for (let e = d.readSync(); e !== null; e = d.readSync()) names.push(e.name);
  d.closeSync();
  return names;
}

function procModules() {
  const text = readOrNull('/proc/modules') ?? '';
  return text.split('\n').filter((l) => l !== '').map((l) => {
    const f = l.split(' ');
    return {
      name: f[0], size: Number(f[1]), refcnt: Number(f[2]),
      users: f[3] === '-' ? [] : f[3].split(',').filter((u) => u !== ''),
      state: f[4], taints: f[6] ?? '',
    };
  });
}

function kernelState(sysfs) {
  const proc = procModules();
  const sys = {};
  for (const p of proc) {
    sys[`${p.name}/initstate`] = readOrNull(`/sys/module/${p.name}/initstate`);
    sys[`${p.name}/refcnt`] = readOrNull(`/sys/module/${p.name}/refcnt`);
    const h = rawDir(`/sys/module/${p.name}/holders`);
    sys[`${p.name}/holders`] = h === null ? null : h.join(' ');
  }
  for (const s of sysfs ?? []) sys[s] = readOrNull(`/sys/module/${s}`);
  return { procModules: proc, sys };
}

// The kernel log, read as /dev/kmsg records (one per read(), "prio,seq,usec,flags;text\n" plus
// " KEY=value" dictionary lines): drained before each step and after it, so that a step's records are
// exactly the ones it produced. Text is kept without the header, with the kernel's \xNN escapes undone.
const kmsgFd = fs.openSync('/dev/kmsg', fs.constants.O_RDONLY | O_NONBLOCK);
const kmsgBuf = Buffer.alloc(16384);

function drainKmsg() {
  const lines = [];
  for (;;) {
    let n;
    try {
      n = fs.readSync(kmsgFd, kmsgBuf, 0, kmsgBuf.length, null);
    } catch (err) {
      if (err.code === 'EPIPE') continue; // records overwritten before being read: go on with the next
      if (err.code === 'EAGAIN') break;
      throw err;
    }
    if (n <= 0) break;
    const rec = kmsgBuf.toString('latin1', 0, n);
    const semi = rec.indexOf(';');
    const nl = rec.indexOf('\n', semi);
    const text = rec.slice(semi + 1, nl < 0 ? n : nl);
    lines.push(text.replace(/\\x([0-9a-f]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16))));
  }
  return lines;
}

function tainted() {
  return Number((readOrNull('/proc/sys/kernel/tainted') ?? '-1').trim());
}

function expand(args) {
  return args.map((a) => a.split('$MODDIR').join(moddir));
}

function runStep(impl, step) {
  const argv = implementations[impl](step.tool, expand(step.args));
  drainKmsg();
  const taintedBefore = tainted();
  const t0 = Date.now();
  const r = spawnSync(argv[0], argv.slice(1), {
    encoding: 'latin1',
    env: { PATH: '/bin:/sbin:/usr/bin', LANG: 'C', HOME: '/root' },
    cwd: '/',
    timeout: 120_000,
  });
  return {
    tool: step.tool,
    args: step.args,
    stdout: r.stdout ?? '',
    stderr: (r.stderr ?? '') + (r.error ? `\n[runner: ${r.error.message}]` : ''),
    status: r.status ?? (r.signal ? `signal ${r.signal}` : -1),
    ms: Date.now() - t0,
    kmsg: drainKmsg(),
    // the kernel's taint before and after the step: it is boot-wide and sticky, and some loader messages
    // are printed only when their taint is not set yet (the simulator starts from taintedBefore)
    taintedBefore,
    tainted: tainted(),
  };
}

/** Removes every module, users first; forcing only what the kernel would not let go otherwise. */
function unloadAll() {
  for (let round = 0; round < 30; round++) {
    const mods = procModules();
    if (mods.length === 0) return;
    let progress = false;
    for (const m of mods) {
      if (m.users.length !== 0) continue;
      const flags = round > 10 ? O_NONBLOCK | O_TRUNC : O_NONBLOCK;
      if (addon.deleteModule(m.name, flags) === 0) progress = true;
    }
    if (!progress && round > 12) break;
  }
  const left = procModules();
  if (left.length) throw new Error(`cannot unload: ${left.map((m) => m.name).join(' ')}`);
}

function runScenario(impl, sc) {
  unloadAll();
  for (const [file, text] of Object.entries(sc.files ?? {})) {
    fs.mkdirSync(require('node:path').dirname(file), { recursive: true });
    fs.writeFileSync(file, text);
  }
  const setup = [];
  try {
    for (const step of sc.setup ?? []) {
      const r = runStep('kmod', step);
      setup.push(r);
    }
    const steps = [];
    for (const step of sc.steps) {
      const r = runStep(impl, step);
      Object.assign(r, kernelState(sc.sysfs));
      steps.push(r);
    }
    return { setup, steps };
  } finally {
    for (const file of Object.keys(sc.files ?? {})) fs.rmSync(file, { force: true });
    unloadAll();
  }
}

/** Node's own start-up in the guest (the floor under every kmodts step): median of 5 `node -e 0` */
function nodeStartMs() {
  const ms = [];
  for (let i = 0; i < 5; i++) {
    const t0 = Date.now();
    spawnSync('/usr/bin/node', ['-e', '0']);
    ms.push(Date.now() - t0);
  }
  return ms.sort((a, b) => a - b)[2];
}

const started = Date.now();
emit('HELLO', { kver, uptime: readOrNull('/proc/uptime'), compression: readOrNull('/sys/module/compression'), nodeStartMs: nodeStartMs() });
for (const sc of input.scenarios) {
  for (const impl of ['kmod', 'kmodts']) {
    if (input.only && !input.only.includes(impl)) continue;
    let result;
    try {
      result = runScenario(impl, sc);
    } catch (err) {
      result = { error: String(err && err.stack || err) };
    }
    emit('RESULT', { scenario: sc.name, impl, ...result });
  }
}
emit('DONE', { ms: Date.now() - started, nodeStartMs: nodeStartMs() });
fs.closeSync(out);
