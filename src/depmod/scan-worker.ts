// Worker thread body for depmod's module scan: reads, decompresses and scans the modules it is sent.
import * as fs from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { EINVAL, errnoOf } from '../errno';
import { KmodError } from '../errors';
import { decompress } from '../file/decompress';
import { unxzReusable } from './fast-xz';
import { addFailedScan, scanModuleImage, ScanBatchWriter } from './module-scan';

let readBuf = Buffer.allocUnsafe(1 << 20);
/** read buffers above this size are not kept for the next module */
const KEEP_LIMIT = 16 << 20;

/**
 * The whole file in a buffer that the next call reuses: depmod reads thousands of files one after the
 * other, and a fresh buffer for each (as readFileSync makes) costs an allocation, an fstat and, with
 * ~100 MB read in all, garbage collections triggered by the external memory alone.
 */
function readReusable(file: string): Buffer {
  if (readBuf.length > KEEP_LIMIT) readBuf = Buffer.allocUnsafe(1 << 20);
  const fd = fs.openSync(file, fs.constants.O_RDONLY);
  try {
    let n = 0;
    for (;;) {
      if (n === readBuf.length) {
        const bigger = Buffer.allocUnsafe(readBuf.length * 2);
        readBuf.copy(bigger, 0, 0, n);
        readBuf = bigger;
      }
      const got = fs.readSync(fd, readBuf, n, readBuf.length - n, null);
      if (got === 0) return readBuf.subarray(0, n);
      n += got;
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** One module into `batch`, in this thread: never throws for a bad file (the scan records the errno). */
export function scanModuleFile(file: string, batch: ScanBatchWriter): void {
  let raw: Buffer;
  try {
    raw = readReusable(file);
  } catch (err) {
    addFailedScan(batch, errnoOf(err));
    return;
  }
  // libkmod needs the 6 bytes of the longest magic before it looks at a file
  if (raw.length < 6) {
    addFailedScan(batch, EINVAL);
    return;
  }
  let data: Buffer | null = null;
  if (raw[0] === 0xfd && raw[1] === 0x37 && raw[2] === 0x7a && raw[3] === 0x58 && raw[4] === 0x5a && raw[5] === 0) {
    data = unxzReusable(raw);
    if (data !== null) {
      scanModuleImage(data, file, batch);
      return;
    }
  }
  try {
    data = decompress(raw, file);
  } catch (err) {
    if (err instanceof KmodError) {
      addFailedScan(batch, err.errno);
      return;
    }
    throw err;
  }
  scanModuleImage(data, file, batch);
}

/** The scans of `files` (in their order), read here: a batch's buffer, as readScanBatch() takes it. */
export function scanFiles(files: string[]): ArrayBuffer {
  const batch = (writer ??= new ScanBatchWriter());
  for (const f of files) scanModuleFile(f, batch);
  return batch.take();
}

let writer: ScanBatchWriter | undefined;

/** file sizes by path, 0 for a file that cannot be stat'ed (the scan reports it) */
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

export interface ScanRequest {
  ids: number[];
  paths: string[];
}
export interface ScanReply {
  ids: number[];
  /** the scans, as ScanBatchWriter makes them (transferred) */
  batch: ArrayBuffer;
}

/** the sizes of files (for the scan's largest-first order), asked while the scan has begun */
export interface SizesRequest {
  sizesOf: string[];
}
export interface SizesReply {
  sizes: Float64Array;
}

export type WorkerRequest = ScanRequest | SizesRequest;
export type WorkerReply = ScanReply | SizesReply;

if (parentPort !== null) {
  const port = parentPort;
  port.on('message', (req: WorkerRequest) => {
    if ('sizesOf' in req) {
      const sizes = fileSizes(req.sizesOf);
      port.postMessage({ sizes } satisfies SizesReply, [sizes.buffer as ArrayBuffer]);
    } else {
      const batch = scanFiles(req.paths);
      port.postMessage({ ids: req.ids, batch } satisfies ScanReply, [batch]);
    }
  });
}
