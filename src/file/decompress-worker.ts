// Worker side of ImagePrefetcher: reads module files and decompresses them, in the order asked.
import * as fs from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { decompress, DecompressError } from './decompress';

/** buffers that own their memory (not Node's 8 KiB pool) can be moved instead of copied */
function movable(list: (Buffer | undefined)[]): ArrayBuffer[] {
  const out: ArrayBuffer[] = [];
  for (const b of list) {
    if (b && b.buffer.byteLength >= 65536 && !out.includes(b.buffer as ArrayBuffer)) out.push(b.buffer as ArrayBuffer);
  }
  return out;
}

parentPort?.on('message', (job: { id: number; path: string }) => {
  let raw: Buffer;
  try {
    raw = fs.readFileSync(job.path);
  } catch {
    // the main thread opens the file itself and reports the error as usual
    parentPort!.postMessage({ id: job.id, readFailed: true });
    return;
  }
  try {
    const image = decompress(raw, job.path);
    const img = image === raw ? undefined : image;
    const reply = { id: job.id, raw, image: img };
    try {
      parentPort!.postMessage(reply, movable([raw, img]));
    } catch (err) {
      // some runtimes (Node 24) give buffers whose memory cannot be moved (DataCloneError): copy them
      if ((err as Error).name !== 'DataCloneError') throw err;
      parentPort!.postMessage(reply);
    }
  } catch (err) {
    if (!(err instanceof DecompressError)) throw err;
    parentPort!.postMessage({ id: job.id, raw, error: { compression: err.compression, detail: err.detail, fn: err.fn, errno: err.errno } });
  }
});
