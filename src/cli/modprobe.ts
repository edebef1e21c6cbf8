// modprobe, as kmod 34.2's tools/modprobe.c behaves: options (glibc getopt_long, MODPROBE_OPTIONS),
// then one of -c, --show-modversions, --show-exports, -r, -a or insertion of one module with options.
// Resolution and probing live in the library (context, probe, remove); this file formats kmod's output.
import type { Context } from '../resolution/context';
import { InvalidAliasError } from '../errors';
import { KmodError } from '../errors';
import { strerror, EEXIST, ENOENT, EINVAL } from '../errno';
import type { Module } from '../resolution/module';
import {
  PROBE_APPLY_BLACKLIST,
  PROBE_APPLY_BLACKLIST_ALIAS_ONLY,
  PROBE_DRY_RUN,
  PROBE_FAIL_ON_LOADED,
  PROBE_FORCE_MODVERSION,
  PROBE_FORCE_VERMAGIC,
  PROBE_IGNORE_COMMAND,
  PROBE_IGNORE_LOADED,
  probeInsertModule,
} from '../resolution/probe';
import { getoptLong, type LongOption } from './getopt';
import { moduleDirectoryTooLong, newContext } from './module-dir';
import { ToolExit, type ToolEnv, type ToolIo } from './io';
import { LOG_CRIT, LOG_EMERG, LOG_INFO, LOG_WARNING, syslogIo, ToolLog } from './log';

const SHORT_OPTIONS = 'arw:RibfDcnC:d:S:sqvVh';

// kmod 34.2's table, in its order (glibc's ambiguity messages list candidates in table order).
// Options kmod maps to the same value share a val here too, so their prefixes are not ambiguous.
const LONG_OPTIONS: LongOption[] = [
  { name: 'all', hasArg: 0, val: 'a' },
  { name: 'remove', hasArg: 0, val: 'r' },
  { name: 'remove-dependencies', hasArg: 0, val: 'remove-holders' },
  { name: 'remove-holders', hasArg: 0, val: 'remove-holders' },
  { name: 'wait', hasArg: 1, val: 'w' },
  { name: 'resolve-alias', hasArg: 0, val: 'R' },
  { name: 'first-time', hasArg: 0, val: 'first-time' },
  { name: 'ignore-install', hasArg: 0, val: 'i' },
  { name: 'ignore-remove', hasArg: 0, val: 'i' },
  { name: 'use-blacklist', hasArg: 0, val: 'b' },
  { name: 'force', hasArg: 0, val: 'f' },
  { name: 'force-modversion', hasArg: 0, val: 'force-modversion' },
  { name: 'force-vermagic', hasArg: 0, val: 'force-vermagic' },
  { name: 'show-depends', hasArg: 0, val: 'D' },
  { name: 'showconfig', hasArg: 0, val: 'c' },
  { name: 'show-config', hasArg: 0, val: 'c' },
  { name: 'show-modversions', hasArg: 0, val: 'show-modversions' },
  { name: 'dump-modversions', hasArg: 0, val: 'show-modversions' },
  { name: 'show-exports', hasArg: 0, val: 'show-exports' },
  { name: 'dry-run', hasArg: 0, val: 'n' },
  { name: 'show', hasArg: 0, val: 'n' },
  { name: 'config', hasArg: 1, val: 'C' },
  { name: 'dirname', hasArg: 1, val: 'd' },
  { name: 'set-version', hasArg: 1, val: 'S' },
  { name: 'syslog', hasArg: 0, val: 's' },
  { name: 'quiet', hasArg: 0, val: 'q' },
  { name: 'verbose', hasArg: 0, val: 'v' },
  { name: 'version', hasArg: 0, val: 'V' },
  { name: 'help', hasArg: 0, val: 'h' },
];

