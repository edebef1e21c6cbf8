// The records of the simulated kernel's journal and their validation. Every line read back is checked
// field by field before it is used: a record that parses as JSON but lacks a field or has one of the
// wrong type is damage, reported by the journal reader with the file and line, never a crash later.
import type { KernelSpec } from './kernel-model';

/** One exported symbol of a loaded module (short keys: the journal holds thousands of them). */
export interface ModuleExport {
  n: string;
  /** CRC from __kcrctab; absent when the module has none */
  c?: number;
  /** 1 for EXPORT_SYMBOL_GPL */
  g?: 1;
  /** namespace, absent when none */
  ns?: string;
  /** address */
  v: number;
}

export interface ModuleParamState {
  perm: number;
  value?: string;
}

export type ModuleStateName = 'live' | 'coming' | 'going';

/** A module in the simulated kernel (struct module, as far as userspace can see it). */
export interface ModuleRecord {
  name: string;
  state: ModuleStateName;
  /** modules using this one (source_list), newest first */
  users: string[];
  /** modules this one uses (target_list) */
  uses: string[];
  /** /proc/modules size, coresize and initsize */
  size: number;
  coresize: number;
  initsize: number;
  /** module taint bits (TAINT_* numbers) */
  taints: number;
  /** base of MOD_TEXT (0 when the module has no text) */
  text: number;
  /** allocations [base, size], page-aligned */
  mem: [number, number][];
  /** per-cpu area [base, size], when the module has one */
  percpu?: [number, number];
  init: boolean;
  exit: boolean;
  exports: ModuleExport[];
  version?: string;
  srcversion?: string;
  params?: Record<string, ModuleParamState>;
  /** sections/<name> addresses */
  sections?: Record<string, number>;
  file?: string;
}

/** Kernel-wide facts that change with loads: taints, once-per-boot messages, log sequence. */
export interface KernelGlobals {
  taint: number;
  once: string[];
  /** debug_locks still on (the first "lockdep unreliable" taint turns it off, with a message) */
  debugLocks: boolean;
  lastUnloaded?: string;
  /** next kernel log sequence number */
  seq: number;
}

export interface KernelStateData {
  v: 1;
  spec: KernelSpec;
  /** boot time, ms since the epoch */
  boot: number;
  g: KernelGlobals;
  /** the modules list, newest first */
  modules: ModuleRecord[];
}

/** One journal line. */
export type JournalOp =
  | { op: 'snap'; gen?: string; s: KernelStateData }
  | { op: 'load'; m: ModuleRecord; g: KernelGlobals }
  | { op: 'unload'; name: string; g: KernelGlobals }
  | { op: 'globals'; g: KernelGlobals }
  | { op: 'spec'; spec: KernelSpec };

/**
 * A check returns what is wrong with a value, or undefined when it is fine. The field path is added on
 * the way back up, only for a value that is wrong: the journal holds tens of thousands of fields, and
 * building a path string for each would cost more than checking it.
 */
interface Problem {
  /** ".m.exports[3].n" */
  path: string;
  what: string;
}
type Check = (v: unknown) => Problem | undefined;

const kind = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);
const want = (what: string, v: unknown): Problem => ({ path: '', what: `expected ${what}, found ${kind(v)}` });
const within = (p: Problem, step: string): Problem => ((p.path = step + p.path), p);

const str: Check = (v) => (typeof v === 'string' ? undefined : want('a string', v));
const bool: Check = (v) => (typeof v === 'boolean' ? undefined : want('true or false', v));
/** integral numbers only: addresses and sizes become BigInts and strings of digits */
const int: Check = (v) => (typeof v === 'number' && Number.isInteger(v) ? undefined : want('an integer', v));
const nonNegative: Check = (v) => int(v) ?? ((v as number) >= 0 ? undefined : { path: '', what: `negative (${v as number})` });

function oneOf(...values: (string | number)[]): Check {
  return (v) => (values.includes(v as string | number) ? undefined : { path: '', what: `expected ${values.map((x) => JSON.stringify(x)).join(' or ')}, found ${JSON.stringify(v) ?? kind(v)}` });
}

