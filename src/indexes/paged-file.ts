// An index file's bytes, read in chunks as a search first touches them, as libkmod's mmap of the file
// faults in only the pages a lookup reads. `modprobe -D btrfs` touches a few dozen nodes of the 0.8 MB
// modules.dep.bin and 1.3 MB modules.alias.bin of a full tree; reading both whole cost ~500 page
// faults and copies, and a hand-made index of 98 MB was read whole for one lookup. Chunks are held
// one by one, so a file of any size (a sparse one of gigabytes, which kmod maps) takes only the
// memory of what is read.
import { closeSync, readSync } from '../file/binary-os';
import { FormatError } from '../errors';

/** bytes read at a time: a few nodes' worth, so that a lookup's path through the trie takes a few reads */
const CHUNK = 16 << 10;

/** closes the descriptor of a PagedFile dropped before it read its whole file */
const closer = new FinalizationRegistry<number>((fd) => {
  try {
    closeSync(fd);
  } catch {
    // (closed already)
  }
});

/**
 * The bytes of an index: held in memory, or read from a file as they are asked for. Callers ask only
 * for bytes below `size`.
 */
export class PagedFile {
  /** how many bytes the file has: fstat's size, or less where a read found the end sooner */
  size: number;
  /** chunk k holds bytes [k * CHUNK, k * CHUNK + its length); in memory, one chunk of every byte */
  private readonly chunks: Map<number, Buffer>;
  private readonly chunkSize: number;
  private unread: number;
  private fd: number;

  /**
   * Bytes held in memory (`fd` omitted), or the file of `size` bytes open on `fd`, a regular file (from
   * PagedFile.open): the descriptor is this object's, closed once every chunk is read, or when the
   * object is collected.
   */
  private constructor(private readonly file: string, size: number, whole: Buffer | undefined, fd: number) {
    this.size = size;
    this.fd = fd;
    this.chunks = new Map(whole === undefined ? [] : [[0, whole]]);
    this.chunkSize = whole === undefined ? CHUNK : Math.max(1, whole.length);
    this.unread = whole === undefined ? Math.ceil(size / CHUNK) : 0;
    if (this.unread > 0) closer.register(this, fd, this);
    else this.letGo();
  }

  static of(bytes: Buffer, file: string): PagedFile {
    return new PagedFile(file, bytes.length, bytes, -1);
  }

  /** A regular file of `size` bytes open on `fd` (which PagedFile closes), read as it is searched. */
  static open(fd: number, size: number, file: string): PagedFile {
    return new PagedFile(file, size, undefined, fd);
  }

  byte(pos: number): number {
    const c = Math.floor(pos / this.chunkSize);
    const b = this.chunk(c);
    const at = pos - c * this.chunkSize;
    if (at >= b.length) this.cutShort(pos);
    return b[at];
  }

  /** the big-endian 32-bit word at pos */
  u32(pos: number): number {
    const c = Math.floor(pos / this.chunkSize);
    const at = pos - c * this.chunkSize;
    const b = this.chunk(c);
    if (at + 4 <= b.length) return b.readUInt32BE(at);
    return ((this.byte(pos) << 24) | (this.byte(pos + 1) << 16) | (this.byte(pos + 2) << 8) | this.byte(pos + 3)) >>> 0;
  }

  /** bytes [from, to) as a binary string */
  latin1(from: number, to: number): string {
    const c = Math.floor(from / this.chunkSize);
    const at = from - c * this.chunkSize;
    const b = this.chunk(c);
    if (at + (to - from) <= b.length) return b.toString('latin1', at, at + (to - from));
    if (b.length < this.chunkSize) this.cutShort(from + b.length - at);
    return b.toString('latin1', at) + this.latin1((c + 1) * this.chunkSize, to);
  }

  /** the offset of the first NUL at or after `pos`, or -1 when the file ends first */
  indexOfNul(pos: number): number {
    for (let from = pos; from < this.size; ) {
      const c = Math.floor(from / this.chunkSize);
      const base = c * this.chunkSize;
      const b = this.chunk(c);
      const at = b.indexOf(0, from - base);
      if (at >= 0) return base + at;
      from = base + this.chunkSize;
    }
    return -1;
  }

  /** Lets the descriptor go before every chunk is read: what is not read reads as the end of the file. */
  close(): void {
    if (this.unread > 0) this.size = 0;
    this.letGo();
  }

  /**
   * A read found the file's end before `pos`, which the caller had checked against the size fstat
   * gave: the file was cut short since it was opened.
   */
  private cutShort(pos: number): never {
    throw new FormatError(this.file, `cut short at offset ${this.size} (reading offset ${pos})`);
  }

  private chunk(c: number): Buffer {
    return this.chunks.get(c) ?? this.readChunk(c);
  }

  private readChunk(c: number): Buffer {
    const at = c * CHUNK;
    const want = Math.max(0, Math.min(CHUNK, this.size - at));
    const b = Buffer.allocUnsafe(want);
    let got = 0;
    try {
      while (got < want && this.fd >= 0) {
        const n = readSync(this.fd, b, got, want - got, at + got);
        if (n === 0) break;
        got += n;
      }
    } catch (err) {
      throw new FormatError(this.file, `cannot be read at offset ${at + got} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    const chunk = b.subarray(0, got);
    this.chunks.set(c, chunk);
    this.unread--;
    if (got < want) {
      // a file cut short since its fstat: its end is where the reads found it
      this.size = at + got;
      this.unread = 0;
      for (let k = 0; k * CHUNK < this.size; k++) this.unread += this.chunks.has(k) ? 0 : 1;
    }
    if (this.unread <= 0) this.letGo();
    return chunk;
  }

  /** every chunk is in (or the file was cut short): the descriptor is no longer needed */
  private letGo(): void {
    this.unread = 0;
    if (this.fd < 0) return;
    closer.unregister(this);
    closeSync(this.fd);
    this.fd = -1;
  }
}