function helpText(prog: string): string {
  return (
    `Usage:\n` +
    `\t${prog} [options] [-i] [-b] modulename [module options...]\n` +
    `\t${prog} [options] -a [-i] [-b] modulename [modulename...]\n` +
    `\t${prog} [options] -r [-i] modulename\n` +
    `\t${prog} [options] -r -a [-i] modulename [modulename...]\n` +
    `\t${prog} [options] -c\n` +
    `\t${prog} [options] --show-modversions|--show-exports filename\n` +
    `Loading and removing:\n` +
    `\t-a, --all                   treat every argument as a module name (no module options)\n` +
    `\t-r, --remove                unload the modules instead of loading them\n` +
    `\t    --remove-holders        with -r: unload the modules using it first\n` +
    `\t    --remove-dependencies   older name of --remove-holders\n` +
    `\t-w, --wait=<MSEC>           with -r: keep retrying a busy module for up to MSEC ms\n` +
    `\t    --first-time            fail if there is nothing to do (already loaded or not loaded)\n` +
    `\t-i, --ignore-install        skip install commands and softdeps from the configuration\n` +
    `\t-i, --ignore-remove         skip remove commands and softdeps from the configuration\n` +
    `\t-b, --use-blacklist         honour blacklist lines for the named module too\n` +
    `\t-f, --force                 both --force-modversion and --force-vermagic\n` +
    `\t    --force-modversion      load despite symbol version (CRC) mismatches\n` +
    `\t    --force-vermagic        load despite a different version magic string\n` +
    `\n` +
    `Queries:\n` +
    `\t-R, --resolve-alias         print the module names an alias stands for\n` +
    `\t-D, --show-depends          print what loading would do, without doing it\n` +
    `\t-c, --show-config           print the configuration and the alias and symbol indexes\n` +
    `\t-c, --showconfig            older name of --show-config\n` +
    `\t    --show-modversions      print the symbol versions a module file expects\n` +
    `\t    --dump-modversions      older name of --show-modversions\n` +
    `\t    --show-exports          print the symbols a module file exports, with their versions\n` +
    `\n` +
    `Other options:\n` +
    `\t-n, --dry-run               change nothing (with -v: print what would be done)\n` +
    `\t-n, --show                  older name of --dry-run\n` +
    `\t-C, --config=FILE           read FILE (or directory) instead of the modprobe.d directories\n` +
    `\t-d, --dirname=DIR           modules are in DIR/lib/modules\n` +
    `\t-S, --set-version=VERSION   kernel version to use instead of the running one\n` +
    `\t-s, --syslog                send messages to the system log\n` +
    `\t-q, --quiet                 print no messages\n` +
    `\t-v, --verbose               print more messages (repeatable)\n` +
    `\t-V, --version               print the version and exit\n` +
    `\t-h, --help                  print this help and exit\n`
  );
}

/** kmod's prepend_options_from_env(): MODPROBE_OPTIONS split on spaces, quotes grouping and removed. */
export function splitModprobeOptions(env: string): string[] {
  const c = [...env];
  const out: string[] = [];
  let str = 0;
  let quote = -1;
  let end = c.length;
  let s = 0;
  for (; s < end; s++) {
    if (quote < 0) {
      if (c[s] === ' ') {
        out.push(c.slice(str, s).join(''));
        str = s + 1;
      } else if (c[s] === '"' || c[s] === "'") quote = s;
    } else if (c[s] === c[quote]) {
      if (quote === str) {
        out.push(c.slice(str + 1, s).join(''));
        str = s + 1;
      } else {
        // drop both quote characters, keep scanning after the closing one
        c.splice(s, 1);
        c.splice(quote, 1);
        end -= 2;
        s -= 2;
      }
      quote = -1;
    }
  }
  if (str < s) out.push(c.slice(str, s).join(''));
  return out;
}

/** tools/opt.c options_from_array(): joined by spaces; `key=value with spaces` quoted as key="value". */
export function optionsFromArray(args: string[]): string | undefined {
  if (args.length === 0) return undefined;
  return args
    .map((a) => {
      const eq = a.indexOf('=');
      if (eq < 0) return a;
      const value = a.slice(eq + 1);
      if (value.startsWith('"') || value.startsWith("'") || !value.includes(' ')) return a;
      return `${a.slice(0, eq + 1)}"${value}"`;
    })
    .join(' ');
}

/** strtoul(s, &end, 0) accepting the whole string (kmod's -w check) */
function parseWait(s: string): number | undefined {
  const m = /^[\t\n\v\f\r ]*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$/.exec(s);
  if (!m) return undefined;
  const v = Number(m[2].startsWith('0x') || m[2].startsWith('0X') ? m[2] : m[2].length > 1 && m[2].startsWith('0') ? '0o' + m[2].slice(1) : m[2]);
  return m[1] === '-' ? Number.MAX_SAFE_INTEGER : v;
}

/** fstat(2) succeeds: stderr is open */
function stderrUsable(): boolean {
  try {
    (require('node:fs') as typeof import('node:fs')).fstatSync(2);
    return true;
  } catch {
    return false;
  }
}

