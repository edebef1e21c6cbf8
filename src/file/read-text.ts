// Reading a file as a binary string (one char per byte, as every kmodts parser takes its input).
import { closeSync, fstatSync, openSync, PATH_MAX, readFileSync, readSync, statSync } from './binary-os';

/**
 * The most read from a file that is not a regular file (a FIFO, a character device) before it is
 * refused with EFBIG: such a file has no size to stop at, and one that never ends (-C /dev/zero) would
 * take all the memory there is. libkmod reads it for ever instead (docs/compat.md).
 */
export const UNSIZED_FILE_MAX_BYTES = 64 << 20;

/**
 * The file's bytes as a latin1 string (its first `limit` bytes, where one is given). Node reads UTF-8 in one native call but
 * latin1 through its JavaScript read loop (~3x slower for small files, measured at start-up); for an
 * ASCII file both give the same string, so a regular file is read as UTF-8 first and again as latin1
 * only when it has a byte above 0x7f (a decoded string whose UTF-8 length differs from its length).
 * Throws as readFileSync (the open's error for a file that is not there), and EFBIG for a file that is
 * not regular and goes on past UNSIZED_FILE_MAX_BYTES.
 */
export function readBinaryString(file: string, limit = Infinity): string {
  // (a limit the caller gives cuts the file there; the unsized files' one refuses it)
  if (limit !== Infinity) return readBounded(file, limit, false);
  if (!isRegularFile(file)) return readBounded(file, UNSIZED_FILE_MAX_BYTES, true);
  return readRegularBinaryString(file);
}

/** whether stat (fstat for a descriptor) says a regular file; true where it fails: the read's error then says why */
function isRegularFile(file: string | number): boolean {
  try {
    return (typeof file === 'number' ? fstatSync(file) : statSync(file)).isFile();
  } catch {
    return true;
  }
}

/**
 * readBinaryString of a file the caller has just stat()ed and found regular: without a second stat
 * (sysfs attributes are read twice per module of a `modprobe -r` list, 10,000 modules in a chain).
 */
export function readRegularBinaryString(file: string): string {
  const text = readFileSync(file, 'utf8');
  return Buffer.byteLength(text, 'utf8') === text.length ? text : readFileSync(file, 'latin1');
}

/**
 * The bytes of a file (its path, or a descriptor open on it at its start), as readFileSync reads them,
 * but EFBIG for one that is not a regular file and goes on past UNSIZED_FILE_MAX_BYTES: the input files
 * kmod reads to their end with fgets or read() (modules.order, modules.builtin.modinfo, System.map,
 * modules.devname), where a link to /dev/zero would otherwise take all the memory there is.
 */
export function readFileBytes(file: string | number): Buffer {
  return isRegularFile(file) ? readFileSync(file) : readBoundedBytes(file, UNSIZED_FILE_MAX_BYTES, true);
}

/** up to `max` bytes of the file, read until its end; past `max`, EFBIG when `refuseMore`, else the first `max` */
function readBounded(file: string, max: number, refuseMore: boolean): string {
  return readBoundedBytes(file, max, refuseMore).toString('latin1');
}

function readBoundedBytes(file: string | number, max: number, refuseMore: boolean): Buffer {
  const fd = typeof file === 'number' ? file : openSync(file, 'r');
  try {
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      // (one byte more than `max` allows: whether the file goes on)
      const room = Math.min(64 << 10, max + 1 - total);
      if (room <= 0) break;
      const chunk = Buffer.allocUnsafe(room);
      const n = readSync(fd, chunk, 0, room, null);
      if (n === 0) break;
      chunks.push(n === room ? chunk : chunk.subarray(0, n));
      total += n;
    }
    if (total > max) {
      if (refuseMore) throw Object.assign(new Error(`EFBIG: file too large, read '${file}'`), { code: 'EFBIG', errno: -27, syscall: 'read', path: file });
      total = max;
    }
    return Buffer.concat(chunks, total);
  } finally {
    // (a descriptor given is the caller's to close)
    if (typeof file !== 'number') closeSync(fd);
  }
}

/**
 * A text as C's fgets() reads it into a buffer of `bufferSize` bytes (kmod's are mostly PATH_MAX): pieces
 * of at most bufferSize - 1 bytes, each ending with its newline where one comes first (a longer line
 * comes in several pieces), each cut at its first NUL (where the C string ends).
 */
export function fgetsPieces(text: string, bufferSize = PATH_MAX): string[] {
  const out: string[] = [];
  for (let pos = 0; pos < text.length; ) {
    const nl = text.indexOf('\n', pos);
    const end = Math.min(nl < 0 ? text.length : nl + 1, pos + bufferSize - 1);
    const piece = text.slice(pos, end);
    const nul = piece.indexOf('\0');
    out.push(nul >= 0 ? piece.slice(0, nul) : piece);
    pos = end;
  }
  return out;
}
