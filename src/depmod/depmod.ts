// depmod: indexes a module tree the way kmod 34.2's depmod does (tools/depmod.c), writing byte-identical
// modules.dep, modules.alias, modules.softdep, modules.weakdep, modules.symbols, modules.devname and the
// five .bin indexes. Algorithm and ordering rules: KMOD.md §3 and §7. Module files are read on worker
// threads (scan-pool.ts); everything order-sensitive happens here, on one thread, in kmod's order.
//
// Strings are binary (one char per byte, latin1) throughout, so lengths and comparisons are bytewise.
import * as fs from 'node:fs';
import { LOG_ERR, LOG_WARNING } from '../log';
import { ENODATA, EEXIST, EINVAL, ENOENT, errnoOf, strerror } from '../errno';
import { KmodError } from '../errors';
import { IndexBatch, IndexBuilder, IndexCharacterError, type IndexWriter } from '../indexes/writer';
import { aliasNormalize, modnameFromPath } from '../modname';
import { emptyDepmodConfig, loadDepmodConfig, type DepmodConfig, type DepmodLog } from './config';
import { buildAliasFiles, type AliasFileName, type AliasSource, type BuiltFile } from './alias-files';
import { hashOrder, symbolKey } from './hash';
import { ScanStore, type ModuleScan } from './module-scan';
import { startScanPool, type ScanPool } from './scan-pool';
import { readBinaryString } from '../file/read-text';

export { DEFAULT_DEPMOD_CONFIG_PATHS, type DepmodConfig, type DepmodLog } from './config';

export interface DepmodOptions {
  /** kernel version (the directory name under the module directory) */
  kernelVersion: string;
  /** -b: root directory, absolute; default "" (the real root) */
  basedir?: string;
  /** -m: module directory under the root; default /lib/modules */
  moduledir?: string;
  /** -o: root under which the output is written; default basedir */
  outdir?: string;
  /** -C: configuration files or directories replacing the depmod.d defaults */
  configPaths?: string[];
  /** module files to index instead of the whole tree (no depmod.d is read then), absolute paths */
  modulePaths?: string[];
  /** -E: Module.symvers of the kernel (also enables CRC checks) */
  symvers?: string;
  /** -F: System.map of the kernel */
  systemMap?: string;
  /** -e: report unresolved symbols (needs symvers or systemMap) */
  errsyms?: boolean;
  /** -P: one character stripped from the start of symbol names */
  symbolPrefix?: string;
  /** -w: warn about duplicate index entries */
  warnDuplicates?: boolean;
  /** -A: do nothing when no module is newer than modules.dep */
  quick?: boolean;
  /** -n: the text files are given to `output` (concatenated, as kmod prints them); nothing is written */
  dryRun?: boolean;
  output?: (data: string) => void;
  /** -v: "<module> needs "<symbol>": <provider>" lines for every new dependency (stdout in kmod) */
  show?: (line: string) => void;
  /** depmod's diagnostics (priority, message ending in '\n') */
  log?: DepmodLog;
  /** worker threads reading modules (default: one per core, 0 = this thread) */
  threads?: number;
  onProgress?: (done: number, total: number) => void;
  /** called once the run really starts (after the -A check), where kmod creates its library context */
  onStart?: (dirname: string) => void;
}

/** A FATAL condition (kmod's CRIT, which exits): message ends in '\n'. */
export class DepmodFatal extends KmodError {
  constructor(readonly logMessage: string, errno = EINVAL) {
    super(errno, logMessage.trimEnd());
    this.name = 'DepmodFatal';
  }
}

/** depmod failed after reporting why through the log (dependency cycles, ...): exit status 1. */
export class DepmodFailed extends KmodError {
  constructor(message: string, errno = EINVAL) {
    super(errno, message);
    this.name = 'DepmodFailed';
  }
}

const KMOD_EXTENSIONS = ['.ko', '.ko.gz', '.ko.xz', '.ko.zst'];

function hasModuleExtension(name: string): boolean {
  for (const ext of KMOD_EXTENSIONS) if (name.length > ext.length && name.endsWith(ext)) return true;
  return false;
}

interface Mod {
  path: string;
  /** path relative to the module directory, or null outside it (external directories) */
  relpath: string | null;
  /** relpath cut after "<dir>/<name>.ko" (modules.order's spelling) */
  uncrelpath: string | null;
  /** index of the last '/' in path */
  baselen: number;
  modname: string;
  sortIdx: number;
  depSortIdx: number;
  idx: number;
  users: number;
  visited: boolean;
  deps: Mod[];
  depSet: Set<Mod> | undefined;
  /** the scan, until its imports are resolved */
  scan: ModuleScan | undefined;
  /** modinfo for the alias files */
  aliases: string[];
  softdeps: string[];
  weakdeps: string[];
}