function arrayOf(item: Check): Check {
  return (v) => {
    if (!Array.isArray(v)) return want('an array', v);
    for (let i = 0; i < v.length; i++) {
      const e = item(v[i]);
      if (e) return within(e, `[${i}]`);
    }
    return undefined;
  };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** values of an object used as a map (module parameters, sections) */
function mapOf(item: Check): Check {
  return (v) => {
    if (!isPlainObject(v)) return want('an object', v);
    for (const k in v) {
      const e = item(v[k]);
      if (e) return within(e, `.${k}`);
    }
    return undefined;
  };
}

/** an object with these fields; a field whose name ends in '?' may be absent. Unknown fields are kept. */
function fields(shape: Record<string, Check>): Check {
  const entries = Object.entries(shape).map(([k, c]) => ({ key: k.replace(/\?$/, ''), optional: k.endsWith('?'), check: c }));
  return (v) => {
    if (!isPlainObject(v)) return want('an object', v);
    for (const f of entries) {
      const x = v[f.key];
      if (x === undefined) {
        if (f.optional) continue;
        return { path: `.${f.key}`, what: 'missing' };
      }
      const e = f.check(x);
      if (e) return within(e, `.${f.key}`);
    }
    return undefined;
  };
}

const pair: Check = (v) => {
  if (!Array.isArray(v) || v.length !== 2) return want('a [base, size] pair', v);
  const e = int(v[0]);
  if (e) return within(e, '[0]');
  const f = nonNegative(v[1]);
  return f ? within(f, '[1]') : undefined;
};

const checkSwitches = fields({
  modversions: bool,
  moduleUnload: bool,
  forceLoad: bool,
  forceUnload: bool,
  decompress: oneOf('xz', 'gzip', 'zstd', 'none'),
  moduleSig: bool,
  sigEnforce: bool,
  lockdown: bool,
  allowMissingNamespaceImports: bool,
  livepatch: bool,
  strictModuleRwx: bool,
  modulesDisabled: bool,
});

const checkSpec = fields({
  release: str,
  arch: oneOf('x86_64', 'arm64'),
  vermagic: str,
  'moduleStructSize?': nonNegative,
  moduleDir: str,
  'symvers?': str,
  'config?': str,
  'vmlinuz?': str,
  'keys?': arrayOf(str),
  switches: checkSwitches,
  moduleBlacklist: arrayOf(str),
  initErrors: mapOf(int),
  'runtimeRefs?': mapOf(nonNegative),
  percpuReserve: nonNegative,
});

const checkGlobals = fields({ taint: nonNegative, once: arrayOf(str), debugLocks: bool, 'lastUnloaded?': str, seq: nonNegative });

const checkExport = fields({ n: str, 'c?': int, 'g?': oneOf(1), 'ns?': str, v: int });

// a struct module's name as the kernel takes it: up to its NUL and not empty (kobject_add_internal refuses
// that); any other byte, a space or a newline included, is the kernel's to take (load-check.ts reads it)
const moduleName: Check = (v) => str(v) ?? ((v as string).length > 0 && !(v as string).includes('\0') ? undefined : { path: '', what: `not a module name: ${JSON.stringify(v)}` });

const checkModule = fields({
  name: moduleName,
  state: oneOf('live', 'coming', 'going'),
  users: arrayOf(moduleName),
  uses: arrayOf(moduleName),
  size: nonNegative,
  coresize: nonNegative,
  initsize: nonNegative,
  taints: nonNegative,
  text: int,
  mem: arrayOf(pair),
  'percpu?': pair,
  init: bool,
  exit: bool,
  exports: arrayOf(checkExport),
  'version?': str,
  'srcversion?': str,
  'params?': mapOf(fields({ perm: nonNegative, 'value?': str })),
  'sections?': mapOf(int),
  'file?': str,
});

const checkStateData = fields({ v: oneOf(1), spec: checkSpec, boot: int, g: checkGlobals, modules: arrayOf(checkModule) });

const opChecks: Record<JournalOp['op'], Check> = {
  snap: fields({ 'gen?': str, s: checkStateData }),
  load: fields({ m: checkModule, g: checkGlobals }),
  unload: fields({ name: moduleName, g: checkGlobals }),
  globals: fields({ g: checkGlobals }),
  spec: fields({ spec: checkSpec }),
};

/** What is wrong with a parsed journal line as a record, or undefined when it is a valid JournalOp. */
export function journalOpProblem(v: unknown): string | undefined {
  if (!isPlainObject(v)) return `not a record (${kind(v)})`;
  const op = v.op;
  if (typeof op !== 'string' || !Object.prototype.hasOwnProperty.call(opChecks, op)) return `unknown operation ${op === undefined ? '(none)' : JSON.stringify(op)}`;
  const p = opChecks[op as JournalOp['op']](v);
  return p ? `${p.path.replace(/^\./, '') || 'record'}: ${p.what}` : undefined;
}

/**
 * Cross-references of a whole module list: names unique, and every "uses" link mirrored by a "users"
 * link on the other side (holders consistent with users). Returns what is wrong, or undefined.
 */
export function moduleListProblem(modules: ModuleRecord[]): string | undefined {
  const byName = new Map<string, ModuleRecord>();
  for (const m of modules) {
    if (byName.has(m.name)) return `module ${m.name} listed twice`;
    byName.set(m.name, m);
  }
  for (const m of modules) {
    if (new Set(m.users).size !== m.users.length) return `module ${m.name}: a user listed twice`;
    if (new Set(m.uses).size !== m.uses.length) return `module ${m.name}: a dependency listed twice`;
    for (const u of m.users) {
      const user = byName.get(u);
      if (!user) return `module ${m.name}: user ${u} is not loaded`;
      if (!user.uses.includes(m.name)) return `module ${m.name}: user ${u} does not use it`;
    }
    for (const t of m.uses) {
      const target = byName.get(t);
      if (!target) return `module ${m.name}: uses ${t}, which is not loaded`;
      if (!target.users.includes(m.name)) return `module ${m.name}: uses ${t}, which does not list it as a user`;
    }
  }
  return undefined;
}