interface Opts {
  all: boolean;
  remove: boolean;
  removeHolders: boolean;
  waitMsec: number;
  lookupOnly: boolean;
  firstTime: boolean;
  ignoreCommands: boolean;
  useBlacklist: boolean;
  force: boolean;
  stripModversion: boolean;
  stripVermagic: boolean;
  ignoreLoaded: boolean;
  dryRun: boolean;
  doShow: boolean;
  showConfig: boolean;
  showModversions: boolean;
  showExports: boolean;
  configPaths?: string[];
  root?: string;
  kversion?: string;
  syslog: boolean;
  verbose: number;
}

export async function run(args: string[], env: ToolEnv): Promise<number> {
  const childEnv: NodeJS.ProcessEnv = { ...env.io.env };
  const appendOption = (v: string): void => {
    const old = childEnv.MODPROBE_OPTIONS;
    childEnv.MODPROBE_OPTIONS = old === undefined ? v : `${old} ${v}`;
  };
  const fromEnv = env.io.env.MODPROBE_OPTIONS;
  const argv = fromEnv === undefined ? args : [...splitModprobeOptions(fromEnv), ...args];

  const io = env.io;
  let log = new ToolLog(io, env.prog);
  /** modprobe's LOG(): FATAL unless -a made it WARNING */
  let logPriority = LOG_CRIT;
  const o: Opts = {
    all: false, remove: false, removeHolders: false, waitMsec: 0, lookupOnly: false, firstTime: false,
    ignoreCommands: false, useBlacklist: false, force: false, stripModversion: false, stripVermagic: false,
    ignoreLoaded: false, dryRun: false, doShow: false, showConfig: false, showModversions: false,
    showExports: false, syslog: false, verbose: LOG_WARNING,
  };

  const parsed = getoptLong(env.argv0, argv, SHORT_OPTIONS, LONG_OPTIONS, io.env);
  for (const { opt, arg } of parsed.options) {
    switch (opt) {
      case 'a': logPriority = LOG_WARNING; o.all = true; break;
      case 'r': o.remove = true; break;
      case 'remove-holders': o.removeHolders = true; break;
      case 'w': {
        const w = parseWait(arg!);
        if (w === undefined) {
          log.error(`unexpected wait value '${arg}'.\n`);
          return 1;
        }
        o.waitMsec = w;
        break;
      }
      case 'first-time': o.firstTime = true; break;
      case 'i': o.ignoreCommands = true; break;
      case 'b': o.useBlacklist = true; break;
      case 'f': o.force = true; break;
      case 'force-modversion': o.stripModversion = true; break;
      case 'force-vermagic': o.stripVermagic = true; break;
      case 'D': o.ignoreLoaded = true; o.dryRun = true; o.doShow = true; break;
      case 'R': o.lookupOnly = true; break;
      case 'c': o.showConfig = true; break;
      case 'show-modversions': o.showModversions = true; break;
      case 'show-exports': o.showExports = true; break;
      case 'n': o.dryRun = true; break;
      case 'C':
        (o.configPaths ??= []).push(arg!);
        appendOption('-C');
        appendOption(arg!);
        break;
      case 'd': o.root = arg; break;
      case 'S': o.kversion = arg; break;
      case 's': appendOption('-s'); o.syslog = true; break;
      case 'q': appendOption('-q'); o.verbose = LOG_EMERG; break;
      case 'v': appendOption('-v'); o.verbose++; break;
      case 'V':
        (require('./version') as typeof import('./version')).printVersion(io);
        return 0;
      case 'h':
        io.stdout(helpText(env.prog));
        return 0;
    }
  }
  if (parsed.error !== undefined) {
    io.stderr(parsed.error + '\n');
    return 1;
  }
  const rest = parsed.args;

  // kmod 31+: messages go to syslog also when there is no usable stderr
  // (libkmod's default logger still writes to stderr, as long as kmod_new() runs: nowhere when closed)
  const stderrOpen = stderrUsable();
  if (o.syslog || !stderrOpen) log = new ToolLog(syslogIo(io, env.prog), env.prog, stderrOpen ? io : { ...io, stderr: () => {} });

  if (!o.showConfig && rest.length === 0) {
    log.error('missing parameters. See -h.\n');
    return 1;
  }
  const tooLong = moduleDirectoryTooLong(o.root, o.kversion);
  if (tooLong !== undefined) {
    log.error(tooLong);
    return 1;
  }

  const { selectBackend, stateDirs } = require('./backend-select') as typeof import('./backend-select');
  const dirs = stateDirs(env);
  const ctx = newContext(log, {
    root: o.root,
    kernelVersion: o.kversion,
    configPaths: o.configPaths,
    procDir: dirs.procDir,
    sysDir: dirs.sysDir,
    log: log.libkmod,
    backendFactory: () => selectBackend(env),
    parseConfigNow: true,
  });
  if (ctx === undefined) return 1;

  try {
    ctx.config(); // kmod_new() parses the configuration before the tool's logging is set up
    log.routeLibkmod(o.verbose);
    // kmod_set_log_fn reports the new function's address through it (a stand-in address here)
    log.libkmod(LOG_INFO, 'kmod_set_log_fn', 'custom logging function 0x7ffff7f8e340 registered\n');
    ctx.loadResources();
    if (env.settings.json && (o.doShow || o.lookupOnly) && !(o.showConfig || o.showModversions || o.showExports || o.remove)) return require('./json/modprobe').modprobeJson(ctx, rest, optionsFromArray(rest.slice(1)), { ...o, notFoundPriority: logPriority }, log, io);
    const mp = new Modprobe(ctx, o, log, logPriority, io, childEnv);
    let err: number;
    if (o.showConfig) err = mp.showConfig();
    else if (o.showModversions) err = mp.showSymbols(rest[0], 'versions');
    else if (o.showExports) err = mp.showSymbols(rest[0], 'exports');
    else if (o.remove) err = mp.removeAll(rest);
    else if (o.all) err = await mp.insertAll(rest);
    else err = await mp.insert(rest[0], optionsFromArray(rest.slice(1)));
    ctx.release();
    return err >= 0 ? 0 : 1;
  } catch (e) {
    if (e instanceof ToolExit) throw e;
    if (e instanceof KmodError) {
      // a malformed index or file: name it and fail (kmod has no defined behaviour here)
      io.flush();
      log.error(`${e.message}\n`);
      return 1;
    }
    throw e;
  }
}

