// The scans a scan cache writer adds while the new file's import dictionary is the run's own (no cache
// was read: a first run, or a re-indexing whose cache is gone): their texts and numbers go, as they come
// in, into large chunks in the file's own layout (scan-cache-format.ts), their records into one array.
// A file of exactly these entries, in order, is then written from the chunks in a few writes; before,
// each entry was a Buffer and a record of its own, put out part by part at the end (~18 ms of the main
// thread for Debian's full tree, after the index files), and the collector carried thousands of
// small objects through the run (docs/decisions.md, session 16).
import { ALIAS_TEXT, ALIASES, AT, ERRNO, EXPORTS, FLAGS, IMPORTS, KEY_BYTES, LINE_BYTES, RECORD_WORDS, SOFTDEPS, TEXT_BYTES, WEAKDEPS, keyCount, numbersBytes } from './scan-cache-format';
import { storedImports, type StoredEntry } from './scan-cache';

/** bytes of a chunk; a larger piece gets a chunk of its own */
const CHUNK = 1 << 20;

/**
 * Bytes appended piece by piece. A piece never spans two chunks, and the chunks' used parts, one after
 * the other, are the pieces in order.
 */
class Section {
  private readonly chunks: Buffer[] = [];
  /** each chunk as 64-bit floats and as 32-bit words (made with it: no view per piece) */
  readonly floats: Float64Array[] = [];
  readonly words: Uint32Array[] = [];
  /** bytes used of each chunk */
  private readonly used: number[] = [];
  /** all pieces' bytes */
  bytes = 0;
  /** where reserve() put the last piece: its chunk (an index into chunks) and the offset there */
  chunk = -1;
  at = 0;

  /** room for n bytes (n a multiple of 8 keeps every piece 8-aligned), at this.chunk / this.at */
  reserve(n: number): Buffer {
    let k = this.chunks.length - 1;
    if (k < 0 || this.used[k] + n > this.chunks[k].length) {
      // a multiple of 8 bytes, so that the views cover it whole
      const chunk = Buffer.allocUnsafeSlow(Math.max(CHUNK, (n + 7) & ~7));
      this.chunks.push(chunk);
      this.floats.push(new Float64Array(chunk.buffer, chunk.byteOffset, chunk.length >>> 3));
      this.words.push(new Uint32Array(chunk.buffer, chunk.byteOffset, chunk.length >>> 2));
      this.used.push(0);
      k++;
    }
    this.chunk = k;
    this.at = this.used[k];
    this.used[k] += n;
    this.bytes += n;
    return this.chunks[k];
  }

  /** the piece of n bytes at `at` of chunk k */
  piece(k: number, at: number, n: number): Uint8Array {
    const c = this.chunks[k];
    return new Uint8Array(c.buffer, c.byteOffset + at, n);
  }

  /** the used part of every chunk, in order */
  parts(): Uint8Array[] {
    const out: Uint8Array[] = new Array(this.chunks.length);
    for (let k = 0; k < this.chunks.length; k++) out[k] = this.piece(k, 0, this.used[k]);
    return out;
  }
}

/** what an added scan stores: its record's counts, its strings (binary, joined by NULs), pieces and numbers */
export interface SectionEntry {
  aliases: number;
  softdeps: number;
  weakdeps: number;
  exports: number;
  imports: number;
  errno: number;
  aliasTextBytes: number;
  flags: number;
  /** the aliases' text (if stored) and the other strings, joined */
  strings: string;
  lines: Uint8Array;
  keys: Uint8Array;
  exportCrcs: Float64Array;
  /** the imports' references into the new file's dictionary (final) */
  refs: Uint32Array;
  keyLengths: Uint32Array | undefined;
}

/** where each entry's pieces are: text chunk, text offset, numbers chunk, numbers offset */
const WHERE_WORDS = 4;

