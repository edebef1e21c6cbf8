// Reads the modules of a depmod run on worker threads (one per core), a batch at a time so that memory
// stays bounded by what a few modules need. Results come back in the order of the input paths.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ModuleScan } from './module-scan';
import type { ScanReply, ScanRequest } from './scan-worker';

export interface ScanOptions {
  /** worker threads; 0 scans on the calling thread. Default: available parallelism (at most 8). */
  threads?: number;
  /** called as modules complete */
  onProgress?: (done: number, total: number) => void;
}

const BATCH = 24;

/** The compiled worker script (dist/depmod/scan-worker.js), also when this file runs from sources. */
function workerScript(): string | undefined {
  const here = path.join(__dirname, 'scan-worker.js');
  if (fs.existsSync(here)) return here;
  const built = path.resolve(__dirname, '../../dist/depmod/scan-worker.js');
  if (fs.existsSync(built)) return built;
  return undefined;
}

function scanInline(paths: string[], opts: ScanOptions): ModuleScan[] {
  const { scanModuleFile } = require('./scan-worker') as typeof import('./scan-worker');
  const out: ModuleScan[] = [];
  for (let i = 0; i < paths.length; i++) {
    out.push(scanModuleFile(paths[i]));
    opts.onProgress?.(i + 1, paths.length);
  }
  return out;
}

export async function scanModules(paths: string[], opts: ScanOptions = {}): Promise<ModuleScan[]> {
  const wanted = opts.threads ?? Math.min(8, os.availableParallelism());
  const script = wanted > 0 ? workerScript() : undefined;
  const nthreads = Math.min(wanted, Math.ceil(paths.length / BATCH));
  if (script === undefined || nthreads <= 0 || paths.length < 2 * BATCH) return scanInline(paths, opts);
  const { Worker } = require('node:worker_threads') as typeof import('node:worker_threads');
  const results: ModuleScan[] = new Array(paths.length);
  let next = 0;
  let done = 0;
  return new Promise<ModuleScan[]>((resolve, reject) => {
    const workers: import('node:worker_threads').Worker[] = [];
    let failed = false;
    const finish = (err?: unknown): void => {
      for (const w of workers) void w.terminate();
      if (err !== undefined) reject(err);
      else resolve(results);
    };
    const feed = (w: import('node:worker_threads').Worker): boolean => {
      if (next >= paths.length) return false;
      const ids: number[] = [];
      const batch: string[] = [];
      for (; next < paths.length && ids.length < BATCH; next++) {
        ids.push(next);
        batch.push(paths[next]);
      }
      w.postMessage({ ids, paths: batch } satisfies ScanRequest);
      return true;
    };
    for (let t = 0; t < nthreads; t++) {
      const w = new Worker(script, { resourceLimits: { maxYoungGenerationSizeMb: 4 } });
      workers.push(w);
      w.on('message', (reply: ScanReply) => {
        for (let k = 0; k < reply.ids.length; k++) results[reply.ids[k]] = reply.scans[k];
        done += reply.ids.length;
        opts.onProgress?.(done, paths.length);
        if (done === paths.length) finish();
        else feed(w);
      });
      w.on('error', (err) => {
        if (failed) return;
        failed = true;
        finish(err);
      });
      // two batches in flight per worker keep it busy while the main thread collects results
      feed(w);
      feed(w);
    }
  });
}
