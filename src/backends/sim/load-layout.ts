// The second phase of load_module(): where the module's sections go (layout_and_allocate() of Linux 6.12's
// kernel/module/main.c, with strict_rwx.c and kallsyms.c's layout_symtab()) and its per-cpu area
// (percpu_modalloc()). Addresses come from the simulated kernel's module area.
import { SHF_ALLOC, SHF_EXECINSTR, SHF_RO_AFTER_INIT, SHF_WRITE, SHN_UNDEF, SHT_NOBITS, SHT_RELA } from './elf-image';
import { fail, findSec, findSecAny, noexec, relocationOutOfBounds, type LoadContext, type LoadInfo, type Section } from './load-info';
import type { KernelState } from './state';
import { ENOMEM } from '../../errno';

// enum mod_mem_type
export const MOD_TEXT = 0;
export const MOD_DATA = 1;
export const MOD_RODATA = 2;
export const MOD_RO_AFTER_INIT = 3;
export const MOD_INIT_TEXT = 4;
export const MOD_INIT_DATA = 5;
export const MOD_INIT_RODATA = 6;
export const MOD_MEM_TYPES = 7;
/** the types that stay once init() has run */
export const MOD_CORE_TYPES = [MOD_TEXT, MOD_DATA, MOD_RODATA, MOD_RO_AFTER_INIT];
const isInitType = (t: number): boolean => t >= MOD_INIT_TEXT;

const PAGE_SIZE = 4096;
const pageAlign = (n: number): number => Math.ceil(n / PAGE_SIZE) * PAGE_SIZE;
const align = (n: number, a: number): number => (a > 1 ? Math.ceil(n / a) * a : n);

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
/** sections left out of the module's memory keep their place in the temporary image (vmalloc space) */
const TEMP_IMAGE = -0x370000000000;

/**
 * layout_and_allocate(): the arch hook, module_enforce_rwx_sections(), the section flag changes,
 * layout_sections(), layout_symtab() and move_module(). Sets each section's final address.
 */
export function layoutAndAllocate(ctx: LoadContext, info: LoadInfo): void {
  const { spec } = ctx;
  const { secs } = info;
  if (spec.arch === 'arm64' && (!findSecAny(info, '.plt') || !findSecAny(info, '.init.plt'))) noexec(ctx, `Modules: ${info.mod.name}: module PLT section(s) missing`);
  if (spec.switches.strictModuleRwx) moduleEnforceRwxSections(ctx, info);
  if (info.index.pcpu) secs[info.index.pcpu].flags &= ~SHF_ALLOC;
  const roai = findSec(info, '.data..ro_after_init');
  if (roai) secs[roai].flags |= SHF_RO_AFTER_INIT;
  const jt = findSec(info, '__jump_table');
  if (jt) secs[jt].flags |= SHF_RO_AFTER_INIT;
  if (spec.arch === 'arm64') moduleFrobArchSectionsArm64(ctx, info);
  const memSize = new Array<number>(MOD_MEM_TYPES).fill(0);
  const place = (s: Section, type: number): void => {
    s.memOff = align(memSize[type], s.addralign || 1);
    memSize[type] = s.memOff + s.size;
    s.memType = type;
  };
  layoutSections(secs, place);
  layoutSymtab(info, memSize, place);
  moveModule(ctx, info, memSize);
}

/** module_enforce_rwx_sections() (strict_rwx.c): no section may be both writable and executable. */
function moduleEnforceRwxSections(ctx: LoadContext, info: LoadInfo): void {
  const { secs } = info;
  for (let i = 0; i < secs.length; i++) {
    if ((secs[i].flags & (SHF_WRITE | SHF_EXECINSTR)) === (SHF_WRITE | SHF_EXECINSTR)) noexec(ctx, `${info.mod.name}: section ${secs[i].nameStr} (index ${i}) has invalid WRITE|EXEC flags`);
  }
}

/** layout_sections() → __layout_sections() for core then init: the five passes by flags, sections in index order. */
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

/**
 * layout_symtab() (kallsyms.c, CONFIG_KALLSYMS): the full symtab and strtab in init data, the core
 * symbols (and their names and types) in data.
 */
