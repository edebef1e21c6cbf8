// depmod's dependency graph: each module's imports resolved against the symbol table (the modules it
// needs, in the order first needed), kmod's topological sort, which orders every dependency list, and
// the cycle reports when the sort cannot finish.
import { LOG_ERR, LOG_WARNING } from '../log';
import { DepmodFailed, type Mod, type RunContext } from './run-context';
import { CachedScan } from './cached-scan';
import { REF_INDEX, WEAK_REF, type ImportDictionary } from './import-dictionary';
import { latin1, type Sym, type SymbolTable } from './symbols';
import { nativeFunction, type NativeImportOwnersFns } from '../native-addon';

export class DependencyGraph {
  /** -e: report unknown symbols and (with -E) version mismatches */
  printUnknown: boolean;

  /** for each module (by idx), the last module (idx) whose dependencies it was added to */
  private readonly depOf: Int32Array;
  /** allDeps' marks: the call (its number) in which each module (by idx) was met */
  private readonly met: Uint32Array;
  private calls = 0;
  /** each module at its depSortIdx (calculateDependencies) */
  private readonly bySortIdx: Mod[];
  /** sortBySortIdx's scratch */
  private readonly order: Int32Array;
  private readonly checkSymvers: boolean;
  private readonly show: ((line: string) => void) | undefined;

  constructor(private readonly ctx: RunContext, private readonly symbols: SymbolTable, private readonly modules: Mod[], printUnknown: boolean) {
    this.printUnknown = printUnknown;
    this.checkSymvers = ctx.opts.symvers !== undefined;
    this.depOf = new Int32Array(modules.length).fill(-1);
    this.met = new Uint32Array(modules.length);
    this.bySortIdx = new Array<Mod>(modules.length);
    this.order = new Int32Array(modules.length);
    this.show = ctx.opts.show;
  }

  private log(priority: number, message: string): void {
    this.ctx.log(priority, message);
  }

  /**
   * Each module's imports resolved, in module order. `runImports`: the run's dictionary of the imports
   * of the modules scanned in this run, where it has one (their Mod.importRefs point into it).
   */
  loadDependencies(runImports?: ImportDictionary): void {
    // (indexed loops here: unoptimized, those allocate iterators (decisions.md))
    const mods = this.modules;
    const done = this.reportsNothing() ? this.nativeDependencies(runImports) : undefined;
    for (let k = 0; k < mods.length; k++) {
      const mod = mods[k];
      const scan = mod.scan!;
      if (done !== undefined && done[k] === 1) {
        // taken by nativeDependencies
      } else if (scan instanceof CachedScan) this.dictionaryImports(mod, scan.importRefs, scan.importDictionary);
      else if (mod.importRefs !== undefined && runImports !== undefined) this.dictionaryImports(mod, mod.importRefs, runImports);
      else {
        const lengths = scan.importLengths;
        const weak = scan.importWeak;
        const crcs = scan.importCrcs;
        // the names, NUL-joined, as one string: each import's a slice of it
        const names = latin1(scan.importNames, 0, scan.importNames.length);
        for (let j = 0, start = 0; j < lengths.length; start += lengths[j] + 1, j++) {
          const name = names.slice(start, start + lengths[j]);
          this.addImport(mod, this.symbols.symbolFind(name), weak[j] === 1, crcs[j], name);
        }
      }
      // the imports are done with
      mod.scan = undefined;
      mod.importRefs = undefined;
    }
  }

  /** whether the run reports nothing about imports (no -e, -E or -v): then only their owners matter */
  private reportsNothing(): boolean {
    return !this.printUnknown && !this.checkSymvers && this.show === undefined;
  }

