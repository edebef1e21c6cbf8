// named imports: `import * as` makes tsc copy every export of node:fs at load (start-up)
import { accessSync, currentDirectory, PATH_MAX, processEnv, statSync } from '../file/binary-os';
import type { Backend } from '../loading/backend';
import type { ModprobeConfig } from './config';
import { EINVAL, ENOENT, EEXIST, ENOMEM, errnoOf, strerror } from '../errno';
import { InvalidAliasError, KmodError, fromSystemError } from '../errors';
import { patternListOf } from '../names/pattern-list';
import { BinaryIndex, IndexHeaderError, type IndexValue, type ModuleIndex } from '../indexes/binary';
import { INDEX_FILES, INDEX_LOAD_ORDER, type IndexName } from '../indexes/format';
import { openTextIndex } from '../indexes/text';
import { Module } from './module';
import { aliasNormalize, modnameFromPath, modnameNormalize } from '../names/modname';

export { LOG_CRIT, LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO, LOG_DEBUG, type LogFn } from '../log';
import { LOG_ERR, LOG_INFO, type LogFn } from '../log';

/** kmod's compiled-in module directory */
export const MODULE_DIRECTORY = '/lib/modules';

export interface ContextOptions {
  /** -d/-b: a root prefixed to /lib/modules (kmod: "%s/lib/modules/%s") */
  root?: string;
  /** -S: kernel version; default uname -r */
  kernelVersion?: string;
  /** the whole module directory, overriding root + kernelVersion (depmod -m/-o style users) */
  moduleDir?: string;
  /** -C: configuration files or directories replacing the default search paths */
  configPaths?: string[];
  /** where /proc is (tests point this at a fake one) */
  procDir?: string;
  /** where /sys is (tests point this at a fake one) */
  sysDir?: string;
  /** receives libkmod-style diagnostics; none are printed by the library */
  log?: LogFn;
  /** the kernel to query and load into; default: the native backend */
  backend?: Backend;
  /** creates the backend on first use (instead of `backend`), so commands that never ask the kernel do not load it */
  backendFactory?: () => Backend;
  /** an already parsed configuration (skips loadConfig) */
  config?: ModprobeConfig;
  /**
   * kmod_new() as the tools call it: the configuration parsed at creation (its messages logged before
   * the `ctx … created` INFO), not on first use. kmod's modinfo reports a bad modules.softdep line even
   * when it only reads a module file.
   */
  parseConfigNow?: boolean;
}

/**
 * kmod_new()'s message when it cannot make the module directory absolute (a relative one and no current
 * directory). It comes before kmod_new() reads KMOD_LOG: libkmod's default priority (ERR) applies to it.
 */
export const NO_DIRECTORY_MESSAGE = 'could not retrieve directory\n';

/** uname -r of the running kernel (node:os is required here, so runs given -S never load it) */
export function runningKernelVersion(): string {
  return (require('node:os') as typeof import('node:os')).release();
}

/** kmod's rule: with -d or -S, "<root>/lib/modules/<version>"; else /lib/modules/`uname -r`. */
export function moduleDirectory(opts: Pick<ContextOptions, 'root' | 'kernelVersion' | 'moduleDir'>): string {
  if (opts.moduleDir !== undefined) return opts.moduleDir;
  const kver = opts.kernelVersion ?? runningKernelVersion();
  return `${opts.root ?? ''}${MODULE_DIRECTORY}/${kver}`;
}

/**
 * get_current_dir_name(): $PWD when it names the current directory (keeps symlinks), else getcwd().
 * When there is none (the directory was removed), a KmodError with ENOMEM: libkmod's
 * path_make_absolute_cwd() then returns NULL, which its callers report as ENOMEM.
 */
export function currentDirName(): string {
  const pwd = processEnv().PWD;
  if (pwd !== undefined && pwd.startsWith('/')) {
    try {
      const a = statSync(pwd);
      const b = statSync('.');
      if (a.dev === b.dev && a.ino === b.ino) return pwd;
    } catch {
      // fall back to getcwd()
    }
  }
  try {
    return currentDirectory();
  } catch (err) {
    throw new KmodError(ENOMEM, `no current directory (getcwd: ${strerror(errnoOf(err))})`, { cause: err });
  }
}

/** path_make_absolute_cwd: cwd + '/' + p for relative paths, no normalization (throws as currentDirName). */
export function absolutePath(p: string): string {
  return p.startsWith('/') ? p : `${currentDirName()}/${p}`;
}

const noLog: LogFn = () => {};

