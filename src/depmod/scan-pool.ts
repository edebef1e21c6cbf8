// Reads the modules of a depmod run. With the addon's decoder, on libuv's thread pool (pool-scan.ts).
// Without it, worker threads (one per core besides this one) read and
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
import { decodesOffThread } from '../file/read-decode';
import { startThreadPoolScan } from './pool-scan';
import type { DecodeReply, DecodeRequest, SizesRequest, WorkerReply } from './decode-worker';

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
  /**
   * who reads and decompresses: 'auto', libuv's thread pool when the addon's decoder is there (then
   * `threads` + 1 files are in flight, by default as many as cores + 1), else worker threads;
   * 'workers', worker threads always (tests of that path)
   */
  reader?: 'auto' | 'workers';
  /**
   * on libuv's thread pool, whether modules are scanned there too (native/module_scan.c) where the
   * addon can; false sends every image back to be scanned on the calling thread (tests compare the two)
   */
  scanOnPool?: boolean;
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

/**
 * called with each module's scan as it comes in (in no particular order), by its index in the paths;
 * with its file's stat key as the thread that read it took it, before reading (stat-keys.ts' words,
 * undefined when it had none), where the pool takes them (statKeysFromReads)
 */
export type ScanResultFn = (index: number, scan: ModuleScan, statKey?: Uint32Array) => void;

export interface ScanPool {
  /**
   * The scans in the order of the paths, their numbers kept in `store` (for the caller to release);
   * onResult sees each as it comes in. A thread that fails is replaced by this one (everything is
   * read again here).
   */
  scan(paths: string[], onResult?: ScanResultFn, store?: ScanStore): Promise<ModuleScan[]>;
  /**
   * A file that will probably be among scan()'s paths, found before scan() is called (depmod's walk):
   * the first of them are read and decompressed ahead, while the caller goes on. `beforeRead` runs
   * only for a file taken to be read ahead, before its read starts.
   */
  readAhead(path: string, beforeRead?: () => void): void;
  /** does scan() give each file's stat key as its reading thread took it (ScanResultFn) */
  readonly statKeysFromReads: boolean;
  close(): void;
}

/** The scan threads: started at once, each dropped from the list when it exits. */
class Threads {
  list: Worker[] = [];

  constructor(wanted: number, script: string | undefined) {
    if (script === undefined) return;
    const { Worker } = require('node:worker_threads') as typeof import('node:worker_threads');
    // a small young generation: the threads make little garbage, so keep each thread's heap small
    for (let t = 0; t < wanted; t++) this.list.push(new Worker(script, { resourceLimits: { maxYoungGenerationSizeMb: 4 } }));
    for (const w of this.list) {
      w.unref();
      // a thread's failure is handled by whoever is waiting on it; between jobs it must not throw here,
      // and a thread that is gone is not given work
      w.on('error', () => {});
      w.once('exit', () => {
        this.list = this.list.filter((x) => x !== w);
      });
    }
  }

  close(): void {
    for (const w of this.list) void w.terminate();
    this.list = [];
  }
}

