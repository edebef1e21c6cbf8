// modprobe's insertion logic (kmod_module_probe_insert_module): the probe list of a module (its
// dependencies, soft dependencies before/after, recursively), the "already loaded" and blacklist
// checks, options and install commands; each action is reported through printAction and, unless
// this is a dry run, carried out (install commands through /bin/sh, modules through insertModule).
import { childEnv, childText } from '../file/binary-os';
import type { Context } from './context';
import { LOG_ERR } from '../log';
import { EEXIST, EINVAL } from '../errno';
import type { Module } from './module';

/** kmod_probe flags (libkmod.h values) */
export const PROBE_FORCE_VERMAGIC = 0x00001;
export const PROBE_FORCE_MODVERSION = 0x00002;
export const PROBE_IGNORE_COMMAND = 0x00004;
export const PROBE_IGNORE_LOADED = 0x00008;
export const PROBE_DRY_RUN = 0x00010;
export const PROBE_FAIL_ON_LOADED = 0x00020;
export const PROBE_APPLY_BLACKLIST_ALL = 0x10000;
export const PROBE_APPLY_BLACKLIST = 0x20000;
export const PROBE_APPLY_BLACKLIST_ALIAS_ONLY = 0x40000;

/** what is about to happen to one module: its install command runs, or it is inserted */
export type PrintAction = (m: Module, install: boolean, options: string) => void;

/** runs a shell command as system() does; returns the wait status' exit code (or -1 if it could not run) */
export type RunCommand = (cmd: string, env: NodeJS.ProcessEnv) => number;

export interface ProbeOptions {
  printAction?: PrintAction;
  /** environment for install commands (MODPROBE_MODULE is added); default process.env */
  env?: NodeJS.ProcessEnv;
  /** replaces system() for install commands (tests) */
  runCommand?: RunCommand;
  /** replaces kmod_module_insert_module (src/loading/insert.ts) (tests) */
  insert?: (ctx: Context, m: Module, options: string | undefined, flags: number) => number;
}

/**
 * system(cmd) as glibc runs it: /bin/sh named `sh`, with `-c -- cmd` (so the shell's messages start with
 * `sh:` and a command starting with `-` is a command), the caller's stdio; a signal-killed shell counts
 * as exit 0, as WEXITSTATUS gives.
 */
export function systemCommand(cmd: string, env: NodeJS.ProcessEnv): number {
  const { spawnSync } = require('node:child_process') as typeof import('node:child_process');
  const r = spawnSync('/bin/sh', ['-c', '--', childText(cmd)], { argv0: 'sh', stdio: 'inherit', env: childEnv(env) });
  if (r.error) return -1;
  return r.status ?? 0;
}

/** module_options_concat: "opt xopt", "opt " (trailing space) when there is no xopt, or undefined */
export function concatOptions(opt: string | undefined, xopt: string | undefined): string | undefined {
  const optlen = opt === undefined ? 0 : opt.length;
  const xoptlen = xopt === undefined ? 0 : xopt.length;
  if (optlen === 0 && xoptlen === 0) return undefined;
  return (opt !== undefined ? opt + ' ' : '') + (xopt ?? '');
}

/** whether the configuration blacklists this exact module name */
export function isBlacklisted(m: Module): boolean {
  return m.ctx.config().blacklists.includes(m.name);
}

/**
 * One step of the probe list's walk, which kmod makes by recursion (__kmod_module_get_probe_list and
 * __kmod_module_fill_softdep calling each other): `probe` a module and its dependencies, `fill` one with
 * its soft dependencies around it, `append` it to the list. Kept on an explicit stack: a chain of
 * soft dependencies thousands deep (kmod follows 10,000 in 3 s) would overflow JavaScript's stack.
 */
type ProbeStep =
  | { op: 'probe'; m: Module; required: boolean; ignorecmd: boolean }
  | { op: 'fill'; m: Module }
  | { op: 'append'; m: Module; ignorecmd: boolean };

function probeListOf(mod: Module, required: boolean, ignorecmd: boolean, list: Module[]): void {
  const steps: ProbeStep[] = [{ op: 'probe', m: mod, required, ignorecmd }];
  // (each step's later parts pushed first: the stack gives them back in kmod's order)
  for (let step = steps.pop(); step !== undefined; step = steps.pop()) {
    const m = step.m;
    if (step.op === 'append') {
      list.push(m);
      m.ignorecmd = step.ignorecmd;
    } else if (step.op === 'fill') {
      const { pre, post } = m.softdeps();
      for (let k = post.length - 1; k >= 0; k--) steps.push({ op: 'probe', m: post[k], required: false, ignorecmd: false });
      steps.push({ op: 'append', m, ignorecmd: pre.length > 0 || post.length > 0 });
      for (let k = pre.length - 1; k >= 0; k--) steps.push({ op: 'probe', m: pre[k], required: false, ignorecmd: false });
    } else {
      if (m.visited) continue;
      m.visited = true;
      const deps = m.dependencies();
      if (step.required) {
        m.required = true;
        for (const d of deps) d.required = true;
      }
      steps.push(step.ignorecmd ? { op: 'append', m, ignorecmd: true } : { op: 'fill', m });
      for (let k = deps.length - 1; k >= 0; k--) steps.push({ op: 'fill', m: deps[k] });
    }
  }
}

