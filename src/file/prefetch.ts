// Module files read and decompressed ahead, on libuv's thread pool (batch-read.ts: the addon's
// reader, no worker isolate), into a few buffers reused from file to file, while the caller
// formats the previous one: `modinfo` over a whole tree spends most of its time decompressing.
// The caller takes the files in order (a large one may be read before its turn: requestLargeEarly);
// a file that cannot be read is left to the caller's own openModuleFile, so that messages and errors
// stay exactly those of the sequential path.
//
// Memory: a decoded image that does not fit the buffer it was given gets one of its own from the
// addon, freed only when V8 collects it, and the C heap keeps the pages: on the cloud tree that alone
// raised modinfo's peak RSS by ~25 MB (docs/decisions.md, issue 14). So every image goes into a buffer
// that fits it: files whose size (as stat gave it) is large go, one at a time, to a single buffer
// pair that grows to the largest module; the others share fixed buffers, ahead of the caller: most
// (the tiny files) many small ones, the rest a few of 1 MiB. A buffer's pages count once touched, up
// to the largest image it has received, so the window is deep only where the buffers are small.
import { openBatchReader, type BatchReader } from './batch-read';
import { decodesOffThread, type ReadDecoded } from './read-decode';
import { grownSize, moduleFileFromBytes, type ModuleFile, type OpenModuleOptions } from './module-file';
import { fail, outcome, settle, type PendingResult } from './pending-result';

type SlotKind = 'tiny' | 'small' | 'big';

/** one request's buffers: written by the thread pool until its result is in, read by the caller after */
interface Slot {
  image: Buffer;
  raw: Buffer;
  /** the big slot grows to fit; the tiny and small ones keep their size */
  kind: SlotKind;
}

/** a request: its slot, and its outcome once in */
interface Request extends PendingResult<ReadDecoded> {
  slot: Slot;
}

/**
 * Tiny files read ahead at once, besides the one the caller holds. 2 keep two cores busy in principle,
 * but then a pool thread that finishes a file often has nothing queued: it sleeps, and the caller
 * wakes it again for the next file (and sleeps itself when that file is not ready yet). 6 keep work
 * queued for the pool (the main thread blocks ~2x less often) where decoding is the slower side, as
 * liblzma is; where it is the faster (zstd, gzip), 12 keep the pool busy across the larger files
 * between them (the cloud tree as .ko.zst: 176 -> 168 ms, +0.4-0.6 MB of peak RSS, which as .ko.xz
 * buys nothing and would take that row's memory to its goal's edge; docs/decisions.md, issue 14).
 */
const DEFAULT_AHEAD = 6;
const FAST_DECODE_AHEAD = 12;

/** is decoding the slower side for these files: are most of them xz? */
function decodesSlowly(files: readonly string[]): boolean {
  let xz = 0;
  for (let i = 0; i < files.length; i++) if (files[i].endsWith('.xz')) xz++;
  return 2 * xz > files.length;
}

/** the default window (tiny files ahead): the deeper one unless decoding is the slower side */
function tinyAhead(slow: boolean): number {
  return slow ? DEFAULT_AHEAD : FAST_DECODE_AHEAD;
}

/** the default window for these files: the deeper one unless most of them are xz */
export function defaultAhead(files: readonly string[]): number {
  return tinyAhead(decodesSlowly(files));
}
/**
 * small files (and any file when sizes are unknown) read ahead at once: their buffers are larger. One
 * where decoding is the slower side (xz): the pool is busy with the tiny files anyway, and a second
 * small buffer took modinfo of every cloud .ko.xz over its memory goal on Node 26 (2.03-2.05x kmod's
 * peak; docs/decisions.md, issue 14)
 */
const SMALL_AHEAD = 2;
const SLOW_DECODE_SMALL_AHEAD = 1;
/**
 * Files up to this size are tiny: on Debian's trees (xz and zstd) 70% of the modules, which
 * decompress to at most 155 KiB (a ratio up to 16).
 */
const TINY_FILE = 12 << 10;
const TINY_IMAGE = 256 << 10;
/**
 * Files up to this size go to the small slots: on Debian's trees, modules compressed to at most 128
 * KiB decompress to less than 1 MiB (xz) or 0.6 MiB (zstd); 3% of the files are larger.
 */
