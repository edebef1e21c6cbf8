// Reads the modules of a depmod run on worker threads (one per core), a batch at a time so that memory
// stays bounded by what a few modules need. Results come back in the order of the input paths. The
// threads are started early (startScanPool) so that their start-up overlaps depmod's directory walk.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Worker } from 'node:worker_threads';
import type { ModuleScan } from './module-scan';
import type { ScanReply, ScanRequest, SizesReply, SizesRequest } from './scan-worker';

export interface ScanOptions {
  /**
   * worker threads besides the calling thread, which scans too; 0 scans on the calling thread only.
   * Default: available parallelism - 1 (at most 7).
   */
  threads?: number;
  /** called as modules complete */
  onProgress?: (done: number, total: number) => void;
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
export function scanInline(paths: string[], opts: ScanOptions = {}): ModuleScan[] {
  const { scanModuleFile } = require('./scan-worker') as typeof import('./scan-worker');
  const out: ModuleScan[] = [];
  for (let i = 0; i < paths.length; i++) {
    out.push(scanModuleFile(paths[i]));
    opts.onProgress?.(i + 1, paths.length);
  }
  return out;
}

export interface ScanPool {
  /**
   * Asks a thread for the files' sizes (scan() orders by them), so that the stat calls run while the
   * caller sorts its modules; scan() waits for the answer, or stats itself without one.
   */
  measure(paths: string[]): void;
  scan(paths: string[]): Promise<ModuleScan[]>;
  close(): void;
}

/** file sizes by path, 0 for a file that cannot be stat'ed (the scan reports it) */
export function fileSizes(paths: string[]): Float64Array {
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

export function startScanPool(opts: ScanOptions = {}): ScanPool {
  const wanted = opts.threads ?? Math.min(7, os.availableParallelism() - 1);
  const script = wanted > 0 ? workerScript() : undefined;
  let workers: Worker[] = [];
  if (script !== undefined) {
    const { Worker } = require('node:worker_threads') as typeof import('node:worker_threads');
    // a small young generation: the scan's garbage is short-lived, so keep each thread's heap small
    for (let t = 0; t < wanted; t++) workers.push(new Worker(script, { resourceLimits: { maxYoungGenerationSizeMb: 4 } }));
    for (const w of workers) w.unref();
  }
  const close = (): void => {
    for (const w of workers) void w.terminate();
    workers = [];
  };
  let measured: Promise<Map<string, number>> | undefined;
  const measure = (paths: string[]): void => {
    const w = workers[0];
    if (w === undefined || paths.length < 2 * BATCH) return;
    measured = new Promise<Map<string, number>>((resolve, reject) => {
      const onMessage = (reply: ScanReply | SizesReply): void => {
        if (!('sizes' in reply)) return;
        done();
        resolve(new Map(paths.map((p, i) => [p, reply.sizes[i]])));
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
    measured.catch(() => {});
  };
  const scan = async (paths: string[]): Promise<ModuleScan[]> => {
    if (workers.length === 0 || paths.length < 2 * BATCH) {
      close();
      return scanInline(paths, opts);
    }
    const bySize = measured === undefined ? undefined : await measured.catch(() => null);
    if (bySize === null) {
      // the thread failed or ended: this thread does it all
      close();
      return scanInline(paths, opts);
    }
    const sizes = bySize === undefined ? fileSizes(paths) : paths.map((p) => bySize.get(p) ?? fileSizes([p])[0]);
    return scanOnThreads(paths, sizes);
  };
  const scanOnThreads = (paths: string[], sizes: ArrayLike<number>): Promise<ModuleScan[]> => {
    const results: ModuleScan[] = new Array(paths.length);
    // largest files first, in batches of about the same compressed size: the threads finish together
    const order = paths.map((_, i) => i).sort((a, b) => sizes[b] - sizes[a] || a - b);
    let next = 0;
    let done = 0;
    return new Promise<ModuleScan[]>((resolve, reject) => {
      let settled = false;
      const finish = (err?: unknown): void => {
        if (settled) return;
        settled = true;
        close();
        if (err !== undefined) reject(err);
        else resolve(results);
      };
      const takeBatch = (): number[] => {
        const ids: number[] = [];
        let bytes = 0;
        for (; next < paths.length && ids.length < BATCH && bytes < BATCH_BYTES; next++) {
          const i = order[next];
          ids.push(i);
          bytes += sizes[i];
        }
        return ids;
      };
      const feed = (w: Worker): void => {
        if (next >= paths.length) return;
        const ids = takeBatch();
        w.postMessage({ ids, paths: ids.map((i) => paths[i]) } satisfies ScanRequest);
      };
      const scanHere = async (): Promise<void> => {
        // this thread takes batches from the same queue, yielding between them so that the workers'
        // replies are collected and they are fed again without waiting
        const { scanModuleFile } = require('./scan-worker') as typeof import('./scan-worker');
        while (next < paths.length && !settled) {
          const ids = takeBatch();
          for (const i of ids) results[i] = scanModuleFile(paths[i]);
          done += ids.length;
          opts.onProgress?.(done, paths.length);
          if (done === paths.length) finish();
          await new Promise<void>((r) => setImmediate(r));
        }
      };
      for (const w of workers) {
        w.ref();
        w.on('message', (reply: ScanReply) => {
          for (let k = 0; k < reply.ids.length; k++) results[reply.ids[k]] = reply.scans[k];
          done += reply.ids.length;
          opts.onProgress?.(done, paths.length);
          if (done === paths.length) finish();
          else feed(w);
        });
        w.on('error', (err) => finish(err));
        w.on('exit', (code) => {
          if (done < paths.length) finish(new Error(`depmod scan thread exited (${code}) before the scan was complete`));
        });
        // two batches in flight per thread keep it busy while this thread scans and collects results
        feed(w);
        feed(w);
      }
      scanHere().catch((err) => finish(err));
    });
  };
  return { measure, scan, close };
}

/** One-shot scan of `paths` (starts and stops its own threads). */
export async function scanModules(paths: string[], opts: ScanOptions = {}): Promise<ModuleScan[]> {
  return startScanPool(opts).scan(paths);
}
