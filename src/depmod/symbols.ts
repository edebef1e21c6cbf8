// depmod's symbol table (kmod's depmod->symbols): the kernel's own symbols from Module.symvers (-E) or
// System.map (-F), then every module's exports, each name owned by the last module in module order
// that exports it. Imports are looked up by hash.ts's symbolKey without making a string of them.
import { LOG_ERR } from '../log';
import { errnoOf } from '../errno';
import { closeSync, openSync, readFileSync } from '../file/binary-os';
import { hashOrder, symbolKey } from './hash';
import { DepmodFatal, nodePathError, type Mod, type RunContext } from './run-context';

export interface Sym {
  name: string;
  owner: Mod | null;
  crc: number;
  /** the next symbol with the same symbolKey */
  nextWithKey: Sym | undefined;
}

export class SymbolTable {
  /** the symbols in the order they were added */
  private readonly all: Sym[] = [];
  /**
   * the same symbols by symbolKey (chained through nextWithKey): the one map, for names and imports
   * alike (a map keyed by numbers hashes no string)
   */
  private readonly symbolsByKey = new Map<number, Sym>();
  /** -P: the character stripped from the start of names ('\0': none) */
  readonly symPrefix: string;

  constructor(private readonly ctx: RunContext) {
    this.symPrefix = ctx.opts.symbolPrefix ?? '\0';
  }

  private log(priority: number, message: string): void {
    this.ctx.log(priority, message);
  }

  /** the symbols in kmod's hash table order (modules.symbols' order) */
  inOrder(): Sym[] {
    return hashOrder(this.all, (s) => s.name, 2048);
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
      text = readFileSync(fd, 'latin1');
    } catch {
      // kmod's fgets loop ends at a read error as at the end (a directory: no symbols, no message)
    } finally {
      closeSync(fd);
    }
    const lines = text.split(/(?<=\n)/);
    if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
    return lines;
  }

  private symbolAdd(name: string, prefixSkipped: boolean, crc: number, owner: Mod | null): void {
    if (!prefixSkipped && name.length > 0 && name[0] === this.symPrefix) name = name.slice(1);
    this.put(name, symbolKey(name), crc, owner);
  }

  /** the symbol `name` (whose symbolKey is `key`) owned by `owner`: kmod's hash_add, which replaces an entry */
  private put(name: string, key: number, crc: number, owner: Mod | null, known = this.withKey(name, key)): void {
    if (known !== undefined) {
      // kmod replaces the entry: the name keeps its place in the table
      known.owner = owner;
      known.crc = crc;
      return;
    }
    const sym: Sym = { name, owner, crc, nextWithKey: this.symbolsByKey.get(key) };
    this.symbolsByKey.set(key, sym);
    this.all.push(sym);
  }

  /** the symbol named `name`, whose symbolKey is `key` */
  private withKey(name: string, key: number): Sym | undefined {
    for (let sym = this.symbolsByKey.get(key); sym !== undefined; sym = sym.nextWithKey) if (sym.name === name) return sym;
    return undefined;
  }

  /**
   * symbolFind for the import of `names` at start..end, by its symbolKey: no string is made for it.
   * With a symbol prefix (-P) the scan's keys do not apply and the name is looked up as a string.
   */
  importFind(names: Uint8Array, start: number, end: number, key: number): Sym | undefined {
    if (this.symPrefix !== '\0') return this.symbolFind(latin1(names, start, end));
    if (names[start] === 0x2e && start < end) start++;
    const len = end - start;
    for (let sym = this.symbolsByKey.get(key); sym !== undefined; sym = sym.nextWithKey) {
      if (sym.name.length === len && sameBytes(sym.name, names, start)) return sym;
    }
    return undefined;
  }

  private symbolFind(name: string): Sym | undefined {
    if (name[0] === '.') name = name.slice(1);
    if (name.length > 0 && name[0] === this.symPrefix) name = name.slice(1);
    return this.withKey(name, symbolKey(name));
  }

  private addFakeSymbols(): void {
    this.symbolAdd('__this_module', true, 0, null);
    this.symbolAdd('_GLOBAL_OFFSET_TABLE_', true, 0, null);
    if (this.symbolFind('TOC.') === undefined) this.symbolAdd('TOC.', true, 0, null);
  }

  loadSymvers(file: string): void {
    // (indexed, no destructuring: unoptimized, those allocate iterators (decisions.md))
    const lines = this.readLines(file);
    for (let k = 0; k < lines.length; k++) {
      const linenum = k + 1;
      const tok = lines[k].split(/[ \t]+/).filter((t) => t !== '');
      if (tok.length < 3) continue;
      const ver = tok[0];
      const sym = tok[1];
      if (tok[2] !== 'vmlinux') continue;
      const crc = parseStrtoull16(ver);
      if (crc === undefined) {
        this.log(LOG_ERR, `${file}:${linenum} Invalid symbol version ${ver}: No such file or directory\n`);
        continue;
      }
      this.symbolAdd(sym, false, crc, null);
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
    const key = symbolKey(name);
    const known = this.withKey(name, key);
    if (known !== undefined && known.owner !== null && known.owner.idx > mod.idx) return;
    this.put(name, key, crc, mod, known);
  }

}

/** the bytes [start, end) as a binary string */
export function latin1(bytes: Uint8Array, start: number, end: number): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset + start, end - start).toString('latin1');
}

/** does `name` equal the bytes at bytes[start..start+name.length)? */
function sameBytes(name: string, bytes: Uint8Array, start: number): boolean {
  for (let i = 0; i < name.length; i++) if (bytes[start + i] !== name.charCodeAt(i)) return false;
  return true;
}

/** strtoull(s, &end, 16) consuming the whole token; undefined when characters are left over */
function parseStrtoull16(s: string): number | undefined {
  const m = /^[ \t\n\v\f\r]*([+-]?)(0[xX])?([0-9a-fA-F]*)$/.exec(s);
  if (m === null) return undefined;
  if (m[3] === '') return m[2] !== undefined || m[1] !== '' ? undefined : 0;
  let v = BigInt(`0x${m[3]}`);
  if (v > 0xffffffffffffffffn) v = 0xffffffffffffffffn;
  if (m[1] === '-') v = (0x10000000000000000n - v) & 0xffffffffffffffffn;
  return Number(v);
}

