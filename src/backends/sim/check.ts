// "Would these modules load on that kernel?" Each module — a name or alias of the kernel's module tree, or a
// module file built elsewhere (out of tree, DKMS) — is loaded with everything it needs into a freshly booted
// simulated kernel (src/backends/sim) built from the tree and its Module.symvers, the way modprobe loads it.
// The result says which modules went in, or which one failed and why, in terms a person can act on
// (a missing symbol, a symbol version (CRC) that disagrees, another kernel's version magic, a namespace not
// imported, a GPL-only symbol used under another licence, ...), with the simulated kernel's log lines.
import * as fs from '../../file/binary-os';
import { binaryFromUtf8 } from '../../file/binary-os';
import * as os from 'node:os';
import * as path from 'node:path';
import { Context, LOG_ERR, type LogFn } from '../../resolution/context';
import { ENOENT, strerror } from '../../errno';
import { KmodError } from '../../errors';
import type { Module } from '../../resolution/module';
import { modnameFromPath } from '../../names/modname';
import { readBinaryString } from '../../file/read-text';

export type CheckReason =
  | 'not-found'
  | 'unknown-symbol'
  | 'gpl-only'
  | 'symbol-version'
  | 'no-symbol-version'
  | 'vermagic'
  | 'namespace'
  | 'bad-parameter'
  | 'invalid-module'
  | 'signature'
  | 'duplicate-export'
  | 'already-loaded'
  | 'missing-module'
  | 'blacklisted'
  | 'other';

/** One thing wrong with a module, as the kernel (or modprobe) saw it. */
export interface CheckProblem {
  reason: CheckReason;
  /** the symbol concerned (symbol reasons) */
  symbol?: string;
  /** one sentence for people */
  detail: string;
}

export interface CheckFailure {
  /** the module that did not load: the one checked, or a module it needs */
  module: string;
  /** the error the load ended with */
  errno: number;
  error: string;
  problems: CheckProblem[];
}

export interface CheckResult {
  /** the module name, alias or file as given */
  target: string;
  /** the modules it resolved to */
  modules: string[];
  ok: boolean;
  /** modules loaded into the simulated kernel, in load order (up to the failure) */
  loaded: string[];
  /** modules it needs that are built into the kernel */
  builtin: string[];
  /** modules the configuration's install commands stand in for (not run: they would run on this machine) */
  installCommands: string[];
  failure?: CheckFailure;
  /** everything the simulated kernel logged during the load */
  kernelLog: string[];
  /** the kernel's taint letters afterwards (e.g. "OE"): what loading it would do to the kernel */
  taints: string;
}

export interface CheckKernel {
  /** the root of the kernel's files (modules in <root>/lib/modules/<version>); default / */
  root?: string;
  /** the kernel version; default: the only one in <root>/lib/modules, else the running kernel's */
  kernelVersion?: string;
  /** the kernel's Module.symvers; default: found where distributions keep it */
  symvers?: string;
  /** modprobe.d configuration to apply; default: none (only the tree's own soft dependencies) */
  configPaths?: string[];
}

export interface CheckSession {
  /** the kernel version checked against */
  kernelVersion: string;
  moduleDirectory: string;
  /** the vermagic and Module.symvers of the simulated kernel */
  vermagic: string;
  symvers: string;
  check(target: string): CheckResult;
  /** every module name of the tree, in modules.dep order */
  allModules(): string[];
  close(): void;
}

/** The kernel version when none is given: the only directory of <root>/lib/modules, else uname -r. */
export function defaultKernelVersion(root: string | undefined): string {
  try {
    const dirs = fs.readdirSync(`${root ?? ''}/lib/modules`, { withFileTypes: true }).filter((d) => d.isDirectory() || d.isSymbolicLink());
    if (dirs.length === 1) return dirs[0].name;
  } catch {
    // no module directory: fall through
  }
  return os.release();
}

const MODULE_FILE = /\.ko(\.gz|\.xz|\.zst)?$/;

