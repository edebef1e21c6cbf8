// The simulated kernel backend: finit_module/init_module/delete_module and the /proc and /sys views of a
// kernel that links modules the way Linux 6.12 does, with its state kept in a directory so that
// successive kmodts invocations see the same kernel. Selected with --backend=sim / KMODTS_BACKEND=sim.
import * as fs from '../../file/binary-os';
import * as nodePath from 'node:path';
import type { Backend, InitState, ProcModule } from '../../loading/backend';
import { MODULE_INIT_COMPRESSED_FILE, O_TRUNC } from '../../loading/backend';
import { KmodError, fromSystemError } from '../../errors';
import { EBUSY, EFBIG, EINVAL, ENOENT, ENOEXEC, ENOSYS, EOPNOTSUPP, EPERM, EAGAIN, strerror } from '../../errno';
import { deriveKernelSymbols, loadBuiltinModules, loadKernelSymbols, missingSymbolTableNote, moduleSetting, resolveKernelSpec, simOptionsFromEnv, type KernelSpec, type SimKernelOptions } from './kernel-model';
import { LoadError, loadModule, LOCKDEP_UNRELIABLE_TAINTS, moduleTaintLetters, TAINT_FORCED_RMMOD, TAINT_LIVEPATCH, TAINT_UNSIGNED_MODULE, type LoadContext } from './loader';
import { defaultStateDir, SimStore, type KernelGlobals, type KernelState, type KernelStateData, type ModuleRecord } from './state';
import { kernelDecompress } from './unpack';
import type { LockHolder } from './state-lock';
import { kernfsOrder } from './kernfs';
import { kernelKeys, keyCacheDir } from './keyring';

export type { KernelSpec, SimKernelOptions } from './kernel-model';
export { simOptionsFromEnv, resolveKernelSpec } from './kernel-model';
export type { ModuleRecord, KernelStateData } from './state';
export { defaultStateDir } from './state';

/** One record of the simulated kernel's log. */
export interface KernelLogRecord {
  level: number;
  seq: number;
  /** microseconds since the simulated boot */
  usec: number;
  text: string;
}

export interface SimBackendOptions extends SimKernelOptions {
  /** the state directory; default: settings.simState, $KMODTS_SIM_STATE, then defaultStateDir() */
  stateDir?: string;
  /** environment for KMODTS_SIM_* (default process.env) */
  env?: NodeJS.ProcessEnv;
  /** name of the calling program, shown in lockdown messages */
  comm?: string;
  /** told once when a change has to wait for another live kmodts process holding the state's lock */
  onLockWait?: (holder: LockHolder) => void;
  /**
   * Told, once, what the caller should know but no kernel would say: a load failed on unknown symbols
   * in a kernel that has no symbol table (no Module.symvers was found).
   */
  onNote?: (text: string) => void;
}

/** What a SimBackend tells its caller besides the kernel's own log. */
export type SimBackendHooks = Pick<SimBackendOptions, 'onLockWait' | 'onNote'>;

/** Kernel identity: a difference in any of these means another kernel, so the simulated one reboots. */
const IDENTITY_KEYS: (keyof KernelSpec)[] = ['release', 'arch', 'vermagic', 'moduleStructSize', 'moduleDir', 'symvers', 'config'];

const INT_MAX = 0x7fffffff;

export class SimBackend implements Backend {
  readonly kind = 'sim' as const;
  readonly store: SimStore;
  private readonly options: SimKernelOptions;
  private readonly explicit: boolean;
  private readonly comm: string;
  private wanted: KernelSpec | undefined;

  private readonly onNote: ((text: string) => void) | undefined;
  private noted = false;

  constructor(stateDir: string, options: SimKernelOptions = {}, comm = 'modprobe', hooks: SimBackendHooks = {}) {
    this.store = new SimStore(stateDir, { lock: { onWait: hooks.onLockWait } });
    this.options = options;
    this.explicit = Object.keys(options).length > 0;
    this.comm = comm;
    this.onNote = hooks.onNote;
  }

  /** The spec the caller asks for (resolved once). */
  private wantedSpec(): KernelSpec {
    this.wanted ??= resolveKernelSpec(this.options);
    return this.wanted;
  }

  /** The kernel's spec as booted, or what it would boot with. */
  spec(): KernelSpec {
    const st = this.store.current();
    if (st && !this.explicit) return st.data.spec;
    return this.wantedSpec();
  }

