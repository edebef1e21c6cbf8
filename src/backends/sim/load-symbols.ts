// Symbols in load_module(): the module's export tables (find_module_sections(), check_export_symbol_versions(),
// verify_exported_symbols()) and the resolution of its undefined symbols (simplify_symbols(),
// resolve_symbol()) with their versions (kernel/module/version.c check_version()), namespaces
// (verify_namespace_is_imported()) and licences (GPL-only exports, inherit_taint()). Linux 6.12.
import { SHN_ABS, SHN_COMMON, SHN_LIVEPATCH, SHN_UNDEF, STB_WEAK } from './elf-image';
import { allModinfo, fail, findSec, getModinfo, type LoadContext, type LoadInfo, type ModuleMemory } from './load-info';
import type { ExportedSymbol } from './kernel-model';
import type { ModuleExport, ModuleRecord } from './state';
import { TAINT_PROPRIETARY_MODULE, tryToForceLoad } from './taint';
import { EBUSY, EINVAL, ENOENT, ENOEXEC } from '../../errno';

/**
 * check_version() (version.c): true when the module's __versions CRC for symname matches the kernel's.
 * Without __versions the load is forced (taint F) or refused; Debian keeps the old rule that a missing
 * entry is a refusal, not a warning.
 */
export function checkVersion(ctx: LoadContext, info: LoadInfo, symname: string, crc: number | undefined): boolean {
  if (!ctx.spec.switches.modversions || crc === undefined) return true;
  if (info.index.vers === 0) return tryToForceLoad(ctx, info, symname);
  const have = info.versions.get(symname);
  if (have === undefined) {
    ctx.log(4, `${info.name}: no symbol version for ${symname}`);
    return false;
  }
  if (have === crc) return true;
  ctx.log(4, `${info.name}: disagrees about version of symbol ${symname}`);
  return false;
}

/** find_module_sections(): the parameter and export tables (12-byte kernel_symbol entries). */
export function findModuleSections(ctx: LoadContext, info: LoadInfo): void {
  const { mod, secs } = info;
  mod.param = findSec(info, '__param');
  if (findSec(info, '__obsparm')) ctx.log(4, `${mod.name}: Ignoring obsolete parameters`);
  mod.ksymtab = findSec(info, '__ksymtab');
  mod.ksymtabGpl = findSec(info, '__ksymtab_gpl');
  mod.kcrctab = findSec(info, '__kcrctab');
  mod.kcrctabGpl = findSec(info, '__kcrctab_gpl');
  mod.numSyms = mod.ksymtab ? Math.floor(secs[mod.ksymtab].size / 12) : 0;
  mod.numGplSyms = mod.ksymtabGpl ? Math.floor(secs[mod.ksymtabGpl].size / 12) : 0;
}

/** check_export_symbol_versions(): exports without CRCs force the load (or refuse it) under modversions. */
export function checkExportSymbolVersions(ctx: LoadContext, info: LoadInfo): void {
  const { mod } = info;
  if (!ctx.spec.switches.modversions) return;
  if ((mod.numSyms && !mod.kcrctab) || (mod.numGplSyms && !mod.kcrctabGpl)) {
    if (!tryToForceLoad(ctx, info, 'no versions for exported symbols')) fail(ENOEXEC);
  }
}

/** setup_modinfo(): the module's version and srcversion. */
export function setupModinfo(info: LoadInfo): void {
  const version = getModinfo(info, 'version');
  const srcversion = getModinfo(info, 'srcversion');
  if (version !== undefined) info.mod.version = version;
  if (srcversion !== undefined) info.mod.srcversion = srcversion;
}

/**
 * simplify_symbols(): every symbol gets its final value; undefined ones are resolved against the kernel
 * and the loaded modules. All failures are logged before the first one is returned, as the kernel does.
 */
export function simplifySymbols(ctx: LoadContext, info: LoadInfo): void {
  const { img, secs, index, mod } = info;
  const modName = mod.name;
  const symsect = secs[index.sym];
  const strsect = secs[symsect.link];
  const strEnd = Math.min(strsect.offset + strsect.size, info.len);
  const nsym = Math.floor(symsect.size / 24);
  const symValue = (info.symValue = new Float64Array(nsym));
  const symName = (i: number): string => img.cstr(strsect.offset + img.u32(symsect.offset + i * 24), strEnd);
  const importNs = allModinfo(info, 'import_ns');
  let ret = 0;
  for (let i = 1; i < nsym; i++) {
    const o = symsect.offset + i * 24;
    const shndx = img.u16(o + 6);
    const value = img.s64(o + 8);
    switch (shndx) {
      case SHN_COMMON: {
        if (symName(i).startsWith('__gnu_lto')) break;
        ctx.log(4, `${modName}: please compile with -fno-common`);
        ret = -ENOEXEC;
        break;
      }
      case SHN_ABS:
      case SHN_LIVEPATCH:
        symValue[i] = value;
        break;
      case SHN_UNDEF: {
        const name = symName(i);
        const r = resolveSymbol(ctx, info, name, importNs);
        if (typeof r === 'object') {
          symValue[i] = r.value;
          break;
        }
        const weak = img.u8(o + 4) >> 4 === STB_WEAK;
        if (r === 0 && (weak || name === '_GLOBAL_OFFSET_TABLE_')) {
          symValue[i] = value;
          break;
        }
        const err = r === 0 ? -ENOENT : r;
        ctx.log(4, `${modName}: Unknown symbol ${name} (err ${err})`);
        ret = err;
        break;
      }
      default:
        if (shndx >= secs.length) {
          ctx.log(3, `${modName}: Symbol ${symName(i)} has an invalid section index ${shndx} (max ${secs.length - 1})`);
          ret = -ENOEXEC;
          break;
        }
        symValue[i] = value + (shndx === index.pcpu && index.pcpu !== 0 ? (mod.percpu ? mod.percpu[0] : 0) : secs[shndx].final);
    }
  }
  if (ret < 0) fail(-ret);
}

