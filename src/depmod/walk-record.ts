// depmod's walk record (docs/decisions.md, "Session 18: the walk record"): the listings of the
// directories of the last walk, each with its directory's stat key, kept at the end of the scan cache
// file, so that the addon's walk (native/tree_walk.c) lists again only the directories whose key
// changed. The record's bytes are made and checked by the addon (native/walk_record.c, which also says
// why a matching key means an unchanged listing); without it there is no record, and the JavaScript
// walk is as it was.
import { loadNativeWalkRecord, type NativeWalkRecordFns } from '../native-addon';

/** a test's stand-in for CLOCK_REALTIME, in seconds (undefined: the real clock) */
let testNowSec: number | undefined;

/**
 * Tests: the walk record's clock set to `nowSec` (a directory is recorded only once its times are more
 * than a tick older than the clock), or back to the real one (undefined).
 */
export function setWalkRecordClock(nowSec: number | undefined): void {
  testNowSec = nowSec;
}

/** What a walk did with the record. */
export interface WalkRecordStats {
  /** directories listed */
  listed: number;
  /** directories taken from the record instead */
  recalled: number;
  /** directories listed that the next record may hold */
  fresh: number;
}

/** The record read at the start of a run, and the one its walk makes for the next. */
export class WalkRecord {
  private constructor(
    private readonly fns: NativeWalkRecordFns,
    /** the addon's memo, given to walkModules */
    readonly memo: object,
  ) {}

  /** a memo from `bytes` (undefined or damaged: an empty record), or undefined without the addon */
  static open(bytes: Uint8Array | undefined): WalkRecord | undefined {
    const fns = loadNativeWalkRecord();
    return fns === null ? undefined : new WalkRecord(fns, fns.walkMemoNew(bytes ?? null, testNowSec));
  }

  stats(): WalkRecordStats {
    const [listed, recalled, fresh] = this.fns.walkMemoStats(this.memo);
    return { listed, recalled, fresh };
  }

  /**
   * The record for the next run: the directories on device `dev` (the cache file's) whose times are
   * before `horizonNs` (the run's start on that file system's clock, less a tick), and how many of
   * them were listed in this run. The walk's directories, or, when there was no walk, those read.
   */
  recordFor(dev: bigint, horizonNs: bigint): { bytes: Buffer; fresh: number } {
    // the test clock's shift applies to the file system's clock too
    if (testNowSec !== undefined) horizonNs += BigInt(testNowSec) * 1_000_000_000n - BigInt(Date.now()) * 1_000_000n;
    if (horizonNs < 0n) horizonNs = 0n;
    const sec = horizonNs / 1_000_000_000n;
    const [bytes, fresh] = this.fns.walkMemoRecord(
      this.memo,
      Number(dev & 0xffffffffn),
      Number((dev >> 32n) & 0xffffffffn),
      Number(sec),
      Number(horizonNs - sec * 1_000_000_000n),
    );
    return { bytes, fresh };
  }
}