class Modprobe {
  constructor(
    private readonly ctx: Context,
    private readonly o: Opts,
    private readonly log: ToolLog,
    private readonly logPriority: number,
    private readonly io: ToolIo,
    private readonly childEnv: NodeJS.ProcessEnv,
  ) {}

  /** modprobe's LOG() */
  private report(msg: string): void {
    this.log.log(this.logPriority, msg);
  }

  /** SHOW(): printed with -D or -v, flushed at once */
  private show(line: string): void {
    if (!this.o.doShow && this.o.verbose <= LOG_WARNING) return;
    this.io.stdout(line);
    this.io.flush();
  }

  showConfig(): number {
    const { formatConfig } = require('../resolution/config') as typeof import('../resolution/config');
    this.io.stdout(formatConfig(this.ctx.config()));
    this.io.stdout('\n# End of configuration files. Dumping indexes now:\n\n');
    this.io.flush();
    const alias = this.ctx.index('alias');
    if (alias) this.io.stdout(alias.dump('alias '));
    const symbols = this.ctx.index('symbols');
    if (symbols) this.io.stdout(symbols.dump('alias '));
    return 0;
  }

  showSymbols(filename: string, what: 'versions' | 'exports'): number {
    let mod: Module;
    try {
      mod = this.ctx.moduleFromPath(filename);
    } catch (e) {
      if (!(e instanceof KmodError)) throw e;
      this.report(`Module ${filename} not found.\n`);
      return -e.errno;
    }
    let list: { symbol: string; crc: bigint }[];
    try {
      const { openModuleFile } = require('../file/module-file') as typeof import('../file/module-file');
      const file = openModuleFile(mod.path!, { log: this.ctx.log });
      list = what === 'versions' ? file.versions() : file.exportedSymbols();
    } catch (e) {
      if (!(e instanceof KmodError)) throw e;
      this.report(`could not get ${what === 'versions' ? 'modversions' : 'symbols'} of ${filename}: ${strerror(e.errno)}\n`);
      return -e.errno;
    }
    let out = '';
    for (const v of list) out += `0x${v.crc.toString(16).padStart(8, '0')}\t${v.symbol}\n`;
    this.io.stdout(out);
    return 0;
  }