export class CacheSections {
  readonly texts = new Section();
  readonly numbers = new Section();
  private records: Uint32Array = new Uint32Array(RECORD_WORDS * 1024);
  private where: Uint32Array = new Uint32Array(WHERE_WORDS * 1024);
  /** entries added */
  count = 0;

  /** Adds an entry; returns its number. */
  add(e: SectionEntry): number {
    const i = this.count;
    if (RECORD_WORDS * (i + 1) > this.records.length) {
      this.records = grown(this.records);
      this.where = grown(this.where);
    }
    const textBytes = e.strings.length + e.lines.length + e.keys.length;
    const t = this.texts.reserve(textBytes);
    const tat = this.texts.at;
    t.write(e.strings, tat, 'latin1');
    t.set(e.lines, tat + e.strings.length);
    t.set(e.keys, tat + e.strings.length + e.lines.length);
    const keyLengthCount = e.keyLengths === undefined ? 0 : e.keyLengths.length;
    const size = numbersBytes(e.exports, e.imports, keyLengthCount);
    // the numbers' offset in the file's block is theirs in this section
    const blockAt = this.numbers.bytes;
    this.numbers.reserve(size);
    const c = this.numbers.chunk;
    const bat = this.numbers.at;
    // (bat is 8-aligned: every piece is a multiple of 8 bytes)
    const words = this.numbers.words[c];
    this.numbers.floats[c].set(e.exportCrcs, bat >>> 3);
    const refsAt = (bat >>> 2) + 2 * e.exports;
    words.set(e.refs, refsAt);
    if (e.keyLengths !== undefined) words.set(e.keyLengths, refsAt + e.imports);
    // the padding: none or one word
    if (4 * (refsAt + e.imports + keyLengthCount) < bat + size) words[refsAt + e.imports + keyLengthCount] = 0;
    const r = RECORD_WORDS * i;
    const rec = this.records;
    rec[r + TEXT_BYTES] = textBytes;
    rec[r + ALIASES] = e.aliases;
    rec[r + SOFTDEPS] = e.softdeps;
    rec[r + WEAKDEPS] = e.weakdeps;
    rec[r + EXPORTS] = e.exports;
    rec[r + IMPORTS] = e.imports;
    rec[r + AT] = blockAt;
    rec[r + ERRNO] = e.errno;
    rec[r + ALIAS_TEXT] = e.aliasTextBytes;
    rec[r + LINE_BYTES] = e.lines.length;
    rec[r + KEY_BYTES] = e.keys.length;
    rec[r + FLAGS] = e.flags;
    const w = WHERE_WORDS * i;
    this.where[w] = this.texts.chunk;
    this.where[w + 1] = tat;
    this.where[w + 2] = this.numbers.chunk;
    this.where[w + 3] = bat;
    this.count++;
    return i;
  }

  /** every entry's record, in order, each with where its numbers start in the file's block */
  allRecords(): Uint32Array {
    return this.records.subarray(0, RECORD_WORDS * this.count);
  }

  /** entry i as StoredEntry's views of the chunks (for a file that holds other entries too) */
  stored(i: number): StoredEntry {
    const record = this.records.subarray(RECORD_WORDS * i, RECORD_WORDS * (i + 1));
    const w = WHERE_WORDS * i;
    const e = record[EXPORTS];
    const n = record[IMPORTS];
    const p = keyCount(record, 0);
    const numbers = this.numbers.piece(this.where[w + 2], this.where[w + 3], numbersBytes(e, n, p));
    const at = numbers.byteOffset;
    return {
      record,
      text: this.texts.piece(this.where[w], this.where[w + 1], record[TEXT_BYTES]),
      exportCrcs: new Uint8Array(numbers.buffer, at, 8 * e),
      keyLengths: new Uint8Array(numbers.buffer, at + 8 * e + 4 * n, 4 * p),
      imports: storedImports(new Uint32Array(numbers.buffer, at + 8 * e, n), null),
    };
  }
}

function grown(a: Uint32Array): Uint32Array {
  const b = new Uint32Array(2 * a.length);
  b.set(a);
  return b;
}