/**
 * A libkmod context: one module directory, one configuration, one kernel. Modules are pooled by
 * name (and by name + alias for modules found through an alias), as libkmod does: the same Module
 * object is returned for the same key, which matters for the probe-list flags.
 */
export class Context {
  /** absolute module directory (kmod_get_dirname) */
  readonly dirname: string;
  readonly kernelVersion: string;
  readonly configPaths?: string[];
  readonly procDir: string;
  readonly sysDir: string;
  readonly log: LogFn;
  private _backend?: Backend;
  private _config?: ModprobeConfig;
  private readonly indexes = new Map<IndexName, ModuleIndex | undefined>();
  private readonly pool = new Map<string, Module>();
  /**
   * Answers of the index searches, by index and key: a fan of softdeps looks the same names up once
   * per module that lists them (kmod too, with mapped indexes; each search here decodes its nodes).
   */
  private readonly searches = new Map<IndexName, Map<string, string | undefined>>();
  private readonly wildSearches = new Map<IndexName, Map<string, IndexValue[]>>();
  private readonly normalized = new Map<string, string | null>();
  /** lookup's answers that a new lookup would give without doing anything else (pooled modules: released with them) */
  private readonly lookups = new Map<string, Module[]>();

  constructor(readonly options: ContextOptions = {}) {
    this.kernelVersion = options.kernelVersion ?? runningKernelVersion();
    this.log = options.log ?? noLog;
    try {
      this.dirname = absolutePath(moduleDirectory({ ...options, kernelVersion: this.kernelVersion }));
    } catch (err) {
      // kmod_new() fails: a relative module directory and no current directory
      if (err instanceof KmodError) this.log(LOG_ERR, 'kmod_new', NO_DIRECTORY_MESSAGE);
      throw err;
    }
    this.configPaths = options.configPaths;
    this.procDir = options.procDir ?? '/proc';
    this.sysDir = options.sysDir ?? '/sys';
    this._backend = options.backend;
    this._config = options.config;
    if (options.parseConfigNow) this.config();
    this.log(LOG_INFO, 'kmod_new', `ctx ${this.address} created\n`);
  }

  /**
   * What libkmod shows as the context's address in its INFO messages. kmodts has no pointer to show;
   * this stands in for one (docs/compat.md).
   */
  readonly address = '0x5555555592a0';

  /**
   * kmod_unref: the tool is done with the context. The index files it holds open (read as lookups reach
   * them: src/indexes/paged-file.ts) are let go; a lookup after this opens them again.
   */
  release(): void {
    for (const idx of this.indexes.values()) if (idx instanceof BinaryIndex) idx.close();
    this.indexes.clear();
    this.searches.clear();
    this.wildSearches.clear();
    this.lookups.clear();
    this.log(LOG_INFO, 'kmod_unref', `context ${this.address} released\n`);
  }

  /** The kernel: the given backend, else the native one over procDir/sysDir. */
  get backend(): Backend {
    if (this._backend === undefined && this.options.backendFactory) this._backend = this.options.backendFactory();
    if (this._backend === undefined) {
      const { NativeBackend } = require('../backends/native') as typeof import('../backends/native');
      this._backend = new NativeBackend({ sysDir: this.sysDir, procDir: this.procDir });
    }
    return this._backend;
  }

  /** modprobe.d + modules.softdep/weakdep + kernel command line, parsed on first use (kmod_new). */
  config(): ModprobeConfig {
    if (this._config === undefined) {
      const { loadConfig } = require('./config') as typeof import('./config');
      this._config = loadConfig({ configPaths: this.configPaths, moduleDir: this.dirname, procDir: this.procDir, log: this.log });
    }
    return this._config;
  }

  /** path of one of the binary indexes */
  indexPath(name: IndexName): string {
    return `${this.dirname}/${INDEX_FILES[name].file}.bin`;
  }

  /**
   * An index, opened on first use and read as lookups reach its parts (its file stays open until every
   * part is read, release(), or the index is collected). Missing (or refused by its header, as
   * libkmod's reader refuses it) gives undefined: no matches. When the .bin file is missing, the text
   * file depmod writes next to it is used instead (see docs/compat.md). Malformed contents throw
   * FormatError.
   */
  index(name: IndexName): ModuleIndex | undefined {
    if (this.indexes.has(name)) return this.indexes.get(name);
    let idx: ModuleIndex | undefined;
    try {
      idx = BinaryIndex.open(this.indexPath(name));
      if (idx === undefined) idx = openTextIndex(this.dirname, name);
    } catch (err) {
      if (!(err instanceof IndexHeaderError)) throw err;
      idx = undefined;
    }
    this.indexes.set(name, idx);
    return idx;
  }

