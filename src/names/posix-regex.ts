// regcomp(3) with REG_EXTENDED | REG_NOSUB, as glibc parses it in the C locale (RE_SYNTAX_POSIX_EXTENDED,
// GNU operators on), and regexec(3) of what it compiled. kmod's depmod matches depmod.d's kernel-version
// patterns (override, external) this way. JavaScript's own syntax differs where users could notice:
// `[\.]` holds a backslash, `\d` is the letter d, `[[:digit:]]` is a class, `a)` and `{,3}` and `a**` are
// valid, and `*a`, `a{` are not. Only whether a pattern matches is kept (REG_NOSUB): leftmost-longest
// against leftmost-first does not change that.
//
// Matching runs the pattern as a state machine (regex-nfa.ts), in time linear in the string, as
// glibc does: a backtracking RegExp takes seconds over `(.*)*x`. Back-references need backtracking:
// a pattern with one becomes a JavaScript RegExp.
import { cLocaleClass, isWordByte } from './c-locale';
import { matcherOfTree } from './regex-nfa';

/** glibc's RE_DUP_MAX */
const DUP_MAX = 0x7fff;

/** the sets of \w, \s and '.', made at the first pattern (depmod's start-up loads this file) */
let sets: { word: boolean[]; space: boolean[]; notNul: boolean[] } | undefined;
function namedSets(): { word: boolean[]; space: boolean[]; notNul: boolean[] } {
  return (sets ??= {
    word: charSet(isWordByte),
    space: charSet(cLocaleClass('space')!),
    notNul: charSet((c) => c !== 0),
  });
}

export type AnchorKind = 'line-start' | 'line-end' | 'word-boundary' | 'not-word-boundary' | 'word-start' | 'word-end';

/** A parsed pattern: every single-byte element is a set of bytes (a character, '.', a bracket, \w). */
export type EreNode =
  | { kind: 'set'; set: readonly boolean[] }
  | { kind: 'seq'; items: EreNode[] }
  | { kind: 'alt'; branches: EreNode[] }
  | { kind: 'group'; number: number; body: EreNode }
  | { kind: 'repeat'; min: number; max: number; body: EreNode } // max -1: no bound
  | { kind: 'anchor'; at: AnchorKind }
  | { kind: 'backref'; group: number };

/** The token glibc's peek_token sees at a position outside brackets. */
type Token =
  | { kind: 'char'; c: number; len: number }
  | { kind: 'end' | 'trailing-backslash' | 'alt' | 'open' | 'close' | 'bracket' | 'period'; len: number }
  | { kind: 'dup'; op: '*' | '+' | '?' | '{'; len: number }
  | { kind: 'close-dup'; len: number }
  | { kind: 'anchor'; at: AnchorKind; len: number }
  | { kind: 'backref'; group: number; len: number }
  | { kind: 'class'; set: readonly boolean[]; negate: boolean; len: number };

/** regcomp's refusal: depmod then treats the pattern as not matching */
class RegcompError extends Error {}

/** a compiled pattern: regexec(3) of a string, true where it matches somewhere */
export interface PosixRegex {
  test(subject: string): boolean;
}

/**
 * The pattern as glibc's regcomp(REG_EXTENDED | REG_NOSUB) in the C locale compiles it: test() answers
 * as regexec would. Null where regcomp fails.
 */
export function compilePosixExtended(pattern: string): PosixRegex | null {
  try {
    const { tree, backrefs } = new EreParser(pattern).parse();
    return backrefs ? new RegExp(sourceOf(tree)) : matcherOfTree(tree);
  } catch (err) {
    // (RangeError: groups nested thousands deep overflow this recursive parser, where glibc's, on C's
    // stack, goes deeper: refused as regcomp refuses what it has no memory for, REG_ESPACE)
    if (err instanceof RegcompError || err instanceof SyntaxError || err instanceof RangeError) return null;
    throw err;
  }
}

class EreParser {
  private pos = 0;
  private groups = 0;
  private backrefs = false;
  /** groups closed so far: a back-reference may only name one of them */
  private closed = new Set<number>();

  constructor(private readonly pattern: string) {}

  parse(): { tree: EreNode; backrefs: boolean } {
    const tree = this.alternation(0);
    if (this.peek().kind !== 'end') throw new RegcompError();
    return { tree, backrefs: this.backrefs };
  }

