// The imports of all modules in depmod's scan cache (scan-cache.ts), each distinct (name, CRC) stored
// once: the tree's ~180,000 imports name only ~20,000 symbols, so an entry keeps one 32-bit reference
// per import (the weak flag in its top bit) instead of the name, its key, length and CRC. That halves
// the file, and depmod looks each distinct import up once per run instead of once per module
// (dep-graph.ts).
//
// Its part of the file: the CRCs (float64), the symbolKeys (hash.ts, int32) and the names' lengths
// (uint32) of its entries, then the names, each followed by a NUL.

import { nativeFunction, type NativeImportDictionaryFns } from '../native-addon';

/** the top bit of a reference: the import is weak */
export const WEAK_REF = 0x80000000;
/** the entry a reference names */
export const REF_INDEX = 0x7fffffff;

/** bytes of the dictionary's part of the file with `count` entries and `nameBytes` bytes of names (NULs included) */
export function dictionaryBytes(count: number, nameBytes: number): number {
  return 16 * count + nameBytes;
}

/** lookups among seed()'s entries by search before they are indexed (each searches ~20,000 keys) */
const SEARCHES_BEFORE_INDEX = 512;

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

  /** the names as one binary string, made on the first name() */
  private text: string | undefined;

  /** entry k's name, as a binary string (a slice of one string of all the names: none made per name) */
  name(k: number): string {
    this.text ??= Buffer.from(this.names.buffer, this.names.byteOffset, this.names.length).toString('latin1');
    return this.text.slice(this.starts[k], this.starts[k] + this.lengths[k]);
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

  /** the dictionary of these arrays (a builder's: ImportDictionaryBuilder.view) */
  static of(crcs: Float64Array, keys: Int32Array, lengths: Uint32Array, names: Uint8Array): ImportDictionary {
    const starts = new Uint32Array(lengths.length);
    for (let k = 0, s = 0; k < lengths.length; s += lengths[k] + 1, k++) starts[k] = s;
    return new ImportDictionary(crcs, keys, lengths, names, starts);
  }
}

/** names[at, at + lengths[j]) for name j: the names lie one after the other, a NUL between each and the next */
function eachName(lengths: Uint32Array, visit: (j: number, start: number, end: number) => void): void {
  for (let j = 0, at = 0; j < lengths.length; at += lengths[j] + 1, j++) visit(j, at, at + lengths[j]);
}

/**
 * The dictionary of a cache being written: in the addon (native/import_dictionary.c, a hash table in C;
 * ~200 ms of JavaScript on Debian's full tree) or, without it, in JavaScript (JsImportDictionary).
 */
export class ImportDictionaryBuilder {
  private readonly native: { dict: object; add: NativeImportDictionaryFns['importDictionaryAdd']; parts: NativeImportDictionaryFns['importDictionaryParts'] } | undefined;
  private readonly js: JsImportDictionary | undefined;
  private count = 0;
  /** where its table lives */
  readonly engine: 'addon' | 'javascript';

  /** `useAddon` false: the JavaScript builder even where the addon has one (tests compare them) */
  constructor(useAddon = true) {
    const create = useAddon ? nativeFunction('importDictionaryNew') : null;
    const add = nativeFunction('importDictionaryAdd');
    const parts = nativeFunction('importDictionaryParts');
    if (create !== null && add !== null && parts !== null) this.native = { dict: create(), add, parts };
    else this.js = new JsImportDictionary();
    this.engine = this.native !== undefined ? 'addon' : 'javascript';
  }

  get size(): number {
    return this.count;
  }

  /**
   * The references of the names (lengths[j] bytes each, one after the other in `names` with a NUL
   * between them) with these symbolKeys and CRCs, each added if new, WEAK_REF set where weak[j] is 1.
   * Where `select` is given and select[j] is 0, name j is passed over and its reference is 0xffffffff.
   */
  addAll(names: Uint8Array, lengths: Uint32Array, keys: Int32Array, crcs: Float64Array, weak: Uint8Array | null, select: Uint8Array | null = null): Uint32Array {
    const refs = new Uint32Array(lengths.length);
    if (this.native !== undefined) {
      this.count = this.native.add(this.native.dict, names, lengths, keys, crcs, weak, select, refs);
      return refs;
    }
    // the addon's checks, before anything is added
    if (keys.length !== lengths.length || crcs.length !== lengths.length) throw new RangeError('importDictionaryAdd: lengths, keys, crcs and refs differ in length');
    if ((weak !== null && weak.length < lengths.length) || (select !== null && select.length < lengths.length)) throw new RangeError('importDictionaryAdd: weak or select shorter than the names');
    eachName(lengths, (_j, _start, end) => {
      if (end > names.length) throw new RangeError('importDictionaryAdd: a name runs past the names');
    });
    const js = this.js!;
    eachName(lengths, (j, start, end) => {
      if (select !== null && select[j] === 0) refs[j] = 0xffffffff;
      else refs[j] = (js.add(names, start, end, keys[j], crcs[j]) | (weak !== null && weak[j] === 1 ? WEAK_REF : 0)) >>> 0;
    });
    this.count = js.size;
    return refs;
  }

  /**
   * Starts as `d`'s entries, in its order (their indices unchanged), so that a new cache can keep an old
   * one's references as they are. Only an empty builder can be seeded. False when the addon's builder
   * finds an entry of `d` twice (no cache this writer wrote has one): that builder is then unusable.
   * (The JavaScript one keeps both: lookups find the first.)
   */
  seed(d: ImportDictionary): boolean {
    if (this.count !== 0) throw new Error('import dictionary: seeded after entries were added');
    if (this.js !== undefined) {
      this.js.seed(d);
      this.count = d.size;
      return true;
    }
    const refs = this.addAll(d.names, d.lengths, d.keys, d.crcs, null);
    for (let k = 0; k < refs.length; k++) if (refs[k] !== k) return false;
    return true;
  }

