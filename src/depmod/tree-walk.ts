// Finding the modules of a depmod run, as kmod 34.2's depmod_modules_search does: the module directory
// and depmod.d's external directories walked (build/, source/ and excluded names skipped), modules
// with the same name settled by depmod.d's override and search lines, and, without -a, the module
// files named on the command line. Also -A's "is modules.dep up to date?" walk.
import * as fs from '../file/binary-os';
import { PATH_MAX } from '../file/binary-os';
import { KMOD_FIRST_FD, LOG_ERR } from '../log';
import { EEXIST, EINVAL, ENAMETOOLONG, ENOENT, errnoOf, strerror } from '../errno';
import { KmodError } from '../errors';
import { modnameFromPath, pathEndsWithKmodExt } from '../names/modname';
import { absolutePath } from '../resolution/context';
import { loadNativeTreeWalk, type WalkModulesFn } from '../native-addon';
import { DepmodFatal, nodePathError, type Mod, type RunContext } from './run-context';

/** glibc's NAME_MAX, which -A's walk checks its paths against with PATH_MAX (depfile_up_to_date_dir) */
const NAME_MAX = 255;

let nativeWalk: WalkModulesFn | null | undefined;

/**
 * Whether depmod's sorted walk goes through the native helper (native/tree_walk.c) when it is built:
 * false makes it walk with readdirSync (tests compare the two). Returns whether the helper is in use.
 */
export function useNativeTreeWalk(on: boolean): boolean {
  nativeWalk = on ? loadNativeTreeWalk() : null;
  return nativeWalk !== null;
}

/** a module's modinfo lists until its scan gives them (never added to: shared by all) */
const NO_STRINGS: string[] = [];

/** a string the addon cannot take as it is: a char above 0xff (not a binary string) or a NUL */
const NOT_NATIVE_PATH = /[^\x01-\xff]/;

/**
 * The descriptor kmod's walk has open on a directory `depth` levels below the one it started from, as
 * its fstatat/openat messages print it: kmod opens each directory of the path down to it and holds them
 * open, each taking the lowest free descriptor.
 */
function kmodDirFd(depth: number): number {
  return KMOD_FIRST_FD + depth;
}

/**
 * Whether libkmod's kmod_module_new_from_path() fails on a module file found at `path` because its
 * stat() of the absolute path does: ENAMETOOLONG from PATH_MAX bytes on. kmod's walk reaches such
 * files (it lists directories by descriptor, openat), and then reports `could not create module`.
 */
function tooLongToCreate(path: string): boolean {
  return path.length >= PATH_MAX && absolutePath(path).length >= PATH_MAX;
}

/** a directory's identity, device and inode (links followed) */
function directoryId(path: string): string {
  const st = fs.statSync(path, { bigint: true });
  return `${st.dev}:${st.ino}`;
}