  /**
   * parse_reg_exp: branches separated by '|'. A back-reference may name a group closed before the
   * alternation or in its own branch, not one of an earlier branch's.
   */
  private alternation(nest: number): EreNode {
    const before = new Set(this.closed);
    const branches = [this.endsBranch(this.peek(), nest) ? EMPTY : this.branch(nest)];
    while (this.peek().kind === 'alt') {
      this.pos += 1;
      if (this.endsBranch(this.peek(), nest)) {
        branches.push(EMPTY);
        continue;
      }
      const earlier = this.closed;
      this.closed = new Set(before);
      branches.push(this.branch(nest));
      for (const group of earlier) this.closed.add(group);
    }
    return branches.length === 1 ? branches[0]! : { kind: 'alt', branches };
  }

  private endsBranch(t: Token, nest: number): boolean {
    return t.kind === 'alt' || t.kind === 'end' || (nest > 0 && t.kind === 'close');
  }

  /** parse_branch: expressions one after another */
  private branch(nest: number): EreNode {
    const items: EreNode[] = [];
    do items.push(this.expression(nest));
    while (!this.endsBranch(this.peek(), nest));
    return items.length === 1 ? items[0]! : { kind: 'seq', items };
  }

  /** parse_expression: one element and the repetitions that follow it */
  private expression(nest: number): EreNode {
    const t = this.peek();
    let atom: EreNode;
    switch (t.kind) {
      case 'char':
        atom = byteSet(t.c);
        break;
      case 'close': // an unmatched ')' (RE_UNMATCHED_RIGHT_PAREN_ORD)
      case 'close-dup':
        atom = byteSet(this.pattern.charCodeAt(this.pos));
        break;
      case 'open':
        return this.repeated(this.group(nest));
      case 'bracket':
        return this.repeated(this.bracket());
      case 'backref':
        if (!this.closed.has(t.group)) throw new RegcompError(); // REG_ESUBREG
        this.backrefs = true;
        atom = { kind: 'backref', group: t.group };
        break;
      case 'period':
        atom = { kind: 'set', set: namedSets().notNul }; // RE_DOT_NEWLINE, RE_DOT_NOT_NULL
        break;
      case 'class':
        atom = { kind: 'set', set: t.negate ? t.set.map((m) => !m) : t.set };
        break;
      case 'anchor':
        // an anchor takes no repetition: a '*' after it starts an expression, which is an error
        this.pos += t.len;
        return { kind: 'anchor', at: t.at };
      default: // a repetition with nothing before it (REG_BADRPT), or a trailing '\' (REG_EESCAPE)
        throw new RegcompError();
    }
    this.pos += t.len;
    return this.repeated(atom);
  }

  /** parse_sub_exp, from its '(' */
  private group(nest: number): EreNode {
    this.pos += 1;
    const number = ++this.groups;
    const body = this.peek().kind === 'close' ? EMPTY : this.alternation(nest + 1);
    if (this.peek().kind !== 'close') throw new RegcompError(); // REG_EPAREN
    this.pos += 1;
    if (number <= 9) this.closed.add(number);
    return { kind: 'group', number, body };
  }

  /** parse_dup_op, as often as repetitions follow: `a**` and `a{2}{3}` are valid */
  private repeated(atom: EreNode): EreNode {
    for (;;) {
      const t = this.peek();
      if (t.kind !== 'dup') return atom;
      this.pos += t.len;
      const [min, max] = t.op === '*' ? [0, -1] : t.op === '+' ? [1, -1] : t.op === '?' ? [0, 1] : this.interval();
      atom = { kind: 'repeat', min, max, body: atom };
    }
  }

  /** an interval's bounds, from just past its '{': {m}, {m,}, {m,n} and glibc's {,n} */
  private interval(): [number, number] {
    const first = this.number();
    let start = first.value;
    if (start === -1) {
      if (first.stop !== ',') throw new RegcompError(); // REG_BADBR: {}
      start = 0;
    }
    if (start === -2) throw new RegcompError(); // REG_EBRACE, REG_BADBR
    let end = start;
    let stop = first.stop;
    if (stop !== '}') ({ value: end, stop } = this.number());
    if (end === -2 || (end !== -1 && start > end) || stop !== '}') throw new RegcompError();
    if ((end === -1 ? start : end) > DUP_MAX) throw new RegcompError(); // REG_ESIZE
    return [start, end];
  }

