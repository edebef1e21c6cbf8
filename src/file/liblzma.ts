// liblzma itself (xz 5.8), compiled to WebAssembly (the liblzma.wasm that node-liblzma 5 builds and
// publishes; kept in vendor/ with its licence), instantiated here synchronously and driven as libkmod
// 34.2's xz_uncompress drives the native library: lzma_stream_decoder(UINT64_MAX, LZMA_CONCATENATED),
// lzma_code until LZMA_STREAM_END or an error. So every .ko.xz verdict is liblzma's on every Node
// version and platform, without a compiler or a platform binary.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { heapResizer, instantiate, type WasmMemory } from './wasm';

/** the exports of vendor/liblzma-5.8.4.wasm, by their minified names */
interface LzmaExports {
  b: WasmMemory;
  /** constructors */
  c: () => void;
  /** lzma_code(strm, action) */
  f: (strm: number, action: number) => number;
  /** lzma_end(strm) */
  g: (strm: number) => void;
  /** lzma_stream_decoder(strm, memlimit, flags) */
  r: (strm: number, memlimit: bigint, flags: number) => number;
  /** malloc, free */
  s: (size: number) => number;
  t: (ptr: number) => void;
}

const LZMA_OK = 0;
const LZMA_STREAM_END = 1;
const LZMA_MEM_ERROR = 5;
const LZMA_FINISH = 3;
const LZMA_CONCATENATED = 0x08;
/** sizeof(lzma_stream) on wasm32 is 88; its offsets of next_in, avail_in, next_out, avail_out */
const STREAM_SIZE = 96;
const NEXT_IN = 0;
const AVAIL_IN = 4;
const NEXT_OUT = 16;
const AVAIL_OUT = 20;
/** the wasm build's memory limit (its emscripten_resize_heap stops there) */
const HEAP_MAX = 256 << 20;

let lzma: LzmaExports | undefined;

/** the vendored wasm file: beside the compiled module (dist/file/) or the source (src/file/), under vendor/ */
function wasmPath(): string {
  return path.join(__dirname, '..', '..', 'vendor', 'liblzma-5.8.4.wasm');
}

function load(): LzmaExports {
  let exports: LzmaExports | undefined;
  // emscripten_resize_heap, up to the build's own limit
  exports = instantiate<LzmaExports>(fs.readFileSync(wasmPath()), { a: heapResizer(() => exports!.b, HEAP_MAX) });
  exports.c();
  return exports;
}

/** The loaded library (throws when it cannot be: libkmod's "can't load and resolve symbols"). */
export function loadLiblzma(): LzmaExports {
  lzma ??= load();
  return lzma;
}

/** the image, or liblzma's lzma_ret for the failure (libkmod words it: xz_uncompress_belch) */
export type LiblzmaResult = { image: Buffer } | { ret: number };

/**
 * xz_uncompress: the whole file through one LZMA_CONCATENATED stream decoder, finished at the end of
 * the input; `sizeHint` (the size the index states, when known) sizes the first output buffer.
 */
