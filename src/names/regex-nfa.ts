// A parsed POSIX pattern (posix-regex.ts) run as a nondeterministic state machine: all the states the
// pattern can be in advance together over the string, so a match is found or ruled out in time linear
// in the string's length whatever the pattern (glibc's regexec does the same; a backtracking RegExp
// can take exponential time over `(.*)*x`). No back-references: they need backtracking.
import { isWordByte } from './c-locale';
import type { AnchorKind, EreNode, PosixRegex } from './posix-regex';

/** how many states a pattern may become (repetitions are copies: `(a{1000}){1000}`); beyond, REG_ESPACE */
const MAX_STATES = 1_000_000;

/**
 * `copy`: the state comes from a copy glibc made of a repeated element (parse_dup_op's duplicate_tree:
 * every copy but the first of `x{2}`, `x+`, `x{1,3}`). glibc then forgets the condition of an anchor
 * whose next state is such a copy (calc_eclosure_iter does not carry it onto copies), so `(a|$){2}x`
 * matches "ax" and `(^a){2}` matches "aa": `ignored` anchors hold, as kmod sees them, unless an anchor
 * checked earlier on the same path without a byte between carries their condition along (matches()).
 */
type State = { copy: boolean } & (
  | { kind: 'byte'; set: readonly boolean[]; out: number }
  | { kind: 'split'; outs: number[] }
  | { kind: 'anchor'; at: AnchorKind; ignored: boolean; out: number }
  | { kind: 'match' }
);

/** glibc's REG_ESPACE */
class TooManyStates extends Error {}

/** the matcher of a tree without back-references; null where it would be too large (REG_ESPACE) */
export function matcherOfTree(tree: EreNode): PosixRegex | null {
  const states: State[] = [{ kind: 'match', copy: false }];
  let start: number;
  try {
    start = build(tree, 0, states, false);
  } catch (err) {
    if (err instanceof TooManyStates) return null;
    throw err;
  }
  return { test: (subject) => matches(states, start, subject) };
}

function add(states: State[], state: State): number {
  if (states.length >= MAX_STATES) throw new TooManyStates();
  states.push(state);
  return states.length - 1;
}

/**
 * The states of `node` followed by state `next`, in the shape of glibc's tree for it (its first state is
 * the one glibc's node->first names); returns the first. `copy`: inside a copy of a repeated element.
 */
function build(node: EreNode, next: number, states: State[], copy: boolean): number {
  switch (node.kind) {
    case 'set':
      return add(states, { kind: 'byte', set: node.set, out: next, copy });
    case 'seq': {
      let first = next;
      for (let i = node.items.length - 1; i >= 0; i--) first = build(node.items[i]!, first, states, copy);
      return first;
    }
    case 'alt':
      return add(states, { kind: 'split', outs: node.branches.map((b) => build(b, next, states, copy)), copy });
    case 'group':
      // without REG_NOSUB's need for them, glibc drops a group's own nodes, but keeps an empty group's
      // (made afresh by lower_subexp: never a copy)
      if (node.body.kind === 'seq' && node.body.items.length === 0) return add(states, { kind: 'split', outs: [next], copy: false });
      return build(node.body, next, states, copy);
    case 'anchor':
      return add(states, { kind: 'anchor', at: node.at, ignored: states[next]!.copy, out: next, copy });
    case 'repeat':
      return buildRepeat(node.body, node.min, node.max, next, states, copy);
    case 'backref':
      throw new Error('a back-reference needs a backtracking matcher');
  }
}

/**
 * body{min,max} as glibc's parse_dup_op lays it out: min copies in a row, then either a loop over one
 * more (max -1) or the optional copies nested as ((o1? o2)? o3)?. The first element is the parsed one;
 * every other is a copy.
 */
function buildRepeat(body: EreNode, min: number, max: number, next: number, states: State[], copy: boolean): number {
  let rest = next;
  if (max === -1) {
    const loop = add(states, { kind: 'split', outs: [], copy });
    (states[loop] as { outs: number[] }).outs.push(build(body, loop, states, copy || min > 0), next);
    rest = loop;
  } else if (max > min) {
    rest = optionalCopies(body, max - min, next, states, copy, copy || min > 0);
  }
  for (let k = min; k >= 1; k--) rest = build(body, rest, states, copy || k > 1);
  return rest;
}

/** ((o1? o2)? ... on)? followed by `next`: o1 a copy or not as `firstCopy`, the others copies */
function optionalCopies(body: EreNode, n: number, next: number, states: State[], copy: boolean, firstCopy: boolean): number {
  if (n === 1) return add(states, { kind: 'split', outs: [build(body, next, states, firstCopy), next], copy });
  const last = build(body, next, states, true);
  return add(states, { kind: 'split', outs: [optionalCopies(body, n - 1, last, states, copy, firstCopy), next], copy });
}

function anchorHolds(at: AnchorKind, subject: string, pos: number): boolean {
  const before = pos > 0 && isWordByte(subject.charCodeAt(pos - 1));
  const after = pos < subject.length && isWordByte(subject.charCodeAt(pos));
  switch (at) {
    case 'line-start':
      return pos === 0;
    case 'line-end':
      return pos === subject.length;
    case 'word-boundary':
      return before !== after;
    case 'not-word-boundary':
      return before === after;
    case 'word-start':
      return !before && after;
    case 'word-end':
      return before && !after;
  }
}

/** regexec: does the pattern match anywhere in the subject? */
function matches(states: readonly State[], start: number, subject: string): boolean {
  // the byte states reached at each position, and marks so that each state is entered once a position
  // on each kind of path: glibc checks an ignored anchor after all where the path to it went through
  // an anchor it checks (duplicate_node_closure gathers every condition along the way)
  const seenFree = new Int32Array(states.length).fill(-1);
  const seenChecked = new Int32Array(states.length).fill(-1);
  let current: number[] = [];
  const enter = (s: number, pos: number, into: number[]): boolean => {
    const stack: [number, boolean][] = [[s, false]];
    while (stack.length > 0) {
      const [i, checked] = stack.pop()!;
      const seen = checked ? seenChecked : seenFree;
      if (seen[i] === pos) continue;
      seen[i] = pos;
      const state = states[i]!;
      if (state.kind === 'match') return true;
      if (state.kind === 'byte') {
        if (seenFree[i] !== pos || seenChecked[i] !== pos) into.push(i);
      } else if (state.kind === 'anchor') {
        if (state.ignored && !checked) stack.push([state.out, false]);
        else if (anchorHolds(state.at, subject, pos)) stack.push([state.out, true]);
      } else for (let k = state.outs.length - 1; k >= 0; k--) stack.push([state.outs[k]!, checked]);
    }
    return false;
  };
  for (let pos = 0; ; pos++) {
    // unanchored: a match may start at every position
    if (enter(start, pos, current)) return true;
    if (pos >= subject.length) return false;
    const c = subject.charCodeAt(pos);
    const next: number[] = [];
    for (const i of current) {
      const state = states[i] as { set: readonly boolean[]; out: number };
      if (c < 256 && state.set[c] && enter(state.out, pos + 1, next)) return true;
    }
    current = next;
  }
}
