// A module file on disk: read once, decompressed by magic bytes and parsed as ELF on first use.
import { readModinfoParts, readModinfoPartsOfPath, type ModinfoParts } from './modinfo-parts';
import * as fs from './binary-os';
import { LOG_ERR, type LogFn } from '../log';
import { KmodError, fromSystemError } from '../errors';
import { decompress, detectCompression, DecompressError, sizelessUncompressed, type Compression } from './decompress';
import { Elf } from './elf';
import { dependencySymbols, exportedSymbols, modinfoPairs, modversions, thisModuleName, type ModuleSymbol } from './module-elf';
import { moduleSignature, type SignatureInfo } from './signature';
import { EINVAL } from '../errno';

export interface ModuleFile {
  /** the path as given */
  readonly path: string;
  readonly compression: Compression;
  /** the file's bytes */
  readonly raw: Buffer;
  /** the decompressed module image (throws DecompressError for a bad stream) */
  readonly image: Buffer;
  /** the parsed ELF of the image (throws FormatError for a malformed one) */
  readonly elf: Elf;
  /** .modinfo as [key, value] in section order */
  modinfo(): [key: string, value: string][];
  /** __versions entries (modprobe --show-modversions) */
  versions(): { symbol: string; crc: bigint }[];
  /** exported symbols with CRCs (modprobe --show-exports, depmod) */
  exportedSymbols(): { symbol: string; crc: bigint; bind: string }[];
  /** symbols the module needs, with the CRCs it expects (depmod) */
  dependencySymbols(): ModuleSymbol[];
  /** the name in .gnu.linkonce.this_module */
  thisModuleName(): string | undefined;
  /** the appended signature, if any */
  signature(): SignatureInfo | undefined;
}

export interface OpenModuleOptions {
  /** receives libkmod's diagnostics (e.g. "xz: File is corrupt") when decompression fails */
  log?: LogFn;
  /**
   * read the file into this buffer rather than a fresh one, and decompress it into the buffer's image
   * buffer where it fits: the ModuleFile (its raw bytes and its image) is then valid only until the
   * buffer's next read
   */
  readBuffer?: ReadBuffer;
  /**
   * only what modinfo reads is wanted (its .modinfo strings and signature: resolution/modinfo.ts
   * fileInfo): of an uncompressed file, only those parts are read (modinfo-parts.ts), the rest of the
   * image is zeros
   */
  modinfoOnly?: boolean;
}

/**
 * Buffers reused to read and decompress module files one after another (modinfo over many files),
 * instead of fresh allocations, their page faults and the garbage they leave, per file. Files and
 * images larger than `keepLimit` get buffers of their own, so that a long-lived reader does not hold
 * on to the largest module it ever read.
 */
export class ReadBuffer {
  private buf: Buffer;
  private imageBuf?: Buffer;

  constructor(private readonly keepLimit = 8 << 20) {
    this.buf = Buffer.allocUnsafeSlow(64 << 10);
  }

  /** The buffer to decompress the last file read into (decompress()'s `into`). */
  imageBuffer(): Buffer {
    this.imageBuf ??= Buffer.allocUnsafeSlow(256 << 10);
    return this.imageBuf;
  }

  /** `image` did not fit imageBuffer(): a larger one for the next files (up to the limit) */
  imageDecoded(image: Buffer): void {
    if (this.imageBuf === undefined || image.buffer === this.imageBuf.buffer || image.length > this.keepLimit) return;
    if (image.length > this.imageBuf.length) this.imageBuf = Buffer.allocUnsafeSlow(grownSize(image.length, this.keepLimit));
  }

  /** The whole file (as fs.readFileSync reads it: to its end, even if it grew); valid until the next read. */
  read(path: string): Buffer {
    const fd = fs.openSync(path, 'r');
    try {
      return this.readFd(fd);
    } finally {
      fs.closeSync(fd);
    }
  }

  /** read() of an open file, from where its offset is */
  readFd(fd: number): Buffer {
    let buf = this.buf;
    const size = fs.fstatSync(fd).size;
    if (size + 1 > buf.length) buf = this.grow(buf, size + 1);
    let used = 0;
    for (;;) {
      // one byte of room past the size stat gave: reading 0 there is the end of the file
      if (used === buf.length) buf = this.grow(buf, buf.length * 2);
      const n = fs.readSync(fd, buf, used, buf.length - used, null);
      if (n === 0) break;
      used += n;
    }
    return buf.subarray(0, used);
  }

  private grow(old: Buffer, size: number): Buffer {
    const buf = Buffer.allocUnsafeSlow(size);
    old.copy(buf);
    if (size <= this.keepLimit) this.buf = buf;
    return buf;
  }
}