/**
 * resolve_symbol(): find_symbol() (GPL-only exports only for GPL-compatible modules), inherit_taint(),
 * check_version(), verify_namespace_is_imported() and ref_module(). Returns the symbol, 0 when not found
 * (or refused by inherit_taint), or a negative errno.
 */
function resolveSymbol(ctx: LoadContext, info: LoadInfo, name: string, importNs: string[]): ExportedSymbol | number {
  const { mod } = info;
  const modName = mod.name;
  const gplok = (mod.taints & (1 << TAINT_PROPRIETARY_MODULE)) === 0;
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
  if (gplOnly) mod.usingGplOnly = true;
  // inherit_taint()
  if (owner && owner.taints & (1 << TAINT_PROPRIETARY_MODULE)) {
    if (mod.usingGplOnly) {
      ctx.log(3, `${modName}: module using GPL-only symbols uses symbols ${name} from proprietary module ${owner.name}.`);
      return 0;
    }
    if (!(mod.taints & (1 << TAINT_PROPRIETARY_MODULE))) {
      ctx.log(4, `${modName}: module uses symbols ${name} from proprietary module ${owner.name}, inheriting taint.`);
      mod.taints |= 1 << TAINT_PROPRIETARY_MODULE;
    }
  }
  if (!checkVersion(ctx, info, name, sym.crc)) return -EINVAL;
  // verify_namespace_is_imported()
  if (sym.namespace !== '' && !importNs.includes(sym.namespace)) {
    const allowMissing = ctx.spec.switches.allowMissingNamespaceImports;
    ctx.log(allowMissing ? 4 : 3, `${modName}: module uses symbol (${name}) from namespace ${sym.namespace}, but does not import it.`);
    if (!allowMissing) return -EINVAL;
  }
  // ref_module()
  if (owner) {
    if (owner.state === 'coming') {
      ctx.log(4, `${modName}: gave up waiting for init of module ${owner.name}.`);
      return -EBUSY;
    }
    if (owner.state === 'going') return -ENOENT;
    if (!mod.uses.includes(owner.name)) mod.uses.push(owner.name);
  }
  return sym;
}

/** The module's exports as relocated (the kernel reads mod->syms and mod->gpl_syms in place). */
export function moduleExports(info: LoadInfo, memory: ModuleMemory): ModuleExport[] {
  const { mod } = info;
  const exported: ModuleExport[] = [];
  if (mod.numSyms) readKsymtab(info, memory, mod.ksymtab, mod.kcrctab, false, mod.numSyms, exported);
  if (mod.numGplSyms) readKsymtab(info, memory, mod.ksymtabGpl, mod.kcrctabGpl, true, mod.numGplSyms, exported);
  return exported;
}

/** One table of struct kernel_symbol (value, name and namespace as PC-relative offsets) and its CRCs. */
function readKsymtab(info: LoadInfo, memory: ModuleMemory, idx: number, crcIdx: number, gpl: boolean, count: number, out: ModuleExport[]): void {
  const { img, secs } = info;
  const s = secs[idx];
  for (let k = 0; k < count; k++) {
    const entry = s.offset + k * 12;
    const addr = s.final + k * 12;
    const value = addr + img.view.getInt32(entry, true);
    const name = memory.cstr(addr + 4 + img.view.getInt32(entry + 4, true));
    const nsOff = img.view.getInt32(entry + 8, true);
    const ns = nsOff !== 0 ? memory.cstr(addr + 8 + nsOff) : '';
    if (name === undefined) continue;
    const e: ModuleExport = { n: name, v: value };
    if (gpl) e.g = 1;
    if (ns) e.ns = ns;
    if (crcIdx && (k + 1) * 4 <= secs[crcIdx].size) e.c = img.u32(secs[crcIdx].offset + k * 4);
    out.push(e);
  }
}

/** verify_exported_symbols(): no export may already be exported by the kernel or a loaded module. */
export function verifyExportedSymbols(ctx: LoadContext, info: LoadInfo, exported: ModuleExport[]): void {
  for (const e of exported) {
    const inKernel = ctx.ksyms.plain.has(e.n) || ctx.ksyms.gpl.has(e.n);
    const owner = inKernel ? 'kernel' : ctx.state.symbols.get(e.n)?.owner.name;
    if (owner !== undefined) {
      ctx.log(3, `${info.mod.name}: exports duplicate symbol ${e.n} (owned by ${owner})`);
      fail(ENOEXEC);
    }
  }
}
