// The simulated kernel's fixed facts: release, vermagic, architecture, the configuration switches that
// change the module loader's behaviour, vmlinux's exported symbols (Module.symvers) and the built-in
// modules. Discovered where a real system keeps them; every item can be given explicitly.
import * as fs from '../../file/binary-os';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { KmodError, SimKernelModelError } from '../../errors';
import { ENOENT, errnoOf, strerror } from '../../errno';
import { modnameFromPath } from '../../names/modname';
import { ElfImage, SHT_NOBITS } from './elf-image';
import { unpackModuleFile } from './unpack';
import { readBinaryString } from '../../file/read-text';

export type SimArch = 'x86_64' | 'arm64';

/** Loader switches of the kernel configuration (CONFIG_*), plus boot-time knobs. */
export interface KernelSwitches {
  modversions: boolean;
  moduleUnload: boolean;
  forceLoad: boolean;
  forceUnload: boolean;
  /** CONFIG_MODULE_DECOMPRESS with its algorithm, or 'none' */
  decompress: 'xz' | 'gzip' | 'zstd' | 'none';
  moduleSig: boolean;
  /** CONFIG_MODULE_SIG_FORCE or module.sig_enforce=1 */
  sigEnforce: boolean;
  /** lockdown active (e.g. Secure Boot with LOCK_DOWN_IN_EFI_SECURE_BOOT) */
  lockdown: boolean;
  allowMissingNamespaceImports: boolean;
  livepatch: boolean;
  strictModuleRwx: boolean;
  /** /proc/sys/kernel/modules_disabled */
  modulesDisabled: boolean;
}

/** What the simulated kernel was booted with (saved in the state; a change means a reboot). */
export interface KernelSpec {
  release: string;
  arch: SimArch;
  vermagic: string;
  /** sizeof(struct module): the required size of .gnu.linkonce.this_module, undefined = unchecked */
  moduleStructSize?: number;
  moduleDir: string;
  symvers?: string;
  config?: string;
  /** kernel image whose built-in certificates verify module signatures */
  vmlinuz?: string;
  /** certificate files (PEM or DER) trusted instead of the image's */
  keys?: string[];
  switches: KernelSwitches;
  /** module_blacklist= boot parameter */
  moduleBlacklist: string[];
  /** modules whose init() returns this errno (what static analysis cannot know) */
  initErrors: Record<string, number>;
  /** references modules hold at run time (taken by their init or by users), which holders do not show */
  runtimeRefs?: Record<string, number>;
  /** bytes of the reserved per-cpu area shared by all modules (PERCPU_MODULE_RESERVE) */
  percpuReserve: number;
}

/** Explicit choices; anything left out is discovered. */
export interface SimKernelOptions {
  /** prefix for /lib/modules and /boot (like kmod's -d) */
  root?: string;
  kernelVersion?: string;
  moduleDir?: string;
  symvers?: string;
  config?: string;
  vmlinuz?: string;
  keys?: string[];
  vermagic?: string;
  arch?: SimArch;
  moduleStructSize?: number;
  /** CONFIG_ names set to y/n (or module.sig_enforce style knobs) over the discovered configuration */
  configOverrides?: Record<string, boolean | string>;
  sigEnforce?: boolean;
  lockdown?: boolean;
  modulesDisabled?: boolean;
  moduleBlacklist?: string[];
  initErrors?: Record<string, number>;
  runtimeRefs?: Record<string, number>;
  percpuReserve?: number;
}

/**
 * What a per-module setting (KMODTS_SIM_INIT_ERRORS, KMODTS_SIM_REFS) says for this module, under its
 * name or with '-' for '_'; a module named after an Object method (`constructor`) gets nothing.
 */
export function moduleSetting(settings: Readonly<Record<string, number>> | undefined, name: string): number | undefined {
  if (settings === undefined) return undefined;
  for (const key of [name, name.replace(/_/g, '-')]) if (Object.hasOwn(settings, key)) return settings[key];
  return undefined;
}

