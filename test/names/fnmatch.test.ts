// fnmatch(3) flags=0 against glibc's own fnmatch (called through python3's ctypes), on a table of
// edge cases and on a few thousand random patterns over a small alphabet.
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { fnmatch } from '../../src/names/fnmatch';

/** glibc's answers for [pattern, string] pairs (C locale), in one python3 run */
function glibcFnmatch(pairs: [string, string][]): boolean[] {
  const script = `
import ctypes, json, sys
libc = ctypes.CDLL("libc.so.6")
libc.fnmatch.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int]
pairs = json.load(sys.stdin)
print(json.dumps([libc.fnmatch(p.encode("latin1"), s.encode("latin1"), 0) == 0 for p, s in pairs]))
`;
  const out = execFileSync('python3', ['-c', script], { input: JSON.stringify(pairs), encoding: 'utf8', env: { LC_ALL: 'C', PATH: process.env.PATH } });
  return JSON.parse(out) as boolean[];
}

const table: [string, string][] = [
  ['', ''], ['', 'a'], ['a', ''], ['*', ''], ['*', 'abc'], ['*', '/a/b'], ['*', '.hidden'], ['a*', 'a'], ['a*c', 'abbbc'],
  ['a*c', 'abbbd'], ['*a*b*c*', 'xaxbxcx'], ['*a*b*c*', 'xaxcxbx'], ['?', ''], ['?', 'a'], ['??', 'a'], ['?*?', 'ab'],
  ['[abc]', 'b'], ['[abc]', 'd'], ['[!abc]', 'd'], ['[!abc]', 'a'], ['[^abc]', 'd'], ['[a-c]', 'b'], ['[a-c]', '-'],
  ['[a-]', '-'], ['[-a]', '-'], ['[]a]', ']'], ['[]a]', 'a'], ['[!]a]', 'b'], ['[!]a]', ']'], ['[', '['], ['[a', '[a'],
  ['[a', 'a'], ['a[', 'a['], ['[!', '[!'], ['[]', '[]'], ['[]]', ']'], ['\\*', '*'], ['\\*', 'a'], ['\\', '\\'], ['a\\', 'a\\'],
  ['\\a', 'a'], ['[\\]]', ']'], ['[\\-]', '-'], ['[a\\-z]', 'b'], ['[a\\-z]', '-'], ['[[:alpha:]]', 'q'], ['[[:digit:]]', '5'],
  ['[[:digit:]]', 'x'], ['[[:upper:][:digit:]]', 'Q'], ['[[:bogus:]]', 'b'], ['[[:toString:]]', 'b'], ['[[:constructor:]]', 'b'], ['[[:__proto__:]]', 'b'], ['[[:alpha:]', 'a'], ['[z-a]', 'm'], ['[a-a]', 'a'],
  ['pci:v00008086d*sv*sd*bc*sc*i*', 'pci:v00008086d000010D3sv00001234sd00005678bc02sc00i00'],
  ['usb:v*p*d*dc*dsc*dp*ic03isc01ip02in*', 'usb:v046Dp0000d0000dc00dsc00dp00ic03isc01ip02in00'],
  ['of:N*T*Cfsl,mpc5200-psc-uart', 'of:NserialT<NULL>Cfsl,mpc5200-psc-uart'], ['*[', 'a['], ['*[a', 'x[a'], ['[*]', '*'], ['[?]', 'a'],
  ['a/*/c', 'a/b/c'], ['a/*', 'a/b/c'], ['.*', '.x'], ['*.conf', 'x.conf'], ['[.]x', '.x'],
];

describe('fnmatch (flags 0) matches glibc', () => {
  it('on a table of edge cases', () => {
    const want = glibcFnmatch(table);
    const got = table.map(([p, s]) => fnmatch(p, s));
    const diffs = table.filter((_, i) => want[i] !== got[i]).map(([p, s], i) => `${JSON.stringify(p)} vs ${JSON.stringify(s)}: glibc ${want[i]}`);
    expect(diffs).toEqual([]);
    expect(got.filter(Boolean).length).toBeGreaterThan(10);
  });

  it('on random patterns', () => {
    let seed = 12345;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const palpha = ['a', 'b', '-', '*', '?', '[', ']', '!', '^', '\\', ':', 'a-b', '[:alpha:]'];
    const salpha = ['a', 'b', '-', '*', '[', ']', '!', '\\', ':', 'z'];
    const pairs: [string, string][] = [];
    for (let i = 0; i < 4000; i++) {
      let p = '';
      let s = '';
      for (let j = rnd(7); j > 0; j--) p += palpha[rnd(palpha.length)];
      for (let j = rnd(7); j > 0; j--) s += salpha[rnd(salpha.length)];
      pairs.push([p, s]);
    }
    const want = glibcFnmatch(pairs);
    const diffs = pairs.filter(([p, s], i) => fnmatch(p, s) !== want[i]).map(([p, s]) => `${JSON.stringify(p)} vs ${JSON.stringify(s)}`);
    expect(diffs.slice(0, 20)).toEqual([]);
    expect(want.filter(Boolean).length).toBeGreaterThan(100);
  });
});