function layoutSymtab(info: LoadInfo, memSize: number[], place: (s: Section, type: number) => void): void {
  const { secs, img, index } = info;
  const symsect = secs[index.sym];
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
    let core = i === 0 || info.mod.klp;
    if (!core && shndx !== SHN_UNDEF && shndx < secs.length && stName !== 0) {
      if (shndx === index.pcpu) core = true;
      else {
        const s = secs[shndx];
        core = (s.flags & SHF_ALLOC) !== 0 && s.memType >= 0 && !isInitType(s.memType);
      }
    }
    if (core) {
      strtabSize += cstrLen(info.image, strsect.offset + stName, strsect.offset + strsect.size) + 1;
      ndst++;
    }
  }
  memSize[MOD_DATA] = align(memSize[MOD_DATA], symsect.addralign || 1) + ndst * 24 + strtabSize + ndst;
  strsect.flags |= SHF_ALLOC;
  place(strsect, MOD_INIT_DATA);
  memSize[MOD_INIT_DATA] = align(memSize[MOD_INIT_DATA], 8) + 32 + nsrc;
}

function cstrLen(b: Uint8Array, off: number, end: number): number {
  let e = off;
  while (e < end && b[e] !== 0) e++;
  return e - off;
}

/** move_module(): one page-aligned allocation per non-empty memory type, in enum order. */
function moveModule(ctx: LoadContext, info: LoadInfo, memSize: number[]): void {
  const { mod, secs } = info;
  mod.memSize = memSize.map((s) => (s > 0 ? pageAlign(s) : 0));
  mod.memBase = new Array<number>(MOD_MEM_TYPES).fill(0);
  mod.mem = [];
  const taken = usedRanges(ctx.state);
  for (let t = 0; t < MOD_MEM_TYPES; t++) {
    if (mod.memSize[t] === 0) continue;
    const base = allocate(taken, mod.memSize[t], MODULE_AREA[ctx.spec.arch]);
    if (base === undefined) fail(ENOMEM);
    mod.memBase[t] = base;
    mod.mem.push([base, mod.memSize[t]]);
    taken.push([base, mod.memSize[t]]);
  }
  for (const s of secs) s.final = s.memType >= 0 ? mod.memBase[s.memType] + s.memOff : TEMP_IMAGE + s.offset;
  secs[0].final = 0;
}

/** percpu_modalloc(): the module's .data..percpu gets room in the per-cpu reserve. */
export function percpuModalloc(ctx: LoadContext, info: LoadInfo): void {
  const { pcpu } = info.index;
  if (!pcpu || info.secs[pcpu].size === 0) return;
  const size = info.secs[pcpu].size;
  let a = info.secs[pcpu].addralign;
  if (a > PAGE_SIZE) {
    ctx.log(4, `${info.mod.name}: per-cpu alignment ${a} > ${PAGE_SIZE}`);
    a = PAGE_SIZE;
  }
  const area = PERCPU_AREA[ctx.spec.arch];
  const base = allocate(percpuRanges(ctx.state), size, { start: area, end: area + ctx.spec.percpuReserve }, a);
  if (base === undefined) {
    ctx.log(4, `${info.mod.name}: Could not allocate ${size} bytes percpu data`);
    fail(ENOMEM);
  }
  info.mod.percpu = [base, size];
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

/** arm64 module_frob_arch_sections() (module-plts.c): .plt and .init.plt sized for the branches that may need them. */
function moduleFrobArchSectionsArm64(ctx: LoadContext, info: LoadInfo): void {
  const { img, secs } = info;
  const symCount = Math.floor(secs[info.index.sym].size / 24);
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
      if (symI >= symCount) relocationOutOfBounds(ctx, info.mod.name, (o - rs.offset) / 24, rs);
      const sym = secs[info.index.sym].offset + symI * 24;
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
  const plt = (s: Section, size: number, addralign: number): void => {
    s.type = SHT_NOBITS;
    s.flags = SHF_EXECINSTR | SHF_ALLOC;
    s.addralign = addralign;
    s.size = size;
  };
  for (const s of secs) {
    if (s.nameStr === '.plt') plt(s, (core + 1) * 12, 64);
    else if (s.nameStr === '.init.plt') plt(s, (init + 1) * 12, 64);
    else if (s.nameStr === '.text.ftrace_trampoline') plt(s, 12, 4);
  }
}