  /**
   * fetch_number: digits up to a '}' or ',' token (consumed). -1 for none, -2 for anything else in
   * between or the pattern's end.
   */
  private number(): { value: number; stop: '}' | ',' | 'end' } {
    let value = -1;
    for (;;) {
      const t = this.peek();
      if (t.kind === 'end' || t.kind === 'trailing-backslash') return { value: -2, stop: 'end' };
      this.pos += t.len;
      if (t.kind === 'close-dup') return { value, stop: '}' };
      const c = t.kind === 'char' ? t.c : t.kind === 'backref' ? -1 : this.pattern.charCodeAt(this.pos - t.len);
      if (c === 0x2c) return { value, stop: ',' };
      const digit = t.kind === 'char' && c >= 0x30 && c <= 0x39;
      value = !digit || value === -2 ? -2 : value === -1 ? c - 0x30 : Math.min(DUP_MAX + 1, value * 10 + c - 0x30);
    }
  }

  /** parse_bracket_exp, from its '[': the set of bytes it matches */
  private bracket(): EreNode {
    const p = this.pattern;
    let i = this.pos + 1;
    const set = new Array<boolean>(256).fill(false);
    let negate = false;
    if (p[i] === '^') {
      negate = true;
      i += 1;
    }
    if (i >= p.length) throw new RegcompError(); // REG_EBRACK
    let first = true;
    for (;;) {
      const start = this.bracketElement(i, first);
      i = start.next;
      first = false;
      if (start.kind === 'class') {
        for (let c = 0; c < 256; c++) if (start.test(c)) set[c] = true;
      } else if (start.kind !== 'equiv' && p[i] === '-' && p[i + 1] !== ']') {
        // a range (a '-' before the ']' is itself; one at the pattern's end, REG_EBRACK)
        if (i + 1 >= p.length) throw new RegcompError();
        const end = this.bracketElement(i + 1, true);
        if (end.kind === 'class' || end.kind === 'equiv') throw new RegcompError();
        if (start.code > end.code) throw new RegcompError(); // REG_ERANGE (RE_NO_EMPTY_RANGES)
        for (let c = start.code; c <= end.code; c++) set[c] = true;
        i = end.next;
      } else {
        set[start.code] = true;
      }
      if (i >= p.length) throw new RegcompError(); // REG_EBRACK
      if (p[i] === ']') break;
    }
    this.pos = i + 1;
    return { kind: 'set', set: negate ? set.map((m) => !m) : set };
  }

  /** parse_bracket_element: one character, [.c.], [=c=] or [:class:] at i */
  private bracketElement(
    i: number,
    acceptHyphen: boolean,
  ):
    | { kind: 'char' | 'collating'; code: number; next: number }
    | { kind: 'equiv'; code: number; next: number }
    | { kind: 'class'; test: (c: number) => boolean; next: number } {
    const p = this.pattern;
    if (p[i] === '[' && i + 1 < p.length && (p[i + 1] === '.' || p[i + 1] === '=' || p[i + 1] === ':')) {
      const delim = p[i + 1]!;
      // parse_bracket_symbol: up to the delimiter followed by ']', a name of at most 31 bytes
      let j = i + 2;
      if (j >= p.length) throw new RegcompError();
      let name = '';
      for (;;) {
        if (name.length >= 32) throw new RegcompError();
        const ch = p[j++]!;
        if (j >= p.length) throw new RegcompError();
        if (ch === delim && p[j] === ']') break;
        name += ch;
      }
      const next = j + 1;
      if (delim === ':') {
        const test = cLocaleClass(name);
        if (test === undefined) throw new RegcompError(); // REG_ECTYPE
        return { kind: 'class', test, next };
      }
      if (name.length !== 1) throw new RegcompError(); // REG_ECOLLATE
      return { kind: delim === '=' ? 'equiv' : 'collating', code: name.charCodeAt(0), next };
    }
    // a '-' that is no range's and not before the ']' is an error
    if (p[i] === '-' && !acceptHyphen && p[i + 1] !== ']') throw new RegcompError();
    return { kind: 'char', code: p.charCodeAt(i), next: i + 1 };
  }

