// A module as libkmod models it (struct kmod_module): a name, maybe the alias it was found through,
// a path and dependencies from modules.dep (read lazily), configuration that applies to it, and its
// state in the kernel. Modules live in their Context's pool; the probe flags (visited, required,
// ignorecmd) belong to the pooled object, as in libkmod.
import type { ConfigCommand } from './config';
import type { Context } from './context';
import { LOG_ERR } from '../log';
import { ENOENT, EINVAL, strerror } from '../errno';
import { InvalidAliasError, KmodError } from '../errors';
import { patternListOf } from '../names/pattern-list';
import { PATH_MAX } from '../file/binary-os';

/** kmod_module_initstate values */
export const KMOD_MODULE_BUILTIN = 0;
export const KMOD_MODULE_LIVE = 1;
export const KMOD_MODULE_COMING = 2;
export const KMOD_MODULE_GOING = 3;

export type ModuleInitState = 'builtin' | 'live' | 'coming' | 'going';
const STATE_NAMES: ModuleInitState[] = ['builtin', 'live', 'coming', 'going'];

export interface Softdeps {
  pre: Module[];
  post: Module[];
}

/** the command of the first entry whose pattern matches the name (only the first counts, as in kmod) */
function firstCommand(list: readonly ConfigCommand[], name: string): string | undefined {
  return patternListOf(list, (c) => c.modname).first(name)?.command;
}

export class Module {
  /** mod->path as known so far (set from modules.dep or by path) */
  knownPath: string | undefined;
  /** true/false once known whether modules.builtin lists it */
  builtinState: boolean | undefined;
  /** probe-list flags (libkmod keeps them on the pooled module) */
  visited = false;
  required = false;
  ignorecmd = false;

  private depInit = false;
  private deps: Module[] = [];
  private optionsCache?: { value: string | undefined };
  private installCache?: { value: string | undefined };
  private removeCache?: { value: string | undefined };

  constructor(
    readonly ctx: Context,
    /** normalized module name */
    readonly name: string,
    /** the alias (or config alias pattern) this module was found through, if any */
    readonly alias?: string,
  ) {}

  /** whether its modules.dep line has been read and parsed (a line that failed to parse has not) */
  get dependenciesRead(): boolean {
    return this.depInit;
  }

  /** absolute path of the module file; undefined for builtin or unknown modules */
  get path(): string | undefined {
    if (this.knownPath !== undefined) return this.knownPath;
    if (this.depInit) return undefined;
    this.loadDependencies();
    return this.knownPath;
  }

  private loadDependencies(): void {
    if (this.depInit) return;
    const line = this.ctx.searchModdep(this.name);
    if (line !== undefined) this.parseDepline(line);
  }

  /** kmod_module_parse_depline: "relpath: dep1 dep2 ..." */
  parseDepline(line: string): void {
    if (this.depInit) return;
    this.depInit = true;
    const colon = line.indexOf(':');
    if (colon < 0) return;
    const dir = this.ctx.dirname + '/';
    const join = (p: string): string => (p.startsWith('/') ? p : dir + p);
    if (this.knownPath === undefined) this.knownPath = join(line.slice(0, colon));
    const list: Module[] = [];
    for (const tok of line.slice(colon + 1).split(/[ \t]+/)) {
      if (tok === '') continue;
      const p = join(tok);
      try {
        list.unshift(this.ctx.moduleFromPath(p));
      } catch (err) {
        const errno = err instanceof KmodError ? err.errno : EINVAL;
        this.ctx.log(LOG_ERR, 'kmod_module_parse_depline', `ctx=${this.ctx.address} path=${p} error=${strerror(errno)}\n`);
        this.depInit = false;
        return;
      }
    }
    this.deps = list;
  }

  /** kmod_module_get_dependencies: modules.dep line reversed (providers of providers first) */
  dependencies(): Module[] {
    this.loadDependencies();
    return this.deps.slice();
  }

  /** modules.builtin.bin lists this module */
  isBuiltin(): boolean {
    if (this.builtinState === undefined) this.builtinState = this.ctx.isBuiltinName(this.name);
    return this.builtinState;
  }

  /** `options` from the configuration (and kernel command line) for the name or the alias, joined by spaces */
  options(): string | undefined {
    if (this.optionsCache === undefined) {
      const parts: string[] = [];
      for (const o of this.ctx.config().options) {
        if (o.modname !== this.name && (this.alias === undefined || o.modname !== this.alias)) continue;
        if (o.options.length < 1) continue;
        parts.push(o.options);
      }
      this.optionsCache = { value: parts.length > 0 ? parts.join(' ') : undefined };
    }
    return this.optionsCache.value;
  }

