// A scan taken from depmod's scan cache (scan-cache.ts): its strings are decoded when it is taken, but
// its numbers (typed arrays over the cache file's buffer) and its alias pieces are made only when they
// are read. A run keeps thousands of scans from the scan until their imports are resolved: views made
// at the start lived through every young-generation collection of the run (each one copied them),
// while views made where they are read die young, which costs the collector nothing.
//
// Its imports are references into the cache's import dictionary (import-dictionary.ts), which
// dep-graph.ts resolves once per distinct import; the scan's own import arrays (ModuleScan's) are made
// from them only where something asks for them.
import type { AliasPieces } from './alias-files';
import { REF_INDEX, WEAK_REF, type ImportDictionary } from './import-dictionary';
import type { ModuleScan } from './module-scan';
import { JoinedExportsScan } from './scan-store';
import type { ExportBatch } from './owned-symbols';
import type { Mod } from './run-context';

/** the numbers of one entry: where they are in the block and how many there are */
export interface CachedNumbers {
  block: ArrayBuffer;
  /** byte offset of the entry's numbers in block: export CRCs, import references, alias key lengths */
  at: number;
  exports: number;
  imports: number;
  /** alias keys */
  keys: number;
  dictionary: ImportDictionary;
}

export class CachedScan extends JoinedExportsScan implements ModuleScan {
  /**
   * `exports` as strings, or undefined for them as the cache holds them: NUL-joined bytes in `texts`
   * (their number checked when the cache was loaded), so that a run that only gathers them for the
   * addon's table (symbols.ts) makes no string of them.
   */
  constructor(
    aliases: string[],
    softdeps: string[],
    weakdeps: string[],
    exports: string[] | undefined,
    private readonly n: CachedNumbers,
    /** with exports undefined: the buffer holding them, where they start and their bytes */
    private readonly texts?: Buffer,
    private readonly exportsAt = 0,
    private readonly exportBytes = 0,
  ) {
    super(aliases, softdeps, weakdeps, exports);
  }

  protected splitExports(): string[] {
    return this.texts!.toString('latin1', this.exportsAt, this.exportsAt + this.exportBytes).split('\0');
  }

  protected addJoinedExports(batch: ExportBatch, mod: Mod): void {
    batch.addBytes(this.texts!, this.exportsAt, this.exportBytes, this.n.exports, mod);
  }

  get exportCrcs(): Float64Array {
    return new Float64Array(this.n.block, this.n.at, this.n.exports);
  }

  /** its imports as references into `importDictionary` (the top bit: weak) */
  get importRefs(): Uint32Array {
    return new Uint32Array(this.n.block, this.n.at + 8 * this.n.exports, this.n.imports);
  }
  /** the block holding importRefs, and where they are in it (in 32-bit words): no view made */
  get importBlock(): ArrayBuffer {
    return this.n.block;
  }
  get importRefsAt(): number {
    return (this.n.at + 8 * this.n.exports) >>> 2;
  }
  get importCount(): number {
    return this.n.imports;
  }
  get importDictionary(): ImportDictionary {
    return this.n.dictionary;
  }

  // ModuleScan's import arrays, made from the references
  get importCrcs(): Float64Array {
    const d = this.n.dictionary;
    return Float64Array.from(this.importRefs, (ref) => d.crcs[ref & REF_INDEX]);
  }
  get importKeys(): Int32Array {
    const d = this.n.dictionary;
    return Int32Array.from(this.importRefs, (ref) => d.keys[ref & REF_INDEX]);
  }
  get importLengths(): Uint32Array {
    const d = this.n.dictionary;
    return Uint32Array.from(this.importRefs, (ref) => d.lengths[ref & REF_INDEX]);
  }
  get importWeak(): Uint8Array {
    return Uint8Array.from(this.importRefs, (ref) => ((ref & WEAK_REF) !== 0 ? 1 : 0));
  }
  get importNames(): Uint8Array {
    const d = this.n.dictionary;
    const refs = this.importRefs;
    const lengths = this.importLengths;
    let bytes = 0;
    for (const len of lengths) bytes += len + 1;
    const names = new Uint8Array(Math.max(0, bytes - 1));
    for (let j = 0, at = 0; j < refs.length; at += lengths[j] + 1, j++) {
      const k = refs[j] & REF_INDEX;
      names.set(d.names.subarray(d.starts[k], d.starts[k] + lengths[j]), at);
    }
    return names;
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

  // plain Uint8Array views: Buffer.subarray costs more (it looks up the species constructor)
  get lines(): Uint8Array {
    return new Uint8Array(this.texts.buffer, this.texts.byteOffset + this.linesAt, this.lineBytes);
  }
  get keys(): Uint8Array {
    return new Uint8Array(this.texts.buffer, this.texts.byteOffset + this.linesAt + this.lineBytes, this.keyBytes);
  }
  get keyLengths(): Uint32Array {
    const { at, exports: e, imports: n } = this.n;
    return new Uint32Array(this.n.block, at + 8 * e + 4 * n, this.n.keys);
  }

  /** AliasPieces.placeRow: no view made (the lines, then the keys, in texts; the lengths in the block) */
  placeRow(rows: Uint32Array, at: number, source: (buffer: ArrayBufferLike) => number): void {
    const { at: numbersAt, exports: e, imports: n } = this.n;
    const linesAt = this.texts.byteOffset + this.linesAt;
    rows[at] = source(this.texts.buffer);
    rows[at + 1] = linesAt;
    rows[at + 2] = this.lineBytes;
    rows[at + 3] = linesAt + this.lineBytes;
    rows[at + 4] = this.keyBytes;
    rows[at + 5] = source(this.n.block);
    rows[at + 6] = numbersAt + 8 * e + 4 * n;
    rows[at + 7] = this.n.keys;
  }
}
