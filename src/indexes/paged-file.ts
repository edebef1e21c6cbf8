// An index file's bytes, read in chunks as a search first touches them, as libkmod's mmap of the file
// faults in only the pages a lookup reads. `modprobe -D btrfs` touches a few dozen nodes of the 0.8 MB
// modules.dep.bin and 1.3 MB modules.alias.bin of a full tree; reading both whole cost ~500 page
// faults and copies, and a hand-made index of 98 MB was read whole for one lookup. Chunks are held
// one by one, so a file of any size (a sparse one of gigabytes, which kmod maps) takes only the
// memory of what is read.
import { constants as bufferConstants } from 'node:buffer';
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
  /** every byte, in memory (given so, or read by readAll) */
  private whole: Buffer | undefined;
  /** otherwise chunk k holds bytes [k * CHUNK, k * CHUNK + its length) where read */
  private readonly chunks = new Map<number, Buffer>();
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
    this.whole = whole;
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
    const w = this.whole;
    if (w !== undefined) return pos < w.length ? w[pos] : this.cutShort(pos);
    const c = Math.floor(pos / CHUNK);
    const b = this.chunk(c);
    const at = pos - c * CHUNK;
    if (at >= b.length) this.cutShort(pos);
    return b[at];
  }

  /** the big-endian 32-bit word at pos */
  u32(pos: number): number {
    const w = this.whole;
    if (w !== undefined && pos + 4 <= w.length) return w.readUInt32BE(pos);
    const c = Math.floor(pos / CHUNK);
    const at = pos - c * CHUNK;
    const b = this.chunk(c);
    if (at + 4 <= b.length) return b.readUInt32BE(at);
    return ((this.byte(pos) << 24) | (this.byte(pos + 1) << 16) | (this.byte(pos + 2) << 8) | this.byte(pos + 3)) >>> 0;
  }

  /** bytes [from, to) as a binary string */
  latin1(from: number, to: number): string {
    const w = this.whole;
    if (w !== undefined) return to <= w.length ? w.toString('latin1', from, to) : this.cutShort(to);
    const c = Math.floor(from / CHUNK);
    const at = from - c * CHUNK;
    const b = this.chunk(c);
    if (at + (to - from) <= b.length) return b.toString('latin1', at, at + (to - from));
    if (b.length < CHUNK) this.cutShort(from + b.length - at);
    return b.toString('latin1', at) + this.latin1((c + 1) * CHUNK, to);
  }

  /** the offset of the first NUL at or after `pos`, or -1 when the file ends first */
  indexOfNul(pos: number): number {
    const w = this.whole;
    if (w !== undefined) return pos < w.length ? w.indexOf(0, pos) : -1;
    for (let from = pos; from < this.size; ) {
      const c = Math.floor(from / CHUNK);
      const base = c * CHUNK;
      const b = this.chunk(c);
      const at = b.indexOf(0, from - base);
      if (at >= 0) return base + at;
      from = base + CHUNK;
    }
    return -1;
  }

  /**
   * Every byte read now, in one buffer, for walks of the whole trie (`modprobe -c`): one read, and each
   * access then without the chunks' arithmetic. A file larger than a Buffer can be stays in chunks.
   */
  readAll(): void {
    if (this.whole !== undefined || this.size > bufferConstants.MAX_LENGTH) return;
    if (this.fd < 0) {
      // every chunk is in (or none will be: closed)
      const parts: Buffer[] = [];
      for (let k = 0; k * CHUNK < this.size; k++) parts.push(this.chunks.get(k) ?? Buffer.alloc(0));
      this.whole = Buffer.concat(parts);
    } else {
      const b = Buffer.allocUnsafe(this.size);
      this.whole = b.subarray(0, this.readAt(b, 0));
    }
    this.size = this.whole.length;
    this.chunks.clear();
    this.letGo();
  }

  /** Lets the descriptor go before every chunk is read: what is not read reads as the end of the file. */
  close(): void {
    if (this.unread > 0 && this.whole === undefined) this.size = 0;
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
    const got = this.readAt(b, at);
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

  /** fills `into` from the file's byte `at` on: how many bytes were there (fewer at its end) */
  private readAt(into: Buffer, at: number): number {
    let got = 0;
    try {
      while (got < into.length && this.fd >= 0) {
        const n = readSync(this.fd, into, got, into.length - got, at + got);
        if (n === 0) break;
        got += n;
      }
    } catch (err) {
      throw new FormatError(this.file, `cannot be read at offset ${at + got} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    return got;
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
