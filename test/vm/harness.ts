// Boots Debian's 6.12 cloud-amd64 kernel under QEMU (TCG) with an initramfs holding busybox, this
// machine's node, the built kmodts, kmod 34.2 and a small module tree, runs test/vm/guest-runner.js
// inside and collects its reports from the guest's second serial port.
//
// The initramfs is two concatenated cpio archives: a cached base (busybox, node and its libraries,
// kmod 34.2, the module tree: .cache/vm/base-<hash>.cpio) and a small per-run one (kmodts, runner,
// scenarios). Everything that cannot be prepared (no qemu, no kernel, no boot) throws: the suite fails.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { requirePrerequisites } from '../support/prerequisites';
import { cacheRoot, reference, repoRoot, type Reference } from '../support/reference';
import type { Scenario } from './scenarios';

const cacheDir = path.join(cacheRoot, 'vm');
/** bump when the base layout changes */
const BASE_LAYOUT = 3;

const BUSYBOX = '/bin/busybox';

function copyFile(src: string, dst: string, mode?: number): void {
  fs.mkdirSync(path.dirname(dst), { recursive: true });
  fs.copyFileSync(src, dst);
  if (mode !== undefined) fs.chmodSync(dst, mode);
}

/** Shared libraries a host binary needs, from ldd: [path as the loader asks for it, real file]. */
function sharedLibraries(binary: string): string[] {
  const out = execFileSync('ldd', [binary], { encoding: 'utf8' });
  const libs: string[] = [];
  for (const line of out.split('\n')) {
    const m = /=>\s+(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m) libs.push(m[1]);
  }
  return libs;
}

