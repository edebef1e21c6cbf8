// A per-machine cache of kmod 34.2's results for runKmodMany: kmod's answers cannot differ between the
// Node.js versions CI runs the differentials on, so each CI pass after the first reuses them.
// - Key: kmod's own files, and for every case everything its result can depend on (kmod-inputs.ts);
//   only cases that cannot touch the kernel or run a command are cached (cacheable()), the rest run live,
//   and so do cases where kmod died of a signal (what a crash leaves in stdout and stderr varies).
// - One entry per runKmodMany call (its cacheable cases, in order) in <cacheRoot>/kmod-results/<key>.json,
//   written to a temporary file and renamed: concurrent suites never see a partial entry.
// - Verification that cannot be turned off: every hit re-runs a random sample of its cases live; any
//   disagreement discards the whole cache (said on stderr) and the call runs live.
// - A damaged entry is reported on stderr, ignored and rewritten.
// KMODTS_TEST_KMOD_CACHE=off runs everything live.
import { createHash, randomInt } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ToolCase } from './kmod-pool';
import { BatchInputs, cacheable, caseKey, normalise, pathDigest, restore, type CaseKey } from './kmod-inputs';
import { prng } from './prng';
import { cacheRoot, reference, type RunResult } from './reference';

const FORMAT = 'kmodts kmod-results 1';
/** the share of a hit's cases re-run live, at least one */
export const VERIFY_SHARE = 0.03;
/** entries unused this long are removed */
const MAX_AGE_MS = 30 * 24 * 3600 * 1000;

export function kmodCacheEnabled(): boolean {
  const v = process.env.KMODTS_TEST_KMOD_CACHE;
  if (v === undefined || v === '' || v === 'on') return true;
  if (v === 'off') return false;
  throw new Error(`KMODTS_TEST_KMOD_CACHE must be "on" or "off", not ${JSON.stringify(v)}`);
}

export const defaultCacheDir = (): string => path.join(cacheRoot, 'kmod-results');

let kmodDigest: string | undefined;
/** kmod 34.2's identity: every file of the unpacked package and its libraries */
function kmodIdentity(): string {
  kmodDigest ??= pathDigest(reference().KMOD_ROOT);
  return kmodDigest;
}

/** the sample seed: random per process (KMODTS_TEST_KMOD_CACHE_SEED repeats a run's sample) */
const seed = Number.parseInt(process.env.KMODTS_TEST_KMOD_CACHE_SEED ?? '', 10) || randomInt(1, 0x7fffffff);

interface Entry {
  format: string;
  key: string;
  /** null: kmod died of a signal (a crash's output depends on buffering and the stack: run it live) */
  results: (RunResult | null)[];
}

function say(msg: string): void {
  process.stderr.write(`kmod-cache: ${msg}\n`);
}

/** the entry, or undefined when there is none or it is damaged (said on stderr) */
function readEntry(file: string, key: string, count: number): Entry | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') say(`cannot read ${file} (${(e as Error).message}): running live`);
    return undefined;
  }
  let e: Entry | undefined;
  try {
    e = JSON.parse(text) as Entry;
  } catch {
    e = undefined;
  }
  const ok = e !== undefined && e !== null && e.format === FORMAT && e.key === key && Array.isArray(e.results) && e.results.length === count &&
    e.results.every((r) => r === null || (typeof r === 'object' && typeof r.stdout === 'string' && typeof r.stderr === 'string' && Number.isInteger(r.status)));
  if (!ok) {
    say(`${file} is damaged: ignored, running live and rewriting it`);
    return undefined;
  }
  return e;
}

function writeEntry(dir: string, file: string, entry: Entry): void {
  const tmp = `${file}.${process.pid}.${randomInt(1e9)}.tmp`;
  try {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(tmp, JSON.stringify(entry));
    fs.renameSync(tmp, file);
  } catch (e) {
    // the directory may have been discarded by a concurrent suite meanwhile: the results stay valid
    fs.rmSync(tmp, { force: true });
    say(`could not store ${file} (${(e as Error).message})`);
  }
}

