// The parts of an uncompressed module file that modinfo reads, without reading the rest: the ELF header,
// the section header table, the section names, .modinfo and an appended signature, each at its place in
// a buffer of the file's size (one buffer reused from file to file: its other bytes are left as they
// are, since nothing modinfo reads lies there). libkmod maps the file and touches only these pages; reading whole files instead made kmodts' modinfo of every module of an uncompressed tree 5x
// kmod's time and 3.6x its memory (docs/decisions.md, issue 14). Anything that does not look like a
// plain ELF file with readable headers gives undefined, and the caller reads the whole file: the
// verdicts on damaged files are then the full reader's.
import { kMaxLength } from 'node:buffer';
import * as fs from './binary-os';
import { FormatError } from '../errors';
import { loadNativeAddon } from '../native-addon';
import { Elf } from './elf';
import { MODSIG_SIZE, SIG_MAGIC } from './signature';

/** the buffer files are read into, grown to the largest (valid until the next file) */
let shared = Buffer.alloc(0);

/** bytes [start, end) of the file (clipped to it) read into img at the same place; false on a short read */
function readRange(fd: number, img: Buffer, start: number, end: number): boolean {
  const to = Math.min(end, img.length);
  let at = Math.max(0, start);
  while (at < to) {
    const n = fs.readSync(fd, img, at, to - at, at);
    if (n <= 0) return false;
    at += n;
  }
  return true;
}

/**
 * The file open at `fd` (`size` bytes by fstat, starting with the ELF magic) as modinfo needs it, or
 * undefined when the headers do not describe a readable section table (the caller reads it whole).
 * The buffer is valid until the next call.
 */
export function readModinfoParts(fd: number, size: number, file: string): ModinfoParts | undefined {
  // below a page, a whole read is as cheap
  if (size < 4096) return undefined;
  if (shared.length < size && !growShared(size)) return undefined;
  const img = shared.subarray(0, size);
  const ehsize = 64;
  if (!readRange(fd, img, 0, ehsize)) return undefined;
  const is64 = img[4] === 2;
  if (!is64 && img[4] !== 1) return undefined;
  const msb = img[5] === 2;
  if (!msb && img[5] !== 1) return undefined;
  const u16 = (o: number): number => (msb ? img.readUInt16BE(o) : img.readUInt16LE(o));
  const u32 = (o: number): number => (msb ? img.readUInt32BE(o) : img.readUInt32LE(o));
  // a 64-bit word as a number (exact below 2^53; larger ones are out of the file's range anyway)
  const uword = (o: number): number => (is64 ? (msb ? u32(o) * 0x1_0000_0000 + u32(o + 4) : u32(o + 4) * 0x1_0000_0000 + u32(o)) : u32(o));
  const shoff = uword(is64 ? 40 : 32);
  const shentsize = u16(is64 ? 58 : 46);
  const shnum = u16(is64 ? 60 : 48);
  const shstrndx = u16(is64 ? 62 : 50);
  if (shnum === 0 || shentsize < (is64 ? 64 : 40) || shstrndx >= shnum || shoff + shnum * shentsize > size) return undefined;
  if (!readRange(fd, img, shoff, shoff + shnum * shentsize)) return undefined;
  // the section names' table, then .modinfo found as modinfo finds it (Elf.findSection); headers the
  // parser refuses leave the verdict to the whole read
  const names = shoff + shstrndx * shentsize;
  const namesAt = uword(names + (is64 ? 24 : 16));
  const namesEnd = namesAt + uword(names + (is64 ? 32 : 20));
  if (namesEnd > size || !readRange(fd, img, namesAt, namesEnd)) return undefined;
  const elf = parsedElf(img, file);
  if (elf === undefined) return undefined;
  const modinfo = elf.findSection('.modinfo');
  if (modinfo !== undefined && !readRange(fd, img, modinfo.offset, modinfo.offset + modinfo.size)) return undefined;
  // an appended signature: its magic and struct at the end, what they describe before them
  const tail = SIG_MAGIC.length + MODSIG_SIZE;
  if (!readRange(fd, img, size - tail, size)) return undefined;
  if (img.toString('latin1', size - SIG_MAGIC.length, size) === SIG_MAGIC) {
    const st = size - tail;
    const described = img.readUInt32BE(st + 8) + img[st + 3] + img[st + 4];
    if (!readRange(fd, img, st - described, st)) return undefined;
  }
  return { image: img, elf };
}

/** the parts read and their ELF headers, parsed (the module file's own Elf: the headers are in place) */
export interface ModinfoParts {
  image: Buffer;
  elf: Elf;
}

/** the headers of the parts read, parsed; undefined where the parser refuses them (the whole read then says why) */
function parsedElf(img: Buffer, file: string): Elf | undefined {
  try {
    return new Elf(img, file);
  } catch (err) {
    if (err instanceof FormatError) return undefined;
    throw err;
  }
}