/**
 * The environment variables that choose the simulated kernel (documented in docs/compat.md):
 * KMODTS_SIM_ROOT, KMODTS_SIM_KVER, KMODTS_SIM_MODDIR, KMODTS_SIM_SYMVERS, KMODTS_SIM_CONFIG,
 * KMODTS_SIM_VERMAGIC, KMODTS_SIM_VMLINUZ, KMODTS_SIM_KEYS ("a.pem,b.der"), KMODTS_SIM_ARCH, KMODTS_SIM_SET ("CONFIG_A=y,CONFIG_B=n"), KMODTS_SIM_SIG_ENFORCE,
 * KMODTS_SIM_LOCKDOWN, KMODTS_SIM_MODULES_DISABLED, KMODTS_SIM_MODULE_BLACKLIST ("a,b"),
 * KMODTS_SIM_INIT_ERRORS ("mod=19,other=22"), KMODTS_SIM_REFS ("mod=1"), KMODTS_SIM_PERCPU_RESERVE (bytes).
 */
export function simOptionsFromEnv(env: NodeJS.ProcessEnv): SimKernelOptions {
  const o: SimKernelOptions = {};
  const str = (k: string): string | undefined => (env[k] !== undefined && env[k] !== '' ? env[k] : undefined);
  const flag = (k: string): boolean | undefined => {
    const v = str(k);
    return v === undefined ? undefined : !/^(0|n|no|false)$/i.test(v);
  };
  o.root = str('KMODTS_SIM_ROOT');
  o.kernelVersion = str('KMODTS_SIM_KVER');
  o.moduleDir = str('KMODTS_SIM_MODDIR');
  o.symvers = str('KMODTS_SIM_SYMVERS');
  o.config = str('KMODTS_SIM_CONFIG');
  o.vermagic = str('KMODTS_SIM_VERMAGIC');
  o.vmlinuz = str('KMODTS_SIM_VMLINUZ');
  const keys = str('KMODTS_SIM_KEYS');
  if (keys !== undefined) o.keys = keys.split(',').filter((k) => k !== '');
  const arch = str('KMODTS_SIM_ARCH');
  if (arch === 'x86_64' || arch === 'arm64') o.arch = arch;
  const set = str('KMODTS_SIM_SET');
  if (set !== undefined) {
    o.configOverrides = {};
    for (const item of set.split(',')) {
      const m = /^\s*(CONFIG_[A-Za-z0-9_]+)=(.*?)\s*$/.exec(item);
      if (m) o.configOverrides[m[1]] = m[2] === 'y' ? true : m[2] === 'n' ? false : m[2];
    }
  }
  o.sigEnforce = flag('KMODTS_SIM_SIG_ENFORCE');
  o.lockdown = flag('KMODTS_SIM_LOCKDOWN');
  o.modulesDisabled = flag('KMODTS_SIM_MODULES_DISABLED');
  const bl = str('KMODTS_SIM_MODULE_BLACKLIST');
  if (bl !== undefined) o.moduleBlacklist = bl.split(',').filter((s) => s !== '');
  const ie = str('KMODTS_SIM_INIT_ERRORS');
  if (ie !== undefined) {
    o.initErrors = {};
    for (const item of ie.split(',')) {
      const m = /^\s*([^=\s]+)=(-?\d+)\s*$/.exec(item);
      if (m) o.initErrors[m[1]] = Math.abs(Number(m[2]));
    }
  }
  const refs = str('KMODTS_SIM_REFS');
  if (refs !== undefined) {
    o.runtimeRefs = {};
    for (const item of refs.split(',')) {
      const m = /^\s*([^=\s]+)=(\d+)\s*$/.exec(item);
      if (m) o.runtimeRefs[m[1]] = Number(m[2]);
    }
  }
  const pr = str('KMODTS_SIM_PERCPU_RESERVE');
  if (pr !== undefined && /^\d+$/.test(pr)) o.percpuReserve = Number(pr);
  for (const k of Object.keys(o) as (keyof SimKernelOptions)[]) if (o[k] === undefined) delete o[k];
  return o;
}

