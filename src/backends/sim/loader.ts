// load_module() of Linux 6.12 (kernel/module/main.c), step by step, against the simulated kernel: the
// same checks in the same order, the same errno and the same kernel log lines. The module's code is
// never run: init() succeeds unless the kernel spec says otherwise (what a module does at run time cannot
// be derived statically).
import {
  ElfImage,
  latin1,
  SHF_ALLOC,
  SHF_EXECINSTR,
  SHF_RELA_LIVEPATCH,
  SHF_RO_AFTER_INIT,
  SHF_WRITE,
  SHN_ABS,
  SHN_COMMON,
  SHN_LIVEPATCH,
  SHN_UNDEF,
  SHT_NOBITS,
  SHT_NULL,
  SHT_REL,
  SHT_RELA,
  SHT_SYMTAB,
  STB_WEAK,
  type Shdr,
} from './elf-image';
import type { BuiltinModules, ExportedSymbol, KernelSpec, KernelSymbols } from './kernel-model';
import { KERNEL_PARAM_FL_HWPARAM, PARAM_OPS, parseModuleArgs, type ParamDesc, type ParamKind } from './params';
import { relocateArm64, relocateX86 } from './relocate';
import type { KernelGlobals, KernelState, ModuleExport, ModuleParamState, ModuleRecord } from './state';
import type { X509Certificate } from 'node:crypto';
import { verifyModuleSignature } from './keyring';
import { MODULE_INIT_IGNORE_MODVERSIONS, MODULE_INIT_IGNORE_VERMAGIC } from '../../backend';
import { EBADMSG, EBUSY, EEXIST, EINVAL, EKEYREJECTED, ENODATA, ENOENT, ENOEXEC, ENOKEY, ENOMEM, ENOPKG, EPERM } from '../../errno';

// taint bits (kernel/panic.c taint_flags order)
export const TAINT_PROPRIETARY_MODULE = 0;
export const TAINT_FORCED_MODULE = 1;
export const TAINT_FORCED_RMMOD = 3;
export const TAINT_USER = 6;
export const TAINT_CRAP = 10;
export const TAINT_OOT_MODULE = 12;
export const TAINT_UNSIGNED_MODULE = 13;
export const TAINT_LIVEPATCH = 15;
export const TAINT_TEST = 18;
/** the taints this simulator adds with LOCKDEP_NOW_UNRELIABLE (add_taint() then turns lock debugging off) */
export const LOCKDEP_UNRELIABLE_TAINTS = [TAINT_PROPRIETARY_MODULE, TAINT_FORCED_MODULE, TAINT_FORCED_RMMOD];

/** module_flags() letters in the kernel's order, with the bit each stands for */
const MODULE_TAINT_LETTERS: [number, string][] = [
  [TAINT_PROPRIETARY_MODULE, 'P'],
  [TAINT_FORCED_MODULE, 'F'],
  [TAINT_CRAP, 'C'],
  [TAINT_OOT_MODULE, 'O'],
  [TAINT_UNSIGNED_MODULE, 'E'],
  [TAINT_LIVEPATCH, 'K'],
  [16, 'X'],
  [17, 'T'],
  [TAINT_TEST, 'N'],
];

export function moduleTaintLetters(taints: number): string {
  let s = '';
  for (const [bit, c] of MODULE_TAINT_LETTERS) if (taints & (1 << bit)) s += c;
  return s;
}

const MOD_TEXT = 0;
const MOD_DATA = 1;
const MOD_RODATA = 2;
const MOD_RO_AFTER_INIT = 3;
const MOD_INIT_TEXT = 4;
const MOD_INIT_DATA = 5;
const MOD_INIT_RODATA = 6;
const MOD_MEM_TYPES = 7;
const isInitType = (t: number): boolean => t >= MOD_INIT_TEXT;

const PAGE_SIZE = 4096;
const pageAlign = (n: number): number => Math.ceil(n / PAGE_SIZE) * PAGE_SIZE;
const align = (n: number, a: number): number => (a > 1 ? Math.ceil(n / a) * a : n);

const SIG_MAGIC = '~Module signature appended~\n';
const MODULE_NAME_LEN = 56;
const GPL_COMPATIBLE = new Set(['GPL', 'GPL v2', 'GPL and additional rights', 'Dual BSD/GPL', 'Dual MIT/GPL', 'Dual MPL/GPL']);

/**
 * Where module memory lives, per architecture (signed 64-bit numbers). x86_64: MODULES_VADDR
 * (0xffffffffc0000000) plus a fixed offset, to MODULES_END. arm64: the 2 GiB below the end of the
 * kernel image (0xffff800080000000 + 16 MiB), so that every 32-bit PC-relative reference to the kernel
 * reaches; branches farther than 128 MiB go through PLTs, as on arm64.
 */
export const MODULE_AREA = {
  x86_64: { start: -0x40000000 + 0x200000, end: -0x1000000 },
  arm64: { start: -0x7fff80000000 + 0x1000000 - 0x80000000, end: -0x7fff80000000 },
};
/** Per-cpu reserved area for modules (x86_64 per-cpu addresses are zero-based offsets; arm64's are
 * kernel addresses, in the kernel image's data) */
export const PERCPU_AREA = { x86_64: 0x30000, arm64: -0x7fff80000000 + 0x800000 };

export class LoadError extends Error {
  constructor(readonly errno: number) {
    super(`load failed: errno ${errno}`);
  }
}

export interface LoadContext {
  spec: KernelSpec;
  ksyms: KernelSymbols;
  builtin: BuiltinModules;
  state: KernelState;
  /** mutable copy of the kernel globals; the caller persists it */
  g: KernelGlobals;
  log: (level: number, text: string) => void;
  /** name of the calling process (for lockdown messages) */
  comm: string;
  /** trusted certificates; undefined = well-formed signatures are taken as valid */
  keys?: X509Certificate[];
  /** where signature verdicts are cached */
  keyCacheDir?: string;
}

/** Kernel-wide taint with the side effects of add_taint(). */
function addTaint(ctx: LoadContext, bit: number, lockdepUnreliable: boolean): void {
  if (lockdepUnreliable && ctx.g.debugLocks) {
    ctx.g.debugLocks = false;
    ctx.log(4, 'Disabling lock debugging due to kernel taint');
  }
  ctx.g.taint |= 1 << bit;
}

