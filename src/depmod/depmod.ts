// depmod: indexes a module tree the way kmod 34.2's depmod does (tools/depmod.c), writing byte-identical
// modules.dep, modules.alias, modules.softdep, modules.weakdep, modules.symbols, modules.devname and the
// five .bin indexes. Algorithm and ordering rules: KMOD.md §3 and §7. The run's parts: tree-walk.ts
// finds the modules, module-order.ts orders them, module-load.ts scans them (on worker threads, and from
// the cache of earlier runs' scans), symbols.ts and dep-graph.ts resolve them, index-files.ts writes.
// Everything order-sensitive happens on one thread, in kmod's order.
//
// Strings are binary (one char per byte, latin1) throughout, so lengths and comparisons are bytewise.
import { LOG_WARNING } from '../log';
import { loadDepmodConfig, type DepmodLog } from './config';
import { DependencyGraph } from './dep-graph';
import { IndexFiles } from './index-files';
import { ModuleScanner, type ScanCacheStats } from './module-load';
import { moduleArray } from './module-order';
import type { ModuleScan } from './module-scan';
import { RunContext, type Mod } from './run-context';
import { SymbolTable } from './symbols';
import { ModuleTable } from './tree-walk';

export { DEFAULT_DEPMOD_CONFIG_PATHS, type DepmodConfig, type DepmodLog } from './config';
export { DepmodFailed, DepmodFatal } from './run-context';
export type { ScanCacheStats } from './module-load';

export interface DepmodOptions {
  /** kernel version (the directory name under the module directory) */
  kernelVersion: string;
  /** -b: root directory, absolute; default "" (the real root) */
  basedir?: string;
  /** -m: module directory under the root; default /lib/modules */
  moduledir?: string;
  /** -o: root under which the output is written; default basedir */
  outdir?: string;
  /** -C: configuration files or directories replacing the depmod.d defaults */
  configPaths?: string[];
  /** module files to index instead of the whole tree (no depmod.d is read then), absolute paths */
  modulePaths?: string[];
  /** -E: Module.symvers of the kernel (also enables CRC checks) */
  symvers?: string;
  /** -F: System.map of the kernel */
  systemMap?: string;
  /** -e: report unresolved symbols (needs symvers or systemMap) */
  errsyms?: boolean;
  /** -P: one character stripped from the start of symbol names */
  symbolPrefix?: string;
  /** -w: warn about duplicate index entries */
  warnDuplicates?: boolean;
  /** -A: do nothing when no module is newer than modules.dep */
  quick?: boolean;
  /** -n: the text files are given to `output` (concatenated, as kmod prints them); nothing is written */
  dryRun?: boolean;
  output?: (data: string) => void;
  /** -v: "<module> needs "<symbol>": <provider>" lines for every new dependency (stdout in kmod) */
  show?: (line: string) => void;
  /** depmod's diagnostics (priority, message ending in '\n') */
  log?: DepmodLog;
  /** worker threads reading modules (default: one per core, 0 = this thread) */
  threads?: number;
  onProgress?: (done: number, total: number) => void;
  /** called once the run really starts (after the -A check), where kmod creates its library context */
  onStart?: (dirname: string) => void;
  /**
   * the cache of module scans in the output directory (scan-cache.ts): read, and written after the
   * files unless dryRun; default true
   */
  scanCache?: boolean;
  /** what the cache did, once the run is over */
  onScanCache?: (stats: ScanCacheStats) => void;
}

/** Runs depmod. Resolves when done; throws DepmodFatal / DepmodFailed / KmodError on failure. */
export async function depmod(opts: DepmodOptions): Promise<void> {
  const ctx = new RunContext(opts);
  if (opts.quick) {
    if (opts.dryRun) return;
    if (new ModuleTable(ctx).upToDate() === 1) return;
  }
  opts.onStart?.(ctx.dirname);
  const scanner = new ModuleScanner(ctx, opts.scanCache !== false);
  try {
    await runStarted(ctx, scanner);
  } finally {
    scanner.close();
    opts.onScanCache?.(scanner.cacheStats);
  }
}

async function runStarted(ctx: RunContext, scanner: ModuleScanner): Promise<void> {
  const o = ctx.opts;
  const symbols = new SymbolTable(ctx);
  let printUnknown = o.errsyms === true;
  if (o.symvers !== undefined) symbols.loadSymvers(o.symvers);
  else if (o.systemMap !== undefined) symbols.loadSystemMap(o.systemMap);
  else if (printUnknown) {
    ctx.log(LOG_WARNING, '-e needs -E or -F\n');
    printUnknown = false;
  }
  // a run that reports nothing about imports needs only their owners: the addon's table and lookups
  if (!printUnknown && o.symvers === undefined && o.show === undefined) symbols.collectExports();
  const table = new ModuleTable(ctx, scanner.readAhead, scanner.walkRecord?.memo);
  const explicit = o.modulePaths !== undefined && o.modulePaths.length > 0;
  if (!explicit || o.quick) {
    ctx.cfg = loadDepmodConfig(o.configPaths, ctx.kversion, ctx.log);
    table.search();
    scanner.statInBackground(table.byName.values());
  } else {
    for (const p of o.modulePaths!) table.addExplicit(p);
  }
  const modules = moduleArray(ctx, table);
  const graph = new DependencyGraph(ctx, symbols, modules, printUnknown);
  const files = new IndexFiles(ctx, modules, symbols, graph);
  const take = (mod: Mod, scan: ModuleScan): void => {
    mod.scan = scan;
    if (scan.symbolsErrno === undefined && !symbols.joinedExportsAdd(scan, mod)) {
      symbols.exportsAdd(scan.exports, () => scan.exportCrcs, mod);
    }
    mod.aliases = scan.aliases;
    mod.softdeps = scan.softdeps;
    mod.weakdeps = scan.weakdeps;
    mod.aliasPieces = scan.aliasPieces;
    // only the imports are needed from here on
    scan.exports = scan.aliases = scan.softdeps = scan.weakdeps = [];
    scan.aliasPieces = undefined;
  };
  await scanner.scan(modules, take, () => {
    if (o.dryRun !== true) files.makeBuiltinFilesNow();
  });
  // the indexes that need only the scans are built on the thread pool meanwhile
  files.startIndexes();
  graph.loadDependencies(scanner.runImports);
  // the scans' memory, now unused, is given back before the files are made
  await scanner.release();
  graph.calculateDependencies();
  await files.output();
  scanner.writeCache();
}

/** sscanf("%u.%u") == 2: is this argument a kernel version? */
export function isVersionNumber(s: string): boolean {
  return /^[ \t\n\v\f\r]*[+-]?\d+\.[ \t\n\v\f\r]*[+-]?\d+/.test(s);
}