function exists(p: string): boolean {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

/** Parses a kernel .config into name → value ('y', 'm', a string, or absent). */
export function parseKernelConfig(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (line.startsWith('CONFIG_') && eq > 0) {
      let v = line.slice(eq + 1);
      if (v.startsWith('"') && v.endsWith('"') && v.length >= 2) v = v.slice(1, -1);
      m.set(line.slice(0, eq), v);
    }
  }
  return m;
}

function readMaybeGz(file: string): string {
  const raw = fs.readFileSync(file);
  return (raw[0] === 0x1f && raw[1] === 0x8b ? zlib.gunzipSync(raw) : raw).toString('latin1');
}

/** The vermagic the kernel builds from its configuration (include/linux/vermagic.h). */
export function composeVermagic(release: string, cfg: Map<string, string>, arch: SimArch): string {
  let s = release + ' ';
  if (cfg.get('CONFIG_SMP') === 'y') s += 'SMP ';
  if (cfg.get('CONFIG_PREEMPT_RT') === 'y') s += 'preempt_rt ';
  else if (cfg.get('CONFIG_PREEMPT_BUILD') === 'y') s += 'preempt ';
  if (cfg.get('CONFIG_MODULE_UNLOAD') === 'y') s += 'mod_unload ';
  if (cfg.get('CONFIG_MODVERSIONS') === 'y') s += 'modversions ';
  if (arch === 'arm64') s += 'aarch64';
  return s;
}

/** vermagic, architecture and struct module size of one module of the tree (the tree's own build). */
function probeTreeModule(moduleDir: string): { vermagic?: string; arch?: SimArch; structSize?: number } {
  let dep: string;
  try {
    dep = readBinaryString(path.join(moduleDir, 'modules.dep'));
  } catch {
    return {};
  }
  const first = /^([^:\n]+):/m.exec(dep);
  if (!first) return {};
  const file = first[1].startsWith('/') ? first[1] : path.join(moduleDir, first[1]);
  try {
    const img = new ElfImage(unpackModuleFile(fs.readFileSync(file)));
    const shoff = img.u64(0x28);
    const shnum = img.u16(0x3c);
    const shstr = img.shdr(shoff, img.u16(0x3e));
    const out: { vermagic?: string; arch?: SimArch; structSize?: number } = {};
    const machine = img.u16(18);
    out.arch = machine === 183 ? 'arm64' : 'x86_64';
    for (let i = 1; i < shnum; i++) {
      const s = img.shdr(shoff, i);
      const name = img.cstr(shstr.offset + s.name);
      if (name === '.gnu.linkonce.this_module' && s.type !== SHT_NOBITS) out.structSize = s.size;
      if (name === '.modinfo') {
        const text = Buffer.from(img.bytes.subarray(s.offset, s.offset + s.size)).toString('latin1');
        const vm = /(?:^|\0)vermagic=([^\0]*)/.exec(text);
        if (vm) out.vermagic = vm[1];
      }
    }
    return out;
  } catch {
    return {};
  }
}

/** Where a kernel's Module.symvers is looked for, in order. */
export function symversCandidates(root: string, moduleDir: string, release: string): string[] {
  return [`${moduleDir}/build/Module.symvers`, `${root}/boot/symvers-${release}.gz`, `${root}/usr/src/linux-headers-${release}/Module.symvers`];
}

/**
 * The one line that says a simulated kernel has no symbol table (it was booted without a
 * Module.symvers, so it exports only what the tree's modules import): where it looked, and the
 * setting that fixes it. Undefined when the kernel has one.
 */
export function missingSymbolTableNote(spec: KernelSpec): string | undefined {
  if (spec.symvers !== undefined) return undefined;
  const suffix = `/lib/modules/${spec.release}`;
  const root = spec.moduleDir.endsWith(suffix) ? spec.moduleDir.slice(0, -suffix.length) : undefined;
  const looked = root !== undefined ? symversCandidates(root, spec.moduleDir, spec.release) : [`${spec.moduleDir}/build/Module.symvers`];
  return (
    `the simulated kernel ${spec.release} has no symbol table (no Module.symvers at ${looked.join(', ')}), ` +
    "so it exports only the symbols its module tree's modules import; set KMODTS_SIM_SYMVERS to the kernel's Module.symvers"
  );
}