function kmodRun(ref: Reference, tool: string, args: string[]): void {
  const k = ref.KMOD_ROOT;
  execFileSync(`${k}/usr/lib64/ld-linux-x86-64.so.2`, ['--library-path', `${k}/usr/lib/x86_64-linux-gnu`, '--argv0', tool, `${k}/usr/bin/kmod`, ...args], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}

/** The guest's module names plus every module they depend on, as relative paths in modules.dep. */
export function moduleClosure(moddir: string, names: string[]): string[] {
  const dep = fs.readFileSync(path.join(moddir, 'modules.dep'), 'utf8');
  const byName = new Map<string, { file: string; deps: string[] }>();
  for (const line of dep.split('\n')) {
    const i = line.indexOf(':');
    if (i < 0) continue;
    const file = line.slice(0, i);
    const deps = line.slice(i + 1).trim().split(/\s+/).filter((d) => d !== '');
    byName.set(path.basename(file).replace(/\.ko(\..*)?$/, '').replace(/-/g, '_'), { file, deps });
  }
  const files = new Set<string>();
  for (const n of names) {
    const e = byName.get(n.replace(/-/g, '_'));
    if (!e) throw new Error(`module ${n} is not in ${moddir}/modules.dep`);
    files.add(e.file);
    for (const d of e.deps) files.add(d);
  }
  return [...files].sort();
}

function cpio(dir: string, outFile: string): void {
  const r = spawnSync('sh', ['-c', 'find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet --owner=0:0 > "$0"', outFile], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cpio failed: ${r.stderr}`);
}

const INIT = `#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# no request_module() helper: the kernel must not load anything behind the scenarios' back
echo > /proc/sys/kernel/modprobe
stty -F /dev/ttyS1 raw -echo 115200 2>/dev/null
mkdir -p /etc/modprobe.d /run /tmp
hostname kmodts-vm
/usr/bin/node /vm/guest-runner.js || echo "KMODTS-RUNNER-FAILED $?" > /dev/ttyS1
sync
poweroff -f
`;

export interface BaseOptions {
  modules: string[];
  recompress: Record<string, 'none' | 'zst'>;
}

/** The cached part of the initramfs: busybox, node, kmod 34.2, the module tree (depmod'ed). */
export function buildBase(ref: Reference, opts: BaseOptions): string {
  const nodeStat = fs.statSync(process.execPath);
  const key = crypto.createHash('sha256').update(JSON.stringify({
    BASE_LAYOUT, kver: ref.KVER, kmod: ref.KMOD_ROOT, node: [process.execPath, nodeStat.size, nodeStat.mtimeMs],
    busybox: fs.statSync(BUSYBOX).size, opts,
  })).digest('hex').slice(0, 16);
  const out = path.join(cacheDir, `base-${key}.cpio`);
  if (fs.existsSync(out)) return out;
  fs.mkdirSync(cacheDir, { recursive: true });
  const root = fs.mkdtempSync(path.join(cacheDir, 'base-root-'));
  try {
    // busybox and the init script
    copyFile(BUSYBOX, path.join(root, 'bin/busybox'), 0o755);
    for (const d of ['proc', 'sys', 'dev', 'tmp', 'etc', 'root', 'sbin']) fs.mkdirSync(path.join(root, d), { recursive: true });
    fs.writeFileSync(path.join(root, 'init'), INIT, { mode: 0o755 });
    fs.symlinkSync('busybox', path.join(root, 'bin/sh'));
    // node and what it links against, at the paths the loader expects
    copyFile(process.execPath, path.join(root, 'usr/bin/node'), 0o755);
    for (const lib of sharedLibraries(process.execPath)) copyFile(fs.realpathSync(lib), path.join(root, lib), 0o755);
    // kmod 34.2 with trixie's loader and libraries (liblzma is dlopen'ed on demand)
    const k = ref.KMOD_ROOT;
    copyFile(`${k}/usr/bin/kmod`, path.join(root, 'kmod/usr/bin/kmod'), 0o755);
    copyFile(fs.realpathSync(`${k}/usr/lib64/ld-linux-x86-64.so.2`), path.join(root, 'kmod/usr/lib64/ld-linux-x86-64.so.2'), 0o755);
    const libdir = `${k}/usr/lib/x86_64-linux-gnu`;
    for (const f of fs.readdirSync(libdir)) {
      if (!/^(libc|libcrypto|libz|libzstd|liblzma)\.so\.\d+$/.test(f)) continue;
      copyFile(fs.realpathSync(path.join(libdir, f)), path.join(root, 'kmod/usr/lib/x86_64-linux-gnu', f), 0o755);
    }
    // the module tree: chosen modules + dependencies, the builtin lists, indexes by kmod 34.2's depmod
    const srcMods = path.join(ref.KTREE, 'lib/modules', ref.KVER);
    const dstMods = path.join(root, 'lib/modules', ref.KVER);
    for (const rel of moduleClosure(srcMods, opts.modules)) {
      const name = path.basename(rel).replace(/\.ko\.xz$/, '');
      const how = opts.recompress[name];
      const dst = path.join(dstMods, rel);
      copyFile(path.join(srcMods, rel), dst);
      if (how === 'none') execFileSync('xz', ['-d', dst]);
      else if (how === 'zst') {
        execFileSync('xz', ['-d', dst]);
        execFileSync('zstd', ['-q', '--rm', dst.replace(/\.xz$/, ''), '-o', dst.replace(/\.xz$/, '.zst')]);
      }
    }
    for (const f of ['modules.builtin', 'modules.builtin.modinfo', 'modules.order']) copyFile(path.join(srcMods, f), path.join(dstMods, f));
    kmodRun(ref, 'depmod', ['-b', root, ref.KVER]);
    const tmp = `${out}.${process.pid}.tmp`;
    cpio(root, tmp);
    fs.renameSync(tmp, out);
    // older bases (other module sets, other node) are not needed any more
    for (const f of fs.readdirSync(cacheDir)) if (/^base-[0-9a-f]+\.cpio$/.test(f) && f !== path.basename(out)) fs.rmSync(path.join(cacheDir, f), { force: true });
    return out;
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

/** The per-run part: the built kmodts (dist, bin, addon, package.json), the runner and the scenarios. */
export function buildOverlay(scenarios: Scenario[], only?: ('kmod' | 'kmodts')[]): string {
  const addon = path.join(repoRoot, 'build/Release/kmodts_native.node');
  if (!fs.existsSync(addon)) throw new Error(`${addon} is missing: run \`node scripts/build-native.js\``);
  if (!fs.existsSync(path.join(repoRoot, 'dist/cli/main.js'))) throw new Error('dist/ is missing: run `npx tsc -p tsconfig.build.json`');
  fs.mkdirSync(cacheDir, { recursive: true });
  const root = fs.mkdtempSync(path.join(cacheDir, 'overlay-root-'));
  try {
    const k = path.join(root, 'kmodts');
    // what the package ships (package.json "files": dist, bin, vendor/, scripts the addon's loader
    // reads, ...), as an installation has it, and the addon built here
    const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as {
      files: string[];
      dependencies?: Record<string, string>;
      optionalDependencies?: Record<string, string>;
    };
    for (const entry of pkg.files) {
      const src = path.join(repoRoot, entry);
      if (fs.existsSync(src)) fs.cpSync(src, path.join(k, entry), { recursive: true, filter: (s) => !s.endsWith('.d.ts') });
    }
    copyFile(addon, path.join(k, 'build/Release/kmodts_native.node'));
    copyFile(path.join(repoRoot, 'package.json'), path.join(k, 'package.json'));
    // runtime dependencies (package.json "dependencies" and the optional ones installed here, transitively)
    const todo = [...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.optionalDependencies ?? {})];
    const seen = new Set<string>();
    while (todo.length) {
      const dep = todo.pop()!;
      if (seen.has(dep)) continue;
      seen.add(dep);
      const src = path.join(repoRoot, 'node_modules', dep);
      if (!fs.existsSync(src) && pkg.optionalDependencies?.[dep] !== undefined) continue;
      fs.cpSync(src, path.join(k, 'node_modules', dep), { recursive: true, dereference: true });
      const sub = JSON.parse(fs.readFileSync(path.join(src, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
      todo.push(...Object.keys(sub.dependencies ?? {}));
    }
    fs.mkdirSync(path.join(k, 'sbin'));
    for (const tool of ['modprobe', 'insmod', 'rmmod', 'lsmod', 'modinfo', 'depmod']) fs.symlinkSync('../bin/kmodts.js', path.join(k, 'sbin', tool));
    copyFile(path.join(__dirname, 'guest-runner.js'), path.join(root, 'vm/guest-runner.js'));
    fs.writeFileSync(path.join(root, 'vm/scenarios.json'), JSON.stringify({ scenarios, only }));
    const out = path.join(root, '..', `overlay-${process.pid}.cpio`);
    cpio(root, out);
    return out;
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

export interface VmReport {
  type: string;
  data: any;
}

export interface VmRun {
  reports: VmReport[];
  console: string;
  /** from starting qemu to the guest's first report */
  bootMs: number;
  totalMs: number;
}

/** Boots the kernel with base + overlay and returns the guest's reports. Throws if the guest never reports DONE. */
export async function bootVm(ref: Reference, base: string, overlay: string, timeoutMs: number): Promise<VmRun> {
  const initrd = overlay.replace(/\.cpio$/, '-initrd.cpio');
  fs.writeFileSync(initrd, Buffer.concat([fs.readFileSync(base), fs.readFileSync(overlay)]));
  try {
    return await runQemu({
      args: ['-m', '2048', '-net', 'none', '-kernel', ref.VMLINUZ, '-initrd', initrd, '-append', 'console=ttyS0 panic=-1'],
      reportFile: overlay.replace(/\.cpio$/, '-ttyS1.txt'),
      consoleFile: path.join(cacheDir, 'last-console.txt'),
      timeoutMs,
    });
  } finally {
    for (const f of [initrd, overlay]) fs.rmSync(f, { force: true });
  }
}

export interface QemuOptions {
  /** machine-specific arguments (memory, kernel, disks, command line); TCG and the serial ports are added */
  args: string[];
  /** where the guest's second serial port (ttyS1, its "KMODTS-<TYPE> <base64 JSON>" reports) goes */
  reportFile: string;
  /** where the console is kept when the guest does not finish */
  consoleFile: string;
  timeoutMs: number;
}

/**
 * Whether a guest that never reported DONE crashed in its kernel before anything of the test ran: no
 * report at all, qemu gone by itself (panic=-1 and -no-reboot), and an oops or panic on the console.
 * Multi-threaded TCG with two vCPUs has crashed Debian's kernel while it patched its own code at boot
 * (an int3 in sched_clock_cpu, 3 s in, once in many CI runs): such a boot is tried once more. A crash
 * that the tools cause repeats, and still fails.
 */
export function earlyKernelCrash(reports: number, exited: number | string, consoleText: string): boolean {
  // (a guest that hangs is not tried again: that would double a timeout of many minutes)
  return reports === 0 && exited !== 'timeout' && /\b(Oops: |Kernel panic - not syncing)/.test(consoleText);
}

/** A guest that did not report DONE (runQemuOnce) */
class VmDidNotFinish extends Error {
  constructor(message: string, readonly earlyCrash: boolean) {
    super(message);
  }
}

/** Runs qemu-system-x86_64 under TCG with the console on stdio and ttyS1 in reportFile, until the
 *  guest powers off (or 15 s after its DONE report, or the timeout); returns the parsed reports.
 *  Throws, with the console's tail, if the guest never reports DONE; a boot whose kernel crashed before
 *  the first report (earlyKernelCrash) is run once more first. */
export async function runQemu(opts: QemuOptions): Promise<VmRun> {
  try {
    return await runQemuOnce(opts);
  } catch (err) {
    if (!(err instanceof VmDidNotFinish) || !err.earlyCrash) throw err;
    console.warn(`vm: the guest's kernel crashed before the first report; booting once more\n${err.message.slice(-1500)}`);
    return await runQemuOnce(opts);
  }
}

async function runQemuOnce(opts: QemuOptions): Promise<VmRun> {
  const serialOut = opts.reportFile;
  fs.writeFileSync(serialOut, '');
  const args = ['-accel', 'tcg', '-cpu', 'max', '-nographic', '-no-reboot', ...opts.args, '-serial', 'mon:stdio', '-serial', `file:${serialOut}`];
  const t0 = Date.now();
  let consoleText = '';
  let bootMs = -1;
  const child = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.on('data', (d: Buffer) => { consoleText += d.toString('latin1'); });
  child.stderr.on('data', (d: Buffer) => { consoleText += d.toString('latin1'); });
  let doneAt = 0;
  const poll = setInterval(() => {
    const size = fs.statSync(serialOut).size;
    if (bootMs < 0 && size > 0) bootMs = Date.now() - t0;
    // the guest powers itself off after its last report; should that fail, do not wait for the timeout
    if (doneAt === 0 && size > 0 && fs.readFileSync(serialOut, 'latin1').includes('KMODTS-DONE')) doneAt = Date.now();
    if (doneAt !== 0 && Date.now() - doneAt > 15_000) child.kill('SIGKILL');
  }, 200);
  const exited = await new Promise<number | string>((resolve) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); resolve('timeout'); }, opts.timeoutMs);
    child.on('exit', (code, signal) => { clearTimeout(timer); resolve(code ?? String(signal)); });
    child.on('error', (err) => { clearTimeout(timer); resolve(`spawn error: ${err.message}`); });
  });
  clearInterval(poll);
  const totalMs = Date.now() - t0;
  const reports: VmReport[] = [];
  for (const raw of fs.readFileSync(serialOut, 'latin1').split('\n')) {
    const line = raw.replace(/\r/g, '');
    const m = /^KMODTS-([A-Z-]+)(?: (\S+))?/.exec(line);
    if (!m) continue;
    let data: any = m[2];
    try {
      data = m[2] ? JSON.parse(Buffer.from(m[2], 'base64').toString('utf8')) : undefined;
    } catch {
      /* a truncated line: keep the raw text */
    }
    reports.push({ type: m[1], data });
  }
  if (!reports.some((r) => r.type === 'DONE')) {
    fs.mkdirSync(path.dirname(opts.consoleFile), { recursive: true });
    fs.writeFileSync(opts.consoleFile, consoleText);
    throw new VmDidNotFinish(`the VM did not finish (qemu: ${exited}, ${totalMs} ms; ${reports.length} reports); console tail:\n${consoleText.slice(-3000)}`, earlyKernelCrash(reports.length, exited, consoleText));
  }
  fs.rmSync(serialOut, { force: true });
  return { reports, console: consoleText, bootMs, totalMs };
}

/** Everything: host tools, reference, base, overlay, boot. */
export async function runVm(scenarios: Scenario[], opts: BaseOptions & { only?: ('kmod' | 'kmodts')[]; timeoutMs?: number }): Promise<VmRun & { ref: Reference }> {
  requirePrerequisites(['qemu-system-x86', 'busybox-static', 'cpio', 'xz-utils', 'zstd']);
  const ref = reference();
  const base = buildBase(ref, { modules: opts.modules, recompress: opts.recompress });
  const overlay = buildOverlay(scenarios, opts.only);
  const run = await bootVm(ref, base, overlay, opts.timeoutMs ?? 600_000);
  return { ...run, ref };
}
