// Binary strings at the edge of the process: node:fs, the command line, the environment, the current
// directory and child processes. kmodts holds every name it reads from files, directories, the command
// line and the environment as a binary string (one char per byte, latin1), as kmod holds C strings:
// bytes that are not UTF-8 (a module file named "b\xffd.ko") and bytes that are (UTF-8 "é" is two
// chars, 0xc3 0xa9) come out as they went in. Node's fs takes a string path as UTF-8, so a path
// with a byte above 0x7f is given to it here as those bytes (a Buffer), and directory names come back
// as binary strings; Node decodes argv and the environment as UTF-8, so their bytes are read again
// from /proc. Strings with a char above 0xff cannot be binary strings (a caller's ordinary
// JavaScript string): they are taken as UTF-8 (binaryString). Library files use this module for
// everything named by the user's data; files of kmodts' own package (the addon, WebAssembly) are
// opened with node:fs.
import fs = require('node:fs');

export type { BigIntStats, Dir, Dirent, Stats, StatSyncOptions } from 'node:fs';
// descriptor-based: no path to convert
export const { close, closeSync, constants, fstatSync, fsyncSync, read, readSync, writeSync, writevSync } = fs;

/**
 * Linux's PATH_MAX: the longest path, its NUL included, that a system call takes, and the size of the
 * buffers kmod builds paths in and reads most of its text files into (fgets).
 */
export const PATH_MAX = 4096;

const NOT_ASCII = /[^\x00-\x7f]/;
const NOT_BINARY = /[^\x00-\xff]/;

/** `s` as a binary string: itself, or its UTF-8 bytes where it has a char above 0xff */
export function binaryString(s: string): string {
  return NOT_BINARY.test(s) ? Buffer.from(s, 'utf8').toString('latin1') : s;
}

/** A text Node decoded as UTF-8 (process.cwd(), os.homedir(), __dirname) as a binary string. */
export function binaryFromUtf8(s: string): string {
  return NOT_ASCII.test(s) ? Buffer.from(s, 'utf8').toString('latin1') : s;
}

/** The path to give node:fs for binary string `p`: itself when ASCII, else its bytes. */
export function osPath<T>(p: T): T | Buffer {
  return typeof p === 'string' && NOT_ASCII.test(p) ? Buffer.from(binaryString(p), 'latin1') : p;
}

type AnyFn = (...args: never[]) => unknown;

/** f with its first argument (a path, or a descriptor) given as osPath */
function onPath<F extends AnyFn>(f: F): F {
  return ((p: unknown, ...rest: unknown[]) => (f as unknown as (...a: unknown[]) => unknown)(osPath(p), ...rest)) as unknown as F;
}

/** f with its first two arguments as osPath (rename, link) */
function onTwoPaths<F extends AnyFn>(f: F): F {
  return ((a: unknown, b: unknown, ...rest: unknown[]) => (f as unknown as (...a: unknown[]) => unknown)(osPath(a), osPath(b), ...rest)) as unknown as F;
}

/** options naming latin1 as the encoding of the names given back, unless they name one */
function latin1Names(options: unknown): unknown {
  if (options === undefined || options === null) return { encoding: 'latin1' };
  if (typeof options === 'string') return options;
  const o = options as { encoding?: unknown };
  return o.encoding === undefined ? { ...o, encoding: 'latin1' } : options;
}

/** f with a path first and names given back as binary strings (its options second) */
function namesLatin1<F extends AnyFn>(f: F): F {
  return ((p: unknown, options?: unknown) => (f as unknown as (...a: unknown[]) => unknown)(osPath(p), latin1Names(options))) as unknown as F;
}

export const accessSync = onPath(fs.accessSync);
export const appendFileSync = onPath(fs.appendFileSync);
export const existsSync = onPath(fs.existsSync);
export const linkSync = onTwoPaths(fs.linkSync);
export const lstatSync = onPath(fs.lstatSync);
export const mkdirSync = onPath(fs.mkdirSync);
export const openSync = onPath(fs.openSync);
export const readFileSync = onPath(fs.readFileSync);
export const renameSync = onTwoPaths(fs.renameSync);
export const rmSync = onPath(fs.rmSync);
export const statSync = onPath(fs.statSync);
export const truncateSync = onPath(fs.truncateSync);
export const unlinkSync = onPath(fs.unlinkSync);
export const writeFileSync = onPath(fs.writeFileSync);
export const readdirSync = namesLatin1(fs.readdirSync);
// (fs.opendirSync is looked up at the call: its getter loads internal/fs/dir, ~0.1 ms on Node 20 and
// ~1 ms on Node 26, which most runs do not need)
export const opendirSync: typeof fs.opendirSync = (p, options) => fs.opendirSync(osPath(p), latin1Names(options) as fs.OpenDirOptions);
export const readlinkSync = namesLatin1(fs.readlinkSync);
// realpath(3): Node's JavaScript realpathSync takes a Buffer path back through UTF-8 text
export const realpathSync = namesLatin1(fs.realpathSync.native);
export const mkdtempSync = namesLatin1(fs.mkdtempSync);

