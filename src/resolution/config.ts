// modprobe.d configuration (libkmod-config.c's model): the lists kmod keeps, in parse order.
// The parser (loadConfig) and the `modprobe -c` formatter (formatConfig) live here too.
import * as fs from '../file/binary-os';
import { PATH_MAX } from '../file/binary-os';
import { LOG_ERR, type LogFn } from '../log';
import { EFBIG, ENAMETOOLONG, errnoOf, strerror } from '../errno';
import { readKernelCmdline } from './kcmdline';
import { underscores } from '../names/modname';
import { readBinaryString } from '../file/read-text';

export interface ConfigAlias { name: string; modname: string }
export interface ConfigOptions { modname: string; options: string }
export interface ConfigCommand { modname: string; command: string }
export interface ConfigSoftdep {
  name: string;
  pre: string[];
  post: string[];
  /**
   * The value `modprobe -c` prints for this entry (set by loadConfig): kmod shows the stretch of the
   * line from the first to the last pre: name, then from the first to the last post: name, so names
   * of the other kind in between are shown too (`softdep m pre: a post: b pre: c` →
   * `pre: a b cpost: b`). Without it, formatConfig shows pre and post as they are.
   */
  shownAs?: string;
}
export interface ConfigWeakdep { name: string; deps: string[] }

export interface ModprobeConfig {
  aliases: ConfigAlias[];
  blacklists: string[];
  options: ConfigOptions[];
  installs: ConfigCommand[];
  removes: ConfigCommand[];
  softdeps: ConfigSoftdep[];
  weakdeps: ConfigWeakdep[];
}

export interface ConfigLoadOptions {
  /**
   * -C: files or directories replacing the default search paths. `[]` is kmod's empty search path
   * (insmod, rmmod, lsmod, modinfo and depmod): no modprobe.d, but modules.softdep, modules.weakdep
   * and the kernel command line are still read, and their errors still reported.
   */
  configPaths?: string[];
  /** the module directory, for modules.softdep / modules.weakdep */
  moduleDir: string;
  /** where /proc is, for /proc/cmdline */
  procDir?: string;
  log?: LogFn;
}

/**
 * kmod 34.2's default search path (Debian's build: SYSCONFDIR=/etc, DISTCONFDIR=/usr/lib), highest
 * priority first: a file name found in an earlier directory hides the same name in later ones.
 */
export const DEFAULT_CONFIG_PATHS: readonly string[] = [
  '/etc/modprobe.d',
  '/run/modprobe.d',
  '/usr/local/lib/modprobe.d',
  '/usr/lib/modprobe.d',
  '/lib/modprobe.d',
];

export function emptyConfig(): ModprobeConfig {
  return { aliases: [], blacklists: [], options: [], installs: [], removes: [], softdeps: [], weakdeps: [] };
}

/** One file to parse: `dir/name`, or a -C path given as a file (`single`). */
interface ConfigFile {
  name: string;
  nameBytes: Buffer;
  dir: string;
  single: boolean;
}

/**
 * Where a file named `key` goes in `sorted` (kept in bytewise, strcmp order, without duplicates), or -1
 * when the name is there already. kmod walks its list from the start; a binary search finds the same
 * place, without a quadratic cost for directories of thousands of files.
 */
export function sortedInsertIndex(sorted: readonly { nameBytes: Buffer }[], key: Buffer): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const cmp = Buffer.compare(key, sorted[mid].nameBytes);
    if (cmp === 0) return -1;
    if (cmp < 0) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/**
 * Adds a file to the list kept sorted by name (bytewise, as strcmp); a name already present was
 * found in a higher-priority place and wins.
 */
function insertSorted(files: ConfigFile[], dir: string, name: string | undefined): void {
  const single = name === undefined;
  const n = single ? dir.slice(dir.lastIndexOf('/') + 1) : name;
  const nameBytes = Buffer.from(n);
  const at = sortedInsertIndex(files, nameBytes);
  if (at >= 0) files.splice(at, 0, { name: n, nameBytes, dir, single });
}

/** conf_files_list()'s name filter: *.conf, not hidden */
function isConfName(fn: string): boolean {
  return !fn.startsWith('.') && fn.length >= 6 && fn.endsWith('.conf');
}

/**
 * conf_files_filter_out()'s check of one entry: undefined when it is a file to read, else the
 * message kmod prints. Over PATH_MAX the joined name cannot be stat'ed, but kmod stats relative to
 * the open directory: then the directory entry's own type (ent) tells, and without it, 'unknown'.
 */
