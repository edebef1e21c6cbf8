// depmod, as kmod 34.2's tools/depmod.c behaves: options (glibc getopt_long), the version argument,
// optional module paths, then the library's depmod() with kmod's messages and exit statuses.
import * as os from 'node:os';
import { depmod, DepmodFailed, DepmodFatal, isVersionNumber, type DepmodOptions } from '../depmod/depmod';
import { KmodError } from '../errors';
import { getoptLong, type LongOption } from './getopt';
import { ToolExit, type ToolEnv } from './io';
import { loadConfig } from '../resolution/config';
import { absolutePath } from '../resolution/context';
import { LOG_CRIT, LOG_ERR, LOG_INFO, LOG_WARNING, ToolLog } from './log';
import { printVersion } from './version';

const SHORT_OPTIONS = 'aAb:m:o:C:E:F:evnP:wVh';

// kmod 34.2's table, in its order (glibc lists ambiguous candidates in table order)
const LONG_OPTIONS: LongOption[] = [
  { name: 'all', hasArg: 0, val: 'a' },
  { name: 'quick', hasArg: 0, val: 'A' },
  { name: 'basedir', hasArg: 1, val: 'b' },
  { name: 'moduledir', hasArg: 1, val: 'm' },
  { name: 'outdir', hasArg: 1, val: 'o' },
  { name: 'config', hasArg: 1, val: 'C' },
  { name: 'symvers', hasArg: 1, val: 'E' },
  { name: 'filesyms', hasArg: 1, val: 'F' },
  { name: 'errsyms', hasArg: 0, val: 'e' },
  { name: 'verbose', hasArg: 0, val: 'v' },
  { name: 'show', hasArg: 0, val: 'n' },
  { name: 'dry-run', hasArg: 0, val: 'n' },
  { name: 'symbol-prefix', hasArg: 1, val: 'P' },
  { name: 'warn', hasArg: 0, val: 'w' },
  { name: 'version', hasArg: 0, val: 'V' },
  { name: 'help', hasArg: 0, val: 'h' },
];

function helpText(prog: string): string {
  return (
    `Usage:\n` +
    `\t${prog} -[aA] [options] [forced_version]\n` +
    `\n` +
    `Without module arguments, every module of the tree is indexed (as with -a).\n` +
    `\n` +
    `${prog} writes the dependency and alias indexes that modprobe reads.\n` +
    `\n` +
    `Options:\n` +
    `\t-a, --all            index every module of the tree\n` +
    `\t-A, --quick          do nothing unless a module is newer than modules.dep\n` +
    `\t-e, --errsyms        report symbols no module or kernel provides\n` +
    `\t-n, --show           print the text indexes on stdout instead of writing files\n` +
    `\t-P, --symbol-prefix  symbol prefix character of the architecture\n` +
    `\t-C, --config=PATH    read the configuration from PATH instead of depmod.d\n` +
    `\t-v, --verbose        say which module needs which symbol from where\n` +
    `\t-w, --warn           warn about duplicate index entries\n` +
    `\t-V, --version        print the version\n` +
    `\t-h, --help           print this help\n` +
    `\n` +
    `For building images and distributions:\n` +
    `\t-b, --basedir=DIR    root directory of the tree (default: /).\n` +
    `\t-m, --moduledir=DIR  module directory under the root (default: /lib/modules).\n` +
    `\t-o, --outdir=DIR     root directory for the output (default: the basedir).\n` +
    `\t-F, --filesyms=FILE  take the kernel's symbols from this System.map\n` +
    `\t                     instead of the running kernel.\n` +
    `\t-E, --symvers=FILE   take the kernel's symbols and versions from this\n` +
    `\t                     Module.symvers and check the versions.\n`
  );
}

function progressReporter(env: ToolEnv): DepmodOptions['onProgress'] {
  if (!env.io.stderrIsTTY) return undefined;
  let last = 0;
  let shown = false;
  return (done, total) => {
    const now = Date.now();
    if (done < total && now - last < 100) return;
    last = now;
    if (done >= total) {
      if (shown) env.io.stderr('\r\x1b[K');
      return;
    }
    shown = true;
    env.io.stderr(`\r${env.prog}: reading modules ${done}/${total}\x1b[K`);
  };
}

/** KMODTS_DEPMOD_CACHE=off (or 0, no, false): no scan cache is read or written (kmodts(1)) */
function scanCacheWanted(env: NodeJS.ProcessEnv): boolean {
  const v = (env.KMODTS_DEPMOD_CACHE ?? '').toLowerCase();
  return !(v === 'off' || v === '0' || v === 'no' || v === 'false');
}