// (fs.promises is looked up at the call: the getter loads node:fs/promises, which start-up does not need)
export const promises = {
  open: ((p: unknown, ...rest: unknown[]) => (fs.promises.open as (...a: unknown[]) => unknown)(osPath(p), ...rest)) as typeof fs.promises.open,
  readFile: ((p: unknown, ...rest: unknown[]) => (fs.promises.readFile as (...a: unknown[]) => unknown)(osPath(p), ...rest)) as typeof fs.promises.readFile,
};

/**
 * Binary string `s` as a string for a child process's command line or environment, which Node encodes
 * as UTF-8: its bytes decoded as UTF-8, so that bytes that are UTF-8 reach the child as they are (bytes
 * that are not cannot: Node has no way to pass them, and they reach it replaced).
 */
export function childText(s: string): string {
  return NOT_ASCII.test(s) ? Buffer.from(s, 'latin1').toString('utf8') : s;
}

/** An environment of binary strings for a child process (childText of each key and value). */
export function childEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) out[childText(k)] = childText(v);
  return out;
}


/**
 * The NUL-separated entries of /proc/self/`file` (cmdline, environ) as binary strings: the bytes
 * the process was given, which Node's process.argv and process.env have decoded as UTF-8 (bytes that
 * are not UTF-8 replaced by U+FFFD). Undefined where it cannot be read.
 */
function procEntries(file: string): string[] | undefined {
  try {
    const list = fs.readFileSync(`/proc/self/${file}`, 'latin1').split('\0');
    if (list[list.length - 1] === '') list.pop();
    return list;
  } catch {
    return undefined;
  }
}

/** `raw` (bytes as a binary string) when Node's UTF-8 decoding of it is `decoded`, else decoded's own UTF-8 bytes */
function rawOr(raw: string | undefined, decoded: string): string {
  if (raw !== undefined && Buffer.from(raw, 'latin1').toString('utf8') === decoded) return raw;
  return Buffer.from(decoded, 'utf8').toString('latin1');
}

/**
 * process.argv from [1] on (the script, then the arguments) as binary strings, kmodts' form of every
 * text it reads, so that an argument reaches files and messages with the bytes kmod would see.
 * Arguments are the last entries of /proc/self/cmdline (Node's own options come before the script).
 */
export function processArgs(argv: string[] = process.argv): string[] {
  const decoded = argv.slice(1);
  if (!decoded.some((a) => NOT_ASCII.test(a))) return decoded;
  const raw = procEntries('cmdline');
  const tail = raw !== undefined && raw.length >= decoded.length ? raw.slice(raw.length - decoded.length) : undefined;
  return decoded.map((a, i) => (NOT_ASCII.test(a) ? rawOr(tail?.[i], a) : a));
}

/** process.env with binary-string keys and values (their bytes from /proc/self/environ), as processArgs. */
export function processEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const odd = Object.keys(env).filter((k) => NOT_ASCII.test(k) || NOT_ASCII.test(env[k] ?? ''));
  if (odd.length === 0) return env;
  const raw = new Map<string, string>();
  for (const entry of procEntries('environ') ?? []) {
    const eq = entry.indexOf('=');
    if (eq > 0) raw.set(Buffer.from(entry, 'latin1').toString('utf8'), entry);
  }
  const out: NodeJS.ProcessEnv = { ...env };
  for (const k of odd) {
    const v = env[k] ?? '';
    const entry = rawOr(raw.get(`${k}=${v}`), `${k}=${v}`);
    // the key is what comes before the first '=' (a key has none)
    const eq = entry.indexOf('=');
    delete out[k];
    out[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return out;
}

/** getcwd(): the current directory as a binary string (process.cwd() has it decoded as UTF-8) */
export function currentDirectory(): string {
  let cwd: string;
  try {
    cwd = process.cwd();
  } catch (err) {
    // libuv's getcwd buffer is PATH_MAX bytes; glibc's getcwd(NULL, 0), which kmod uses, is not limited
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ERANGE' || code === 'ENAMETOOLONG' || code === 'ENOBUFS') return walkedCurrentDirectory();
    throw err;
  }
  if (!NOT_ASCII.test(cwd)) return cwd;
  try {
    return fs.realpathSync.native('.', 'latin1');
  } catch {
    return binaryFromUtf8(cwd);
  }
}

/**
 * glibc's generic getcwd, for a current directory longer than getcwd(2) returns: up through `..` to
 * /, finding each directory's name among its parent's entries by device and inode. The relative
 * path grows by three bytes a level (glibc walks with descriptors), enough for any directory whose
 * depth is under a thousand levels.
 */
function walkedCurrentDirectory(): string {
  const id = (p: string): string => {
    const st = fs.lstatSync(osPath(p), { bigint: true });
    return `${st.dev}:${st.ino}`;
  };
  const root = id('/');
  const names: string[] = [];
  let here = '.';
  let self = id(here);
  while (self !== root) {
    const up = here === '.' ? '..' : `${here}/..`;
    const entries = fs.readdirSync(osPath(up), 'latin1');
    const name = entries.find((n) => {
      try {
        return id(`${up}/${n}`) === self;
      } catch {
        return false;
      }
    });
    if (name === undefined) throw Object.assign(new Error(`getcwd: no entry of ${up} is the current directory's ancestor`), { code: 'ENOENT' });
    names.unshift(name);
    here = up;
    self = id(here);
  }
  return `/${names.join('/')}`;
}
