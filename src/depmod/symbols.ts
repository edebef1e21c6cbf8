// depmod's symbol table (kmod's depmod->symbols): the kernel's own symbols from Module.symvers (-E) or
// System.map (-F), then every module's exports, each name owned by the last module in module order
// that exports it. Names are the map's keys: V8 hashes a string in C++ and keeps the hash in it, which
// costs less than any hash computed in JavaScript (which depmod runs without its optimizing compilers).
// A run that reports nothing about imports (no -e, -E or -v) gathers the modules' exports for the
// addon's table instead (owned-symbols.ts), and the addon resolves its imports (dep-graph.ts).
import { LOG_ERR } from '../log';
import { EFBIG, ENOENT, ERANGE, errnoOf, strerror } from '../errno';
import { closeSync, openSync } from '../file/binary-os';
import { fgetsPieces, readFileBytes } from '../file/read-text';
import type { ModuleScan } from './scan-store';
import { hashOrderIndices } from './hash';
import { joinedBytes } from './joined-bytes';
import { ExportBatch, OwnedSymbols } from './owned-symbols';
import { DepmodFatal, nodePathError, type Mod, type RunContext } from './run-context';

/** the line buffer of kmod's Module.symvers and System.map readers (char line[10240]) */
const SYMBOL_FILE_LINE = 10240;

export interface Sym {
  name: string;
  owner: Mod | null;
  crc: number;
}

export class SymbolTable {
  /** the symbols in the order they were added */
  private readonly all: Sym[] = [];
  /** the same symbols by name */
  private readonly byName = new Map<string, Sym>();
  /** -P: the character stripped from the start of names ('\0': none) */
  readonly symPrefix: string;

  constructor(private readonly ctx: RunContext) {
    this.symPrefix = ctx.opts.symbolPrefix ?? '\0';
  }

  private log(priority: number, message: string): void {
    this.ctx.log(priority, message);
  }

  private fatalOpen(file: string, err: unknown): never {
    throw new DepmodFatal(`could not load ${file}: ${nodePathError(err)}\n`, errnoOf(err));
  }

  private readLines(file: string): string[] {
    let fd: number;
    try {
      fd = openSync(file, 'r');
    } catch (err) {
      this.fatalOpen(file, err);
    }
    let text = '';
    try {
      text = readFileBytes(fd).toString('latin1');
    } catch (err) {
      // kmod reads a file that never ends (/dev/zero) for ever: refused here, naming it
      if (errnoOf(err) === EFBIG) this.fatalOpen(file, err);
      // kmod's fgets loop ends at a read error as at the end (a directory: no symbols, no message)
    } finally {
      closeSync(fd);
    }
    return fgetsPieces(text, SYMBOL_FILE_LINE);
  }

  private symbolAdd(name: string, prefixSkipped: boolean, crc: number, owner: Mod | null): void {
    if (!prefixSkipped && name.length > 0 && name[0] === this.symPrefix) name = name.slice(1);
    this.put(name, crc, owner);
  }

  /** the symbol `name` owned by `owner`: kmod's hash_add, which replaces an entry */
  private put(name: string, crc: number, owner: Mod | null, known = this.byName.get(name)): void {
    if (known !== undefined) {
      // kmod replaces the entry: the name keeps its place in the table
      known.owner = owner;
      known.crc = crc;
      return;
    }
    const sym: Sym = { name, owner, crc };
    this.byName.set(name, sym);
    this.all.push(sym);
  }

  /** kmod's symbol_find: the symbol an import of `name` resolves to (a leading '.', then -P's character, dropped) */
  symbolFind(name: string): Sym | undefined {
    // (the exports gathered for the addon are not in this table until owned() has put them here)
    if (this.batch !== undefined) throw new Error('symbolFind: the exports are gathered for the addon');
    if (name[0] === '.') name = name.slice(1);
    if (name.length > 0 && name[0] === this.symPrefix) name = name.slice(1);
    return this.byName.get(name);
  }

  /** symbolFind's prefix for the addon's lookups (native/import_owners.c): its byte, or -1 for none */
  get prefixByte(): number {
    return this.symPrefix.length === 1 && this.symPrefix !== '\0' ? this.symPrefix.charCodeAt(0) : -1;
  }

  private ownedCache: OwnedSymbols | undefined;
  /** the modules' exports gathered for the addon's table (collectExports), until owned() makes it */
  private batch: ExportBatch | undefined;

  /**
   * From now on the modules' exports are gathered for the addon's table (native/symbol_table.c)
   * instead of being added here: for a run that reports nothing about imports, which the addon then
   * resolves too (dep-graph.ts). Returns whether the addon has it.
   */
  collectExports(): boolean {
    if (!ExportBatch.available()) return false;
    this.batch = new ExportBatch();
    return true;
  }

  /**
   * A scan's exports gathered for the addon's table as the scan holds them joined (a cached scan's
   * bytes, a C scan's text), without a string per name; false (nothing done) where they are not
   * gathered or are strings already.
   */
  joinedExportsAdd(scan: ModuleScan, mod: Mod): boolean {
    return this.batch !== undefined && scan.gatherExports !== undefined && scan.gatherExports(this.batch, mod);
  }

  /** a module's exports (their CRCs asked for only where this table keeps them) */
  exportsAdd(names: string[], crcs: () => Float64Array, mod: Mod): void {
    if (this.batch !== undefined) {
      this.batch.add(names, mod);
      return;
    }
    const c = crcs();
    for (let j = 0; j < names.length; j++) this.exportAdd(names[j], c[j], mod);
  }