/** Whether a target names a module file rather than a module of the tree. */
export function isModuleFileTarget(target: string): boolean {
  return target.includes('/') || MODULE_FILE.test(target);
}

interface SimLike {
  reboot(): void;
  spec(): { release: string; vermagic: string; symvers?: string; moduleDir: string };
  kernelLog(): { text: string }[];
  tainted(): number;
  modules(): { name: string; exports: { n: string; c?: number; g?: 1 }[]; taints: number }[];
}

/** taint letters in the kernel's order (P F C O E K X T N, and R U among the global ones) */
const TAINT_LETTERS: [number, string][] = [
  [0, 'P'], [1, 'F'], [3, 'R'], [6, 'U'], [10, 'C'], [12, 'O'], [13, 'E'], [15, 'K'], [16, 'X'], [17, 'T'], [18, 'N'],
];

function taintLetters(bits: number): string {
  return TAINT_LETTERS.filter(([b]) => bits & (1 << b)).map(([, l]) => l).join('');
}

/** what module_sig_check and lockdown fail with: EPERM, ENOPKG, EBADMSG, ENOKEY, EKEYREJECTED */
const SIGNATURE_ERRNOS = [1, 65, 74, 126, 129];

const GPL_COMPATIBLE = ['GPL', 'GPL v2', 'GPL and additional rights', 'Dual BSD/GPL', 'Dual MIT/GPL', 'Dual MPL/GPL'];

/**
 * Opens a check session: one simulated kernel (rebooted for every module checked) for the tree of
 * `kernel`. Throws KmodError when the kernel cannot be simulated (no module directory, no Module.symvers).
 */
export function openCheckSession(kernel: CheckKernel): CheckSession {
  const kernelVersion = kernel.kernelVersion ?? defaultKernelVersion(kernel.root);
  const stateDir = fs.mkdtempSync(path.join(binaryFromUtf8(os.tmpdir()), 'kmodts-check-'));
  const { createSimBackend } = require('./index') as typeof import('./index');
  const sim = createSimBackend({}, {
    stateDir,
    env: {},
    root: kernel.root,
    kernelVersion,
    ...(kernel.symvers !== undefined ? { symvers: kernel.symvers } : {}),
    comm: 'modprobe',
  });
  const simView = sim as unknown as SimLike;
  const spec = simView.spec();
  const close = (): void => {
    fs.rmSync(stateDir, { recursive: true, force: true });
  };
  if (!fs.existsSync(spec.moduleDir)) {
    close();
    throw new KmodError(ENOENT, `no module directory ${spec.moduleDir}`, { file: spec.moduleDir });
  }
  if (spec.symvers === undefined) {
    close();
    throw new KmodError(
      ENOENT,
      `no Module.symvers for kernel ${kernelVersion} (looked in ${spec.moduleDir}/build, ${kernel.root ?? ''}/boot and ${kernel.root ?? ''}/usr/src/linux-headers-${kernelVersion}); give one with -E`,
    );
  }
  const libkmodLog: string[] = [];
  const log: LogFn = (prio, _fn, msg) => {
    if (prio <= LOG_ERR) libkmodLog.push(msg.replace(/\n$/, ''));
  };
  const ctx = new Context({ root: kernel.root, kernelVersion, configPaths: kernel.configPaths ?? [], log, backend: sim });
  ctx.loadResources();

  const check = (target: string): CheckResult => {
    sim.reboot();
    libkmodLog.length = 0;
    const result: CheckResult = { target, modules: [], ok: false, loaded: [], builtin: [], installCommands: [], kernelLog: [], taints: '' };
    const loader = new Loader(ctx, simView, result, libkmodLog);
    loader.run(target);
    const log = simView.kernelLog().map((r) => r.text);
    result.kernelLog = log.filter((l) => !l.startsWith('Linux version '));
    result.loaded = simView.modules().map((m) => m.name).reverse();
    result.taints = taintLetters(simView.tainted());
    if (result.failure !== undefined) result.failure.problems = loader.explain(result.failure, result.kernelLog);
    result.ok = result.failure === undefined;
    return result;
  };

  const allModules = (): string[] => {
    const dep = path.join(ctx.dirname, 'modules.dep');
    let text = '';
    try {
      text = readBinaryString(dep);
    } catch (err) {
      throw new KmodError(ENOENT, `cannot read ${dep}`, { file: dep, cause: err });
    }
    return text
      .split('\n')
      .filter((l) => l.includes(':'))
      .map((l) => modnameFromPath(l.slice(0, l.indexOf(':'))))
      .filter((n): n is string => n !== null);
  };

  return { kernelVersion, moduleDirectory: ctx.dirname, vermagic: spec.vermagic, symvers: spec.symvers, check, allModules, close };
}