const testTaint = (ctx: LoadContext, bit: number): boolean => (ctx.g.taint & (1 << bit)) !== 0;

function once(ctx: LoadContext, key: string): boolean {
  if (ctx.g.once.includes(key)) return false;
  ctx.g.once.push(key);
  return true;
}

interface Section extends Shdr {
  nameStr: string;
  /** final address once laid out */
  final: number;
  /** mod_mem_type, or -1 when not placed */
  memType: number;
  memOff: number;
  /** bytes of a NOBITS section once something writes there */
  zero?: Uint8Array;
}

/**
 * Loads an image (decompressed, signature still attached) with the given parameters and flags.
 * Returns the new module's record; throws LoadError with the kernel's errno. Log lines go to ctx.log.
 */
export function loadModule(ctx: LoadContext, image: Uint8Array, uargs: string, flags: number, file?: string): ModuleRecord {
  const { spec, log } = ctx;
  const sw = spec.switches;
  const fail = (errno: number): never => {
    throw new LoadError(errno);
  };
  let len = image.length;

  // ---- module_sig_check ------------------------------------------------------------------------
  let sigOk = false;
  // without CONFIG_MODULE_SIG there is no check at all: a signature is just trailing bytes
  if (sw.moduleSig) {
    let err = ENODATA;
    const mangled = (flags & (MODULE_INIT_IGNORE_MODVERSIONS | MODULE_INIT_IGNORE_VERMAGIC)) !== 0;
    if (!mangled && len > SIG_MAGIC.length && latin1(image, len - SIG_MAGIC.length, len) === SIG_MAGIC) {
      len -= SIG_MAGIC.length;
      err = verifySignature(image, len, log, ctx.keys, ctx.keyCacheDir);
      // mod_verify_sig() drops the signature from the length once the trailer is well formed
      if (err === 0 || err === ENOKEY || err === EKEYREJECTED) {
        const sigLen = new DataView(image.buffer, image.byteOffset + len - 4, 4).getUint32(0, false);
        len -= sigLen + 12;
        sigOk = err === 0;
      }
    }
    if (!sigOk) {
      const reason = err === ENODATA ? 'unsigned module' : err === ENOPKG ? 'module with unsupported crypto' : err === ENOKEY ? 'module with unavailable key' : undefined;
      if (reason === undefined) fail(err);
      if (sw.sigEnforce) {
        log(5, `Loading of ${reason} is rejected`);
        fail(EKEYREJECTED);
      }
      if (sw.lockdown) {
        log(5, `Lockdown: ${ctx.comm}: unsigned module loading is restricted; see man kernel_lockdown.7`);
        fail(EPERM);
      }
    }
  }

  // ---- elf_validity_cache_copy -----------------------------------------------------------------
  const img = new ElfImage(image.subarray(0, len));
  const noexec = (text: string, level = 3): never => {
    log(level, text);
    return fail(ENOEXEC);
  };
  if (len < 64) noexec(`Invalid ELF header len ${len}`);
  if (!(image[0] === 0x7f && image[1] === 0x45 && image[2] === 0x4c && image[3] === 0x46)) noexec('Invalid ELF header magic: != \\x7fELF');
  const eType = img.u16(16);
  if (eType !== 1) noexec(`Invalid ELF header type: ${eType} != 1`);
  const machine = img.u16(18);
  if (machine !== (spec.arch === 'arm64' ? 183 : 62)) noexec(`Invalid architecture in ELF header: ${machine}`);
  if (img.u16(58) !== 64) noexec('Invalid ELF section header size');
  const shoff = img.u64(40);
  const shnum = img.u16(60);
  if (shoff >= len || shnum * 64 > len - shoff) noexec('Invalid ELF section header overflow');
  const shstrndx = img.u16(62);
  if (shstrndx === 0 || shstrndx >= shnum) noexec(`Invalid ELF section name index: ${shstrndx} || e_shstrndx (${shstrndx}) >= e_shnum (${shnum})`);
  const secs: Section[] = [];
  for (let i = 0; i < shnum; i++) secs.push({ ...img.shdr(shoff, i), nameStr: '', final: 0, memType: -1, memOff: 0 });
  const strhdr = secs[shstrndx];
  if (strhdr.offset + strhdr.size > len || strhdr.offset + strhdr.size < strhdr.offset) noexec(`Invalid ELF section hdr(type ${strhdr.type})`);
  if (strhdr.size === 0) noexec('empty section name table');
  if (image[strhdr.offset + strhdr.size - 1] !== 0) noexec("ELF Spec violation: section name table isn't null terminated");
  if (secs[0].type !== SHT_NULL || secs[0].size !== 0 || secs[0].addr !== 0) noexec(`ELF Spec violation: section 0 type(${secs[0].type})!=SH_NULL or non-zero len or addr`);
  const strEnd = strhdr.offset + strhdr.size;
  for (const s of secs) s.nameStr = s.name < strhdr.size ? img.cstr(strhdr.offset + s.name, strEnd) : '';
  let numSym = 0;
  let symIdx = 0;
  let numMod = 0;
  let modIdx = 0;
  let numInfo = 0;
  let infoIdx = 0;
  for (let i = 1; i < shnum; i++) {
    const s = secs[i];
    if (s.type === SHT_NULL || s.type === SHT_NOBITS) continue;
    if (s.type === SHT_SYMTAB) {
      if (s.link === 0 || s.link >= shnum) noexec(`Invalid ELF sh_link!=SHN_UNDEF(${s.link}) or (sh_link(${s.link}) >= hdr->e_shnum(${shnum})`);
      numSym++;
      symIdx = i;
    }
    if (s.offset + s.size > len) noexec(`Invalid ELF section in module (section ${i} type ${s.type})`);
    if (s.nameStr === '.gnu.linkonce.this_module') {
      numMod++;
      modIdx = i;
    } else if (s.nameStr === '.modinfo') {
      numInfo++;
      infoIdx = i;
    }
    if (s.flags & SHF_ALLOC && s.name >= strhdr.size) noexec(`Invalid ELF section name in module (section ${i} type ${s.type})`);
  }
  if (numInfo > 1) noexec('Only one .modinfo section must exist.');
  const modinfo: string[] = [];
  if (numInfo === 1) {
    const s = secs[infoIdx];
    for (const e of latin1(image, s.offset, s.offset + s.size).split('\0')) if (e !== '') modinfo.push(e);
  }
  const getModinfo = (tag: string): string | undefined => {
    const p = tag + '=';
    for (const e of modinfo) if (e.startsWith(p)) return e.slice(p.length);
    return undefined;
  };
  const allModinfo = (tag: string): string[] => modinfo.filter((e) => e.startsWith(tag + '=')).map((e) => e.slice(tag.length + 1));
  let infoName = getModinfo('name');
  const nameForMsg = (): string => infoName ?? '(missing .modinfo section or name field)';
  if (numSym !== 1) noexec(`${nameForMsg()}: module has no symbols (stripped?)`, 4);
  if (numMod !== 1) noexec(`module ${nameForMsg()}: Only one .gnu.linkonce.this_module section must exist.`);
  const modSec = secs[modIdx];
  if (!(modSec.flags & SHF_ALLOC)) noexec(`module ${nameForMsg()}: .gnu.linkonce.this_module must occupy memory during process execution`);
  if (spec.moduleStructSize !== undefined && modSec.size !== spec.moduleStructSize)
    noexec(`module ${nameForMsg()}: .gnu.linkonce.this_module section size must match the kernel's built struct module size at run time`);
  if (modSec.size < 0x18 + MODULE_NAME_LEN) noexec(`module ${nameForMsg()}: .gnu.linkonce.this_module section size must match the kernel's built struct module size at run time`);
  const modName = img.cstr(modSec.offset + 0x18, modSec.offset + 0x18 + MODULE_NAME_LEN);
  if (infoName === undefined) infoName = modName;
  const findSec = (name: string): number => {
    for (let i = 1; i < shnum; i++) if (secs[i].flags & SHF_ALLOC && secs[i].nameStr === name) return i;
    return 0;
  };
  const versIdx = flags & MODULE_INIT_IGNORE_MODVERSIONS ? 0 : findSec('__versions');
  const pcpuIdx = findSec('.data..percpu');

  // ---- early_mod_check -------------------------------------------------------------------------
  if (spec.moduleBlacklist.includes(infoName)) {
    log(3, `Module ${infoName} is blacklisted`);
    fail(EPERM);
  }
  if (versIdx) secs[versIdx].flags &= ~SHF_ALLOC;
  if (infoIdx) secs[infoIdx].flags &= ~SHF_ALLOC;

  let modTaints = 0;
  const addModTaint = (bit: number, unreliable: boolean): void => {
    addTaint(ctx, bit, unreliable);
    modTaints |= 1 << bit;
  };
  /** try_to_force_load(): taint F, or refusal without CONFIG_MODULE_FORCE_LOAD */
  const tryForceLoad = (reason: string): boolean => {
    if (!sw.forceLoad) return false;
    if (!testTaint(ctx, TAINT_FORCED_MODULE)) log(4, `${modName}: ${reason}: kernel tainted.`);
    addModTaint(TAINT_FORCED_MODULE, true);
    return true;
  };
  const versions = new Map<string, number>();
  if (versIdx) {
    const s = secs[versIdx];
    for (let o = s.offset; o + 64 <= s.offset + s.size; o += 64) {
      const name = img.cstr(o + 8, o + 64);
      if (!versions.has(name)) versions.set(name, img.view.getUint32(o + 4, true) === 0 ? img.u32(o) : -1);
    }
  }
  /** check_version(): true when acceptable */
  const checkVersion = (symname: string, crc: number | undefined): boolean => {
    if (!sw.modversions || crc === undefined) return true;
    if (versIdx === 0) return tryForceLoad(symname);
    const have = versions.get(symname);
    if (have === undefined) {
      // Debian keeps the old rule: a missing version is a refusal, not a warning
      log(4, `${infoName}: no symbol version for ${symname}`);
      return false;
    }
    if (have === crc) return true;
    log(4, `${infoName}: disagrees about version of symbol ${symname}`);
    return false;
  };
  const layoutSym = ctx.ksyms.plain.get('module_layout') ?? ctx.ksyms.gpl.get('module_layout');
  if (!checkVersion('module_layout', layoutSym?.crc)) fail(ENOEXEC);
  {
    const modmagic = flags & MODULE_INIT_IGNORE_VERMAGIC ? undefined : getModinfo('vermagic');
    if (modmagic === undefined) {
      if (!tryForceLoad('bad vermagic')) fail(ENOEXEC);
    } else if (!sameMagic(modmagic, spec.vermagic, versIdx !== 0 && sw.modversions)) {
      log(3, `${infoName}: version magic '${modmagic}' should be '${spec.vermagic}'`);
      fail(ENOEXEC);
    }
    if (getModinfo('livepatch') !== undefined && !sw.livepatch) {
      log(3, `${modName}: module is marked as livepatch module, but livepatch support is disabled`);
      fail(ENOEXEC);
    }
  }
  const isLivepatch = getModinfo('livepatch') !== undefined;
  const existsCheck = (): void => {
    const old = ctx.state.byName.get(modName);
    if (old) fail(old.state === 'live' ? EEXIST : EBUSY);
  };
  existsCheck();

  // ---- layout_and_allocate ---------------------------------------------------------------------
  if (spec.arch === 'arm64') {
    if (!findSecAny(secs, '.plt') || !findSecAny(secs, '.init.plt')) noexec(`Modules: ${modName}: module PLT section(s) missing`);
  }
  if (sw.strictModuleRwx) {
    for (let i = 0; i < shnum; i++) {
      if ((secs[i].flags & (SHF_WRITE | SHF_EXECINSTR)) === (SHF_WRITE | SHF_EXECINSTR)) noexec(`${modName}: section ${secs[i].nameStr} (index ${i}) has invalid WRITE|EXEC flags`);
    }
  }
  const pcpuSize = pcpuIdx ? secs[pcpuIdx].size : 0;
  const pcpuAlign = pcpuIdx ? secs[pcpuIdx].addralign : 1;
  if (pcpuIdx) secs[pcpuIdx].flags &= ~SHF_ALLOC;
  const roai = findSec('.data..ro_after_init');
  if (roai) secs[roai].flags |= SHF_RO_AFTER_INIT;
  const jt = findSec('__jump_table');
  if (jt) secs[jt].flags |= SHF_RO_AFTER_INIT;
  if (spec.arch === 'arm64') sizeArm64Plts(img, secs, symIdx);
  const memSize = new Array<number>(MOD_MEM_TYPES).fill(0);
  const place = (s: Section, type: number): void => {
    s.memOff = align(memSize[type], s.addralign || 1);
    memSize[type] = s.memOff + s.size;
    s.memType = type;
  };
  layoutSections(secs, place);
  // layout_symtab (CONFIG_KALLSYMS): the full symtab and strtab in init data, the core symbols in data
  {
    const symsect = secs[symIdx];
    const strsect = secs[symsect.link];
    symsect.flags |= SHF_ALLOC;
    place(symsect, MOD_INIT_DATA);
    const nsrc = Math.floor(symsect.size / 24);
    let ndst = 0;
    let strtabSize = 0;
    for (let i = 0; i < nsrc; i++) {
      const o = symsect.offset + i * 24;
      const stName = img.u32(o);
      const shndx = img.u16(o + 6);
      let core = i === 0 || isLivepatch;
      if (!core && shndx !== SHN_UNDEF && shndx < shnum && stName !== 0) {
        if (shndx === pcpuIdx) core = true;
        else {
          const s = secs[shndx];
          core = (s.flags & SHF_ALLOC) !== 0 && s.memType >= 0 && !isInitType(s.memType);
        }
      }
      if (core) {
        strtabSize += cstrLen(image, strsect.offset + stName, strsect.offset + strsect.size) + 1;
        ndst++;
      }
    }
    memSize[MOD_DATA] = align(memSize[MOD_DATA], symsect.addralign || 1) + ndst * 24 + strtabSize + ndst;
    strsect.flags |= SHF_ALLOC;
    place(strsect, MOD_INIT_DATA);
    memSize[MOD_INIT_DATA] = align(memSize[MOD_INIT_DATA], 8) + 32 + nsrc;
  }
  // move_module: one allocation per non-empty memory type, in enum order
  const sizes = memSize.map((s) => (s > 0 ? pageAlign(s) : 0));
  const mem: [number, number][] = [];
  const bases = new Array<number>(MOD_MEM_TYPES).fill(0);
  {
    const taken = usedRanges(ctx.state);
    for (let t = 0; t < MOD_MEM_TYPES; t++) {
      if (sizes[t] === 0) continue;
      const base = allocate(taken, sizes[t], MODULE_AREA[spec.arch]);
      if (base === undefined) fail(ENOMEM);
      bases[t] = base as number;
      mem.push([base as number, sizes[t]]);
      taken.push([base as number, sizes[t]]);
    }
  }
  for (const s of secs) if (s.memType >= 0) s.final = bases[s.memType] + s.memOff;
  // sections left out of the module's memory keep their place in the temporary image (vmalloc space)
  const TEMP_IMAGE = -0x370000000000;
  for (const s of secs) if (s.memType < 0) s.final = TEMP_IMAGE + s.offset;
  secs[0].final = 0;

  // ---- add_unformed_module, module_augment_kernel_taints -----------------------------------------
  existsCheck();
  const prevP = testTaint(ctx, TAINT_PROPRIETARY_MODULE);
  if (getModinfo('intree') === undefined) {
    if (!testTaint(ctx, TAINT_OOT_MODULE)) log(4, `${modName}: loading out-of-tree module taints kernel.`);
    addModTaint(TAINT_OOT_MODULE, false);
  }
  if (getModinfo('staging') !== undefined) {
    addModTaint(TAINT_CRAP, false);
    log(4, `${modName}: module is from the staging directory, the quality is unknown, you have been warned.`);
  }
  if (isLivepatch) {
    addModTaint(TAINT_LIVEPATCH, false);
    if (once(ctx, 'livepatch')) log(5, `${modName}: tainting kernel with TAINT_LIVEPATCH`);
  }
  {
    const license = getModinfo('license') ?? 'unspecified';
    if (!GPL_COMPATIBLE.has(license)) {
      if (!testTaint(ctx, TAINT_PROPRIETARY_MODULE)) log(4, `${modName}: module license '${license}' taints kernel.`);
      addModTaint(TAINT_PROPRIETARY_MODULE, true);
    }
  }
  if (getModinfo('test') !== undefined) {
    if (!testTaint(ctx, TAINT_TEST)) log(4, `${modName}: loading test module taints kernel.`);
    addModTaint(TAINT_TEST, false);
  }
  if (sw.moduleSig && !sigOk) {
    if (once(ctx, 'sig')) log(5, `${modName}: module verification failed: signature and/or required key missing - tainting kernel`);
    addModTaint(TAINT_UNSIGNED_MODULE, false);
  }
  if (modName === 'ndiswrapper') addTaint(ctx, TAINT_PROPRIETARY_MODULE, true);
  if (modName === 'driverloader' || modName === 'lve') addModTaint(TAINT_PROPRIETARY_MODULE, true);
  if (!prevP && testTaint(ctx, TAINT_PROPRIETARY_MODULE)) log(4, `${modName}: module license taints kernel.`);

  // ---- percpu_modalloc -------------------------------------------------------------------------
  let percpu: [number, number] | undefined;
  if (pcpuSize > 0) {
    let a = pcpuAlign;
    if (a > PAGE_SIZE) {
      log(4, `${modName}: per-cpu alignment ${a} > ${PAGE_SIZE}`);
      a = PAGE_SIZE;
    }
    const area = PERCPU_AREA[spec.arch];
    const base = allocate(percpuRanges(ctx.state), pcpuSize, { start: area, end: area + spec.percpuReserve }, a);
    if (base === undefined) {
      log(4, `${modName}: Could not allocate ${pcpuSize} bytes percpu data`);
      fail(ENOMEM);
    }
    percpu = [base as number, pcpuSize];
  }

  // ---- find_module_sections, check_export_symbol_versions, setup_modinfo ------------------------
  if (findSec('__obsparm')) log(4, `${modName}: Ignoring obsolete parameters`);
  const ksymtab = findSec('__ksymtab');
  const ksymtabGpl = findSec('__ksymtab_gpl');
  const kcrctab = findSec('__kcrctab');
  const kcrctabGpl = findSec('__kcrctab_gpl');
  const numSyms = ksymtab ? Math.floor(secs[ksymtab].size / 12) : 0;
  const numGplSyms = ksymtabGpl ? Math.floor(secs[ksymtabGpl].size / 12) : 0;
  if (sw.modversions && ((numSyms && !kcrctab) || (numGplSyms && !kcrctabGpl))) {
    if (!tryForceLoad('no versions for exported symbols')) fail(ENOEXEC);
  }

  // ---- simplify_symbols ------------------------------------------------------------------------
  const symsect = secs[symIdx];
  const strsect = secs[symsect.link];
  const strStart = strsect.offset;
  const strEndSym = Math.min(strsect.offset + strsect.size, len);
  const nsym = Math.floor(symsect.size / 24);
  const symValue = new Float64Array(nsym);
  const uses: string[] = [];
  let usingGplOnly = false;
  let ret = 0;
  const symName = (i: number): string => img.cstr(strStart + img.u32(symsect.offset + i * 24), strEndSym);
  const importNs = allModinfo('import_ns');
  for (let i = 1; i < nsym; i++) {
    const o = symsect.offset + i * 24;
    const shndx = img.u16(o + 6);
    const value = img.s64(o + 8);
    switch (shndx) {
      case SHN_COMMON: {
        const name = symName(i);
        if (name.startsWith('__gnu_lto')) break;
        log(4, `${modName}: please compile with -fno-common`);
        ret = -ENOEXEC;
        break;
      }
      case SHN_ABS:
        symValue[i] = value;
        break;
      case SHN_LIVEPATCH:
        symValue[i] = value;
        break;
      case SHN_UNDEF: {
        const name = symName(i);
        const r = resolveSymbol(name);
        if (typeof r === 'object') {
          symValue[i] = r.value;
          break;
        }
        const weak = img.u8(o + 4) >> 4 === STB_WEAK;
        if (r === 0 && (weak || name === '_GLOBAL_OFFSET_TABLE_')) {
          symValue[i] = value;
          break;
        }
        const err = r === 0 ? -ENOENT : (r as number);
        log(4, `${modName}: Unknown symbol ${name} (err ${err})`);
        ret = err;
        break;
      }
      default:
        if (shndx >= shnum) {
          log(3, `${modName}: Symbol ${symName(i)} has an invalid section index ${shndx} (max ${shnum - 1})`);
          ret = -ENOEXEC;
          break;
        }
        symValue[i] = value + (shndx === pcpuIdx && pcpuIdx !== 0 ? (percpu ? percpu[0] : 0) : secs[shndx].final);
    }
  }
  if (ret < 0) fail(-ret);

  /** resolve_symbol(): the symbol, 0 when not found (or refused by inherit_taint), or a negative errno */
  function resolveSymbol(name: string): ExportedSymbol | number {
    const gplok = (modTaints & (1 << TAINT_PROPRIETARY_MODULE)) === 0;
    let sym: ExportedSymbol | undefined = ctx.ksyms.plain.get(name);
    let owner: ModuleRecord | undefined;
    let gplOnly = false;
    if (!sym && gplok) {
      sym = ctx.ksyms.gpl.get(name);
      gplOnly = sym !== undefined;
    }
    if (!sym) {
      const ref = ctx.state.symbols.get(name);
      if (ref && (gplok || !ref.sym.g)) {
        owner = ref.owner;
        gplOnly = ref.sym.g === 1;
        sym = { name, crc: ref.sym.c, gplOnly, namespace: ref.sym.ns ?? '', value: ref.sym.v };
      }
    }
    if (!sym) return 0;
    if (gplOnly) usingGplOnly = true;
    // inherit_taint
    if (owner && owner.taints & (1 << TAINT_PROPRIETARY_MODULE)) {
      if (usingGplOnly) {
        log(3, `${modName}: module using GPL-only symbols uses symbols ${name} from proprietary module ${owner.name}.`);
        return 0;
      }
      if (!(modTaints & (1 << TAINT_PROPRIETARY_MODULE))) {
        log(4, `${modName}: module uses symbols ${name} from proprietary module ${owner.name}, inheriting taint.`);
        modTaints |= 1 << TAINT_PROPRIETARY_MODULE;
      }
    }
    if (!checkVersion(name, sym.crc)) return -EINVAL;
    if (sym.namespace !== '' && !importNs.includes(sym.namespace)) {
      log(sw.allowMissingNamespaceImports ? 4 : 3, `${modName}: module uses symbol (${name}) from namespace ${sym.namespace}, but does not import it.`);
      if (!sw.allowMissingNamespaceImports) return -EINVAL;
    }
    if (owner) {
      if (owner.state === 'coming') {
        log(4, `${modName}: gave up waiting for init of module ${owner.name}.`);
        return -EBUSY;
      }
      if (owner.state === 'going') return -ENOENT;
      if (!uses.includes(owner.name)) uses.push(owner.name);
    }
    return sym;
  }

  // ---- apply_relocations -----------------------------------------------------------------------
  const view = img.view;
  // arm64 module_emit_plt_entry(): one 12-byte entry per (type, symbol) for addend 0, in .plt or .init.plt
  const pltUsed = { core: new Map<string, number>(), init: new Map<string, number>() };
  const emitPlt = (init: boolean, symI: number, type: number, addend: number): bigint | undefined => {
    const sec = secs.find((s) => s.nameStr === (init ? '.init.plt' : '.plt'));
    if (!sec) return undefined;
    const used = init ? pltUsed.init : pltUsed.core;
    const key = addend === 0 ? `${type}:${symI}` : `${type}:${symI}:${addend}:${used.size}`;
    let idx = used.get(key);
    if (idx === undefined) {
      idx = used.size;
      if ((idx + 1) * 12 > sec.size) return undefined;
      used.set(key, idx);
    }
    return BigInt(sec.final + idx * 12);
  };
  for (let i = 1; i < shnum; i++) {
    const rs = secs[i];
    const infosec = rs.info;
    if (infosec >= shnum) continue;
    const target = secs[infosec];
    if (!(target.flags & SHF_ALLOC)) continue;
    if (rs.type !== SHT_REL && rs.type !== SHT_RELA) continue;
    if (rs.flags & SHF_RELA_LIVEPATCH) continue;
    if (rs.type === SHT_REL) {
      log(3, `module ${modName}: REL relocation unsupported`);
      fail(ENOEXEC);
    }
    let tview = view;
    let tbase = target.offset;
    if (target.type === SHT_NOBITS) {
      target.zero ??= new Uint8Array(target.size + 8);
      tview = new DataView(target.zero.buffer);
      tbase = 0;
    }
    const n = Math.floor(rs.size / 24);
    for (let k = 0; k < n; k++) {
      const e = rs.offset + k * 24;
      const rOffset = img.u64(e);
      const type = view.getUint32(e + 8, true);
      const symI = view.getUint32(e + 12, true);
      const addend = img.s64(e + 16);
      if (symI >= nsym || rOffset + relocSize(spec.arch, type) > target.size) {
        // the kernel does not check these and would write outside the section
        log(3, `module: ${modName}: relocation ${k} of ${rs.nameStr} is outside its section or symbol table`);
        fail(ENOEXEC);
      }
      const P = target.final + rOffset;
      const val = symValue[symI] + addend;
      const r =
        spec.arch === 'arm64'
          ? relocateArm64(tview, tbase + rOffset, P, type, val, modName, log, () => emitPlt(target.nameStr.startsWith('.init'), symI, type, addend))
          : relocateX86(tview, tbase + rOffset, P, type, val, modName, log);
      if (r < 0) fail(-r);
    }
  }

  // memory reads of the relocated module, by address
  const allocSecs = secs.filter((s) => s.memType >= 0 && s.size > 0).sort((a, b) => a.final - b.final);
  const locate = (addr: number): { s: Section; off: number } | undefined => {
    let lo = 0;
    let hi = allocSecs.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const s = allocSecs[mid];
      if (addr < s.final) hi = mid - 1;
      else if (addr >= s.final + s.size) lo = mid + 1;
      else return { s, off: addr - s.final };
    }
    return undefined;
  };
  const readBytes = (addr: number, n: number): Uint8Array | undefined => {
    const at = locate(addr);
    if (!at || at.off + n > at.s.size) return undefined;
    if (at.s.type === SHT_NOBITS) return at.s.zero ? at.s.zero.subarray(at.off, at.off + n) : new Uint8Array(n);
    return image.subarray(at.s.offset + at.off, at.s.offset + at.off + n);
  };
  const readCstr = (addr: number): string | undefined => {
    const at = locate(addr);
    if (!at || at.s.type === SHT_NOBITS) return undefined;
    return img.cstr(at.s.offset + at.off, at.s.offset + at.s.size);
  };
  const readU64 = (addr: number): number | undefined => {
    const b = readBytes(addr, 8);
    if (!b) return undefined;
    const v = new DataView(b.buffer, b.byteOffset, 8);
    return v.getInt32(4, true) * 4294967296 + v.getUint32(0, true);
  };

  // ---- exports (find_module_sections) and complete_formation's duplicate check ------------------
  const exported: ModuleExport[] = [];
  const readTable = (idx: number, crcIdx: number, gpl: boolean, count: number): void => {
    const s = secs[idx];
    for (let k = 0; k < count; k++) {
      const entry = s.offset + k * 12;
      const addr = s.final + k * 12;
      const value = addr + view.getInt32(entry, true);
      const name = readCstr(addr + 4 + view.getInt32(entry + 4, true));
      const nsOff = view.getInt32(entry + 8, true);
      const ns = nsOff !== 0 ? readCstr(addr + 8 + nsOff) : '';
      if (name === undefined) continue;
      const e: ModuleExport = { n: name, v: value };
      if (gpl) e.g = 1;
      if (ns) e.ns = ns;
      if (crcIdx && (k + 1) * 4 <= secs[crcIdx].size) e.c = img.u32(secs[crcIdx].offset + k * 4);
      exported.push(e);
    }
  };
  if (numSyms) readTable(ksymtab, kcrctab, false, numSyms);
  if (numGplSyms) readTable(ksymtabGpl, kcrctabGpl, true, numGplSyms);
  for (const e of exported) {
    const inKernel = ctx.ksyms.plain.has(e.n) || ctx.ksyms.gpl.has(e.n);
    const owner = inKernel ? 'kernel' : ctx.state.symbols.get(e.n)?.owner.name;
    if (owner !== undefined) {
      log(3, `${modName}: exports duplicate symbol ${e.n} (owned by ${owner})`);
      fail(ENOEXEC);
    }
  }

  // ---- parse_args ------------------------------------------------------------------------------
  const params = readParams();
  {
    const r = parseModuleArgs(modName, uargs, params, log, { lockdown: sw.lockdown });
    if (r.taintUser) addTaint(ctx, TAINT_USER, false);
    if (r.err < 0) fail(-r.err);
  }

  function readParams(): ParamDesc[] {
    const pidx = findSec('__param');
    if (!pidx) return [];
    const s = secs[pidx];
    const opsByAddr = new Map<number, ParamKind>();
    for (const [sym, kind] of Object.entries(PARAM_OPS)) {
      const k = ctx.ksyms.plain.get(sym) ?? ctx.ksyms.gpl.get(sym);
      if (k) opsByAddr.set(k.value, kind);
    }
    const out: ParamDesc[] = [];
    for (let k = 0; k + 1 <= Math.floor(s.size / 40); k++) {
      const base = s.final + k * 40;
      const namePtr = readU64(base);
      const opsPtr = readU64(base + 16);
      const raw = readBytes(base + 24, 4);
      const argPtr = readU64(base + 32);
      if (namePtr === undefined || opsPtr === undefined || !raw) continue;
      const name = readCstr(namePtr);
      if (name === undefined) continue;
      const perm = raw[0] | (raw[1] << 8);
      const pflags = raw[3];
      const kind = opsByAddr.get(opsPtr) ?? 'custom';
      const d: ParamDesc = { name, kind, perm, flags: pflags };
      if (kind === 'custom') {
        const f = readBytes(opsPtr, 4);
        d.noarg = f !== undefined && (f[0] & 1) === 1;
      } else if (kind === 'string' && argPtr !== undefined) {
        const m = readBytes(argPtr, 4);
        if (m) d.maxlen = m[0] | (m[1] << 8) | (m[2] << 16) | (m[3] << 24);
      } else if (kind === 'array' && argPtr !== undefined) {
        const m = readBytes(argPtr, 24);
        if (m) {
          const dv = new DataView(m.buffer, m.byteOffset, 24);
          d.max = dv.getUint32(0, true);
          const elemOps = readU64(argPtr + 16);
          d.elem = elemOps !== undefined ? opsByAddr.get(elemOps) ?? 'custom' : 'custom';
        }
      } else if (argPtr !== undefined) {
        d.value = initialValue(kind, argPtr);
      }
      if (pflags & KERNEL_PARAM_FL_HWPARAM) d.flags = pflags;
      out.push(d);
    }
    return out;
  }

  function initialValue(kind: ParamKind, addr: number): string | undefined {
    const width: Partial<Record<ParamKind, number>> = { byte: 1, short: 2, ushort: 2, int: 4, uint: 4, hexint: 4, long: 8, ulong: 8, ullong: 8, bool: 1, invbool: 1, bint: 4, bool_enable_only: 1 };
    if (kind === 'charp') {
      const p = readU64(addr);
      if (p === undefined) return undefined;
      return p === 0 ? '(null)' : readCstr(p);
    }
    const w = width[kind];
    if (w === undefined) return undefined;
    const b = readBytes(addr, w);
    if (!b) return undefined;
    const dv = new DataView(b.buffer, b.byteOffset, w);
    switch (kind) {
      case 'byte':
        return String(dv.getUint8(0));
      case 'short':
        return String(dv.getInt16(0, true));
      case 'ushort':
        return String(dv.getUint16(0, true));
      case 'int':
      case 'bint':
        return String(dv.getInt32(0, true));
      case 'uint':
        return String(dv.getUint32(0, true));
      case 'hexint': {
        const v = dv.getUint32(0, true);
        return v === 0 ? '00000000' : '0x' + v.toString(16).padStart(6, '0');
      }
      case 'long':
        return String(dv.getBigInt64(0, true));
      case 'ulong':
      case 'ullong':
        return String(dv.getBigUint64(0, true));
      case 'bool':
      case 'bool_enable_only':
        return dv.getUint8(0) ? 'Y' : 'N';
      case 'invbool':
        return dv.getUint8(0) ? 'N' : 'Y';
      default:
        return undefined;
    }
  }

  // ---- mod_sysfs_setup -------------------------------------------------------------------------
  if (ctx.builtin.withSysfs.has(modName)) {
    log(3, `${modName}: module is already loaded`);
    fail(EINVAL);
  }

  // ---- do_init_module --------------------------------------------------------------------------
  const hasInit = relocatedPointer(img, secs, modIdx, symIdx, 'init_module');
  const hasExit = relocatedPointer(img, secs, modIdx, symIdx, 'cleanup_module');
  const initErr = spec.initErrors[modName] ?? spec.initErrors[modName.replace(/_/g, '-')];
  if (hasInit && initErr !== undefined && initErr !== 0) fail(Math.abs(initErr));

  const coreTypes = [MOD_TEXT, MOD_DATA, MOD_RODATA, MOD_RO_AFTER_INIT];
  const coresize = coreTypes.reduce((a, t) => a + sizes[t], 0);
  const paramState: Record<string, ModuleParamState> = {};
  for (const p of params) if (p.perm !== 0) paramState[p.name] = p.value !== undefined ? { perm: p.perm, value: p.value } : { perm: p.perm };
  const rec: ModuleRecord = {
    name: modName,
    state: 'live',
    users: [],
    uses,
    size: coresize,
    coresize,
    initsize: 0,
    taints: modTaints,
    text: bases[MOD_TEXT],
    // init memory is freed once init() returns
    mem: mem.filter(([b]) => coreTypes.some((t) => sizes[t] > 0 && bases[t] === b)),
    init: hasInit,
    exit: hasExit,
    exports: exported,
  };
  if (percpu) rec.percpu = percpu;
  const version = getModinfo('version');
  const srcversion = getModinfo('srcversion');
  if (version !== undefined) rec.version = version;
  if (srcversion !== undefined) rec.srcversion = srcversion;
  if (Object.keys(paramState).length > 0) rec.params = paramState;
  if (file !== undefined) rec.file = file;
  return rec;
}