function entryProblem(path: string, fn: string, ent?: fs.Dirent): string | 'unknown' | undefined {
  let isDir: boolean;
  try {
    isDir = fs.statSync(`${path}/${fn}`).isDirectory();
  } catch (err) {
    if (errnoOf(err) !== ENAMETOOLONG) return `Cannot stat directory entry: ${path}/${fn}\n`;
    if (ent === undefined) return 'unknown';
    isDir = ent.isDirectory();
  }
  return isDir ? `Directories inside directories are not supported: ${path}/${fn}\n` : undefined;
}

/** conf_files_list(): a directory's *.conf files (not hidden, not directories), or a single file. */
function listConfigPath(files: ConfigFile[], path: string, log?: LogFn): void {
  let st: fs.Stats | undefined;
  try {
    // not throwing for the usual case, a missing default directory: exceptions are slow to make
    st = fs.statSync(path, { throwIfNoEntry: false });
  } catch {
    return;
  }
  if (st === undefined) return;
  if (!st.isDirectory()) {
    insertSorted(files, path, undefined);
    return;
  }
  // Fast path: readdirSync costs a fraction of opendir's first use, but libuv sorts its names, and
  // kmod reports problem entries in raw readdir order; that order only shows with two or more.
  let sorted: string[] | undefined;
  try {
    sorted = fs.readdirSync(path);
  } catch {
    // the raw listing below reports it as kmod does
  }
  if (sorted !== undefined) {
    const checked = sorted.filter(isConfName).map((fn) => ({ fn, problem: entryProblem(path, fn) }));
    const problems = checked.filter((c) => c.problem !== undefined);
    if (problems.length < 2 && !problems.some((c) => c.problem === 'unknown')) {
      for (const { fn, problem } of checked) {
        if (problem === undefined) insertSorted(files, path, fn);
        else log?.(LOG_ERR, 'conf_files_filter_out', problem);
      }
      return;
    }
  }
  listDirectoryRaw(files, path, log);
}

/** conf_files_list() over a directory in raw readdir order, the order of its messages. */
function listDirectoryRaw(files: ConfigFile[], path: string, log?: LogFn): void {
  let dir: fs.Dir;
  try {
    dir = fs.opendirSync(path);
  } catch (err) {
    log?.(LOG_ERR, 'conf_files_list', `opendir(${path}): ${strerror(errnoOf(err))}\n`);
    return;
  }
  try {
    for (let ent = dir.readSync(); ent !== null; ent = dir.readSync()) {
      const fn = ent.name;
      if (!isConfName(fn)) continue;
      const problem = entryProblem(path, fn, ent);
      if (problem === undefined) insertSorted(files, path, fn);
      else log?.(LOG_ERR, 'conf_files_filter_out', problem);
    }
  } catch {
    // a directory that fails mid-read ends its listing, as readdir() returning NULL does
  } finally {
    dir.closeSync();
  }
}

/**
 * Loads the modprobe configuration as libkmod's kmod_config_new(): <moduleDir>/modules.softdep and
 * modules.weakdep plus every *.conf of the search path (opts.configPaths, else DEFAULT_CONFIG_PATHS),
 * merged by file name and parsed in name order, then the kernel command line. Problems are reported
 * through opts.log with libkmod's texts; unreadable files are skipped silently, as kmod does.
 */
export function loadConfig(opts: ConfigLoadOptions): ModprobeConfig {
  const cfg = emptyConfig();
  const log = opts.log;
  const files: ConfigFile[] = [];
  insertSorted(files, opts.moduleDir, 'modules.softdep');
  insertSorted(files, opts.moduleDir, 'modules.weakdep');
  for (const path of opts.configPaths ?? DEFAULT_CONFIG_PATHS) listConfigPath(files, path, log);

  for (const f of files) {
    const fn = f.single ? f.dir : `${f.dir}/${f.name}`;
    if (!f.single && fn.length >= PATH_MAX) {
      log?.(LOG_ERR, 'kmod_config_new', `Error parsing ${fn}: path too long\n`);
      continue;
    }
    let text: string;
    try {
      text = readBinaryString(fn);
    } catch (err) {
      // kmod skips files it cannot open; one that never ends (a device) it reads for ever: refused here
      if (errnoOf(err) === EFBIG) log?.(LOG_ERR, 'kmod_config_new', `Error parsing ${fn}: ${strerror(EFBIG)}\n`);
      continue;
    }
    parseConfigText(cfg, text, fn, log);
  }

  const kcmdline = readKernelCmdline(opts.procDir ?? '/proc', log);
  for (const o of kcmdline.options) cfg.options.push(o);
  for (const b of kcmdline.blacklists) cfg.blacklists.push(b);
  return cfg;
}