const SMALL_FILE = 128 << 10;
const SMALL_IMAGE = 1 << 20;
/** (the addon reads into a buffer with a byte to spare, to see the end of the file) */
const TINY_RAW = TINY_FILE + 4096;
const SMALL_RAW = SMALL_FILE + 4096;
/**
 * How far beyond the window a large file is requested early: a few milliseconds of decoding against
 * ~0.1 ms of the caller's work on each tiny file
 */
const LARGE_LOOKAHEAD = 64;
/** the big slot grows to fit files up to this; the odd larger module gets a buffer of its own */
const BIG_LIMIT = 64 << 20;

/** libuv's thread pool size (bin/kmodts.js sets it for modinfo; libuv's default is 4) */
function poolThreads(): number {
  const n = Number(process.env.UV_THREADPOOL_SIZE);
  return Number.isInteger(n) && n >= 1 ? n : 4;
}

export class ImagePrefetcher {
  /** the free tiny and small slots; the big one when free */
  private readonly free: { tiny: Slot[]; small: Slot[] } = { tiny: [], small: [] };
  private bigSlot: Slot | undefined;
  private readonly inFlight = new Map<number, Request>();
  private readonly reader: BatchReader;
  /** the slot of the file the caller holds, free again at its next take() */
  private held: Slot | undefined;
  /** the next file to request, and the next one the caller has not taken or passed */
  private requested = 0;
  private taken = 0;
  private closed = false;
  /** the indexes of the large files, in order, and the first of them not yet passed by `requested` */
  private readonly largeFiles: number[] = [];
  private nextLarge = 0;

  private constructor(private readonly files: readonly string[], private readonly sizes: readonly number[] | undefined, ahead: number, smallAhead: number) {
    const slot = (kind: SlotKind, image: number, raw: number): Slot => ({ image: Buffer.allocUnsafeSlow(image), raw: Buffer.allocUnsafeSlow(raw), kind });
    // (no tiny slots without sizes: no file is known to be tiny)
    if (sizes !== undefined) for (let i = 0; i <= ahead; i++) this.free.tiny.push(slot('tiny', TINY_IMAGE, TINY_RAW));
    for (let i = 0; i <= Math.min(ahead, smallAhead); i++) this.free.small.push(slot('small', SMALL_IMAGE, SMALL_RAW));
    this.bigSlot = slot('big', SMALL_IMAGE, SMALL_RAW);
    for (let i = 0; i < files.length; i++) if (this.kindOf(i) === 'big') this.largeFiles.push(i);
    // a job per file in flight (2 jobs on 2 cores cost Node 24 ~10% here), but no more than the pool's
    // threads: a job beyond them would only wait in libuv's queue for one of them to end
    this.reader = openBatchReader(Math.min(ahead + 1, poolThreads()));
    this.request();
  }

  /**
   * Starts reading `files` (in the order they will be taken), up to `ahead` tiny files (default:
   * defaultAhead's) and 2 others (1 where most are xz) at a time beyond the one taken. `sizes` (bytes,
   * as stat gave them; optional) sorts the files by the buffers they need: tiny ones to many small
   * buffers, large ones to the one that grows.
   * Undefined where nothing decodes off this thread (no addon: the caller's sequential path is as fast).
   */
  static start(files: readonly string[], sizes?: readonly number[], ahead?: number): ImagePrefetcher | undefined {
    if (!decodesOffThread()) return undefined;
    const slow = decodesSlowly(files);
    return new ImagePrefetcher(files, sizes, Math.max(1, ahead ?? tinyAhead(slow)), slow ? SLOW_DECODE_SMALL_AHEAD : SMALL_AHEAD);
  }

  private kindOf(index: number): SlotKind {
    const size = this.sizes?.[index];
    if (size === undefined) return 'small';
    return size <= TINY_FILE ? 'tiny' : size <= SMALL_FILE ? 'small' : 'big';
  }

