import * as fs from 'node:fs';

/** What a tool front end may touch of the outside world; tests pass a capturing one. */
export interface ToolIo {
  /**
   * stdout: buffered like C stdio on a pipe or file, line by line on a terminal. Strings are binary
   * strings (one char per byte, latin1), as the library reads every file: bytes go out as they came in.
   */
  stdout(data: string | Uint8Array): void;
  /** stderr: unbuffered, as in C; a binary string like stdout's */
  stderr(data: string): void;
  /** push buffered stdout out (before running a child process, and at exit) */
  flush(): void;
  env: NodeJS.ProcessEnv;
  /** whether stdout/stderr are terminals (progress display, colour) */
  stdoutIsTTY: boolean;
  stderrIsTTY: boolean;
}

/** kmodts-only settings, given in front of the tool name or by environment variable. */
export interface Settings {
  backend: 'native' | 'sim';
  simState?: string;
  json: boolean;
}

/** Everything a tool's run() receives. */
export interface ToolEnv {
  /** name used in kmod's messages ("modprobe") */
  prog: string;
  /** what glibc's getopt shows as argv[0] */
  argv0: string;
  /** run as a `kmod` command: getopt keeps kmod's "+" (stop at the first non-option) */
  requireOrder?: boolean;
  io: ToolIo;
  settings: Settings;
}

/** Thrown to leave a tool with an exit status from deep inside (kmod's exit() after a FATAL). */
export class ToolExit {
  constructor(readonly status: number) {}
}

function writeAll(fd: number, data: Uint8Array): void {
  let off = 0;
  while (off < data.length) {
    try {
      off += fs.writeSync(fd, data, off, data.length - off);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN') continue;
      if (code === 'EPIPE') return;
      throw err;
    }
  }
}

const STDIO_BUFSIZ = 4096;

/**
 * Whether fd is a terminal, without node:tty: loading it (or touching process.stdout/stderr, which
 * loads it and Node's stream classes) costs ~10 ms of start-up on every command
 * (bench/modprobe.bench.js). A character device that is not one of the memory devices (major 1:
 * /dev/null, /dev/zero, /dev/full, ...) is taken for a terminal; it only decides line buffering.
 */
function isTerminal(fd: number): boolean {
  const st = fs.fstatSync(fd, { throwIfNoEntry: false } as fs.StatSyncOptions);
  if (st === undefined || !st.isCharacterDevice()) return false;
  const major = Math.floor(Number(st.rdev) / 256) & 0xfff;
  return major !== 1;
}

/** The process's own stdio, with C-like buffering of stdout. */
export function processIo(env: NodeJS.ProcessEnv = process.env): ToolIo {
  const stdoutIsTTY = isTerminal(1);
  const stderrIsTTY = isTerminal(2);
  let chunks: Buffer[] = [];
  let size = 0;
  const flush = (): void => {
    if (size === 0) return;
    const all = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size);
    chunks = [];
    size = 0;
    writeAll(1, all);
  };
  return {
    stdout(data) {
      const b = typeof data === 'string' ? Buffer.from(data, 'latin1') : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
      chunks.push(b);
      size += b.length;
      if (size >= STDIO_BUFSIZ || (stdoutIsTTY && b.includes(10))) flush();
    },
    stderr(data) {
      writeAll(2, Buffer.from(data, 'latin1'));
    },
    flush,
    env,
    stdoutIsTTY,
    stderrIsTTY,
  };
}

/** An io that records everything, for in-process tests. */
export function captureIo(env: NodeJS.ProcessEnv = {}): ToolIo & { out(): string; err(): string; outBytes(): Buffer } {
  const out: Buffer[] = [];
  let err = '';
  return {
    stdout(data) {
      out.push(typeof data === 'string' ? Buffer.from(data, 'latin1') : Buffer.from(data));
    },
    stderr(data) {
      err += data;
    },
    flush() {},
    env,
    stdoutIsTTY: false,
    stderrIsTTY: false,
    out: () => Buffer.concat(out).toString('latin1'),
    outBytes: () => Buffer.concat(out),
    err: () => err,
  };
}

