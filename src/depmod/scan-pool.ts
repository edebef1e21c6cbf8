// Reads the modules of a depmod run on worker threads (one per core) and on the calling thread, a batch
// at a time so that memory stays bounded by what a few modules need. A batch's scans travel as one
// transferred buffer (module-scan.ts ScanBatchWriter). Results come back in the order of the input
// paths. The threads are started early (startScanPool) so that their start-up overlaps depmod's
// directory walk.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Worker } from 'node:worker_threads';
import { readScanBatch, type ModuleScan } from './module-scan';
import type { SizesRequest, WorkerReply, WorkerRequest } from './scan-worker';

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
}

const BATCH = 16;
/** compressed bytes per batch (a batch holds at least one file) */
const BATCH_BYTES = 256 << 10;

/** The compiled worker script (dist/depmod/scan-worker.js), also when this file runs from sources. */
function workerScript(): string | undefined {
  const here = path.join(__dirname, 'scan-worker.js');
  if (fs.existsSync(here)) return here;
  const built = path.resolve(__dirname, '../../dist/depmod/scan-worker.js');
  if (fs.existsSync(built)) return built;
  return undefined;
}

/** The scan on the calling thread (also the fallback when a worker thread fails). */
export function scanInline(paths: string[], opts: ScanOptions = {}, onResult?: ScanResultFn): ModuleScan[] {
  const { scanFiles } = require('./scan-worker') as typeof import('./scan-worker');
  const out: ModuleScan[] = [];
  for (let i = 0; i < paths.length; i++) {
    const scan = readScanBatch(scanFiles([paths[i]]))[0];
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
   * The scans in the order of the paths; onResult sees each as it comes in. A thread that fails is
   * replaced by this one (everything is read again here).
   */
  scan(paths: string[], onResult?: ScanResultFn): Promise<ModuleScan[]>;
  close(): void;
}

export function startScanPool(opts: ScanOptions = {}): ScanPool {
  const wanted = opts.threads ?? Math.min(7, os.availableParallelism() - 1);
  const script = wanted > 0 ? (opts.workerScript ?? workerScript()) : undefined;
  let workers: Worker[] = [];
  if (script !== undefined) {
    const { Worker } = require('node:worker_threads') as typeof import('node:worker_threads');
    // a small young generation: the scan's garbage is short-lived, so keep each thread's heap small
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
      const onError = (err: Error): void => {
        done();
        reject(err);
      };
      const done = (): void => {
        w.off('message', onMessage).off('error', onError).off('exit', onError);
      };
      w.on('message', onMessage).on('error', onError).on('exit', onError);
      w.postMessage({ sizesOf: paths } satisfies SizesRequest);
    });
  const scan = async (paths: string[], onResult?: ScanResultFn): Promise<ModuleScan[]> => {
    if (workers.length > 0 && paths.length >= 2 * BATCH) {
      try {
        return await scanOnThreads(paths, onResult);
      } catch {
        // a worker thread that cannot run (resource limits, a broken native binding): all of it here
      }
    }
    close();
    return scanInline(paths, opts, onResult);
  };
  const scanOnThreads = (paths: string[], onResult: ScanResultFn | undefined): Promise<ModuleScan[]> => {
    const results: ModuleScan[] = new Array(paths.length);
    // largest files first, in batches of about the same compressed size, so that the threads finish
    // together; until the sizes are known this thread takes batches in the given order
    const order = paths.map((_, i) => i);
    let sizes: ArrayLike<number> | undefined;
    let next = 0;
    let done = 0;
    return new Promise<ModuleScan[]>((resolve, reject) => {
      let settled = false;
      const finish = (err?: unknown): void => {
        if (settled) return;
        settled = true;
        for (const off of listening) off();
        close();
        if (err !== undefined) reject(err);
        else resolve(results);
      };
      const sizesKnown = (known: ArrayLike<number>): void => {
        sizes = known;
        const rest = order.slice(next).sort((a, b) => known[b] - known[a] || a - b);
        for (let k = 0; k < rest.length; k++) order[next + k] = rest[k];
        // two batches in flight per thread keep it busy while this thread scans and collects results
        for (const w of workers) feed(w);
      };
      const takeBatch = (first = 1): number[] => {
        const ids: number[] = [];
        let bytes = 0;
        // smaller batches as the queue runs out, so that no thread is left with work while others wait;
        // until the sizes are in, small ones, so that this thread hands the workers theirs at once
        const most = sizes === undefined ? first : Math.min(BATCH, Math.ceil((paths.length - next) / (4 * (workers.length + 1))));
        for (; next < paths.length && ids.length < most && bytes < BATCH_BYTES; next++) {
          const i = order[next];
          ids.push(i);
          if (sizes !== undefined) bytes += sizes[i];
        }
        return ids;
      };
      const feed = (w: Worker, first?: number): void => {
        if (next >= paths.length) return;
        const ids = takeBatch(first);
        w.postMessage({ ids, paths: ids.map((i) => paths[i]) } satisfies WorkerRequest);
      };
      const scanHere = async (): Promise<void> => {
        // this thread takes batches from the same queue, yielding between them so that the workers'
        // replies are collected and they are fed again without waiting
        const { scanFiles } = require('./scan-worker') as typeof import('./scan-worker');
        while (next < paths.length && !settled) {
          const ids = takeBatch();
          const scans = readScanBatch(scanFiles(ids.map((i) => paths[i])));
          for (let k = 0; k < ids.length; k++) results[ids[k]] = scans[k];
          for (const i of ids) onResult?.(i, results[i]);
          done += ids.length;
          opts.onProgress?.(done, paths.length);
          if (done === paths.length) finish();
          await new Promise<void>((r) => setImmediate(r));
        }
      };
      const listening: (() => void)[] = [];
      for (const w of workers) {
        w.ref();
        const onMessage = (reply: WorkerReply): void => {
          // the sizes are measure()'s to take
          if (!('batch' in reply)) return;
          const scans = readScanBatch(reply.batch);
          for (let k = 0; k < reply.ids.length; k++) {
            results[reply.ids[k]] = scans[k];
            onResult?.(reply.ids[k], scans[k]);
          }
          done += reply.ids.length;
          opts.onProgress?.(done, paths.length);
          if (done === paths.length) finish();
          else feed(w);
        };
        const onError = (err: Error): void => finish(err);
        const onExit = (code: number): void => {
          if (done < paths.length) finish(new Error(`depmod scan thread exited (${code}) before the scan was complete`));
        };
        w.on('message', onMessage).on('error', onError).on('exit', onExit);
        listening.push(() => w.off('message', onMessage).off('error', onError).off('exit', onExit));
      }
      // a first batch for each thread as soon as it is up, then the sizes from the first
      for (const w of workers) feed(w, 4);
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
  return { scan, close };
}

/** One-shot scan of `paths` (starts and stops its own threads). */
export async function scanModules(paths: string[], opts: ScanOptions = {}, onResult?: ScanResultFn): Promise<ModuleScan[]> {
  return startScanPool(opts).scan(paths, onResult);
}