export function liblzmaDecompress(data: Uint8Array, sizeHint = 0): LiblzmaResult {
  const z = loadLiblzma();
  const strm = z.s(STREAM_SIZE);
  const src = z.s(Math.max(1, data.length));
  const outSize = Math.min(Math.max(sizeHint + 1, 1 << 16), 64 << 20);
  const dst = z.s(outSize);
  const parts: Buffer[] = [];
  let started = false;
  try {
    if (strm === 0 || src === 0 || dst === 0) return { ret: LZMA_MEM_ERROR };
    new Uint8Array(z.b.buffer, strm, STREAM_SIZE).fill(0);
    new Uint8Array(z.b.buffer, src, data.length).set(data);
    const init = z.r(strm, 0xffffffffffffffffn, LZMA_CONCATENATED);
    if (init !== LZMA_OK) return { ret: init === LZMA_MEM_ERROR ? LZMA_MEM_ERROR : -1 };
    started = true;
    let view = new DataView(z.b.buffer);
    view.setUint32(strm + NEXT_IN, src, true);
    view.setUint32(strm + AVAIL_IN, data.length, true);
    for (;;) {
      view.setUint32(strm + NEXT_OUT, dst, true);
      view.setUint32(strm + AVAIL_OUT, outSize, true);
      const ret = z.f(strm, LZMA_FINISH);
      // (the memory may have grown: views are made again)
      view = new DataView(z.b.buffer);
      const produced = outSize - view.getUint32(strm + AVAIL_OUT, true);
      if (produced > 0) parts.push(Buffer.from(new Uint8Array(z.b.buffer, dst, produced)));
      if (ret === LZMA_STREAM_END) return { image: parts.length === 1 ? parts[0] : Buffer.concat(parts) };
      if (ret !== LZMA_OK) return { ret };
    }
  } finally {
    if (started) z.g(strm);
    z.t(dst);
    z.t(src);
    z.t(strm);
  }
}

/** libkmod's read size in xz_uncompress (glibc's BUFSIZ) */
const XZ_READ_CHUNK = 8192;
const LZMA_RUN = 0;

/** one load of xz_uncompress from a file offset: liblzma's verdict (LZMA_STREAM_END or the failure) and the offset its reads ended at */
export interface LiblzmaAttempt {
  ret: number;
  end: number;
}

/**
 * xz_uncompress exactly as libkmod runs it on a descriptor already at `start`: read() BUFSIZ bytes at
 * a time with LZMA_RUN, LZMA_FINISH once read() gives nothing, a BUFSIZ output buffer, until the stream
 * end or an error. What it produces is dropped: only its verdict and where the descriptor was left
 * matter (libkmod loads a module that failed again from there: depmod's load-failure.ts).
 */
export function liblzmaAttempt(data: Uint8Array, start: number): LiblzmaAttempt {
  const z = loadLiblzma();
  const strm = z.s(STREAM_SIZE);
  const src = z.s(XZ_READ_CHUNK);
  const dst = z.s(XZ_READ_CHUNK);
  let pos = Math.min(start, data.length);
  let started = false;
  try {
    if (strm === 0 || src === 0 || dst === 0) return { ret: LZMA_MEM_ERROR, end: pos };
    new Uint8Array(z.b.buffer, strm, STREAM_SIZE).fill(0);
    const init = z.r(strm, 0xffffffffffffffffn, LZMA_CONCATENATED);
    if (init !== LZMA_OK) return { ret: init === LZMA_MEM_ERROR ? LZMA_MEM_ERROR : -1, end: pos };
    started = true;
    let action = LZMA_RUN;
    let view = new DataView(z.b.buffer);
    view.setUint32(strm + NEXT_OUT, dst, true);
    view.setUint32(strm + AVAIL_OUT, XZ_READ_CHUNK, true);
    for (;;) {
      if (view.getUint32(strm + AVAIL_IN, true) === 0) {
        const n = Math.min(XZ_READ_CHUNK, data.length - pos);
        new Uint8Array(z.b.buffer, src, n).set(data.subarray(pos, pos + n));
        pos += n;
        view.setUint32(strm + NEXT_IN, src, true);
        view.setUint32(strm + AVAIL_IN, n, true);
        if (n === 0) action = LZMA_FINISH;
      }
      const ret = z.f(strm, action);
      view = new DataView(z.b.buffer);
      if (view.getUint32(strm + AVAIL_OUT, true) === 0 || ret !== LZMA_OK) {
        view.setUint32(strm + NEXT_OUT, dst, true);
        view.setUint32(strm + AVAIL_OUT, XZ_READ_CHUNK, true);
      }
      if (ret !== LZMA_OK) return { ret, end: pos };
    }
  } finally {
    if (started) z.g(strm);
    z.t(dst);
    z.t(src);
    z.t(strm);
  }
}