  /**
   * The dependencies of every module, by the addon (native/import_owners.c): each dictionary's entries
   * looked up at once, each module's references made its list there; the imports of a module with no
   * dictionary (a few scanned anew) looked up as its own. Returns which modules (by idx) it took (1: all
   * of them), or undefined without the addon (or with a name that has no bytes).
   */
  private nativeDependencies(runImports: ImportDictionary | undefined): Uint8Array | undefined {
    const fns = nativeImportOwners();
    if (fns === null) return undefined;
    const mods = this.modules;
    const owned = this.symbols.owned(mods);
    const { bytes, lengths } = owned.nameBytes;
    if (bytes === null) return undefined;
    const prefix = this.symbols.prefixByte;
    const done = new Uint8Array(mods.length);
    // a run has at most two dictionaries: its cache's and its own
    const cached = new DictionaryGroup(mods.length);
    const run = new DictionaryGroup(0);
    for (let k = 0; k < mods.length; k++) {
      const mod = mods[k];
      const scan = mod.scan!;
      if (scan instanceof CachedScan) cached.addCached(k, scan);
      else if (mod.importRefs !== undefined && runImports !== undefined) run.addRun(k, mod.importRefs, runImports);
    }
    for (const group of [cached, run]) {
      const d = group.dictionary;
      if (d === undefined) continue;
      const owners = fns.importOwners(bytes, lengths, owned.priorities, d.names, d.lengths, prefix);
      const refs = group.ranges();
      const lists = fns.importDeps(refs.words, refs.starts, refs.counts, owners, mods.length);
      for (let i = 0, at = group.size; i < group.size; i++) {
        const k = group.modules[i];
        for (const end = lists[i]; at < end; at++) this.addDependency(mods[k], mods[lists[at]]);
        done[k] = 1;
      }
    }
    for (let k = 0; k < mods.length; k++) {
      if (done[k] === 1) continue;
      // a module of its own: its imports' names, joined by NULs, are a dictionary of their own
      const mod = mods[k];
      const scan = mod.scan!;
      const owners = fns.importOwners(bytes, lengths, owned.priorities, scan.importNames, scan.importLengths, prefix);
      for (let j = 0; j < owners.length; j++) {
        const o = owners[j];
        if (o >= 0 && this.depOf[o] !== mod.idx) {
          this.depOf[o] = mod.idx;
          this.addDependency(mod, mods[o]);
        }
      }
      done[k] = 1;
    }
    return done;
  }

  /** `owner` added to the modules `mod` needs (once: the callers check) */
  private addDependency(mod: Mod, owner: Mod): void {
    mod.deps.push(owner);
    owner.users++;
  }

  /** for each dictionary, its entries looked up so far (null: no such symbol) */
  private readonly resolvedBy = new Map<ImportDictionary, (Sym | null | undefined)[]>();
  /** for each dictionary, the owner (idx) of each entry looked up so far: -1 none, -2 not looked up */
  private readonly ownersBy = new Map<ImportDictionary, Int32Array>();

  /**
   * imports given as references into an import dictionary (the cache's, or the run's), each entry of
   * which is looked up once
   */
  private dictionaryImports(mod: Mod, refs: Uint32Array, d: ImportDictionary): void {
    if (this.reportsNothing()) {
      // nothing to report: only the owners matter (addImport's work, inline, for the ~180,000 imports)
      let owners = this.ownersBy.get(d);
      if (owners === undefined) this.ownersBy.set(d, (owners = new Int32Array(d.size).fill(-2)));
      const depOf = this.depOf;
      const mods = this.modules;
      const me = mod.idx;
      for (let j = 0; j < refs.length; j++) {
        const k = refs[j] & REF_INDEX;
        let o = owners[k];
        if (o === -2) {
          const owner = this.symbols.symbolFind(d.name(k))?.owner;
          owners[k] = o = owner === undefined || owner === null ? -1 : owner.idx;
        }
        if (o < 0 || depOf[o] === me) continue;
        depOf[o] = me;
        const owner = mods[o];
        mod.deps.push(owner);
        owner.users++;
      }
      return;
    }
    let resolved = this.resolvedBy.get(d);
    if (resolved === undefined) this.resolvedBy.set(d, (resolved = new Array(d.size)));
    for (let j = 0; j < refs.length; j++) {
      const k = refs[j] & REF_INDEX;
      let sym = resolved[k];
      if (sym === undefined) resolved[k] = sym = this.symbols.symbolFind(d.name(k)) ?? null;
      this.addImport(mod, sym ?? undefined, (refs[j] & WEAK_REF) !== 0, d.crcs[k], d.name(k));
    }
  }

