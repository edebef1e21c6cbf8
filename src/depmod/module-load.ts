// Scanning the modules of a depmod run, with the cache of earlier runs' scans (scan-cache.ts): a module
// whose file has the stat its cached scan was made from is not read again; the others are read and
// scanned on the scan threads (scan-pool.ts). Every module's stat is taken before its file is read, so
// that an entry never describes a file newer than its key: by stat() where the cache is looked up, and,
// in a run without a cache whose pool reads with the addon, by the reading thread, which fstat()s the
// file it opened before reading it (no stat() of its own for each of the tree's files).
import * as fs from '../file/binary-os';
import { LOG_ERR } from '../log';
import { ENODATA, strerror } from '../errno';
import { ScanStore, type ModuleScan } from './module-scan';
import { startScanPool, type ScanPool } from './scan-pool';
import { decodesOffThread } from '../file/read-decode';
import { SCAN_CACHE_FILE, ScanCache, ScanCacheWriter } from './scan-cache';
import { ImportDictionaryBuilder, type ImportDictionary } from './import-dictionary';
import { keyOf, statKey, statKeys, statKeysInBackground } from './stat-keys';
import type { Mod, RunContext } from './run-context';
import { WalkRecord } from './walk-record';
import { loadFailureMessages } from './load-failure';

/**
 * how many modules to scan before worker threads are worth their start-up (below: on this thread); libuv's
 * thread pool (the addon's decoder) costs no start-up and serves any number
 */
const THREADS_FROM = 64;

/**
 * how many modules to scan before their imports are put in one dictionary as they come in, so that each
 * distinct import is looked up once (dep-graph.ts): Debian's full tree has ~180,000 imports of ~20,000
 * symbols. A few modules' imports are looked up one by one.
 */
const RUN_DICTIONARY_FROM = 64;

/** What the cache did in a run (for tests and benchmarks). */
export interface ScanCacheStats {
  /** a cache file was there and could be used */
  loaded: boolean;
  /** modules taken from it */
  hits: number;
  /** modules read and scanned */
  scanned: number;
  /** the cache was written at the end */
  written: boolean;
  /** directories the walk listed, and those it took from the walk record instead (walk-record.ts) */
  dirsListed: number;
  dirsRecalled: number;
}

export class ModuleScanner {
  private pool: ScanPool | undefined;
  private cache: ScanCache | undefined;
  /** the cache being read (on the thread pool, while the tree is walked) */
  private readonly cacheLoading: Promise<ScanCache | undefined> | undefined;
  private readonly writer: ScanCacheWriter | undefined;
  /** stats taken during the walk, before the file was read ahead */
  private readonly stats = new Map<string, Uint32Array | undefined>();
  /** where the scans keep their numbers, until their imports are resolved */
  private readonly store = new ScanStore();
  readonly cacheStats: ScanCacheStats = { loaded: false, hits: 0, scanned: 0, written: false, dirsListed: 0, dirsRecalled: 0 };
  /** the record of the last walk's directory listings, read with the cache's first lines, for the walk (tree-walk.ts) */
  readonly walkRecord: WalkRecord | undefined;
  /** the dictionary of the imports of the modules scanned in this run (their Mod.importRefs), once they are all in */
  runImports: ImportDictionary | undefined;

  /**
   * Started before the walk: starts reading the cache, or, without one, starts the scan threads so that
   * their start-up overlaps the walk and they read the first modules found ahead. (A cache file that
   * turns out unusable leaves the threads to be started after the walk.)
   */
  constructor(private readonly ctx: RunContext, useCache: boolean) {
    if (useCache) {
      const file = `${ctx.outdirname}/${SCAN_CACHE_FILE}`;
      const head = ScanCache.readHead(file);
      if (head !== undefined) this.cacheLoading = ScanCache.loadInBackground(file, head.lines);
      this.walkRecord = WalkRecord.open(head?.walkRecord);
      // only a re-indexing keeps a cache: a first indexing of a fresh tree (mkinitramfs's depmod -b of
      // the image it is building, a one-off tree) leaves none behind to be packed with it
      const reindexing = fs.existsSync(file) || fs.existsSync(`${ctx.outdirname}/modules.dep`);
      if (ctx.opts.dryRun !== true && reindexing) this.writer = new ScanCacheWriter(true, this.walkRecord);
    }
    if (this.cacheLoading === undefined) this.pool = this.startPool(ctx.opts.threads);
  }

