// A small deterministic PRNG for the suites' random inputs (xorshift32): the same cases on every run.

/** numbers in [0, 1) from `seed` */
export function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
}
