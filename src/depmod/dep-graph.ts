// depmod's dependency graph: each module's imports resolved against the symbol table (the modules it
// needs, in the order first needed), kmod's topological sort, which orders every dependency list, and
// the cycle reports when the sort cannot finish.
import { LOG_ERR, LOG_WARNING } from '../log';
import { DepmodFailed, type Mod, type RunContext } from './run-context';
import { latin1, type SymbolTable } from './symbols';

export class DependencyGraph {
  /** -e: report unknown symbols and (with -E) version mismatches */
  printUnknown: boolean;

  constructor(private readonly ctx: RunContext, private readonly symbols: SymbolTable, private readonly modules: Mod[], printUnknown: boolean) {
    this.printUnknown = printUnknown;
  }

  private log(priority: number, message: string): void {
    this.ctx.log(priority, message);
  }

  loadDependencies(): void {
    const show = this.ctx.opts.show;
    const checkSymvers = this.ctx.opts.symvers !== undefined;
    for (const mod of this.modules) {
      const scan = mod.scan!;
      const names = scan.importNames;
      const keys = scan.importKeys;
      const lengths = scan.importLengths;
      const weakFlags = scan.importWeak;
      const crcs = scan.importCrcs;
      for (let j = 0, start = 0; j < keys.length; start += lengths[j] + 1, j++) {
        const end = start + lengths[j];
        const weak = weakFlags[j] === 1;
        const sym = this.symbols.importFind(names, start, end, keys[j]);
        if (sym === undefined) {
          if (this.printUnknown && !weak) this.log(LOG_WARNING, `${mod.path} needs unknown symbol ${latin1(names, start, end)}\n`);
          continue;
        }
        if (checkSymvers && sym.crc !== crcs[j] && !weak) {
          if (this.printUnknown) this.log(LOG_WARNING, `${mod.path} disagrees about version of symbol ${latin1(names, start, end)}\n`);
        }
        const owner = sym.owner;
        if (owner === null) continue;
        if (mod.depSet === undefined) mod.depSet = new Set();
        if (mod.depSet.has(owner)) continue;
        mod.depSet.add(owner);
        mod.deps.push(owner);
        owner.users++;
        if (show !== undefined) show(`${mod.path} needs "${sym.name}": ${owner.path}\n`);
      }
      // the imports are done with
      mod.scan = undefined;
    }
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
      for (const dst of src.deps) {
        if (--users[dst.idx] === 0) roots.push(dst.idx);
      }
    }
    if (sorted < n) {
      this.reportCycles(users);
      throw new DepmodFailed('dependency cycles');
    }
    for (const m of mods) if (m.deps.length > 1) m.deps.sort((a, b) => a.depSortIdx - b.depSortIdx);
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


  allDeps(mod: Mod): Mod[] {
    const seen = new Set<Mod>();
    const list: Mod[] = [];
    const fill = (m: Mod): void => {
      for (const d of m.deps) {
        if (seen.has(d)) continue;
        seen.add(d);
        list.push(d);
        fill(d);
      }
    };
    fill(mod);
    if (list.length > 1) list.sort((a, b) => a.depSortIdx - b.depSortIdx);
    return list;
  }

}