  /**
   * kmod_load_resources (modprobe does this once): opens the indexes in kmod's order and reports a
   * refused header as libkmod does; the first failure (other than modules.builtin.alias.bin) stops it.
   */
  loadResources(): void {
    for (const name of INDEX_LOAD_ORDER) {
      let failed = false;
      try {
        failed = !BinaryIndex.probe(this.indexPath(name));
      } catch (err) {
        if (!(err instanceof IndexHeaderError)) throw err;
        if (err.kmodMessage !== undefined) this.log(LOG_ERR, 'index_mm_open', err.kmodMessage);
        this.indexes.set(name, undefined);
        this.searches.delete(name);
        this.wildSearches.delete(name);
        failed = true;
      }
      if (failed && name !== 'builtinAlias') return;
    }
  }

  // ---- module pool ------------------------------------------------------------------------

  private pooled(name: string, alias?: string): Module {
    const key = alias === undefined ? name : `${name}\\${alias}`;
    let m = this.pool.get(key);
    if (m === undefined) {
      m = new Module(this, name, alias);
      this.pool.set(key, m);
    }
    return m;
  }

  /**
   * Forgets every pooled module. libkmod frees a module when its last reference goes, which for
   * modprobe is after each command-line argument: call this between independent top-level operations
   * so that one argument's modules (e.g. a module loaded from another path) do not affect the next.
   */
  releaseModules(): void {
    this.pool.clear();
    this.lookups.clear();
  }

  /** every module created so far (kmod's hash of modules) */
  pooledModules(): IterableIterator<Module> {
    return this.pool.values();
  }

  /** kmod_module_new_from_name: the module of that (normalized) name, whether it exists or not. */
  moduleFromName(name: string): Module {
    return this.pooled(modnameNormalize(name));
  }

  /** kmod_module_new_from_alias: module `name` as reached through `alias`. */
  moduleFromAlias(alias: string, name: string): Module {
    return this.pooled(name, alias);
  }

  /**
   * kmod_module_new_from_path: the module in that file (name from the file name). Throws KmodError
   * with the stat() errno when the file is not there. `found`: the caller has just stat()ed the file
   * and found it (modinfo's is_module_filename), so the check for its existence is not made again.
   */
  moduleFromPath(file: string, found = false): Module {
    const abs = absolutePath(file);
    try {
      // libkmod stat()s the path, for its existence only: access(F_OK) fails alike (ENOENT, ENOTDIR,
      // ELOOP, EACCES on a directory on the way) without Node building a Stats object (~10 µs, which
      // modinfo over a whole tree pays per module). The caller's check used the path as given, which
      // may fit in PATH_MAX where the absolute one does not (a deep current directory): that one fails
      // here with ENAMETOOLONG, as libkmod's stat() does
      if (!found || abs.length >= PATH_MAX) accessSync(abs);
    } catch (err) {
      throw fromSystemError(err, file);
    }
    const name = modnameFromPath(file);
    if (name === null) throw new KmodError(ENOENT, `${file}: no module name in path`, { file });
    const m = this.pooled(name);
    if (m.knownPath === undefined) m.knownPath = abs;
    else if (m.knownPath !== abs) {
      this.log(LOG_ERR, 'kmod_module_new_from_path', `kmod_module '${name}' already exists with different path: new-path='${abs}' old-path='${m.knownPath}'\n`);
      throw new KmodError(EEXIST, `module ${name} already exists with path ${m.knownPath}`, { file });
    }
    m.builtinState = false;
    return m;
  }

  // ---- lookups ----------------------------------------------------------------------------

  /** an index's search for a key (the first value under exactly that key), remembered */
  private search(index: IndexName, key: string): string | undefined {
    let answers = this.searches.get(index);
    if (answers === undefined) this.searches.set(index, (answers = new Map()));
    if (answers.has(key)) return answers.get(key);
    const value = this.index(index)?.search(key);
    answers.set(key, value);
    return value;
  }

  /** an index's wildcard search for a key, remembered (callers do not change the list) */
  private searchWild(index: IndexName, key: string): readonly IndexValue[] {
    let answers = this.wildSearches.get(index);
    if (answers === undefined) this.wildSearches.set(index, (answers = new Map()));
    let values = answers.get(key);
    if (values === undefined) answers.set(key, (values = this.index(index)?.searchWild(key) ?? []));
    return values;
  }

