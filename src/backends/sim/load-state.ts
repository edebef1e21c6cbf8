// The module's state in load_module(): it joins the module list (add_unformed_module()), taints the kernel
// (module_augment_kernel_taints()), is formed (complete_formation()), gets its sysfs directory
// (mod_sysfs_setup()) and runs init (do_init_module()). Linux 6.12's kernel/module/main.c.
import { SHT_RELA } from './elf-image';
import { fail, getModinfo, ModuleMemory, type LoadContext, type LoadInfo } from './load-info';
import { MOD_CORE_TYPES, MOD_TEXT } from './load-layout';
import { modulePatientCheckExists } from './load-check';
import { moduleExports, verifyExportedSymbols } from './load-symbols';
import type { ParamDesc } from './params';
import { moduleSetting } from './kernel-model';
import type { ModuleExport, ModuleParamState, ModuleRecord } from './state';
import { hashedPointer } from './relocate';
import { addModuleTaint, addTaint, once, TAINT_CRAP, TAINT_LIVEPATCH, TAINT_OOT_MODULE, TAINT_PROPRIETARY_MODULE, TAINT_TEST, TAINT_UNSIGNED_MODULE, TAINT_WARN, testTaint } from './taint';
import { EINVAL } from '../../errno';

const GPL_COMPATIBLE = new Set(['GPL', 'GPL v2', 'GPL and additional rights', 'Dual BSD/GPL', 'Dual MIT/GPL', 'Dual MPL/GPL']);

/**
 * add_unformed_module(): the name is checked again (module_patient_check_exists()) before the module
 * joins the list. The simulated list is the state file, written only once the load succeeds.
 */
export function addUnformedModule(ctx: LoadContext, info: LoadInfo): void {
  modulePatientCheckExists(ctx, info);
}

/**
 * module_augment_kernel_taints() (6.12): out-of-tree, staging, livepatch, licence, test and unsigned
 * taints with their messages, and the names the kernel taints by hand.
 */
export function moduleAugmentKernelTaints(ctx: LoadContext, info: LoadInfo): void {
  const modName = info.mod.name;
  const prevP = testTaint(ctx, TAINT_PROPRIETARY_MODULE);
  if (getModinfo(info, 'intree') === undefined) {
    if (!testTaint(ctx, TAINT_OOT_MODULE)) ctx.log(4, `${modName}: loading out-of-tree module taints kernel.`);
    addModuleTaint(ctx, info, TAINT_OOT_MODULE, false);
  }
  if (getModinfo(info, 'staging') !== undefined) {
    addModuleTaint(ctx, info, TAINT_CRAP, false);
    ctx.log(4, `${modName}: module is from the staging directory, the quality is unknown, you have been warned.`);
  }
  if (info.mod.klp) {
    addModuleTaint(ctx, info, TAINT_LIVEPATCH, false);
    if (once(ctx, 'livepatch')) ctx.log(5, `${modName}: tainting kernel with TAINT_LIVEPATCH`);
  }
  // module_license_taint_check()
  const license = getModinfo(info, 'license') ?? 'unspecified';
  if (!GPL_COMPATIBLE.has(license)) {
    if (!testTaint(ctx, TAINT_PROPRIETARY_MODULE)) ctx.log(4, `${modName}: module license '${license}' taints kernel.`);
    addModuleTaint(ctx, info, TAINT_PROPRIETARY_MODULE, true);
  }
  if (getModinfo(info, 'test') !== undefined) {
    if (!testTaint(ctx, TAINT_TEST)) ctx.log(4, `${modName}: loading test module taints kernel.`);
    addModuleTaint(ctx, info, TAINT_TEST, false);
  }
  if (ctx.spec.switches.moduleSig && !info.sigOk) {
    if (once(ctx, 'sig')) ctx.log(5, `${modName}: module verification failed: signature and/or required key missing - tainting kernel`);
    addModuleTaint(ctx, info, TAINT_UNSIGNED_MODULE, false);
  }
  if (modName === 'ndiswrapper') addTaint(ctx, TAINT_PROPRIETARY_MODULE, true);
  if (modName === 'driverloader' || modName === 'lve') addModuleTaint(ctx, info, TAINT_PROPRIETARY_MODULE, true);
  if (!prevP && testTaint(ctx, TAINT_PROPRIETARY_MODULE)) ctx.log(4, `${modName}: module license taints kernel.`);
}