  /** one import of `mod`, named `name`, found as `sym` or not at all */
  private addImport(mod: Mod, sym: Sym | undefined, weak: boolean, crc: number, name: string): void {
    if (sym === undefined) {
      if (this.printUnknown && !weak) this.log(LOG_WARNING, `${mod.path} needs unknown symbol ${name}\n`);
      return;
    }
    if (this.checkSymvers && sym.crc !== crc && !weak) {
      if (this.printUnknown) this.log(LOG_WARNING, `${mod.path} disagrees about version of symbol ${name}\n`);
    }
    const owner = sym.owner;
    if (owner === null) return;
    // a module's imports are added one after the other: a mark per owner tells whether it is in mod.deps
    if (this.depOf[owner.idx] === mod.idx) return;
    this.depOf[owner.idx] = mod.idx;
    mod.deps.push(owner);
    owner.users++;
    if (this.show !== undefined) this.show(`${mod.path} needs "${sym.name}": ${owner.path}\n`);
  }

  calculateDependencies(): void {
    const mods = this.modules;
    const n = mods.length;
    const users = new Uint32Array(n);
    const roots: number[] = [];
    for (let k = 0; k < n; k++) {
      users[k] = mods[k].users;
      if (users[k] === 0) roots.push(k);
    }
    let sorted = 0;
    while (roots.length > 0) {
      const src = mods[roots.pop()!];
      src.depSortIdx = sorted++;
      const deps = src.deps;
      for (let j = 0; j < deps.length; j++) {
        if (--users[deps[j].idx] === 0) roots.push(deps[j].idx);
      }
    }
    if (sorted < n) {
      this.reportCycles(users);
      throw new DepmodFailed('dependency cycles');
    }
    const bySortIdx = this.bySortIdx;
    for (let k = 0; k < n; k++) bySortIdx[mods[k].depSortIdx] = mods[k];
    for (let k = 0; k < n; k++) if (mods[k].deps.length > 1) this.sortBySortIdx(mods[k].deps);
  }

  /**
   * `list` in depSortIdx order (unique numbers) without comparator calls: short lists (most) by
   * insertion, longer ones by a typed array's numeric sort
   */
  private sortBySortIdx(list: Mod[]): void {
    const n = list.length;
    if (n <= 24) {
      for (let j = 1; j < n; j++) {
        const m = list[j];
        const key = m.depSortIdx;
        let k = j - 1;
        for (; k >= 0 && list[k].depSortIdx > key; k--) list[k + 1] = list[k];
        list[k + 1] = m;
      }
      return;
    }
    const order = this.order.subarray(0, n);
    for (let j = 0; j < n; j++) order[j] = list[j].depSortIdx;
    order.sort();
    for (let j = 0; j < n; j++) list[j] = this.bySortIdx[order[j]];
  }

  private reportCycles(users: Uint32Array): void {
    let roots: Mod[] = [];
    for (let k = 0; k < this.modules.length; k++) if (users[k] > 0) roots.push(this.modules[k]);
    const stackSize = roots.length;
    const loopSet = new Set<string>();
    interface Vertex {
      parent: Vertex | null;
      mod: Mod;
    }
    // kmod keeps its starting points in a circular list and takes the element after a removed one as
    // the list's new head: removing a module other than the first also turns the list to start after it
    const removeRoot = (m: Mod): void => {
      const k = roots.indexOf(m);
      if (k >= 0) roots = roots.slice(k + 1).concat(roots.slice(0, k));
    };
    while (roots.length > 0) {
      const root = roots.shift()!;
      const stack: Vertex[] = [{ parent: null, mod: root }];
      // kmod can walk forever around a cycle that does not pass through the root (it hangs there); kmodts
      // gives up on such a root after a generous number of steps instead
      let budget = 64 * (this.modules.length + 16) * (stackSize + 16);
      while (stack.length > 0 && budget-- > 0) {
        const vertex = stack.pop()!;
        const m = vertex.mod;
        if (m.visited && m === root) {
          const chain: Mod[] = [];
          for (let v = vertex.parent; v !== null; v = v.parent) {
            chain.push(v.mod);
            loopSet.add(v.mod.modname);
          }
          let buf = '';
          for (let k = chain.length - 1; k >= 0; k--) {
            buf += `${chain[k].modname} -> `;
            removeRoot(chain[k]);
          }
          buf += m.modname;
          this.log(LOG_ERR, `Cycle detected: ${buf}\n`);
          continue;
        }
        m.visited = true;
        if (m.deps.length === 0) {
          removeRoot(m);
          continue;
        }
        for (const dep of m.deps) {
          // kmod asserts here (its stack holds one entry per cyclic module); never loop forever
          if (stack.length >= stackSize) throw new DepmodFailed('cycle report: stack exhausted');
          stack.push({ parent: vertex, mod: dep });
        }
      }
    }
    this.log(LOG_ERR, `Found ${loopSet.size} modules in dependency cycles!\n`);
  }


