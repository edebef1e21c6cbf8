// lsmod, as kmod 34.2's tools/lsmod.c: /proc/modules order; size from /sys/module/<m>/coresize (else
// /proc/modules), use count from refcnt, holders in /sys directory order.
import { LOG_ERR } from '../resolution/context';
import { ENOENT, strerror } from '../errno';
import { readStrLong } from '../file/read-str-long';
import { PATH_MAX } from '../file/binary-os';
import type { ToolEnv } from './io';
import { moduleRefcnt, parseSimpleTool, releaseContext, simpleContext, toolLog } from './simple-tool';

function help(prog: string): string {
  return (
    'Usage:\n' +
    `\t${prog} [options]\n` +
    'Options:\n' +
    '\t-s, --syslog      send messages to syslog instead of stderr\n' +
    '\t-v, --verbose     print more messages\n' +
    '\t-V, --version     print the version\n' +
    '\t-h, --help        print this help\n'
  );
}

/** printf("%-19s %8ld  %d") */
function row(name: string, size: number | bigint, refcnt: number): string {
  return `${name.padEnd(19)} ${String(size).padStart(8)}  ${refcnt}`;
}

export function run(args: string[], env: ToolEnv): number {
  const o = parseSimpleTool(args, env, 'svVh', help);
  if (typeof o === 'number') return o;
  const log = toolLog(env, o);
  if (o.args.length > 0) {
    log.error('too many arguments provided.\n');
    return 1;
  }
  const ctx = simpleContext(env, log, o.verbose);
  const backend = ctx.backend;
  const loaded = backend.procModules();
  if (loaded === undefined) {
    ctx.log(LOG_ERR, 'kmod_module_new_from_loaded', `could not open /proc/modules: ${strerror(ENOENT)}\n`);
    log.error(`could not get list of modules: ${strerror(ENOENT)}\n`);
    releaseContext(ctx);
    return 1;
  }
  const io = env.io;
  if (env.settings.json) return require('./json/lsmod').lsmodJson(ctx, loaded, io);
  io.stdout('Module                  Size  Used by\n');
  // every line of /proc/modules, as kmod_module_new_from_loaded() takes them (its errors come first:
  // the list is made before any module is shown)
  const names: string[] = [];
  for (const name of backend.loadedNames?.() ?? loaded.map((p) => p.name)) {
    if (name !== null) names.push(name);
    else ctx.log(LOG_ERR, 'kmod_module_new_from_loaded', `could not get module from name '(null)': ${strerror(ENOENT)}\n`);
  }
  for (const name of names) {
    const mod = ctx.moduleFromName(name);
    // kmod_module_get_refcnt, then kmod_module_get_size (their messages in that order)
    const refcnt = moduleRefcnt(ctx, mod.name);
    const core = backend.readModuleAttr(mod.name, 'coresize');
    let size: number | bigint;
    if (core !== undefined) {
      const v = readStrLong(core);
      if (v === undefined) ctx.log(LOG_ERR, 'kmod_module_get_size', `failed to read coresize from ${`/sys/module/${mod.name}`.slice(0, PATH_MAX - 1)}\n`);
      size = v ?? 0;
    } else if (backend.initstate(mod.name) === undefined) size = -ENOENT;
    else size = backend.procModules()?.find((q) => q.name === mod.name)?.size ?? -ENOENT;
    const line = row(mod.name, size, refcnt);
    const holders = mod.holders().map((h) => h.name);
    io.stdout(line + (holders.length ? ' ' + holders.join(',') : '') + '\n');
  }
  releaseContext(ctx);
  return 0;
}