/** post_relocation(): from here the module is read through its final addresses. */
export function postRelocation(info: LoadInfo): ModuleMemory {
  return new ModuleMemory(info);
}

/** complete_formation(): verify_exported_symbols(); the module's exports as the kernel will list them. */
export function completeFormation(ctx: LoadContext, info: LoadInfo, memory: ModuleMemory): ModuleExport[] {
  const exported = moduleExports(info, memory);
  verifyExportedSymbols(ctx, info, exported);
  return exported;
}

/**
 * mod_sysfs_setup(): /sys/module/<name> must not exist yet (a built-in module with sysfs entries has one),
 * and kobject_add_internal() refuses an empty name (a struct module whose name starts with a NUL): a
 * WARN (its message and taint; the splat's registers and trace are not simulated), then EINVAL.
 */
export function modSysfsSetup(ctx: LoadContext, info: LoadInfo): void {
  if (info.mod.name === '') {
    const thisModule = info.secs[info.index.mod];
    ctx.log(4, `kobject: (${hashedPointer(info.mod.memBase[thisModule.memType] + thisModule.memOff)}): attempted to be registered with empty name!`);
    addTaint(ctx, TAINT_WARN, false);
    fail(EINVAL);
  }
  if (ctx.builtin.withSysfs.has(info.mod.name)) {
    ctx.log(3, `${info.mod.name}: module is already loaded`);
    fail(EINVAL);
  }
}

/**
 * do_init_module(): init() returns what the kernel spec says (0 unless told otherwise: a module's code is
 * never run); on success the module is live, its init memory freed. Returns the module's record.
 */
export function doInitModule(ctx: LoadContext, info: LoadInfo, exported: ModuleExport[], params: ParamDesc[]): ModuleRecord {
  const { spec } = ctx;
  const { mod } = info;
  const hasInit = relocatedPointer(info, 'init_module');
  const hasExit = relocatedPointer(info, 'cleanup_module');
  const initErr = moduleSetting(spec.initErrors, mod.name);
  if (hasInit && initErr !== undefined && initErr !== 0) fail(Math.abs(initErr));

  const coresize = MOD_CORE_TYPES.reduce((a, t) => a + mod.memSize[t], 0);
  const paramState: Record<string, ModuleParamState> = {};
  for (const p of params) if (p.perm !== 0) paramState[p.name] = p.value !== undefined ? { perm: p.perm, value: p.value } : { perm: p.perm };
  const rec: ModuleRecord = {
    name: mod.name,
    state: 'live',
    users: [],
    uses: mod.uses,
    size: coresize,
    coresize,
    initsize: 0,
    taints: mod.taints,
    text: mod.memBase[MOD_TEXT],
    // init memory is freed once init() returns
    mem: mod.mem.filter(([b]) => MOD_CORE_TYPES.some((t) => mod.memSize[t] > 0 && mod.memBase[t] === b)),
    init: hasInit,
    exit: hasExit,
    exports: exported,
  };
  if (mod.percpu) rec.percpu = mod.percpu;
  if (mod.version !== undefined) rec.version = mod.version;
  if (mod.srcversion !== undefined) rec.srcversion = mod.srcversion;
  if (Object.keys(paramState).length > 0) rec.params = paramState;
  if (info.file !== undefined) rec.file = info.file;
  return rec;
}

/** Whether struct module's init/exit pointer gets a value: a relocation in this_module against it. */
function relocatedPointer(info: LoadInfo, symname: string): boolean {
  const { img, secs, index } = info;
  const symsect = secs[index.sym];
  const strsect = secs[symsect.link];
  for (let i = 1; i < secs.length; i++) {
    const rs = secs[i];
    if (rs.type !== SHT_RELA || rs.info !== index.mod) continue;
    for (let o = rs.offset; o + 24 <= rs.offset + rs.size; o += 24) {
      const symI = img.u32(o + 12);
      if ((symI + 1) * 24 > symsect.size) continue;
      const nameOff = img.u32(symsect.offset + symI * 24);
      if (img.cstr(strsect.offset + nameOff, strsect.offset + strsect.size) === symname) return true;
    }
  }
  return false;
}