/**
 * The modules to load for `mod`, in order (__kmod_module_get_probe_list): each dependency with its
 * soft dependencies around it, then the module with its own. Duplicates are possible, as in kmod.
 * With ignoreCommands (-i) the module's own softdeps are skipped and its install command ignored.
 */
export function probeList(mod: Module, ignoreCommands: boolean): Module[] {
  mod.ctx.resetProbeFlags();
  const list: Module[] = [];
  probeListOf(mod, true, ignoreCommands, list);
  return list;
}

/** module_do_install_commands + command_do: $CMDLINE_OPTS replaced, run through the shell. */
function runInstallCommand(ctx: Context, m: Module, options: string | undefined, opts: ProbeOptions): number {
  const cmd = m.installCommand()!.split('$CMDLINE_OPTS').join(options ?? '');
  const env = { ...(opts.env ?? process.env), MODPROBE_MODULE: m.name };
  const status = (opts.runCommand ?? systemCommand)(cmd, env);
  if (status === -1) {
    ctx.log(LOG_ERR, 'command_do', `Could not run install command '${cmd}' for module ${m.name}: ${'Resource temporarily unavailable'}\n`);
    return -EINVAL;
  }
  if (status !== 0) {
    ctx.log(LOG_ERR, 'command_do', `Error running install command '${cmd}' for module ${m.name}: retcode ${status}\n`);
    return -EINVAL;
  }
  return 0;
}

/** kmod_module_insert_module (src/loading/insert.ts, loaded only when something is really inserted) */
function insert(ctx: Context, m: Module, options: string | undefined, flags: number): number {
  const { insertModule } = require('../loading/insert') as typeof import('../loading/insert');
  return insertModule(ctx, m, options, flags);
}

/**
 * kmod_module_probe_insert_module. Returns 0 on success, a positive PROBE_APPLY_BLACKLIST* flag when
 * the module was skipped as blacklisted, or a negative errno (-EEXIST: already loaded with
 * PROBE_FAIL_ON_LOADED; other errors from inserting or install commands).
 */
export function probeInsertModule(mod: Module, flags: number, extraOptions: string | undefined, opts: ProbeOptions = {}): number {
  const ctx = mod.ctx;
  if (!(flags & PROBE_IGNORE_LOADED) && mod.isInKernel()) {
    return flags & PROBE_FAIL_ON_LOADED ? -EEXIST : 0;
  }
  if (isBlacklisted(mod)) {
    if (mod.alias !== undefined && flags & PROBE_APPLY_BLACKLIST_ALIAS_ONLY) return PROBE_APPLY_BLACKLIST_ALIAS_ONLY;
    if (flags & PROBE_APPLY_BLACKLIST_ALL) return PROBE_APPLY_BLACKLIST_ALL;
    if (flags & PROBE_APPLY_BLACKLIST) return PROBE_APPLY_BLACKLIST;
  }
  let list = probeList(mod, (flags & PROBE_IGNORE_COMMAND) !== 0);
  if (flags & PROBE_APPLY_BLACKLIST_ALL) {
    list = list.filter((m) => !isBlacklisted(m));
    if (list.length === 0) return PROBE_APPLY_BLACKLIST_ALL;
  }
  let err = 0;
  for (const m of list) {
    if (!(flags & PROBE_IGNORE_LOADED) && m.isInKernel()) {
      err = -EEXIST;
    } else {
      const options = concatOptions(m.options(), m === mod ? extraOptions : undefined);
      if (m.installCommand() !== undefined && !m.ignorecmd) {
        opts.printAction?.(m, true, options ?? '');
        if (!(flags & PROBE_DRY_RUN)) err = runInstallCommand(ctx, m, options, opts);
      } else {
        opts.printAction?.(m, false, options ?? '');
        if (!(flags & PROBE_DRY_RUN)) err = (opts.insert ?? insert)(ctx, m, options, flags);
      }
    }
    if (err === -EEXIST && m === mod && flags & PROBE_FAIL_ON_LOADED) break;
    if (err === -EEXIST || !m.required) err = 0;
    else if (err < 0) break;
  }
  return err;
}