/** Bytes a relocation type writes (for the simulator's own bounds check). */
function relocSize(arch: 'x86_64' | 'arm64', type: number): number {
  if (arch === 'x86_64') return type === 0 ? 0 : type === 1 || type === 24 ? 8 : 4;
  if (type === 0 || type === 256) return 0;
  if (type === 257 || type === 260) return 8;
  if (type === 259 || type === 262) return 2;
  return 4;
}

function findSecAny(secs: Section[], name: string): boolean {
  return secs.some((s, i) => i > 0 && s.nameStr === name);
}

function cstrLen(b: Uint8Array, off: number, end: number): number {
  let e = off;
  while (e < end && b[e] !== 0) e++;
  return e - off;
}

/** same_magic(): with modversions in use, the release (up to the first space) is not compared. */
function sameMagic(a: string, b: string, hasCrcs: boolean): boolean {
  if (hasCrcs) {
    const ia = a.indexOf(' ');
    const ib = b.indexOf(' ');
    a = ia >= 0 ? a.slice(ia) : '';
    b = ib >= 0 ? b.slice(ib) : '';
  }
  return a === b;
}

/** __layout_sections() for core then init: the five passes by flags, sections in index order. */
function layoutSections(secs: Section[], place: (s: Section, type: number) => void): void {
  const masks: [number, number][] = [
    [SHF_EXECINSTR | SHF_ALLOC, 0],
    [SHF_ALLOC, SHF_WRITE],
    [SHF_RO_AFTER_INIT | SHF_ALLOC, 0],
    [SHF_WRITE | SHF_ALLOC, 0],
    [SHF_ALLOC, 0],
  ];
  const coreTypes = [MOD_TEXT, MOD_RODATA, MOD_RO_AFTER_INIT, MOD_DATA, MOD_DATA];
  const initTypes = [MOD_INIT_TEXT, MOD_INIT_RODATA, -1, MOD_INIT_DATA, MOD_INIT_DATA];
  for (const isInit of [false, true]) {
    for (let m = 0; m < masks.length; m++) {
      const type = isInit ? initTypes[m] : coreTypes[m];
      for (let i = 0; i < secs.length; i++) {
        const s = secs[i];
        if ((s.flags & masks[m][0]) !== masks[m][0] || s.flags & masks[m][1] || s.memType >= 0 || isInit !== s.nameStr.startsWith('.init')) continue;
        if (type < 0) continue;
        place(s, type);
      }
    }
  }
}

