// The bounded slice of the mutation fuzzer that every test run does (seed 1, each target's ciCount
// inputs): no input of any parser may end in an uncaught exception, a crash or a hang. More inputs:
// npm run fuzz -- --target T --count N [--seed S] (scripts/fuzz.js).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { fuzz } from './engine';
import { selfTestTargets, targets } from './targets';

describe('fuzzing (bounded slice)', () => {
  for (const t of targets) {
    it(`${t.name}: ${t.ciCount} mutated inputs, no fault`, async () => {
      const r = await fuzz({ target: t.name, seed: 1, count: t.ciCount, perInputMs: t.perInputMs });
      expect(r.faults).toEqual([]);
      expect(r.inputs).toBe(t.ciCount);
    }, 600_000);
  }

  it('the harness sees an uncaught exception, a hang and a crash, names the input and goes on', async () => {
    const kinds: Record<string, RegExp> = {
      'selftest-throw': /^uncaught TypeError: Cannot read properties of null/,
      'selftest-hang': /^hang: more than 3000 ms$/,
      'selftest-crash': /^crash: worker ended by SIGKILL/,
    };
    for (const t of selfTestTargets) {
      const faultDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-fuzz-selftest-'));
      const r = await fuzz({ target: t.name, seed: 1, count: 4, perInputMs: t.perInputMs, faultDir });
      // the faulty inputs are kept, under names that say how to make them again
      expect(fs.readdirSync(faultDir).sort()).toEqual([`${t.name}-1-1`, `${t.name}-1-3`]);
      fs.rmSync(faultDir, { recursive: true, force: true });
      expect(r.inputs).toBe(4);
      expect(r.faults.map((f) => f.index)).toEqual([1, 3]);
      for (const f of r.faults) {
        expect(f.what).toMatch(kinds[t.name]);
        expect(f.from).toBe('one');
      }
    }
  }, 120_000);
});
