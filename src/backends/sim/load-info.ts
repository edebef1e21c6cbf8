// The state one load_module() call carries from step to step: the kernel's struct load_info
// (kernel/module/internal.h) plus the fields of the struct module being built that later steps read.
// Every step of the simulated loader takes it explicitly, as the kernel's steps take `info` and `mod`.
import type { X509Certificate } from 'node:crypto';
import { ElfImage, SHF_ALLOC, SHT_NOBITS, type Shdr } from './elf-image';
import type { BuiltinModules, KernelSpec, KernelSymbols } from './kernel-model';
import type { KernelGlobals, KernelState } from './state';
import { ENOEXEC } from '../../errno';

/** A load refused with the kernel's errno (positive). */
export class LoadError extends Error {
  constructor(readonly errno: number) {
    super(`load failed: errno ${errno}`);
  }
}

/** The simulated kernel a load runs against. */
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

/** A section header as the loader rewrites it (the kernel edits info->sechdrs in place). */
export interface Section extends Shdr {
  nameStr: string;
  /** final address once laid out (the kernel's sh_addr after move_module) */
  final: number;
  /** mod_mem_type, or -1 when not placed */
  memType: number;
  memOff: number;
  /** bytes of a NOBITS section once something writes there */
  zero?: Uint8Array;
}

/** The fields of struct module that the steps after layout read. */
export interface ModuleInProgress {
  /** mod->name: the name in .gnu.linkonce.this_module, the module's identity */
  name: string;
  /** mod->taints (TAINT_* bits) */
  taints: number;
  /** mod->klp */
  klp: boolean;
  /** page-aligned size and base of each mod_mem_type (0 when empty) */
  memSize: number[];
  memBase: number[];
  /** the allocations [base, size], in mod_mem_type order */
  mem: [number, number][];
  /** the per-cpu area [base, size] */
  percpu?: [number, number];
  /** section indexes of __ksymtab, __ksymtab_gpl, __kcrctab, __kcrctab_gpl, __param (0 = absent) */
  ksymtab: number;
  ksymtabGpl: number;
  kcrctab: number;
  kcrctabGpl: number;
  param: number;
  numSyms: number;
  numGplSyms: number;
  /** names of the modules this one uses (target_list), in the order they were referenced */
  uses: string[];
  /** set once a GPL-only symbol was resolved (inherit_taint's using_gplonly_symbols) */
  usingGplOnly: boolean;
  version?: string;
  srcversion?: string;
}

/** struct load_info. */
export interface LoadInfo {
  /** the whole image as passed in (signature still attached) */
  image: Uint8Array;
  /** info->len: the image's length once the signature is stripped */
  len: number;
  flags: number;
  uargs: string;
  /** the file the image came from, for the record */
  file?: string;
  sigOk: boolean;
  /** the image up to len, set by elf_validity_cache_copy */
  img: ElfImage;
  secs: Section[];
  /** info->name: modinfo's name=, else mod->name (used for messages and the blacklist) */
  name: string;
  /** the .modinfo entries, in file order */
  modinfo: string[];
  index: { sym: number; str: number; mod: number; vers: number; info: number; pcpu: number };
  /** the CRCs of __versions by symbol name (-1 for a CRC wider than 32 bits) */
  versions: Map<string, number>;
  /** resolved value of every symbol (simplify_symbols writes st_value; the image stays read-only) */
  symValue: Float64Array;
  mod: ModuleInProgress;
}

/** A fresh load_info for an image. */
export function newLoadInfo(image: Uint8Array, uargs: string, flags: number, file?: string): LoadInfo {
  const info: LoadInfo = {
    image,
    len: image.length,
    flags,
    uargs,
    sigOk: false,
    img: new ElfImage(image),
    secs: [],
    name: '',
    modinfo: [],
    index: { sym: 0, str: 0, mod: 0, vers: 0, info: 0, pcpu: 0 },
    versions: new Map(),
    symValue: new Float64Array(0),
    mod: {
      name: '',
      taints: 0,
      klp: false,
      memSize: [],
      memBase: [],
      mem: [],
      ksymtab: 0,
      ksymtabGpl: 0,
      kcrctab: 0,
      kcrctabGpl: 0,
      param: 0,
      numSyms: 0,
      numGplSyms: 0,
      uses: [],
      usingGplOnly: false,
    },
  };
  if (file !== undefined) info.file = file;
  return info;
}

