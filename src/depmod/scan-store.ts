// What depmod's scan of one module gives (ModuleScan), and where the scans keep their numbers
// (ScanStore). module-scan.ts makes scans; scan-cache.ts stores and restores them.
import type { AliasPieces } from './alias-files';
import type { ExportBatch } from './owned-symbols';
import type { Mod } from './run-context';
import { releaseBuffers } from './release';

/** What depmod needs from one module. */
export interface ModuleScan {
  /**
   * modinfo values of alias=, softdep=, weakdep= (each list in .modinfo order); from the cache, the
   * aliases are left out where aliasPieces stand for them (unless one is a devname:)
   */
  aliases: string[];
  softdeps: string[];
  weakdeps: string[];
  /** exported symbol names (kmod_module_get_symbols order) and their CRCs */
  exports: string[];
  /**
   * The exports joined by NULs, where the scan holds them so (a scan made in C: native-scan.ts) and they
   * have not been made strings (or replaced) since: what the addon's symbol table and the cache writer take
   */
  readonly exportsJoined?: string;
  /**
   * Where the scan holds its exports joined (a cached scan's bytes, a C scan's text): adds them so to
   * the addon's table, without a string per name; false (nothing done) once they are strings.
   */
  gatherExports?(batch: ExportBatch, mod: Mod): boolean;
  exportCrcs: Float64Array;
  /** imported symbol names as bytes, joined by NULs (kmod_module_get_dependency_symbols order) */
  importNames: Uint8Array;
  /** the length of each import's name in importNames */
  importLengths: Uint32Array;
  importCrcs: Float64Array;
  /** 1 where the import is a weak reference */
  importWeak: Uint8Array;
  /** hash.ts symbolKey of each import's name without a leading '.' (the name symbol_find looks up) */
  importKeys: Int32Array;
  /** the aliases' share of modules.alias(.bin), ready made (from the scan cache, or by the C scan on the pool) */
  aliasPieces?: AliasPieces;
  /** errno when kmod_module_get_symbols fails (other than ENODATA), for "failed to load symbols" */
  symbolsErrno?: number;
}

/**
 * A scan that holds its exports joined (a C scan's block text: native-scan.ts; a cached entry's bytes:
 * cached-scan.ts) until something asks for them one by one (-e, -E, -v): until then gatherExports hands
 * them joined to the addon's symbol table, without a string per name.
 */
export abstract class JoinedExportsScan {
  aliasPieces?: AliasPieces;
  symbolsErrno?: number;
  /** its exports as strings once made or set; undefined while it has only the joined form */
  protected exportList: string[] | undefined;

  constructor(
    public aliases: string[],
    public softdeps: string[],
    public weakdeps: string[],
    exports: string[] | undefined,
  ) {
    this.exportList = exports;
  }

  get exports(): string[] {
    return (this.exportList ??= this.splitExports());
  }
  set exports(names: string[]) {
    this.exportList = names;
  }

  /** its exports added to `batch` in their joined form; false (nothing done) once they are strings */
  gatherExports(batch: ExportBatch, mod: Mod): boolean {
    if (this.exportList !== undefined) return false;
    this.addJoinedExports(batch, mod);
    return true;
  }

  /** the joined form made strings, one per name */
  protected abstract splitExports(): string[];
  /** the joined form added to `batch` as it is */
  protected abstract addJoinedExports(batch: ExportBatch, mod: Mod): void;
}

/** a scan's typed arrays, which ScanStore keeps together (scanNumbers) */
export type ScanNumbers = Pick<ModuleScan, 'exportCrcs' | 'importCrcs' | 'importKeys' | 'importLengths' | 'importWeak' | 'importNames'>;

/** bytes of a scan's numbers: `exports` CRCs, `imports` CRCs, keys, lengths and weak flags, `nameBytes` of names */
export function scanNumbersSize(exports: number, imports: number, nameBytes: number): number {
  return 8 * (exports + imports) + 8 * imports + imports + nameBytes;
}

