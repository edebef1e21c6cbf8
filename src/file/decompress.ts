// Module file decompression: xz, zstd and gzip, recognised by their magic bytes (as libkmod-file.c does),
// each decoder loaded only when a file of that kind is met. xz and zstd go first to the system's own
// liblzma and libzstd through the addon (native-decode.ts), as kmod 34.2 itself dlopens them; where the
// addon or the library is missing, to node-liblzma's binding or the WebAssembly builds of the libraries.
// gzip goes through the addon too (to the zlib Node links in, node:zlib's own), which decodes only a
// clean single member and leaves every other gzip file (and every verdict on a damaged one) to node:zlib.
import { FormatError } from '../errors';
import { xzUncompressedSize } from './xz-index';
import { liblzmaDecompress, loadLiblzma } from './liblzma';
import { libzstdDecompress, loadLibzstd } from './libzstd';
import { nativeDecoder, NativeStatus, resultImage } from './native-decode';
import { nodeLiblzmaBinaries } from './node-liblzma';

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
 * libkmod maps an uncompressed module by the size fstat gives it: a file with none (a device, a /proc
 * file) whose first six bytes are no compression's magic is EINVAL (mmap of 0 bytes), where reading it
 * to its end might never end (/dev/zero). `first`: the bytes read so far, from the file's start.
 */
export function sizelessUncompressed(size: number, first: Uint8Array): boolean {
  return size === 0 && first.length >= 6 && detectCompression(first) === 'none';
}

/**
 * A compressed stream that cannot be decoded. `detail` is the text libkmod logs for the same failure
 * (e.g. "xz: File is corrupt"; empty where libkmod logs nothing), `fn` the C function that logs it;
 * errno is libkmod's: EINVAL, or ENOMEM when its allocation of the stated size would fail.
 */
export class DecompressError extends FormatError {
  constructor(
    file: string,
    readonly compression: Exclude<Compression, 'none'>,
    readonly detail: string,
    readonly fn: string,
    errno = 22,
  ) {
    super(file, `cannot decompress (${detail || 'Cannot allocate memory'})`, errno);
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
export function xzMessage(ret: number): string {
  switch (ret) {
    case LZMA_MEM_ERROR: return 'xz: Cannot allocate memory';
    case LZMA_FORMAT_ERROR: return 'xz: File format not recognized';
    case LZMA_OPTIONS_ERROR: return 'xz: Unsupported compression options';
    case LZMA_DATA_ERROR: return 'xz: File is corrupt';
    case LZMA_BUF_ERROR: return 'xz: Unexpected end of input';
    // (-1: lzma_stream_decoder failed otherwise; kmod_file_load_xz says the same)
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

let lzmaBinding: LzmaBinding | null | undefined;

/**
 * node-liblzma's native binding (an optional dependency: its prebuilt linux-x64 binary, static liblzma
 * 5.8), or null where it is not installed or does not load; the WebAssembly liblzma serves then.
 */
function nativeLzma(): LzmaBinding | null {
  if (lzmaBinding !== undefined) return lzmaBinding;
  lzmaBinding = null;
  const files = nodeLiblzmaBinaries();
  if (files === undefined) return null;
  for (const candidate of [files.prebuilt, files.built]) {
    try {
      lzmaBinding = require(candidate) as LzmaBinding;
      break;
    } catch {
      // absent, or built for another libc or ABI
    }
  }
  return lzmaBinding;
}

/**
 * xz through liblzma, driven as libkmod drives it: one stream decoder (concatenated streams allowed) fed
 * the whole file with LZMA_FINISH until liblzma reports the stream end or an error. The native binding
 * when it loads, else the same liblzma compiled to WebAssembly (liblzma.ts): the verdicts are one library's.
 */
function unxz(data: Buffer, file: string): Buffer {
  const lzma = nativeLzma();
  if (lzma === null) {
    try {
      loadLiblzma();
    } catch (err) {
      // libkmod's wording when liblzma cannot be loaded
      throw new DecompressError(file, 'xz', `xz: can't load and resolve symbols (${(err as Error).message})`, 'kmod_file_load_xz');
    }
    const result = liblzmaDecompress(data, xzUncompressedSize(data) ?? 0);
    if ('image' in result) return result.image;
    throw new DecompressError(file, 'xz', xzMessage(result.ret), result.ret === -1 ? 'kmod_file_load_xz' : 'xz_uncompress_belch');
  }
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

/**
 * zstd as libkmod decodes it (kmod_file_load_zstd), always by libzstd's own ZSTD_decompress (libzstd.ts,
 * WebAssembly): as fast as node:zlib's native zstd here (docs/decisions.md), and one verdict on every
 * Node version, where node:zlib's streaming decoder accepts what libkmod refuses and words errors its way.
 */
function unzstd(data: Buffer, file: string): Buffer {
  try {
    loadLibzstd();
  } catch (err) {
    // libkmod's wording when libzstd cannot be loaded
    throw new DecompressError(file, 'zstd', `zstd: can't load and resolve symbols (${(err as Error).message})`, 'kmod_file_load_zstd');
  }
  const result = libzstdDecompress(data);
  if ('image' in result) return result.image;
  if ('errno' in result) throw new DecompressError(file, 'zstd', '', 'kmod_file_load_zstd', result.errno);
  throw new DecompressError(file, 'zstd', `zstd: ${result.error}`, 'kmod_file_load_zstd');
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
 * xz, zstd or gzip by the addon's decoder (the system's libraries; Node's zlib); undefined where it
 * cannot be used (no addon, the library missing), the data is none of them, or it is gzip the addon
 * leaves to node:zlib (all but a clean single member: native/decode_gzip.c).
 */
function nativeDecode(data: Buffer, file: string, into: Buffer | undefined): Buffer | undefined {
  const native = nativeDecoder();
  if (native === null) return undefined;
  const r = native.decodeImage(data, into ?? null);
  if (r.status === NativeStatus.ok) return resultImage(r, into);
  if (r.status !== NativeStatus.failed) return undefined;
  throw new DecompressError(file, r.kind === 1 ? 'xz' : 'zstd', r.detail, r.fn, r.err);
}

/**
 * The decompressed contents of a module file (of any kind, by magic bytes; uncompressed data is returned
 * as is). A truncated or corrupt stream throws a DecompressError naming the file; never a partial result.
 * `into`, a buffer to reuse, holds the image when it fits (the result is then a view of it).
 */
export function decompress(data: Uint8Array, file: string, into?: Buffer): Buffer {
  const buf = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const kind = detectCompression(buf);
  if (kind !== 'none') {
    const image = nativeDecode(buf, file, into);
    if (image !== undefined) return image;
  }
  switch (kind) {
    case 'xz': return unxz(buf, file);
    case 'zstd': return unzstd(buf, file);
    case 'gzip': return gunzip(buf, file);
    default: return buf;
  }
}