/** Files named explicitly must be there: a missing one is the simulated kernel's own failure. */
function checkModelFiles(opts: SimKernelOptions): void {
  const named: [string, string, string | undefined][] = [
    ['moduleDir', 'module directory', opts.moduleDir],
    ['symvers', 'Module.symvers', opts.symvers],
    ['config', 'configuration', opts.config],
    ['vmlinuz', 'image', opts.vmlinuz],
    ...(opts.keys ?? []).map((k): [string, string, string] => ['keys', 'signing key', k]),
  ];
  for (const [option, what, file] of named) {
    if (file === undefined) continue;
    try {
      fs.accessSync(file, fs.constants.R_OK);
    } catch (err) {
      throw new SimKernelModelError(option, what, file, strerror(errnoOf(err)), { cause: err });
    }
  }
}

/** Works out what to boot from explicit options and the files of a real system. */
export function resolveKernelSpec(opts: SimKernelOptions): KernelSpec {
  checkModelFiles(opts);
  const root = opts.root ?? '';
  const release = opts.kernelVersion ?? os.release();
  const moduleDir = opts.moduleDir ?? `${root}/lib/modules/${release}`;
  const symvers = opts.symvers ?? symversCandidates(root, moduleDir, release).find(exists);
  const config = opts.config ?? [`${root}/boot/config-${release}`, `${moduleDir}/build/.config`].find(exists);
  const vmlinuz = opts.vmlinuz ?? [`${root}/boot/vmlinuz-${release}`].find(exists);
  const cfg = config !== undefined ? parseKernelConfig(readMaybeGz(config)) : debianDefaults();
  for (const [k, v] of Object.entries(opts.configOverrides ?? {})) {
    if (v === false) cfg.delete(k);
    else cfg.set(k, v === true ? 'y' : v);
  }
  const probe = opts.vermagic === undefined || opts.arch === undefined || opts.moduleStructSize === undefined ? probeTreeModule(moduleDir) : {};
  const arch: SimArch = opts.arch ?? probe.arch ?? (cfg.get('CONFIG_ARM64') === 'y' ? 'arm64' : cfg.get('CONFIG_X86_64') === 'y' ? 'x86_64' : process.arch === 'arm64' ? 'arm64' : 'x86_64');
  // the tree's own vermagic names the release it was built for; a different release is a different kernel
  const treeMagic = probe.vermagic !== undefined && probe.vermagic.split(' ')[0] === release ? probe.vermagic : undefined;
  // the configuration says what the kernel was built with; a module of the tree is only a witness
  const vermagic = opts.vermagic ?? (config !== undefined ? composeVermagic(release, cfg, arch) : undefined) ?? treeMagic ?? composeVermagic(release, cfg, arch);
  const y = (k: string): boolean => cfg.get(k) === 'y';
  const decompress = !y('CONFIG_MODULE_DECOMPRESS')
    ? 'none'
    : y('CONFIG_MODULE_COMPRESS_XZ')
      ? 'xz'
      : y('CONFIG_MODULE_COMPRESS_ZSTD')
        ? 'zstd'
        : y('CONFIG_MODULE_COMPRESS_GZIP')
          ? 'gzip'
          : 'none';
  const switches: KernelSwitches = {
    modversions: y('CONFIG_MODVERSIONS'),
    moduleUnload: y('CONFIG_MODULE_UNLOAD'),
    forceLoad: y('CONFIG_MODULE_FORCE_LOAD'),
    forceUnload: y('CONFIG_MODULE_FORCE_UNLOAD'),
    decompress,
    moduleSig: y('CONFIG_MODULE_SIG'),
    sigEnforce: opts.sigEnforce ?? y('CONFIG_MODULE_SIG_FORCE'),
    lockdown: opts.lockdown ?? (y('CONFIG_LOCK_DOWN_KERNEL_FORCE_INTEGRITY') || y('CONFIG_LOCK_DOWN_KERNEL_FORCE_CONFIDENTIALITY')),
    allowMissingNamespaceImports: y('CONFIG_MODULE_ALLOW_MISSING_NAMESPACE_IMPORTS'),
    livepatch: y('CONFIG_LIVEPATCH'),
    strictModuleRwx: y('CONFIG_STRICT_MODULE_RWX'),
    modulesDisabled: opts.modulesDisabled ?? false,
  };
  return {
    release,
    arch,
    vermagic,
    moduleStructSize: opts.moduleStructSize ?? probe.structSize,
    moduleDir,
    symvers,
    config,
    ...(vmlinuz !== undefined ? { vmlinuz } : {}),
    ...(opts.keys !== undefined ? { keys: opts.keys } : {}),
    switches,
    moduleBlacklist: opts.moduleBlacklist ?? [],
    initErrors: opts.initErrors ?? {},
    ...(opts.runtimeRefs !== undefined ? { runtimeRefs: opts.runtimeRefs } : {}),
    percpuReserve: opts.percpuReserve ?? 8192,
  };
}