  /** the first `install` command whose pattern matches the name */
  installCommand(): string | undefined {
    this.installCache ??= { value: firstCommand(this.ctx.config().installs, this.name) };
    return this.installCache.value;
  }

  /** kmod_module_set_install_commands: the command that made the name resolvable */
  setInstallCommand(cmd: string): void {
    this.installCache = { value: cmd };
  }

  /** the first `remove` command whose pattern matches the name */
  removeCommand(): string | undefined {
    this.removeCache ??= { value: firstCommand(this.ctx.config().removes, this.name) };
    return this.removeCache.value;
  }

  setRemoveCommand(cmd: string): void {
    this.removeCache = { value: cmd };
  }

  private lookupDeps(names: string[]): Module[] {
    const out: Module[] = [];
    for (const n of names) {
      try {
        for (const m of this.ctx.lookup(n)) out.push(m);
      } catch (err) {
        if (!(err instanceof InvalidAliasError)) throw err;
        this.ctx.log(LOG_ERR, 'lookup_dep', `failed to lookup dependency '${n}', continuing anyway.\n`);
      }
    }
    return out;
  }

  /** soft dependencies: only the first softdep entry whose pattern matches (kmod's behaviour, issue #33) */
  softdeps(): Softdeps {
    const sd = patternListOf(this.ctx.config().softdeps, (s) => s.name).first(this.name);
    if (sd === undefined) return { pre: [], post: [] };
    const pre = this.lookupDeps(sd.pre);
    const post = this.lookupDeps(sd.post);
    return { pre, post };
  }

  /** weak dependencies: only the first weakdep entry whose pattern matches */
  weakdeps(): Module[] {
    const wd = patternListOf(this.ctx.config().weakdeps, (s) => s.name).first(this.name);
    return wd === undefined ? [] : this.lookupDeps(wd.deps);
  }

  /**
   * kmod_module_get_initstate as a number: KMOD_MODULE_* or a negative errno
   * (-ENOENT when the module is not in the kernel).
   */
  initstateCode(): number {
    if (this.isBuiltin()) return KMOD_MODULE_BUILTIN;
    const backend = this.ctx.backend;
    const raw = backend.readModuleAttr(this.name, 'initstate');
    if (raw === undefined) {
      // no initstate file: a /sys/module/<name> directory means "coming" to libkmod
      return backend.initstate(this.name) !== undefined ? KMOD_MODULE_COMING : -ENOENT;
    }
    const s = raw.slice(0, 31);
    if (s === 'live\n') return KMOD_MODULE_LIVE;
    if (s === 'coming\n') return KMOD_MODULE_COMING;
    if (s === 'going\n') return KMOD_MODULE_GOING;
    this.ctx.log(LOG_ERR, 'kmod_module_get_initstate', `unknown /sys/module/${this.name}/initstate: '${s}'\n`);
    return -EINVAL;
  }

  /** initstate by name; undefined when not in the kernel at all */
  initstate(): ModuleInitState | undefined {
    const c = this.initstateCode();
    return c < 0 ? undefined : STATE_NAMES[c];
  }

  /** live or builtin */
  isInKernel(): boolean {
    const c = this.initstateCode();
    return c === KMOD_MODULE_LIVE || c === KMOD_MODULE_BUILTIN;
  }

  /**
   * /sys/module/<name>/refcnt, or a negative errno: -ENOENT when absent, -EINVAL (reported, as
   * kmod_module_get_refcnt does) when it holds no number read_str_long takes
   */
  refcnt(): number {
    const n = this.ctx.backend.refcnt(this.name);
    if (n !== undefined) return n;
    if (this.ctx.backend.readModuleAttr(this.name, 'refcnt') === undefined) return -ENOENT;
    const file = `/sys/module/${this.name}/refcnt`.slice(0, PATH_MAX - 1);
    this.ctx.log(LOG_ERR, 'kmod_module_get_refcnt', `could not read integer from '${file}': '${strerror(EINVAL)}'\n`);
    return -EINVAL;
  }

  /**
   * modules holding this one (/sys/module/<name>/holders, directory order); like
   * kmod_module_get_holders, a holders directory that cannot be opened is reported (an empty name's
   * is /sys/module//holders) and means none; the path as kmod's PATH_MAX buffer holds it (4095 bytes)
   */
  holders(): Module[] {
    const names = this.ctx.backend.holders(this.name);
    if (names === undefined) {
      const dir = `/sys/module/${this.name}/holders`.slice(0, PATH_MAX - 1);
      this.ctx.log(LOG_ERR, 'kmod_module_get_holders', `could not open '${dir}': ${strerror(ENOENT)}\n`);
      return [];
    }
    return names.map((h) => this.ctx.moduleFromName(h));
  }
}
