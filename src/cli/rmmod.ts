// rmmod, as kmod 34.2's tools/rmmod.c (Debian build): each named module (or module file) is checked
// in user space — builtin, not loaded, holders, use count — unless -f, then delete_module'd.
import * as fs from '../file/binary-os';
import type { Context } from '../resolution/context';
import { EBUSY, ENOENT, strerror } from '../errno';
import { KmodError } from '../errors';
import { REMOVE_FORCE, removeModuleFromKernel } from '../loading/insert';
import { KMOD_MODULE_BUILTIN, type Module } from '../resolution/module';
import type { ToolEnv } from './io';
import type { ToolLog } from './log';
import { moduleRefcnt, parseSimpleTool, releaseContext, simpleContext, toolLog } from './simple-tool';

function help(prog: string): string {
  return (
    'Usage:\n' +
    `\t${prog} [options] [list of modulenames]\n` +
    'Options:\n' +
    '\t-f, --force       DANGEROUS: unload even a module in use (the kernel\n' +
    '\t                  must allow forced unloading); can crash the kernel\n' +
    '\t-s, --syslog      send messages to syslog instead of stderr\n' +
    '\t-v, --verbose     print more messages\n' +
    '\t-V, --version     print the version\n' +
    '\t-h, --help        print this help\n'
  );
}

/** rmmod's check_module_inuse: 0 when the module may go, else a negative errno (already reported) */
function checkInUse(mod: Module, log: ToolLog): number {
  const state = mod.initstateCode();
  if (state === KMOD_MODULE_BUILTIN) {
    log.error(`Module ${mod.name} is builtin.\n`);
    return -ENOENT;
  }
  if (state < 0) {
    log.error(`Module ${mod.name} is not currently loaded\n`);
    return -ENOENT;
  }
  const holders = mod.holders();
  if (holders.length > 0) {
    log.error(`Module ${mod.name} is in use by:${holders.map((h) => ` ${h.name}`).join('')}\n`);
    return -EBUSY;
  }
  const refcnt = moduleRefcnt(mod.ctx, mod.name);
  if (refcnt > 0) {
    log.error(`Module ${mod.name} is in use\n`);
    return -EBUSY;
  }
  if (refcnt === -ENOENT) log.error('Module unloading is not supported\n');
  return refcnt;
}

function moduleFor(ctx: Context, arg: string): Module {
  let isFile = false;
  try {
    fs.statSync(arg);
    isFile = true;
  } catch {
    /* not a file: a module name */
  }
  return isFile ? ctx.moduleFromPath(arg) : ctx.moduleFromName(arg);
}

export function run(args: string[], env: ToolEnv): number {
  const o = parseSimpleTool(args, env, 'fsvVh', help);
  if (typeof o === 'number') return o;
  const log = toolLog(env, o);
  if (o.args.length === 0) {
    log.error('missing module name.\n');
    return 1;
  }
  const ctx = simpleContext(env, log, o.verbose);
  let status = 0;
  for (const arg of o.args) {
    let mod: Module;
    try {
      mod = moduleFor(ctx, arg);
    } catch (err) {
      if (!(err instanceof KmodError)) throw err;
      log.error(`could not use module ${arg}: ${strerror(err.errno)}\n`);
      status = 1;
      break;
    }
    if (!o.force && checkInUse(mod, log) < 0) status = 1;
    else {
      const r = removeModuleFromKernel(ctx, mod, o.force ? REMOVE_FORCE : 0);
      if (r < 0) {
        log.error(`could not remove module ${arg}: ${strerror(-r)}\n`);
        status = 1;
      }
    }
    // kmod frees each argument's module before the next: the same name from another path is no conflict
    ctx.releaseModules();
  }
  releaseContext(ctx);
  return status;
}