/** Loads one target into the (freshly booted) simulated kernel, recording the failure. */
class Loader {
  private current: Module | undefined;

  constructor(
    private ctx: Context,
    private readonly sim: SimLike,
    private readonly result: CheckResult,
    private readonly libkmodLog: string[],
  ) {}

  private fail(module: string, errno: number, problems: CheckProblem[] = []): void {
    this.result.failure ??= { module, errno, error: strerror(errno), problems };
  }

  run(target: string): void {
    if (isModuleFileTarget(target)) this.runFile(target);
    else this.runName(target);
  }

  private runName(name: string): void {
    let mods: Module[];
    try {
      mods = this.ctx.lookup(name);
    } catch (err) {
      if (!(err instanceof KmodError)) throw err;
      mods = [];
    }
    if (mods.length === 0) {
      this.fail(name, ENOENT, [{ reason: 'not-found', detail: `no module or alias ${name} in ${this.ctx.dirname}` }]);
      return;
    }
    this.result.modules = mods.map((m) => m.name);
    for (const m of mods) if (!this.probe(m)) return;
  }

  private runFile(file: string): void {
    let mod: Module;
    let imports: string[];
    // a context of its own: the tree may have a module of the same name (the file replaces it, DKMS-style)
    this.ctx = new Context(this.ctx.options);
    try {
      mod = this.ctx.moduleFromPath(path.resolve(file));
    } catch (err) {
      if (!(err instanceof KmodError)) throw err;
      this.fail(path.basename(file), err.errno, [{ reason: 'not-found', detail: `cannot read ${file}: ${strerror(err.errno)}` }]);
      return;
    }
    try {
      const { openModuleFile } = require('../../file/module-file') as typeof import('../../file/module-file');
      imports = openModuleFile(mod.path!, { log: this.ctx.log }).dependencySymbols().map((s) => s.symbol);
    } catch (err) {
      if (!(err instanceof KmodError)) throw err;
      // unreadable here: let the kernel say what it makes of it
      imports = [];
    }
    this.result.modules = [mod.name];
    // the modules of the tree that export what the file needs, as depmod would find them
    const providers: Module[] = [];
    for (const sym of imports) {
      let found: Module[] = [];
      try {
        found = this.ctx.lookup(`symbol:${sym}`);
      } catch (err) {
        if (!(err instanceof KmodError)) throw err;
      }
      for (const p of found) if (p.name !== mod.name && !providers.includes(p)) providers.push(p);
    }
    for (const p of providers) if (!this.probe(p)) return;
    this.insert(mod, '');
  }