  /** The current state; boots (or reboots into another kernel) when needed. Must hold the lock. */
  private booted(): KernelState {
    const st = this.store.current();
    if (st && !this.explicit) return st;
    const want = this.wantedSpec();
    if (st) {
      const same = IDENTITY_KEYS.every((k) => JSON.stringify(st.data.spec[k]) === JSON.stringify(want[k]));
      if (same) {
        if (JSON.stringify(st.data.spec) !== JSON.stringify(want)) this.store.commit({ op: 'spec', spec: want }, []);
        return this.store.current() as KernelState;
      }
    }
    const data: KernelStateData = {
      v: 1,
      spec: want,
      boot: Date.now(),
      g: { taint: 0, once: [], debugLocks: true, seq: 1 },
      modules: [],
    };
    return this.store.boot(data, [`6,0,0,-;Linux version ${want.release} (kmodts simulated kernel)\n`]);
  }

  /**
   * Reboots: no modules, empty log, taints cleared. `tainted` (/proc/sys/kernel/tainted bits) gives a
   * kernel that has run for a while instead, e.g. to replay a step of a long-running real kernel: those
   * taints are set, their once-per-boot messages already printed and lock debugging off when one of
   * them turned it off, as add_taint() left it.
   */
  reboot(tainted = 0): void {
    this.store.withLock(() => {
      const want = this.explicit ? this.wantedSpec() : (this.store.current()?.data.spec ?? this.wantedSpec());
      const bit = (b: number): boolean => (tainted & (1 << b)) !== 0;
      const once = [...(bit(TAINT_UNSIGNED_MODULE) ? ['sig'] : []), ...(bit(TAINT_LIVEPATCH) ? ['livepatch'] : [])];
      const debugLocks = !LOCKDEP_UNRELIABLE_TAINTS.some(bit);
      this.store.boot(
        { v: 1, spec: want, boot: Date.now(), g: { taint: tainted, once, debugLocks, seq: 1 }, modules: [] },
        [`6,0,0,-;Linux version ${want.release} (kmodts simulated kernel)\n`],
      );
    });
  }

  private kmsgLines(st: KernelState, g: KernelGlobals, lines: [number, string][]): string[] {
    const usec = Math.max(0, (Date.now() - st.data.boot) * 1000);
    return lines.map(([level, text]) => `${level},${g.seq++},${usec},-;${text.replace(/\\/g, '\\\\').replace(/\n/g, '\\x0a')}\n`);
  }

  private load(image: Uint8Array, params: string, flags: number, file?: string): void {
    this.store.withLock(() => {
      const st = this.booted();
      const spec = st.data.spec;
      const g: KernelGlobals = JSON.parse(JSON.stringify(st.data.g)) as KernelGlobals;
      const lines: [number, string][] = [];
      const ctx: LoadContext = {
        spec,
        ksyms: spec.symvers !== undefined ? loadKernelSymbols(spec.symvers, spec.arch) : deriveKernelSymbols(spec.moduleDir, spec.arch, keyCacheDir()),
        builtin: loadBuiltinModules(spec.moduleDir),
        state: st,
        g,
        log: (level, text) => lines.push([level, text]),
        comm: this.comm,
        keys: kernelKeys({ keys: spec.keys, vmlinuz: spec.vmlinuz }, keyCacheDir()),
        keyCacheDir: keyCacheDir(),
      };
      let rec: ModuleRecord;
      try {
        rec = loadModule(ctx, image, params, flags, file);
      } catch (err) {
        if (!(err instanceof LoadError)) throw err;
        const changed = lines.length > 0 || JSON.stringify(g) !== JSON.stringify(st.data.g);
        if (changed) this.store.commit({ op: 'globals', g }, this.kmsgLines(st, g, lines));
        if (!this.noted && lines.some(([, text]) => text.includes(': Unknown symbol '))) {
          const note = missingSymbolTableNote(spec);
          if (note !== undefined) {
            this.noted = true;
            this.onNote?.(note);
          }
        }
        const last = lines.length > 0 ? `: ${lines[lines.length - 1][1]}` : '';
        throw new KmodError(err.errno, `${strerror(err.errno)}${last}`, file !== undefined ? { file } : undefined);
      }
      const out = this.kmsgLines(st, g, lines);
      this.store.commit({ op: 'load', m: rec, g }, out);
    });
  }

