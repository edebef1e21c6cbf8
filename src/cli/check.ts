// kmodts check: would these modules load on that kernel? (logic in src/loading/check.ts). Options are parsed like the
// kmod tools' (src/cli/getopt.ts: -Cfile, --long=value, unique prefixes), so one syntax holds everywhere.
// Text output, coloured on a terminal (util.styleText, see docs/decisions.md), or --json (docs/json-schema/check.json).
// Exit status: 0 every module loads, 1 at least one does not, 2 the check itself could not run.
import { styleText } from 'node:util';
import { openCheckSession, type CheckKernel, type CheckResult, type CheckSession } from '../backends/sim/check';
import { KmodError, SimKernelModelError } from '../errors';
import { getoptLong, type LongOption } from './getopt';
import type { ToolEnv } from './io';
import { printJson } from './json/output';

const longOptions: LongOption[] = [
  { name: 'dirname', hasArg: 1, val: 'd' },
  { name: 'set-version', hasArg: 1, val: 'S' },
  { name: 'symvers', hasArg: 1, val: 'E' },
  { name: 'config', hasArg: 1, val: 'C' },
  { name: 'all', hasArg: 0, val: 'a' },
  { name: 'quiet', hasArg: 0, val: 'q' },
  { name: 'color', hasArg: 1, val: 'color' },
  { name: 'colour', hasArg: 1, val: 'color' },
  { name: 'help', hasArg: 0, val: 'h' },
  // kmodts' own setting, also taken after the command's name
  { name: 'json', hasArg: 0, val: 'json' },
];

function help(prog: string): string {
  return (
    `Usage: kmodts ${prog} [options] MODULE|FILE...\n` +
    '\nLoads each module, with what it needs, into a fresh simulated kernel built from a module tree and\n' +
    'its Module.symvers, and says whether it loads, or which module fails and why.\n' +
    '\nOptions:\n' +
    '  -d, --dirname=DIR        root of the kernel files: modules in DIR/lib/modules/VERSION (default /)\n' +
    '  -S, --set-version=VER    kernel version (default: the only one under DIR, else uname -r)\n' +
    '  -E, --symvers=FILE       the kernel\'s Module.symvers (default: DIR/lib/modules/VER/build, /boot)\n' +
    '  -C, --config=PATH        apply this modprobe.d configuration (default: none)\n' +
    '  -a, --all                check every module of the tree\n' +
    '  -q, --quiet              print nothing; the exit status tells\n' +
    '      --json               print the results as a JSON document (docs/json-schema/check.json)\n' +
    '      --color=WHEN         auto (default), always or never\n' +
    '  -h, --help               show this help\n' +
    '\nExit status: 0 all load, 1 some do not, 2 the check could not run. See kmodts(1).\n'
  );
}

/** Colour decision: --color, then NO_COLOR / FORCE_COLOR, then whether stdout is a terminal. */
function useColour(when: string, env: NodeJS.ProcessEnv, isTTY: boolean): boolean {
  if (when === 'always') return true;
  if (when === 'never') return false;
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '0') return true;
  return isTTY && env.TERM !== 'dumb';
}

type Style = 'green' | 'red' | 'yellow' | 'dim';

/** The kernel's log of one check, as the JSON output has it (kernelLog), less lines already shown as a problem. */
function kernelLines(log: string[], shown: Set<string>, paint: (s: Style, t: string) => string): string {
  let out = '';
  for (const line of log) if (!shown.has(line)) out += paint('dim', `      kernel: ${line}`) + '\n';
  return out;
}