  private startPool(threads: number | undefined): ScanPool {
    const progress = this.ctx.opts.onProgress;
    // counted over all modules, those from the cache done first
    return startScanPool({ threads, onProgress: progress && ((done) => progress(this.cacheStats.hits + done, this.total)) });
  }

  /** the number of modules of the run */
  private total = 0;

  /**
   * a module file found by the walk: read ahead on a scan thread if the pool takes it, its stat taken
   * first for the cache (the others' stats are taken on the thread pool after the walk: statInBackground)
   */
  readonly readAhead = (path: string): void => {
    if (this.pool === undefined) return;
    this.pool.readAhead(path, this.writer === undefined || this.keysFromReads() ? undefined : () => this.stats.set(path, statKey(path)));
  };

  /**
   * whether the stat keys come with the reads, taken by the thread that read each file between opening
   * and reading it (a run without a cache, on a pool that gives them): no stat() of its own is needed
   */
  private keysFromReads(): boolean {
    return this.cacheLoading === undefined && this.pool !== undefined && this.pool.statKeysFromReads;
  }

  /** the stat keys of the walk's modules being taken on the thread pool (undefined: that failed) */
  private background: { mods: Mod[]; keys: Promise<Uint32Array | undefined> } | undefined;

  /**
   * After the walk: the stat keys of its modules (those not stat()ed during it) are taken on the thread
   * pool while this thread reads the cache and orders the modules. Every stat is still taken before
   * its module's file is read.
   */
  statInBackground(modules: Iterable<Mod>): void {
    if (this.cacheLoading === undefined && (this.writer === undefined || this.keysFromReads())) return;
    const mods: Mod[] = [];
    const paths: string[] = [];
    // (by module, not by path: a run that keeps its cache looks no path up here; the walk's stats are
    // few. The modules spread first: a for-of over a map's values makes a result object per module.)
    const all = [...modules];
    for (let k = 0; k < all.length; k++) {
      const m = all[k];
      if (this.stats.size > 0 && this.stats.has(m.path)) continue;
      mods.push(m);
      paths.push(m.path);
    }
    this.background = { mods, keys: statKeysInBackground(paths).catch(() => undefined) };
  }

  /** the modules' stat keys: those taken in the background or during the walk, the others in one batch */
  private async statsOf(modules: Mod[]): Promise<(Uint32Array | undefined)[]> {
    if (this.cache === undefined && (this.writer === undefined || this.keysFromReads())) return [];
    const out = new Array<Uint32Array | undefined>(modules.length);
    // which of `modules` have their key in `out`
    const found = new Uint8Array(modules.length);
    if (this.background !== undefined) {
      const { mods, keys } = this.background;
      this.background = undefined;
      const words = await keys;
      // (a module's idx is its place in the module array, which `modules` is)
      if (words !== undefined) {
        for (let k = 0; k < mods.length; k++) {
          const i = mods[k].idx;
          if (modules[i] !== mods[k]) continue;
          out[i] = keyOf(words, k);
          found[i] = 1;
        }
      }
    }
    const missing: string[] = [];
    for (let i = 0; i < modules.length; i++) {
      if (found[i] === 1) continue;
      const path = modules[i].path;
      if (this.stats.has(path)) {
        out[i] = this.stats.get(path);
        found[i] = 1;
      } else missing.push(path);
    }
    if (missing.length === 0) return out;
    const keys = statKeys(missing);
    for (let i = 0, next = 0; i < modules.length; i++) if (found[i] === 0) out[i] = keyOf(keys, next++);
    return out;
  }

