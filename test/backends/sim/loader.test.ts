// The simulated kernel's loader and unloader through the Backend interface, on real Debian modules:
// the rules not covered by the tamper and VM suites (duplicate exports, init errors, in-kernel
// decompression limits, signature enforcement, built-in names, blacklist, per-cpu exhaustion,
// delete_module's rules, sizes and sysfs views).
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { reference, repoRoot } from '../../support/reference';
import { debianKernel } from './support';

const dist = path.join(repoRoot, 'dist');
const { createSimBackend, SimBackend } = require(path.join(dist, 'backends/sim/index.js')) as typeof import('../../../src/backends/sim');
const { decompress } = require(path.join(dist, 'file/decompress.js')) as typeof import('../../../src/file/decompress');
const { loadBuiltinModules } = require(path.join(dist, 'backends/sim/kernel-model.js')) as typeof import('../../../src/backends/sim/kernel-model');

const ref = reference();
const moddir = path.join(ref.KTREE, 'lib/modules', ref.KVER);
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-simloader-'));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

const O_NONBLOCK = 0o4000;
const O_TRUNC = 0o1000;
const COMPRESSED = 4;

type Sim = InstanceType<typeof SimBackend>;

function kernel(extra: Record<string, unknown> = {}): Sim {
  return createSimBackend({}, { stateDir: fs.mkdtempSync(path.join(work, 'state-')), ...debianKernel(ref), ...extra });
}

const mod = (rel: string): string => path.join(moddir, rel);
const DUMMY = mod('kernel/drivers/net/dummy.ko.xz');

function errnoOf(fn: () => void): number {
  try {
    fn();
  } catch (err) {
    return (err as { errno: number }).errno;
  }
  return 0;
}

const logOf = (b: Sim): string[] => b.kernelLog().slice(1).map((r) => r.text);

/** The module's ELF without its signature, optionally renamed (struct module name at 0x18 of this_module). */
function unsigned(rel: string, rename?: string): Buffer {
  const img = Buffer.from(decompress(fs.readFileSync(mod(rel)), rel));
  const magic = '~Module signature appended~\n';
  const sigLen = img.readUInt32BE(img.length - magic.length - 4);
  const b = Buffer.from(img.subarray(0, img.length - magic.length - 12 - sigLen));
  if (rename !== undefined) {
    const shoff = Number(b.readBigUInt64LE(0x28));
    const shnum = b.readUInt16LE(0x3c);
    const str = shoff + b.readUInt16LE(0x3e) * 64;
    const strOff = Number(b.readBigUInt64LE(str + 24));
    for (let i = 0; i < shnum; i++) {
      const h = shoff + i * 64;
      const nameAt = strOff + b.readUInt32LE(h);
      if (b.toString('latin1', nameAt, b.indexOf(0, nameAt)) === '.gnu.linkonce.this_module') {
        const off = Number(b.readBigUInt64LE(h + 24)) + 0x18;
        b.fill(0, off, off + 56);
        b.write(rename, off, 'latin1');
      }
    }
  }
  return b;
}

