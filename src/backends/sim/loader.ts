// load_module() of Linux 6.12 (kernel/module/main.c), step by step, against the simulated kernel: the
// same checks in the same order, the same errno and the same kernel log lines. The module's code is
// never run: init() succeeds unless the kernel spec says otherwise (what a module does at run time cannot
// be derived statically).
//
// Each step is a function named after the kernel's, taking the load's state (LoadInfo, the kernel's
// struct load_info with the struct module being built) explicitly. The steps live by phase:
//   load-check.ts    module_sig_check, elf_validity_cache_copy, early_mod_check
//   load-layout.ts   layout_and_allocate, percpu_modalloc
//   load-symbols.ts  find_module_sections, check_export_symbol_versions, setup_modinfo, simplify_symbols,
//                    resolve_symbol, check_version, verify_exported_symbols
//   relocate.ts      apply_relocations and the arch's apply_relocate_add
//   params.ts        the module's __param table and parse_args
//   load-state.ts    add_unformed_module, module_augment_kernel_taints, post_relocation,
//                    complete_formation, mod_sysfs_setup, do_init_module
//   taint.ts         add_taint, try_to_force_load and the taint letters
import { elfValidityCacheCopy, earlyModCheck, moduleSigCheck } from './load-check';
import { newLoadInfo, type LoadContext } from './load-info';
import { layoutAndAllocate, percpuModalloc } from './load-layout';
import { checkExportSymbolVersions, findModuleSections, setupModinfo, simplifySymbols } from './load-symbols';
import { addUnformedModule, completeFormation, doInitModule, modSysfsSetup, moduleAugmentKernelTaints, postRelocation } from './load-state';
import { loadModuleParseArgs, readModuleParams } from './params';
import { applyRelocations } from './relocate';
import type { ModuleRecord } from './state';

export { LoadError, type LoadContext } from './load-info';
export { MODULE_AREA, PERCPU_AREA } from './load-layout';
export {
  LOCKDEP_UNRELIABLE_TAINTS,
  moduleTaintLetters,
  TAINT_CRAP,
  TAINT_FORCED_MODULE,
  TAINT_FORCED_RMMOD,
  TAINT_LIVEPATCH,
  TAINT_OOT_MODULE,
  TAINT_PROPRIETARY_MODULE,
  TAINT_TEST,
  TAINT_UNSIGNED_MODULE,
  TAINT_USER,
} from './taint';

/**
 * load_module(): loads an image (decompressed, signature still attached) with the given parameters and
 * flags. Returns the new module's record; throws LoadError with the kernel's errno. Log lines go to
 * ctx.log. On failure the caller keeps the kernel-wide taints (ctx.g) and log lines but adds no module,
 * which is what the kernel's unwinding leaves behind.
 */
export function loadModule(ctx: LoadContext, image: Uint8Array, uargs: string, flags: number, file?: string): ModuleRecord {
  const info = newLoadInfo(image, uargs, flags, file);
  moduleSigCheck(ctx, info);
  elfValidityCacheCopy(ctx, info);
  earlyModCheck(ctx, info);
  layoutAndAllocate(ctx, info);
  addUnformedModule(ctx, info);
  moduleAugmentKernelTaints(ctx, info);
  percpuModalloc(ctx, info);
  findModuleSections(ctx, info);
  checkExportSymbolVersions(ctx, info);
  setupModinfo(info);
  simplifySymbols(ctx, info);
  applyRelocations(ctx, info);
  const memory = postRelocation(info);
  const exported = completeFormation(ctx, info, memory);
  const params = readModuleParams(ctx.ksyms, info, memory);
  loadModuleParseArgs(ctx, info, params);
  modSysfsSetup(ctx, info);
  return doInitModule(ctx, info, exported, params);
}