interface Sym {
  name: string;
  owner: Mod | null;
  crc: number;
  /** the next symbol with the same symbolKey */
  nextWithKey: Sym | undefined;
}

/** A directory entry as the walk takes it: a file or a directory (a symlink followed, as fstatat), or why not. */
function entryKind(de: fs.Dirent, full: string): 'file' | 'dir' | { statError: unknown } | { mode: number } {
  if (de.isFile()) return 'file';
  if (de.isDirectory()) return 'dir';
  let st: fs.Stats;
  try {
    st = fs.statSync(full);
  } catch (err) {
    return { statError: err };
  }
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  return { mode: st.mode };
}

function nodePathError(err: unknown): string {
  return strerror(errnoOf(err));
}

/** Runs depmod. Resolves when done; throws DepmodFatal / DepmodFailed / KmodError on failure. */
export async function depmod(opts: DepmodOptions): Promise<void> {
  const run = new DepmodRun(opts);
  await run.run();
}

class DepmodRun {
  /** depmod's messages; madeNow() holds a file's messages back until the file's turn */
  readonly log: DepmodLog = (priority, message) => this.logSink(priority, message);
  private logSink: DepmodLog;
  readonly dirname: string;
  readonly outdirname: string;
  readonly kversion: string;
  readonly symPrefix: string;
  printUnknown: boolean;
  readonly checkSymvers: boolean;
  cfg: DepmodConfig = emptyDepmodConfig();
  readonly byName = new Map<string, Mod>();
  readonly byUncrelpath = new Map<string, Mod>();
  modules: Mod[] = [];
  readonly symbols = new Map<string, Sym>();
  /** the same symbols by symbolKey (chained through nextWithKey), for the imports' lookups */
  readonly symbolsByKey = new Map<number, Sym>();

  constructor(readonly opts: DepmodOptions) {
    this.logSink = opts.log ?? (() => {});
    let moduledir = opts.moduledir ?? '/lib/modules';
    while (moduledir.startsWith('/')) moduledir = moduledir.slice(1);
    const root = opts.basedir ?? '';
    this.kversion = opts.kernelVersion;
    this.dirname = `${root}/${moduledir}/${this.kversion}`;
    this.outdirname = `${opts.outdir ?? root}/${moduledir}/${this.kversion}`;
    this.symPrefix = opts.symbolPrefix ?? '\0';
    this.printUnknown = opts.errsyms === true;
    this.checkSymvers = opts.symvers !== undefined;
  }

  async run(): Promise<void> {
    const o = this.opts;
    if (o.quick) {
      if (o.dryRun) return;
      if (this.upToDate() === 1) return;
    }
    o.onStart?.(this.dirname);
    this.pool = startScanPool({ threads: o.threads, onProgress: o.onProgress });
    try {
      await this.runStarted();
    } finally {
      this.pool.close();
    }
  }

  private pool: ScanPool | undefined;
  /** modules.builtin.bin and modules.builtin.alias.bin, made during the scan (madeNow) */
  private builtinFiles: (() => string | Uint8Array | null)[] | undefined;
  /** where the scans keep their numbers, until their imports are resolved */
  private readonly scans = new ScanStore();

  private async runStarted(): Promise<void> {
    const o = this.opts;
    const explicit = o.modulePaths !== undefined && o.modulePaths.length > 0;
    if (o.symvers !== undefined) this.loadSymvers(o.symvers);
    else if (o.systemMap !== undefined) this.loadSystemMap(o.systemMap);
    else if (this.printUnknown) {
      this.log(LOG_WARNING, '-e needs -E or -F\n');
      this.printUnknown = false;
    }
    if (!explicit || o.quick) {
      this.cfg = loadDepmodConfig(o.configPaths, this.kversion, this.log);
      this.search();
    } else {
      for (const p of o.modulePaths!) this.addExplicit(p);
    }
    this.buildArray();
    this.sortByOrderFile();
    await this.loadModules();
    this.loadDependencies();
    // the scans' memory, now unused, is given back before the files are made
    await this.scans.release();
    this.calculateDependencies();
    this.output();
  }

  // ---- -A -----------------------------------------------------------------------------------------

  private upToDate(): number {
    let dir: fs.Dir;
    try {
      dir = fs.opendirSync(this.dirname);
    } catch (err) {
      this.log(LOG_ERR, `could not open directory ${this.dirname}: ${nodePathError(err)}\n`);
      return -1;
    }
    let mtime: number;
    try {
      mtime = Math.floor(fs.statSync(`${this.dirname}/modules.dep`).mtimeMs / 1000);
    } catch (err) {
      dir.closeSync();
      this.log(LOG_ERR, `could not fstatat(${this.dirname}, modules.dep): ${nodePathError(err)}\n`);
      return -1;
    }
    try {
      return this.upToDateDir(dir, `${this.dirname}/`, mtime);
    } finally {
      dir.closeSync();
    }
  }

