// Reads the modules of a depmod run on libuv's thread pool, when the addon's decoder is there
// (src/file/batch-read.ts): each file is read and decompressed there by C (native/decompress.c), with
// no worker thread to start or feed, and, with an addon that can (readScanned), scanned there too
// (native/module_scan.c): only the scan's strings and numbers come back (native-scan.ts reads them).
// A file the C scan leaves alone (damaged, gzip, ...) comes back as its image, scanned on this thread
// (module-scan.ts) as it comes in, as every file was before. A few files are in flight at once (as many
// as cores, plus one so that the pool is busy while this thread works; more when they are scanned on the
// pool, SCANNED_WINDOW); each has a slot of two buffers, for the scan's block or the image and for the
// file's bytes, reused from file to file and grown to the largest seen (up to a limit), so that memory
// stays bounded by the window. Files found during the walk are read ahead (readAhead).
import * as os from 'node:os';
import { EINVAL } from '../errno';
import { openBatchReader, type ScannedRead } from '../file/batch-read';
import type { ReadDecoded } from '../file/read-decode';
import { failedScan, nativeSymbolsAllowed, nativeSymbolStats, scanModuleImage, ScanStore, type ModuleScan } from './module-scan';
import { SCAN_BLOCK_FORMAT, scanOfBlock } from './native-scan';
import { releaseBuffers } from './release';
import type { ScanOptions, ScanPool, ScanResultFn } from './scan-pool';

/** a slot's buffers grow to fit the images seen, up to this; larger images get buffers of their own */
const SLOT_LIMIT = 8 << 20;
/** buffers of their own above this are given back as soon as they are scanned (not at a collection) */
const RELEASE_FROM = 1 << 20;
/**
 * files in flight when they are scanned on the pool (at least cores + 1): a slot then holds only a
 * scan's block, so a wider window costs little memory, and it keeps the pool's jobs at work while this
 * thread is busy or off its core, which spares the kicks that wake them and hands back more results per
 * delivery (docs/decisions.md, issue 14). Images coming back need big slots: their window stays cores + 1.
 */
const SCANNED_WINDOW = 16;

interface Slot {
  image: Buffer;
  raw: Buffer;
}

/**
 * a buffer with an ArrayBuffer of its own (8-aligned: the scan reads through 32-bit views), not
 * zero-filled: the reader writes the bytes the scan reads (zero-filling a grown slot's megabytes cost
 * this thread up to ~20 ms a run on the cloud tree)
 */
function ownBuffer(size: number): Buffer {
  return Buffer.allocUnsafeSlow(size);
}

function roundUp(n: number): number {
  let size = 1 << 16;
  while (size < n) size *= 2;
  return size;
}

/** what a read gives: the file's outcome, or its scan made where it was read */
type PoolRead = ReadDecoded | ScannedRead;

/** how many files were scanned where they were read, and how many slots beyond cores + 1 were dropped (tests) */
export const poolScanStats = { scannedOnPool: 0, slotsDropped: 0 };

/** the scan of one result: libkmod's errno for a file it cannot use, else the image's scan */
function scanResult(r: PoolRead, file: string, store: ScanStore): ModuleScan {
  if ('scanned' in r) {
    poolScanStats.scannedOnPool++;
    nativeSymbolStats.done++;
    return scanOfBlock(r.scanned, store);
  }
  if ('readErrno' in r) return failedScan(r.readErrno);
  // libkmod needs the 6 bytes of the longest magic before it looks at a file
  if (r.raw.length < 6) return failedScan(EINVAL);
  if ('error' in r) return failedScan(r.error.errno);
  return scanModuleImage(r.image, file, store);
}

/**
 * the slot made ready for its next file: grown where the last one did not fit (unless `grow` is false:
 * the slot is dropped), its own buffers given back
 */
function afterUse(slot: Slot, r: PoolRead, grow = true): void {
  if ('readErrno' in r) return;
  const own: ArrayBuffer[] = [];
  const check = (b: Buffer | undefined, key: 'image' | 'raw'): void => {
    if (b === undefined || b.buffer === slot[key].buffer) return;
    if (grow && b.length + 1 <= SLOT_LIMIT) slot[key] = ownBuffer(roundUp(b.length + 1));
    if (b.length >= RELEASE_FROM && b.byteOffset === 0 && b.byteLength === b.buffer.byteLength) own.push(b.buffer as ArrayBuffer);
  };
  if ('scanned' in r) {
    check(r.scanned, 'image');
  } else {
    check('image' in r ? r.image : undefined, 'image');
    check(r.raw, 'raw');
  }
  for (const b of own) {
    try {
      void releaseBuffers([b]);
    } catch {
      // memory the addon allocated (an external buffer) cannot be transferred (without the addon's release): it waits for the collector
    }
  }
}

/** a file asked for: its slot, and its outcome once in (else who takes it when it comes) */
interface Read {
  slot: Slot;
  result?: PoolRead;
  /** the file's stat key as its reading thread took it (BatchReader.statKeys) */
  key?: Uint32Array;
  /** an internal error instead (never a bad file's) */
  failure?: { err: unknown };
  then?: (r: PoolRead, key?: Uint32Array) => void;
  fail?: (err: unknown) => void;
}