describe('loading', () => {
  it('loads a signed xz module with in-kernel decompression; /proc/modules and /sys views', () => {
    const b = kernel();
    b.finitModule(DUMMY, 'numdummies=3', COMPRESSED);
    expect(b.procModulesText()).toMatch(/^dummy 12288 0 - Live 0xffffffffc0[0-9a-f]{6}\n$/);
    expect(b.initstate('dummy')).toBe('live');
    expect(b.refcnt('dummy')).toBe(0);
    expect(b.readModuleAttr('dummy', 'coresize')).toBe('12288\n');
    expect(b.readModuleAttr('dummy', 'initsize')).toBe('0\n');
    expect(b.readModuleAttr('dummy', 'taint')).toBe('\n');
    expect(b.compression()).toBe('xz');
    expect(logOf(b)).toEqual([]);
  });

  it('records holders and refuses to unload a used module (EWOULDBLOCK), then unloads in order', () => {
    const b = kernel();
    for (const m of ['kernel/drivers/net/macvlan.ko.xz', 'kernel/drivers/net/tap.ko.xz', 'kernel/drivers/net/macvtap.ko.xz']) b.finitModule(mod(m), '', COMPRESSED);
    expect(b.holders('macvlan')).toEqual(['macvtap']);
    expect(b.holders('tap')).toEqual(['macvtap']);
    expect(b.refcnt('macvlan')).toBe(1);
    expect(b.procModules()?.map((p) => `${p.name}:${p.users.join(',')}`)).toEqual(['macvtap:', 'tap:macvtap', 'macvlan:macvtap']);
    expect(errnoOf(() => b.deleteModule('macvlan', O_NONBLOCK))).toBe(11);
    expect(errnoOf(() => b.deleteModule('macvlan', O_NONBLOCK | O_TRUNC))).toBe(11);
    b.deleteModule('macvtap', O_NONBLOCK);
    b.deleteModule('macvlan', O_NONBLOCK);
    expect(b.procModules()?.map((p) => p.name)).toEqual(['tap']);
  });

  it('delete_module: empty, too long and unknown names are ENOENT; permanent modules need O_TRUNC (taint R)', () => {
    const b = kernel();
    expect(errnoOf(() => b.deleteModule('', 0))).toBe(2);
    expect(errnoOf(() => b.deleteModule('x'.repeat(56), 0))).toBe(2);
    expect(errnoOf(() => b.deleteModule('nope', 0))).toBe(2);
    b.finitModule(mod('kernel/drivers/net/vrf.ko.xz'), '', COMPRESSED);
    expect(b.procModulesText()).toMatch(/^vrf \d+ 0 \[permanent\], Live /);
    expect(errnoOf(() => b.deleteModule('vrf', O_NONBLOCK))).toBe(16);
    b.deleteModule('vrf', O_NONBLOCK | O_TRUNC);
    expect(b.procModules()).toEqual([]);
    expect(b.tainted() & (1 << 3)).toBe(1 << 3);
    expect(logOf(b)).toEqual(['Disabling lock debugging due to kernel taint']);
  });

  it('run-time references given by the spec count in refcnt and stop delete_module unless forced', () => {
    const b = kernel({ runtimeRefs: { dummy: 2 } });
    b.finitModule(DUMMY, '', COMPRESSED);
    expect(b.refcnt('dummy')).toBe(2);
    expect(b.readModuleAttr('dummy', 'refcnt')).toBe('2\n');
    expect(b.procModulesText()).toMatch(/^dummy 12288 2 - Live /);
    expect(errnoOf(() => b.deleteModule('dummy', O_NONBLOCK))).toBe(11);
    b.deleteModule('dummy', O_NONBLOCK | O_TRUNC);
    expect(b.procModules()).toEqual([]);
    expect(b.tainted() & (1 << 3)).toBe(1 << 3);
  });

  it('a second load of the same module is EEXIST, after the vermagic and layout checks', () => {
    const b = kernel();
    b.finitModule(DUMMY, '', COMPRESSED);
    expect(errnoOf(() => b.finitModule(DUMMY, '', COMPRESSED))).toBe(17);
    expect(logOf(b)).toEqual([]);
  });

  it('duplicate exports: "exports duplicate symbol ... (owned by ...)", ENOEXEC', () => {
    const b = kernel();
    b.finitModule(mod('kernel/drivers/net/macvlan.ko.xz'), '', COMPRESSED);
    expect(errnoOf(() => b.initModule(unsigned('kernel/drivers/net/macvlan.ko.xz', 'macvlan2'), ''))).toBe(8);
    const log = logOf(b);
    expect(log[0]).toBe('macvlan2: module verification failed: signature and/or required key missing - tainting kernel');
    expect(log[1]).toMatch(/^macvlan2: exports duplicate symbol macvlan_\w+ \(owned by macvlan\)$/);
    expect(log.length).toBe(2);
    // the failed load left the kernel tainted (E) but not the module list
    expect(b.procModules()?.map((p) => p.name)).toEqual(['macvlan']);
  });

  it('an init() that fails: its errno, nothing loaded, the holders released', () => {
    const b = kernel({ initErrors: { macvtap: 19 } });
    b.finitModule(mod('kernel/drivers/net/macvlan.ko.xz'), '', COMPRESSED);
    b.finitModule(mod('kernel/drivers/net/tap.ko.xz'), '', COMPRESSED);
    expect(errnoOf(() => b.finitModule(mod('kernel/drivers/net/macvtap.ko.xz'), '', COMPRESSED))).toBe(19);
    expect(b.holders('macvlan')).toEqual([]);
    expect(b.procModules()?.map((p) => p.name)).toEqual(['tap', 'macvlan']);
  });

  it('in-kernel decompression: only xz on this kernel, CRC32 or no check; the kernel messages', () => {
    const b = kernel();
    const plain = path.join(work, 'dummy.ko');
    fs.writeFileSync(plain, decompress(fs.readFileSync(DUMMY), 'dummy'));
    expect(errnoOf(() => b.finitModule(plain, '', COMPRESSED))).toBe(22);
    const crc64 = path.join(work, 'dummy64.ko.xz');
    execFileSync('xz', ['-z', '-k', '-f', '--check=crc64', '-S', '64.ko.xz', plain]);
    fs.renameSync(plain.replace(/\.ko$/, '.ko64.ko.xz'), crc64);
    expect(errnoOf(() => b.finitModule(crc64, '', COMPRESSED))).toBe(22);
    const cut = path.join(work, 'cut.ko.xz');
    const xz = fs.readFileSync(DUMMY);
    fs.writeFileSync(cut, xz.subarray(0, xz.length >> 1));
    expect(errnoOf(() => b.finitModule(cut, '', COMPRESSED))).toBe(22);
    expect(logOf(b)).toEqual(['not an xz compressed module', 'decompression failed with status 6', 'decompression failed with status 0']);
    // a plain file without the flag is fine; a compressed one without it is not ELF
    b.finitModule(plain, '', 0);
    expect(errnoOf(() => b.finitModule(mod('kernel/drivers/net/ifb.ko.xz'), '', 0))).toBe(8);
    expect(errnoOf(() => b.finitModule(plain, '', 8))).toBe(22);
    expect(errnoOf(() => b.finitModule(work, '', 0))).toBe(22);
    expect(errnoOf(() => b.finitModule(path.join(work, 'missing.ko'), '', 0))).toBe(2);
  });

  it('signature enforcement and lockdown refuse unsigned modules; force flags skip the signature', () => {
    const img = unsigned('kernel/drivers/net/dummy.ko.xz');
    let b = kernel({ sigEnforce: true });
    expect(errnoOf(() => b.initModule(img, ''))).toBe(129);
    expect(logOf(b)).toEqual(['Loading of unsigned module is rejected']);
    b.finitModule(DUMMY, '', COMPRESSED);
    b = kernel({ lockdown: true, comm: 'insmod' });
    expect(errnoOf(() => b.initModule(img, ''))).toBe(1);
    expect(logOf(b)).toEqual(['Lockdown: insmod: unsigned module loading is restricted; see man kernel_lockdown.7']);
    b = kernel();
    b.finitModule(DUMMY, '', COMPRESSED | 1 | 2);
    expect(b.procModulesText()).toMatch(/ \(FE\)\n$/);
    expect(logOf(b)).toEqual([
      'dummy: module_layout: kernel tainted.',
      'Disabling lock debugging due to kernel taint',
      'dummy: module verification failed: signature and/or required key missing - tainting kernel',
    ]);
  });

  it('configuration switches: no CONFIG_MODULE_SIG (no check, no taint E), no CONFIG_MODULE_DECOMPRESS (EOPNOTSUPP), no CONFIG_MODULE_UNLOAD (ENOSYS)', () => {
    // the modules' vermagic still says mod_unload: give it, since it would follow the configuration
    const b = kernel({ configOverrides: { CONFIG_MODULE_SIG: false, CONFIG_MODULE_DECOMPRESS: false, CONFIG_MODULE_UNLOAD: false }, vermagic: `${ref.KVER} SMP preempt mod_unload modversions ` });
    expect(b.compression()).toBeUndefined();
    expect(errnoOf(() => b.finitModule(DUMMY, '', COMPRESSED))).toBe(95);
    b.initModule(unsigned('kernel/drivers/net/dummy.ko.xz'), '');
    expect(b.procModules()?.[0]?.taints).toBe('');
    expect(errnoOf(() => b.deleteModule('dummy', 0))).toBe(38);
    expect(logOf(b)).toEqual([]);
  });

  it('module_blacklist= (EPERM), modules_disabled (EPERM), a built-in name with sysfs (EINVAL)', () => {
    let b = kernel({ moduleBlacklist: ['dummy'] });
    expect(errnoOf(() => b.finitModule(DUMMY, '', COMPRESSED))).toBe(1);
    expect(logOf(b)).toEqual(['Module dummy is blacklisted']);
    b = kernel({ modulesDisabled: true });
    expect(errnoOf(() => b.finitModule(DUMMY, '', COMPRESSED))).toBe(1);
    const builtin = [...loadBuiltinModules(moddir).withSysfs].find((n) => n.length < 20 && /^[a-z_]+$/.test(n)) as string;
    expect(builtin).toBeDefined();
    b = kernel();
    expect(b.initstate(builtin)).toBe('builtin');
    expect(errnoOf(() => b.initModule(unsigned('kernel/drivers/net/dummy.ko.xz', builtin), ''))).toBe(22);
    expect(logOf(b).slice(-1)).toEqual([`${builtin}: module is already loaded`]);
  });

  it('struct module names: an empty one is EINVAL with the kobject WARN (taint W); one with white space loads, as the kernel takes it, and the state reads back', () => {
    let b = kernel();
    expect(errnoOf(() => b.initModule(unsigned('kernel/drivers/net/dummy.ko.xz', ''), ''))).toBe(22);
    expect(logOf(b).slice(-1)).toEqual([expect.stringMatching(/^kobject: \([0-9a-f]{16}\): attempted to be registered with empty name!$/)]);
    expect(b.tainted() & (1 << 9)).toBe(1 << 9);
    expect(b.procModules()).toEqual([]);
    const stateDir = fs.mkdtempSync(path.join(work, 'state-'));
    createSimBackend({}, { stateDir, ...debianKernel(ref) }).initModule(unsigned('kernel/drivers/net/dummy.ko.xz', 'dum my\f'), '');
    // (a new backend object reads the state from its file)
    b = new SimBackend(stateDir);
    expect(b.procModules()?.map((m) => m.name)).toEqual(['dum my\f']);
    b.deleteModule('dum my\f', 0);
    expect(b.procModules()).toEqual([]);
  });

  it('the per-cpu reserve: "Could not allocate N bytes percpu data", ENOMEM', () => {
    const b = kernel({ percpuReserve: 8 });
    expect(errnoOf(() => b.finitModule(mod('kernel/mm/zsmalloc.ko.xz'), '', COMPRESSED))).toBe(12);
    expect(logOf(b)).toEqual([expect.stringMatching(/^zsmalloc: Could not allocate \d+ bytes percpu data$/)]);
  });

  it('parameters with permission appear under parameters/, with their defaults and given values', () => {
    const b = kernel();
    b.finitModule(mod('kernel/drivers/block/brd.ko.xz'), 'rd_nr=2', COMPRESSED);
    expect(b.readModuleAttr('brd', 'parameters/rd_nr')).toBe('2\n');
    expect(b.readModuleAttr('brd', 'parameters/rd_size')).toMatch(/^\d+\n$/);
    expect(b.readModuleAttr('brd', 'parameters/nope')).toBeUndefined();
  });

  it('the state persists across backend objects and a reboot clears it', () => {
    const b = kernel();
    b.finitModule(DUMMY, '', COMPRESSED);
    const again = new SimBackend(b.store.dir);
    expect(again.procModules()?.map((p) => p.name)).toEqual(['dummy']);
    again.reboot();
    expect(b.procModules()).toEqual([]);
    expect(b.kernelLog().map((r) => r.text)).toEqual([`Linux version ${ref.KVER} (kmodts simulated kernel)`]);
  });

  it('corrupt images (random bytes in the headers, section table and body, cuts) fail with a KmodError, never a crash', () => {
    const { KmodError } = require(path.join(dist, 'errors.js')) as typeof import('../../../src/errors');
    const img = unsigned('kernel/drivers/net/dummy.ko.xz');
    const shoff = Number(img.readBigUInt64LE(0x28));
    const b = kernel();
    let seed = 12345;
    const rnd = (): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    let refused = 0;
    for (let i = 0; i < 600; i++) {
      const m = Buffer.from(img);
      for (let k = 1 + Math.floor(rnd() * 4); k > 0; k--) {
        const r = rnd();
        const off = r < 0.3 ? Math.floor(rnd() * 64) : r < 0.7 ? shoff + Math.floor(rnd() * (m.length - shoff)) : Math.floor(rnd() * m.length);
        m[off] = Math.floor(rnd() * 256);
      }
      const input = rnd() < 0.1 ? m.subarray(0, Math.floor(rnd() * m.length)) : m;
      try {
        b.initModule(input, '');
        for (const p of b.procModules() ?? []) b.deleteModule(p.name, O_TRUNC);
      } catch (err) {
        expect(err).toBeInstanceOf(KmodError);
        refused++;
      }
    }
    expect(refused).toBeGreaterThan(100);
  });
});