  /** every module `mod` needs, directly or not, in dependency order (marks by idx instead of a Set per call) */
  allDeps(mod: Mod): Mod[] {
    const call = ++this.calls;
    const met = this.met;
    const list: Mod[] = [];
    const stack: Mod[] = [mod];
    while (stack.length > 0) {
      const deps = stack.pop()!.deps;
      for (let j = 0; j < deps.length; j++) {
        const d = deps[j];
        if (met[d.idx] === call) continue;
        met[d.idx] = call;
        list.push(d);
        stack.push(d);
      }
    }
    if (list.length > 1) this.sortBySortIdx(list);
    return list;
  }

}

let importOwnersFns: NativeImportOwnersFns | null | undefined;

/** the addon's dependency lists, or null without them */
function nativeImportOwners(): NativeImportOwnersFns | null {
  if (importOwnersFns === undefined) {
    const importOwners = nativeFunction('importOwners');
    const importDeps = nativeFunction('importDeps');
    importOwnersFns = importOwners !== null && importDeps !== null ? { importOwners, importDeps } : null;
  }
  return importOwnersFns;
}

/**
 * The modules whose references point into one dictionary, and where their references are: cached
 * scans' lie in one block of the cache (their ranges in it are taken as they are, no view made), the
 * run's each in its own array (copied one after the other when asked for).
 */
class DictionaryGroup {
  dictionary: ImportDictionary | undefined;
  size = 0;
  /** the modules (idx) */
  modules: Uint32Array;
  private readonly starts: Uint32Array;
  private readonly counts: Uint32Array;
  private block: ArrayBuffer | undefined;
  private readonly arrays: Uint32Array[] = [];

  constructor(capacity: number) {
    this.modules = new Uint32Array(capacity);
    this.starts = new Uint32Array(capacity);
    this.counts = new Uint32Array(capacity);
  }

  /** a cached scan's references; one of another cache's dictionary (none is) would be left to dictionaryImports */
  addCached(k: number, scan: CachedScan): void {
    const d = scan.importDictionary;
    if (this.dictionary === undefined) {
      this.dictionary = d;
      this.block = scan.importBlock;
    } else if (d !== this.dictionary || scan.importBlock !== this.block) return;
    this.starts[this.size] = scan.importRefsAt;
    this.counts[this.size] = scan.importCount;
    this.modules[this.size++] = k;
  }

  /** a module scanned in this run: its references into the run's dictionary */
  addRun(k: number, refs: Uint32Array, d: ImportDictionary): void {
    this.dictionary = d;
    this.arrays.push(refs);
    this.modules = appendWord(this.modules, this.size++, k);
  }

  ranges(): { words: Uint32Array; starts: Uint32Array; counts: Uint32Array } {
    const n = this.size;
    if (this.block !== undefined) {
      return { words: new Uint32Array(this.block, 0, this.block.byteLength >>> 2), starts: this.starts.subarray(0, n), counts: this.counts.subarray(0, n) };
    }
    const starts = new Uint32Array(n);
    const counts = new Uint32Array(n);
    let total = 0;
    for (let i = 0; i < n; i++) total += counts[i] = this.arrays[i].length;
    const words = new Uint32Array(total);
    for (let i = 0, at = 0; i < n; at += counts[i], i++) {
      starts[i] = at;
      words.set(this.arrays[i], at);
    }
    return { words, starts, counts };
  }
}

/** words with `value` at `at`, grown (doubled) when full */
function appendWord(words: Uint32Array, at: number, value: number): Uint32Array {
  let out = words;
  if (at >= words.length) {
    out = new Uint32Array(Math.max(64, 2 * words.length));
    out.set(words);
  }
  out[at] = value;
  return out;
}