/** The loader-relevant settings of Debian's 6.x kernels, used when no configuration file is found. */
function debianDefaults(): Map<string, string> {
  const m = new Map<string, string>();
  for (const k of [
    'CONFIG_SMP',
    'CONFIG_PREEMPT_BUILD',
    'CONFIG_MODULE_UNLOAD',
    'CONFIG_MODVERSIONS',
    'CONFIG_MODULE_FORCE_LOAD',
    'CONFIG_MODULE_FORCE_UNLOAD',
    'CONFIG_MODULE_SIG',
    'CONFIG_MODULE_DECOMPRESS',
    'CONFIG_MODULE_COMPRESS_XZ',
    'CONFIG_LIVEPATCH',
    'CONFIG_STRICT_MODULE_RWX',
  ])
    m.set(k, 'y');
  return m;
}

/** One exported symbol of vmlinux or of a module. */
export interface ExportedSymbol {
  name: string;
  /** modversions CRC; undefined when the exporter has no CRCs */
  crc?: number;
  gplOnly: boolean;
  namespace: string;
  /** address as a signed 64-bit number */
  value: number;
}

/** vmlinux exports, split like the kernel's __ksymtab and __ksymtab_gpl. */
export interface KernelSymbols {
  plain: Map<string, ExportedSymbol>;
  gpl: Map<string, ExportedSymbol>;
}

/**
 * Where vmlinux's exports are placed, as signed 64-bit numbers: x86_64 kernel text from
 * 0xffffffff81000000; arm64 from 0xffff800080000000 (the start of the vmalloc area, with the modules
 * right below it).
 */
export const KERNEL_TEXT: Record<SimArch, number> = { x86_64: -0x7f000000, arm64: -0x7fff80000000 };

const symversCache = new Map<string, KernelSymbols>();

/** Reads the vmlinux rows of a Module.symvers (plain or gzip): crc, name, module, export kind, namespace. */
export function loadKernelSymbols(file: string, arch: SimArch = 'x86_64'): KernelSymbols {
  const base = KERNEL_TEXT[arch];
  const hit = symversCache.get(`${arch}:${file}`);
  if (hit) return hit;
  let text: string;
  try {
    text = readMaybeGz(file);
  } catch (err) {
    throw new KmodError(ENOENT, `${file}: cannot read the kernel's Module.symvers`, { file, cause: err });
  }
  const plain = new Map<string, ExportedSymbol>();
  const gpl = new Map<string, ExportedSymbol>();
  let i = 0;
  for (const line of text.split('\n')) {
    const f = line.split('\t');
    if (f.length < 4 || f[2] !== 'vmlinux') continue;
    const gplOnly = f[3] === 'EXPORT_SYMBOL_GPL';
    const sym: ExportedSymbol = { name: f[1], crc: Number.parseInt(f[0], 16) >>> 0, gplOnly, namespace: f[4] ?? '', value: base + i++ * 16 };
    (gplOnly ? gpl : plain).set(sym.name, sym);
  }
  const r = { plain, gpl };
  symversCache.set(`${arch}:${file}`, r);
  return r;
}

/** Built-in modules: names with a /sys/module directory (parameters or version) and all of modules.builtin. */
export interface BuiltinModules {
  /** every name in modules.builtin (modprobe treats them as present) */
  all: Set<string>;
  /** those the kernel gives a /sys/module/<name> at boot: with parameters or a version */
  withSysfs: Set<string>;
}