  finitModule(path: string, params: string, flags: number): void {
    this.adoptTree(path);
    const spec = this.spec();
    if (spec.switches.modulesDisabled) throw new KmodError(EPERM);
    if (flags & ~7) throw new KmodError(EINVAL);
    let st: fs.Stats;
    try {
      st = fs.statSync(path);
    } catch (err) {
      throw fromSystemError(err, path);
    }
    if (!st.isFile() || st.size <= 0) throw new KmodError(EINVAL, undefined, { file: path });
    if (st.size > INT_MAX) throw new KmodError(EFBIG, undefined, { file: path });
    let buf: Uint8Array;
    try {
      buf = fs.readFileSync(path);
    } catch (err) {
      throw fromSystemError(err, path);
    }
    if (flags & MODULE_INIT_COMPRESSED_FILE) {
      const algo = spec.switches.decompress;
      if (algo === 'none') throw new KmodError(EOPNOTSUPP, undefined, { file: path });
      const r = kernelDecompress(buf, algo);
      if ('error' in r) {
        const errno = r.errno;
        this.store.withLock(() => {
          const s = this.booted();
          const g: KernelGlobals = JSON.parse(JSON.stringify(s.data.g)) as KernelGlobals;
          this.store.commit({ op: 'globals', g }, this.kmsgLines(s, g, [[3, r.error]]));
        });
        throw new KmodError(errno, `${strerror(errno)}: ${r.error}`, { file: path });
      }
      buf = r.image;
    }
    this.load(buf, params, flags, path);
  }

  /**
   * Before the first boot, with nothing chosen explicitly, the kernel is the one the first module
   * loaded was built for: a file under <root>/lib/modules/<release>/ (modprobe -d/-S) names it.
   * Only a kernel's own tree names one: modules_install leaves modules.order and modules.builtin
   * there, while directories such as /lib/modules/external hold modules of another kernel's.
   */
  private adoptTree(file: string): void {
    if (this.explicit || this.store.current()) return;
    const m = /^(.*)\/lib\/modules\/([^/]+)\//.exec(nodePath.resolve(file));
    if (!m || m[2] === this.wantedSpec().release) return;
    const tree = `${m[1]}/lib/modules/${m[2]}`;
    if (!fs.existsSync(`${tree}/modules.order`) && !fs.existsSync(`${tree}/modules.builtin`)) return;
    this.wanted = resolveKernelSpec({ ...this.options, root: m[1], kernelVersion: m[2] });
  }

  initModule(image: Uint8Array, params: string): void {
    if (this.spec().switches.modulesDisabled) throw new KmodError(EPERM);
    if (image.length < 64) throw new KmodError(ENOEXEC);
    this.load(Uint8Array.from(image), params, 0);
  }

  deleteModule(name: string, flags: number): void {
    const spec = this.spec();
    if (!spec.switches.moduleUnload) throw new KmodError(ENOSYS);
    if (spec.switches.modulesDisabled) throw new KmodError(EPERM);
    if (name.length === 0 || Buffer.byteLength(name) >= 56) throw new KmodError(ENOENT);
    this.store.withLock(() => {
      const st = this.store.current();
      const mod = st?.byName.get(name);
      if (!st || !mod) throw new KmodError(ENOENT);
      if (mod.users.length > 0) throw new KmodError(EAGAIN);
      if (mod.state !== 'live') throw new KmodError(EBUSY);
      const g: KernelGlobals = JSON.parse(JSON.stringify(st.data.g)) as KernelGlobals;
      const force = (flags & O_TRUNC) !== 0 && spec.switches.forceUnload;
      const lines: [number, string][] = [];
      const forced = (): void => {
        // add_taint(TAINT_FORCED_RMMOD, LOCKDEP_NOW_UNRELIABLE)
        if (g.debugLocks) {
          g.debugLocks = false;
          lines.push([4, 'Disabling lock debugging due to kernel taint']);
        }
        g.taint |= 1 << TAINT_FORCED_RMMOD;
      };
      if (mod.init && !mod.exit) {
        if (!force) throw new KmodError(EBUSY);
        forced();
      } else if (this.runtimeRefs(spec, mod) > 0) {
        // try_stop_module(): someone still holds a reference
        if (!force) throw new KmodError(EAGAIN);
        forced();
      }
      g.lastUnloaded = mod.name;
      this.store.commit({ op: 'unload', name: mod.name, g }, this.kmsgLines(st, g, lines));
    });
  }

  /** references a module holds at run time, as the spec declares them */
  private runtimeRefs(spec: KernelSpec, m: ModuleRecord): number {
    return moduleSetting(spec.runtimeRefs, m.name) ?? 0;
  }

  private module(name: string): ModuleRecord | undefined {
    return this.store.current()?.byName.get(name);
  }

  initstate(name: string): InitState | undefined {
    const m = this.module(name);
    if (m) return m.state;
    const b = this.builtins();
    return b && (b.all.has(name) || b.withSysfs.has(name)) ? 'builtin' : undefined;
  }

  private builtins(): ReturnType<typeof loadBuiltinModules> | undefined {
    try {
      return loadBuiltinModules(this.spec().moduleDir);
    } catch {
      return undefined;
    }
  }

