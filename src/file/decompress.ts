// Module file decompression: xz, zstd and gzip, recognised by their magic bytes (as libkmod-file.c does),
// each decoder loaded only when a file of that kind is met.
import { FormatError } from '../errors';

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
 * node-liblzma's native binding. Its prebuilt linux-x64 binary (static liblzma 5.8) decodes ~1.5x faster
 * than the copy its install script compiles against the system's liblzma 5.4 (docs/decisions.md), so it
 * is preferred where it loads; elsewhere node-gyp-build picks the compiled one.
 */
function loadLzma(): LzmaBinding {
  if (lzmaBinding !== undefined) return lzmaBinding;
  const path = require('node:path') as typeof import('node:path');
  const root = path.resolve(path.dirname(require.resolve('node-liblzma')), '..');
  try {
    lzmaBinding = require(`${root}/prebuilds/${process.platform}-${process.arch}/node-liblzma.node`) as LzmaBinding;
  } catch {
    lzmaBinding = (require('node-gyp-build') as (dir: string) => LzmaBinding)(root);
  }
  return lzmaBinding;
}

/**
 * xz through liblzma. node-liblzma's unxzSync() stops at the end of the input without telling a finished
 * stream from a truncated one, so the decoder is driven here until liblzma itself reports the stream end
 * (concatenated streams included) or an error, exactly as libkmod's loop does.
 */
function unxz(data: Buffer, file: string): Buffer {
  const lzma = loadLzma();
  const decoder = new lzma.LZMA(lzma.STREAM_DECODE, {
    check: 0, preset: 6, filters: [lzma.LZMA_FILTER_LZMA2], mode: 0, threads: 1, chunkSize: 65536, flushFlag: 0,
  });
  let out = Buffer.allocUnsafe(Math.max(1 << 16, data.length * 6));
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

/** zstd ZSTD_getErrorName() texts for what the JS decoder reports */
function zstdMessage(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  switch (code) {
    case 5: return 'zstd: Src size is incorrect'; // unexpected end of input
    case 1: return 'zstd: Frame requires too much memory for decoding';
    case 2: return 'zstd: Corrupted block detected';
    default: return 'zstd: Data corruption detected';
  }
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
  let out: Uint8Array;
  try {
    out = fzstd.decompress(data);
  } catch (err) {
    throw new DecompressError(file, 'zstd', zstdMessage(err), 'kmod_file_load_zstd');
  }
  return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
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