/**
 * The logical lines of a file as kmod's freadline_wrapped() gives them: backslash-newline joins
 * lines, backslash-anything keeps the character, a trailing backslash at the end of the file is
 * dropped; each line comes with the number of the last physical line it used.
 */
export function configLines(text: string): { line: string; lineNumber: number }[] {
  const out: { line: string; lineNumber: number }[] = [];
  eachConfigLine(text, (line, lineNumber) => out.push({ line, lineNumber }));
  return out;
}

/**
 * configLines without the list: each logical line handed to `take` (a callback, not a generator: the
 * modprobe.d parser meets 100,000-line files, where a resumed generator and an object per line show).
 */
export function eachConfigLine(text: string, take: (line: string, lineNumber: number) => void): void {
  let lineNumber = 0;
  let pos = 0;
  const len = text.length;
  // the next backslash, searched again only once passed (not once per line, to the end of the text)
  let bs = -1;
  while (pos < len) {
    let line = '';
    let used = 0;
    let ended = false;
    while (pos < len) {
      const nl = text.indexOf('\n', pos);
      if (bs !== len && bs < pos) {
        bs = text.indexOf('\\', pos);
        if (bs < 0) bs = len;
      }
      if (bs < len && (nl < 0 || bs < nl)) {
        line += text.slice(pos, bs);
        if (bs + 1 >= len) {
          pos = len; // backslash at the end of the file
        } else if (text[bs + 1] === '\n') {
          used++;
          pos = bs + 2;
        } else {
          line += text[bs + 1];
          pos = bs + 2;
        }
        continue;
      }
      if (nl < 0) {
        line += text.slice(pos);
        pos = len;
        break;
      }
      line += text.slice(pos, nl);
      pos = nl + 1;
      ended = true;
      break;
    }
    // a file ending inside an empty continued line gives no line at all
    if (!ended && line === '') return;
    used++;
    lineNumber += used;
    take(line, lineNumber);
  }
}

/** where `c` is next found in `s` from `from`, or the length of s */
function indexOrEnd(s: string, c: string, from: number): number {
  const at = s.indexOf(c, from);
  return at < 0 ? s.length : at;
}

/** strtok_r() over one line: words separated by spaces and tabs, then "the rest of the line". */
class LineTokens {
  private pos = 0;
  /** the next space and tab at or after some earlier position (searched again only once passed) */
  private space = -1;
  private tab = -1;
  constructor(private readonly s: string) {}

  /** next word; null at the end of the line */
  word(): string | null {
    // native searches for the word's end and one slice: a sticky regular expression made a match
    // array and two strings per word, which 100,000-line files paid for in garbage collection
    const s = this.s;
    const n = s.length;
    let p = this.pos;
    for (let c = s.charCodeAt(p); c === 0x20 || c === 0x09; c = s.charCodeAt(++p));
    if (p >= n) {
      this.pos = n;
      return null;
    }
    if (this.space < p) this.space = indexOrEnd(s, ' ', p);
    if (this.tab < p) this.tab = indexOrEnd(s, '\t', p);
    const end = Math.min(this.space, this.tab);
    this.pos = end < n ? end + 1 : end; // the one delimiter after the word is consumed
    return s.slice(p, end);
  }

  /** everything after the previous word and its single delimiter (further spaces kept); null if empty */
  rest(): string | null {
    if (this.pos >= this.s.length) return null;
    const r = this.s.slice(this.pos);
    this.pos = this.s.length;
    return r;
  }
}

function isCSpace(c: string): boolean {
  return c === ' ' || c === '\t' || c === '\n' || c === '\v' || c === '\f' || c === '\r';
}

/**
 * Splits a softdep/weakdep value into words as kmod does: on runs of whitespace, except that a single
 * whitespace character at the very start stays glued to the first word (kmod's scanner never skips
 * it), so `softdep m  pre: a` (two spaces after the name) reads " pre:" and loses its first word.
 */
export function depWords(value: string): string[] {
  const words = value.split(/[ \t\n\v\f\r]+/);
  if (words[0] === '') words.shift();
  if (words.length > 0 && words[words.length - 1] === '') words.pop();
  if (value.length >= 2 && isCSpace(value[0]) && !isCSpace(value[1])) words[0] = value[0] + words[0];
  return words;
}

