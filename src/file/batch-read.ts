// Many module files read and decoded on libuv's thread pool for one caller (depmod's pool-scan.ts,
// modinfo's parts-prefetch.ts), through the addon's reader (native/read_batch.c): a file costs this thread
// one call to queue it, the pool threads are woken once per batch of files (at the end of the turn
// that queued them), and the results finished meanwhile come back in one call. readAndDecode per
// file (read-decode.ts) cost this thread a pool job, a wake and a promise each: docs/decisions.md,
// issue 14. Without the reader (no addon, or one built before it), each file is readAndDecode's.
// Either way the outcome of a file is read-decode.ts's: the same images, the same errors. depmod may
// ask for a module's scan instead of its image (readScanned: native/module_scan.c scans it on the pool),
// modinfo for the parts of the modules it shows, many files a request (readModinfoParts:
// native/modinfo_parts.c).
import { STAT_KEY_WORDS } from '../native-addon';
import { binaryString } from './binary-os';
import { nativeDecoder, NativeStatus, resultImage, type NativeDecodeResult } from './native-decode';
import { fromNative, readAndDecode, type DecodeBuffers, type ReadDecoded } from './read-decode';

/** called once per file, with its outcome (and its stat key where asked for: BatchReader.read); it must not throw */
export type ReadDone = (r: ReadDecoded, statKey?: Uint32Array) => void;
/** a module scanned where it was read (native/module_scan.c): the scan's block, in `image` or a buffer of its own */
export interface ScannedRead {
  scanned: Buffer;
}
/**
 * readScanned's ReadDone: a scan's block, or the file's outcome as read() gives it; with the words of
 * the file's stat key (src/depmod/stat-keys.ts' layout) as the reading thread took it between opening
 * and reading the file, where the addon gives them (statKeys)
 */
export type ScanDone = (r: ReadDecoded | ScannedRead, statKey?: Uint32Array) => void;
/**
 * modinfo's parts of a batch of modules, packed (modinfo-parts.ts' PackedParts reads them),
 * or undefined where the caller is to read every file of the batch itself
 */
export type PartsDone = (packed: Buffer | undefined) => void;
/** called instead of ReadDone for an internal error (readAndDecode's rejection): never for a bad file */
export type ReadFailed = (err: unknown) => void;

interface NativeReader {
  readerOpen(jobs: number, table: Float64Array, done: (count: number, extras: (NativeDecodeResult | undefined)[] | null) => void): object;
  readerSubmit(reader: object, id: number, path: string, into: Uint8Array | null, rawInto: Uint8Array | null, mode: boolean | ReadMode): void;
  readerKick(reader: object): void;
  readerClose(reader: object): void;
  /**
   * readerSubmit's `scan` is understood (an addon without it ignores the argument): the format of its
   * scans' blocks (src/depmod/native-scan.ts; `true` from an addon of the first format)
   */
  readerScans?: boolean | number;
  /** the table's numbers per result: 6 (an addon without it), or 6 and a stat key's twelve words (and maybe more after them) */
  readerRow?: number;
  /** readerSubmit takes a ReadMode below this (an addon without it: a boolean, scan or not) */
  readerModes?: number;
  /** 1: the modinfo mode decompresses compressed files (an addon without it leaves them to the caller) */
  modinfoPartsDecode?: number;
}

/** what readerSubmit reads of a file (read_batch.c READ_*) */
const enum ReadMode {
  image = 0,
  scan = 1,
  modinfoParts = 2,
}

/** the numbers of a result, one row in the table (read_batch.c): ROW, or ROW and a stat key's STAT_KEY_WORDS */
const ROW = 6;
const TABLE_ROWS = 64;
/**
 * within a delivery, the files its callbacks queued are handed to the pool after every this many
 * results, not only at its end: a delivery of many results kept this thread busy while the pool's jobs,
 * having finished the files they had, waited for more (docs/decisions.md, issue 14)
 */
const KICK_EVERY = 4;