/** Whether struct module's init/exit pointer gets a value: a relocation in this_module against it. */
function relocatedPointer(img: ElfImage, secs: Section[], modIdx: number, symIdx: number, symname: string): boolean {
  const symsect = secs[symIdx];
  const strsect = secs[symsect.link];
  for (let i = 1; i < secs.length; i++) {
    const rs = secs[i];
    if (rs.type !== SHT_RELA || rs.info !== modIdx) continue;
    for (let o = rs.offset; o + 24 <= rs.offset + rs.size; o += 24) {
      const symI = img.u32(o + 12);
      if ((symI + 1) * 24 > symsect.size) continue;
      const nameOff = img.u32(symsect.offset + symI * 24);
      if (img.cstr(strsect.offset + nameOff, strsect.offset + strsect.size) === symname) return true;
    }
  }
  return false;
}

/** The module memory currently taken. */
function usedRanges(state: KernelState): [number, number][] {
  const r: [number, number][] = [];
  for (const m of state.data.modules) for (const x of m.mem) r.push(x);
  return r;
}

function percpuRanges(state: KernelState): [number, number][] {
  const r: [number, number][] = [];
  for (const m of state.data.modules) if (m.percpu) r.push(m.percpu);
  return r;
}

/**
 * Room for `size` bytes in [area.start, area.end) avoiding the taken ranges: after the highest one when
 * there is space (the common case, linear), else the first gap that fits.
 */