  private upToDateDir(dir: fs.Dir, base: string, mtime: number): number {
    let result = 1;
    for (let de = dir.readSync(); de !== null; de = dir.readSync()) {
      const name = de.name;
      if (name === '.' || name === '..' || name === 'build' || name === 'source') continue;
      let st: fs.Stats;
      try {
        st = fs.statSync(base + name);
      } catch (err) {
        this.log(LOG_ERR, `fstatat(${base}, ${name}): ${nodePathError(err)}\n`);
        continue;
      }
      if (st.isDirectory()) {
        let sub: fs.Dir;
        try {
          sub = fs.opendirSync(base + name);
        } catch (err) {
          this.log(LOG_ERR, `openat(${base}, ${name}, O_RDONLY): ${nodePathError(err)}\n`);
          continue;
        }
        try {
          result = this.upToDateDir(sub, `${base}${name}/`, mtime);
        } finally {
          sub.closeSync();
        }
      } else if (st.isFile()) {
        if (!hasModuleExtension(name)) continue;
        result = Math.floor(st.mtimeMs / 1000) <= mtime ? 1 : 0;
      } else {
        this.log(LOG_ERR, `unsupported file type ${base}${name}: ${(st.mode & 0o170000).toString(8)}\n`);
        continue;
      }
      if (result === 0) break;
    }
    return result;
  }

  // ---- symbols from the kernel (-E / -F) ----------------------------------------------------------

  private fatalOpen(file: string, err: unknown): never {
    throw new DepmodFatal(`could not load ${file}: ${nodePathError(err)}\n`, errnoOf(err));
  }

  private readLines(file: string): string[] {
    let text: string;
    try {
      text = readBinaryString(file);
    } catch (err) {
      this.fatalOpen(file, err);
    }
    const lines = text.split(/(?<=\n)/);
    if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
    return lines;
  }

  private symbolAdd(name: string, prefixSkipped: boolean, crc: number, owner: Mod | null): void {
    if (!prefixSkipped && name.length > 0 && name[0] === this.symPrefix) name = name.slice(1);
    const known = this.symbols.get(name);
    if (known !== undefined) {
      // kmod replaces the entry: the name keeps its place in the table
      known.owner = owner;
      known.crc = crc;
      return;
    }
    const key = symbolKey(name);
    const sym: Sym = { name, owner, crc, nextWithKey: this.symbolsByKey.get(key) };
    this.symbols.set(name, sym);
    this.symbolsByKey.set(key, sym);
  }

  /**
   * symbolFind for the import of `names` at start..end, by its symbolKey: no string is made for it.
   * With a symbol prefix (-P) the scan's keys do not apply and the name is looked up as a string.
   */
  private importFind(names: Uint8Array, start: number, end: number, key: number): Sym | undefined {
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
    return this.symbols.get(name);
  }

  private addFakeSymbols(): void {
    this.symbolAdd('__this_module', true, 0, null);
    this.symbolAdd('_GLOBAL_OFFSET_TABLE_', true, 0, null);
    if (this.symbolFind('TOC.') === undefined) this.symbolAdd('TOC.', true, 0, null);
  }

  private loadSymvers(file: string): void {
    let linenum = 0;
    for (const line of this.readLines(file)) {
      linenum++;
      const tok = line.split(/[ \t]+/).filter((t) => t !== '');
      if (tok.length < 3) continue;
      const [ver, sym, where] = tok;
      if (where !== 'vmlinux') continue;
      const crc = parseStrtoull16(ver);
      if (crc === undefined) {
        this.log(LOG_ERR, `${file}:${linenum} Invalid symbol version ${ver}: No such file or directory\n`);
        continue;
      }
      this.symbolAdd(sym, false, crc, null);
    }
    this.addFakeSymbols();
  }

