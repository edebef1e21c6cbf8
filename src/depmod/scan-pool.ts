// Reads the modules of a depmod run: worker threads (one per core besides this one) read and
// decompress files, a batch at a time, and send the images back in one transferred buffer; this thread
// scans every image (module-scan.ts) and reads and decompresses modules of its own between batches.
// The scan's JavaScript thus runs, and is compiled and collected, on this thread only: the workers
// spend their time in liblzma. The workers take the largest files first and this thread the smallest
// (the end of the queue), so that it returns to the workers' batches often; memory stays bounded by
// what a few batches need. Results come back in the order of the input paths. The threads are started
// early (startScanPool) so that their start-up overlaps depmod's directory walk.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Worker } from 'node:worker_threads';
import { failedScan, scanModuleImage, ScanStore, type ModuleScan } from './module-scan';
import { readModuleImage, releaseImageBuffers } from './module-image';
import { releaseBuffers } from './release';
import type { DecodeReply, DecodeRequest, SizesRequest, WorkerReply, WorkerRequest } from './decode-worker';

export interface ScanOptions {
  /**
   * worker threads besides the calling thread, which scans too; 0 scans on the calling thread only.
   * Default: available parallelism - 1 (at most 7).
   */
  threads?: number;
  /** called as modules complete */
  onProgress?: (done: number, total: number) => void;
  /** the script the threads run (tests give one that fails, to see the scan finish on this thread) */
  workerScript?: string;
  /** bytes of a batch buffer (BATCH_BUFFER; tests give a small one, so that many modules need their own) */
  batchBuffer?: number;
}

/** files per batch, at most */
const BATCH = 16;
/** compressed bytes of a worker's batch (a batch holds at least one file) */
const WORKER_BATCH_BYTES = 256 << 10;
/** compressed bytes of this thread's own batches: small, so that the workers' replies are taken soon */
const OWN_BATCH_BYTES = 64 << 10;
/** batches read ahead during depmod's walk, at most (readAhead) */
const AHEAD_BATCHES = 3;
/** the size of a batch buffer (a module too large for it gets one of its own) */
const BATCH_BUFFER = 4 << 20;

/** The compiled worker script (dist/depmod/decode-worker.js), also when this file runs from sources. */
function workerScript(): string | undefined {
  const here = path.join(__dirname, 'decode-worker.js');
  if (fs.existsSync(here)) return here;
  const built = path.resolve(__dirname, '../../dist/depmod/decode-worker.js');
  if (fs.existsSync(built)) return built;
  return undefined;
}

/** One module read and scanned on the calling thread. */
function scanFile(file: string, store: ScanStore): ModuleScan {
  const image = readModuleImage(file);
  return typeof image === 'number' ? failedScan(image) : scanModuleImage(image, file, store);
}

/** The scan on the calling thread (also the fallback when a worker thread fails). */
export function scanInline(paths: string[], opts: ScanOptions = {}, onResult?: ScanResultFn, store = new ScanStore()): ModuleScan[] {
  const out: ModuleScan[] = [];
  for (let i = 0; i < paths.length; i++) {
    const scan = scanFile(paths[i], store);
    out.push(scan);
    onResult?.(i, scan);
    opts.onProgress?.(i + 1, paths.length);
  }
  return out;
}

/** called with each module's scan as it comes in (in no particular order), by its index in the paths */
export type ScanResultFn = (index: number, scan: ModuleScan) => void;

export interface ScanPool {
  /**
   * The scans in the order of the paths, their numbers kept in `store` (for the caller to release);
   * onResult sees each as it comes in. A thread that fails is replaced by this one (everything is
   * read again here).
   */
  scan(paths: string[], onResult?: ScanResultFn, store?: ScanStore): Promise<ModuleScan[]>;
  /**
   * A file that will probably be among scan()'s paths, found before scan() is called (depmod's walk):
   * the first of them are read and decompressed ahead, while the caller goes on.
   */
  readAhead(path: string): void;
  close(): void;
}