function allocate(taken: [number, number][], size: number, area: { start: number; end: number }, alignment = PAGE_SIZE): number | undefined {
  const up = (n: number): number => Math.ceil(n / alignment) * alignment;
  let top = area.start;
  for (const [b, s] of taken) if (b + s > top) top = b + s;
  if (up(top) + size <= area.end) return up(top);
  const sorted = [...taken].sort((a, b) => a[0] - b[0]);
  let cur = area.start;
  for (const [b, s] of sorted) {
    if (up(cur) + size <= b) return up(cur);
    cur = Math.max(cur, b + s);
  }
  return up(cur) + size <= area.end ? up(cur) : undefined;
}

/**
 * mod_verify_sig() without the kernel's keyring: the trailer must be well formed (as the kernel checks
 * it) and hold a DER PKCS#7 message; such a signature is taken as made by a trusted key.
 */
function verifySignature(image: Uint8Array, modlen: number, log: (level: number, text: string) => void, keys: X509Certificate[] | undefined, keysCacheDir?: string): number {
  if (modlen <= 12) return EBADMSG;
  const ms = image.subarray(modlen - 12, modlen);
  const sigLen = ((ms[8] << 24) | (ms[9] << 16) | (ms[10] << 8) | ms[11]) >>> 0;
  if (sigLen >= modlen - 12) return EBADMSG;
  if (ms[2] !== 2) {
    log(3, 'module: not signed with expected PKCS#7 message');
    return ENOPKG;
  }
  if (ms[0] || ms[1] || ms[3] || ms[4] || ms[5] || ms[6] || ms[7]) {
    log(3, 'module: PKCS#7 signature info has unexpected non-zero params');
    return EBADMSG;
  }
  const sigStart = modlen - 12 - sigLen;
  // pkcs7_parse_message() refuses anything that is not a DER SEQUENCE
  if (sigLen < 2 || image[sigStart] !== 0x30) return EBADMSG;
  if (!keys) return 0;
  return -verifyModuleSignature(image.subarray(0, modlen + SIG_MAGIC.length), sigStart, keys, keysCacheDir);
}

