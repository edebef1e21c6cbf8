// The system proof: a Debian trixie system (debootstrap, Debian's 6.12 kernel) runs once on kmod
// 34.2's programs and once on kmodts installed from its npm tarball under kmod's names and paths.
// update-initramfs builds one initramfs with each; each system boots from its own under QEMU/TCG and
// runs scenarios.ts (the boot's coldplug and systemd units, the kernel's request_module calls, a
// DKMS-style module, modprobe -r of stacks). Everything must match. Fails (never skips) when the
// system cannot be built or booted.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VmRun } from '../vm/harness';
import { bootSystem, impls, prepareSystem, removeWork, treeManifest, type Impl, type Prepared } from './harness';
import { scenarios, type SystemStep } from './scenarios';

let prepared: Prepared;
const runs = {} as Record<Impl, VmRun>;

beforeAll(async () => {
  prepared = prepareSystem();
  // both at once: TCG is slow and each boot waits for its guest much of the time
  const booted = await Promise.all(impls.map((impl) => bootSystem(prepared, impl)));
  impls.forEach((impl, i) => { runs[impl] = booted[i]; });
  for (const impl of impls) {
    const done = runs[impl].reports.find((r) => r.type === 'DONE');
    const settled = runs[impl].reports.find((r) => r.type === 'SETTLED')?.data;
    process.stderr.write(`system (${impl}): first report after ${runs[impl].bootMs} ms, kernel requests settled after ${settled?.ms} ms ` +
      `(${settled?.seen?.length} seen), /proc/modules steady after ${settled?.modules?.ms} ms more ` +
      `(${JSON.stringify(settled?.modules?.changes)}), scenarios ${done?.data?.ms} ms, total ${runs[impl].totalMs} ms (TCG)\n`);
  }
}, 1_800_000);

afterAll(() => {
  if (prepared) removeWork(prepared);
});

function report(impl: Impl, type: string, scenario?: string): any {
  return runs[impl].reports.find((r) => r.type === type && (scenario === undefined || r.data?.scenario === scenario))?.data;
}

describe('update-initramfs -c (scenario a)', () => {
  it('succeeds with kmod and with kmodts, printing the same', () => {
    expect(prepared.initramfs.kmod.status).toBe(0);
    expect(prepared.initramfs.kmodts.status).toBe(0);
    expect(prepared.initramfs.kmodts.output).toBe(prepared.initramfs.kmod.output);
  });
  it('the two images hold the same files, byte for byte, with kmod\'s own binary', () => {
    const kmod = treeManifest(prepared.initramfs.kmod.tree);
    const kmodts = treeManifest(prepared.initramfs.kmodts.tree);
    expect([...kmodts.keys()]).toEqual([...kmod.keys()]);
    expect(Object.fromEntries(kmodts)).toEqual(Object.fromEntries(kmod));
    // the module indexes in particular, and kmod's binary (never kmodts: no Node in an initramfs)
    const indexes = [...kmod.keys()].filter((p) => /\/lib\/modules\/[^/]+\/modules\.[a-z.]+$/.test(p));
    expect(indexes.length).toBeGreaterThan(5);
    expect([...kmodts.keys()].filter((p) => /node_modules|\/kmodts(\.js)?$/.test(p))).toEqual([]);
    expect(kmodts.get('usr/bin/kmod')?.type).toBe('file');
    expect(kmodts.get('usr/sbin/modprobe')).toEqual({ type: 'link', mode: 0o777, content: '../bin/kmod' });
  });
  it('the module calls of older initramfs-tools (modprobe --show-depends, modinfo -F firmware) agree', () => {
    const { kmod, kmodts } = prepared.initramfs;
    expect(kmod.showDepends).toMatch(/^insmod \/lib\/modules\/.*virtio_blk\.ko\.xz/m);
    expect(kmod.showDepends).toMatch(/exit 0\n$/);
    expect(kmod.firmware).toMatch(/exit 0\n$/);
    expect(kmod.firmware).toMatch(/^comedi\/jr3pci\.idm$/m);
    expect(kmodts.showDepends).toBe(kmod.showDepends);
    expect(kmodts.firmware).toBe(kmod.firmware);
  });
  it('the initramfs does not hold virtio-rng (the device-alias scenario needs it loaded from the root)', () => {
    const files = [...treeManifest(prepared.initramfs.kmod.tree).keys()];
    expect(files.some((f) => f.endsWith('/virtio-rng.ko.xz'))).toBe(false);
    expect(files.some((f) => f.endsWith('/virtio_blk.ko.xz'))).toBe(true);
  });
});

