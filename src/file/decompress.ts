// Module file decompression: xz, zstd and gzip, recognised by their magic bytes (as libkmod-file.c does),
// each decoder loaded only when a file of that kind is met.
import { FormatError } from '../errors';
import { xxh64Low32 } from './xxhash';

export type Compression = 'none' | 'xz' | 'zstd' | 'gzip';

/** The name /sys/module/compression uses for each kind (and kmod's `xz:`/`zstd:`/`gzip:` message prefixes) */
export const compressionNames: Record<Exclude<Compression, 'none'>, string> = { xz: 'xz', zstd: 'zstd', gzip: 'gzip' };

const XZ_MAGIC = [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00];
const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd];
const GZIP_MAGIC = [0x1f, 0x8b];

function startsWith(data: Uint8Array, magic: number[]): boolean {
  if (data.length < magic.length) return false;
  for (let i = 0; i < magic.length; i++) if (data[i] !== magic[i]) return false;
  return true;
}

/** The compression of a file from its first bytes, checked in kmod's order (zstd, xz, gzip). */
export function detectCompression(data: Uint8Array): Compression {
  if (startsWith(data, ZSTD_MAGIC)) return 'zstd';
  if (startsWith(data, XZ_MAGIC)) return 'xz';
  if (startsWith(data, GZIP_MAGIC)) return 'gzip';
  return 'none';
}

/**
 * A compressed stream that cannot be decoded. `detail` is the text libkmod logs for the same failure
 * (e.g. "xz: File is corrupt"), `fn` the C function that logs it; errno is EINVAL as in libkmod.
 */
export class DecompressError extends FormatError {
  constructor(
    file: string,
    readonly compression: Exclude<Compression, 'none'>,
    readonly detail: string,
    readonly fn: string,
  ) {
    super(file, `cannot decompress (${detail})`);
    this.name = 'DecompressError';
  }
}

// liblzma's lzma_ret values (lzma/base.h)
const LZMA_OK = 0;
const LZMA_STREAM_END = 1;
const LZMA_MEM_ERROR = 5;
const LZMA_FORMAT_ERROR = 7;
const LZMA_OPTIONS_ERROR = 8;
const LZMA_DATA_ERROR = 9;
const LZMA_BUF_ERROR = 10;
const LZMA_FINISH = 3;

/** libkmod's wording for each liblzma failure (xz_uncompress_belch) */
function xzMessage(ret: number): string {
  switch (ret) {
    case LZMA_MEM_ERROR: return 'xz: Cannot allocate memory';
    case LZMA_FORMAT_ERROR: return 'xz: File format not recognized';
    case LZMA_OPTIONS_ERROR: return 'xz: Unsupported compression options';
    case LZMA_DATA_ERROR: return 'xz: File is corrupt';
    case LZMA_BUF_ERROR: return 'xz: Unexpected end of input';
    default: return 'xz: Internal error (bug)';
  }
}

interface LzmaEngine {
  codeSync(flush: number, input: Buffer, inOff: number, availIn: number, out: Buffer, outOff: number): [number, number, number];
  close(): void;
}
interface LzmaBinding {
  LZMA: new (mode: number, opts: object) => LzmaEngine;
  STREAM_DECODE: number;
  LZMA_FILTER_LZMA2: number;
}

let lzmaBinding: LzmaBinding | undefined;

/**
 * node-liblzma's native binding: its prebuilt binary for this platform (static liblzma 5.8, ~1.5x faster
 * than a build against Debian's liblzma 5.4; package.json's allowScripts skips that build), else whatever
 * node-gyp-build finds (a build made by running the package's install script by hand).
 */
function loadLzma(file: string): LzmaBinding {
  if (lzmaBinding !== undefined) return lzmaBinding;
  const path = require('node:path') as typeof import('node:path');
  try {
    const root = path.resolve(path.dirname(require.resolve('node-liblzma')), '..');
    try {
      lzmaBinding = require(`${root}/prebuilds/${process.platform}-${process.arch}/node-liblzma.node`) as LzmaBinding;
    } catch {
      lzmaBinding = (require('node-gyp-build') as (dir: string) => LzmaBinding)(root);
    }
  } catch (err) {
    // libkmod's wording when liblzma cannot be loaded
    throw new DecompressError(file, 'xz', `xz: can't load and resolve symbols (${(err as Error).message})`, 'kmod_file_load_xz');
  }
  return lzmaBinding;
}

