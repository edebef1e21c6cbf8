// fnmatch(3) with flags 0, as glibc implements it in the C locale: '*' matches any run of characters
// ('/' and leading '.' included), '?' one character, '[...]' a set ('!' or '^' negates, ranges, ']' first
// is literal, [:class:]), '\' escapes the next character (a trailing '\' never matches), and an
// unterminated '[' is an ordinary character. kmod uses it for config aliases, commands, softdeps and
// the wildcard search of modules.alias.bin.

import { cLocaleClass } from './c-locale';

/**
 * Matches the bracket expression starting at pattern[start] === '[' against character c.
 * Returns the index just past the closing ']' and whether c matched, or undefined when the
 * expression is not terminated (then '[' is literal).
 */
function matchBracket(pattern: string, start: number, c: number): { next: number; matched: boolean } | undefined {
  let i = start + 1;
  const n = pattern.length;
  let negate = false;
  if (i < n && (pattern[i] === '!' || pattern[i] === '^')) {
    negate = true;
    i++;
  }
  let matched = false;
  let first = true;
  while (true) {
    if (i >= n) return undefined;
    let ch = pattern.charCodeAt(i);
    if (ch === 0x5d /* ] */ && !first) {
      i++;
      break;
    }
    first = false;
    // character class [:name:]
    if (ch === 0x5b /* [ */ && pattern[i + 1] === ':') {
      const close = pattern.indexOf(':]', i + 2);
      if (close >= 0) {
        const name = pattern.slice(i + 2, close);
        const cls = cLocaleClass(name);
        if (cls === undefined) return undefined; // glibc: invalid class -> no match as a bracket
        if (cls(c)) matched = true;
        i = close + 2;
        continue;
      }
    }
    if (ch === 0x5c /* \ */) {
      i++;
      if (i >= n) return undefined;
      ch = pattern.charCodeAt(i);
    }
    i++;
    // range lo-hi (a '-' right before ']' is literal)
    if (i + 1 < n && pattern[i] === '-' && pattern[i + 1] !== ']') {
      let hi = pattern.charCodeAt(i + 1);
      let j = i + 2;
      if (hi === 0x5c) {
        if (i + 2 >= n) return undefined;
        hi = pattern.charCodeAt(i + 2);
        j = i + 3;
      }
      if (c >= ch && c <= hi) matched = true;
      i = j;
      continue;
    }
    if (c === ch) matched = true;
  }
  return { next: i, matched: matched !== negate };
}

/** fnmatch(pattern, string, 0) === 0 */
export function fnmatch(pattern: string, str: string): boolean {
  let p = 0;
  let s = 0;
  // backtracking point: the last '*' seen and the string position it currently covers up to
  let starP = -1;
  let starS = 0;
  const pn = pattern.length;
  const sn = str.length;
  while (true) {
    if (p < pn) {
      const pc = pattern[p];
      if (pc === '*') {
        while (p < pn && pattern[p] === '*') p++;
        if (p === pn) return true;
        starP = p;
        starS = s;
        continue;
      }
      if (s < sn) {
        if (pc === '?') {
          p++;
          s++;
          continue;
        }
        if (pc === '[') {
          const r = matchBracket(pattern, p, str.charCodeAt(s));
          if (r === undefined) {
            if (str[s] === '[') {
              p++;
              s++;
              continue;
            }
          } else if (r.matched) {
            p = r.next;
            s++;
            continue;
          }
        } else if (pc === '\\') {
          if (p + 1 < pn && pattern[p + 1] === str[s]) {
            p += 2;
            s++;
            continue;
          }
        } else if (pc === str[s]) {
          p++;
          s++;
          continue;
        }
      }
    } else if (s === sn) {
      return true;
    }
    // mismatch: let the last '*' swallow one more character
    if (starP < 0 || starS >= sn) return false;
    starS++;
    s = starS;
    p = starP;
  }
}

/** Whether a string contains fnmatch wildcards that the index search treats specially. */
export function hasWildcard(s: string): boolean {
  return /[*?[]/.test(s);
}