/** Formats the results as text; `paint` colours one piece (single formats only: Node 20's styleText arrays ignore NO_COLOR). */
export function formatCheck(results: CheckResult[], session: Pick<CheckSession, 'kernelVersion'>, paint: (s: Style, t: string) => string): string {
  let out = '';
  for (const r of results) {
    if (r.ok) {
      const builtin = r.builtin.length > 0 ? ` (built in: ${r.builtin.join(' ')})` : '';
      const commands = r.installCommands.length > 0 ? ` (install command, not run: ${r.installCommands.join(' ')})` : '';
      const loads = r.loaded.length > 0 ? `loads ${r.loaded.join(' ')}` : 'loads nothing';
      out += `${paint('green', 'ok  ')}  ${r.target}: ${loads}${builtin}${commands}\n`;
      out += kernelLines(r.kernelLog, new Set(), paint);
      continue;
    }
    const f = r.failure!;
    if (f.problems.length === 1 && f.problems[0].reason === 'not-found') {
      out += `${paint('red', 'FAIL')}  ${r.target}: ${f.problems[0].detail}\n`;
      out += kernelLines(r.kernelLog, new Set(), paint);
      continue;
    }
    const what = r.modules.includes(f.module) ? `${f.module} does not load` : `${f.module}, needed by ${r.modules.join(' ')}, does not load`;
    out += `${paint('red', 'FAIL')}  ${r.target}: ${what}\n`;
    // many problems of one kind (every GPL-only symbol of a module, say): the first two, then a count
    const shown = new Map<string, number>();
    const details = new Set<string>();
    for (const p of f.problems) {
      const n = (shown.get(p.reason) ?? 0) + 1;
      shown.set(p.reason, n);
      if (n <= 2) out += `      ${p.detail}\n`;
      details.add(p.detail);
    }
    for (const [reason, n] of shown) if (n > 2) out += `      ... and ${n - 2} more like these (${reason})\n`;
    out += kernelLines(r.kernelLog, details, paint);
  }
  const failed = results.filter((r) => !r.ok).length;
  const n = results.length;
  const summary =
    failed === 0
      ? `${n === 1 ? 'It loads' : `All ${n} load`} on ${session.kernelVersion}.`
      : `${failed} of ${n} ${n === 1 ? 'does' : 'do'} not load on ${session.kernelVersion}.`;
  out += paint(failed === 0 ? 'green' : 'red', summary) + '\n';
  return out;
}

export function run(args: string[], env: ToolEnv): number {
  const { io, prog } = env;
  const r = getoptLong(`kmodts ${prog}`, args, 'd:S:E:C:aqh', longOptions, io.env);
  const kernel: CheckKernel = {};
  let all = false;
  let quiet = false;
  let colour = 'auto';
  for (const o of r.options) {
    switch (o.opt) {
      case 'd': kernel.root = o.arg; break;
      case 'S': kernel.kernelVersion = o.arg; break;
      case 'E': kernel.symvers = o.arg; break;
      case 'C': (kernel.configPaths ??= []).push(o.arg!); break;
      case 'a': all = true; break;
      case 'q': quiet = true; break;
      case 'color':
        if (o.arg !== 'auto' && o.arg !== 'always' && o.arg !== 'never') {
          io.stderr(`kmodts ${prog}: --color takes auto, always or never, not '${o.arg}'\n`);
          return 2;
        }
        colour = o.arg;
        break;
      case 'json': env.settings.json = true; break;
      case 'h':
        io.stdout(help(prog));
        return 0;
    }
  }
  if (r.error !== undefined) {
    io.stderr(`${r.error}\n`);
    return 2;
  }
  if (r.args.length === 0 && !all) {
    io.stderr(`kmodts ${prog}: no module to check; name modules or files, or use --all (see --help)\n`);
    return 2;
  }
  let session: CheckSession;
  try {
    session = openCheckSession(kernel);
  } catch (err) {
    if (!(err instanceof KmodError || err instanceof SimKernelModelError)) throw err;
    io.stderr(`kmodts ${prog}: ${err.message}\n`);
    return 2;
  }
  let results: CheckResult[];
  try {
    const targets = all ? [...session.allModules(), ...r.args] : r.args;
    results = targets.map((t) => session.check(t));
  } catch (err) {
    if (!(err instanceof KmodError)) throw err;
    io.stderr(`kmodts ${prog}: ${err.message}\n`);
    return 2;
  } finally {
    session.close();
  }
  const failed = results.filter((x) => !x.ok).length;
  if (quiet) return failed > 0 ? 1 : 0;
  if (env.settings.json) {
    printJson(io, {
      kind: 'check',
      version: 1,
      kernel: { version: session.kernelVersion, moduleDirectory: session.moduleDirectory, vermagic: session.vermagic, symvers: session.symvers },
      summary: { checked: results.length, load: results.length - failed, fail: failed },
      results,
    });
  } else {
    const on = useColour(colour, io.env, io.stdoutIsTTY);
    const paint = (s: Style, t: string): string => (on ? styleText(s, t, { validateStream: false } as never) : t);
    io.stdout(formatCheck(results, session, paint));
  }
  return failed > 0 ? 1 : 0;
}