/**
 * xz through liblzma. node-liblzma's unxzSync() stops at the end of the input without telling a finished
 * stream from a truncated one, so the decoder is driven here until liblzma itself reports the stream end
 * (concatenated streams included) or an error, exactly as libkmod's loop does.
 */
function unxz(data: Buffer, file: string): Buffer {
  const lzma = loadLzma(file);
  const decoder = new lzma.LZMA(lzma.STREAM_DECODE, {
    check: 0, preset: 6, filters: [lzma.LZMA_FILTER_LZMA2], mode: 0, threads: 1, chunkSize: 65536, flushFlag: 0,
  });
  // modules inflate ~5-6x; start there (capped) and double when full
  let out = Buffer.allocUnsafe(Math.min(Math.max(1 << 16, data.length * 6), 1 << 26));
  let outOff = 0;
  let inOff = 0;
  let availIn = data.length;
  try {
    for (;;) {
      const [ret, inLeft, outLeft] = decoder.codeSync(LZMA_FINISH, data, inOff, availIn, out, outOff);
      outOff = out.length - outLeft;
      inOff += availIn - inLeft;
      availIn = inLeft;
      if (ret === LZMA_STREAM_END) return out.subarray(0, outOff);
      if (ret !== LZMA_OK) throw new DecompressError(file, 'xz', xzMessage(ret), 'xz_uncompress_belch');
      if (outLeft === 0) {
        const bigger = Buffer.allocUnsafe(out.length * 2);
        out.copy(bigger, 0, 0, outOff);
        out = bigger;
      }
    }
  } finally {
    decoder.close();
  }
}

// ---- zstd ----

const ZSTD_ERR = {
  size: 'zstd: Failed to determine decompression size',
  srcSize: 'zstd: Src size is incorrect',
  checksum: "zstd: Restored data doesn't match checksum",
  corruption: 'zstd: Data corruption detected',
};

interface ZstdFrame {
  start: number;
  end: number;
  /** the frame content size from the header, when stored */
  contentSize?: number;
  /** the stored XXH64 low 32 bits, when the frame has a checksum */
  checksum?: number;
}

/**
 * Splits zstd data into frames (skippable frames dropped) by walking frame headers and block headers,
 * so that truncation and checksums are checked as libzstd checks them; fzstd checks neither.
 * Throws the libzstd error text for what is wrong.
 */