/**
 * The typed arrays of a scan's numbers at `at` (8-aligned) in `ab`: CRCs first (8-aligned), then keys
 * and lengths, weak flags, names. native/module_scan.c writes its blocks' numbers in this layout too.
 */
export function scanNumbers(ab: ArrayBuffer, at: number, exports: number, imports: number, nameBytes: number): ScanNumbers {
  const e = exports;
  const n = imports;
  return {
    exportCrcs: new Float64Array(ab, at, e),
    importCrcs: new Float64Array(ab, at + 8 * e, n),
    importKeys: new Int32Array(ab, at + 8 * (e + n), n),
    importLengths: new Uint32Array(ab, at + 8 * (e + n) + 4 * n, n),
    importWeak: new Uint8Array(ab, at + 8 * (e + n) + 8 * n, n),
    importNames: new Uint8Array(ab, at + 8 * (e + n) + 9 * n, nameBytes),
  };
}

/** a scan of its strings and numbers (its fields always in this order: one object shape for every scan) */
export function makeScan(aliases: string[], softdeps: string[], weakdeps: string[], exports: string[], numbers: ScanNumbers, symbolsErrno: number, aliasPieces?: AliasPieces): ModuleScan {
  const scan: ModuleScan = {
    aliases,
    softdeps,
    weakdeps,
    exports,
    exportCrcs: numbers.exportCrcs,
    importNames: numbers.importNames,
    importLengths: numbers.importLengths,
    importCrcs: numbers.importCrcs,
    importWeak: numbers.importWeak,
    importKeys: numbers.importKeys,
    aliasPieces,
  };
  if (symbolsErrno !== 0) scan.symbolsErrno = symbolsErrno;
  return scan;
}

/** bytes of the blocks that hold the scans' numbers */
const BLOCK = 1 << 20;
const NO_BYTES = new ArrayBuffer(0);

/**
 * Room in a block: its buffer and the byte offset there (an object, not a pair to destructure:
 * unoptimized, those allocate iterators (decisions.md))
 */
export interface Room {
  buffer: ArrayBuffer;
  at: number;
}

/** room carved out of 1 MB blocks, 8-aligned; a larger request gets a block of its own */
class Blocks {
  private block = new ArrayBuffer(0);
  private used = BLOCK;
  private blocks: ArrayBuffer[] = [];
  place(bytes: number): Room {
    const size = bytes + ((8 - (bytes & 7)) & 7);
    if (size === 0) return { buffer: NO_BYTES, at: 0 };
    if (size > BLOCK) {
      const own = new ArrayBuffer(size);
      this.blocks.push(own);
      return { buffer: own, at: 0 };
    }
    if (this.used + size > BLOCK) {
      this.block = new ArrayBuffer(BLOCK);
      this.blocks.push(this.block);
      this.used = 0;
    }
    const at = this.used;
    this.used += size;
    return { buffer: this.block, at };
  }
  /** the blocks, which this no longer carves from */
  takeAll(): ArrayBuffer[] {
    const all = this.blocks;
    this.blocks = [];
    this.used = BLOCK;
    return all;
  }
}

/**
 * Where scans keep their numbers: their typed arrays are views of a few large blocks rather than
 * thousands of small buffers of their own, which live as long as the scans do and, scattered among the
 * short-lived buffers of decompression, kept the allocator from reusing its memory (about 20 MB more
 * at depmod's peak). release() frees them all at once, without waiting for a full collection.
 */
export class ScanStore {
  private readonly numbers = new Blocks();
  /** placeLasting's, which release() leaves to the collector */
  private readonly lasting = new Blocks();
  /** room for `bytes` (8-aligned) */
  place(bytes: number): Room {
    return this.numbers.place(bytes);
  }
  /** room for `bytes` (8-aligned) that outlives release(): what the run needs after the scans (alias pieces) */
  placeLasting(bytes: number): Room {
    return this.lasting.place(bytes);
  }
  /** Frees the numbers of every scan kept here (their typed arrays become empty); resolves once freed. */
  release(): Promise<void> {
    return releaseBuffers(this.numbers.takeAll());
  }
}
