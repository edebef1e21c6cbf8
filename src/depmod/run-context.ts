// What every part of one depmod run shares: its options, directories, log, configuration, and the two
// kinds of failure. The parts themselves live in tree-walk.ts (finding modules), module-order.ts,
// module-load.ts (scanning, with scan-cache.ts), symbols.ts, dep-graph.ts and index-files.ts.
import { EINVAL, errnoOf, strerror } from '../errno';
import { KmodError } from '../errors';
import { emptyDepmodConfig, type DepmodConfig, type DepmodLog } from './config';
import type { DepmodOptions } from './depmod';
import type { AliasPieces } from './alias-files';
import type { ModuleScan } from './module-scan';

/** A FATAL condition (kmod's CRIT, which exits): message ends in '\n'. */
export class DepmodFatal extends KmodError {
  constructor(readonly logMessage: string, errno = EINVAL) {
    super(errno, logMessage.trimEnd());
    this.name = 'DepmodFatal';
  }
}

/** depmod failed after reporting why through the log (dependency cycles, ...): exit status 1. */
export class DepmodFailed extends KmodError {
  constructor(message: string, errno = EINVAL) {
    super(errno, message);
    this.name = 'DepmodFailed';
  }
}

/** a Node error's errno as strerror gives it (kmod's %m) */
export function nodePathError(err: unknown): string {
  return strerror(errnoOf(err));
}

/** One module of the run (kmod's struct mod). */
export interface Mod {
  path: string;
  /** path relative to the module directory, or null outside it (external directories) */
  relpath: string | null;
  /** relpath cut after "<dir>/<name>.ko" (modules.order's spelling) */
  uncrelpath: string | null;
  /** index of the last '/' in path */
  baselen: number;
  modname: string;
  sortIdx: number;
  depSortIdx: number;
  idx: number;
  users: number;
  visited: boolean;
  deps: Mod[];
  /** the scan, until its imports are resolved */
  scan: ModuleScan | undefined;
  /**
   * a scan made in this run: its imports as references into the run's import dictionary
   * (module-load.ts), where the run has one; until they are resolved
   */
  importRefs: Uint32Array | undefined;
  /** modinfo for the alias files */
  aliases: string[];
  softdeps: string[];
  weakdeps: string[];
  /** the aliases' lines and keys ready made, when the scan came from the cache */
  aliasPieces: AliasPieces | undefined;
}

export class RunContext {
  /** depmod's messages, through `sink` (index-files.ts holds a file's messages back until its turn) */
  readonly log: DepmodLog = (priority, message) => this.sink(priority, message);
  sink: DepmodLog;
  /** the module directory read: <basedir>/<moduledir>/<kversion> */
  readonly dirname: string;
  /** where the files are written: <outdir>/<moduledir>/<kversion> */
  readonly outdirname: string;
  readonly kversion: string;
  cfg: DepmodConfig = emptyDepmodConfig();

  constructor(readonly opts: DepmodOptions) {
    this.sink = opts.log ?? (() => {});
    let moduledir = opts.moduledir ?? '/lib/modules';
    while (moduledir.startsWith('/')) moduledir = moduledir.slice(1);
    const root = opts.basedir ?? '';
    this.kversion = opts.kernelVersion;
    this.dirname = `${root}/${moduledir}/${this.kversion}`;
    this.outdirname = `${opts.outdir ?? root}/${moduledir}/${this.kversion}`;
  }
}
