// Kernel and module taints (kernel/panic.c taint_flags, add_taint(); kernel/module/main.c
// try_to_force_load()).
import type { LoadContext, LoadInfo } from './load-info';

// taint bits (kernel/panic.c taint_flags order)
export const TAINT_PROPRIETARY_MODULE = 0;
export const TAINT_FORCED_MODULE = 1;
export const TAINT_FORCED_RMMOD = 3;
export const TAINT_USER = 6;
export const TAINT_WARN = 9;
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

/** add_taint(): kernel-wide taint, turning lock debugging off for the "lockdep unreliable" ones. */
export function addTaint(ctx: LoadContext, bit: number, lockdepUnreliable: boolean): void {
  if (lockdepUnreliable && ctx.g.debugLocks) {
    ctx.g.debugLocks = false;
    ctx.log(4, 'Disabling lock debugging due to kernel taint');
  }
  ctx.g.taint |= 1 << bit;
}

export const testTaint = (ctx: LoadContext, bit: number): boolean => (ctx.g.taint & (1 << bit)) !== 0;

/** add_taint_module(): the kernel-wide taint plus the module's own bit. */
export function addModuleTaint(ctx: LoadContext, info: LoadInfo, bit: number, lockdepUnreliable: boolean): void {
  addTaint(ctx, bit, lockdepUnreliable);
  info.mod.taints |= 1 << bit;
}

/** Whether a pr_*_once message is still to be printed this boot (and marks it printed). */
export function once(ctx: LoadContext, key: string): boolean {
  if (ctx.g.once.includes(key)) return false;
  ctx.g.once.push(key);
  return true;
}

/** try_to_force_load(): taint F (first time with a message), or refusal without CONFIG_MODULE_FORCE_LOAD. */
export function tryToForceLoad(ctx: LoadContext, info: LoadInfo, reason: string): boolean {
  if (!ctx.spec.switches.forceLoad) return false;
  if (!testTaint(ctx, TAINT_FORCED_MODULE)) ctx.log(4, `${info.mod.name}: ${reason}: kernel tainted.`);
  addModuleTaint(ctx, info, TAINT_FORCED_MODULE, true);
  return true;
}
