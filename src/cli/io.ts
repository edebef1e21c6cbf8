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

/** what a write to a full non-blocking stdout waits on: 1 ms at a time (Node's main thread may Atomics.wait) */
const fullPipePause = new Int32Array(new SharedArrayBuffer(4));

/**
 * data written to fd 1 or 2 as a C program's stdio writes it, except on a full non-blocking file:
 * - no reader (EPIPE): the process dies of SIGPIPE at that write, as kmod does (`| head`; a shell's
 *   status 141), unless the signal is blocked, when the bytes are dropped as glibc drops them;
 * - any other failure (a full disk, /dev/full, EIO): glibc marks the stream and drops the bytes, and
 *   kmod's tools never look, so nothing is reported and the status is unchanged;
 * - a full non-blocking pipe or terminal (EAGAIN): glibc would drop the bytes; this waits for the reader
 *   (docs/compat.md), a millisecond at a time rather than spinning.
 */
function writeAll(fd: number, data: Uint8Array): void {
  let off = 0;
  while (off < data.length) {
    try {
      off += fs.writeSync(fd, data, off, data.length - off);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN') {
        Atomics.wait(fullPipePause, 0, 0, 1);
        continue;
      }
      if (code === 'EPIPE') dieOfSigpipe();
      return;
    }
  }
}

/**
 * Node ignores SIGPIPE; C programs die of it. A listener added and removed leaves libuv's default
 * action in place of Node's, and the signal sent to this process then ends it at once.
 */
function dieOfSigpipe(): void {
  const ignore = (): void => {};
  process.on('SIGPIPE', ignore);
  process.off('SIGPIPE', ignore);
  process.kill(process.pid, 'SIGPIPE');
}

/** glibc's BUFSIZ: the largest buffer it gives a stream (_IO_file_doallocate) */
const GLIBC_BUFSIZ = 8192;

/**
 * The size of the buffer glibc gives a fully buffered stream on a file of these stats: its st_blksize
 * when smaller than BUFSIZ (4096 on ext4, tmpfs and pipes), else BUFSIZ (also when fstat failed).
 */
export function stdioBufferSize(st: fs.Stats | undefined): number {
  const blksize = st === undefined ? 0 : Number(st.blksize);
  return blksize > 0 && blksize < GLIBC_BUFSIZ ? blksize : GLIBC_BUFSIZ;
}

/** fstat of one of the process's stdio descriptors; undefined when it fails */
function statOfFd(fd: number): fs.Stats | undefined {
  try {
    return fs.fstatSync(fd);
  } catch {
    return undefined;
  }
}

/**
 * How many of `size` buffered bytes a fully buffered glibc stream has written out once they are in
 * (_IO_new_file_xsputn): nothing while they fit in its buffer (a buffer filled exactly waits for the
 * next write), else every whole buffer's worth, the rest kept. Where stdout's writes fall among
 * stderr's (both on one file: `> log 2>&1`) depends on it.
 */
export function stdioBytesWritten(size: number, bufferSize: number): number {
  return size > bufferSize ? size - (size % bufferSize) : 0;
}

/**
 * Whether a file of these stats is a terminal, without node:tty: loading it (or touching process.stdout/stderr, which
 * loads it and Node's stream classes) costs ~10 ms of start-up on every command
 * (bench/modprobe.bench.js). A character device that is not one of the memory devices (major 1:
 * /dev/null, /dev/zero, /dev/full, ...) is taken for a terminal; it only decides line buffering.
 */
function isTerminal(st: fs.Stats | undefined): boolean {
  if (st === undefined || !st.isCharacterDevice()) return false;
  const major = Math.floor(Number(st.rdev) / 256) & 0xfff;
  return major !== 1;
}

/** The process's own stdio, with C-like buffering of stdout. */
export function processIo(env: NodeJS.ProcessEnv = process.env): ToolIo {
  // (one fstat of stdout says both whether it is a terminal and the size of its buffer)
  const stdout = statOfFd(1);
  const stdoutIsTTY = isTerminal(stdout);
  const stderrIsTTY = isTerminal(statOfFd(2));
  const bufferSize = stdioBufferSize(stdout);
  let chunks: Buffer[] = [];
  let size = 0;
  /** writes the first `n` buffered bytes, keeps the rest */
  const writeOut = (n: number): void => {
    const all = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size);
    writeAll(1, n === size ? all : all.subarray(0, n));
    chunks = n === size ? [] : [all.subarray(n)];
    size -= n;
  };
  const flush = (): void => {
    if (size > 0) writeOut(size);
  };
  return {
    stdout(data) {
      const b = typeof data === 'string' ? Buffer.from(data, 'latin1') : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
      chunks.push(b);
      size += b.length;
      // (a terminal's stream is line buffered: a newline sends everything)
      if (stdoutIsTTY && b.includes(10)) {
        flush();
        return;
      }
      const n = stdioBytesWritten(size, bufferSize);
      if (n > 0) writeOut(n);
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

