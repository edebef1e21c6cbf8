// Dependency plans: what `modprobe --show-depends` would do to load a module, step by step, each step
// with the reason it is there (the module asked for, a dependency, a soft dependency before or after).
// The order, duplicates, install commands, options and blacklist handling are kmod's (src/resolution/probe.ts:
// probeList + probeInsertModule with PROBE_IGNORE_LOADED | PROBE_DRY_RUN); test/json.test.ts checks the
// plan against modprobe -D for every module of the Debian tree.
import type { Module } from './module';
import { concatOptions, isBlacklisted } from './probe';

export type PlanReason = 'requested' | 'dependency' | 'softdep-pre' | 'softdep-post';

export interface PlanStep {
  /**
   * insmod: the module file is loaded; install: the configuration's install command runs instead;
   * builtin: the module is built into the kernel; missing: no file and not built in (modprobe prints
   * nothing for it, and a real load fails if it is required)
   */
  action: 'insmod' | 'install' | 'builtin' | 'missing';
  module: string;
  /** the module file (insmod) */
  path?: string;
  /** the install command as configured, before $CMDLINE_OPTS is replaced (install) */
  command?: string;
  /** the parameters passed: configuration options, then the command line's for the requested module */
  options: string;
  reason: PlanReason;
  /** the module that named this one as a dependency or soft dependency */
  requiredBy?: string;
  /** a failure stops the load (the module asked for and its dependencies); soft dependencies may fail */
  required: boolean;
}

export interface ProbePlan {
  module: string;
  /** the alias the module was found through, if any */
  alias?: string;
  /** skipped: blacklisted and asked for through an alias (or with useBlacklist); no steps */
  blacklisted: boolean;
  steps: PlanStep[];
}

export interface PlanOptions {
  /** modprobe -i: no install commands, no soft dependencies of the module itself */
  ignoreCommands?: boolean;
  /** modprobe -b: the blacklist applies to the module itself, not only to aliases */
  useBlacklist?: boolean;
  /** parameters given for the module on the command line */
  extraOptions?: string;
}

interface Entry {
  m: Module;
  reason: PlanReason;
  by?: Module;
}

/** The plan for loading `mod` as modprobe --show-depends shows it (loaded modules are not skipped). */
export function probePlan(mod: Module, opts: PlanOptions = {}): ProbePlan {
  const plan: ProbePlan = mod.alias !== undefined
    ? { module: mod.name, alias: mod.alias, blacklisted: false, steps: [] }
    : { module: mod.name, blacklisted: false, steps: [] };
  if (isBlacklisted(mod) && (mod.alias !== undefined || opts.useBlacklist)) {
    plan.blacklisted = true;
    return plan;
  }
  const entries: Entry[] = [];
  const visited = new Set<Module>();
  const ignorecmd = new Map<Module, boolean>();
  // probe.ts' walk (kmod's recursion) on an explicit stack, each step's later parts pushed first
  type Step =
    | { op: 'walk'; m: Module; ignore: boolean; reason: PlanReason; by: Module | undefined }
    | { op: 'fill'; m: Module; reason: PlanReason; by: Module | undefined }
    | { op: 'append'; m: Module; reason: PlanReason; by: Module | undefined; ignorecmd: boolean };
  const steps: Step[] = [{ op: 'walk', m: mod, ignore: opts.ignoreCommands === true, reason: 'requested', by: undefined }];
  for (let step = steps.pop(); step !== undefined; step = steps.pop()) {
    const { m, reason, by } = step;
    if (step.op === 'append') {
      entries.push({ m, reason, by });
      ignorecmd.set(m, step.ignorecmd);
    } else if (step.op === 'fill') {
      const { pre, post } = m.softdeps();
      for (let k = post.length - 1; k >= 0; k--) steps.push({ op: 'walk', m: post[k], ignore: false, reason: 'softdep-post', by: m });
      steps.push({ op: 'append', m, reason, by, ignorecmd: pre.length > 0 || post.length > 0 });
      for (let k = pre.length - 1; k >= 0; k--) steps.push({ op: 'walk', m: pre[k], ignore: false, reason: 'softdep-pre', by: m });
    } else {
      if (visited.has(m)) continue;
      visited.add(m);
      steps.push(step.ignore ? { op: 'append', m, reason, by, ignorecmd: true } : { op: 'fill', m, reason, by });
      const deps = m.dependencies();
      for (let k = deps.length - 1; k >= 0; k--) steps.push({ op: 'fill', m: deps[k], reason: 'dependency', by: m });
    }
  }

  const required = new Set<Module>([mod, ...mod.dependencies()]);
  for (const { m, reason, by } of entries) {
    const command = m.installCommand();
    let head: Pick<PlanStep, 'action' | 'module' | 'path' | 'command'>;
    if (command !== undefined && !ignorecmd.get(m)) head = { action: 'install', module: m.name, command };
    else if (m.path !== undefined) head = { action: 'insmod', module: m.name, path: m.path };
    else head = { action: m.initstate() === 'builtin' ? 'builtin' : 'missing', module: m.name };
    const step: PlanStep = {
      ...head,
      options: concatOptions(m.options(), m === mod ? opts.extraOptions : undefined) ?? '',
      reason,
      ...(by !== undefined ? { requiredBy: by.name } : {}),
      required: required.has(m),
    };
    plan.steps.push(step);
  }
  return plan;
}

/** The plan's steps as modprobe --show-depends prints them. */
export function formatPlan(plan: ProbePlan): string {
  let out = '';
  for (const s of plan.steps) {
    if (s.action === 'install') out += `install ${s.command} ${s.options}\n`;
    else if (s.action === 'insmod') out += `insmod ${s.path} ${s.options}\n`;
    else if (s.action === 'builtin') out += `builtin ${s.module}\n`;
  }
  return out;
}
