// Reading and decompressing many module files ahead, on worker threads, while the caller formats the
// previous ones: for `modinfo` over a whole tree, decompression is ~70% of the time (docs/decisions.md).
// Results come back in request order; anything the workers cannot do falls back to the caller's own
// synchronous openModuleFile, so messages and errors stay exactly those of the sequential path.
import * as path from 'node:path';
import type { Worker } from 'node:worker_threads';
import { DecompressError } from './decompress';
import { moduleFileFromBytes, type ModuleFile, type OpenModuleOptions } from './module-file';

interface Result {
  id: number;
  readFailed?: boolean;
  raw?: Uint8Array;
  image?: Uint8Array;
  error?: { compression: 'xz' | 'zstd' | 'gzip'; detail: string; fn: string; errno: number };
}

// images in flight: enough to keep the workers busy, few enough to bound memory
const WINDOW = 8;

function asBuffer(u: Uint8Array): Buffer {
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

export class ImagePrefetcher {
  private next = 0;
  private readonly pending = new Map<number, { resolve: (r: Result) => void; promise: Promise<Result> }>();
  private closed = false;

  private constructor(private readonly files: string[], private readonly workers: Worker[]) {
    for (const w of workers) {
      w.on('message', (r: Result) => this.pending.get(r.id)?.resolve(r));
      // a worker that dies leaves its files to the caller's sequential path
      const fail = (): void => {
        this.closed = true;
        for (const [id, p] of this.pending) p.resolve({ id, readFailed: true });
      };
      w.on('error', fail);
      w.on('exit', fail);
    }
    this.fill(0);
  }

  /** Starts `threads` workers for `files` (in the order they will be taken); undefined when workers cannot start. */
  static start(files: string[], threads: number): ImagePrefetcher | undefined {
    const script = path.join(__dirname, 'decompress-worker.js');
    try {
      const { Worker } = require('node:worker_threads') as typeof import('node:worker_threads');
      require('node:fs').accessSync(script);
      const workers = Array.from({ length: threads }, () => new Worker(script));
      return new ImagePrefetcher(files, workers);
    } catch {
      return undefined;
    }
  }

  private fill(upTo: number): void {
    while (!this.closed && this.next < this.files.length && this.next < upTo + WINDOW) {
      const id = this.next++;
      let resolve!: (r: Result) => void;
      const promise = new Promise<Result>((r) => (resolve = r));
      this.pending.set(id, { resolve, promise });
      this.workers[id % this.workers.length].postMessage({ id, path: this.files[id] });
    }
  }

  /**
   * The module file for files[index] (taken in order), or undefined when the caller should open it
   * itself (read failure, or an index out of order).
   */
  async take(index: number, opts: OpenModuleOptions): Promise<ModuleFile | undefined> {
    const p = this.pending.get(index);
    if (p === undefined) return undefined;
    const r = await p.promise;
    this.pending.delete(index);
    this.fill(index + 1);
    if (r.readFailed || r.raw === undefined) return undefined;
    const file = this.files[index];
    const raw = asBuffer(r.raw);
    if (r.error) return moduleFileFromBytes(file, raw, opts, { error: new DecompressError(file, r.error.compression, r.error.detail, r.error.fn, r.error.errno) });
    return moduleFileFromBytes(file, raw, opts, { image: r.image ? asBuffer(r.image) : raw });
  }

  close(): void {
    this.closed = true;
    for (const w of this.workers) {
      w.removeAllListeners('exit');
      void w.terminate();
    }
  }
}
