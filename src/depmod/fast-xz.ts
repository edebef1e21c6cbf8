// depmod's xz path: decodes a whole .ko.xz into one reusable buffer with the newest liblzma that
// node-liblzma offers (its prebuilt binary bundles xz 5.8, whose decoder is about a third faster than
// the 5.4 a node-gyp build links on Debian 12). Anything but a clean single stream returns null, and
// the caller then goes through the shared decompress() for libkmod's exact behaviour and messages.
import * as fs from 'node:fs';
import { nodeLiblzmaBinaries } from '../file/node-liblzma';
import { releaseBuffers } from './release';
import { xzUncompressedSize } from '../file/xz-index';

interface LzmaBinding {
  LZMA: new (mode: number, opts: object) => {
    codeSync(flush: number, input: Buffer, inOff: number, availIn: number, out: Buffer, outOff: number): [number, number, number];
    close(): void;
  };
  STREAM_DECODE: number;
  LZMA_FINISH: number;
  LZMA_OK: number;
  LZMA_STREAM_END: number;
  LZMA_CHECK_CRC32: number;
  LZMA_FILTER_LZMA2: number;
  versionNumber?: () => number;
}

let binding: LzmaBinding | null | undefined;

function loadBinding(): LzmaBinding | null {
  if (binding !== undefined) return binding;
  binding = null;
  const files = nodeLiblzmaBinaries();
  if (files === undefined) return null;
  const candidates = [files.prebuilt, files.built];
  let best = 0;
  for (const c of candidates) {
    if (!fs.existsSync(c)) continue;
    try {
      const b = require(c) as LzmaBinding;
      const v = typeof b.versionNumber === 'function' ? b.versionNumber() : 1;
      if (v > best) {
        best = v;
        binding = b;
      }
    } catch {
      // a binary for another libc or ABI: try the next one
    }
  }
  return binding;
}

let out = Buffer.allocUnsafe(0);

/** buffers above this size are not kept for the next module (a few huge drivers would pin them) */
const KEEP_LIMIT = 16 << 20;

/**
 * Decodes `data` (an xz file whose index says it holds `size` bytes) into out[pos..], which must have
 * room for size + 1 bytes (one more than the index says, so that a stream longer than its index is
 * caught). The image's length, or null when this path cannot decide (no binding, any decoder
 * complaint, trailing data): the caller then goes through decompress().
 */
export function unxzInto(data: Buffer, out: Buffer, pos: number): number | null {
  const b = loadBinding();
  if (b === null) return null;
  let engine;
  try {
    engine = new b.LZMA(b.STREAM_DECODE, { check: b.LZMA_CHECK_CRC32, preset: 6, filters: [b.LZMA_FILTER_LZMA2], mode: 2, threads: 1, chunkSize: 65536, flushFlag: 0 });
  } catch {
    return null;
  }
  try {
    const [ret, inLeft, outLeft] = engine.codeSync(b.LZMA_FINISH, data, 0, data.length, out, pos);
    return ret === b.LZMA_STREAM_END && inLeft === 0 ? out.length - outLeft - pos : null;
  } catch {
    return null;
  } finally {
    engine.close();
  }
}

/** unxzReusable's buffer, to free (the images it gave are no longer used); the next call makes another */
export function takeXzBuffer(): ArrayBuffer[] {
  const taken = out.length > 0 ? [out.buffer as ArrayBuffer] : [];
  out = Buffer.alloc(0);
  return taken;
}

/**
 * The decompressed image in a buffer that is reused by the next call (copy what must outlive it),
 * or null when this path cannot decide (see unxzInto).
 */
export function unxzReusable(data: Buffer): Buffer | null {
  const size = xzUncompressedSize(data);
  if (size === null) return null;
  // the caller is done with the last image: a huge buffer of the last call is not kept
  if (out.length > KEEP_LIMIT) {
    void releaseBuffers([out.buffer as ArrayBuffer]);
    out = Buffer.alloc(0);
  }
  if (out.length < size + 1) {
    if (out.length > 0) void releaseBuffers([out.buffer as ArrayBuffer]);
    out = Buffer.from(new ArrayBuffer(Math.max(size + 1, 4 << 20)));
  }
  const n = unxzInto(data, out, 0);
  return n === null ? null : out.subarray(0, n);
}