  /** modprobe's load of one module with its dependencies and soft dependencies; false on failure */
  private probe(m: Module): boolean {
    const { probeInsertModule, PROBE_APPLY_BLACKLIST_ALIAS_ONLY } = require('../../resolution/probe') as typeof import('../../resolution/probe');
    const { probePlan } = require('../../resolution/plan') as typeof import('../../resolution/plan');
    // the kernel has these already: modprobe skips them without a word
    for (const s of probePlan(m).steps) if (s.action === 'builtin' && !this.result.builtin.includes(s.module)) this.result.builtin.push(s.module);
    const err = probeInsertModule(m, PROBE_APPLY_BLACKLIST_ALIAS_ONLY, undefined, {
      printAction: (step, install) => {
        this.current = step;
        if (install && !this.result.installCommands.includes(step.name)) this.result.installCommands.push(step.name);
      },
      // install commands of a -C configuration are not run: they would run on this machine
      runCommand: () => 0,
    });
    if (err > 0) {
      this.fail(m.name, 0, [{ reason: 'blacklisted', detail: `${m.name} is blacklisted and was asked for through an alias` }]);
      return false;
    }
    if (err < 0) {
      this.fail(this.current?.name ?? m.name, -err);
      return false;
    }
    return true;
  }

  private insert(m: Module, options: string): boolean {
    const { insertModule } = require('../../loading/insert') as typeof import('../../loading/insert');
    this.current = m;
    const err = insertModule(this.ctx, m, options, 0);
    if (err < 0) {
      this.fail(m.name, -err);
      return false;
    }
    return true;
  }

