// insmod, as kmod 34.2's tools/insmod.c: one module file, its parameters from the remaining
// arguments, no dependency handling and no configuration.
import { KmodError } from '../errors';
import { EINVAL, ENOENT, ENOEXEC, ESRCH, strerror } from '../errno';
import { INSERT_FORCE_MODVERSION, INSERT_FORCE_VERMAGIC, insertModule } from '../loading/insert';
import type { ToolEnv } from './io';
import { parseSimpleTool, releaseContext, simpleContext, toolLog } from './simple-tool';

function help(prog: string): string {
  return (
    'Usage:\n' +
    `\t${prog} [options] filename [module options]\n` +
    'Options:\n' +
    '\t-f, --force       DANGEROUS: load even if the symbol versions or the\n' +
    '\t                  version magic do not match; can crash the kernel\n' +
    '\t-s, --syslog      send messages to syslog instead of stderr\n' +
    '\t-v, --verbose     print more messages\n' +
    '\t-V, --version     print the version\n' +
    '\t-h, --help        print this help\n'
  );
}

/** insmod's own wording for the errors the kernel returns most often */
function insertStrerror(errno: number): string {
  switch (errno) {
    case ENOEXEC: return 'Invalid module format';
    case ENOENT: return 'Unknown symbol in module';
    case ESRCH: return 'Module has wrong symbol version';
    case EINVAL: return 'Invalid parameters';
    default: return strerror(errno);
  }
}

export function run(args: string[], env: ToolEnv): number {
  const o = parseSimpleTool(args, env, 'fsvVh', help);
  if (typeof o === 'number') return o;
  const log = toolLog(env, o);
  if (o.args.length === 0) {
    log.error('missing filename.\n');
    return 1;
  }
  const filename = o.args[0];
  if (filename === '-') {
    log.error('this tool does not support loading from stdin!\n');
    return 1;
  }
  const { optionsFromArray } = require('./modprobe') as typeof import('./modprobe');
  const options = optionsFromArray(o.args.slice(1));
  const ctx = simpleContext(env, log, o.verbose);
  try {
    let mod;
    try {
      mod = ctx.moduleFromPath(filename);
    } catch (err) {
      if (!(err instanceof KmodError)) throw err;
      log.error(`could not load module ${filename}: ${strerror(err.errno)}\n`);
      return 1;
    }
    const flags = o.force ? INSERT_FORCE_MODVERSION | INSERT_FORCE_VERMAGIC : 0;
    const r = insertModule(ctx, mod, options, flags);
    if (r < 0) {
      log.error(`could not insert module ${filename}: ${insertStrerror(-r)}\n`);
      return 1;
    }
    return 0;
  } finally {
    releaseContext(ctx);
  }
}