  /** peek_token for RE_SYNTAX_POSIX_EXTENDED with GNU operators */
  private peek(): Token {
    const p = this.pattern;
    if (this.pos >= p.length) return { kind: 'end', len: 0 };
    const c = p[this.pos]!;
    if (c === '\\') {
      if (this.pos + 1 >= p.length) return { kind: 'trailing-backslash', len: 1 };
      const c2 = p[this.pos + 1]!;
      if (c2 >= '1' && c2 <= '9') return { kind: 'backref', group: c2.charCodeAt(0) - 0x30, len: 2 };
      switch (c2) {
        case '<':
          return { kind: 'anchor', at: 'word-start', len: 2 };
        case '>':
          return { kind: 'anchor', at: 'word-end', len: 2 };
        case 'b':
          return { kind: 'anchor', at: 'word-boundary', len: 2 };
        case 'B':
          return { kind: 'anchor', at: 'not-word-boundary', len: 2 };
        case '`': // the buffer's start and end: without REG_NEWLINE, the line's
          return { kind: 'anchor', at: 'line-start', len: 2 };
        case "'":
          return { kind: 'anchor', at: 'line-end', len: 2 };
        case 'w':
        case 'W':
          return { kind: 'class', set: namedSets().word, negate: c2 === 'W', len: 2 };
        case 's':
        case 'S':
          return { kind: 'class', set: namedSets().space, negate: c2 === 'S', len: 2 };
        default:
          return { kind: 'char', c: c2.charCodeAt(0), len: 2 };
      }
    }
    switch (c) {
      case '|':
        return { kind: 'alt', len: 1 };
      case '*':
      case '+':
      case '?':
      case '{':
        return { kind: 'dup', op: c, len: 1 };
      case '}':
        return { kind: 'close-dup', len: 1 };
      case '(':
        return { kind: 'open', len: 1 };
      case ')':
        return { kind: 'close', len: 1 };
      case '[':
        return { kind: 'bracket', len: 1 };
      case '.':
        return { kind: 'period', len: 1 };
      case '^':
        return { kind: 'anchor', at: 'line-start', len: 1 };
      case '$':
        return { kind: 'anchor', at: 'line-end', len: 1 };
      default:
        return { kind: 'char', c: c.charCodeAt(0), len: 1 };
    }
  }
}

const EMPTY: EreNode = { kind: 'seq', items: [] };

function charSet(test: (c: number) => boolean): boolean[] {
  return Array.from({ length: 256 }, (_, c) => test(c));
}

function byteSet(c: number): EreNode {
  return { kind: 'set', set: charSet((b) => b === c) };
}

const ANCHOR_SOURCES: Readonly<Record<AnchorKind, string>> = {
  'line-start': '^',
  'line-end': '$',
  'word-boundary': '\\b',
  'not-word-boundary': '\\B',
  'word-start': '\\b(?=\\w)',
  'word-end': '\\b(?<=\\w)',
};

/** the tree as a JavaScript RegExp's source (for back-references, which need backtracking) */
function sourceOf(node: EreNode): string {
  switch (node.kind) {
    case 'set':
      return setSource(node.set);
    case 'seq':
      return node.items.map(sourceOf).join('');
    case 'alt':
      return node.branches.map(sourceOf).join('|');
    case 'group':
      return `(${sourceOf(node.body)})`;
    case 'repeat':
      return `(?:${sourceOf(node.body)}){${node.min},${node.max === -1 ? '' : node.max}}`;
    case 'anchor':
      return ANCHOR_SOURCES[node.at];
    case 'backref':
      return `(?:\\${node.group})`;
  }
}

/** one byte as a RegExp literal */
function charSource(c: number): string {
  return /[A-Za-z0-9_]/.test(String.fromCharCode(c)) ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, '0')}`;
}

/** a set of bytes as a RegExp class */
function setSource(set: readonly boolean[]): string {
  let out = '';
  for (let c = 0; c < 256; ) {
    if (!set[c]) {
      c++;
      continue;
    }
    let last = c;
    while (last + 1 < 256 && set[last + 1]) last++;
    out += last === c ? charSource(c) : `${charSource(c)}-${charSource(last)}`;
    c = last + 1;
  }
  return `[${out}]`;
}
