// modinfo: prints the information stored in modules, formatted as kmod 34.2's tools/modinfo.c does.
import { absolutePath, type Context, MODULE_DIRECTORY } from '../resolution/context';
import { strerror } from '../errno';
import { KmodError } from '../errors';
import { PartsPrefetcher } from '../file/parts-prefetch';
import { regularFileSizes } from '../file/regular-files';
import type { ModuleFile } from '../file/module-file';
import { pathEndsWithKmodExt } from '../names/modname';
import { moduleInfo, moduleParams, type InfoList } from '../resolution/modinfo';
import type { Module } from '../resolution/module';
import { getoptLong, type LongOption } from './getopt';
import { moduleDirectoryTooLong, newContext } from './module-dir';
import type { ToolEnv, ToolIo } from './io';
import { ToolLog } from './log';
import { printVersion } from './version';

const longOptions: LongOption[] = [
  { name: 'author', hasArg: 0, val: 'a' },
  { name: 'description', hasArg: 0, val: 'd' },
  { name: 'license', hasArg: 0, val: 'l' },
  { name: 'parameters', hasArg: 0, val: 'p' },
  { name: 'filename', hasArg: 0, val: 'n' },
  { name: 'null', hasArg: 0, val: '0' },
  { name: 'modname', hasArg: 0, val: 'm' },
  { name: 'field', hasArg: 1, val: 'F' },
  { name: 'set-version', hasArg: 1, val: 'k' },
  { name: 'basedir', hasArg: 1, val: 'b' },
  { name: 'version', hasArg: 0, val: 'V' },
  { name: 'help', hasArg: 0, val: 'h' },
];

function help(io: ToolIo, prog: string): void {
  io.stdout(
    `Usage:\n\t${prog} [options] <modulename|filename> [args]\n` +
      'Options:\n' +
      "\t-a, --author                Show only the 'author' field\n" +
      "\t-d, --description           Show only the 'description' field\n" +
      "\t-l, --license               Show only the 'license' field\n" +
      "\t-p, --parameters            Show only the parameters ('parm')\n" +
      "\t-n, --filename              Show only the module's file name\n" +
      '\t-0, --null                  End each value with \\0 rather than a newline\n' +
      '\t-m, --modname               Take the arguments as module names, not aliases or files\n' +
      '\t-F, --field=FIELD           Show only the values of FIELD\n' +
      '\t-k, --set-version=VERSION   Look in the tree of kernel VERSION, not `uname -r`\n' +
      `\t-b, --basedir=DIR           Prefix DIR to ${MODULE_DIRECTORY}\n` +
      '\t-V, --version               Show the version\n' +
      '\t-h, --help                  Show this help\n',
  );
}

/**
 * modinfo's is_module_filename for each name, with the file's size: a module extension and a regular
 * file, else undefined (the regular files' stat()s in one call: modinfo is often given a whole tree)
 */
function moduleFileSizes(names: readonly string[]): (number | undefined)[] {
  const sizes: (number | undefined)[] = new Array(names.length).fill(undefined);
  const candidates = names.flatMap((name, i) => (pathEndsWithKmodExt(name) ? [i] : []));
  regularFileSizes(candidates.map((i) => names[i])).forEach((size, k) => {
    sizes[candidates[k]] = size;
  });
  return sizes;
}

/** are most of these module paths compressed ones (by name)? */
function mostlyCompressed(paths: readonly string[]): boolean {
  let plain = 0;
  for (let i = 0; i < paths.length; i++) if (paths[i].endsWith('.ko')) plain++;
  return 2 * plain < paths.length;
}

function isModuleFilename(name: string): boolean {
  return moduleFileSizes([name])[0] !== undefined;
}

/**
 * Output in bytes (module texts are Latin-1-safe byte strings, so nothing is re-encoded): lines are
 * joined into a short string, which is written into a buffer every few KiB; the buffer goes out
 * whole. One write per line cost more than formatting the line; one string for all the output kept
 * thousands of small strings alive across collections.
 */
class Printer {
  private pending = '';
  private buf = Buffer.allocUnsafe(OUT_CHUNK);
  private used = 0;
  constructor(private readonly io: ToolIo) {}
  put(s: string): void {
    this.pending += s;
    if (this.pending.length >= PENDING_LIMIT) this.spill();
  }
  /** the pending text into the buffer (sent first when it would not fit) */
  private spill(): void {
    const text = this.pending;
    this.pending = '';
    if (text.length > OUT_CHUNK - this.used) {
      this.send();
      if (text.length > OUT_CHUNK) {
        this.io.stdout(Buffer.from(text, 'latin1'));
        return;
      }
    }
    this.used += this.buf.write(text, this.used, 'latin1');
  }
  private send(): void {
    if (this.used === 0) return;
    // io may keep the bytes it is given: the buffer is its own from here on
    this.io.stdout(this.buf.subarray(0, this.used));
    this.buf = Buffer.allocUnsafe(OUT_CHUNK);
    this.used = 0;
  }
  flush(): void {
    if (this.pending !== '') this.spill();
    this.send();
  }
}

