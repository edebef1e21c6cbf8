// depmod's scans made in C (native/module_scan.c): on the pool thread that read the module (pool-scan.ts
// asks the batch reader for them), only a small block of the scan's strings and numbers comes back to
// this thread instead of the image. This file reads such a block into a ModuleScan, the same as
// module-scan.ts's scan of that image (test/depmod/native-scan.test.ts compares them on every module
// of the cloud tree and on damaged images); module_scan.c leaves to module-scan.ts every image it does
// not take as well-formed.
import { loadNativeAddon } from '../native-addon';
import type { AliasPieces } from './alias-files';
import type { ExportBatch } from './owned-symbols';
import type { Mod } from './run-context';
import { JoinedExportsScan, scanNumbers, scanNumbersSize, ScanStore, type ModuleScan, type ScanNumbers } from './scan-store';

/**
 * the block's counts (module_scan.c): aliases, softdeps, weakdeps, exports, imports, name bytes, errno,
 * string bytes; 1 with alias pieces, their line bytes and key bytes; 0
 */
const HEADER_WORDS = 12;
/** the format of the blocks read here, as the addon states it (its readerScans) */
export const SCAN_BLOCK_FORMAT = 2;
const HEADER_BYTES = 4 * HEADER_WORDS;

/** the counts at the start of the block, in the host's byte order */
function header(block: Uint8Array): Uint32Array {
  if (block.byteOffset % 4 === 0) return new Uint32Array(block.buffer, block.byteOffset, HEADER_WORDS);
  return new Uint32Array(block.slice(0, HEADER_BYTES).buffer);
}

function asBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

const pad8 = (n: number): number => (n + 7) & ~7;

function countNuls(text: string): number {
  let n = 0;
  for (let at = text.indexOf('\0'); at >= 0; at = text.indexOf('\0', at + 1)) n++;
  return n;
}

/**
 * The scan a block holds, its numbers copied into `store` (the block may be reused once this returns),
 * and its alias pieces, where it has them, into the part of `store` that outlives its release().
 */
export function scanOfBlock(block: Uint8Array, store: ScanStore): ModuleScan {
  if (block.length < HEADER_BYTES) throw new Error(`native scan: a block of ${block.length} bytes`);
  const h = header(block);
  // (each word by itself, no destructuring: unoptimized, those allocate iterators (decisions.md))
  const aliases = h[0];
  const softdeps = h[1];
  const weakdeps = h[2];
  const e = h[3];
  const n = h[4];
  const nameBytes = h[5];
  const errno = h[6];
  const stringBytes = h[7];
  const hasPieces = h[8];
  const lineBytes = h[9];
  const keyBytes = h[10];
  const numbersAt = (HEADER_BYTES + stringBytes + 7) & ~7;
  const size = scanNumbersSize(e, n, nameBytes);
  const piecesAt = numbersAt + pad8(size);
  const end = hasPieces === 1 ? piecesAt + 4 * aliases + lineBytes + keyBytes : numbersAt + size;
  if (end !== block.length) throw new Error(`native scan: a block of ${block.length} bytes for ${end}`);
  const count = aliases + softdeps + weakdeps + e;
  // the strings joined by NULs, which no modinfo value or symbol name holds; the exports, last, are
  // left joined (BlockScan)
  const text = count === 0 ? '' : asBuffer(block).toString('latin1', HEADER_BYTES, HEADER_BYTES + stringBytes);
  const others = count - e;
  // the others, split once; they and their NULs take `othersEnd` chars, the exports follow the last NUL
  const all = others === 0 ? [] : text.split('\0', others);
  let othersEnd = others === 0 ? 0 : others - 1;
  for (let k = 0; k < all.length; k++) othersEnd += all[k].length;
  const exportsText = e === 0 ? '' : others === 0 ? text : text.slice(othersEnd + 1);
  const fits = e === 0 ? othersEnd === text.length : others === 0 || text.charCodeAt(othersEnd) === 0;
  if (all.length !== others || !fits || (e > 0 && countNuls(exportsText) !== e - 1)) throw new Error(`native scan: strings for ${count} that do not add up`);
  const { buffer: ab, at } = store.place(size);
  // (plain views of the block's memory: a Buffer's subarray costs ~3x as much, unoptimized)
  const blockBuffer = block.buffer;
  const blockAt = block.byteOffset;
  new Uint8Array(ab, at, size).set(new Uint8Array(blockBuffer, blockAt + numbersAt, size));
  const a = aliases;
  const s = a + softdeps;
  const w = s + weakdeps;
  let pieces: AliasPieces | undefined;
  if (hasPieces === 1) {
    // key lengths (4-aligned in the block and in the store), lines, keys: one copy
    const { buffer: pb, at: pat } = store.placeLasting(end - piecesAt);
    new Uint8Array(pb, pat, end - piecesAt).set(new Uint8Array(blockBuffer, blockAt + piecesAt, end - piecesAt));
    const linesAt = pat + 4 * aliases;
    pieces = { keyLengths: new Uint32Array(pb, pat, aliases), lines: new Uint8Array(pb, linesAt, lineBytes), keys: new Uint8Array(pb, linesAt + lineBytes, keyBytes) };
  }
  return new BlockScan(all.slice(0, a), all.slice(a, s), all.slice(s, w), exportsText, e, scanNumbers(ab, at, e, n, nameBytes), errno, pieces);
}