interface Pending {
  file: string;
  buffers: DecodeBuffers;
  done: (r: ReadDecoded | ScannedRead | { packed: Buffer }, statKey?: Uint32Array) => void;
  fail: ReadFailed;
  /** its stat key is wanted (readScanned, or read's `withKey`) */
  withKey: boolean;
}

export interface BatchReader {
  /**
   * reads and decodes `file` into `buffers` (left alone until `done` or `fail` has been called), then
   * calls `done`, with the file's stat key where `withKey` asks for it (statKeys)
   */
  read(file: string, buffers: DecodeBuffers, done: ReadDone, fail: ReadFailed, withKey?: boolean): void;
  /** the format of the blocks of the modules readScanned scans where they are read; 0: it does not (it is read()) */
  readonly scanFormat: number;
  /** do readScanned, and read with `withKey`, give each file's stat key as its reading thread took it (ScanDone) */
  readonly statKeys: boolean;
  /**
   * read(), except that a module file the pool can scan comes back as its depmod scan's block
   * (src/depmod/native-scan.ts reads it) in `buffers.image` or a buffer of its own, not as its image;
   * every other file as read() has it
   */
  readScanned(file: string, buffers: DecodeBuffers, done: ScanDone, fail: ReadFailed): void;
  /** does readModinfoParts read on the pool? (else it gives every batch back unread) */
  readonly modinfoParts: boolean;
  /** does it decompress compressed modules for their parts? (else it leaves them to the caller) */
  readonly modinfoPartsDecode: boolean;
  /**
   * the parts modinfo reads of each of `files` (native/modinfo_parts.c; a compressed module's from its
   * image, where modinfoPartsDecode), packed into `into` (left alone until `done` or `fail` has been
   * called)
   */
  readModinfoParts(files: readonly string[], into: Uint8Array, done: PartsDone, fail: ReadFailed): void;
  /** no more files; those already asked for are still read, and their `done` called */
  close(): void;
}

/** the addon's modinfo mode: there, and decompressing */
function modinfoModes(native: NativeReader): { parts: boolean; decode: boolean } {
  const parts = typeof native.readerModes === 'number' && native.readerModes > ReadMode.modinfoParts;
  return { parts, decode: parts && native.modinfoPartsDecode === 1 };
}

/** A reader using up to `jobs` of the pool's threads (the addon's), or readAndDecode file by file. */
export function openBatchReader(jobs: number): BatchReader {
  const native = nativeDecoder() as unknown as Partial<NativeReader> | null;
  if (native !== null && typeof native.readerOpen === 'function') return new PoolReader(native as NativeReader, Math.max(1, jobs));
  const read = (file: string, buffers: DecodeBuffers, done: ReadDone, fail: ReadFailed): void => {
    readAndDecode(file, buffers).then(done, fail);
  };
  const unread = (_files: readonly string[], _into: Uint8Array, done: PartsDone): void => queueMicrotask(() => done(undefined));
  return { read, scanFormat: 0, statKeys: false, readScanned: read, modinfoParts: false, modinfoPartsDecode: false, readModinfoParts: unread, close: () => undefined };
}

class PoolReader implements BatchReader {
  /** the table's numbers per result */
  private readonly row: number;
  private readonly table: Float64Array;
  private readonly handle: object;
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  /** files queued since the last kick */
  private queued = false;
  private dispatching = false;
  private kickScheduled = false;
  private closed = false;
  readonly scanFormat: number;
  readonly statKeys: boolean;
  readonly modinfoParts: boolean;
  readonly modinfoPartsDecode: boolean;

  constructor(private readonly native: NativeReader, jobs: number) {
    // the addon's row, whatever it holds after the numbers read here
    this.row = typeof native.readerRow === 'number' && native.readerRow >= ROW ? native.readerRow : ROW;
    this.statKeys = this.row >= ROW + STAT_KEY_WORDS;
    this.table = new Float64Array(this.row * TABLE_ROWS);
    this.handle = native.readerOpen(jobs, this.table, (count, extras) => this.dispatch(count, extras));
    const scans = native.readerScans;
    this.scanFormat = typeof scans === 'number' ? scans : scans === true ? 1 : 0;
    const modes = modinfoModes(native);
    this.modinfoParts = modes.parts;
    this.modinfoPartsDecode = modes.decode;
  }