export async function run(argv: string[], env: ToolEnv): Promise<number> {
  const io = env.io;
  const log = new ToolLog(io, env.prog);
  let verbose = LOG_WARNING;
  const parsed = getoptLong(env.argv0, argv, SHORT_OPTIONS, LONG_OPTIONS, io.env);
  let all = false;
  let quick = false;
  let root: string | undefined;
  let moduledir: string | undefined;
  let outRoot: string | undefined;
  const configPaths: string[] = [];
  let symvers: string | undefined;
  let systemMap: string | undefined;
  let errsyms = false;
  let dryRun = false;
  let prefix: string | undefined;
  let warn = false;
  let started: (() => void) | undefined;
  let released = false;
  try {
    for (const o of parsed.options) {
      switch (o.opt) {
        case 'a': all = true; break;
        case 'A': quick = true; break;
        case 'b': root = absolutePath(o.arg!); break;
        case 'm': moduledir = o.arg!; break;
        case 'o': outRoot = absolutePath(o.arg!); break;
        case 'C': configPaths.push(o.arg!); break;
        case 'E': symvers = o.arg!; break;
        case 'F': systemMap = o.arg!; break;
        case 'e': errsyms = true; break;
        case 'v': verbose++; break;
        case 'n': dryRun = true; break;
        case 'P':
          if (o.arg!.length !== 1) {
            log.log(LOG_CRIT, '-P only takes a single char\n');
            return 1;
          }
          prefix = o.arg!;
          break;
        case 'w': warn = true; break;
        case 'h':
          io.stdout(helpText(env.prog));
          return 0;
        case 'V':
          printVersion(io);
          return 0;
      }
    }
    if (parsed.error !== undefined) {
      io.stderr(`${parsed.error}\n`);
      return 1;
    }
    const args = parsed.args;
    let kversion: string;
    let k = 0;
    if (args.length > 0) {
      if (!isVersionNumber(args[0])) {
        log.log(LOG_ERR, `Bad version passed ${args[0]}\n`);
        return 1;
      }
      kversion = args[0];
      k = 1;
    } else kversion = os.release();
    const modulePaths = args.slice(k);
    if (modulePaths.length === 0) all = true;
    // libkmod's INFO lines around its context (kmod_set_log_fn / kmod_unref); the addresses are
    // kmod's pointers, so only their shape can match
    started = (): void => log.log(LOG_INFO, `custom logging function 0x${(0x7f0000000000 + process.pid * 4096).toString(16)} registered\n`);
    await depmod({
      kernelVersion: kversion,
      basedir: root,
      moduledir,
      outdir: outRoot,
      configPaths: configPaths.length > 0 ? configPaths : undefined,
      modulePaths: all ? undefined : modulePaths,
      symvers,
      systemMap,
      errsyms,
      symbolPrefix: prefix,
      warnDuplicates: warn,
      quick,
      dryRun,
      output: (s) => io.stdout(Buffer.from(s, 'latin1')),
      show: verbose > LOG_WARNING ? (line) => {
        io.stdout(Buffer.from(line, 'latin1'));
        io.flush();
      } : undefined,
      log: (prio, msg) => log.log(prio, msg),
      onProgress: progressReporter(env),
      scanCache: scanCacheWanted(io.env),
      onStart: (dirname) => {
        // kmod_new(dirname, empty config): modules.softdep/weakdep and /proc/cmdline are read, and their
        // errors printed by libkmod's default logger, before depmod installs its own (log_setup_kmod_log)
        loadConfig({ configPaths: [], moduleDir: dirname, procDir: io.env.KMODTS_PROC_DIR, log: log.libkmod });
        log.routeLibkmod(verbose);
        started?.();
        released = true;
      },
    });
    return 0;
  } catch (err) {
    if (err instanceof ToolExit) throw err;
    if (err instanceof DepmodFatal) {
      released = false; // kmod exits at once
      log.log(LOG_CRIT, err.logMessage);
      return 1;
    }
    if (err instanceof DepmodFailed) return 1;
    if (err instanceof KmodError) {
      log.log(LOG_ERR, `${err.message}\n`);
      return 1;
    }
    throw err;
  } finally {
    if (released) log.log(LOG_INFO, `context 0x${(0x550000000000 + process.pid * 4096).toString(16)} released\n`);
  }
}