  /**
   * The symbols that modules own, in kmod's hash table order (modules.symbols' order). Made once, when
   * first asked for: every module's exports must be in by then (`modules`: all of them, by idx).
   */
  owned(modules: Mod[]): OwnedSymbols {
    if (this.ownedCache !== undefined) return this.ownedCache;
    if (this.batch !== undefined) {
      const batch = this.batch;
      this.batch = undefined;
      const made = batch.owned(this.prefixByte, modules);
      if (made !== null) return (this.ownedCache = made);
      // a name without bytes: this table after all
      batch.replay((name, mod) => this.exportAdd(name, 0, mod));
    }
    const { names, owners } = this.ownedInTableOrder();
    // the order is the same whether the symbols without an owner (Module.symvers' and System.map's)
    // are left out before or after ordering
    const { bytes, lengths } = joinedBytes(names);
    const order = hashOrderIndices(names, 2048, bytes, lengths);
    const n = order.length;
    const sorted: string[] = new Array(n);
    const modnames: string[] = new Array(n);
    const priorities = new Uint32Array(n);
    for (let j = 0; j < n; j++) {
      const k = order[j];
      const owner = owners[k];
      sorted[j] = names[k];
      modnames[j] = owner.modname;
      priorities[j] = owner.idx;
    }
    return (this.ownedCache = OwnedSymbols.ofStrings(sorted, modnames, priorities));
  }

  /**
   * The names that modules own in the table's order (of first insertion), and their owners: counted
   * first, then stored by index (a push per entry into growing arrays cost ~10 ms for the full tree's
   * 15,500 symbols, as depmod runs without TurboFan)
   */
  private ownedInTableOrder(): { names: string[]; owners: Mod[] } {
    const all = this.all;
    let n = 0;
    for (let k = 0; k < all.length; k++) if (all[k].owner !== null) n++;
    const names: string[] = new Array(n);
    const owners: Mod[] = new Array(n);
    for (let k = 0, j = 0; k < all.length; k++) {
      const owner = all[k].owner;
      if (owner === null) continue;
      names[j] = all[k].name;
      owners[j++] = owner;
    }
    return { names, owners };
  }

  private addFakeSymbols(): void {
    this.symbolAdd('__this_module', true, 0, null);
    this.symbolAdd('_GLOBAL_OFFSET_TABLE_', true, 0, null);
    if (this.symbolFind('TOC.') === undefined) this.symbolAdd('TOC.', true, 0, null);
  }

  loadSymvers(file: string): void {
    // (indexed, no destructuring: unoptimized, those allocate iterators (decisions.md))
    const lines = this.readLines(file);
    // errno when the file is read: in practice ENOENT, left by an earlier failed lookup
    let errno = ENOENT;
    for (let k = 0; k < lines.length; k++) {
      const linenum = k + 1;
      const tok = lines[k].split(/[ \t]+/).filter((t) => t !== '');
      if (tok.length < 3) continue;
      const ver = tok[0];
      const sym = tok[1];
      if (tok[2] !== 'vmlinux') continue;
      const crc = parseStrtoull16(ver);
      // kmod prints errno as it is (%m): strtoull's ERANGE once a CRC overflowed, else what it was before
      if (crc.overflow) errno = ERANGE;
      if (crc.value === undefined) {
        this.log(LOG_ERR, `${file}:${linenum} Invalid symbol version ${ver}: ${strerror(errno)}\n`);
        continue;
      }
      this.symbolAdd(sym, false, crc.value, null);
    }
    this.addFakeSymbols();
  }

  loadSystemMap(file: string): void {
    const lines = this.readLines(file);
    for (let k = 0; k < lines.length; k++) {
      const line = lines[k];
      const linenum = k + 1;
      const s1 = line.indexOf(' ');
      const s2 = s1 < 0 ? -1 : line.indexOf(' ', s1 + 1);
      if (s2 < 0) {
        this.log(LOG_ERR, `${file}:${linenum}: invalid line: ${line}\n`);
        continue;
      }
      let p = line.slice(s2 + 1);
      if (p.length > 0 && p[0] === this.symPrefix) p = p.slice(1);
      if (!p.startsWith('__ksymtab_')) continue;
      const nl = p.indexOf('\n');
      if (nl >= 0) p = p.slice(0, nl);
      this.symbolAdd(p.slice('__ksymtab_'.length), true, 0, null);
    }
    this.addFakeSymbols();
  }


  /**
   * A module's exported symbol. Modules come in any order here; kmod adds them in module order, each
   * replacing the owner before it, so the module latest in that order keeps the name.
   */
  exportAdd(name: string, crc: number, mod: Mod): void {
    if (name.length > 0 && name[0] === this.symPrefix) name = name.slice(1);
    const known = this.byName.get(name);
    if (known !== undefined && known.owner !== null && known.owner.idx > mod.idx) return;
    this.put(name, crc, mod, known);
  }

}

/** the bytes [start, end) as a binary string */
export function latin1(bytes: Uint8Array, start: number, end: number): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset + start, end - start).toString('latin1');
}

/** strtoull(s, &end, 16) consuming the whole token; undefined when characters are left over */
function parseStrtoull16(s: string): { value: number | undefined; overflow: boolean } {
  const m = /^[ \t\n\v\f\r]*([+-]?)(0[xX])?([0-9a-fA-F]*)$/.exec(s);
  // no digits: strtoull stops before the token's end ("0x" converts its "0" and stops at the "x")
  if (m === null || m[3] === '') return { value: undefined, overflow: false };
  let v = BigInt(`0x${m[3]}`);
  // out of range: ULLONG_MAX whatever the sign, and ERANGE
  if (v > 0xffffffffffffffffn) return { value: Number(0xffffffffffffffffn), overflow: true };
  if (m[1] === '-') v = (0x10000000000000000n - v) & 0xffffffffffffffffn;
  return { value: Number(v), overflow: false };
}