const PENDING_LIMIT = 4096;
const OUT_CHUNK = 65536;

/** printf("%-16s", s) */
function pad16(s: string): string {
  return s.length >= 16 ? s : s + ' '.repeat(16 - s.length);
}

interface Options {
  field?: string;
  sep: string;
}

class Modinfo {
  constructor(
    private readonly ctx: Context,
    private readonly opts: Options,
    private readonly out: Printer,
    private readonly log: ToolLog,
  ) {}

  private printParams(list: InfoList, keyed: boolean): void {
    const sep = this.opts.sep;
    const params = moduleParams(list, (key, value) => this.log.error(`Found invalid "${key}=${value}": missing ':'\n`));
    const lead = keyed ? pad16('parm:') : '';
    for (let k = 0; k < params.length; k++) {
      const p = params[k];
      if (p.description === undefined) this.out.put(keyed ? `${lead}${p.name}:${p.type ?? ''}${sep}` : `${p.name}: (${p.type ?? ''})${sep}`);
      else if (p.type !== undefined) this.out.put(`${lead}${p.name}:${p.description} (${p.type})${sep}`);
      else this.out.put(`${lead}${p.name}:${p.description}${sep}`);
    }
  }

  /** modinfo_do: one module; false when its information could not be read */
  show(mod: Module, file?: ModuleFile): boolean {
    const { field, sep } = this.opts;
    let filename = mod.path;
    const isBuiltin = filename === undefined;
    if (isBuiltin) {
      if (field === undefined) this.out.put(`${pad16('name:')}${mod.name}${sep}`);
      else if (field === 'name') this.out.put(`${mod.name}${sep}`);
      filename = '(builtin)';
    }
    if (field === 'filename') {
      this.out.put(`${filename}${sep}`);
      return true;
    }
    if (field === undefined) this.out.put(`${pad16('filename:')}${filename}${sep}`);
    let list: InfoList;
    try {
      list = moduleInfo(mod, this.ctx, file);
    } catch (err) {
      if (!(err instanceof KmodError)) throw err;
      // an old kernel without modules.builtin.modinfo: nothing more to say
      if (isBuiltin && err.errno === 2) return true;
      this.out.flush();
      this.log.error(`could not get modinfo from '${mod.name}': ${strerror(err.errno)}\n`);
      return false;
    }
    if (field === 'parm') {
      this.printParams(list, false);
      return true;
    }
    const rest: InfoList = [];
    // (indexed, no destructuring: unoptimized, those allocate iterators (decisions.md))
    for (let k = 0; k < list.length; k++) {
      const entry = list[k];
      const key = entry[0];
      const value = entry[1];
      if (field !== undefined) {
        if (key === field) this.out.put(`${value}${sep}`);
        continue;
      }
      if (key === 'parm' || key === 'parmtype') {
        rest.push(entry);
        continue;
      }
      if (sep === '\0') this.out.put(`${key}=${value}\0`);
      else this.out.put(`${key}:${' '.repeat(Math.max(0, 15 - key.length))}${value}${sep}`);
    }
    if (field === undefined) this.printParams(rest, true);
    return true;
  }

  /** `file` opens the module's file when it was read ahead (see run()); a promise only where it gives one */
  byPath(path: string, file?: () => ModuleFile | undefined | Promise<ModuleFile | undefined>): boolean | Promise<boolean> {
    let mod: Module;
    try {
      // (run() found it a regular file a moment ago)
      mod = this.ctx.moduleFromPath(path, true);
    } catch (err) {
      if (!(err instanceof KmodError)) throw err;
      this.log.error(`Module file ${path} not found.\n`);
      return false;
    }
    const opened = mod.path !== undefined && file ? file() : undefined;
    return opened instanceof Promise ? opened.then((f) => this.show(mod, f)) : this.show(mod, opened);
  }

  byName(name: string): boolean {
    let mod: Module | undefined;
    try {
      mod = this.ctx.lookupName(name);
    } catch (err) {
      if (!(err instanceof KmodError)) throw err;
    }
    if (mod === undefined) {
      this.log.error(`Module name ${name} not found.\n`);
      return false;
    }
    return this.show(mod);
  }