/** `use` with the read's outcome, or `fail`: now (in a microtask) when it is in, else when it comes */
function whenRead(read: Read, use: (r: PoolRead, key?: Uint32Array) => void, fail: (err: unknown) => void): void {
  const { result, key, failure } = read;
  if (result !== undefined) queueMicrotask(() => use(result, key));
  else if (failure !== undefined) queueMicrotask(() => fail(failure.err));
  else {
    read.then = use;
    read.fail = fail;
  }
}

export function startThreadPoolScan(opts: ScanOptions): ScanPool {
  const jobs = opts.threads ?? os.availableParallelism();
  const reader = openBatchReader(jobs);
  // (scans in the format native-scan.ts reads: an addon of another version sends images instead)
  const onPool = reader.scanFormat === SCAN_BLOCK_FORMAT && opts.scanOnPool !== false && nativeSymbolsAllowed();
  const window = onPool ? Math.max(jobs + 1, SCANNED_WINDOW) : jobs + 1;
  // scanned on the pool, a slot's image buffer holds only a scan's block (its bytes are needed only for
  // the files left to this thread): small buffers, grown if such a file comes
  const free: Slot[] = [];
  for (let k = 0; k < window; k++) free.push(onPool ? { image: ownBuffer(128 << 10), raw: ownBuffer(64 << 10) } : { image: ownBuffer(1 << 20), raw: ownBuffer(256 << 10) });
  /** files read ahead, by path */
  const ahead = new Map<string, Read>();
  let closed = false;
  // The slots beyond cores + 1 are for scans' blocks. Once an image comes back instead (a file the C scan
  // leaves to this thread: gzip, damaged), they are dropped as they come back, so that images, which grow
  // their slots to their size, are never more than cores + 1 at a time after that.
  let extraSlots = window - (jobs + 1);
  let imagesBack = false;
  /** the slot of a finished read back in `free`, unless it is an extra one no longer wanted */
  const recycle = (slot: Slot, r: PoolRead | undefined): void => {
    if (r !== undefined && !('scanned' in r) && !('readErrno' in r)) imagesBack = true;
    const drop = imagesBack && extraSlots > 0;
    if (r !== undefined) afterUse(slot, r, !drop);
    if (drop) {
      extraSlots--;
      poolScanStats.slotsDropped++;
    } else free.push(slot);
  };

  const startRead = (file: string, slot: Slot): Read => {
    const read: Read = { slot };
    const done = (r: PoolRead, key?: Uint32Array): void => {
      if (read.then !== undefined) read.then(r, key);
      else {
        read.result = r;
        read.key = key;
      }
    };
    const fail = (err: unknown): void => {
      if (read.fail !== undefined) read.fail(err);
      else read.failure = { err };
    };
    if (onPool) reader.readScanned(file, slot, done, fail);
    else reader.read(file, slot, done, fail, true);
    return read;
  };

  const readAhead = (file: string, beforeRead?: () => void): void => {
    if (closed || free.length === 0 || ahead.has(file)) return;
    beforeRead?.();
    ahead.set(file, startRead(file, free.pop()!));
  };

  const scan = (paths: string[], onResult?: ScanResultFn, store = new ScanStore()): Promise<ModuleScan[]> => {
    const results: ModuleScan[] = new Array(paths.length);
    const taken = new Map(ahead);
    ahead.clear();
    return new Promise<ModuleScan[]>((resolve, reject) => {
      let next = 0;
      let done = 0;
      let failed = false;
      const fail = (err: unknown): void => {
        if (failed) return;
        failed = true;
        reject(err);
      };
      const finish = (i: number, slot: Slot, r: PoolRead, key?: Uint32Array): void => {
        if (failed) return;
        try {
          const scan = scanResult(r, paths[i], store);
          recycle(slot, r);
          results[i] = scan;
          onResult?.(i, scan, key);
          done++;
          opts.onProgress?.(done, paths.length);
          if (done === paths.length) resolve(results);
          else pump();
        } catch (err) {
          fail(err);
        }
      };
      // the files read ahead first, each once; the other reads ahead only give their slot back
      const firstOf = new Map<string, number>();
      paths.forEach((p, i) => {
        if (!firstOf.has(p)) firstOf.set(p, i);
      });
      const early = new Set<number>();
      for (const [file, read] of taken) {
        const i = firstOf.get(file);
        if (i === undefined) {
          const giveBack = (): void => {
            free.push(read.slot);
            pump();
          };
          whenRead(read, giveBack, giveBack);
          continue;
        }
        early.add(i);
        whenRead(read, (r, key) => finish(i, read.slot, r, key), fail);
      }
      const pump = (): void => {
        while (!failed && free.length > 0 && next < paths.length) {
          const i = next++;
          if (early.has(i)) continue;
          const read = startRead(paths[i], free.pop()!);
          read.then = (r, key) => finish(i, read.slot, r, key);
          read.fail = fail;
        }
      };
      if (paths.length === 0) resolve(results);
      else {
        try {
          pump();
        } catch (err) {
          fail(err);
        }
      }
    });
  };

  return {
    scan,
    readAhead,
    statKeysFromReads: reader.statKeys,
    close: () => {
      closed = true;
      reader.close();
    },
  };
}
