// modprobe -r (rmmod_do_module in kmod's modprobe): remove command or the module itself, its post
// softdeps before and pre softdeps after (both in reverse), holders with --remove-holders, then the
// dependencies nobody uses any more. Messages go through callbacks so the CLI can print them as kmod.
import { EAGAIN, EBUSY, EEXIST, ELOOP, ENOENT, strerror } from '../errno';
import { KmodError } from '../errors';
import { systemCommand } from './probe';
import { KMOD_MODULE_BUILTIN, type Module } from './module';

export interface RemoveOptions {
  /** -i: ignore remove commands and softdeps */
  ignoreCommands?: boolean;
  /** -D: do not look at the kernel's state */
  ignoreLoaded?: boolean;
  /** --first-time: fail when the module is not loaded */
  firstTime?: boolean;
  /** -f: O_TRUNC */
  force?: boolean;
  /** -w: keep retrying while the module is busy, up to this many ms */
  waitMsec?: number;
  /** --remove-holders */
  removeHolders?: boolean;
  /** -n / -D */
  dryRun?: boolean;
  /** modprobe's SHOW(): "rmmod NAME\n", "remove CMD\n" (the CLI prints it when -v or -D) */
  show?: (line: string) => void;
  /** modprobe's LOG() (FATAL, or WARNING with -a); may throw to stop, as kmod exits */
  report?: (msg: string) => void;
  /** modprobe's ERR() */
  error?: (msg: string) => void;
  /** flush stdout before running a command */
  flush?: () => void;
  /** environment for remove commands */
  env?: NodeJS.ProcessEnv;
  /** replaces system() (tests) */
  runCommand?: (cmd: string, env: NodeJS.ProcessEnv) => number;
  /** replaces kmod_module_remove_module (src/loading/insert.ts) (tests): 0 or a negative errno */
  removeFromKernel?: (mod: Module, force: boolean, nolog: boolean) => number;
}

const REMOVE_HOLDERS = 0x1;
const IGNORE_BUILTIN = 0x2;

function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function nowMs(): number {
  return Number(process.hrtime.bigint() / 1000000n);
}

/** kmod_module_remove_module (src/loading/insert.ts, loaded only when something is really removed) */
function removeThroughInsert(mod: Module, force: boolean, nolog: boolean): number {
  const { removeModuleFromKernel, REMOVE_FORCE, REMOVE_NOLOG } = require('../loading/insert') as typeof import('../loading/insert');
  return removeModuleFromKernel(mod.ctx, mod, (force ? REMOVE_FORCE : 0) | (nolog ? REMOVE_NOLOG : 0));
}

/** rmmod_do_remove_module: delete_module with kmod's retry-on-EAGAIN backoff for --wait */
function removeItself(mod: Module, o: RemoveOptions): number {
  o.show?.(`rmmod ${mod.name}\n`);
  if (o.dryRun) return 0;
  const wait = o.waitMsec ?? 0;
  const remove = o.removeFromKernel ?? removeThroughInsert;
  let t0 = 0;
  let tend = 0;
  let interval = 0;
  let err: number;
  do {
    err = remove(mod, o.force === true, wait !== 0);
    if (err === -EEXIST) {
      if (!o.firstTime) err = 0;
      else o.report?.(`Module ${mod.name} is not in kernel.\n`);
      break;
    } else if (err === -EAGAIN && wait) {
      if (!t0) {
        t0 = nowMs();
        tend = t0 + wait;
        interval = 1;
      } else interval <<= 1;
      const t = nowMs();
      while (interval && t + interval > tend) interval >>= 1;
      if (!interval && tend > t) interval = tend - t;
      sleepMs(interval);
      err = 0; // kmod 34.2: running out of time ends the loop with the sleep's result (success)
    } else break;
  } while (interval);
  if (err < 0 && wait) o.error?.(`could not remove '${mod.name}': ${strerror(-err)}\n`);
  return err;
}