  /** The problems behind a failure, from the kernel's log lines about the failed module. */
  explain(failure: CheckFailure, log: string[]): CheckProblem[] {
    if (failure.problems.length > 0) return failure.problems;
    const name = failure.module;
    const problems: CheckProblem[] = [];
    const seen = new Set<string>();
    const add = (p: CheckProblem): void => {
      const key = `${p.reason}\0${p.symbol ?? ''}`;
      if (!seen.has(key)) {
        seen.add(key);
        problems.push(p);
      }
    };
    const mod = this.ctx.moduleFromName(name);
    let m: RegExpExecArray | null;
    for (const line of log) {
      if ((m = /^(\S+): disagrees about version of symbol (\S+)$/.exec(line))) {
        add({ reason: 'symbol-version', symbol: m[2], detail: `${m[1]} was built against another version of ${m[2]}${this.crcs(mod, m[2])}` });
      } else if ((m = /^(\S+): no symbol version for (\S+)$/.exec(line))) {
        add({ reason: 'no-symbol-version', symbol: m[2], detail: `${m[1]} has no symbol version (CRC) for ${m[2]}, which this kernel requires` });
      } else if ((m = /^(\S+): version magic '(.*)' should be '(.*)'$/.exec(line))) {
        add({ reason: 'vermagic', detail: `${m[1]} was built for another kernel: version magic '${m[2]}', this kernel has '${m[3]}'` });
      } else if ((m = /^(\S+): module uses symbol \((\S+)\) from namespace (\S+), but does not import it\.$/.exec(line))) {
        add({ reason: 'namespace', symbol: m[2], detail: `${m[1]} uses ${m[2]} from namespace ${m[3]} without importing it (MODULE_IMPORT_NS)` });
      } else if ((m = /^(\S+): Unknown symbol (\S+) \(err (-?\d+)\)$/.exec(line))) {
        if (Number(m[3]) !== -ENOENT) continue; // -EINVAL: explained by a line above (version, namespace)
        add(this.unknownSymbol(m[1], m[2], mod));
      } else if ((m = /^(\S+): `(.*)' (invalid|too large) for parameter `(.*)'$/.exec(line))) {
        add({ reason: 'bad-parameter', detail: `${m[1]}: value '${m[2]}' is ${m[3] === 'invalid' ? 'not valid' : 'too large'} for parameter ${m[4]}` });
      } else if ((m = /^(\S+): exports duplicate symbol (\S+) \(owned by (\S+)\)$/.exec(line))) {
        add({ reason: 'duplicate-export', symbol: m[2], detail: `${m[1]} exports ${m[2]}, which ${m[3]} already exports` });
      } else if ((m = /^(\S+): module is already loaded$/.exec(line))) {
        add({ reason: 'already-loaded', detail: `a module named ${m[1]} is already in the kernel (built in)` });
      } else if (/^Invalid ELF|^ELF Spec violation|invalid section index|REL relocation unsupported|outside its section|overflow in relocation|^module: x86\/modules/.test(line)) {
        add({ reason: 'invalid-module', detail: line });
      } else if (/signature|PKCS#7|Loading of .* is rejected|Lockdown/.test(line) && SIGNATURE_ERRNOS.includes(failure.errno)) {
        add({ reason: 'signature', detail: line });
      }
    }
    for (const l of this.libkmodLog) {
      if ((m = /^could not find module by name='(.*)'$/.exec(l))) add({ reason: 'missing-module', detail: `${m[1]} is needed but the tree has no file for it` });
    }
    if (problems.length === 0) add({ reason: 'other', detail: `${name}: ${failure.error}${log.length ? ` (${log[log.length - 1]})` : ''}` });
    return problems;
  }

  /** ": CRC 0x… in the module, 0x… in <exporter>" when both are known */
  private crcs(mod: Module, symbol: string): string {
    const hex = (n: number | bigint): string => `0x${n.toString(16).padStart(8, '0')}`;
    let mine: bigint | undefined;
    try {
      const { openModuleFile } = require('../../file/module-file') as typeof import('../../file/module-file');
      if (mod.path !== undefined) mine = openModuleFile(mod.path).versions().find((v) => v.symbol === symbol)?.crc;
    } catch {
      return '';
    }
    let theirs: [number, string] | undefined;
    for (const m of this.sim.modules()) {
      const e = m.exports.find((x) => x.n === symbol);
      if (e !== undefined && e.c !== undefined) theirs = [e.c, m.name];
    }
    const spec = this.sim.spec();
    if (theirs === undefined && spec.symvers !== undefined) {
      const { loadKernelSymbols } = require('./kernel-model') as typeof import('./kernel-model');
      const k = loadKernelSymbols(spec.symvers);
      const e = k.plain.get(symbol) ?? k.gpl.get(symbol);
      if (e?.crc !== undefined) theirs = [e.crc, 'the kernel'];
    }
    if (mine === undefined || theirs === undefined) return '';
    return `: CRC ${hex(mine)} in the module, ${hex(theirs[0])} in ${theirs[1]}`;
  }

  /** An unknown symbol: GPL-only under a non-GPL licence, or exported by nobody. */
  private unknownSymbol(modName: string, symbol: string, mod: Module): CheckProblem {
    const license = this.licenseOf(mod);
    const gplOnly = this.isGplOnlyExport(symbol);
    if (gplOnly !== undefined && license !== undefined && !GPL_COMPATIBLE.includes(license)) {
      return {
        reason: 'gpl-only',
        symbol,
        detail: `${modName} uses ${symbol}, exported GPL-only by ${gplOnly}, but its licence '${license}' is not GPL-compatible`,
      };
    }
    return { reason: 'unknown-symbol', symbol, detail: `${modName} needs ${symbol}, which neither the kernel nor any module of the tree exports` };
  }

  private licenseOf(mod: Module): string | undefined {
    try {
      const { moduleInfo } = require('../../resolution/modinfo') as typeof import('../../resolution/modinfo');
      const lic = moduleInfo(mod, this.ctx).find(([k]) => k === 'license');
      return lic === undefined ? 'unspecified' : lic[1];
    } catch {
      return undefined;
    }
  }

  /** Who exports `symbol` GPL-only: "the kernel", a loaded module's name, or undefined. */
  private isGplOnlyExport(symbol: string): string | undefined {
    for (const m of this.sim.modules()) if (m.exports.some((e) => e.n === symbol && e.g === 1)) return m.name;
    const spec = this.sim.spec();
    if (spec.symvers !== undefined) {
      const { loadKernelSymbols } = require('./kernel-model') as typeof import('./kernel-model');
      if (loadKernelSymbols(spec.symvers).gpl.has(symbol)) return 'the kernel';
    }
    return undefined;
  }
}