  /** the modules.dep line of a module name (kmod_search_moddep) */
  searchModdep(name: string): string | undefined {
    return this.search('dep', name);
  }

  /** whether modules.builtin.bin lists the name */
  isBuiltinName(name: string): boolean {
    return this.search('builtin', name) !== undefined;
  }

  private lookupConfig(name: string): Module[] {
    return patternListOf(this.config().aliases, (a) => a.name).all(name).map((a) => this.moduleFromAlias(a.name, a.modname));
  }

  private lookupModdep(name: string): Module[] {
    if (name.includes(':')) return [];
    const line = this.searchModdep(name);
    if (line === undefined) return [];
    const m = this.moduleFromName(name);
    m.parseDepline(line);
    return [m];
  }

  private lookupAliasIndex(index: IndexName, name: string): Module[] {
    return this.searchWild(index, name).map((v) => this.moduleFromAlias(name, v.value));
  }

  private lookupCommands(name: string): Module[] {
    const cfg = this.config();
    const install = patternListOf(cfg.installs, (c) => c.modname).firstWithText(name);
    if (install !== undefined) {
      const m = this.moduleFromName(install.modname);
      m.setInstallCommand(install.command);
      return [m];
    }
    const remove = patternListOf(cfg.removes, (c) => c.modname).firstWithText(name);
    if (remove !== undefined) {
      const m = this.moduleFromName(remove.modname);
      m.setRemoveCommand(remove.command);
      return [m];
    }
    return [];
  }

  private lookupBuiltin(name: string): Module[] {
    if (!this.isBuiltinName(name)) return [];
    const m = this.moduleFromName(name);
    m.builtinState = true;
    return [m];
  }

  private lookupBuiltinAlias(name: string): Module[] {
    const list = this.lookupAliasIndex('builtinAlias', name);
    for (const m of list) m.builtinState = true;
    return list;
  }

  /**
   * kmod_module_new_from_lookup: the modules a name or alias stands for, in kmod 34.2's order:
   * config aliases (fnmatch), modules.dep, modules.symbols (for "symbol:..."), install/remove
   * commands, modules.alias, modules.builtin, modules.builtin.alias. The first step that finds
   * something wins. Throws InvalidAliasError (EINVAL) for a name with unbalanced brackets, FormatError
   * for a malformed index.
   */
  lookup(given: string): Module[] {
    const name = this.normalizedAlias(given);
    if (name === null) throw new InvalidAliasError(given);
    const known = this.lookups.get(name);
    if (known !== undefined) return known.slice();
    // (the steps written out, not a list of closures: a fan of softdeps makes half a million lookups).
    // `repeatable`: a new lookup of the name would only give the same modules again; not so after
    // the steps that set an install/remove command or the builtin flag on the module, nor after a
    // modules.dep line that could not be parsed (a new lookup reports it again)
    let repeatable = true;
    let r = this.lookupConfig(name);
    if (r.length === 0) {
      r = this.lookupModdep(name);
      repeatable = r.length === 0 || r[0].dependenciesRead;
    }
    if (r.length === 0 && name.startsWith('symbol:')) r = this.lookupAliasIndex('symbols', name);
    if (r.length === 0) {
      r = this.lookupCommands(name);
      repeatable = r.length === 0;
    }
    if (r.length === 0) r = this.lookupAliasIndex('alias', name);
    if (r.length === 0) {
      r = this.lookupBuiltin(name);
      if (r.length === 0) r = this.lookupBuiltinAlias(name);
      repeatable = r.length === 0;
    }
    if (repeatable) this.lookups.set(name, r.slice());
    return r;
  }

  /** aliasNormalize, remembered: the same softdep names are looked up again for every module listing them */
  private normalizedAlias(given: string): string | null {
    let name = this.normalized.get(given);
    if (name === undefined) this.normalized.set(given, (name = aliasNormalize(given)));
    return name;
  }

  /** kmod_module_new_from_name_lookup (modinfo -m): modules.dep, modules.builtin, modules.builtin.alias. */
  lookupName(given: string): Module | undefined {
    const name = modnameNormalize(given);
    for (const step of [(n: string) => this.lookupModdep(n), (n: string) => this.lookupBuiltin(n), (n: string) => this.lookupBuiltinAlias(n)]) {
      const r = step(name);
      if (r.length > 0) return r[0];
    }
    return undefined;
  }

  /** kmod_set_modules_visited(false) + kmod_set_modules_required(false) */
  resetProbeFlags(): void {
    for (const m of this.pool.values()) {
      m.visited = false;
      m.required = false;
    }
  }
}


