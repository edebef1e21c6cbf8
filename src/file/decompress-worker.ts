// Worker side of ImagePrefetcher: reads module files and decompresses them, in the order asked.
import * as fs from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { decompress, DecompressError } from './decompress';

/** buffers that own all of their memory can be moved instead of copied; slices of a pool cannot
 *  (Node 24's readFileSync serves small files from a 64 KiB pool that refuses to be transferred) */
function movable(list: (Buffer | undefined)[]): ArrayBuffer[] {
  const out: ArrayBuffer[] = [];
  for (const b of list) {
    if (b && b.byteOffset === 0 && b.byteLength === b.buffer.byteLength && b.byteLength >= 65536 && !out.includes(b.buffer as ArrayBuffer)) {
      out.push(b.buffer as ArrayBuffer);
    }
  }
  return out;
}

/** posts, moving what can be moved; a buffer the runtime still refuses to move is copied instead */
function post(msg: object, list: (Buffer | undefined)[]): void {
  try {
    parentPort!.postMessage(msg, movable(list));
  } catch (err) {
    // some runtimes (Node 24) give buffers whose memory cannot be moved (DataCloneError): copy them
    if ((err as Error).name !== 'DataCloneError') throw err;
    parentPort!.postMessage(msg);
  }
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
    post({ id: job.id, raw, image: img }, [raw, img]);
  } catch (err) {
    if (!(err instanceof DecompressError)) throw err;
    parentPort!.postMessage({ id: job.id, raw, error: { compression: err.compression, detail: err.detail, fn: err.fn, errno: err.errno } });
  }
});