describe('reboot with taints', () => {
  const IFB = mod('kernel/drivers/net/ifb.ko.xz');
  const FORCE = 1 | 2; // MODULE_INIT_IGNORE_MODVERSIONS | MODULE_INIT_IGNORE_VERMAGIC
  it('a kernel booted with taints prints no once-per-taint messages for them; a clean one does', () => {
    const fresh = kernel();
    fresh.finitModule(IFB, '', COMPRESSED | FORCE);
    const lines = ['ifb: module_layout: kernel tainted.', 'Disabling lock debugging due to kernel taint', 'ifb: module verification failed: signature and/or required key missing - tainting kernel'];
    expect(logOf(fresh)).toEqual(lines);
    expect(fresh.tainted()).toBe((1 << 1) | (1 << 13));
    fresh.reboot();
    expect([fresh.tainted(), fresh.procModules()?.length]).toEqual([0, 0]);
    fresh.finitModule(IFB, '', COMPRESSED | FORCE);
    expect(logOf(fresh)).toEqual(lines);

    const seasoned = kernel();
    seasoned.reboot((1 << 1) | (1 << 13));
    seasoned.finitModule(IFB, '', COMPRESSED | FORCE);
    expect(logOf(seasoned)).toEqual([]);
    expect(seasoned.tainted()).toBe((1 << 1) | (1 << 13));
    // only the unsigned taint: lock debugging is still on, and goes off with the forced load
    const unsigned = kernel();
    unsigned.reboot(1 << 13);
    unsigned.finitModule(IFB, '', COMPRESSED | FORCE);
    expect(logOf(unsigned)).toEqual(lines.slice(0, 2));
  });
});