function runRemoveCommand(mod: Module, command: string, o: RemoveOptions): number {
  const cmd = command.split('$CMDLINE_OPTS').join('');
  o.show?.(`remove ${cmd}\n`);
  if (o.dryRun) return 0;
  o.flush?.();
  const env = { ...(o.env ?? process.env), MODPROBE_MODULE: mod.name };
  let status: number;
  if (o.runCommand) status = o.runCommand(cmd, env);
  else status = systemCommand(cmd, env);
  if (status !== 0) {
    o.report?.(`Error running remove command for ${mod.name}\n`);
    if (status !== -1) return -status;
  }
  return status;
}

/**
 * A removal that another one needs first (a soft dependency, a holder): kmod's rmmod_do_module
 * recurses; here each removal is a generator that yields the ones it needs, and doRemove runs them on
 * an explicit stack, so a chain of soft dependencies thousands deep (kmod removes 10,000) does not
 * overflow JavaScript's stack.
 */
interface RemoveCall {
  mod: Module;
  flags: number;
}
type RemoveSteps = Generator<RemoveCall, number, number>;

function* removeList(list: Module[], stopOnErrors: boolean): RemoveSteps {
  for (let i = list.length - 1; i >= 0; i--) {
    const r = yield { mod: list[i], flags: IGNORE_BUILTIN };
    if (r < 0 && stopOnErrors) return r;
  }
  return 0;
}

/** modules whose removal is under way (kmod recurses through softdep loops until it crashes) */
const inProgress = new Set<Module>();

function doRemove(mod: Module, flags: number, o: RemoveOptions): number {
  const frames: { mod: Module; steps: RemoveSteps }[] = [];
  const begin = (call: RemoveCall): void => {
    if (inProgress.has(call.mod)) {
      throw new KmodError(ELOOP, `soft dependency loop while removing ${call.mod.name}`);
    }
    inProgress.add(call.mod);
    frames.push({ mod: call.mod, steps: removeSteps(call.mod, call.flags, o) });
  };
  let result = 0;
  try {
    begin({ mod, flags });
    while (frames.length > 0) {
      const top = frames[frames.length - 1];
      const step = top.steps.next(result);
      if (step.done) {
        inProgress.delete(top.mod);
        frames.pop();
        result = step.value;
      } else begin(step.value);
    }
  } finally {
    for (const f of frames) inProgress.delete(f.mod);
  }
  return result;
}

function* removeSteps(mod: Module, flags: number, o: RemoveOptions): RemoveSteps {
  let pre: Module[] = [];
  let post: Module[] = [];
  let cmd: string | undefined;
  if (!o.ignoreCommands) {
    ({ pre, post } = mod.softdeps());
    cmd = mod.removeCommand();
  }
  if (cmd === undefined && !o.ignoreLoaded) {
    const state = mod.initstateCode();
    if (state < 0) {
      if (o.firstTime) {
        o.report?.(`Module ${mod.name} is not in kernel.\n`);
        return -ENOENT;
      }
      return 0;
    } else if (state === KMOD_MODULE_BUILTIN) {
      if (flags & IGNORE_BUILTIN) return 0;
      o.report?.(`Module ${mod.name} is builtin.\n`);
      return -ENOENT;
    }
  }
  yield* removeList(post, false);
  if (flags & REMOVE_HOLDERS) {
    const err = yield* removeList(mod.holders(), true);
    if (err < 0) return err;
  }
  if (cmd === undefined && !o.ignoreLoaded && !o.waitMsec) {
    if (mod.refcnt() > 0) {
      o.report?.(`Module ${mod.name} is in use.\n`);
      return -EBUSY;
    }
  }
  const err = cmd === undefined ? removeItself(mod, o) : runRemoveCommand(mod, cmd, o);
  if (err < 0) return err;
  if (cmd === undefined) {
    for (const dep of mod.dependencies()) {
      if (dep.refcnt() === 0) removeItself(dep, o);
    }
  }
  yield* removeList(pre, false);
  return err;
}

/** rmmod_do_module for one looked-up module: returns 0 or a negative errno. */
export function removeModule(mod: Module, o: RemoveOptions = {}): number {
  return doRemove(mod, o.removeHolders ? REMOVE_HOLDERS : 0, o);
}
