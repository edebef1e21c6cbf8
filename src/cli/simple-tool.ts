// What insmod, rmmod and lsmod share (kmod 34.2's tools/insmod.c, rmmod.c, lsmod.c): the -s/-v/-V/-h
// options handled in command-line order, stopping at glibc's getopt error, the syslog variant of the
// log, and kmod_new(NULL, {NULL}) — the running kernel's module directory and no modprobe.d files.
import { readStrLong } from '../file/read-str-long';
import { Context } from '../resolution/context';
import { EINVAL, ENOENT, strerror } from '../errno';
import { selectBackend, stateDirs } from './backend-select';
import { getoptLong, type LongOption } from './getopt';
import type { ToolEnv } from './io';
import { LOG_ERR, LOG_INFO, syslogIo, ToolLog } from './log';
import { printVersion } from './version';

export interface SimpleToolOptions {
  force: boolean;
  syslog: boolean;
  /** kmod's `verbose`: LOG_ERR plus one per -v */
  verbose: number;
  args: string[];
}

/**
 * Parses `args` with `shortopts` (a subset of "fsvVh"). Returns the options, or the exit status when the
 * tool is done (help, version, or a getopt error already printed).
 */
export function parseSimpleTool(args: string[], env: ToolEnv, shortopts: string, help: (prog: string) => string): SimpleToolOptions | number {
  const all: LongOption[] = [
    { name: 'force', hasArg: 0, val: 'f' },
    { name: 'syslog', hasArg: 0, val: 's' },
    { name: 'verbose', hasArg: 0, val: 'v' },
    { name: 'version', hasArg: 0, val: 'V' },
    { name: 'help', hasArg: 0, val: 'h' },
  ];
  const longopts = all.filter((o) => shortopts.includes(o.val));
  const r = getoptLong(env.argv0, args, (env.requireOrder ? '+' : '') + shortopts, longopts, env.io.env);
  const o: SimpleToolOptions = { force: false, syslog: false, verbose: LOG_ERR, args: r.args };
  for (const opt of r.options) {
    switch (opt.opt) {
      case 'f': o.force = true; break;
      case 's': o.syslog = true; break;
      case 'v': o.verbose++; break;
      case 'h':
        env.io.stdout(help(env.prog));
        return 0;
      case 'V':
        printVersion(env.io);
        return 0;
    }
  }
  if (r.error !== undefined) {
    env.io.stderr(r.error + '\n');
    return 1;
  }
  return o;
}

/** The tool's log (on syslog with -s) before libkmod messages are routed to it. */
export function toolLog(env: ToolEnv, o: SimpleToolOptions): ToolLog {
  // libkmod's default logger (kmod_new()'s messages) writes to stderr also with -s
  return new ToolLog(o.syslog ? syslogIo(env.io, env.prog) : env.io, env.prog, env.io);
}

/**
 * kmod_new(NULL, {NULL}) then log_setup_kmod_log(ctx, verbose): the configuration is read (the kernel
 * command line and modules.softdep, no modprobe.d) before the tool's log takes libkmod's messages.
 */
export function simpleContext(env: ToolEnv, log: ToolLog, verbose: number): Context {
  const dirs = stateDirs(env);
  const ctx = new Context({
    configPaths: [],
    procDir: dirs.procDir,
    sysDir: dirs.sysDir,
    log: log.libkmod,
    backendFactory: () => selectBackend(env),
    parseConfigNow: true,
  });
  ctx.config();
  log.routeLibkmod(verbose);
  // kmod_set_log_fn reports the new function's address through it (a stand-in address, as modprobe's)
  ctx.log(LOG_INFO, 'kmod_set_log_fn', 'custom logging function 0x7ffff7f8e340 registered\n');
  return ctx;
}

/**
 * kmod_module_get_refcnt: /sys/module/<m>/refcnt as a number, -ENOENT when absent, and -EINVAL with
 * libkmod's error when it does not hold an integer (read_str_long: digits, then only whitespace).
 */
export function moduleRefcnt(ctx: Context, name: string): number {
  const raw = ctx.backend.readModuleAttr(name, 'refcnt');
  if (raw === undefined) return -ENOENT;
  const v = readStrLong(raw);
  if (v === undefined) {
    ctx.log(LOG_ERR, 'kmod_module_get_refcnt', `could not read integer from '/sys/module/${name}/refcnt': '${strerror(EINVAL)}'\n`);
    return -EINVAL;
  }
  return Number(BigInt.asIntN(32, v)); // returned as an int
}

/** kmod_unref(ctx) at the end of the tool */
export function releaseContext(ctx: Context): void {
  ctx.release();
}
