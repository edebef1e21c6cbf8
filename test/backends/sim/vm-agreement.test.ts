// Agreement with the real kernel: every scenario the VM suite ran on Debian's 6.12 kernel (outcomes
// recorded in test/vm/expected-kmod.json) runs against the simulated kernel through kmodts' CLI, and
// each step must end the same way: exit status, stdout and stderr, /proc/modules (sizes, use counts,
// users, state, taints) and /sys/module (initstate, refcnt, holders in directory order, parameters).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { reference, repoRoot } from '../../support/reference';
import { runScenario, scenarios, type StepOutcome } from './vm-scenarios';

const expected = JSON.parse(fs.readFileSync(path.join(repoRoot, 'test/vm/expected-kmod.json'), 'utf8')) as {
  kver: string;
  scenarios: Record<string, StepOutcome[]>;
};

describe('simulated kernel agrees with the real one on the VM scenarios', () => {
  it('recorded outcomes exist for the same kernel', () => {
    expect(expected.kver).toBe(reference().KVER);
    expect(Object.keys(expected.scenarios).sort()).toEqual(scenarios.map((s) => s.name).sort());
  });
  for (const sc of scenarios) {
    it(sc.name, () => {
      const got = runScenario(reference(), sc);
      const want = expected.scenarios[sc.name];
      expect(got.length).toBe(want.length);
      got.forEach((g, i) => {
        const w = want[i];
        const label = `${sc.name} step ${i}: ${g.tool} ${g.args.join(' ')}`;
        expect({ step: label, status: g.status, stdout: g.stdout, stderr: g.stderr }).toEqual({ step: label, status: w.status, stdout: w.stdout, stderr: w.stderr });
        expect({ step: label, procModules: g.procModules }).toEqual({ step: label, procModules: w.procModules });
        expect({ step: label, sys: g.sys }).toEqual({ step: label, sys: w.sys });
      });
    });
  }
});