const pruned = new Set<string>();
/** once per process and directory: old entries and leftover temporary files go */
function prune(dir: string): void {
  if (pruned.has(dir)) return;
  pruned.add(dir);
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  const now = Date.now();
  for (const n of names) {
    const f = path.join(dir, n);
    const st = fs.statSync(f, { throwIfNoEntry: false });
    if (st === undefined) continue;
    const age = now - st.mtimeMs;
    if ((n.endsWith('.tmp') && age > 3600_000) || (n.endsWith('.json') && age > MAX_AGE_MS)) fs.rmSync(f, { force: true });
  }
}

/** the whole cache, gone: renamed first, so that concurrent readers see it or nothing */
function discardAll(dir: string): void {
  const gone = `${dir}.discarded-${process.pid}-${randomInt(1e9)}`;
  try {
    fs.renameSync(dir, gone);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    return;
  }
  fs.rmSync(gone, { recursive: true, force: true });
}

export interface CacheOptions {
  /** kmod's live results for some cases, in order */
  live: (cases: ToolCase[]) => Promise<RunResult[]>;
  /** whether a cached and a live result agree (kmod's debug output shows pointers) */
  same: (a: RunResult, b: RunResult) => boolean;
  dir?: string;
}

const stored = (r: RunResult, k: CaseKey): RunResult | null => r.status >= 128 ? null : ({ stdout: normalise(r.stdout, k.dirs), stderr: normalise(r.stderr, k.dirs), status: r.status });
const restored = (r: RunResult, k: CaseKey): RunResult => ({ stdout: restore(r.stdout, k.dirs), stderr: restore(r.stderr, k.dirs), status: r.status });

/** kmod's `tool` for every case, from the cache where it can be trusted */
export async function withKmodCache(tool: string, cases: ToolCase[], o: CacheOptions): Promise<RunResult[]> {
  const dir = o.dir ?? defaultCacheDir();
  const idx = cases.flatMap((c, i) => (cacheable(tool, c) ? [i] : []));
  if (!kmodCacheEnabled() || idx.length === 0) return o.live(cases);
  const batch = new BatchInputs();
  const keys = new Map(idx.map((i) => [i, caseKey(tool, cases[i], batch)]));
  const setKey = createHash('sha256').update(`${FORMAT}\0${kmodIdentity()}\0${tool}\0${idx.map((i) => keys.get(i)!.key).join(',')}`).digest('hex');
  const file = path.join(dir, `${setKey}.json`);
  const entry = readEntry(file, setKey, idx.length);
  const store = (results: RunResult[]): RunResult[] => {
    prune(dir);
    writeEntry(dir, file, { format: FORMAT, key: setKey, results: idx.map((i) => stored(results[i], keys.get(i)!)) });
    return results;
  };
  if (entry === undefined) return store(await o.live(cases));

  const results: RunResult[] = new Array(cases.length);
  const kept = idx.filter((i, k) => {
    const r = entry.results[k];
    if (r !== null) results[i] = restored(r, keys.get(i)!);
    return r !== null;
  });
  const random = prng(seed ^ Number.parseInt(setKey.slice(0, 8), 16));
  const want = Math.min(kept.length, Math.max(1, Math.ceil(kept.length * VERIFY_SHARE)));
  const sample = new Set<number>();
  while (sample.size < want) sample.add(kept[Math.floor(random() * kept.length)]);
  const liveIdx = cases.flatMap((_, i) => (sample.has(i) || results[i] === undefined ? [i] : []));
  const live = await o.live(liveIdx.map((i) => cases[i]));
  for (let k = 0; k < liveIdx.length; k++) {
    const i = liveIdx[k];
    if (sample.has(i) && !o.same(results[i], live[k])) {
      say(`the cached result of ${tool} ${cases[i].args.join(' ')} differs from kmod's live run (sample seed ${seed}): ` +
        `discarding the whole cache ${dir} and running these ${cases.length} cases live`);
      discardAll(dir);
      return store(await o.live(cases));
    }
    results[i] = live[k];
  }
  const now = new Date();
  fs.utimesSync(file, now, now); // in use: not pruned
  return results;
}