  read(file: string, buffers: DecodeBuffers, done: ReadDone, fail: ReadFailed, withKey = false): void {
    // (without `scan` no result is a scan's block)
    this.submit(file, binaryString(file), buffers, done as Pending['done'], fail, false, withKey);
  }

  readScanned(file: string, buffers: DecodeBuffers, done: ScanDone, fail: ReadFailed): void {
    this.submit(file, binaryString(file), buffers, done as Pending['done'], fail, true, true);
  }

  readModinfoParts(files: readonly string[], into: Uint8Array, done: PartsDone, fail: ReadFailed): void {
    if (!this.modinfoParts) {
      queueMicrotask(() => done(undefined));
      return;
    }
    // (a path names no file with a NUL in it, which the batch takes for the end of one)
    const paths = files.map(binaryString).join('\0');
    const packed = (r: ReadDecoded | ScannedRead | { packed: Buffer }): void => done('packed' in r ? r.packed : undefined);
    this.submit(files.join(','), paths, { image: into }, packed, fail, ReadMode.modinfoParts, false);
  }

  private submit(file: string, path: string, buffers: DecodeBuffers, done: Pending['done'], fail: ReadFailed, mode: boolean | ReadMode, withKey: boolean): void {
    if (this.closed) throw new Error('BatchReader: read after close');
    const id = this.nextId++;
    this.native.readerSubmit(this.handle, id, path, buffers.image ?? null, buffers.raw ?? null, mode);
    this.pending.set(id, { file, buffers, done, fail, withKey });
    this.queued = true;
    // within a delivery the kick comes with its next results (KICK_EVERY) or at its end; otherwise at the end of this turn
    if (!this.dispatching && !this.kickScheduled) {
      this.kickScheduled = true;
      queueMicrotask(() => {
        this.kickScheduled = false;
        this.kick();
      });
    }
  }

  private kick(): void {
    if (!this.queued || this.closed) return;
    this.queued = false;
    this.native.readerKick(this.handle);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.native.readerClose(this.handle);
  }

  private dispatch(count: number, extras: (NativeDecodeResult | undefined)[] | null): void {
    const t = this.table;
    this.dispatching = true;
    let failure: unknown;
    for (let k = 0; k < count; k++) {
      const at = k * this.row;
      const id = t[at];
      const p = this.pending.get(id);
      if (p === undefined) continue;
      this.pending.delete(id);
      const r: NativeDecodeResult = extras?.[k] ?? { kind: t[at + 1], status: t[at + 2], err: t[at + 3], fn: '', detail: '', length: t[at + 4], rawLength: t[at + 5] };
      let outcome: ReadDecoded | ScannedRead | { packed: Buffer };
      try {
        // (a result larger than its buffers comes with its own, in extras: never cut to fit)
        if (r.length > (p.buffers.image?.length ?? 0) && r.image === undefined) throw new Error(`reader: no image for ${p.file}`);
        if (r.rawLength > (p.buffers.raw?.length ?? 0) && r.raw === undefined) throw new Error(`reader: no bytes for ${p.file}`);
        if (r.status === NativeStatus.scanned) outcome = { scanned: resultImage(r, p.buffers.image) };
        else if (r.status === NativeStatus.parts) outcome = { packed: resultImage(r, p.buffers.image) };
        else outcome = fromNative(r, p.file, p.buffers);
      } catch (err) {
        p.fail(err);
        continue;
      }
      try {
        p.done(outcome, p.withKey && this.statKeys ? new Uint32Array(t.subarray(at + ROW, at + ROW + STAT_KEY_WORDS)) : undefined);
      } catch (err) {
        // (a caller's bug: surfaces once the batch is delivered)
        failure ??= err;
      }
      if (k % KICK_EVERY === KICK_EVERY - 1) this.kick();
    }
    this.dispatching = false;
    this.kick();
    if (failure !== undefined) throw failure;
  }
}