/**
 * The size of a reused buffer replacing one that `size` bytes did not fit: a quarter more, in whole
 * pages, so that the next larger files fit more often than not; at most `limit`.
 */
function grownSize(size: number, limit: number): number {
  return Math.min(limit, Math.ceil((size * 1.25) / 4096) * 4096);
}

class ModuleFileImpl implements ModuleFile {
  readonly compression: Compression;
  private imageCache?: Buffer;
  private elfCache?: Elf;

  constructor(readonly path: string, readonly raw: Buffer, private readonly opts: OpenModuleOptions, private decoded?: Decoded, elf?: Elf) {
    this.compression = detectCompression(raw);
    this.elfCache = elf;
  }

  get image(): Buffer {
    if (this.imageCache === undefined) {
      try {
        if (this.decoded?.error) throw this.decoded.error;
        const into = this.opts.readBuffer;
        this.imageCache = this.decoded?.image ?? decompress(this.raw, this.path, into?.imageBuffer());
        into?.imageDecoded(this.imageCache);
      } catch (err) {
        if (err instanceof DecompressError && err.detail !== '') this.opts.log?.(LOG_ERR, err.fn, `${err.detail}\n`);
        throw err;
      }
    }
    return this.imageCache;
  }

  get elf(): Elf {
    if (this.elfCache === undefined) this.elfCache = new Elf(this.image, this.path);
    return this.elfCache;
  }

  modinfo(): [string, string][] {
    return modinfoPairs(this.elf);
  }
  versions(): ModuleSymbol[] {
    return modversions(this.elf);
  }
  exportedSymbols(): ModuleSymbol[] {
    return exportedSymbols(this.elf);
  }
  dependencySymbols(): ModuleSymbol[] {
    return dependencySymbols(this.elf);
  }
  thisModuleName(): string | undefined {
    return thisModuleName(this.elf);
  }
  signature(): SignatureInfo | undefined {
    return moduleSignature(this.image);
  }
}

/**
 * Opens a module file: reads it whole (into opts.readBuffer when given); decompression and ELF parsing
 * happen on first use. As libkmod's kmod_file_open, a file shorter than 6 bytes is EINVAL; open/read
 * failures carry the system errno.
 */
export function openModuleFile(path: string, opts: OpenModuleOptions = {}): ModuleFile {
  if (opts.modinfoOnly) {
    const parts = readModinfoPartsOfPath(path);
    if (parts !== undefined) return moduleFileFromParts(path, parts, opts);
  }
  let raw: Buffer;
  let parts: ModinfoParts | undefined;
  let fd: number | undefined;
  try {
    fd = fs.openSync(path, 'r');
    // libkmod reads the magic bytes with pread at offset 0: a pipe (insmod <(...)) fails there, ESPIPE
    const magic = Buffer.alloc(6);
    const n = fs.readSync(fd, magic, 0, 6, 0);
    if (n < 6) throw new KmodError(EINVAL, `${path}: file too short to be a module (${n} bytes)`, { file: path });
    if (sizelessUncompressed(fs.fstatSync(fd).size, magic)) {
      throw new KmodError(EINVAL, `${path}: no size to map (not a regular file)`, { file: path });
    }
    parts = opts.modinfoOnly && magic.readUInt32BE(0) === 0x7f454c46 ? readModinfoParts(fd, fs.fstatSync(fd).size, path) : undefined;
    raw = parts?.image ?? (opts.readBuffer ? opts.readBuffer.readFd(fd) : fs.readFileSync(fd));
  } catch (err) {
    throw fromSystemError(err, path);
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
  if (raw.length < 6) throw new KmodError(EINVAL, `${path}: file too short to be a module (${raw.length} bytes)`, { file: path });
  return new ModuleFileImpl(path, raw, opts, undefined, parts?.elf);
}

/**
 * A module file of which only modinfo's parts were read (modinfo-parts.ts: the headers, .modinfo and the
 * signature, at their places in `parts.image`), as openModuleFile gives it with `modinfoOnly`
 */
export function moduleFileFromParts(path: string, parts: ModinfoParts, opts: OpenModuleOptions = {}): ModuleFile {
  return new ModuleFileImpl(path, parts.image, opts, undefined, parts.elf);
}

/** The outcome of decompressing `raw` elsewhere (a worker thread): the image, or the error to report. */
export type Decoded = { image: Buffer; error?: undefined } | { error: DecompressError; image?: undefined };

/**
 * A module file already in memory (e.g. handed to init_module), under a name for messages; `decoded`
 * supplies its decompressed image (or decompression error) when that was done already.
 */
export function moduleFileFromBytes(path: string, raw: Buffer, opts: OpenModuleOptions = {}, decoded?: Decoded): ModuleFile {
  return new ModuleFileImpl(path, raw, opts, decoded);
}
