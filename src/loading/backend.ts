// The kernel as kmod sees it: three system calls and the files it reads under /proc and /sys.
// libkmod's logic (which call to make, fallbacks, messages) lives above this interface and is shared;
// a Backend supplies the kernel: the running one (backends/native) or a simulated one (backends/sim).

/** /sys/module/<name>/initstate, plus 'builtin' for a /sys/module/<name> without initstate. */
export type InitState = 'builtin' | 'live' | 'coming' | 'going';

/** One line of /proc/modules. */
export interface ProcModule {
  name: string;
  size: number;
  refcnt: number;
  /** the modules using this one, as /proc/modules lists them */
  users: string[];
  state: 'Live' | 'Loading' | 'Unloading';
  address: string;
  /** taint letters between parentheses, '' if none */
  taints: string;
}

/** finit_module flags */
export const MODULE_INIT_IGNORE_MODVERSIONS = 1;
export const MODULE_INIT_IGNORE_VERMAGIC = 2;
export const MODULE_INIT_COMPRESSED_FILE = 4;
/** delete_module flags */
export const O_NONBLOCK = 0o4000;
export const O_TRUNC = 0o1000;

export interface Backend {
  readonly kind: 'native' | 'sim';
  /** finit_module(fd of path, params, flags); throws KmodError carrying the kernel's errno */
  finitModule(path: string, params: string, flags: number): void;
  /** init_module(image, len, params); throws KmodError carrying the kernel's errno */
  initModule(image: Uint8Array, params: string): void;
  /** delete_module(name, flags); throws KmodError carrying the kernel's errno */
  deleteModule(name: string, flags: number): void;

  /** initstate of a module, undefined when /sys/module/<name> does not exist */
  initstate(name: string): InitState | undefined;
  /** /sys/module/<name>/refcnt, undefined when absent (builtin or not loaded) */
  refcnt(name: string): number | undefined;
  /**
   * entries of /sys/module/<name>/holders in directory order; undefined when that directory cannot be
   * opened (not loaded, or a builtin module's directory, which has none)
   */
  holders(name: string): string[] | undefined;
  /** /proc/modules, undefined when the kernel has none (no module support) */
  procModules(): ProcModule[] | undefined;
  /**
   * the module names of /proc/modules as kmod_module_new_from_loaded() reads them, lines that are no
   * well-formed entry included (null: a line without a name); when absent, procModules()' names
   */
  loadedNames?(): (string | null)[] | undefined;
  /** /sys/module/compression ('xz', 'zstd', 'gzip'), undefined when absent */
  compression(): string | undefined;
  /** /sys/module/<name>/coresize etc. and parameters, for modinfo-like views: undefined when absent */
  readModuleAttr(name: string, attr: string): string | undefined;
}