export function fail(errno: number): never {
  throw new LoadError(errno);
}

/** Logs a refusal (pr_err unless told) and fails with ENOEXEC, as most ELF checks do. */
export function noexec(ctx: LoadContext, text: string, level = 3): never {
  ctx.log(level, text);
  return fail(ENOEXEC);
}

/**
 * A relocation whose symbol lies outside the symbol table, or whose place lies outside its section:
 * the kernel does not check these and would read or write outside them; the simulator refuses the
 * module (ENOEXEC) with this line instead.
 */
export function relocationOutOfBounds(ctx: LoadContext, modName: string, k: number, rs: Section): never {
  return noexec(ctx, `module: ${modName}: relocation ${k} of ${rs.nameStr} is outside its section or symbol table`);
}

/** get_modinfo(): the first entry for tag. */
export function getModinfo(info: LoadInfo, tag: string): string | undefined {
  const p = tag + '=';
  for (const e of info.modinfo) if (e.startsWith(p)) return e.slice(p.length);
  return undefined;
}

/** Every entry for tag (get_next_modinfo() in a loop). */
export function allModinfo(info: LoadInfo, tag: string): string[] {
  return info.modinfo.filter((e) => e.startsWith(tag + '=')).map((e) => e.slice(tag.length + 1));
}

/** find_sec(): the first SHF_ALLOC section of that name, 0 when none. */
export function findSec(info: LoadInfo, name: string): number {
  const { secs } = info;
  for (let i = 1; i < secs.length; i++) if (secs[i].flags & SHF_ALLOC && secs[i].nameStr === name) return i;
  return 0;
}

/** Whether any section (allocated or not) has that name. */
export function findSecAny(info: LoadInfo, name: string): boolean {
  return info.secs.some((s, i) => i > 0 && s.nameStr === name);
}

/** Reads of the laid-out, relocated module by kernel address (what the kernel reads through pointers). */
export class ModuleMemory {
  private readonly placed: Section[];
  constructor(private readonly info: LoadInfo) {
    this.placed = info.secs.filter((s) => s.memType >= 0 && s.size > 0).sort((a, b) => a.final - b.final);
  }
  private locate(addr: number): { s: Section; off: number } | undefined {
    const secs = this.placed;
    let lo = 0;
    let hi = secs.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const s = secs[mid];
      if (addr < s.final) hi = mid - 1;
      else if (addr >= s.final + s.size) lo = mid + 1;
      else return { s, off: addr - s.final };
    }
    return undefined;
  }
  bytes(addr: number, n: number): Uint8Array | undefined {
    const at = this.locate(addr);
    if (!at || at.off + n > at.s.size) return undefined;
    if (at.s.type === SHT_NOBITS) return at.s.zero ? at.s.zero.subarray(at.off, at.off + n) : new Uint8Array(n);
    return this.info.image.subarray(at.s.offset + at.off, at.s.offset + at.off + n);
  }
  cstr(addr: number): string | undefined {
    const at = this.locate(addr);
    if (!at || at.s.type === SHT_NOBITS) return undefined;
    return this.info.img.cstr(at.s.offset + at.off, at.s.offset + at.s.size);
  }
  /** a signed 64-bit value (pointers) */
  u64(addr: number): number | undefined {
    const b = this.bytes(addr, 8);
    if (!b) return undefined;
    const v = new DataView(b.buffer, b.byteOffset, 8);
    return v.getInt32(4, true) * 4294967296 + v.getUint32(0, true);
  }
}