const builtinCache = new Map<string, BuiltinModules>();

export function loadBuiltinModules(moduleDir: string): BuiltinModules {
  const hit = builtinCache.get(moduleDir);
  if (hit) return hit;
  const all = new Set<string>();
  const withSysfs = new Set<string>();
  try {
    for (const line of readBinaryString(path.join(moduleDir, 'modules.builtin')).split('\n')) {
      const name = modnameFromPath(line);
      if (name !== null && name !== '') all.add(name);
    }
  } catch {
    /* no list: nothing built in that we know of */
  }
  try {
    for (const entry of readBinaryString(path.join(moduleDir, 'modules.builtin.modinfo')).split('\0')) {
      const dot = entry.indexOf('.');
      if (dot <= 0) continue;
      const key = entry.slice(dot + 1);
      const mod = entry.slice(0, dot);
      // a version or a parameter makes the kernel create /sys/module/<name> for a built-in
      if (key.startsWith('version=') || key.startsWith('parmtype=')) withSysfs.add(mod);
      all.add(mod);
    }
  } catch {
    /* optional */
  }
  const r = { all, withSysfs };
  builtinCache.set(moduleDir, r);
  return r;
}

/**
 * vmlinux's exports when no Module.symvers can be found: what the tree's modules import and no module
 * exports, with the CRCs their __versions expect. Partial (only the symbols some module uses) and
 * without GPL-only or namespace information, so those checks cannot fail; cached per tree.
 */
export function deriveKernelSymbols(moduleDir: string, arch: SimArch, cacheDir: string): KernelSymbols {
  const key = `derived:${arch}:${moduleDir}`;
  const hit = symversCache.get(key);
  if (hit) return hit;
  const depFile = path.join(moduleDir, 'modules.dep');
  let rows: [string, number][] | undefined;
  let cache: string | undefined;
  try {
    const st = fs.statSync(depFile);
    const id = require('node:crypto').createHash('sha256').update(`${moduleDir}\0${st.size}\0${st.mtimeMs}`).digest('hex').slice(0, 16) as string;
    cache = path.join(cacheDir, `symvers-derived-${id}.json`);
    rows = JSON.parse(fs.readFileSync(cache, 'utf8')) as [string, number][];
  } catch {
    rows = undefined;
  }
  if (!rows) {
    const { openModuleFile } = require('../../file/module-file') as typeof import('../../file/module-file');
    const imports = new Map<string, number>();
    const exported = new Set<string>();
    let dep = '';
    try {
      dep = readBinaryString(depFile);
    } catch {
      /* no tree: no symbols */
    }
    for (const line of dep.split('\n')) {
      const i = line.indexOf(':');
      if (i <= 0) continue;
      const rel = line.slice(0, i);
      try {
        const mf = openModuleFile(rel.startsWith('/') ? rel : path.join(moduleDir, rel));
        for (const v of mf.versions()) if (!imports.has(v.symbol)) imports.set(v.symbol, Number(v.crc & 0xffffffffn));
        // a module without exports has no __ksymtab_strings: the reader says so with ENODATA
        for (const e of mf.exportedSymbols()) exported.add(e.symbol);
      } catch {
        /* an unreadable module (or one without exports) adds nothing more */
      }
    }
    rows = [...imports].filter(([n]) => !exported.has(n));
    if (cache !== undefined) {
      try {
        fs.mkdirSync(cacheDir, { recursive: true });
        fs.writeFileSync(cache + '.tmp', JSON.stringify(rows));
        fs.renameSync(cache + '.tmp', cache);
      } catch {
        /* a cache only */
      }
    }
  }
  const base = KERNEL_TEXT[arch];
  const plain = new Map<string, ExportedSymbol>();
  rows.forEach(([name, crc], i) => plain.set(name, { name, crc, gplOnly: false, namespace: '', value: base + i * 16 }));
  const r = { plain, gpl: new Map<string, ExportedSymbol>() };
  symversCache.set(key, r);
  return r;
}
