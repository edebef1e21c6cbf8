// `kmod`, kmod 34.2's multi-call program (tools/kmod.c, tools/static-nodes.c): its commands help, list
// and static-nodes. Invoked through a link named after one of the six tools it is that tool, which
// src/cli/main.ts dispatches directly.
//
// kmod parses its own options with "+hV" and hands the command argv shifted by one without resetting
// glibc's getopt: the command's parse starts after the command name, shows argv[1] of kmod as its
// program name (`list: invalid option -- 'x'`, or `--:` after `kmod -- list`) and keeps stopping at the
// first non-option. ToolEnv.argv0 and requireOrder carry that.
import * as os from 'node:os';
import { KmodError } from '../errors';
import {
  devnamePath,
  formatDevnameEntry,
  openStaticNodesOutput,
  parseDevname,
  readDevnameFile,
  STATIC_NODES_MODULE_DIRECTORY,
  StaticNodesOutputError,
  staticNodesFormats,
  writeStaticNodesOutput,
  type StaticNodesFormat,
} from '../indexes/static-nodes';
import { getoptLong, type LongOption } from './getopt';
import type { ToolEnv, ToolIo } from './io';
import { printVersion } from './version';

/** kmod's commands and the links it answers to, each with a one-line description (our words) */
const commands: [string, string][] = [
  ['help', 'print this help'],
  ['list', 'list the modules loaded in the running kernel (as lsmod)'],
  ['static-nodes', 'print the device nodes the running kernel\'s modules would create'],
];
const links: [string, string][] = [
  ['lsmod', 'as the lsmod tool'],
  ['rmmod', 'as the rmmod tool'],
  ['insmod', 'as the insmod tool'],
  ['modinfo', 'as the modinfo tool'],
  ['modprobe', 'as the modprobe tool'],
  ['depmod', 'as the depmod tool'],
];

function kmodHelp(io: ToolIo): void {
  const rows = (list: [string, string][]) => list.map(([n, d]) => `  ${n.padEnd(12)} ${d}\n`).join('');
  io.stdout(
    'kmod - load, unload and list Linux kernel modules\n' +
      'Usage:\n' +
      '\tkmod [options] command [command_options]\n\n' +
      'Options:\n' +
      '\t-V, --version     print the version\n' +
      '\t-h, --help        print this help\n\n' +
      'Commands:\n' +
      rows(commands) +
      '\nRun through a link with one of these names, kmod is that tool:\n' +
      rows(links),
  );
}

const kmodOptions: LongOption[] = [
  { name: 'help', hasArg: 0, val: 'h' },
  { name: 'version', hasArg: 0, val: 'V' },
];

/** `kmod [options] command [command_options]`; args follow the program name. */
export async function run(args: string[], env: ToolEnv): Promise<number> {
  const io = env.io;
  const r = getoptLong(env.argv0, args, '+hV', kmodOptions, io.env);
  for (const o of r.options) {
    if (o.opt === 'h') {
      kmodHelp(io);
      return 0;
    }
    printVersion(io);
    return 0;
  }
  if (r.error !== undefined) {
    io.stderr(r.error + '\n');
    return 1;
  }
  if (r.args.length === 0) {
    io.stderr('missing command\n');
    kmodHelp(io);
    return 1;
  }
  const [command, ...commandArgs] = r.args;
  // the command's argv is kmod's shifted by one: its argv[0] is what followed "kmod"
  const commandEnv: ToolEnv = { ...env, argv0: args[0], requireOrder: true };
  switch (command) {
    case 'help':
      kmodHelp(io);
      return 0;
    case 'list':
      return (require('./lsmod') as typeof import('./lsmod')).run(commandArgs, commandEnv);
    case 'static-nodes':
      return staticNodes(commandArgs, commandEnv);
  }
  io.stderr(`invalid command '${command}'\n`);
  kmodHelp(io);
  return 1;
}

