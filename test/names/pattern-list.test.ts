// PatternList finds what kmod's walk of a configuration list with fnmatch() finds (the first match,
// every match in order, the first entry spelled exactly so), on random lists mixing plain names,
// wildcard patterns and backslashes.
import { describe, expect, it } from 'vitest';
import { fnmatch } from '../../src/names/fnmatch';
import { PatternList, patternListOf } from '../../src/names/pattern-list';

/** a small deterministic generator (the same lists on every run) */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const PIECES = ['a', 'b', 'a_b', '*', '?', '[ab]', '[', '\\a', '\\', 'ab'];

describe('PatternList', () => {
  it('agrees with a walk of the list on random lists and names', () => {
    const rnd = random(7);
    const pick = (): string => PIECES[Math.floor(rnd() * PIECES.length)];
    const word = (): string => Array.from({ length: 1 + Math.floor(rnd() * 3) }, pick).join('');
    for (let round = 0; round < 300; round++) {
      const items = Array.from({ length: Math.floor(rnd() * 12) }, (_, i) => ({ name: word(), i }));
      const list = new PatternList(items, (it) => it.name);
      for (let q = 0; q < 20; q++) {
        const name = q % 4 === 0 && items.length > 0 ? items[Math.floor(rnd() * items.length)].name : word();
        expect(list.first(name)).toBe(items.find((it) => fnmatch(it.name, name)));
        expect(list.all(name)).toEqual(items.filter((it) => fnmatch(it.name, name)));
        expect(list.firstWithText(name)).toBe(items.find((it) => it.name === name));
      }
    }
  });

  it('is made again for a list that has grown since', () => {
    const items = [{ name: 'a*' }];
    expect(patternListOf(items, (it) => it.name).first('b')).toBeUndefined();
    items.push({ name: 'b' });
    expect(patternListOf(items, (it) => it.name).first('b')).toBe(items[1]);
  });
});
