// kmodts' multi-call entry: `kmodts [settings] <tool> [args]`, or a symlink named after the tool.
// Tools are loaded on demand so that each command pays only for what it uses.
import * as path from 'node:path';
import { getoptLong, type LongOption } from './getopt';
import { processIo, ToolExit, type Settings, type ToolEnv, type ToolIo } from './io';
import { processArgs, processEnv } from '../file/binary-os';
import { SimKernelModelError, SimStateError } from '../errors';

export type ToolMain = (args: string[], env: ToolEnv) => number | Promise<number>;

const tools: Record<string, () => ToolMain> = {
  modprobe: () => require('./modprobe').run,
  insmod: () => require('./insmod').run,
  rmmod: () => require('./rmmod').run,
  lsmod: () => require('./lsmod').run,
  modinfo: () => require('./modinfo').run,
  depmod: () => require('./depmod').run,
  kmod: () => require('./kmod').run,
  check: () => require('./check').run,
  dmesg: () => require('./dmesg').run,
};

export const toolNames = Object.keys(tools);

/** the tool of that name; the table's prototype (`constructor`, `toString`) names none */
function toolNamed(name: string): (() => ToolMain) | undefined {
  return Object.hasOwn(tools, name) ? tools[name] : undefined;
}

const settingOptions: LongOption[] = [
  { name: 'backend', hasArg: 1, val: 'backend' },
  { name: 'sim-state', hasArg: 1, val: 'sim-state' },
  { name: 'json', hasArg: 0, val: 'json' },
  { name: 'help', hasArg: 0, val: 'h' },
  { name: 'version', hasArg: 0, val: 'V' },
];

function usage(io: ToolIo): void {
  io.stdout(
    'Usage: kmodts [--backend=native|sim] [--sim-state=DIR] [--json] TOOL [ARGS...]\n' +
      '       kmodts help [TOOL]\n' +
      '\nkmod-compatible module tools. TOOL is one of:\n' +
      '  modprobe insmod rmmod lsmod modinfo depmod kmod  (as kmod 34.2)\n' +
      '  check    would these modules load on that kernel? (simulated)\n' +
      '  dmesg    the simulated kernel\'s log\n' +
      '  help     this summary; \'kmodts help TOOL\' is TOOL --help\n' +
      '\nSettings (each also an environment variable, for use through symlinks):\n' +
      '  --backend=native|sim  KMODTS_BACKEND    load into the running kernel or a simulated one\n' +
      '  --sim-state=DIR       KMODTS_SIM_STATE  where the simulated kernel keeps its state\n' +
      '  --json                KMODTS_JSON=1     machine-readable output for query commands\n' +
      '\nSee kmodts(1).\n',
  );
}

/** The variable that named the simulated kernel's missing file, when one did. */
function modelSetting(err: SimKernelModelError, env: NodeJS.ProcessEnv): string {
  const name = { moduleDir: 'KMODTS_SIM_MODDIR', symvers: 'KMODTS_SIM_SYMVERS', config: 'KMODTS_SIM_CONFIG', vmlinuz: 'KMODTS_SIM_VMLINUZ', keys: 'KMODTS_SIM_KEYS' }[err.option];
  return name !== undefined && env[name] ? ` (from ${name})` : '';
}

/** The settings from the environment, before any command-line override. */
export function settingsFromEnv(env: NodeJS.ProcessEnv): Settings {
  const backend = env.KMODTS_BACKEND === 'sim' ? 'sim' : 'native';
  const json = env.KMODTS_JSON !== undefined && env.KMODTS_JSON !== '' && env.KMODTS_JSON !== '0';
  return { backend, simState: env.KMODTS_SIM_STATE || undefined, json };
}

/**
 * Runs kmodts. argv0 is how it was invoked (a tool's name when through a symlink); args follow it.
 * Returns the exit status; never calls process.exit.
 */
export async function main(argv0: string, args: string[], io: ToolIo): Promise<number> {
  const base = path.basename(argv0).replace(/\.js$/, '');
  const settings = settingsFromEnv(io.env);
  let toolName: string;
  let toolArgs: string[];
  if (toolNamed(base) !== undefined && base !== 'check' && base !== 'dmesg') {
    toolName = base;
    toolArgs = args;
  } else {
    // settings end at the tool name: '+' stops at the first non-option
    const r = getoptLong('kmodts', args, '+hV', settingOptions, {});
    if (r.error) {
      io.stderr(r.error + '\n');
      return 1;
    }
    for (const o of r.options) {
      if (o.opt === 'backend') {
        if (o.arg !== 'native' && o.arg !== 'sim') {
          io.stderr(`kmodts: invalid backend '${o.arg}' (expected native or sim)\n`);
          return 1;
        }
        settings.backend = o.arg;
      } else if (o.opt === 'sim-state') settings.simState = o.arg;
      else if (o.opt === 'json') settings.json = true;
      else if (o.opt === 'h') {
        usage(io);
        return 0;
      } else if (o.opt === 'V') {
        io.stdout(`kmodts ${require('../../package.json').version}\n`);
        return 0;
      }
    }
    if (r.args.length === 0) {
      usage(io);
      return 1;
    }
    toolName = r.args[0];
    toolArgs = r.args.slice(1);
    if (toolName === 'help') {
      // `kmodts help` is --help; `kmodts help TOOL` is `kmodts TOOL --help`
      if (toolArgs.length === 0) {
        usage(io);
        return 0;
      }
      if (toolArgs.length > 1) {
        io.stderr(`kmodts help: one tool at a time; try 'kmodts help ${toolArgs[0]}'\n`);
        return 1;
      }
      toolName = toolArgs[0];
      toolArgs = ['--help'];
    }
    if (toolNamed(toolName) === undefined) {
      io.stderr(`kmodts: unknown tool '${toolName}'; try 'kmodts --help'\n`);
      return 1;
    }
  }
  const env: ToolEnv = { prog: toolName, argv0: toolName, io, settings };
  try {
    return await toolNamed(toolName)!()(toolArgs, env);
  } catch (err) {
    if (err instanceof ToolExit) return err.status;
    if (err instanceof SimStateError) {
      // the simulated kernel's state is damaged or unusable: one line, kmod's failure status
      io.stderr(`kmodts: ${err.message}\n`);
      return 1;
    }
    if (err instanceof SimKernelModelError) {
      // the simulated kernel cannot be built from the files named: one line, kmod's failure status
      io.stderr(`kmodts: ${err.message}${modelSetting(err, io.env)}\n`);
      return 1;
    }
    throw err;
  } finally {
    io.flush();
  }
}

/** Entry used by bin/kmodts.js. */
export function runFromProcess(): void {
  const io = processIo(processEnv());
  const args = processArgs();
  main(args[0] ?? 'kmodts', args.slice(1), io).then(
    (status) => {
      io.flush();
      // everything is written (synchronously) and nothing else is pending: exiting at once skips
      // tearing down the heap and environment, about half a millisecond of every command
      process.exit(status);
    },
    (err) => {
      io.flush();
      // A bug, not a user error: say so plainly, with the stack for the report.
      io.stderr(`kmodts: internal error: ${(err as Error)?.stack ?? String(err)}\n`);
      process.exitCode = 70;
    },
  );
}
