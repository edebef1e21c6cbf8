// depmod's reads of module files: the file into a buffer reused from module to module, and its
// decompressed image (libkmod's rules, through the xz fast path when it applies). depmod reads thousands
// of files one after the other: a fresh buffer for each (as readFileSync makes) costs an allocation, an
// fstat and, with ~100 MB read in all, garbage collections triggered by the external memory alone.
import * as fs from '../file/binary-os';
import { EINVAL, errnoOf } from '../errno';
import { KmodError } from '../errors';
import { decompress, sizelessUncompressed } from '../file/decompress';
import { nativeDecoder } from '../file/native-decode';
import { takeXzBuffer, unxzReusable } from './fast-xz';
import { isXz } from '../file/xz-index';
import { releaseBuffers } from './release';

/** a buffer with an ArrayBuffer of its own (Buffer.allocUnsafe may hand out a slice of a shared pool) */
function ownBuffer(size: number): Buffer {
  return Buffer.from(new ArrayBuffer(size));
}

let readBuf = ownBuffer(1 << 20);
/** the images the addon's decoder writes, reused likewise */
let imageBuf = ownBuffer(0);
/** read buffers above this size are not kept for the next module */
const KEEP_LIMIT = 16 << 20;

/** Frees the buffers the reads keep for the next call (depmod's scan is over). */
export function releaseImageBuffers(): Promise<void> {
  const freed = releaseBuffers([readBuf.buffer as ArrayBuffer, ...(imageBuf.length > 0 ? [imageBuf.buffer as ArrayBuffer] : []), ...takeXzBuffer()]);
  readBuf = ownBuffer(1 << 16);
  imageBuf = ownBuffer(0);
  return freed;
}

/** the image by the addon's decoder, in imageBuf when it fits (which then grows, up to KEEP_LIMIT, for the next) */
function nativeImage(raw: Buffer, file: string): Buffer {
  const image = decompress(raw, file, imageBuf.length > 0 ? imageBuf : undefined);
  if (image.buffer !== imageBuf.buffer && image !== raw && image.length < KEEP_LIMIT) {
    let size = 1 << 20;
    while (size < image.length + 1) size *= 2;
    if (imageBuf.length > 0) void releaseBuffers([imageBuf.buffer as ArrayBuffer]);
    imageBuf = ownBuffer(size);
  }
  return image;
}

/**
 * The whole file, in a buffer that the next call reuses. Throws the file system's error, and EINVAL
 * where sizelessUncompressed says libkmod would.
 */
export function readReusable(file: string): Buffer {
  if (readBuf.length > KEEP_LIMIT) {
    void releaseBuffers([readBuf.buffer as ArrayBuffer]);
    readBuf = ownBuffer(1 << 20);
  }
  const fd = fs.openSync(file, fs.constants.O_RDONLY);
  try {
    const size = fs.fstatSync(fd).size;
    let n = 0;
    for (;;) {
      if (n === readBuf.length) {
        const bigger = ownBuffer(readBuf.length * 2);
        readBuf.copy(bigger, 0, 0, n);
        void releaseBuffers([readBuf.buffer as ArrayBuffer]);
        readBuf = bigger;
      }
      const got = fs.readSync(fd, readBuf, n, readBuf.length - n, null);
      if (got === 0) return readBuf.subarray(0, n);
      n += got;
      if (n - got < 6 && sizelessUncompressed(size, readBuf.subarray(0, n))) {
        throw new KmodError(EINVAL, `${file}: no size to map (not a regular file)`, { file });
      }
    }
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The decompressed image of a module file's bytes, or the errno depmod records for a file it cannot
 * use ("failed to load symbols"). The image may live in a buffer that the next call reuses.
 */
export function moduleImage(raw: Buffer, file: string): Buffer | number {
  // libkmod needs the 6 bytes of the longest magic before it looks at a file
  if (raw.length < 6) return EINVAL;
  if (nativeDecoder() !== null) {
    try {
      return nativeImage(raw, file);
    } catch (err) {
      if (err instanceof KmodError) return err.errno;
      throw err;
    }
  }
  if (isXz(raw)) {
    const image = unxzReusable(raw);
    if (image !== null) return image;
  }
  try {
    return decompress(raw, file);
  } catch (err) {
    if (err instanceof KmodError) return err.errno;
    throw err;
  }
}

/** A module file's decompressed image (as moduleImage), or the errno of a file that cannot be read. */
export function readModuleImage(file: string): Buffer | number {
  let raw: Buffer;
  try {
    raw = readReusable(file);
  } catch (err) {
    return errnoOf(err);
  }
  return moduleImage(raw, file);
}