/** arm64 module_frob_arch_sections(): .plt and .init.plt sized for the branches that may need them. */
function sizeArm64Plts(img: ElfImage, secs: Section[], symIdx: number): void {
  let core = 0;
  let init = 0;
  for (let i = 1; i < secs.length; i++) {
    const rs = secs[i];
    if (rs.type !== SHT_RELA || rs.info >= secs.length) continue;
    const dst = secs[rs.info];
    if (!(dst.flags & SHF_EXECINSTR)) continue;
    const seen = new Set<string>();
    for (let o = rs.offset; o + 24 <= rs.offset + rs.size; o += 24) {
      const type = img.u32(o + 8);
      if (type !== 282 && type !== 283) continue;
      const symI = img.u32(o + 12);
      const sym = secs[symIdx].offset + symI * 24;
      if (img.u16(sym + 6) === rs.info) continue;
      // duplicates (same type and symbol) share an entry only when the addend is zero
      const addend = img.s64(o + 16);
      const key = `${type}:${symI}`;
      if (addend === 0) {
        if (seen.has(key)) continue;
        seen.add(key);
      }
      if (dst.nameStr.startsWith('.init')) init++;
      else core++;
    }
  }
  for (const s of secs) {
    if (s.nameStr === '.plt') {
      s.type = SHT_NOBITS;
      s.flags = SHF_EXECINSTR | SHF_ALLOC;
      s.addralign = 64;
      s.size = (core + 1) * 12;
    } else if (s.nameStr === '.init.plt') {
      s.type = SHT_NOBITS;
      s.flags = SHF_EXECINSTR | SHF_ALLOC;
      s.addralign = 64;
      s.size = (init + 1) * 12;
    } else if (s.nameStr === '.text.ftrace_trampoline') {
      s.type = SHT_NOBITS;
      s.flags = SHF_EXECINSTR | SHF_ALLOC;
      s.addralign = 4;
      s.size = 12;
    }
  }
}
