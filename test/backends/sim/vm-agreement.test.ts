// Agreement with the real kernel: every scenario the VM suite ran on Debian's 6.12 kernel (outcomes
// recorded in test/vm/expected-kmod.json) runs against the simulated kernel through kmodts' CLI, and
// each step must end the same way: exit status, stdout and stderr, /proc/modules (sizes, use counts,
// users, state, taints) and /sys/module (initstate, refcnt, holders in directory order, parameters),
// the kernel's taint, and the module loader's kernel log lines (recorded from /dev/kmsg per step).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { reference, repoRoot } from '../../support/reference';
import type { Step } from '../../vm/scenarios';
import { runScenario, scenarios, type StepOutcome } from './vm-scenarios';

const expected = JSON.parse(fs.readFileSync(path.join(repoRoot, 'test/vm/expected-kmod.json'), 'utf8')) as {
  kver: string;
  scenarios: Record<string, StepOutcome[]>;
};

/**
 * What a module's init() does at run time is not simulated (docs/compat.md, "The simulated kernel"):
 * loop's init rounds max_part up to a power of two minus one, so the real kernel shows 7 where the
 * simulator shows the 4 that was given. Each entry: scenario, sysfs file, simulated and real value.
 */
const initTimeDifferences: [string, string, string, string][] = [['parameters', 'loop/parameters/max_part', '4\n', '7\n']];

/**
 * The kernel log lines of the recording that the module loader did not write: messages of the modules'
 * own init() code, which the simulator does not run (docs/compat.md, "The simulated kernel"). Exactly
 * these are left out; every other line of a step (the loader's: unknown symbols, parameter errors,
 * taints, signature verification...) must be the simulator's too, in the same order.
 */
const moduleInitLines = new Set([
  'brd: module loaded',
  'loop: module loaded',
  '8021q: 802.1Q VLAN Support v1.8',
  'bridge: filtering via arp/ip/ip6tables is no longer available by default. Update your scripts to load br_netfilter if you need this.',
]);

/** A step's kernel log lines as compared: the loader's (all but the modules' own init() messages) */
const loaderLines = (lines: string[] | undefined): string[] => (lines ?? []).filter((t) => !moduleInitLines.has(t));

/** Pointers printed by kmod -vvv differ from run to run */
const normalize = (s: string): string => s.replace(/0x[0-9a-f]{8,}/g, '0xPOINTER');

describe('simulated kernel agrees with the real one on the VM scenarios', () => {
  it('the recording has the kernel log and taint of every step, with module-loader lines to compare', () => {
    const steps = Object.entries(expected.scenarios).flatMap(([name, st]) => st.map((w, i) => ({ name, i, w })));
    expect(steps.filter(({ w }) => !Array.isArray(w.kmsg) || typeof w.taintedBefore !== 'number' || typeof w.tainted !== 'number').map(({ name, i }) => `${name}/${i}`)).toEqual([]);
    const withLoaderLines = steps.filter(({ w }) => loaderLines(w.kmsg).length > 0);
    expect(withLoaderLines.length).toBeGreaterThanOrEqual(5);
    // every line left out is one the real kernel printed (the list does not outlive its reason)
    const recorded = new Set(steps.flatMap(({ w }) => w.kmsg ?? []));
    expect([...moduleInitLines].filter((t) => !recorded.has(t))).toEqual([]);
    // insmod of macvtap without macvlan/tap loaded: the kernel names each missing symbol
    const unknown = expected.scenarios['insmod-errors'].find((w) => w.args.some((a) => a.endsWith('/macvtap.ko.xz')));
    expect(loaderLines(unknown?.kmsg).some((t) => /^macvtap: Unknown symbol \S+ \(err -2\)$/.test(t))).toBe(true);
  });
  it('recorded outcomes exist for the same kernel, for scenarios that exist', () => {
    expect(expected.kver).toBe(reference().KVER);
    const known = new Set(scenarios.map((s) => s.name));
    expect(Object.keys(expected.scenarios).filter((n) => !known.has(n))).toEqual([]);
    expect(Object.keys(expected.scenarios).length).toBeGreaterThanOrEqual(19);
  });
  // the recorded scenarios (scenarios.ts may be ahead of the recording)
  for (const sc of scenarios.filter((s) => s.name in expected.scenarios)) {
    it(sc.name, () => {
      const want = expected.scenarios[sc.name];
      // the recorded steps are the ones compared (scenarios.ts may be ahead of the recording)
      const got = runScenario(reference(), sc, want.map((w) => ({ tool: w.tool as Step['tool'], args: w.args })), want[0]?.taintedBefore ?? 0);
      expect(got.length).toBe(want.length);
      for (const [scName, file, simValue, realValue] of initTimeDifferences) {
        if (scName !== sc.name) continue;
        for (let i = 0; i < got.length; i++) {
          if (want[i].sys[file] !== realValue) continue;
          expect([got[i].sys[file], want[i].sys[file]]).toEqual([simValue, realValue]);
          got[i].sys[file] = realValue;
        }
      }
      got.forEach((g, i) => {
        const w = want[i];
        const label = `${sc.name} step ${i}: ${g.tool} ${g.args.join(' ')}`;
        expect({ step: label, status: g.status, stdout: g.stdout, stderr: normalize(g.stderr) }).toEqual({ step: label, status: w.status, stdout: w.stdout, stderr: normalize(w.stderr) });
        expect({ step: label, procModules: g.procModules }).toEqual({ step: label, procModules: w.procModules });
        expect({ step: label, sys: g.sys }).toEqual({ step: label, sys: w.sys });
        // the kernel log lines of the step (but the modules' own init() messages) and the taint after it
        expect({ step: label, kmsg: loaderLines(g.kmsg), tainted: g.tainted }).toEqual({ step: label, kmsg: loaderLines(w.kmsg), tainted: w.tainted });
      });
    });
  }
});
