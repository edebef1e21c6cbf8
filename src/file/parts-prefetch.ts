// modinfo of many modules: the parts modinfo reads of each (modinfo-parts.ts) read ahead on libuv's
// thread pool, a batch of files a request (batch-read.ts readModinfoParts), while the caller shows the
// previous ones. Read here one by one, their system calls were a fifth of modinfo's main thread on the
// cloud tree; a request a file cost the caller more than it saved, in wake-ups of the pool and per-file
// bookkeeping (docs/decisions.md, issue 14). A compressed module is decompressed on the pool, into the
// job's own buffers, and only its parts come back (~4 KiB, where handing over whole images took a
// buffer per file in flight). A file the batch did not pack is left to the caller's own read, so that
// every message and verdict is the usual path's.
import { availableParallelism } from 'node:os';
import { openBatchReader, type BatchReader } from './batch-read';
import { decodesOffThread } from './read-decode';
import { moduleFileFromParts, type ModuleFile, type OpenModuleOptions } from './module-file';
import { PackedParts } from './modinfo-parts';
import { fail, outcome, settle, type PendingResult } from './pending-result';

/** how batches are read: by how many pool jobs, how many files a batch, how many batches at once */
interface Pace {
  jobs: number;
  batch: number;
  batches: number;
}
/**
 * Uncompressed files take the pool a few microseconds each: one job keeps ahead; a wake-up of the pool
 * a batch of 32 (16 or 8 were no faster in alternating runs); two buffers, the batch being shown and
 * the next one, which the pool reads ~5x faster than it is shown.
 */
const PLAIN: Pace = { jobs: 1, batch: 32, batches: 2 };
/**
 * Compressed files take 0.1 ms (zstd) to 1 ms (xz) each, more than showing them: a job per core (up to
 * the pool's threads) decompresses side by side, in small batches so that the first comes soon and a
 * large module holds up few others, several ahead so that no job waits for the caller. On 2 cores, 3
 * jobs were slower, and batches of 4 or 16 no faster (docs/decisions.md, issue 14).
 */
function decodedPace(): Pace {
  const jobs = Math.max(1, Math.min(poolThreads(), availableParallelism()));
  return { jobs, batch: 8, batches: 2 * jobs + 2 };
}

/** libuv's thread pool size (bin/kmodts.js sets it for modinfo; libuv's default is 4) */
function poolThreads(): number {
  const n = Number(process.env.UV_THREADPOOL_SIZE);
  return Number.isInteger(n) && n >= 1 ? n : 4;
}

/**
 * a batch's buffer: on Debian's trees a file's parts are ~4 KiB (99% under 8.5 KiB), so 32 fit with
 * room; one that does not fit is read by the caller. Pages count once touched: ~160 KiB a buffer.
 */
const BATCH_BYTES = 256 << 10;

/** a batch's request: its buffer, and its parts once in (null: the caller reads its files itself) */
interface Batch extends PendingResult<PackedParts | null> {
  buffer: Buffer;
  /** passed by the caller while in flight: its buffer comes back when it is done */
  dropped?: boolean;
}

export class PartsPrefetcher {
  private readonly free: Buffer[] = [];
  /** the batches asked for and not yet passed, by number (batch n: files n * pace.batch onwards) */
  private readonly batches = new Map<number, Batch>();
  /** the next batch to ask for, and the batch of the last file taken */
  private next = 0;
  private taken = -1;
  private closed = false;

  private constructor(private readonly files: readonly string[], private readonly reader: BatchReader, private readonly pace: Pace) {
    for (let i = 0; i < pace.batches; i++) this.free.push(Buffer.allocUnsafeSlow(BATCH_BYTES));
    this.request();
  }

  /**
   * Starts reading the parts of `files` (modules, in the order they will be taken; `compressed`: most
   * of them are). Undefined where the pool cannot read them (no addon, or one without the batch read,
   * or for compressed files one that does not decompress them): the caller reads them another way.
   */
  static start(files: readonly string[], compressed: boolean): PartsPrefetcher | undefined {
    if (!decodesOffThread()) return undefined;
    const pace = compressed ? decodedPace() : PLAIN;
    const reader = openBatchReader(pace.jobs);
    if (reader.modinfoParts && (reader.modinfoPartsDecode || !compressed)) return new PartsPrefetcher(files, reader, pace);
    reader.close();
    return undefined;
  }

  /** asks for the next batches while buffers are free */
  private request(): void {
    while (!this.closed && this.next * this.pace.batch < this.files.length && this.free.length > 0) this.submit(this.next++, this.free.pop()!);
  }

  private submit(n: number, buffer: Buffer): void {
    const batch: Batch = { buffer };
    const size = this.pace.batch;
    const count = Math.min(size, this.files.length - n * size);
    const over = (): void => {
      if (batch.dropped) this.free.push(batch.buffer);
    };
    this.reader.readModinfoParts(
      this.files.slice(n * size, n * size + count),
      buffer,
      (packed) => {
        settle(batch, packed === undefined ? null : new PackedParts(packed, count));
        over();
      },
      (err) => {
        fail(batch, err);
        over();
      },
    );
    this.batches.set(n, batch);
  }

  /** the batches before `n`, passed: their buffers back (once their requests are done) */
  private pass(n: number): void {
    for (const [k, batch] of this.batches) {
      if (k >= n) continue;
      this.batches.delete(k);
      if (batch.result !== undefined || batch.failure !== undefined) this.free.push(batch.buffer);
      else batch.dropped = true;
    }
  }

  /**
   * The module file of files[index], of the parts modinfo reads, or undefined when the caller should
   * open it itself: at once where its batch is in (most files), else a promise of it. Indexes are taken
   * in increasing order, any skipped; the file's bytes are valid until the next take().
   */
  take(index: number, opts: OpenModuleOptions): ModuleFile | undefined | Promise<ModuleFile | undefined> {
    if (this.closed || index < 0 || index >= this.files.length) return undefined;
    const n = Math.floor(index / this.pace.batch);
    if (n !== this.taken) {
      this.pass(n);
      this.taken = n;
    }
    // a take beyond the batches asked for skips those between
    if (n >= this.next) this.next = n;
    this.request();
    const batch = this.batches.get(n);
    if (batch === undefined) return undefined;
    const parts = outcome(batch);
    // (no promise where the batch is in, as for most files: no turn of the microtask queue for them)
    return parts instanceof Promise ? parts.then((p) => this.fileOf(index, p, opts)) : this.fileOf(index, parts, opts);
  }

  private fileOf(index: number, parts: PackedParts | null, opts: OpenModuleOptions): ModuleFile | undefined {
    if (parts === null) return undefined;
    const file = this.files[index];
    const placed = parts.place(index % this.pace.batch, file);
    return placed && moduleFileFromParts(file, placed, opts);
  }

  /** no more files: requests in flight finish on the thread pool, their results are dropped */
  close(): void {
    this.closed = true;
    this.reader.close();
  }
}
