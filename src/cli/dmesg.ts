// `kmodts --backend=sim dmesg`: the simulated kernel's log, printed like util-linux dmesg
// ("[    1.234567] text"), raw with -r ("<4>[    1.234567] text"), without times with -t; -c prints then
// clears, -C clears; --json (a kmodts setting, also taken after the name) gives the records as JSON.
import { getoptLong, type LongOption } from './getopt';
import type { ToolEnv } from './io';

const longOptions: LongOption[] = [
  { name: 'raw', hasArg: 0, val: 'r' },
  { name: 'notime', hasArg: 0, val: 't' },
  { name: 'read-clear', hasArg: 0, val: 'c' },
  { name: 'clear', hasArg: 0, val: 'C' },
  { name: 'help', hasArg: 0, val: 'h' },
  // kmodts' own setting, also taken after the command's name
  { name: 'json', hasArg: 0, val: 'json' },
];

function help(prog: string): string {
  return (
    `Usage: kmodts --backend=sim ${prog} [options]\n` +
    '\nShow the simulated kernel\'s log (module loader messages).\n' +
    '\nOptions:\n' +
    '  -r, --raw         print the log level as <N> before each line\n' +
    '  -t, --notime      do not print the time stamps\n' +
    '  -c, --read-clear  clear the log after printing it\n' +
    '  -C, --clear       clear the log without printing it\n' +
    '      --json        print the records as a JSON document\n' +
    '  -h, --help        print this help\n'
  );
}

/** "[%5lu.%06lu] " as dmesg prints a record's time */
function stamp(usec: number): string {
  const s = Math.floor(usec / 1e6);
  const us = usec % 1e6;
  return `[${String(s).padStart(5)}.${String(us).padStart(6, '0')}] `;
}

export function run(args: string[], env: ToolEnv): number {
  const io = env.io;
  const r = getoptLong(env.prog, args, 'rtcCh', longOptions, io.env);
  if (r.error) {
    io.stderr(r.error + '\n');
    return 1;
  }
  let raw = false;
  let notime = false;
  let clearAfter = false;
  let clearOnly = false;
  for (const o of r.options) {
    if (o.opt === 'r') raw = true;
    else if (o.opt === 't') notime = true;
    else if (o.opt === 'c') clearAfter = true;
    else if (o.opt === 'C') clearOnly = true;
    else if (o.opt === 'json') env.settings.json = true;
    else if (o.opt === 'h') {
      io.stdout(help(env.prog));
      return 0;
    }
  }
  if (r.args.length > 0) {
    io.stderr(`${env.prog}: unexpected argument '${r.args[0]}'\n`);
    return 1;
  }
  if (env.settings.backend !== 'sim') {
    io.stderr(`${env.prog}: only the simulated kernel's log is shown here; use 'kmodts --backend=sim ${env.prog}' (or the system's dmesg)\n`);
    return 1;
  }
  const { createSimBackend } = require('../backends/sim') as typeof import('../backends/sim');
  const backend = createSimBackend(env.settings, { env: io.env });
  if (clearOnly) {
    backend.clearKernelLog();
    return 0;
  }
  const records = backend.kernelLog();
  if (env.settings.json) require('./json/output').printJson(io, { kind: 'dmesg', version: 1, records });
  else
    for (const rec of records) {
      // continuation lines of a multi-line record are indented as dmesg does
      const head = (raw ? `<${rec.level}>` : '') + (notime ? '' : stamp(rec.usec));
      io.stdout(head + rec.text.split('\n').join('\n' + ' '.repeat(notime ? 0 : head.length - (raw ? 3 : 0))) + '\n');
    }
  if (clearAfter) backend.clearKernelLog();
  return 0;
}
