// libzstd itself, compiled to WebAssembly (@bokuweb/zstd-wasm's zstd.wasm, instantiated here synchronously
// with the few imports it needs), called as libkmod 34.2's kmod_file_load_zstd calls the native library:
// ZSTD_getFrameContentSize of the first frame, a buffer of exactly that size, one ZSTD_decompress over the
// whole file. Every verdict on a .ko.zst (accepted or not, and libzstd's error name) is therefore libzstd's,
// the same on every Node version.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { heapResizer, instantiate, type WasmMemory } from './wasm';

/** the wasm file's exports, by the minified names of the pinned @bokuweb/zstd-wasm 0.0.27 build */
interface ZstdExports {
  f: WasmMemory;
  /** constructors */
  g: () => void;
  /** ZSTD_isError(size_t) */
  h: (code: number) => number;
  /** ZSTD_getFrameContentSize(src, srcSize): only the low 32 bits of its unsigned long long (no BigInt in this build) */
  p: (src: number, size: number) => number;
  /** ZSTD_decompress(dst, dstCapacity, src, srcSize) */
  r: (dst: number, cap: number, src: number, size: number) => number;
  /** malloc, free */
  s: (size: number) => number;
  t: (ptr: number) => void;
}

/** libzstd's error names (ZSTD_getErrorName, error_private.c) by error code */
const ZSTD_ERROR_NAMES: Record<number, string> = {
  1: 'Error (generic)',
  10: 'Unknown frame descriptor',
  12: 'Version not supported',
  14: 'Unsupported frame parameter',
  16: 'Frame requires too much memory for decoding',
  20: 'Data corruption detected',
  22: "Restored data doesn't match checksum",
  24: "Header of Literals' block doesn't respect format specification",
  30: 'Dictionary is corrupted',
  32: 'Dictionary mismatch',
  40: 'Unsupported parameter',
  42: 'Parameter is out of bound',
  44: 'tableLog requires too much memory : unsupported',
  46: 'Unsupported max Symbol Value : too large',
  48: 'Specified maxSymbolValue is too small',
  60: 'Operation not authorized at current processing stage',
  62: 'Context should be init first',
  64: 'Allocation error : not enough memory',
  66: 'workSpace buffer is not large enough',
  70: 'Destination buffer is too small',
  72: 'Src size is incorrect',
  74: 'Operation on NULL destination buffer',
};

/** libzstd's name for an error result of a size_t function (the code is its negation) */
export function zstdErrorName(result: number): string {
  const code = (0x100000000 - (result >>> 0)) >>> 0;
  return ZSTD_ERROR_NAMES[code] ?? 'Unspecified error code';
}

/** ZSTD_CONTENTSIZE_UNKNOWN and ZSTD_CONTENTSIZE_ERROR (0ULL - 1, 0ULL - 2) */
const CONTENTSIZE_UNKNOWN = 0xffffffffffffffffn;
const CONTENTSIZE_ERROR = 0xfffffffffffffffen;

class ProcExit extends Error {}

let wasm: ZstdExports | undefined;

function load(): ZstdExports {
  const dir = path.dirname(require.resolve('@bokuweb/zstd-wasm'));
  let exports: ZstdExports | undefined;
  // proc_exit, keepalive_clear, abort, setitimer, emscripten_resize_heap (wasm32: 2 GiB at most)
  exports = instantiate<ZstdExports>(fs.readFileSync(path.join(dir, 'zstd.wasm')), {
    a: (status: number) => {
      throw new ProcExit(`libzstd exited (${status})`);
    },
    b: () => undefined,
    c: () => {
      throw new ProcExit('libzstd aborted');
    },
    d: () => 0,
    e: heapResizer(() => exports!.f, 0x80000000),
  });
  exports.g();
  return exports;
}

/** The loaded library, or the reason it cannot be loaded (libkmod's "can't load and resolve symbols"). */
export function loadLibzstd(): ZstdExports {
  wasm ??= load();
  return wasm;
}

