// Worker thread body for depmod's module reads: it reads and decompresses the files it is sent, the
// images of a batch one after the other in one buffer that goes to depmod's thread and comes back for
// the next batch. The images are scanned on depmod's thread (module-scan.ts), so that this thread runs
// almost no JavaScript: what it would compile and collect is work taken from decompressing.
import * as fs from '../file/binary-os';
import { parentPort } from 'node:worker_threads';
import { errnoOf } from '../errno';
import { detectCompression } from '../file/decompress';
import { contentSizeField, libzstdDecompress } from '../file/libzstd';
import { unxzInto } from './fast-xz';
import { isXz, xzUncompressedSize } from '../file/xz-index';
import { moduleImage, readReusable } from './module-image';

export interface DecodeRequest {
  ids: number[];
  paths: string[];
  /** a buffer of an earlier reply (or a new one), to fill */
  buffer: ArrayBuffer;
}
export interface DecodeReply {
  ids: number[];
  /** the images (transferred): the request's buffer, or one made for a single image too large for it */
  buffer: ArrayBuffer;
  /**
   * the size of buffer the first file needs, when its image is larger than the request's buffer
   * (nothing is done then: depmod's thread makes the buffer, so that its memory comes from that
   * thread's allocator, where the memory of the files it writes later can reuse it)
   */
  need: number;
  /** per file: where its image starts in `buffer` and its length; a length of -1 when the file cannot be used, with its errno in `at` */
  at: Float64Array;
  length: Float64Array;
  /**
   * how many of the files (from the first) are in the reply: the batch stops at an xz image that does
   * not fit in what is left of the buffer, and the others are sent again
   */
  done: number;
}

/** the file sizes by path, 0 for a file that cannot be stat'ed (the read reports it) */
export interface SizesRequest {
  sizesOf: string[];
}
export interface SizesReply {
  sizes: Float64Array;
}

export type WorkerRequest = DecodeRequest | SizesRequest;
export type WorkerReply = DecodeReply | SizesReply;

function fileSizes(paths: string[]): Float64Array {
  const sizes = new Float64Array(paths.length);
  for (let i = 0; i < paths.length; i++) {
    try {
      sizes[i] = fs.statSync(paths[i]).size;
    } catch {
      // left 0
    }
  }
  return sizes;
}

/** the images of `paths`, each 8-aligned (the scan reads symbol tables through 32-bit views) */
export function decodeBatch(req: DecodeRequest): DecodeReply {
  const n = req.paths.length;
  const at = new Float64Array(n);
  const length = new Float64Array(n);
  let out = Buffer.from(req.buffer);
  let pos = 0;
  let done = 0;
  for (; done < n; done++) {
    const k = done;
    const file = req.paths[k];
    let raw: Buffer;
    try {
      raw = readReusable(file);
    } catch (err) {
      at[k] = errnoOf(err);
      length[k] = -1;
      continue;
    }
    // an xz or zstd image decoded into the batch buffer, anything else (or a file these paths leave)
    // through moduleImage, which gives the errors
    const zstd = !isXz(raw) && detectCompression(raw) === 'zstd';
    const stated = zstd ? contentSizeField(raw) : undefined;
    const size = isXz(raw) ? xzUncompressedSize(raw) : stated !== undefined && stated > 0n && stated < 1n << 30n ? Number(stated) : null;
    let len: number | null = null;
    if (size !== null) {
      if (pos + size + 1 > out.length) {
        // the buffer is not grown, so that its memory is the same from batch to batch: an image that
        // does not fit waits for the next batch, one larger than the whole buffer asks for one of its own
        if (pos === 0) return { ids: req.ids, buffer: req.buffer, at, length, done: 0, need: size + 1 };
        break;
      }
      if (zstd) {
        const r = libzstdDecompress(raw, { buffer: out, at: pos });
        len = 'image' in r && r.image.buffer === out.buffer ? r.image.length : null;
      } else {
        len = unxzInto(raw, out, pos);
      }
    }
    if (len === null) {
      const image = moduleImage(raw, file);
      if (typeof image === 'number') {
        at[k] = image;
        length[k] = -1;
        continue;
      }
      if (pos + image.length > out.length) {
        const bigger = Buffer.from(new ArrayBuffer(Math.max(out.length * 2, pos + image.length)));
        out.copy(bigger, 0, 0, pos);
        out = bigger;
      }
      image.copy(out, pos);
      len = image.length;
    }
    at[k] = pos;
    length[k] = len;
    pos += len + ((8 - (len & 7)) & 7);
  }
  return { ids: req.ids, buffer: out.buffer as ArrayBuffer, at, length, done, need: 0 };
}

if (parentPort !== null) {
  const port = parentPort;
  port.on('message', (req: WorkerRequest) => {
    if ('sizesOf' in req) {
      const sizes = fileSizes(req.sizesOf);
      port.postMessage({ sizes } satisfies SizesReply, [sizes.buffer as ArrayBuffer]);
    } else {
      const reply = decodeBatch(req);
      const moved = [reply.buffer, reply.at.buffer as ArrayBuffer, reply.length.buffer as ArrayBuffer];
      port.postMessage(reply satisfies DecodeReply, moved);
    }
  });
}