  /**
   * Scans every module, from the cache where it can. As each scan comes in (in no particular order),
   * `take` gets it; the "failed to load symbols" messages are given afterwards, in module order.
   * `whileScanning` runs once the scan threads are at work.
   */
  async scan(modules: Mod[], take: (mod: Mod, scan: ModuleScan) => void, whileScanning: () => void): Promise<void> {
    this.total = modules.length;
    if (this.walkRecord !== undefined) {
      const { listed, recalled } = this.walkRecord.stats();
      this.cacheStats.dirsListed = listed;
      this.cacheStats.dirsRecalled = recalled;
    }
    if (this.cacheLoading !== undefined) {
      this.cache = await this.cacheLoading;
      this.cacheStats.loaded = this.cache !== undefined;
    }
    const stats = await this.statsOf(modules);
    const toScan: number[] = [];
    for (let k = 0; k < modules.length; k++) {
      const st = stats[k];
      const cached = st === undefined ? undefined : this.cache?.get(modules[k].path, st);
      if (cached === undefined) {
        toScan.push(k);
        continue;
      }
      this.cacheStats.hits++;
      this.writer?.keep(modules[k].path, st!, this.cache!);
      take(modules[k], cached);
    }
    this.cacheStats.scanned = toScan.length;
    const keysFromReads = this.keysFromReads();
    this.pool ??= this.startPool(toScan.length >= THREADS_FROM || decodesOffThread() ? this.ctx.opts.threads : 0);
    const imports = this.runDictionary(toScan.length);
    const scanning = this.pool.scan(
      toScan.map((k) => modules[k].path),
      (i, scan, readKey) => {
        const mod = modules[toScan[i]];
        const st = keysFromReads ? readKey && keyOf(readKey, 0) : stats[toScan[i]];
        if (imports !== undefined) mod.importRefs = imports.addAll(scan.importNames, scan.importLengths, scan.importKeys, scan.importCrcs, scan.importWeak);
        if (st !== undefined) this.writer?.add(mod.path, st, scan, imports && { refs: mod.importRefs!, dictionary: imports }, mod.modname);
        take(mod, scan);
      },
      this.store,
    );
    await new Promise<void>((resolve) => setImmediate(resolve));
    whileScanning();
    await scanning;
    this.runImports = imports?.view();
    for (let k = 0; k < modules.length; k++) {
      const errno = modules[k].scan!.symbolsErrno;
      if (errno === undefined || errno === ENODATA) continue;
      // libkmod's own messages about the file, at the three loads kmod makes (load-failure.ts)
      const { first, again } = loadFailureMessages(modules[k].path);
      for (const m of first) this.ctx.log(LOG_ERR, `${m}\n`);
      this.ctx.log(LOG_ERR, `failed to load symbols from ${modules[k].path}: ${strerror(errno)}\n`);
      for (const m of again) this.ctx.log(LOG_ERR, `${m}\n`);
    }
  }

  /**
   * The dictionary for the imports of the `count` modules about to be scanned, or undefined when they
   * are looked up one by one: for a few modules, or without the addon's table (the JavaScript one
   * costs more than it saves), unless the cache being written makes one anyway (no module came from
   * the cache: ScanCacheWriter.add).
   */
  private runDictionary(count: number): ImportDictionaryBuilder | undefined {
    if (count < RUN_DICTIONARY_FROM) return undefined;
    const builder = new ImportDictionaryBuilder();
    return builder.engine === 'addon' || (this.writer !== undefined && this.cacheStats.hits === 0) ? builder : undefined;
  }

  /** the scans' memory, unused once the imports are resolved, given back */
  release(): Promise<void> {
    return this.store.release();
  }

  /** after the files are written: the cache for the next run (nothing with -n; never an error) */
  writeCache(): void {
    if (this.writer !== undefined) this.cacheStats.written = this.writer.write(this.ctx.outdirname);
  }

  close(): void {
    this.pool?.close();
  }
}