  refcnt(name: string): number | undefined {
    const m = this.module(name);
    return m ? moduleRefcount(m) + this.runtimeRefs(this.spec(), m) : undefined;
  }

  holders(name: string): string[] | undefined {
    const m = this.module(name);
    return m ? kernfsOrder(m.users) : undefined;
  }

  procModules(): ProcModule[] | undefined {
    const st = this.store.current();
    if (!st) return [];
    const spec = st.data.spec;
    return st.data.modules.map((m) => ({
      name: m.name,
      size: m.size,
      refcnt: m.state === 'going' ? -1 : moduleRefcount(m) + this.runtimeRefs(spec, m),
      users: m.init && !m.exit ? [...m.users, '[permanent]'] : [...m.users],
      state: m.state === 'coming' ? 'Loading' : m.state === 'going' ? 'Unloading' : 'Live',
      address: '0x' + BigInt.asUintN(64, BigInt(m.text)).toString(16).padStart(16, '0'),
      taints: moduleTaintLetters(m.taints),
    }));
  }

  /** /proc/modules as the kernel prints it */
  procModulesText(): string {
    return (this.procModules() ?? [])
      .map((p) => {
        const users = p.users.length > 0 ? p.users.map((u) => u + ',').join('') : '-';
        return `${p.name} ${p.size} ${p.refcnt} ${users} ${p.state} ${p.address}${p.taints ? ` (${p.taints})` : ''}\n`;
      })
      .join('');
  }

  compression(): string | undefined {
    const d = this.spec().switches.decompress;
    return d === 'none' ? undefined : d;
  }

  readModuleAttr(name: string, attr: string): string | undefined {
    const m = this.module(name);
    if (!m) return undefined;
    switch (attr) {
      case 'initstate':
        return m.state + '\n';
      case 'refcnt':
        return `${moduleRefcount(m) + this.runtimeRefs(this.spec(), m)}\n`;
      case 'coresize':
        return `${m.coresize}\n`;
      case 'initsize':
        return `${m.initsize}\n`;
      case 'taint':
        return moduleTaintLetters(m.taints) + '\n';
      case 'version':
        return m.version !== undefined ? m.version + '\n' : undefined;
      case 'srcversion':
        return m.srcversion !== undefined ? m.srcversion + '\n' : undefined;
    }
    if (attr.startsWith('parameters/')) {
      const p = m.params?.[attr.slice('parameters/'.length)];
      return p?.value !== undefined ? p.value + '\n' : undefined;
    }
    return undefined;
  }

  /** The kernel log, oldest first. */
  kernelLog(): KernelLogRecord[] {
    const out: KernelLogRecord[] = [];
    for (const line of this.store.readKmsg().split('\n')) {
      const m = /^(\d+),(\d+),(\d+),[^;]*;(.*)$/.exec(line);
      if (!m) continue;
      out.push({ level: Number(m[1]), seq: Number(m[2]), usec: Number(m[3]), text: m[4].replace(/\\x0a/g, '\n').replace(/\\\\/g, '\\') });
    }
    return out;
  }

  clearKernelLog(): void {
    this.store.clearKmsg();
  }

  /** Kernel-wide taint letters as /proc/sys/kernel/tainted bits */
  tainted(): number {
    return this.store.current()?.data.g.taint ?? 0;
  }

  /** The loaded modules, newest first. */
  modules(): ModuleRecord[] {
    return this.store.current()?.data.modules ?? [];
  }
}

/** module_refcount(): the holders (each took one reference); run-time references are not simulated */
function moduleRefcount(m: ModuleRecord): number {
  return m.users.length;
}

/**
 * The entry point backend-select uses: `--backend=sim` / KMODTS_BACKEND=sim. The kernel is chosen by
 * KMODTS_SIM_* variables (see kernel-model.ts) or the options; the state directory by
 * settings.simState (--sim-state / KMODTS_SIM_STATE).
 */
export function createSimBackend(settings: { simState?: string } = {}, options: SimBackendOptions = {}): SimBackend {
  const env = options.env ?? process.env;
  const { stateDir, env: _env, comm, onLockWait, onNote, ...explicit } = options;
  void _env;
  const fromEnv = simOptionsFromEnv(env);
  const kernelOpts: SimKernelOptions = { ...fromEnv };
  for (const [k, v] of Object.entries(explicit)) if (v !== undefined) (kernelOpts as Record<string, unknown>)[k] = v;
  const dir = stateDir ?? settings.simState ?? (env.KMODTS_SIM_STATE || undefined) ?? defaultStateDir(env);
  return new SimBackend(dir, kernelOpts, comm, { onLockWait, onNote });
}