  /** its CRCs, keys, name lengths and names as they are now */
  private arrays(): [Float64Array, Int32Array, Uint32Array, Uint8Array] {
    return this.native !== undefined ? this.native.parts(this.native.dict) : this.js!.parts();
  }

  /** its entries as they are now, to be looked up (dep-graph.ts); entries added later are not in it */
  view(): ImportDictionary {
    return ImportDictionary.of(...this.arrays());
  }

  /** its part of the file */
  parts(): Uint8Array[] {
    return this.arrays().map((a) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  }
}

/**
 * The builder without the addon: names kept as bytes and found by their symbolKey and a comparison of
 * bytes, so that adding the imports of thousands of scans makes no string for any.
 */
class JsImportDictionary {
  /** the first entry with each symbolKey; `next` chains the others */
  private readonly byKey = new Map<number, number>();
  private next: Int32Array = new Int32Array(1024);
  private names: Buffer = Buffer.allocUnsafe(1 << 16);
  private used = 0;
  private starts: Uint32Array = new Uint32Array(1024);
  private lengths: Uint32Array = new Uint32Array(1024);
  private keys: Int32Array = new Int32Array(1024);
  private crcs: Float64Array = new Float64Array(1024);
  private count = 0;

  get size(): number {
    return this.count;
  }

  /**
   * the keys of the entries seed() gave, while they are not in byKey: a new cache that adds the imports
   * of one or two modules finds them by a search of these (Int32Array indexOf, in C++) rather than
   * putting ~20,000 entries into byKey first; after SEARCHES_BEFORE_INDEX searches they are put there
   */
  private seeded: Int32Array | undefined;
  private searches = 0;

  /** is entry k the name bytes[start, start + len) with this CRC? */
  private matches(k: number, bytes: Uint8Array, start: number, len: number, crc: number): boolean {
    // the same CRC (NaN, which no comparison finds equal, included)
    if ((this.crcs[k] !== crc && !(Number.isNaN(crc) && Number.isNaN(this.crcs[k]))) || this.lengths[k] !== len) return false;
    const at = this.starts[k];
    let j = 0;
    while (j < len && this.names[at + j] === bytes[start + j]) j++;
    return j === len;
  }

  /** the entry of the name bytes[start, end) with this symbolKey and CRC, added if new */
  add(bytes: Uint8Array, start: number, end: number, key: number, crc: number): number {
    const len = end - start;
    for (let k = this.byKey.get(key) ?? -1; k >= 0; k = this.next[k]) if (this.matches(k, bytes, start, len, crc)) return k;
    const seeded = this.seeded;
    if (seeded !== undefined) {
      if (++this.searches > SEARCHES_BEFORE_INDEX) {
        this.index(seeded.length);
        return this.add(bytes, start, end, key, crc);
      }
      for (let k = seeded.indexOf(key); k >= 0; k = seeded.indexOf(key, k + 1)) if (this.matches(k, bytes, start, len, crc)) return k;
    }
    const k = this.count++;
    if (k === this.keys.length) this.grow();
    if (this.used + len + 1 > this.names.length) {
      const bigger = Buffer.allocUnsafe(2 * (this.used + len + 1));
      this.names.copy(bigger, 0, 0, this.used);
      this.names = bigger;
    }
    this.names.set(bytes.subarray(start, end), this.used);
    this.names[this.used + len] = 0;
    this.starts[k] = this.used;
    this.used += len + 1;
    this.lengths[k] = len;
    this.keys[k] = key;
    this.crcs[k] = crc;
    this.next[k] = this.byKey.get(key) ?? -1;
    this.byKey.set(key, k);
    return k;
  }

  /** starts as `d`'s entries, in its order (ImportDictionaryBuilder.seed) */
  seed(d: ImportDictionary): void {
    const n = d.size;
    while (this.keys.length < n) this.grow();
    this.crcs.set(d.crcs);
    this.keys.set(d.keys);
    this.lengths.set(d.lengths);
    this.starts.set(d.starts);
    if (d.names.length > this.names.length) this.names = Buffer.allocUnsafe(2 * d.names.length);
    this.names.set(d.names, 0);
    this.used = d.names.length;
    this.count = n;
    this.seeded = n === 0 ? undefined : this.keys.subarray(0, n);
  }

  /** entries 0..n-1 (seed()'s) put into byKey */
  private index(n: number): void {
    this.seeded = undefined;
    for (let k = 0; k < n; k++) {
      const key = this.keys[k];
      this.next[k] = this.byKey.get(key) ?? -1;
      this.byKey.set(key, k);
    }
  }

  private grow(): void {
    const n = 2 * this.keys.length;
    const grown = <T extends Int32Array | Uint32Array | Float64Array>(a: T, make: (n: number) => T): T => {
      const b = make(n);
      b.set(a as never);
      return b;
    };
    this.next = grown(this.next, (m) => new Int32Array(m));
    this.starts = grown(this.starts, (m) => new Uint32Array(m));
    this.lengths = grown(this.lengths, (m) => new Uint32Array(m));
    this.keys = grown(this.keys, (m) => new Int32Array(m));
    this.crcs = grown(this.crcs, (m) => new Float64Array(m));
  }

  /** its arrays as the file has them */
  parts(): [Float64Array, Int32Array, Uint32Array, Uint8Array] {
    const n = this.count;
    return [this.crcs.subarray(0, n), this.keys.subarray(0, n), this.lengths.subarray(0, n), this.names.subarray(0, this.used)];
  }
}