  private loadSystemMap(file: string): void {
    let linenum = 0;
    for (const line of this.readLines(file)) {
      linenum++;
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

  // ---- discovery ----------------------------------------------------------------------------------

  private search(): void {
    if (this.searchSorted()) return;
    this.byName.clear();
    this.byUncrelpath.clear();
    this.searchPath(this.dirname, true);
    for (const ext of this.cfg.externals) this.searchPath(ext, false);
  }

  /**
   * The walk in sorted order: readdirSync lists a directory in one call, about twice as fast as
   * reading raw entries through opendir. The order files are found in only shows where kmod decides by
   * it (which of two modules of one name is kept) and in the order of its messages, so this walk gives
   * up at the first name found twice or anything it would have to report, and search() walks again in
   * raw readdir order as kmod does.
   */
  private searchSorted(): boolean {
    const walk = (dir: string): boolean => {
      let entries: fs.Dirent[];
      try {
        entries = fs.readdirSync(dir, { withFileTypes: true });
      } catch {
        return false;
      }
      const base = `${dir}/`;
      for (const de of entries) {
        const name = de.name;
        if (this.excluded(name)) continue;
        const full = base + name;
        const kind = entryKind(de, full);
        if (typeof kind !== 'string') return false;
        if (kind === 'dir') {
          if (!walk(full)) return false;
          continue;
        }
        if (!hasModuleExtension(name)) continue;
        const modname = modnameFromPath(full);
        if (modname === null || this.byName.has(modname)) return false;
        if (this.addModule(full, modname, () => undefined as never, true) === undefined) return false;
        // the scan threads start on the first modules found while the walk goes on
        this.pool?.readAhead(full);
      }
      return true;
    };
    if (!walk(this.dirname)) return false;
    for (const ext of this.cfg.externals) if (!walk(ext)) return false;
    return true;
  }

  private searchPath(p: string, fatal: boolean): void {
    let dir: fs.Dir;
    try {
      dir = fs.opendirSync(p);
    } catch (err) {
      const msg = nodePathError(err);
      this.log(LOG_ERR, `could not open directory ${p}: ${msg}\n`);
      if (fatal) throw new DepmodFatal(`could not search modules: ${msg}\n`, errnoOf(err));
      return;
    }
    try {
      this.searchDir(dir, `${p}/`);
    } finally {
      dir.closeSync();
    }
  }

  private excluded(name: string): boolean {
    return name === '.' || name === '..' || name === 'build' || name === 'source' || this.cfg.excludes.has(name);
  }

  private searchDir(dir: fs.Dir, base: string): void {
    for (let de = dir.readSync(); de !== null; de = dir.readSync()) {
      const name = de.name;
      if (this.excluded(name)) continue;
      const full = base + name;
      const kind = entryKind(de, full);
      if (typeof kind !== 'string') {
        if ('statError' in kind) this.log(LOG_ERR, `fstatat(${base}, ${name}): ${nodePathError(kind.statError)}\n`);
        else this.log(LOG_ERR, `unsupported file type ${full}: ${(kind.mode & 0o170000).toString(8)}\n`);
        continue;
      }
      if (kind === 'dir') {
        let sub: fs.Dir;
        try {
          sub = fs.opendirSync(full);
        } catch (err) {
          this.log(LOG_ERR, `openat(${base}, ${name}, O_RDONLY): ${nodePathError(err)}\n`);
          continue;
        }
        try {
          this.searchDir(sub, `${full}/`);
        } finally {
          sub.closeSync();
        }
      } else {
        try {
          this.searchFile(base.length, name, full);
        } catch (err) {
          if (!(err instanceof KmodError) || err instanceof DepmodFatal) throw err;
          this.log(LOG_ERR, `failed ${full}: ${strerror(err.errno)}\n`);
        }
      }
    }
  }

  private searchFile(baselen: number, name: string, path: string): void {
    if (!hasModuleExtension(name)) return;
    const modname = modnameFromPath(path);
    if (modname === null) {
      this.log(LOG_ERR, `could not get modname from path ${path}\n`);
      throw new KmodError(EINVAL);
    }
    const old = this.byName.get(modname);
    if (old !== undefined) {
      if (this.oldIsHigherPriority(old, baselen, modname.length, path)) return;
      this.deleteModule(old);
    }
    this.addModule(path, modname, (errno) => {
      this.log(LOG_ERR, `could not add module ${path}: ${strerror(errno)}\n`);
      throw new KmodError(errno);
    });
  }

  /** depmod_module_is_higher_priority: should the module already found be kept over newpath? */
  private oldIsHigherPriority(old: Mod, baselen: number, modnamelen: number, newpath: string): boolean {
    const d = this.dirname;
    const newlen = baselen + modnamelen;
    const oldlen = old.baselen + old.modname.length + 1;
    const newTrunc = newpath.slice(0, newlen);
    const oldTrunc = old.path.slice(0, oldlen);
    const relNew = newpath.startsWith(d) ? newTrunc.slice(d.length + 1) : null;
    const relOld = old.path.startsWith(d) ? oldTrunc.slice(d.length + 1) : null;
    for (const ov of this.cfg.overrides) {
      if (relNew !== null && relNew === ov) return false;
      if (relOld !== null && relOld === ov) return true;
    }
    let bprio = -1;
    let oldprio = -1;
    let newprio = -1;
    const under = (p: string | null, prefix: string): boolean => p !== null && p.length > prefix.length && p[prefix.length] === '/' && p.startsWith(prefix);
    let i = 0;
    for (const se of this.cfg.searches) {
      if (se.type === 'built-in') bprio = i;
      else if (se.type === 'external') {
        for (const ext of this.cfg.externals) {
          if (under(newTrunc, ext)) newprio = i;
          if (under(oldTrunc, ext)) oldprio = i;
          i++;
        }
      } else if (under(relNew, se.path)) newprio = i;
      else if (under(relOld, se.path)) oldprio = i;
      i++;
    }
    if (newprio < 0) newprio = bprio;
    if (oldprio < 0) oldprio = bprio;
    return newprio <= oldprio;
  }

  /** Adds a module; a name or path already taken is reported and `fail`s, or with `quiet` just gives undefined. */
  private addModule(path: string, modname: string, fail: (errno: number) => never, quiet = false): Mod | undefined {
    const lastslash = path.lastIndexOf('/');
    const d = this.dirname;
    const relpath = path.startsWith(d) && path[d.length] === '/' ? path.slice(d.length + 1) : null;
    const mod: Mod = {
      path,
      relpath,
      uncrelpath: null,
      baselen: lastslash,
      modname,
      sortIdx: 1,
      depSortIdx: 0x7fffffff,
      idx: 0,
      users: 0,
      visited: false,
      deps: [],
      depSet: undefined,
      scan: undefined,
      aliases: [],
      softdeps: [],
      weakdeps: [],
    };
    if (this.byName.has(modname)) {
      if (quiet) return undefined;
      this.log(LOG_ERR, `hash_add_unique ${modname}: ${strerror(EEXIST)}\n`);
      fail(EEXIST);
    }
    if (relpath !== null) {
      const len = lastslash - (d.length + 1) + modname.length + 1 + 3;
      const unc = relpath.slice(0, len);
      if (this.byUncrelpath.has(unc)) {
        if (quiet) return undefined;
        this.log(LOG_ERR, `hash_add_unique ${unc}: ${strerror(EEXIST)}\n`);
        fail(EEXIST);
      }
      mod.uncrelpath = unc;
      this.byUncrelpath.set(unc, mod);
    }
    this.byName.set(modname, mod);
    return mod;
  }

  private deleteModule(mod: Mod): void {
    if (mod.uncrelpath !== null) this.byUncrelpath.delete(mod.uncrelpath);
    this.byName.delete(mod.modname);
  }

  private addExplicit(path: string): void {
    if (path[0] !== '/') throw new DepmodFatal(`${path}: not absolute path.\n`);
    try {
      fs.statSync(path);
    } catch (err) {
      throw new DepmodFatal(`could not create module ${path}: ${nodePathError(err)}\n`, errnoOf(err));
    }
    const modname = modnameFromPath(path);
    if (modname === null) throw new DepmodFatal(`could not create module ${path}: ${strerror(ENOENT)}\n`, ENOENT);
    const known = this.byName.get(modname);
    if (known !== undefined && known.path !== path) {
      this.log(LOG_ERR, `kmod_module '${modname}' already exists with different path: new-path='${path}' old-path='${known.path}'\n`);
      throw new DepmodFatal(`could not create module ${path}: ${strerror(EEXIST)}\n`, EEXIST);
    }
    this.addModule(path, modname, (errno) => {
      throw new DepmodFatal(`could not add module ${path}: ${strerror(errno)}\n`, errno);
    });
  }

  // ---- ordering -----------------------------------------------------------------------------------

  /**
   * kmod's module array: the modules in its hash table's order, which modules.order then overrides.
   * The hash order is only computed where it shows (sortByOrderFile): a tree whose modules.order lists
   * every module does not need it.
   */
  private buildArray(): void {
    this.modules = [...this.byName.values()];
    if (this.modules.length >= 0xffff) throw new DepmodFatal(`could not build module array: ${strerror(34)}\n`, 34);
  }

  /** the module array in kmod's hash order (whatever order it was in), positions numbered */
  private hashOrdered(): void {
    this.modules = hashOrder(this.modules, (m) => m.modname, 512);
    this.modules.forEach((m, k) => (m.idx = k));
  }

  private sortByOrderFile(): void {
    if (!this.readOrderFile()) {
      this.hashOrdered();
      return;
    }
    // the modules it lists come first, in its order (sortIdx < 0), then the others in hash order
    if (!this.modules.every((m) => m.sortIdx < 0)) this.hashOrdered();
    // glibc's qsort is a stable merge sort here, as is Array.prototype.sort
    if (this.modules.length > 1) this.modules.sort((a, b) => a.sortIdx - b.sortIdx);
    this.modules.forEach((m, k) => (m.idx = k));
  }

  /**
   * Numbers the modules that modules.order lists (sortIdx from -n up, in its order); false when the
   * array is to stay in hash order (no file, or a line kmod stops at).
   */
  private readOrderFile(): boolean {
    const file = 'modules.order';
    let text: Buffer;
    try {
      fs.accessSync(this.dirname, fs.constants.R_OK);
    } catch (err) {
      this.log(LOG_WARNING, `could not open directory ${this.dirname}: ${nodePathError(err)}\n`);
      return false;
    }
    try {
      text = fs.readFileSync(`${this.dirname}/${file}`);
    } catch (err) {
      this.log(LOG_WARNING, `could not open ${file} at ${this.dirname}: ${nodePathError(err)}\n`);
      return false;
    }
    let i = -this.modules.length;
    let pos = 0;
    let lineno = 0;
    const s = text.toString('latin1', 0, text.length);
    while (pos < s.length) {
      // fgets into a PATH_MAX buffer
      let nl = s.indexOf('\n', pos);
      let end = nl < 0 ? s.length : nl + 1;
      if (end - pos > 4095) end = pos + 4095;
      let line = s.slice(pos, end);
      pos = end;
      lineno++;
      const nul = line.indexOf('\0');
      if (nul >= 0) line = line.slice(0, nul);
      if (line.length === 0) continue;
      if (line[line.length - 1] !== '\n') {
        this.log(LOG_ERR, `${this.dirname}/${file}:${lineno} corrupted line misses '\\n'\n`);
        return false;
      }
      const mod = this.byUncrelpath.get(line.slice(0, -1));
      if (mod === undefined || mod.sortIdx < 0) continue;
      mod.sortIdx = i++;
      void nl;
    }
    return true;
  }

  // ---- reading modules ----------------------------------------------------------------------------

  /**
   * Reads every module. As each scan comes in (in no particular order), its exports go into the symbol
   * table; the "failed to load symbols" messages are given afterwards, in module order.
   */
  private async loadModules(): Promise<void> {
    const paths = this.modules.map((m) => m.path);
    const take = (k: number, scan: ModuleScan): void => {
      const mod = this.modules[k];
      mod.scan = scan;
      if (scan.symbolsErrno === undefined) {
        for (let j = 0; j < scan.exports.length; j++) this.exportAdd(scan.exports[j], scan.exportCrcs[j], mod);
      }
      mod.aliases = scan.aliases;
      mod.softdeps = scan.softdeps;
      mod.weakdeps = scan.weakdeps;
      // only the imports are needed from here on
      scan.exports = scan.aliases = scan.softdeps = scan.weakdeps = [];
    };
    const scanning = this.pool!.scan(paths, take, this.scans);
    if (this.opts.dryRun !== true) {
      // the builtin indexes need nothing from the modules: made while the scan threads decompress
      // (which also readies the index writer's code for the files made after the scan)
      await new Promise<void>((resolve) => setImmediate(resolve));
      this.builtinFiles = [this.madeNow(() => this.builtinBin()), this.madeNow(() => this.builtinAliasBin())];
    }
    await scanning;
    for (const mod of this.modules) {
      const errno = mod.scan!.symbolsErrno;
      if (errno !== undefined && errno !== ENODATA) this.log(LOG_ERR, `failed to load symbols from ${mod.path}: ${strerror(errno)}\n`);
    }
  }

  /**
   * A module's exported symbol. Modules come in any order here; kmod adds them in module order, each
   * replacing the owner before it, so the module latest in that order keeps the name.
   */
  private exportAdd(name: string, crc: number, mod: Mod): void {
    if (name.length > 0 && name[0] === this.symPrefix) name = name.slice(1);
    const known = this.symbols.get(name);
    if (known !== undefined && known.owner !== null && known.owner.idx > mod.idx) return;
    this.symbolAdd(name, true, crc, mod);
  }

  private loadDependencies(): void {
    const show = this.opts.show;
    for (const mod of this.modules) {
      const scan = mod.scan!;
      const names = scan.importNames;
      const keys = scan.importKeys;
      const lengths = scan.importLengths;
      for (let j = 0, start = 0; j < keys.length; start += lengths[j] + 1, j++) {
        const end = start + lengths[j];
        const weak = scan.importWeak[j] === 1;
        const sym = this.importFind(names, start, end, keys[j]);
        if (sym === undefined) {
          if (this.printUnknown && !weak) this.log(LOG_WARNING, `${mod.path} needs unknown symbol ${latin1(names, start, end)}\n`);
          continue;
        }
        if (this.checkSymvers && sym.crc !== scan.importCrcs[j] && !weak) {
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

  private calculateDependencies(): void {
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

  // ---- output -------------------------------------------------------------------------------------

  private allDeps(mod: Mod): Mod[] {
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

  private depLines(): string[] {
    return this.modules.map((mod) => {
      const p = mod.relpath ?? mod.path;
      if (mod.deps.length === 0) return `${p}:`;
      let line = `${p}:`;
      for (const d of this.allDeps(mod)) line += ` ${d.relpath ?? d.path}`;
      return line;
    });
  }

  private insert(idx: IndexWriter, key: string, value: string, prio: number): boolean {
    try {
      return idx.insert(key, value, prio);
    } catch (err) {
      if (err instanceof IndexCharacterError) throw new DepmodFatal(err.message);
      throw err;
    }
  }

  private symbolsInOrder(): Sym[] {
    return hashOrder([...this.symbols.values()], (s) => s.name, 2048);
  }

  /** A file from buildAliasFiles at its turn: its messages, then its FATAL or its contents. */
  private aliasFile(files: Record<AliasFileName, BuiltFile>, name: AliasFileName): string | Uint8Array | null {
    const f = files[name];
    for (const [priority, message] of f.logs) this.log(priority, message);
    if (f.fatal !== undefined) throw new DepmodFatal(f.fatal);
    return f.data;
  }

  /** The modinfo-only files (alias-files.ts), in module order. */
  private aliasFiles(): Record<AliasFileName, BuiltFile> {
    const sources: AliasSource[] = this.modules.map((m) => ({ modname: m.modname, aliases: m.aliases, softdeps: m.softdeps, weakdeps: m.weakdeps }));
    return buildAliasFiles(sources, { dryRun: this.opts.dryRun === true, warnDuplicates: this.opts.warnDuplicates === true });
  }

  private output(): void {
    const dry = this.opts.dryRun === true;
    const warnDups = this.opts.warnDuplicates === true;
    const mods = this.modules;
    let depLines: string[] | undefined;
    let symbolOrder: Sym[] | undefined;
    const lines = (): string[] => (depLines ??= this.depLines());
    const syms = (): Sym[] => (symbolOrder ??= this.symbolsInOrder());
    let aliasFiles: Record<AliasFileName, BuiltFile> | undefined;
    const aliasFile = (name: AliasFileName): string | Uint8Array | null => this.aliasFile((aliasFiles ??= this.aliasFiles()), name);
    // built at once (natively when the helper is there) unless -w asks for each duplicate
    const newIndex = (): IndexWriter => (warnDups ? new IndexBuilder() : new IndexBatch());

    const files: [string, () => string | Uint8Array | null][] = [
      ['modules.dep', () => lines().map((l) => `${l}\n`).join('')],
      [
        'modules.dep.bin',
        () => {
          if (dry) return null;
          const idx = newIndex();
          const l = lines();
          for (let k = 0; k < mods.length; k++) {
            if (this.insert(idx, mods[k].modname, l[k], mods[k].idx) && warnDups) this.log(LOG_WARNING, `duplicate module deps:\n${l[k]}\n`);
          }
          return idx.serialize();
        },
      ],
      ['modules.alias', () => aliasFile('modules.alias')],
      ['modules.alias.bin', () => aliasFile('modules.alias.bin')],
      ['modules.softdep', () => aliasFile('modules.softdep')],
      ['modules.weakdep', () => aliasFile('modules.weakdep')],
      [
        'modules.symbols',
        () => {
          const parts = ['# Aliases for symbols, used by symbol_request().\n'];
          for (const s of syms()) if (s.owner !== null) parts.push(`alias symbol:${s.name} ${s.owner.modname}\n`);
          return parts.join('');
        },
      ],
      [
        'modules.symbols.bin',
        () => {
          if (dry) return null;
          const idx = newIndex();
          for (const s of syms()) {
            if (s.owner === null) continue;
            const key = `symbol:${s.name}`;
            if (this.insert(idx, key, s.owner.modname, s.owner.idx) && warnDups) this.log(LOG_WARNING, `duplicate module syms:\n${key} ${s.owner.modname}\n`);
          }
          return idx.serialize();
        },
      ],
      ['modules.builtin.bin', () => (dry ? null : (this.builtinFiles?.[0] ?? (() => this.builtinBin()))())],
      ['modules.builtin.alias.bin', () => (dry ? null : (this.builtinFiles?.[1] ?? (() => this.builtinAliasBin()))())],
      ['modules.devname', () => aliasFile('modules.devname')],
    ];

    if (dry) {
      const out = this.opts.output ?? (() => {});
      for (const [, make] of files) {
        const data = make();
        if (data !== null) out(typeof data === 'string' ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('latin1'));
      }
      return;
    }
    const dname = this.outdirname;
    try {
      fs.mkdirSync(dname, { recursive: true, mode: 0o755 });
    } catch (err) {
      throw new DepmodFatal(`could not create directory ${dname}: ${nodePathError(err)}\n`, errnoOf(err));
    }
    const now = Date.now();
    const sec = Math.floor(now / 1000);
    const usec = (now % 1000) * 1000 + Math.floor(Math.random() * 1000);
    for (const [name, make] of files) {
      const data = make() ?? '';
      const tmp = `${dname}/${name}.${process.pid}.${usec}.${sec}`;
      let fd: number;
      try {
        fd = fs.openSync(tmp, fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_WRONLY, 0o644);
      } catch (err) {
        this.log(LOG_ERR, `openat(${dname}, ${name}.${process.pid}.${usec}.${sec}, 301, 644): ${nodePathError(err)}\n`);
        continue;
      }
      try {
        const buf = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
        let off = 0;
        while (off < buf.length) off += fs.writeSync(fd, buf, off, buf.length - off);
        fs.closeSync(fd);
      } catch (err) {
        try {
          fs.closeSync(fd);
        } catch {
          // already closed
        }
        try {
          fs.unlinkSync(tmp);
        } catch {
          // nothing to clean
        }
        this.log(LOG_ERR, `Could not create index '${name}'. Output is truncated: ${nodePathError(err)}\n`);
        throw new DepmodFailed(`writing ${name} failed`, errnoOf(err));
      }
      // renamed before the next file is made, as kmod does (a rename on the thread pool while the next
      // file was made cost more: each wait for it gave the event loop a turn, ~18 ms in all)
      try {
        fs.renameSync(tmp, `${dname}/${name}`);
      } catch (err) {
        throw new DepmodFatal(`renameat(${dname}, ${tmp.slice(dname.length + 1)}, ${dname}, ${name}): ${nodePathError(err)}\n`, errnoOf(err));
      }
    }
  }

  /**
   * A file made ahead of its turn: its messages (and the FATAL that stopped it) are kept and given when
   * the returned function is called at the file's turn, which then returns its contents.
   */
  private madeNow(make: () => string | Uint8Array | null): () => string | Uint8Array | null {
    const logs: [number, string][] = [];
    const sink = this.logSink;
    this.logSink = (priority, message) => logs.push([priority, message]);
    let data: string | Uint8Array | null = null;
    let failure: unknown;
    try {
      data = make();
    } catch (err) {
      failure = err;
    } finally {
      this.logSink = sink;
    }
    return () => {
      for (const [priority, message] of logs) this.log(priority, message);
      if (failure !== undefined) throw failure;
      return data;
    };
  }

  private openInput(name: string): Buffer | null {
    try {
      return fs.readFileSync(`${this.dirname}/${name}`);
    } catch (err) {
      if (errnoOf(err) === ENOENT && !fs.existsSync(this.dirname)) {
        this.log(LOG_WARNING, `could not open directory ${this.dirname}: ${nodePathError(err)}\n`);
      } else this.log(LOG_WARNING, `could not open ${name} at ${this.dirname}: ${nodePathError(err)}\n`);
      return null;
    }
  }

  private builtinBin(): Buffer | string {
    const data = this.openInput('modules.builtin');
    if (data === null) return '';
    const idx = new IndexBuilder();
    const s = data.toString('latin1', 0, data.length);
    let pos = 0;
    while (pos < s.length) {
      const nl = s.indexOf('\n', pos);
      let end = nl < 0 ? s.length : nl + 1;
      if (end - pos > 4095) end = pos + 4095;
      let line = s.slice(pos, end);
      pos = end;
      const nul = line.indexOf('\0');
      if (nul >= 0) line = line.slice(0, nul);
      if (!/^[A-Za-z]/.test(line)) {
        this.log(LOG_ERR, `Invalid modules.builtin line: ${line}\n`);
        continue;
      }
      const modname = modnameFromPath(line) ?? '';
      this.insert(idx, modname, '', 0);
    }
    return idx.serialize();
  }

  private builtinAliasBin(): Buffer | string {
    const data = this.openInput('modules.builtin.modinfo');
    if (data === null) return '';
    const idx = new IndexBuilder();
    const n = data.length;
    let pos = 0;
    const EOF = -1;
    // flush_stream_to: read up to endchar/NUL/EOF (the stopping char is consumed); the length when
    // stopped by endchar, else 0
    const readTo = (endchar: number): string => {
      const start = pos;
      let c = EOF;
      while (pos < n) {
        c = data[pos++];
        if (c === endchar || c === 0) break;
        c = EOF;
      }
      const stop = c === EOF ? pos : pos - 1;
      return c === endchar ? data.toString('latin1', start, stop) : '';
    };
    while (pos < n) {
      const modname = readTo(0x2e);
      if (modname.length === 0) continue;
      const key = readTo(0x3d);
      if (key !== 'alias') {
        while (pos < n && data[pos++] !== 0);
        continue;
      }
      const value = readTo(0);
      if (value.length === 0) continue;
      const alias = aliasNormalize(value);
      if (alias === null) {
        this.log(LOG_WARNING, `Unmatched bracket in ${value}\n`);
        continue;
      }
      this.insert(idx, alias, modname, 0);
    }
    return idx.serialize();
  }
}

/** the bytes [start, end) as a binary string */
function latin1(bytes: Uint8Array, start: number, end: number): string {
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

/** sscanf("%u.%u") == 2: is this argument a kernel version? */
export function isVersionNumber(s: string): boolean {
  return /^[ \t\n\v\f\r]*[+-]?\d+\.[ \t\n\v\f\r]*[+-]?\d+/.test(s);
}