function zstdFrames(d: Buffer): ZstdFrame[] {
  const frames: ZstdFrame[] = [];
  let pos = 0;
  while (pos < d.length) {
    if (d.length - pos < (frames.length === 0 ? 4 : 5)) throw new Error(ZSTD_ERR.srcSize);
    const magic = d.readUInt32LE(pos);
    if ((magic & 0xfffffff0) === 0x184d2a50) {
      if (d.length - pos < 8) throw new Error(ZSTD_ERR.srcSize);
      const skip = d.readUInt32LE(pos + 4);
      if (d.length - pos - 8 < skip) throw new Error(ZSTD_ERR.srcSize);
      pos += 8 + skip;
      continue;
    }
    // bytes after a complete frame that are no frame: libzstd reports the input size as wrong
    if (magic !== 0xfd2fb528) throw new Error(frames.length === 0 ? ZSTD_ERR.size : ZSTD_ERR.srcSize);
    const start = pos;
    pos += 4;
    if (pos >= d.length) throw new Error(frames.length === 0 ? ZSTD_ERR.size : ZSTD_ERR.srcSize);
    const fhd = d[pos++];
    const fcsFlag = fhd >> 6;
    const single = (fhd >> 5) & 1;
    const hasChecksum = (fhd >> 2) & 1;
    if (fhd & 0x08) throw new Error(frames.length === 0 ? ZSTD_ERR.size : ZSTD_ERR.corruption);
    const dictSize = [0, 1, 2, 4][fhd & 3];
    const fcsSize = fcsFlag === 0 ? single : [0, 2, 4, 8][fcsFlag];
    const hdrRest = (single ? 0 : 1) + dictSize + fcsSize;
    if (d.length - pos < hdrRest) throw new Error(frames.length === 0 ? ZSTD_ERR.size : ZSTD_ERR.srcSize);
    pos += (single ? 0 : 1) + dictSize;
    let contentSize: number | undefined;
    if (fcsSize === 1) contentSize = d[pos];
    else if (fcsSize === 2) contentSize = d.readUInt16LE(pos) + 256;
    else if (fcsSize === 4) contentSize = d.readUInt32LE(pos);
    else if (fcsSize === 8) contentSize = d.readUInt32LE(pos + 4) * 0x100000000 + d.readUInt32LE(pos);
    pos += fcsSize;
    for (;;) {
      if (d.length - pos < 3) throw new Error(ZSTD_ERR.srcSize);
      const bh = d[pos] | (d[pos + 1] << 8) | (d[pos + 2] << 16);
      pos += 3;
      const type = (bh >> 1) & 3;
      if (type === 3) throw new Error(ZSTD_ERR.corruption);
      const size = type === 1 ? 1 : bh >>> 3;
      if (d.length - pos < size) throw new Error(ZSTD_ERR.srcSize);
      pos += size;
      if (bh & 1) break;
    }
    let checksum: number | undefined;
    if (hasChecksum) {
      if (d.length - pos < 4) throw new Error(ZSTD_ERR.checksum);
      checksum = d.readUInt32LE(pos);
      pos += 4;
    }
    frames.push({ start, end: pos, contentSize, checksum });
  }
  if (frames.length === 0) throw new Error(ZSTD_ERR.size);
  return frames;
}

function unzstd(data: Buffer, file: string): Buffer {
  const zlib = require('node:zlib') as { zstdDecompressSync?: (b: Buffer) => Buffer };
  if (typeof zlib.zstdDecompressSync === 'function') {
    try {
      return zlib.zstdDecompressSync(data);
    } catch (err) {
      throw new DecompressError(file, 'zstd', `zstd: ${(err as Error).message}`, 'kmod_file_load_zstd');
    }
  }
  const fzstd = require('fzstd') as { decompress(d: Uint8Array): Uint8Array };
  try {
    const parts: Uint8Array[] = [];
    for (const f of zstdFrames(data)) {
      let out: Uint8Array;
      try {
        out = fzstd.decompress(data.subarray(f.start, f.end));
      } catch (err) {
        throw new Error((err as { code?: number }).code === 5 ? ZSTD_ERR.srcSize : ZSTD_ERR.corruption);
      }
      if (f.contentSize !== undefined && out.length !== f.contentSize) throw new Error(ZSTD_ERR.corruption);
      if (f.checksum !== undefined && xxh64Low32(out) !== f.checksum) throw new Error(ZSTD_ERR.checksum);
      parts.push(out);
    }
    const out = parts.length === 1 ? parts[0] : Buffer.concat(parts);
    return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
  } catch (err) {
    if (err instanceof DecompressError) throw err;
    throw new DecompressError(file, 'zstd', (err as Error).message, 'kmod_file_load_zstd');
  }
}

function gunzip(data: Buffer, file: string): Buffer {
  const zlib = require('node:zlib') as typeof import('node:zlib');
  try {
    return zlib.gunzipSync(data);
  } catch (err) {
    throw new DecompressError(file, 'gzip', `gzip: ${(err as Error).message}`, 'kmod_file_load_zlib');
  }
}

/**
 * The decompressed contents of a module file (of any kind, by magic bytes; uncompressed data is returned
 * as is). A truncated or corrupt stream throws a DecompressError naming the file; never a partial result.
 */
export function decompress(data: Uint8Array, file: string): Buffer {
  const buf = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  switch (detectCompression(buf)) {
    case 'xz': return unxz(buf, file);
    case 'zstd': return unzstd(buf, file);
    case 'gzip': return gunzip(buf, file);
    default: return buf;
  }
}