function staticNodesHelp(io: ToolIo): void {
  const descriptions: Record<StaticNodesFormat, string> = {
    human: '(default) readable text, not meant for parsing',
    tmpfiles: 'lines for systemd-tmpfiles (see tmpfiles.d(5))',
    devname: 'modules.devname\'s own format',
  };
  io.stdout(
    'Usage:\n' +
      '\tkmod static-nodes [options]\n\n' +
      'Prints the device nodes that the modules of the running kernel would create when loaded.\n\n' +
      'Options:\n' +
      '\t-f, --format=FORMAT  output format, one of the "Formats" below\n' +
      '\t-o, --output=FILE    write to FILE (its directories are created) instead of stdout\n' +
      '\t-h, --help           print this help\n\n' +
      'Formats:\n' +
      staticNodesFormats.map((f) => `\t${f.padEnd(12)} ${descriptions[f]}\n`).join(''),
  );
}

const staticNodesOptions: LongOption[] = [
  { name: 'output', hasArg: 1, val: 'o' },
  { name: 'format', hasArg: 1, val: 'f' },
  { name: 'help', hasArg: 0, val: 'h' },
];

/** an argument as the bytes kmod would print (io strings are binary) */
const bytes = (s: string): string => Buffer.from(s, 'utf8').toString('latin1');

/** `kmod static-nodes`: modules.devname of `uname -r` under /lib/modules, in one of three formats. */
function staticNodes(args: string[], env: ToolEnv): number {
  const io = env.io;
  // always a kmod command: kmod's "+" ordering applies (see the top of this file)
  const r = getoptLong(env.argv0, args, '+o:f:h', staticNodesOptions, io.env);
  let output: string | undefined;
  let format: StaticNodesFormat = 'human';
  for (const o of r.options) {
    if (o.opt === 'o') output = o.arg!;
    else if (o.opt === 'f') {
      if (!(staticNodesFormats as readonly string[]).includes(o.arg!)) {
        io.stderr(`Unknown format: '${bytes(o.arg!)}'.\n`);
        staticNodesHelp(io);
        return 1;
      }
      format = o.arg as StaticNodesFormat;
    } else {
      staticNodesHelp(io);
      return 0;
    }
  }
  if (r.error !== undefined) {
    io.stderr(r.error + '\n');
    return 1;
  }
  const release = os.release();
  const shown = `${STATIC_NODES_MODULE_DIRECTORY}/${release}/modules.devname`;
  let file: string;
  try {
    file = devnamePath(release);
  } catch (err) {
    if (!(err instanceof KmodError)) throw err;
    io.stderr(`Error: could not open ${shown} - path too long\n`);
    return 1;
  }
  let text: string | undefined;
  try {
    text = readDevnameFile(file);
  } catch (err) {
    if (!(err instanceof KmodError)) throw err;
    io.stderr(`Error: could not open ${shown} - ${err.reason}\n`);
    return 1;
  }
  if (text === undefined) {
    io.stderr(`Warning: ${shown} not found - ignoring\n`);
    return 0;
  }
  let fd: number | undefined;
  if (output !== undefined) {
    try {
      fd = openStaticNodesOutput(output);
    } catch (err) {
      if (!(err instanceof StaticNodesOutputError)) throw err;
      io.stderr(
        err.stage === 'parent-directory'
          ? `Error: could not create parent directory for ${bytes(output)} - ${err.reason}.\n`
          : `Error: could not create ${bytes(output)} - ${err.reason}\n`,
      );
      return 1;
    }
  }
  let status = 0;
  let out = '';
  for (const rec of parseDevname(text)) {
    if (rec.kind === 'entry') {
      // on stdout each entry goes into its buffer as kmod prints it: the errors fall between the same
      // bytes of output as kmod's when both are on one file (`2>&1`)
      if (fd === undefined) io.stdout(formatDevnameEntry(rec.entry, format));
      else out += formatDevnameEntry(rec.entry, format);
    } else {
      io.stderr(`Error: invalid devname entry: ${rec.text}`);
      status = 1;
    }
  }
  if (fd !== undefined) writeStaticNodesOutput(fd, out);
  return status;
}
