// The real-kernel proof: one QEMU boot of Debian's 6.12 cloud-amd64 kernel runs every scenario of
// scenarios.ts with kmod 34.2 and with kmodts; each step must give identical stdout, stderr, exit
// status, /proc/modules and /sys/module state. Fails (never skips) when the VM cannot be built or booted.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runVm, type VmRun } from './harness';
import { scenarios, vmModules, vmRecompress } from './scenarios';

let run: VmRun & { ref: { KVER: string } };
const results = new Map<string, any>();

beforeAll(async () => {
  run = await runVm(scenarios, { modules: vmModules, recompress: vmRecompress, timeoutMs: 600_000 });
  for (const r of run.reports) if (r.type === 'RESULT') results.set(`${r.data.scenario}/${r.data.impl}`, r.data);
  const done = run.reports.find((r) => r.type === 'DONE');
  const stepMs = (impl: string) => {
    const ms = [...results.values()].filter((r) => r.impl === impl).flatMap((r) => (r.steps ?? []).map((s: any) => s.ms as number)).sort((a, b) => a - b);
    return ms.length ? `${ms[ms.length >> 1]} ms median of ${ms.length} steps` : 'no steps';
  };
  process.stderr.write(`vm: boot to first report ${run.bootMs} ms, scenarios ${done?.data?.ms} ms, total ${run.totalMs} ms; ` +
    `kmod ${stepMs('kmod')}, kmodts ${stepMs('kmodts')}, node -e 0 ${run.reports.find((r) => r.type === 'HELLO')?.data?.nodeStartMs}/${done?.data?.nodeStartMs} ms before/after (TCG)\n`);
  if (process.env.KMODTS_VM_RECORD === '1') {
    const expected: Record<string, unknown> = {};
    for (const sc of scenarios) {
      const k = results.get(`${sc.name}/kmod`);
      expected[sc.name] = k?.steps?.map((s: any) => {
        const { ms: _ms, ...rest } = s;
        return rest;
      });
    }
    fs.writeFileSync(path.join(__dirname, 'expected-kmod.json'), JSON.stringify({ kver: run.ref.KVER, scenarios: expected }, null, 1) + '\n');
  }
}, 700_000);

/** what is compared for one step: everything but the timing */
function comparable(s: any) {
  return { tool: s.tool, args: s.args, stdout: s.stdout, stderr: maskPointers(s.stderr), status: s.status, procModules: s.procModules, sys: s.sys };
}

/** libkmod's INFO lines with -vvv print heap/code addresses, different in every run of kmod too */
function maskPointers(text: string): string {
  return text.replace(/(custom logging function|context) 0x[0-9a-f]+/g, '$1 0x…');
}

describe('VM: the guest', () => {
  it('boots the Debian kernel and reports from inside', () => {
    const hello = run.reports.find((r) => r.type === 'HELLO');
    expect(hello?.data?.kver).toBe(run.ref.KVER);
    expect(hello?.data?.compression).toBe('xz\n');
  });
});

describe.each(scenarios.map((s) => [s.name, s] as const))('VM scenario %s', (name, sc) => {
  it('kmod 34.2 ran it (setup succeeded)', () => {
    const k = results.get(`${name}/kmod`);
    expect(k?.error).toBeUndefined();
    for (const s of k.setup) expect({ args: s.args, status: s.status, stderr: s.stderr }).toEqual({ args: s.args, status: 0, stderr: '' });
    expect(k.steps).toHaveLength(sc.steps.length);
  });
  it('kmodts gives identical output, status and kernel state at every step', () => {
    const k = results.get(`${name}/kmod`);
    const t = results.get(`${name}/kmodts`);
    expect(t?.error).toBeUndefined();
    expect(t.steps.map(comparable)).toEqual(k.steps.map(comparable));
  });
});