export function startScanPool(opts: ScanOptions = {}): ScanPool {
  const wanted = opts.threads ?? Math.min(7, os.availableParallelism() - 1);
  const script = wanted > 0 ? (opts.workerScript ?? workerScript()) : undefined;
  let workers: Worker[] = [];
  if (script !== undefined) {
    const { Worker } = require('node:worker_threads') as typeof import('node:worker_threads');
    // a small young generation: the threads make little garbage, so keep each thread's heap small
    for (let t = 0; t < wanted; t++) workers.push(new Worker(script, { resourceLimits: { maxYoungGenerationSizeMb: 4 } }));
    for (const w of workers) {
      w.unref();
      // a thread's failure is handled by whoever is waiting on it; between jobs it must not throw here,
      // and a thread that is gone is not given work
      w.on('error', () => {});
      w.once('exit', () => {
        workers = workers.filter((x) => x !== w);
      });
    }
  }
  const close = (): void => {
    for (const w of workers) void w.terminate();
    workers = [];
  };
  /** the files' sizes (the scan's order), taken on a scan thread while this one scans */
  const measure = (w: Worker, paths: string[]): Promise<Float64Array> =>
    new Promise<Float64Array>((resolve, reject) => {
      const onMessage = (reply: WorkerReply): void => {
        if (!('sizes' in reply)) return;
        done();
        resolve(reply.sizes);
      };
      const onError = (err: unknown): void => {
        done();
        reject(err instanceof Error ? err : new Error(`depmod scan thread exited (${String(err)})`));
      };
      const done = (): void => {
        w.off('message', onMessage).off('error', onError).off('exit', onError);
      };
      w.on('message', onMessage).on('error', onError).on('exit', onError);
      w.postMessage({ sizesOf: paths } satisfies SizesRequest);
    });
  const batchBuffer = opts.batchBuffer ?? BATCH_BUFFER;
  // Files read ahead, on the first thread, while the caller walks the tree (the thread is up and has
  // nothing to do yet): ids -1 - k of their batches are positions in `ahead`. Replies are only taken
  // once the caller yields, in scan(), so that a few batches cover the walk.
  const ahead: string[] = [];
  let aheadSent = 0;
  let aheadInFlight = 0;
  const aheadReplies: DecodeReply[] = [];
  const onAheadReply = (reply: WorkerReply): void => {
    if (!('buffer' in reply)) return;
    aheadReplies.push(reply);
    aheadInFlight--;
  };
  const readAhead = (file: string): void => {
    const w = workers[0];
    if (w === undefined || aheadInFlight === AHEAD_BATCHES) return;
    ahead.push(file);
    if (ahead.length - aheadSent < BATCH) return;
    if (aheadSent === 0) w.on('message', onAheadReply);
    const ids: number[] = [];
    for (let k = aheadSent; k < ahead.length; k++) ids.push(-1 - k);
    const buffer = new ArrayBuffer(batchBuffer);
    w.postMessage({ ids, paths: ahead.slice(aheadSent), buffer } satisfies DecodeRequest, [buffer]);
    aheadSent = ahead.length;
    aheadInFlight++;
  };
  const scan = async (paths: string[], onResult?: ScanResultFn, store = new ScanStore()): Promise<ModuleScan[]> => {
    if (workers.length > 0 && paths.length >= 2 * BATCH) {
      try {
        return await scanOnThreads(paths, onResult, store);
      } catch {
        // a worker thread that cannot run (resource limits, a broken native binding): all of it here
      }
    }
    close();
    return scanInline(paths, opts, onResult, store);
  };
  const scanOnThreads = (paths: string[], onResult: ScanResultFn | undefined, store: ScanStore): Promise<ModuleScan[]> => {
    const results: ModuleScan[] = new Array(paths.length);
    // the files read ahead, by their index in `paths` (-1: not among them)
    const aheadIndex: number[] = [];
    if (aheadSent > 0) {
      const index = new Map<string, number>();
      paths.forEach((p, i) => index.set(p, i));
      for (let k = 0; k < aheadSent; k++) aheadIndex.push(index.get(ahead[k]) ?? -1);
      workers[0]?.off('message', onAheadReply);
    }
    const taken = new Uint8Array(paths.length);
    for (const i of aheadIndex) if (i >= 0) taken[i] = 1;
    // the queue: workers take from its front, this thread from its back; largest files first once
    // their sizes are known (until then in the given order)
    const order: number[] = [];
    for (let i = 0; i < paths.length; i++) if (taken[i] === 0) order.push(i);
    let sizes: ArrayLike<number> | undefined;
    let front = 0;
    let back = order.length;
    let done = 0;
    /** batch buffers that came back, to send again */
    const spare: ArrayBuffer[] = [];
    // batch buffers go round between the threads; one made for a module too large for them is freed
    // at once (let go, it would wait for a full collection)
    const keep = (b: ArrayBuffer): void => {
      // (none is needed any more once the queue is empty)
      if (b.byteLength === batchBuffer && front < back) spare.push(b);
      else void releaseBuffers([b]);
    };
    return new Promise<ModuleScan[]>((resolve, reject) => {
      let settled = false;
      const finish = (err?: unknown): void => {
        if (settled) return;
        settled = true;
        for (const off of listening) off();
        // freed now (they would wait for a full collection while depmod writes its files), and this
        // thread's own read buffers too; the promise settles once they are
        const freed = Promise.all([releaseBuffers(spare.splice(0)), releaseImageBuffers()]);
        close();
        void freed.then(() => (err !== undefined ? reject(err) : resolve(results)));
      };
      const complete = (i: number, scan: ModuleScan): void => {
        results[i] = scan;
        onResult?.(i, scan);
        done++;
        opts.onProgress?.(done, paths.length);
        if (done === paths.length) finish();
      };
      const sizesKnown = (known: ArrayLike<number>): void => {
        sizes = known;
        const rest = order.slice(front, back).sort((a, b) => known[b] - known[a] || a - b);
        for (let k = 0; k < rest.length; k++) order[front + k] = rest[k];
      };
      /**
       * a batch from the front (workers) or the back (this thread): up to `bytes` of compressed data,
       * fewer files as the queue runs out, so that no thread is left with work while the others wait
       */
      const takeBatch = (fromFront: boolean, bytes: number, first?: number): number[] => {
        const ids: number[] = [];
        let sum = 0;
        const most = first ?? Math.max(1, Math.min(BATCH, Math.ceil((back - front) / (4 * (workers.length + 1)))));
        while (front < back && ids.length < most && (ids.length === 0 || sum < bytes)) {
          const i = fromFront ? order[front++] : order[--back];
          ids.push(i);
          if (sizes !== undefined) sum += sizes[i];
        }
        return ids;
      };
      /** a file back at the front of the queue (one read ahead was never in it) */
      const requeue = (i: number): void => {
        if (front > 0) order[--front] = i;
        else {
          order.unshift(i);
          back++;
        }
      };
      /** two batches in flight per worker keep it busy while this thread scans */
      const inFlight = new Map<Worker, number>();
      /** the batch of one file whose image needs a buffer of `need` bytes (made here, freed once scanned) */
      let large: { id: number; need: number } | undefined;
      const feed = (w: Worker, first?: number): void => {
        while ((inFlight.get(w) ?? 0) < 2 && (front < back || large !== undefined)) {
          let ids: number[];
          let buffer: ArrayBuffer;
          if (large !== undefined) {
            ids = [large.id];
            buffer = new ArrayBuffer(large.need);
            large = undefined;
          } else {
            ids = takeBatch(true, WORKER_BATCH_BYTES, first);
            buffer = spare.pop() ?? new ArrayBuffer(batchBuffer);
          }
          w.postMessage({ ids, paths: ids.map((i) => paths[i]), buffer } satisfies DecodeRequest, [buffer]);
          inFlight.set(w, (inFlight.get(w) ?? 0) + 1);
        }
      };
      const scanHere = async (): Promise<void> => {
        // this thread takes the smallest files, yielding between its batches so that the workers'
        // images are scanned and the workers fed again without waiting
        while (front < back && !settled) {
          for (const i of takeBatch(false, OWN_BATCH_BYTES)) complete(i, scanFile(paths[i], store));
          await new Promise<void>((r) => setImmediate(r));
        }
      };
      const listening: (() => void)[] = [];
      const early = aheadReplies.splice(0);
      let takeEarly: ((reply: WorkerReply) => void) | undefined;
      for (const w of workers) {
        w.ref();
        // the first thread's batches read ahead: those still out, and those whose replies wait here
        inFlight.set(w, w === workers[0] ? aheadInFlight + early.length : 0);
        const onMessage = (reply: WorkerReply): void => {
          // the sizes are measure()'s to take
          if (!('buffer' in reply)) return;
          inFlight.set(w, inFlight.get(w)! - 1);
          // a batch read ahead names its files by position in `ahead`
          const ids = reply.ids.map((id) => (id < 0 ? aheadIndex[-1 - id] : id));
          // the files the batch left for later go back to the front of the queue; a file too large for
          // a batch buffer is sent again alone, with a buffer of its size
          const first = reply.done === 0 && reply.need > 0 && large === undefined && ids[0] >= 0 ? 1 : reply.done;
          if (first === 1 && reply.done === 0) large = { id: ids[0], need: reply.need };
          for (let k = ids.length - 1; k >= first; k--) if (ids[k] >= 0) requeue(ids[k]);
          feed(w);
          const images = Buffer.from(reply.buffer);
          for (let k = 0; k < reply.done; k++) {
            const i = ids[k];
            if (i < 0) continue;
            const at = reply.at[k];
            const length = reply.length[k];
            complete(i, length < 0 ? failedScan(at) : scanModuleImage(images.subarray(at, at + length), paths[i], store));
          }
          keep(reply.buffer);
        };
        const onError = (err: Error): void => finish(err);
        const onExit = (code: number): void => {
          if (done < paths.length) finish(new Error(`depmod scan thread exited (${code}) before the scan was complete`));
        };
        w.on('message', onMessage).on('error', onError).on('exit', onExit);
        listening.push(() => w.off('message', onMessage).off('error', onError).off('exit', onExit));
        takeEarly ??= onMessage;
      }
      // a first batch for each thread as soon as it is up, the replies read ahead, then the sizes from
      // the first thread
      for (const w of workers) feed(w, 4);
      for (const reply of early) takeEarly!(reply);
      measure(workers[0], paths).then(
        (known) => {
          if (!settled) sizesKnown(known);
        },
        // the thread failed: everything is read again on this thread
        (err) => finish(err),
      );
      scanHere().catch((err) => finish(err));
    });
  };
  return { scan, readAhead, close };
}

/** One-shot scan of `paths` (starts and stops its own threads). */
export async function scanModules(paths: string[], opts: ScanOptions = {}, onResult?: ScanResultFn): Promise<ModuleScan[]> {
  return startScanPool(opts).scan(paths, onResult);
}
