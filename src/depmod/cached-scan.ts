// A scan taken from depmod's scan cache (scan-cache.ts): its strings are decoded when it is taken, but
// its numbers (typed arrays over the cache file's buffer) and its alias pieces are made only when they
// are read. A run keeps thousands of scans from the scan until their imports are resolved: views made
// at the start lived through every young-generation collection of the run (each one copied them),
// while views made where they are read die young, which costs the collector nothing.
import type { AliasPieces } from './alias-files';
import type { ModuleScan } from './module-scan';

/** the numbers of one entry: where they are in the block and how many there are */
export interface CachedNumbers {
  block: ArrayBuffer;
  /** byte offset of the entry's numbers in block */
  at: number;
  exports: number;
  imports: number;
  /** bytes of the import names */
  names: number;
  /** alias keys (alias key lengths stored between the import lengths and the weak flags) */
  keys: number;
}

export class CachedScan implements ModuleScan {
  aliasPieces?: AliasPieces;
  symbolsErrno?: number;

  constructor(
    public aliases: string[],
    public softdeps: string[],
    public weakdeps: string[],
    public exports: string[],
    private readonly n: CachedNumbers,
  ) {}

  get exportCrcs(): Float64Array {
    return new Float64Array(this.n.block, this.n.at, this.n.exports);
  }
  get importCrcs(): Float64Array {
    return new Float64Array(this.n.block, this.n.at + 8 * this.n.exports, this.n.imports);
  }
  get importKeys(): Int32Array {
    const { at, exports: e, imports: n } = this.n;
    return new Int32Array(this.n.block, at + 8 * (e + n), n);
  }
  get importLengths(): Uint32Array {
    const { at, exports: e, imports: n } = this.n;
    return new Uint32Array(this.n.block, at + 8 * (e + n) + 4 * n, n);
  }
  get importWeak(): Uint8Array {
    const { at, exports: e, imports: n, keys: p } = this.n;
    return new Uint8Array(this.n.block, at + 8 * (e + n) + 8 * n + 4 * p, n);
  }
  get importNames(): Uint8Array {
    const { at, exports: e, imports: n, keys: p } = this.n;
    return new Uint8Array(this.n.block, at + 8 * (e + n) + 9 * n + 4 * p, this.n.names);
  }
}

/** An entry's alias pieces, made when read (alias-files.ts reads each once or twice). */
export class CachedAliasPieces implements AliasPieces {
  constructor(
    private readonly texts: Buffer,
    /** offset of the lines in texts; the keys follow them */
    private readonly linesAt: number,
    private readonly lineBytes: number,
    private readonly keyBytes: number,
    private readonly n: CachedNumbers,
  ) {}

  get lines(): Uint8Array {
    return this.texts.subarray(this.linesAt, this.linesAt + this.lineBytes);
  }
  get keys(): Uint8Array {
    return this.texts.subarray(this.linesAt + this.lineBytes, this.linesAt + this.lineBytes + this.keyBytes);
  }
  get keyLengths(): Uint32Array {
    const { at, exports: e, imports: n } = this.n;
    return new Uint32Array(this.n.block, at + 8 * (e + n) + 8 * n, this.n.keys);
  }
}