describe('the booted systems', () => {
  it('each boots from the initramfs its own tools built and runs every scenario', () => {
    for (const impl of impls) {
      expect(report(impl, 'HELLO')?.kver).toBe(prepared.ref.KVER);
      expect(report(impl, 'SETTLED')?.ms).toBeLessThan(600_000);
      expect(report(impl, 'SETTLED')?.modules?.stable, `${impl}: /proc/modules still changing`).toBe(true);
      expect(report(impl, 'DONE')).toBeDefined();
    }
  });
  it('kmod\'s names are kmod\'s in one and kmodts\' in the other; the kernel runs /sbin/modprobe', () => {
    const kmod = report('kmod', 'HELLO');
    const kmodts = report('kmodts', 'HELLO');
    expect(kmod.tools['/usr/bin/kmod']).toBe('file');
    expect(kmod.tools['/usr/sbin/modprobe']).toBe('../bin/kmod');
    for (const [p, target] of Object.entries(kmodts.tools)) expect([p, target]).toEqual([p, '/usr/local/bin/kmodts']);
    // what the kernel's request_module runs, to the end of its links
    for (const h of [kmod, kmodts]) expect(h.kernelModprobe).toBe('/sbin/modprobe\n');
    expect(kmod.sbinModprobe).toBe('/usr/bin/kmod');
    expect(kmodts.sbinModprobe).toBe('/usr/local/lib/node_modules/kmodts/bin/kmodts.js');
  });
});

/** what is compared for one step: output in load order is compared as sorted lines */
function comparable(step: SystemStep, s: any) {
  const lines = (t: string) => (step.unordered ? [t.split('\n')[0], ...t.split('\n').slice(1).sort()].join('\n') : t);
  return { run: s.run, stdout: lines(s.stdout), stderr: s.stderr, status: s.status, procModules: s.procModules };
}

describe.each(scenarios.map((s) => [s.title, s] as const))('scenario: %s', (_title, sc) => {
  it('ran to the end with kmod 34.2 and with kmodts', () => {
    for (const impl of impls) {
      const r = report(impl, 'RESULT', sc.name);
      expect(r?.error, `${impl}: ${r?.error}`).toBeUndefined();
      expect(r.steps).toHaveLength(sc.steps.length);
    }
  });
  it('each step did what it is there for, with either tool', () => {
    for (const impl of impls) {
      report(impl, 'RESULT', sc.name).steps.forEach((s: any, i: number) => {
        const want = sc.steps[i];
        const names = new Set(s.procModules.map((l: string) => l.split(' ')[0]));
        const got = { impl, run: s.run, status: want.status === undefined ? undefined : s.status, loaded: want.loaded?.filter((m) => names.has(m)), unloaded: want.unloaded?.filter((m) => !names.has(m)) };
        expect(got).toEqual({ impl, run: s.run, status: want.status, loaded: want.loaded, unloaded: want.unloaded });
      });
    }
  });
  it('kmodts gives the same output, status and /proc/modules as kmod at every step', () => {
    const k = report('kmod', 'RESULT', sc.name);
    const t = report('kmodts', 'RESULT', sc.name);
    expect(t.steps.map((s: any, i: number) => comparable(sc.steps[i], s))).toEqual(k.steps.map((s: any, i: number) => comparable(sc.steps[i], s)));
  });
});

