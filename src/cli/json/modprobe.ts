// modprobe --json: --show-depends (the dependency plan of each module asked for, src/resolution/plan.ts) and
// --resolve-alias (what each name stands for). Messages and exit status stay kmod's; the document is
// printed even when a name is not found (with found: false), before the error that ends the run.
import type { Context } from '../../resolution/context';
import { KmodError } from '../../errors';
import { EINVAL, strerror } from '../../errno';
import type { Module } from '../../resolution/module';
import { probePlan, type ProbePlan } from '../../resolution/plan';
import type { ToolIo } from '../io';
import type { ToolLog } from '../log';
import { printJson } from './output';

export interface ModprobeJsonOptions {
  /** -R: names only */
  lookupOnly: boolean;
  /** -a: every argument is a module name */
  all: boolean;
  ignoreCommands: boolean;
  useBlacklist: boolean;
  /** LOG priority of "not found" (FATAL, or WARNING with -a) */
  notFoundPriority: number;
}

const isPath = (name: string): boolean => name.startsWith('/') || name.startsWith('./');

interface Request {
  query: string;
  options?: string;
  found: boolean;
  modules: unknown[];
}

/** modprobe's resolution of a name; a path argument's failure is thrown as KmodError */
function lookup(ctx: Context, name: string): Module[] {
  if (isPath(name)) return [ctx.moduleFromPath(name)];
  try {
    return ctx.lookup(name);
  } catch (e) {
    if (e instanceof KmodError && e.errno === EINVAL) return [];
    throw e;
  }
}

/**
 * Runs modprobe -D/-R for `args` (-a: all names; else the first is the name, the rest its parameters)
 * and prints the JSON document. Returns the exit status.
 */
export function modprobeJson(ctx: Context, args: string[], extraOptions: string | undefined, o: ModprobeJsonOptions, log: ToolLog, io: ToolIo): number {
  const names = o.all ? args : args.slice(0, 1);
  const requests: Request[] = [];
  const missing: string[] = [];
  const notFound = (q: string, e?: KmodError): string =>
    e !== undefined ? `Failed to get module from path ${q}: ${strerror(e.errno)}\n` : `Module ${q} not found in directory ${ctx.dirname}\n`;
  for (const query of names) {
    // (each argument's modules freed before the next, as modprobe.ts does)
    ctx.releaseModules();
    const req: Request =
      !o.all && extraOptions !== undefined ? { query, options: extraOptions, found: false, modules: [] } : { query, found: false, modules: [] };
    requests.push(req);
    let mods: Module[];
    try {
      mods = lookup(ctx, query);
    } catch (e) {
      if (!(e instanceof KmodError) || !isPath(query)) throw e;
      missing.push(notFound(query, e));
      continue;
    }
    if (mods.length === 0) {
      missing.push(notFound(query));
      continue;
    }
    req.found = true;
    for (const m of mods) {
      if (o.lookupOnly) {
        const path = m.path;
        req.modules.push({ module: m.name, path: path ?? null, builtin: path === undefined && m.isBuiltin() });
      } else {
        const plan: ProbePlan = probePlan(m, { ignoreCommands: o.ignoreCommands, useBlacklist: o.useBlacklist, extraOptions: o.all ? undefined : extraOptions });
        req.modules.push(plan);
      }
    }
  }
  printJson(io, {
    kind: o.lookupOnly ? 'modprobe-resolve-alias' : 'modprobe-show-depends',
    version: 1,
    moduleDirectory: ctx.dirname,
    requests,
  });
  for (const msg of missing) log.log(o.notFoundPriority, msg);
  return missing.length > 0 ? 1 : 0;
}
