// The configuration's fnmatch() scans (softdep, weakdep, install, remove, alias entries) answered without
// trying every entry: a pattern with no wildcard or backslash matches only its own text, so those
// entries are found through a map, and fnmatch runs only over the few real patterns. kmod walks its
// lists entry by entry; 10,000 softdeps looked up for 10,000 modules made 50 million fnmatch calls.
import { fnmatch } from './fnmatch';

/** whether fnmatch(pattern, s, 0) can be true only for s === pattern */
function isLiteralPattern(pattern: string): boolean {
  // string searches, not a regular expression: this runs at every start, where a regex costs a compile
  return !(pattern.includes('*') || pattern.includes('?') || pattern.includes('[') || pattern.includes('\\'));
}

export class PatternList<T> {
  /** positions of the literal entries, by their text, in list order */
  private readonly literal = new Map<string, number[]>();
  /** positions of the entries that are real patterns, in list order */
  private readonly wild: number[] = [];
  /** how many entries the list had when this was made */
  private readonly count: number;

  constructor(
    private readonly items: readonly T[],
    private readonly patternOf: (item: T) => string,
  ) {
    this.count = items.length;
    items.forEach((item, i) => {
      const p = patternOf(item);
      if (!isLiteralPattern(p)) this.wild.push(i);
      else {
        const at = this.literal.get(p);
        if (at === undefined) this.literal.set(p, [i]);
        else at.push(i);
      }
    });
  }

  /** whether this was made from `items` as they are now (a list only grows) */
  covers(items: readonly T[]): boolean {
    return items === this.items && this.count === items.length;
  }

  /** the first entry whose pattern matches `name`, as a walk of the list with fnmatch finds it */
  first(name: string): T | undefined {
    const lit = this.literal.get(name)?.[0] ?? Infinity;
    for (const i of this.wild) {
      if (i > lit) break;
      if (fnmatch(this.patternOf(this.items[i]), name)) return this.items[i];
    }
    return lit === Infinity ? undefined : this.items[lit];
  }

  /** the first entry whose pattern, taken as plain text, is `name` */
  firstWithText(name: string): T | undefined {
    const lit = this.literal.get(name)?.[0] ?? Infinity;
    for (const i of this.wild) {
      if (i > lit) break;
      if (this.patternOf(this.items[i]) === name) return this.items[i];
    }
    return lit === Infinity ? undefined : this.items[lit];
  }

  /** every entry whose pattern matches `name`, in list order */
  all(name: string): T[] {
    const lit = this.literal.get(name) ?? [];
    const out: T[] = [];
    let k = 0;
    for (const i of this.wild) {
      if (!fnmatch(this.patternOf(this.items[i]), name)) continue;
      while (k < lit.length && lit[k] < i) out.push(this.items[lit[k++]]);
      out.push(this.items[i]);
    }
    while (k < lit.length) out.push(this.items[lit[k++]]);
    return out;
  }
}

// (any: one map holds the lists of every entry type; each list is only read back with its own)
const made = new WeakMap<readonly unknown[], PatternList<any>>();

/** The PatternList of a configuration list, made on first use and again if the list has grown since. */
export function patternListOf<T>(items: readonly T[], patternOf: (item: T) => string): PatternList<T> {
  let list = made.get(items) as PatternList<T> | undefined;
  if (list === undefined || !list.covers(items)) {
    list = new PatternList(items, patternOf);
    made.set(items, list);
  }
  return list;
}