/**
 * A scan read from a C block. Its exports stay one string, the block's own NUL-joined text, until
 * something asks for them one by one: a run hands them joined to the addon's symbol table and to the
 * cache it writes (~5,100 names on the cloud tree, ~15,500 on the full one, made strings and joined again).
 */
class BlockScan extends JoinedExportsScan implements ModuleScan {
  readonly exportCrcs: Float64Array;
  readonly importNames: Uint8Array;
  readonly importLengths: Uint32Array;
  readonly importCrcs: Float64Array;
  readonly importWeak: Uint8Array;
  readonly importKeys: Int32Array;

  constructor(
    aliases: string[],
    softdeps: string[],
    weakdeps: string[],
    private readonly joined: string,
    private readonly exportCount: number,
    numbers: ScanNumbers,
    errno: number,
    aliasPieces: AliasPieces | undefined,
  ) {
    super(aliases, softdeps, weakdeps, undefined);
    this.exportCrcs = numbers.exportCrcs;
    this.importNames = numbers.importNames;
    this.importLengths = numbers.importLengths;
    this.importCrcs = numbers.importCrcs;
    this.importWeak = numbers.importWeak;
    this.importKeys = numbers.importKeys;
    this.aliasPieces = aliasPieces;
    if (errno !== 0) this.symbolsErrno = errno;
  }

  get exportsJoined(): string | undefined {
    return this.exportList === undefined ? this.joined : undefined;
  }

  protected splitExports(): string[] {
    return this.exportCount === 0 ? [] : this.joined.split('\0');
  }

  protected addJoinedExports(batch: ExportBatch, mod: Mod): void {
    batch.addJoined(this.joined, this.exportCount, mod);
  }
}

type ScanImageFn = (image: Uint8Array, into: Uint8Array, path?: string) => number;

let scanImageFn: ScanImageFn | null | undefined;
let scratch = Buffer.allocUnsafeSlow(64 << 10);
const oneOffStore = new ScanStore();

/**
 * The C scan of a decompressed image, as module_scan.c makes it on the pool (with the alias pieces of
 * the module at `path`, a binary string, where it is given): undefined where it leaves the image to
 * module-scan.ts (or without an addon that has it). Tests and the fuzz target.
 */
export function scanImageInC(image: Uint8Array, store: ScanStore = oneOffStore, path?: string): ModuleScan | undefined {
  if (scanImageFn === undefined) {
    const addon = loadNativeAddon();
    scanImageFn = addon instanceof Error || typeof addon.scanImage !== 'function' || addon.readerScans !== SCAN_BLOCK_FORMAT ? null : addon.scanImage;
  }
  if (scanImageFn === null) return undefined;
  let size = path === undefined ? scanImageFn(image, scratch) : scanImageFn(image, scratch, path);
  if (size < 0) return undefined;
  if (size > scratch.length) {
    scratch = Buffer.allocUnsafeSlow(size);
    size = path === undefined ? scanImageFn(image, scratch) : scanImageFn(image, scratch, path);
  }
  return scanOfBlock(scratch.subarray(0, size), store);
}