  /**
   * requests the next files, in order, as long as a slot of their kind is free (a large file already
   * requested early is passed over); then the next large file early, where the one big slot is free
   */
  private request(): void {
    while (!this.closed && this.requested < this.files.length) {
      const index = this.requested;
      if (this.inFlight.has(index)) {
        this.requested++;
        continue;
      }
      const kind = this.kindOf(index);
      let slot: Slot | undefined;
      if (kind === 'big') {
        slot = this.bigSlot;
        this.bigSlot = undefined;
      } else slot = this.free[kind].pop();
      if (slot === undefined) break;
      this.submit(index, slot);
      this.requested++;
    }
    this.requestLargeEarly();
  }

  /**
   * The next large file within LARGE_LOOKAHEAD files of the window, requested before its turn as soon
   * as the slot that grows is free: a large file takes the longest to decode, and in its turn the
   * caller waited for it while the other pool thread had nothing queued (the window of small files
   * stops at it). Its slot is the same one: no more memory.
   */
  private requestLargeEarly(): void {
    const large = this.largeFiles;
    while (this.nextLarge < large.length && large[this.nextLarge] < this.requested) this.nextLarge++;
    if (this.closed || this.bigSlot === undefined || this.nextLarge >= large.length) return;
    const index = large[this.nextLarge];
    if (index >= this.requested + LARGE_LOOKAHEAD || this.inFlight.has(index)) return;
    const slot = this.bigSlot;
    this.bigSlot = undefined;
    this.submit(index, slot);
  }

  private submit(index: number, slot: Slot): void {
    const req: Request = { slot };
    this.reader.read(
      this.files[index],
      slot,
      (r) => settle(req, r),
      (err) => fail(req, err),
    );
    this.inFlight.set(index, req);
  }

  private release(slot: Slot): void {
    if (slot.kind === 'big') this.bigSlot = slot;
    else this.free[slot.kind].push(slot);
  }

  /**
   * The module file for files[index], or undefined when the caller should open it itself (a read
   * failure, or an index already passed). Indexes are taken in increasing order, any skipped; the
   * file's buffers are reused once the next one is taken, so it must be finished with by then.
   */
  async take(index: number, opts: OpenModuleOptions): Promise<ModuleFile | undefined> {
    if (this.closed || index < this.taken || index >= this.files.length) return undefined;
    if (this.held !== undefined) this.release(this.held);
    this.held = undefined;
    // the files passed over: their requests must be over before their slots take new ones
    for (; this.taken < index; this.taken++) {
      const slot = await this.settle(this.taken);
      if (slot !== undefined) this.release(slot);
    }
    this.taken = index + 1;
    this.request();
    const pending = this.inFlight.get(index);
    this.held = await this.settle(index);
    if (pending === undefined) return undefined;
    const r = await outcome(pending);
    if ('readErrno' in r) return undefined;
    const file = this.files[index];
    if ('error' in r) return moduleFileFromBytes(file, r.raw, opts, { error: r.error });
    return moduleFileFromBytes(file, r.raw, opts, { image: r.image });
  }

  /** waits for files[index]'s request (when it was made); its slot, the big one grown to fit the file */
  private async settle(index: number): Promise<Slot | undefined> {
    const pending = this.inFlight.get(index);
    if (pending === undefined) {
      // not requested yet (its kind of slot was busy): it never will be
      if (index >= this.requested) this.requested = index + 1;
      return undefined;
    }
    this.inFlight.delete(index);
    const r = await outcome(pending);
    const slot = pending.slot;
    if (slot.kind === 'big' && !('readErrno' in r)) {
      if (r.raw.buffer !== slot.raw.buffer && r.raw.length <= BIG_LIMIT) slot.raw = Buffer.allocUnsafeSlow(grownSize(r.raw.length, BIG_LIMIT));
      if ('image' in r && r.image.buffer !== slot.image.buffer && r.image.buffer !== r.raw.buffer && r.image.length <= BIG_LIMIT) {
        slot.image = Buffer.allocUnsafeSlow(grownSize(r.image.length, BIG_LIMIT));
      }
    }
    return slot;
  }

  /** no more files: requests in flight finish on the thread pool, their results are dropped */
  close(): void {
    this.closed = true;
    this.reader.close();
  }
}