  private printAction = (m: Module, install: boolean, options: string): void => {
    if (install) {
      this.io.stdout(`install ${m.installCommand()} ${options}\n`);
      return;
    }
    const path = m.path;
    if (path === undefined) {
      if (m.initstate() === 'builtin') this.io.stdout(`builtin ${m.name}\n`);
    } else this.io.stdout(`insmod ${path} ${options}\n`);
  };

  private insertOne(mod: Module, flags: number, extra: string | undefined): number {
    let err = 0;
    if (this.o.lookupOnly) this.io.stdout(`${mod.name}\n`);
    else {
      const show = this.o.doShow || this.o.verbose > LOG_WARNING;
      err = probeInsertModule(mod, flags, extra, {
        printAction: show ? this.printAction : undefined,
        env: this.childEnv,
      });
    }
    if (err >= 0) return 0;
    if (err === -EEXIST) this.log.error(`could not insert '${mod.name}': Module already in kernel\n`);
    else if (err === -ENOENT) this.log.error(`could not insert '${mod.name}': Unknown symbol in module, or unknown parameter (see dmesg)\n`);
    else this.log.error(`could not insert '${mod.name}': ${strerror(-err)}\n`);
    return err;
  }

  async insert(alias: string, extra: string | undefined): Promise<number> {
    let mods: Module[];
    if (alias.startsWith('/') || alias.startsWith('./')) {
      try {
        mods = [this.ctx.moduleFromPath(alias)];
      } catch (e) {
        if (!(e instanceof KmodError)) throw e;
        this.report(`Failed to get module from path ${alias}: ${strerror(e.errno)}\n`);
        return -ENOENT;
      }
    } else {
      try {
        mods = this.ctx.lookup(alias);
      } catch (e) {
        if (!(e instanceof InvalidAliasError)) throw e;
        mods = [];
      }
      if (mods.length === 0) {
        this.report(`Module ${alias} not found in directory ${this.ctx.dirname}\n`);
        return -ENOENT;
      }
    }
    const o = this.o;
    let flags = 0;
    if (o.stripModversion || o.force) flags |= PROBE_FORCE_MODVERSION;
    if (o.stripVermagic || o.force) flags |= PROBE_FORCE_VERMAGIC;
    if (o.ignoreCommands) flags |= PROBE_IGNORE_COMMAND;
    if (o.ignoreLoaded) flags |= PROBE_IGNORE_LOADED;
    if (o.dryRun) flags |= PROBE_DRY_RUN;
    flags |= PROBE_APPLY_BLACKLIST_ALIAS_ONLY;
    if (o.useBlacklist) flags |= PROBE_APPLY_BLACKLIST;
    if (o.firstTime) flags |= PROBE_FAIL_ON_LOADED;
    let err = 0;
    for (const m of mods) err = this.insertOne(m, flags, extra);
    return err;
  }

  async insertAll(names: string[]): Promise<number> {
    let err = 0;
    for (const n of names) {
      this.ctx.releaseModules(); // kmod frees each argument's modules before the next
      const r = await this.insert(n, undefined);
      if (r < 0) err = r;
    }
    return err;
  }

  private removeOne(alias: string): number {
    let mods: Module[];
    try {
      mods = this.ctx.lookup(alias);
    } catch (e) {
      if (!(e instanceof InvalidAliasError)) throw e;
      return -EINVAL;
    }
    let err = 0;
    if (mods.length === 0) {
      this.report(`Module ${alias} not found.\n`);
      err = -ENOENT;
    }
    const { removeModule } = require('../resolution/remove') as typeof import('../resolution/remove');
    for (const m of mods) {
      err = removeModule(m, {
        ignoreCommands: this.o.ignoreCommands,
        ignoreLoaded: this.o.ignoreLoaded,
        firstTime: this.o.firstTime,
        force: this.o.force,
        waitMsec: this.o.waitMsec,
        removeHolders: this.o.removeHolders,
        dryRun: this.o.dryRun,
        show: (line) => this.show(line),
        report: (msg) => this.report(msg),
        error: (msg) => this.log.error(msg),
        flush: () => this.io.flush(),
        env: this.childEnv,
      });
      if (err < 0) break;
    }
    return err;
  }

  removeAll(names: string[]): number {
    let err = 0;
    for (const n of names) {
      this.ctx.releaseModules();
      const r = this.removeOne(n);
      if (r < 0) err = r;
    }
    return err;
  }
}