  byAlias(alias: string): boolean {
    let mods: Module[];
    try {
      mods = this.ctx.lookup(alias);
    } catch (err) {
      if (!(err instanceof KmodError)) throw err;
      this.log.error(`Module alias ${alias} not found.\n`);
      return false;
    }
    if (mods.length === 0) {
      this.log.error(`Module ${alias} not found.\n`);
      return false;
    }
    let ok = true;
    for (const m of mods) if (!this.show(m)) ok = false;
    return ok;
  }
}

export async function run(args: string[], env: ToolEnv): Promise<number> {
  const { prog } = env;
  // kmod prints to stdout as it goes: what the Printer holds is handed to stdout's buffer before
  // anything goes to stderr, for the two to interleave as kmod's do on one file (`> log 2>&1`)
  let out: Printer | undefined;
  const io: ToolIo = { ...env.io, stderr: (data) => { out?.flush(); env.io.stderr(data); } };
  const log = new ToolLog(io, prog);
  const r = getoptLong(env.argv0, args, 'adlpn0mF:k:b:Vh', longOptions, io.env);
  const opts: Options = { sep: '\n' };
  let byModname = false;
  let kversion: string | undefined;
  let root: string | undefined;
  for (const o of r.options) {
    switch (o.opt) {
      case 'a': opts.field = 'author'; break;
      case 'd': opts.field = 'description'; break;
      case 'l': opts.field = 'license'; break;
      case 'p': opts.field = 'parm'; break;
      case 'n': opts.field = 'filename'; break;
      case '0': opts.sep = '\0'; break;
      case 'm': byModname = true; break;
      case 'F': opts.field = o.arg; break;
      case 'k': kversion = o.arg; break;
      case 'b': root = o.arg; break;
      case 'h':
        help(io, prog);
        return 0;
      case 'V':
        printVersion(io);
        return 0;
    }
  }
  if (r.error !== undefined) {
    io.stderr(`${r.error}\n`);
    return 1;
  }
  if (r.args.length === 0) {
    log.error('missing module or filename.\n');
    return 1;
  }
  const tooLong = moduleDirectoryTooLong(root, kversion);
  if (tooLong !== undefined) {
    log.error(tooLong);
    return 1;
  }
  const ctx = newContext(log, { root, kernelVersion: kversion, configPaths: [], log: log.libkmod, parseConfigNow: true });
  if (ctx === undefined) return 1;
  out = new Printer(io);
  const modinfo = new Modinfo(ctx, opts, out, log);
  if (env.settings.json) return require('./json/modinfo').modinfoJson(modinfo, ctx, r.args, byModname, isModuleFilename, log, io);
  const sizes = byModname ? r.args.map(() => undefined) : moduleFileSizes(r.args);
  const kinds = r.args.map((_, i) => (byModname ? 'name' : sizes[i] !== undefined ? 'path' : 'alias'));
  // several module files read ahead on the thread pool, in argument order: of each only the parts
  // modinfo reads (file/modinfo-parts.ts), from the decompressed image of a compressed one
  const partsAhead: string[] = [];
  const partsIndex = new Map<number, number>();
  r.args.forEach((name, i) => {
    if (kinds[i] !== 'path') return;
    let abs: string;
    try {
      abs = absolutePath(name);
    } catch (err) {
      if (err instanceof KmodError) return; // no current directory: byPath reports it
      throw err;
    }
    partsIndex.set(i, partsAhead.length);
    partsAhead.push(abs);
  });
  const reads = opts.field !== 'filename';
  const partsPrefetch = reads && partsAhead.length > 1 ? PartsPrefetcher.start(partsAhead, mostlyCompressed(partsAhead)) : undefined;
  let ok = true;
  try {
    for (let i = 0; i < r.args.length; i++) {
      const name = r.args[i];
      let done: boolean;
      if (kinds[i] === 'name') done = modinfo.byName(name);
      else if (kinds[i] === 'path') {
        const partsAt = partsIndex.get(i);
        let file: (() => ModuleFile | undefined | Promise<ModuleFile | undefined>) | undefined;
        if (partsPrefetch && partsAt !== undefined) file = () => partsPrefetch.take(partsAt, { log: ctx.log, modinfoOnly: true });
        const shown = modinfo.byPath(name, file);
        done = shown instanceof Promise ? await shown : shown;
      } else done = modinfo.byAlias(name);
      if (!done) ok = false;
      // kmod frees each argument's modules before the next: the same name from another path, or by
      // name from the tree after a path, is a module of its own
      ctx.releaseModules();
    }
  } finally {
    partsPrefetch?.close();
    out.flush();
  }
  ctx.release();
  return ok ? 0 : 1;
}
