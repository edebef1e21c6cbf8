// regcomp(REG_EXTENDED | REG_NOSUB) + regexec against glibc's own (called through python3's ctypes, in
// the C locale), on a table of the places where JavaScript's syntax differs, and on tens of thousands of
// random patterns: the same refusals and the same matches.
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { compilePosixExtended } from '../../src/names/posix-regex';

/** glibc's answers for [pattern, subject] pairs: 'E' where regcomp fails, else '1' or '0' */
function glibcRegex(pairs: [string, string][]): string[] {
  const script = `
import ctypes, json, sys
libc = ctypes.CDLL("libc.so.6")
regex_t = ctypes.create_string_buffer(1024)  # larger than any glibc's regex_t
out = []
for p, s in json.load(sys.stdin):
    if libc.regcomp(regex_t, p.encode("latin1"), 1 | 8) != 0:  # REG_EXTENDED | REG_NOSUB
        out.append("E")
        continue
    out.append("1" if libc.regexec(regex_t, s.encode("latin1"), 0, None, 0) == 0 else "0")
    libc.regfree(regex_t)
print(json.dumps(out))
`;
  const out = execFileSync('python3', ['-c', script], { input: JSON.stringify(pairs), encoding: 'utf8', env: { LC_ALL: 'C', PATH: process.env.PATH }, maxBuffer: 1 << 26 });
  return JSON.parse(out) as string[];
}

function ours(pattern: string, subject: string): string {
  const re = compilePosixExtended(pattern);
  return re === null ? 'E' : re.test(subject) ? '1' : '0';
}

function differences(pairs: [string, string][]): string[] {
  const want = glibcRegex(pairs);
  return pairs.flatMap(([p, s], i) => (ours(p, s) === want[i] ? [] : [`${JSON.stringify(p)} on ${JSON.stringify(s)}: glibc ${want[i]}, ours ${ours(p, s)}`]));
}

/** a repeatable random integer below n (the C standard's sample rand()) */
function seededRandom(seed: number): (n: number) => number {
  return (n) => {
    seed = (Math.imul(seed, 1103515245) + 12345) & 0x7fffffff;
    return seed % n;
  };
}

const kver = '6.12.118+deb13-cloud-amd64';
const table: string[] = [
  '*', '^6\\.12', '6\\.1\\.', 'cloud', '^(6|5)\\.', '-amd64$', '.*', '', '(', ')', '6)', 'a|', '|6', '()', '(|6)',
  '[[:digit:]]+\\.12', '[[:alpha:]]', '[[:bogus:]]', '[[:toString:]]', '[[.6.]]', '[[=6=]]', '[[.ab.]]', '[[:alpha:]',
  '[\\.]', '[\\]', '6\\.\\d', '\\d', '\\w+', '\\W', '\\s', '\\S', '\\bcloud\\b', '\\Bloud', '\\<amd', 'amd\\>', '\\`6', "64\\'",
  '6{,1}\\.', '6{1}', '6{1,}', '6{0,1}', '6{2,1}', '6{}', '6{', '6{1', '6{x}', '6{1,2,3}', '6{32767}', '6{32768}', '{1}', 'a}',
  '6**', '6+?', '6{1}{2}', '*6', '+6', '?6', '(*6)', '6|*', '^*', '6$*', '\\b*', '(6)\\1', '(6)|\\1', '(6)\\2', '\\1(6)',
  '((6)|x)\\2', '(6)\\1|(.)\\1', '[]a]', '[^]a]', '[a-]', '[-a]', '[a-c-e]', '[z-a]', '[--/]', '[[:alpha:]-z]', '[a-[:alpha:]]',
  '[', '[^', '[a', '6\\', '\\', '\\{', '\\}', '\\(', '\\|', '\\0', '\\n', '.\\+', 'é', '[à-ÿ]', '[^a-z0-9.+-]',
];

