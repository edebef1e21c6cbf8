// The bounded slice of the mutation fuzzer that every test run does (seed 1, each target's ciCount
// inputs): no input of any parser may end in an uncaught exception, a crash or a hang. More inputs:
// npm run fuzz -- --target T --count N [--seed S] (scripts/fuzz.js).
import { describe, expect, it } from 'vitest';
import { fuzz } from './engine';
import { targets } from './targets';

describe('fuzzing (bounded slice)', () => {
  for (const t of targets) {
    it(`${t.name}: ${t.ciCount} mutated inputs, no fault`, async () => {
      const r = await fuzz({ target: t.name, seed: 1, count: t.ciCount, perInputMs: t.perInputMs });
      expect(r.faults).toEqual([]);
      expect(r.inputs).toBe(t.ciCount);
    }, 600_000);
  }
});
