// An index file's bytes, read in chunks as a search first touches them, as libkmod's mmap of the file
// faults in only the pages a lookup reads. `modprobe -D btrfs` touches a few dozen nodes of the 0.8 MB
// modules.dep.bin and 1.3 MB modules.alias.bin of a full tree; reading both whole cost ~500 page
// faults and copies, and a hand-made index of 98 MB was read whole for one lookup.
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

export class PagedFile {
  /** the file's bytes where read; beyond `size`, nothing */
  readonly bytes: Buffer;
  /** how many bytes the file has: fstat's size, or less where a read found the end sooner */
  size: number;
  /** one flag a chunk, set once read; undefined once every chunk is (or for bytes held in memory) */
  private read: Uint8Array | undefined;
  private unread: number;
  private fd: number;

  /**
   * Bytes held in memory (`fd` omitted), or the file open on `fd`, a regular file of `bytes.length`
   * bytes (from PagedFile.open): the descriptor is this object's, closed once every chunk is read, or
   * when the object is collected.
   */
  constructor(bytes: Buffer, private readonly file: string, fd = -1) {
    this.bytes = bytes;
    this.size = bytes.length;
    this.fd = fd;
    this.unread = fd < 0 ? 0 : Math.ceil(this.size / CHUNK);
    this.read = this.unread > 0 ? new Uint8Array(this.unread) : undefined;
    if (this.unread > 0) closer.register(this, fd, this);
    else this.letGo();
  }

  /** A regular file of `size` bytes open on `fd` (which PagedFile closes), read as it is searched. */
  static open(fd: number, size: number, file: string): PagedFile {
    // not zeroed: a page nobody reads is never touched, so it costs no fault
    return new PagedFile(Buffer.allocUnsafeSlow(size), file, fd);
  }

  /** Makes bytes [pos, pos + len) (those below `size`) readable in `bytes`. */
  need(pos: number, len: number): void {
    if (this.read === undefined) return;
    const last = Math.min(pos + len, this.size) - 1;
    for (let c = Math.floor(pos / CHUNK); c * CHUNK <= last; c++) {
      if (this.read !== undefined && this.read[c] === 0) this.readChunk(c);
    }
  }

  /** the offset of the first NUL at or after `pos`, or -1 before the end of the file */
  indexOfNul(pos: number): number {
    for (let from = pos; from < this.size; from = (Math.floor(from / CHUNK) + 1) * CHUNK) {
      const end = Math.min((Math.floor(from / CHUNK) + 1) * CHUNK, this.size);
      this.need(from, end - from);
      const at = this.bytes.indexOf(0, from);
      if (at >= 0 && at < end) return at;
      if (at < 0 && this.read === undefined) return -1;
    }
    return -1;
  }

  private readChunk(c: number): void {
    const at = c * CHUNK;
    const want = Math.min(CHUNK, this.size - at);
    let got = 0;
    try {
      while (got < want) {
        const n = readSync(this.fd, this.bytes, at + got, want - got, at + got);
        if (n === 0) break;
        got += n;
      }
    } catch (err) {
      throw new FormatError(this.file, `cannot be read at offset ${at + got} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    this.read![c] = 1;
    this.unread--;
    if (got < want) {
      // a file cut short since its fstat: its end is where the reads found it
      this.size = at + got;
      this.unread = 0;
      for (let k = 0; k * CHUNK < this.size; k++) this.unread += this.read![k] === 0 ? 1 : 0;
    }
    if (this.unread === 0) this.letGo();
  }

  /** Lets the descriptor go before every chunk is read: what is not read reads as the end of the file. */
  close(): void {
    if (this.unread > 0) this.size = 0;
    this.letGo();
  }

  /** every chunk is in (or the file was cut short): the descriptor is no longer needed */
  private letGo(): void {
    this.read = undefined;
    this.unread = 0;
    if (this.fd < 0) return;
    closer.unregister(this);
    closeSync(this.fd);
    this.fd = -1;
  }
}