function parseSoftdep(name: string, value: string): ConfigSoftdep {
  const pre: string[] = [];
  const post: string[] = [];
  // kmod stores all names in one buffer in line order and shows the spans between first and last
  const inLine: string[] = [];
  let firstPre = -1;
  let lastPre = -1;
  let firstPost = -1;
  let lastPost = -1;
  let mode: 'none' | 'pre' | 'post' = 'none';
  for (const w of depWords(value)) {
    if (w === 'pre:') mode = 'pre';
    else if (w === 'post:') mode = 'post';
    else if (mode === 'pre') {
      if (firstPre < 0) firstPre = inLine.length;
      lastPre = inLine.length;
      inLine.push(w);
      pre.push(w);
    } else if (mode === 'post') {
      if (firstPost < 0) firstPost = inLine.length;
      lastPost = inLine.length;
      inLine.push(w);
      post.push(w);
    }
  }
  let shownAs = '';
  if (firstPre >= 0) shownAs += `pre: ${inLine.slice(firstPre, lastPre + 1).join(' ')}`;
  if (firstPost >= 0) shownAs += `post: ${inLine.slice(firstPost, lastPost + 1).join(' ')}`;
  return { name, pre, post, shownAs };
}

/**
 * Parses one configuration file's text into cfg (kmod_config_parse). `filename` is how kmod names
 * the file in its messages.
 */
export function parseConfigText(cfg: ModprobeConfig, text: string, filename: string, log?: LogFn): void {
  eachConfigLine(text, (raw, lineNumber) => {
    const nul = raw.indexOf('\0');
    const line = nul >= 0 ? raw.slice(0, nul) : raw;
    if (line === '' || line[0] === '#') return;
    const t = new LineTokens(line);
    const cmd = t.word();
    if (cmd === null) return;
    let ok = true;
    switch (cmd) {
      case 'alias': {
        const alias = underscores(t.word());
        const modname = alias === null ? null : underscores(t.word());
        if (alias === null || modname === null) ok = false;
        else cfg.aliases.push({ name: alias, modname });
        break;
      }
      case 'blacklist': {
        const modname = underscores(t.word());
        if (modname === null) ok = false;
        else cfg.blacklists.push(modname);
        break;
      }
      case 'options':
      case 'install':
      case 'remove':
      case 'softdep':
      case 'weakdep': {
        const modname = underscores(t.word());
        const rest = t.rest();
        if (modname === null || rest === null) {
          ok = false;
          break;
        }
        if (cmd === 'options') cfg.options.push({ modname, options: rest.replaceAll('\t', ' ') });
        else if (cmd === 'install') cfg.installs.push({ modname, command: rest });
        else if (cmd === 'remove') cfg.removes.push({ modname, command: rest });
        else if (cmd === 'softdep') cfg.softdeps.push(parseSoftdep(modname, rest));
        else cfg.weakdeps.push({ name: modname, deps: depWords(rest) });
        break;
      }
      case 'include':
      case 'config':
        log?.(LOG_ERR, 'kmod_config_parse', `${filename}: command ${cmd} is deprecated and not parsed anymore\n`);
        break;
      default:
        ok = false;
    }
    if (!ok) log?.(LOG_ERR, 'kmod_config_parse', `${filename} line ${lineNumber}: ignoring bad line starting with '${cmd}'\n`);
  });
}

/** softdep_to_char(): "pre: a b" and "post: c d", run together without a separator (as kmod). */
export function softdepValue(sd: ConfigSoftdep): string {
  if (sd.shownAs !== undefined) return sd.shownAs;
  let s = '';
  if (sd.pre.length > 0) s += `pre: ${sd.pre.join(' ')}`;
  if (sd.post.length > 0) s += `post: ${sd.post.join(' ')}`;
  return s;
}

/**
 * The configuration part of `modprobe -c`: blacklist, install, remove, alias, options, softdep and
 * weakdep lines, each kind in parse order (the index dump that follows is not included).
 */
export function formatConfig(cfg: ModprobeConfig): string {
  const out: string[] = [];
  for (const b of cfg.blacklists) out.push(`blacklist ${b}\n`);
  for (const c of cfg.installs) out.push(`install ${c.modname} ${c.command}\n`);
  for (const c of cfg.removes) out.push(`remove ${c.modname} ${c.command}\n`);
  for (const a of cfg.aliases) out.push(`alias ${a.name} ${a.modname}\n`);
  for (const o of cfg.options) out.push(`options ${o.modname} ${o.options}\n`);
  for (const sd of cfg.softdeps) out.push(`softdep ${sd.name} ${softdepValue(sd)}\n`);
  for (const w of cfg.weakdeps) out.push(`weakdep ${w.name} ${w.deps.join(' ')}\n`);
  return out.join('');
}