/**
 * ZSTD_getFrameContentSize's full 64-bit answer from the low 32 bits this build returns: the high bits
 * are read from the frame header's content size field (libzstd has already validated the header when
 * it returns anything but ERROR or UNKNOWN).
 */
function frameContentSize(low: number, d: Uint8Array): bigint {
  const field = contentSizeField(d);
  if (field === undefined) return low === 0xffffffff ? CONTENTSIZE_UNKNOWN : low === 0xfffffffe ? CONTENTSIZE_ERROR : BigInt(low);
  if (Number(field & 0xffffffffn) === low) return field;
  return low === 0xfffffffe ? CONTENTSIZE_ERROR : CONTENTSIZE_UNKNOWN;
}

/** the content size a zstd frame header states (RFC 8878 3.1.1.1), or undefined when it states none */
export function contentSizeField(d: Uint8Array): bigint | undefined {
  if (d.length < 5) return undefined;
  const fhd = d[4];
  const single = (fhd >> 5) & 1;
  const fcsSize = fhd >> 6 === 0 ? single : [0, 2, 4, 8][fhd >> 6];
  const at = 5 + (single ? 0 : 1) + [0, 1, 2, 4][fhd & 3];
  if (fcsSize === 0 || d.length < at + fcsSize) return undefined;
  let v = 0n;
  for (let i = fcsSize - 1; i >= 0; i--) v = (v << 8n) | BigInt(d[at + i]);
  return fcsSize === 2 ? v + 256n : v;
}

/**
 * the outcome of libkmod's zstd load: the image; or the text libkmod logs after `zstd: `; or an errno
 * that libkmod returns without a message of its own (its malloc of the content size failing)
 */
export type LibzstdResult = { image: Buffer } | { error: string } | { errno: number };

const ENOMEM = 12;
/** content sizes no malloc can satisfy (beyond x86-64's 47-bit user address space) */
const MALLOC_IMPOSSIBLE = 2n ** 47n;
/** the most this wasm32 build is asked to allocate for an image (its memory ends at 2 GiB) */
const WASM_CAPACITY = 1 << 30;

/**
 * kmod_file_load_zstd's decoding of a whole file: the first frame's content size must be known and
 * non-zero ("Failed to determine decompression size"), and the file must decode into at most that
 * many bytes (several frames, trailing bytes, truncation and corruption fail as in libzstd).
 */
export function libzstdDecompress(data: Uint8Array, into?: { buffer: Buffer; at: number }): LibzstdResult {
  const z = loadLibzstd();
  const src = z.s(Math.max(1, data.length));
  if (src === 0) return { errno: ENOMEM };
  let dst = 0;
  try {
    new Uint8Array(z.f.buffer, src, data.length).set(data);
    const size = frameContentSize(z.p(src, data.length) >>> 0, data);
    if (size === 0n || size === CONTENTSIZE_UNKNOWN || size === CONTENTSIZE_ERROR) return { error: 'Failed to determine decompression size' };
    if (size >= MALLOC_IMPOSSIBLE) return { errno: ENOMEM };
    // a smaller buffer than the frame announces gives libzstd's verdict unless the output outgrows it
    const capacity = size > BigInt(WASM_CAPACITY) ? WASM_CAPACITY : Number(size);
    dst = z.s(capacity);
    if (dst === 0) return { errno: ENOMEM };
    const n = z.r(dst, capacity, src, data.length);
    if (z.h(n)) {
      const name = zstdErrorName(n);
      return name === 'Destination buffer is too small' && BigInt(capacity) < size ? { errno: ENOMEM } : { error: name };
    }
    const decoded = new Uint8Array(z.f.buffer, dst, n >>> 0);
    if (into !== undefined && into.at + decoded.length <= into.buffer.length) {
      into.buffer.set(decoded, into.at);
      return { image: into.buffer.subarray(into.at, into.at + decoded.length) };
    }
    const image = Buffer.allocUnsafeSlow(decoded.length);
    image.set(decoded);
    return { image };
  } finally {
    if (dst !== 0) z.t(dst);
    z.t(src);
  }
}