/** the files' sizes (the scan's order), taken on a scan thread while this one scans */
function measure(w: Worker, paths: string[]): Promise<Float64Array> {
  return new Promise<Float64Array>((resolve, reject) => {
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
}

/**
 * Files read ahead, on the first thread, while the caller walks the tree (the thread is up and has
 * nothing to do yet): ids -1 - k of their batches are positions in `files`. Replies are only taken
 * once the caller yields, in scan(), so that a few batches cover the walk.
 */
class ReadAhead {
  readonly files: string[] = [];
  sent = 0;
  inFlight = 0;
  readonly replies: DecodeReply[] = [];
  private readonly onReply = (reply: WorkerReply): void => {
    if (!('buffer' in reply)) return;
    this.replies.push(reply);
    this.inFlight--;
  };

  constructor(private readonly threads: Threads, private readonly batchBuffer: number) {}

  add(file: string, beforeRead?: () => void): void {
    const w = this.threads.list[0];
    if (w === undefined || this.inFlight === AHEAD_BATCHES) return;
    beforeRead?.();
    this.files.push(file);
    if (this.files.length - this.sent < BATCH) return;
    if (this.sent === 0) w.on('message', this.onReply);
    const ids: number[] = [];
    for (let k = this.sent; k < this.files.length; k++) ids.push(-1 - k);
    const buffer = new ArrayBuffer(this.batchBuffer);
    w.postMessage({ ids, paths: this.files.slice(this.sent), buffer } satisfies DecodeRequest, [buffer]);
    this.sent = this.files.length;
    this.inFlight++;
  }

  /** the files read ahead, by their index in `paths` (-1: not among them); replies are the scan's from now */
  indexIn(paths: string[]): number[] {
    const aheadIndex: number[] = [];
    if (this.sent > 0) {
      const index = new Map<string, number>();
      paths.forEach((p, i) => index.set(p, i));
      for (let k = 0; k < this.sent; k++) aheadIndex.push(index.get(this.files[k]) ?? -1);
      this.threads.list[0]?.off('message', this.onReply);
    }
    return aheadIndex;
  }
}

export function startScanPool(opts: ScanOptions = {}): ScanPool {
  const wanted = opts.threads ?? Math.min(7, os.availableParallelism() - 1);
  if ((opts.reader ?? 'auto') === 'auto' && opts.workerScript === undefined && wanted > 0 && decodesOffThread()) return startThreadPoolScan(opts);
  const threads = new Threads(wanted, wanted > 0 ? (opts.workerScript ?? workerScript()) : undefined);
  const batchBuffer = opts.batchBuffer ?? BATCH_BUFFER;
  const ahead = new ReadAhead(threads, batchBuffer);
  const scan = async (paths: string[], onResult?: ScanResultFn, store = new ScanStore()): Promise<ModuleScan[]> => {
    if (threads.list.length > 0 && paths.length >= 2 * BATCH) {
      try {
        return await new ThreadedScan(paths, onResult, store, threads, ahead, batchBuffer, opts).run();
      } catch {
        // a worker thread that cannot run (resource limits, a broken native binding): all of it here
      }
    }
    threads.close();
    return scanInline(paths, opts, onResult, store);
  };
  return { scan, readAhead: (file, beforeRead) => ahead.add(file, beforeRead), statKeysFromReads: false, close: () => threads.close() };
}

/**
 * One scan on the threads. The queue of files: workers take from its front, this thread from its back;
 * largest files first once their sizes are known (until then in the given order).
 */
class ThreadedScan {
  private readonly results: ModuleScan[];
  /** the files read ahead, by their index in `paths` (-1: not among them) */
  private readonly aheadIndex: number[];
  private readonly order: number[] = [];
  private sizes: ArrayLike<number> | undefined;
  private front = 0;
  private back: number;
  private done = 0;
  /** batch buffers that came back, to send again */
  private readonly spare: ArrayBuffer[] = [];
  /** two batches in flight per worker keep it busy while this thread scans */
  private readonly inFlight = new Map<Worker, number>();
  /** the batch of one file whose image needs a buffer of `need` bytes (made here, freed once scanned) */
  private large: { id: number; need: number } | undefined;
  private readonly listening: (() => void)[] = [];
  private settled = false;
  private resolve: (results: ModuleScan[]) => void = () => {};
  private reject: (err: unknown) => void = () => {};

  constructor(
    private readonly paths: string[],
    private readonly onResult: ScanResultFn | undefined,
    private readonly store: ScanStore,
    private readonly threads: Threads,
    private readonly ahead: ReadAhead,
    private readonly batchBuffer: number,
    private readonly opts: ScanOptions,
  ) {
    this.results = new Array(paths.length);
    this.aheadIndex = ahead.indexIn(paths);
    const taken = new Uint8Array(paths.length);
    for (const i of this.aheadIndex) if (i >= 0) taken[i] = 1;
    for (let i = 0; i < paths.length; i++) if (taken[i] === 0) this.order.push(i);
    this.back = this.order.length;
  }

  run(): Promise<ModuleScan[]> {
    return new Promise<ModuleScan[]>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
      const workers = this.threads.list;
      const early = this.ahead.replies.splice(0);
      let takeEarly: ((reply: WorkerReply) => void) | undefined;
      for (const w of workers) {
        w.ref();
        // the first thread's batches read ahead: those still out, and those whose replies wait here
        this.inFlight.set(w, w === workers[0] ? this.ahead.inFlight + early.length : 0);
        const onMessage = (reply: WorkerReply): void => this.onReply(w, reply);
        const onError = (err: Error): void => this.finish(err);
        const onExit = (code: number): void => {
          if (this.done < this.paths.length) this.finish(new Error(`depmod scan thread exited (${code}) before the scan was complete`));
        };
        w.on('message', onMessage).on('error', onError).on('exit', onExit);
        this.listening.push(() => w.off('message', onMessage).off('error', onError).off('exit', onExit));
        takeEarly ??= onMessage;
      }
      // a first batch for each thread as soon as it is up, the replies read ahead, then the sizes from
      // the first thread
      for (const w of workers) this.feed(w, 4);
      for (const reply of early) takeEarly!(reply);
      measure(workers[0], this.paths).then(
        (known) => {
          if (!this.settled) this.sizesKnown(known);
        },
        // the thread failed: everything is read again on this thread
        (err) => this.finish(err),
      );
      this.scanHere().catch((err) => this.finish(err));
    });
  }

  private finish(err?: unknown): void {
    if (this.settled) return;
    this.settled = true;
    for (const off of this.listening) off();
    // freed now (they would wait for a full collection while depmod writes its files), and this
    // thread's own read buffers too; the promise settles once they are
    const freed = Promise.all([releaseBuffers(this.spare.splice(0)), releaseImageBuffers()]);
    this.threads.close();
    void freed.then(() => (err !== undefined ? this.reject(err) : this.resolve(this.results)));
  }

  private complete(i: number, scan: ModuleScan): void {
    this.results[i] = scan;
    this.onResult?.(i, scan);
    this.done++;
    this.opts.onProgress?.(this.done, this.paths.length);
    if (this.done === this.paths.length) this.finish();
  }

  // batch buffers go round between the threads; one made for a module too large for them is freed
  // at once (let go, it would wait for a full collection)
  private keep(b: ArrayBuffer): void {
    // (none is needed any more once the queue is empty)
    if (b.byteLength === this.batchBuffer && this.front < this.back) this.spare.push(b);
    else void releaseBuffers([b]);
  }

  private sizesKnown(known: ArrayLike<number>): void {
    this.sizes = known;
    const rest = this.order.slice(this.front, this.back).sort((a, b) => known[b] - known[a] || a - b);
    for (let k = 0; k < rest.length; k++) this.order[this.front + k] = rest[k];
  }

  /**
   * a batch from the front (workers) or the back (this thread): up to `bytes` of compressed data,
   * fewer files as the queue runs out, so that no thread is left with work while the others wait
   */
  private takeBatch(fromFront: boolean, bytes: number, first?: number): number[] {
    const ids: number[] = [];
    let sum = 0;
    const most = first ?? Math.max(1, Math.min(BATCH, Math.ceil((this.back - this.front) / (4 * (this.threads.list.length + 1)))));
    while (this.front < this.back && ids.length < most && (ids.length === 0 || sum < bytes)) {
      const i = fromFront ? this.order[this.front++] : this.order[--this.back];
      ids.push(i);
      if (this.sizes !== undefined) sum += this.sizes[i];
    }
    return ids;
  }

  /** a file back at the front of the queue (one read ahead was never in it) */
  private requeue(i: number): void {
    if (this.front > 0) this.order[--this.front] = i;
    else {
      this.order.unshift(i);
      this.back++;
    }
  }

  private feed(w: Worker, first?: number): void {
    while ((this.inFlight.get(w) ?? 0) < 2 && (this.front < this.back || this.large !== undefined)) {
      let ids: number[];
      let buffer: ArrayBuffer;
      if (this.large !== undefined) {
        ids = [this.large.id];
        buffer = new ArrayBuffer(this.large.need);
        this.large = undefined;
      } else {
        ids = this.takeBatch(true, WORKER_BATCH_BYTES, first);
        buffer = this.spare.pop() ?? new ArrayBuffer(this.batchBuffer);
      }
      w.postMessage({ ids, paths: ids.map((i) => this.paths[i]), buffer } satisfies DecodeRequest, [buffer]);
      this.inFlight.set(w, (this.inFlight.get(w) ?? 0) + 1);
    }
  }

  /** a worker's batch of images: scanned here, the worker fed again first */
  private onReply(w: Worker, reply: WorkerReply): void {
    // the sizes are measure()'s to take
    if (!('buffer' in reply)) return;
    this.inFlight.set(w, this.inFlight.get(w)! - 1);
    // a batch read ahead names its files by position in the read-ahead list
    const ids = reply.ids.map((id) => (id < 0 ? this.aheadIndex[-1 - id] : id));
    // the files the batch left for later go back to the front of the queue; a file too large for
    // a batch buffer is sent again alone, with a buffer of its size
    const first = reply.done === 0 && reply.need > 0 && this.large === undefined && ids[0] >= 0 ? 1 : reply.done;
    if (first === 1 && reply.done === 0) this.large = { id: ids[0], need: reply.need };
    for (let k = ids.length - 1; k >= first; k--) if (ids[k] >= 0) this.requeue(ids[k]);
    this.feed(w);
    const images = Buffer.from(reply.buffer);
    for (let k = 0; k < reply.done; k++) {
      const i = ids[k];
      if (i < 0) continue;
      const at = reply.at[k];
      const length = reply.length[k];
      this.complete(i, length < 0 ? failedScan(at) : scanModuleImage(images.subarray(at, at + length), this.paths[i], this.store));
    }
    this.keep(reply.buffer);
  }

  /**
   * this thread takes the smallest files, yielding between its batches so that the workers' images
   * are scanned and the workers fed again without waiting
   */
  private async scanHere(): Promise<void> {
    while (this.front < this.back && !this.settled) {
      for (const i of this.takeBatch(false, OWN_BATCH_BYTES)) this.complete(i, scanFile(this.paths[i], this.store));
      await new Promise<void>((r) => setImmediate(r));
    }
  }
}

/** One-shot scan of `paths` (starts and stops its own threads). */
export async function scanModules(paths: string[], opts: ScanOptions = {}, onResult?: ScanResultFn): Promise<ModuleScan[]> {
  return startScanPool(opts).scan(paths, onResult);
}
