// The imports of all modules in depmod's scan cache (scan-cache.ts), each distinct (name, CRC) stored
// once: the tree's ~180,000 imports name only ~20,000 symbols, so an entry keeps one 32-bit reference
// per import (the weak flag in its top bit) instead of the name, its key, length and CRC. That halves
// the file, and depmod looks each distinct import up once per run instead of once per module
// (dep-graph.ts).
//
// Its part of the file: the CRCs (float64), the symbolKeys (hash.ts, int32) and the names' lengths
// (uint32) of its entries, then the names, each followed by a NUL.

/** the top bit of a reference: the import is weak */
export const WEAK_REF = 0x80000000;
/** the entry a reference names */
export const REF_INDEX = 0x7fffffff;

/** bytes of the dictionary's part of the file with `count` entries and `nameBytes` bytes of names (NULs included) */
export function dictionaryBytes(count: number, nameBytes: number): number {
  return 16 * count + nameBytes;
}

/** A dictionary read from a cache file (views of its buffer). */
export class ImportDictionary {
  private constructor(
    readonly crcs: Float64Array,
    readonly keys: Int32Array,
    readonly lengths: Uint32Array,
    readonly names: Uint8Array,
    /** where each name starts in names */
    readonly starts: Uint32Array,
  ) {}

  get size(): number {
    return this.keys.length;
  }

  /**
   * The dictionary at byte `at` (8-aligned) of `buffer`, or undefined when its names and lengths do not
   * add up (each name must end in a NUL exactly where its length says).
   */
  static parse(buffer: ArrayBuffer, at: number, count: number, nameBytes: number): ImportDictionary | undefined {
    if (at % 8 !== 0 || at + dictionaryBytes(count, nameBytes) > buffer.byteLength) return undefined;
    const crcs = new Float64Array(buffer, at, count);
    const keys = new Int32Array(buffer, at + 8 * count, count);
    const lengths = new Uint32Array(buffer, at + 12 * count, count);
    const names = new Uint8Array(buffer, at + 16 * count, nameBytes);
    const starts = new Uint32Array(count);
    let s = 0;
    for (let k = 0; k < count; k++) {
      starts[k] = s;
      s += lengths[k];
      if (s >= nameBytes || names[s] !== 0) return undefined;
      s++;
    }
    if (s !== nameBytes) return undefined;
    return new ImportDictionary(crcs, keys, lengths, names, starts);
  }

  /** entry k's name as a binary string */
  name(k: number): string {
    return Buffer.from(this.names.buffer, this.names.byteOffset, this.names.byteLength).toString('latin1', this.starts[k], this.starts[k] + this.lengths[k]);
  }
}

/** The dictionary of a cache being written. */
export class ImportDictionaryBuilder {
  private readonly index = new Map<string, number>();
  private readonly names: string[] = [];
  private readonly keys: number[] = [];
  private readonly crcs: number[] = [];

  /** the entry of `name` (a binary string) with this CRC, added if new */
  add(name: string, key: number, crc: number): number {
    // Object.is tells -0 and NaN payloads apart no better than the file does: the CRC as stored decides
    const id = `${crc}\0${name}`;
    let k = this.index.get(id);
    if (k === undefined) {
      k = this.names.length;
      this.index.set(id, k);
      this.names.push(name);
      this.keys.push(key);
      this.crcs.push(crc);
    }
    return k;
  }

  get size(): number {
    return this.names.length;
  }

  /** its part of the file */
  parts(): Uint8Array[] {
    const crcs = Float64Array.from(this.crcs);
    const keys = Int32Array.from(this.keys);
    const lengths = Uint32Array.from(this.names, (n) => n.length);
    const names = Buffer.from(this.names.length === 0 ? '' : `${this.names.join('\0')}\0`, 'latin1');
    return [crcs, keys, lengths, names].map((a) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  }
}
