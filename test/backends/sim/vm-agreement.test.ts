// Agreement with the real kernel: every scenario the VM suite ran on Debian's 6.12 kernel (outcomes
// recorded in test/vm/expected-kmod.json) runs against the simulated kernel through kmodts' CLI, and
// each step must end the same way: exit status, stdout and stderr, /proc/modules (sizes, use counts,
// users, state, taints) and /sys/module (initstate, refcnt, holders in directory order, parameters).
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

/** The texts of kernel/module/*.c, kernel/params.c and arch/x86/kernel/module.c the simulator writes */
const LOADER_TEXT =
  /Unknown symbol|disagrees about version|no symbol version|version magic|invalid for parameter|too large for parameter|unknown parameter|module is already loaded|module verification failed|taints kernel|Disabling lock debugging|kernel tainted|exports duplicate symbol|overflow in relocation|Invalid ELF|is blacklisted|Loading of |does not import it|Could not allocate|after `--' ignored|decompression failed|compressed module$|^Lockdown:/;

/** Pointers printed by kmod -vvv differ from run to run */
const normalize = (s: string): string => s.replace(/0x[0-9a-f]{8,}/g, '0xPOINTER');

describe('simulated kernel agrees with the real one on the VM scenarios', () => {
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
      const got = runScenario(reference(), sc, want.map((w) => ({ tool: w.tool as Step['tool'], args: w.args })));
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
        // when the recording has the kernel's log of the step, the module loader's lines must agree
        // (modules' own messages, which the simulator cannot produce, are left out)
        if (Array.isArray(w.kmsg)) {
          const loaderLines = (l: string[] | undefined): string[] => (l ?? []).filter((t) => LOADER_TEXT.test(t));
          expect({ step: label, kmsg: loaderLines(g.kmsg) }).toEqual({ step: label, kmsg: loaderLines(w.kmsg) });
        }
      });
    });
  }
});