/** native/modinfo_parts.c: 1 read, 2 `into` too small (io[0] the size), 0 the usual way */
const enum PartsStatus {
  fallback = 0,
  read = 1,
  tooSmall = 2,
}
type ReadModinfoPartsFn = (path: string, into: Uint8Array, io: Float64Array) => PartsStatus;
/** the parts of a file that a pool thread packed in a batch (its record at `at`), put in place as readModinfoParts reads them */
type PlaceModinfoPartsFn = (batch: Uint8Array, at: number, into: Uint8Array, io: Float64Array) => PartsStatus;

let nativeRead: ReadModinfoPartsFn | null | undefined;
let nativePlace: PlaceModinfoPartsFn | null | undefined;
const io = new Float64Array(2 + 2 * 4);

function nativeReader(): ReadModinfoPartsFn | null {
  if (nativeRead === undefined) {
    const a = loadNativeAddon() as unknown as { readModinfoParts?: ReadModinfoPartsFn } | Error;
    nativeRead = a instanceof Error || typeof a.readModinfoParts !== 'function' ? null : a.readModinfoParts;
  }
  return nativeRead;
}

function nativePlacer(): PlaceModinfoPartsFn | null {
  if (nativePlace === undefined) {
    const a = loadNativeAddon() as unknown as { placeModinfoParts?: PlaceModinfoPartsFn } | Error;
    nativePlace = a instanceof Error || typeof a.placeModinfoParts !== 'function' ? null : a.placeModinfoParts;
  }
  return nativePlace;
}

/** Tests: the addon's one-call read used (true, when there) or not (false). */
export function useNativeModinfoParts(on: boolean): void {
  nativeRead = on ? undefined : null;
}

/**
 * readModinfoParts of the file at `path` (a binary string) in one call to the addon: open, the same
 * reads, close. Undefined where the addon is missing or declines (an error, not ELF, anything odd), and
 * the caller opens the file itself: every verdict is then the usual path's. The buffer is valid until
 * the next call.
 */
export function readModinfoPartsOfPath(path: string): ModinfoParts | undefined {
  const read = nativeReader();
  if (read === null) return undefined;
  let status = read(path, shared, io);
  if (status === PartsStatus.tooSmall && growShared(io[0])) status = read(path, shared, io);
  return status === PartsStatus.read ? partsInShared(path) : undefined;
}

/**
 * The parts of a batch of files that a pool thread read and packed (batch-read.ts readModinfoParts,
 * native/modinfo_parts.c): first, for each file, where its record starts (-1: none), then the records.
 */
export class PackedParts {
  private readonly starts: Float64Array;

  constructor(private readonly packed: Buffer, count: number) {
    // (a batch the pool could not pack at all has no table: every file is then read the usual way)
    const whole = packed.byteOffset % 8 === 0 && packed.length >= 8 * count;
    this.starts = whole ? new Float64Array(packed.buffer, packed.byteOffset, count) : new Float64Array(0);
  }

  /**
   * The parts of the batch's k-th file (`path`) put in place: readModinfoPartsOfPath's result as if it
   * had read them here. Undefined as there: the caller reads the file itself. The buffer is valid
   * until the next call.
   */
  place(k: number, path: string): ModinfoParts | undefined {
    const at = k < this.starts.length ? this.starts[k] : -1;
    const place = nativePlacer();
    if (at < 0 || place === null) return undefined;
    let status = place(this.packed, at, shared, io);
    if (status === PartsStatus.tooSmall && growShared(io[0])) status = place(this.packed, at, shared, io);
    return status === PartsStatus.read ? partsInShared(path) : undefined;
  }
}

/**
 * `shared` grown to hold a file of `size` bytes; false for a size no Buffer can have (a sparse file of
 * petabytes: the caller's whole read then says what it says). Its pages count only once touched.
 */
function growShared(size: number): boolean {
  if (!(size <= kMaxLength)) return false;
  shared = Buffer.alloc(Math.max(size, Math.min(2 * shared.length, kMaxLength)));
  return true;
}

/** the parts just put in `shared` (io: the file's size, the .modinfo sections read), parsed; undefined where the usual path must decide */
function partsInShared(path: string): ModinfoParts | undefined {
  const image = shared.subarray(0, io[0]);
  const elf = parsedElf(image, path);
  if (elf === undefined) return undefined;
  const modinfo = elf.findSection('.modinfo');
  if (modinfo === undefined) return { image, elf };
  // the section the lookup picked must be one the addon read
  for (let k = 0; k < io[1]; k++) if (io[2 + 2 * k] === modinfo.offset && io[3 + 2 * k] === modinfo.size) return { image, elf };
  return undefined;
}