describe('POSIX extended regular expressions (regcomp REG_EXTENDED|REG_NOSUB) match glibc', () => {
  it('on the syntax JavaScript reads otherwise', () => {
    const pairs = table.flatMap((p): [string, string][] => [[p, kver], [p, 'a'], [p, ''], [p, '6\\.1 ]a-']]);
    expect(differences(pairs)).toEqual([]);
    // the table exercises both verdicts and refusals
    const want = glibcRegex(pairs);
    expect(want.filter((w) => w === 'E').length).toBeGreaterThan(30);
    expect(want.filter((w) => w === '1').length).toBeGreaterThan(80);
  });

  // back-references are left out: one to a group that took no part in the match fails in glibc and
  // matches the empty string in JavaScript (docs/compat.md)
  it('on random patterns without back-references', () => {
    const atoms = [
      'a', 'b', '6', '1', '.', '\\.', '\\', '*', '+', '?', '{', '}', '{1}', '{,2}', '{2,}', '{1,3}', '(', ')', '|', '^', '$',
      '[', ']', '[a-c]', '[^a]', '[[:digit:]]', '[[:alpha:]', '[:', '-', '\\d', '\\w', '\\W', '\\s', '\\b', '\\<', '\\>',
      ',', '[.a.]', '[=a=]', '[]a]', '[a-]', '[\\.]', '0', 'x', 'é', '\\{', '{0}', '()',
      '(a|b)', '(6|1)*', '[0-9]+', '+deb', '\\`', "\\'",
    ];
    const subjects = [kver, '6.1.0-28-amd64', 'a', '', 'ab', 'aab', 'ba', 'a\\.b', 'a.b', 'x-y', 'd6', ')', '{', 'a}', 'été', '\\'];
    const random = seededRandom(20261207);
    const pairs: [string, string][] = [];
    for (let k = 0; k < 40_000; k++) {
      let p = '';
      for (let n = 1 + random(8); n > 0; n--) p += atoms[random(atoms.length)];
      pairs.push([p, subjects[random(subjects.length)]!]);
    }
    expect(differences(pairs).slice(0, 20)).toEqual([]);
  });

  // two levels: deeper repetitions of groups that can match the empty string take glibc minutes
  it('on random nested groups, alternations and repetitions', () => {
    const random = seededRandom(7);
    const leaves = ['a', 'b', '.', '[ab]', '[^a]', '\\w', '\\W', '-', '6', '[[:digit:]]'];
    const anchors = ['\\b', '\\B', '\\<', '\\>', '^', '$'];
    const quantifiers = ['', '', '', '*', '+', '?', '{2}', '{1,3}', '{0,2}', '{2,}', '**', '+?'];
    const pattern = (depth: number): string => {
      const r = random(12);
      if (r === 0) return anchors[random(anchors.length)]!;
      if (depth > 1 || r < 6) return leaves[random(leaves.length)]! + quantifiers[random(quantifiers.length)]!;
      if (r < 8) return pattern(depth + 1) + pattern(depth + 1) + pattern(depth + 1);
      if (r < 11) return `(${pattern(depth + 1)}|${pattern(depth + 1)})${quantifiers[random(quantifiers.length)]!}`;
      return `(${pattern(depth + 1)})${quantifiers[random(quantifiers.length)]!}`;
    };
    const subject = (): string => Array.from({ length: random(14) }, () => 'ab6- x'[random(6)]).join('');
    const pairs = Array.from({ length: 5000 }, (): [string, string] => [pattern(0), subject()]);
    expect(differences(pairs).slice(0, 20)).toEqual([]);
  });

  // glibc forgets an anchor's condition where the next state is a copy of a repeated element:
  // `(a|$){2}x` matches "ax", `(^a){2}` matches "aa"; kmod sees that, and so does kmodts
  it('on anchors inside repeated groups', () => {
    const random = seededRandom(11);
    const anchors = ['^', '$', '\\b', '\\B', '\\<', '\\>', '\\`', "\\'"];
    const leaves = ['a', 'b', 'x', '.'];
    const quantifiers = ['{2}', '{3}', '+', '{1,2}', '{0,2}', '{2,}', '*', '?', '{2,3}', '{0,3}', ''];
    const piece = (): string => (random(3) === 0 ? anchors[random(anchors.length)]! : leaves[random(leaves.length)]!);
    const group = (): string => {
      let body = '';
      for (let n = 1 + random(3); n > 0; n--) body += piece();
      if (random(2)) body += `|${piece()}`;
      return `(${body})${quantifiers[random(quantifiers.length)]!}`;
    };
    // (nested repeated groups, or empty ones, take glibc's regexec minutes)
    const pattern = (): string => Array.from({ length: 1 + random(2) }, () => (random(2) ? group() : piece())).join('');
    const subject = (): string => Array.from({ length: random(7) }, () => 'abx -'[random(5)]).join('');
    const pairs: [string, string][] = [['(a|$){2}x', 'ax'], ['(^a){2}', 'aa'], ['(\\<a){2}', 'aa'], ['(a|$)(a|$)x', 'ax']];
    for (let k = 0; k < 5000; k++) pairs.push([pattern(), subject()]);
    expect(differences(pairs).slice(0, 20)).toEqual([]);
    expect(['(a|$){2}x', '(^a){2}'].map((p) => compilePosixExtended(p)!.test(p === '(^a){2}' ? 'aa' : 'ax'))).toEqual([true, true]);
  });

  it('runs in time linear in the string, where backtracking would take hours', () => {
    // 2^39 ways to split the string among the stars: a backtracking RegExp does not come back
    const subject = `${kver}-${'y'.repeat(13)}`;
    for (const pattern of ['(.*)*x', '([0-9a-z.+-]+)+x', '(.+)+(.+)+x']) expect(compilePosixExtended(pattern)!.test(subject)).toBe(false);
    expect(compilePosixExtended('(a{1000}){1000}')).toBeNull(); // REG_ESPACE rather than a million states
    // groups nested deeper than the parser's stack: refused, not an exception
    expect(compilePosixExtended(`${'('.repeat(1000)}6${')'.repeat(1000)}`)!.test(kver)).toBe(true);
    expect(compilePosixExtended(`${'('.repeat(100_000)}6${')'.repeat(100_000)}`)).toBeNull();
  });
});
