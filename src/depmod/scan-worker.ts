// Worker thread body for depmod's module scan: reads, decompresses and scans the modules it is sent.
import * as fs from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { EINVAL, errnoOf } from '../errno';
import { KmodError } from '../errors';
import { decompress } from '../file/decompress';
import { unxzReusable } from './fast-xz';
import { failedScan, scanModuleImage, type ModuleScan } from './module-scan';

/** One module, in this thread: never throws for a bad file (the scan records the errno). */
export function scanModuleFile(file: string): ModuleScan {
  let raw: Buffer;
  try {
    raw = fs.readFileSync(file);
  } catch (err) {
    return failedScan(errnoOf(err));
  }
  // libkmod needs the 6 bytes of the longest magic before it looks at a file
  if (raw.length < 6) return failedScan(EINVAL);
  let data: Buffer | null = null;
  if (raw[0] === 0xfd && raw[1] === 0x37 && raw[2] === 0x7a && raw[3] === 0x58 && raw[4] === 0x5a && raw[5] === 0) {
    data = unxzReusable(raw);
    if (data !== null) return scanModuleImage(data, file);
  }
  try {
    data = decompress(raw, file);
  } catch (err) {
    if (err instanceof KmodError) return failedScan(err.errno);
    throw err;
  }
  return scanModuleImage(data, file);
}

export interface ScanRequest {
  ids: number[];
  paths: string[];
}
export interface ScanReply {
  ids: number[];
  scans: ModuleScan[];
}

/** the sizes of files (for the scan's order), asked while the caller sorts its modules */
export interface SizesRequest {
  sizesOf: string[];
}
export interface SizesReply {
  sizes: Float64Array;
}

if (parentPort !== null) {
  const port = parentPort;
  port.on('message', (req: ScanRequest | SizesRequest) => {
    if ('sizesOf' in req) {
      const { fileSizes } = require('./scan-pool') as typeof import('./scan-pool');
      const sizes = fileSizes(req.sizesOf);
      port.postMessage({ sizes } satisfies SizesReply, [sizes.buffer as ArrayBuffer]);
      return;
    }
    const scans = req.paths.map(scanModuleFile);
    port.postMessage({ ids: req.ids, scans } satisfies ScanReply);
  });
}