/** whether the directory reached by `reach` is one of those reached by `above` (its way down) */
function isBelowItself(reach: string, above: readonly string[]): boolean {
  const id = directoryId(reach);
  return above.some((a) => directoryId(a) === id);
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

/** addModule's `fail` where it is quiet (one function, not one per module) */
const NEVER_FAILS = (): never => undefined as never;

/**
 * a module's empty list of dependencies: made by a call rather than written `[]` in addModule's object,
 * which an array literal inside makes V8 copy from its boilerplate by the slow path (~1 µs a module of
 * unoptimized code on Debian's full tree, against ~0.7 µs)
 */
function noDeps(): Mod[] {
  return [];
}

/** The modules found, by name and by modules.order's spelling of their path. */
export class ModuleTable {
  readonly byName = new Map<string, Mod>();
  readonly byUncrelpath = new Map<string, Mod>();

  /**
   * readAhead: each module file as the walk finds it (the scan threads start on them early); walkMemo:
   * the addon's record of the last walk's listings (walk-record.ts), taken and renewed by its walk
   */
  constructor(
    private readonly ctx: RunContext,
    private readonly readAhead?: (path: string) => void,
    private readonly walkMemo?: object,
  ) {}

  private get dirname(): string {
    return this.ctx.dirname;
  }

  private log(priority: number, message: string): void {
    this.ctx.log(priority, message);
  }

  // ---- -A -----------------------------------------------------------------------------------------

  upToDate(): number {
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
      return this.upToDateDir(dir, `${this.dirname}/`, mtime, 0);
    } finally {
      dir.closeSync();
    }
  }

  /**
   * depfile_up_to_date_dir. kmod builds the paths it prints in one buffer that each level writes its
   * entries' names into (a module file's or a directory's, never another file's): `path.text` is that
   * buffer up to its NUL, so "unsupported file type" names whatever was written there last, as kmod's does.
   */
  private upToDateDir(dir: fs.Dir, base: string, mtime: number, depth: number, path = { text: base }): number {
    let result = 1;
    const baselen = base.length;
    const write = (name: string): void => {
      path.text = path.text.slice(0, baselen) + name;
    };
    for (let de = dir.readSync(); de !== null; de = dir.readSync()) {
      const name = de.name;
      if (name === '.' || name === '..' || name === 'build' || name === 'source') continue;
      if (baselen + name.length + 2 >= PATH_MAX) {
        write('');
        this.log(LOG_ERR, `path is too long ${path.text}${name}\n`);
        continue;
      }
      let st: fs.Stats;
      try {
        st = fs.statSync(base + name);
      } catch (err) {
        this.log(LOG_ERR, `fstatat(${kmodDirFd(depth)}, ${name}): ${nodePathError(err)}\n`);
        continue;
      }
      if (st.isDirectory()) {
        write(name);
        if (baselen + name.length + 2 + NAME_MAX >= PATH_MAX) {
          this.log(LOG_ERR, `directory path is too long ${path.text}\n`);
          continue;
        }
        let sub: fs.Dir;
        try {
          sub = fs.opendirSync(base + name);
        } catch (err) {
          this.log(LOG_ERR, `openat(${kmodDirFd(depth)}, ${name}, O_RDONLY): ${nodePathError(err)}\n`);
          continue;
        }
        write(`${name}/`);
        try {
          result = this.upToDateDir(sub, `${base}${name}/`, mtime, depth + 1, path);
        } finally {
          sub.closeSync();
        }
      } else if (st.isFile()) {
        if (!pathEndsWithKmodExt(name)) continue;
        write(name);
        result = Math.floor(st.mtimeMs / 1000) <= mtime ? 1 : 0;
      } else {
        this.log(LOG_ERR, `unsupported file type ${path.text}: ${(st.mode & 0o170000).toString(8)}\n`);
        continue;
      }
      if (result === 0) break;
    }
    return result;
  }

  // ---- discovery ----------------------------------------------------------------------------------

  search(): void {
    if (this.searchSorted()) return;
    this.byName.clear();
    this.byUncrelpath.clear();
    this.searchPath(this.dirname, true);
    for (const ext of this.ctx.cfg.externals) this.searchPath(ext, false);
  }

  /**
   * The walk in sorted order: readdirSync lists a directory in one call, about twice as fast as
   * reading raw entries through opendir. The order files are found in only shows where kmod decides by
   * it (which of two modules of one name is kept) and in the order of its messages, so this walk gives
   * up at the first name found twice or anything it would have to report, and search() walks again in
   * raw readdir order as kmod does.
   */
  private searchSorted(): boolean {
    if (nativeWalk === undefined) nativeWalk = loadNativeTreeWalk();
    if (nativeWalk !== null) return this.searchSortedNative(nativeWalk);
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
        if (!pathEndsWithKmodExt(name)) continue;
        const modname = modnameFromPath(full);
        // (a name found twice: addModule, quiet, gives undefined; a path too long is reported)
        if (modname === null || tooLongToCreate(full) || this.addModule(full, modname, NEVER_FAILS, true) === undefined) return false;
        // the scan threads start on the first modules found while the walk goes on
        this.readAhead?.(full);
      }
      return true;
    };
    if (!walk(this.dirname)) return false;
    for (const ext of this.ctx.cfg.externals) if (!walk(ext)) return false;
    return true;
  }

  /** searchSorted's walk by the addon: the same modules in the same order, one call per directory tree */
  private searchSortedNative(walkModules: WalkModulesFn): boolean {
    // an exclude that no binary name can equal is left out; a root the addon cannot take is walked in JavaScript
    const excludes = [...this.ctx.cfg.excludes].filter((name) => !NOT_NATIVE_PATH.test(name));
    for (const root of [this.dirname, ...this.ctx.cfg.externals]) {
      if (NOT_NATIVE_PATH.test(root)) return false;
      const found = walkModules(root, excludes, this.walkMemo);
      if (found === null) return false;
      if (found === '') continue;
      const paths = found.split('\0');
      for (let k = 0; k < paths.length; k++) {
        const full = paths[k];
        const modname = modnameFromPath(full);
        // (a name found twice: addModule, quiet, gives undefined; a path too long is reported)
        if (modname === null || tooLongToCreate(full) || this.addModule(full, modname, NEVER_FAILS, true) === undefined) return false;
        this.readAhead?.(full);
      }
    }
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
      this.searchDir(dir, `${p}/`, 0, `${p}/`, [`${p}/`]);
    } finally {
      dir.closeSync();
    }
  }

  private excluded(name: string): boolean {
    return name === '.' || name === '..' || name === 'build' || name === 'source' || this.ctx.cfg.excludes.has(name);
  }

  /**
   * One directory of the raw walk. `base` is its path as kmod builds it (for messages and module
   * paths); `reach` the path node:fs reaches it by: the same, or, from where that gets too long for a
   * system call (PATH_MAX), a path through /proc/self/fd from a descriptor held on a directory above,
   * as kmod's walk goes on by descriptor (openat) below any length. `above`: the reaches of the
   * directories on the way down to this one, itself included (their identities are looked up only
   * where a path gets that long, so that the usual walk costs no stat a directory).
   */
  private searchDir(dir: fs.Dir, base: string, depth: number, reach: string, above: string[]): void {
    // this directory opened, once one of its entries cannot be reached from `reach` by path
    let held: number | undefined;
    const reachable = (name: string): string => {
      // one byte to spare for the '/' a subdirectory's reach ends with
      if (reach.length + name.length + 1 < PATH_MAX) return reach + name;
      try {
        held ??= fs.openSync(reach, 'r');
      } catch {
        // (out of descriptors): the long path, whose use then fails with ENAMETOOLONG, reported
        return reach + name;
      }
      return `/proc/self/fd/${held}/${name}`;
    };
    try {
      for (let de = dir.readSync(); de !== null; de = dir.readSync()) {
        const name = de.name;
        if (this.excluded(name)) continue;
        const full = base + name;
        const kind = de.isFile() ? 'file' : de.isDirectory() ? 'dir' : entryKind(de, reachable(name));
        if (typeof kind !== 'string') {
          if ('statError' in kind) this.log(LOG_ERR, `fstatat(${kmodDirFd(depth)}, ${name}): ${nodePathError(kind.statError)}\n`);
          else this.log(LOG_ERR, `unsupported file type ${full}: ${(kind.mode & 0o170000).toString(8)}\n`);
          continue;
        }
        if (kind === 'dir') {
          let sub: fs.Dir;
          let subReach: string;
          try {
            subReach = `${reachable(name)}/`;
            // A directory below itself (a link to `..`): kmod walks the loop until it runs out of
            // descriptors (docs/compat.md). By path, the kernel stops it (ELOOP, or a path too long:
            // the link's stat, or a directory's open); by descriptor, the walk stops there the same way.
            if (full.length >= PATH_MAX && isBelowItself(subReach, above)) {
              if (!de.isDirectory()) {
                this.log(LOG_ERR, `fstatat(${kmodDirFd(depth)}, ${name}): ${strerror(ENAMETOOLONG)}\n`);
                continue;
              }
              throw new KmodError(ENAMETOOLONG);
            }
            sub = fs.opendirSync(subReach);
          } catch (err) {
            this.log(LOG_ERR, `openat(${kmodDirFd(depth)}, ${name}, O_RDONLY): ${nodePathError(err)}\n`);
            continue;
          }
          above.push(subReach);
          try {
            this.searchDir(sub, `${full}/`, depth + 1, subReach, above);
          } finally {
            above.pop();
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
    } finally {
      if (held !== undefined) fs.closeSync(held);
    }
  }

  private searchFile(baselen: number, name: string, path: string): void {
    if (!pathEndsWithKmodExt(name)) return;
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
    // (after the module it replaces is gone, as in kmod: then neither is indexed)
    if (tooLongToCreate(path)) {
      this.log(LOG_ERR, `could not create module ${path}: ${strerror(ENAMETOOLONG)}\n`);
      throw new KmodError(ENAMETOOLONG);
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
    for (const ov of this.ctx.cfg.overrides) {
      if (relNew !== null && relNew === ov) return false;
      if (relOld !== null && relOld === ov) return true;
    }
    let bprio = -1;
    let oldprio = -1;
    let newprio = -1;
    const under = (p: string | null, prefix: string): boolean => p !== null && p.length > prefix.length && p[prefix.length] === '/' && p.startsWith(prefix);
    let i = 0;
    for (const se of this.ctx.cfg.searches) {
      if (se.type === 'built-in') bprio = i;
      else if (se.type === 'external') {
        for (const ext of this.ctx.cfg.externals) {
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
      deps: noDeps(),
      scan: undefined,
      importRefs: undefined,
      aliases: NO_STRINGS,
      softdeps: NO_STRINGS,
      weakdeps: NO_STRINGS,
      aliasPieces: undefined,
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

  addExplicit(path: string): void {
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

}
