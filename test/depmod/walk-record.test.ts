// depmod's walk record (src/depmod/walk-record.ts, native/walk_record.c): a directory whose stat key is
// the recorded one is taken from the record (counted as recalled, and not listed), any other is listed
// again, and every walk finds exactly what a walk without a record finds. Damaged records are empty.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { crc32 } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { loadNativeTreeWalk, loadNativeWalkRecord } from '../../src/native-addon';
import { depmod, type ScanCacheStats } from '../../src/depmod/depmod';
import { SCAN_CACHE_FILE } from '../../src/depmod/scan-cache';
import { setWalkRecordClock } from '../../src/depmod/walk-record';
import { tmpRoot } from './support';

const root = tmpRoot('walk-record');
let serial = 0;
const fns = loadNativeWalkRecord()!;
const walkModules = loadNativeTreeWalk()!;
/** a clock an hour ahead: every directory is old enough to be recorded */
const LATER = Math.floor(Date.now() / 1000) + 3600;

/** a module directory made of `files` (relative path -> contents; a directory when it ends in '/') */
function tree(files: string[]): string {
  const dir = path.join(root, `t${serial++}`, 'lib/modules/1.0');
  fs.mkdirSync(dir, { recursive: true });
  for (const rel of files) {
    if (rel.endsWith('/')) fs.mkdirSync(`${dir}/${rel}`, { recursive: true });
    else {
      fs.mkdirSync(path.dirname(`${dir}/${rel}`), { recursive: true });
      fs.writeFileSync(`${dir}/${rel}`, '');
    }
  }
  return dir;
}

/**
 * waits for the file system's clock to move on: a change within the tick of the listing it follows keeps
 * its directory's key, which the record's horizon rules out in a run (here the clock is moved ahead)
 */
function nextTick(): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 25);
}

/** the next record of `memo`: its directories on the device of `dir` (or another, `otherDevice`) older than horizonSec */
function recordOf(memo: object, dir: string, horizonSec = LATER, otherDevice = false): Buffer {
  const dev = fs.statSync(dir, { bigint: true }).dev;
  return fns.walkMemoRecord(memo, Number(dev & 0xffffffffn) ^ (otherDevice ? 1 : 0), Number(dev >> 32n), horizonSec, 0)[0];
}

interface Walked {
  found: string | null;
  listed: number;
  recalled: number;
  next: Buffer;
}

/** a walk of `dir` with the record `rec` (and the clock at nowSec; null: the real one), checked against a walk without one */
function walkWith(dir: string, rec: Buffer | null, excludes: string[] = [], nowSec: number | null = LATER): Walked {
  const memo = fns.walkMemoNew(rec, nowSec ?? undefined);
  const found = walkModules(dir, excludes, memo);
  expect(found).toBe(walkModules(dir, excludes));
  const [listed, recalled] = fns.walkMemoStats(memo);
  return { found, listed, recalled, next: recordOf(memo, dir) };
}

const names = (w: Walked, dir: string): string[] => (w.found ?? '').split('\0').map((p) => p.slice(dir.length + 1));

/** a record's payload made consistent with its head again (payload bytes and CRC), as damage that passes those checks */
function resealed(rec: Buffer): Buffer {
  const out = Buffer.from(rec);
  out.writeUInt32LE(out.length - 16, 8);
  out.writeUInt32LE(crc32(out.subarray(16)), 12);
  return out;
}

describe('depmod walk record', () => {
  afterAll(() => {
    setWalkRecordClock(undefined);
    execFileSync('rm', ['-rf', root]);
  });

  it('takes unchanged directories from the record, which the walk trusts', () => {
    const dir = tree(['kernel/a/x.ko', 'kernel/b/y.ko.xz', 'kernel/b/c/z.ko', 'kernel/b/README', 'modules.dep']);
    const first = walkWith(dir, null);
    expect([first.listed, first.recalled]).toEqual([5, 0]);
    expect(names(first, dir)).toEqual(['kernel/a/x.ko', 'kernel/b/c/z.ko', 'kernel/b/y.ko.xz']);
    const second = walkWith(dir, first.next);
    expect([second.listed, second.recalled]).toEqual([0, 5]);
    // the next record holds the recalled directories as they were
    expect(second.next.equals(first.next)).toBe(true);
    // a record naming another file (same length, sealed again) is believed: the directory was not listed
    const forged = resealed(Buffer.from(first.next.toString('latin1').replace('x.ko\0', 'q.ko\0'), 'latin1'));
    const memo = fns.walkMemoNew(forged, LATER);
    expect(walkModules(dir, [], memo)!.split('\0')[0]).toBe(`${dir}/kernel/a/q.ko`);
    // only module names and directories are kept
    expect(first.next.includes('README')).toBe(false);
    expect(first.next.includes('modules.dep')).toBe(false);
  });

  it('lists again a directory whose module was added, removed or renamed, and a new subdirectory', () => {
    const dir = tree(['kernel/a/x.ko', 'kernel/b/y.ko', 'kernel/b/c/z.ko']);
    let rec = walkWith(dir, null).next;
    const step = (change: () => void, listed: number, expected: string[]): void => {
      nextTick();
      change();
      const w = walkWith(dir, rec);
      expect(w.listed, expected.join()).toBe(listed);
      expect(w.recalled + w.listed).toBeGreaterThanOrEqual(5);
      expect(names(w, dir)).toEqual(expected);
      rec = w.next;
      // and then taken from the record again
      expect(walkWith(dir, rec).listed).toBe(0);
    };
    step(() => fs.writeFileSync(`${dir}/kernel/b/new.ko`, ''), 1, ['kernel/a/x.ko', 'kernel/b/c/z.ko', 'kernel/b/new.ko', 'kernel/b/y.ko']);
    step(() => fs.unlinkSync(`${dir}/kernel/b/y.ko`), 1, ['kernel/a/x.ko', 'kernel/b/c/z.ko', 'kernel/b/new.ko']);
    step(() => fs.renameSync(`${dir}/kernel/a/x.ko`, `${dir}/kernel/a/x2.ko`), 1, ['kernel/a/x2.ko', 'kernel/b/c/z.ko', 'kernel/b/new.ko']);
    // across directories: both change
    step(() => fs.renameSync(`${dir}/kernel/b/new.ko`, `${dir}/kernel/a/new.ko`), 2, ['kernel/a/new.ko', 'kernel/a/x2.ko', 'kernel/b/c/z.ko']);
    // a new subdirectory: its parent and itself listed
    step(() => fs.mkdirSync(`${dir}/kernel/b/d`), 2, ['kernel/a/new.ko', 'kernel/a/x2.ko', 'kernel/b/c/z.ko']);
    step(() => fs.writeFileSync(`${dir}/kernel/b/d/w.ko`, ''), 1, ['kernel/a/new.ko', 'kernel/a/x2.ko', 'kernel/b/c/z.ko', 'kernel/b/d/w.ko']);
    // a module file replaced by a directory of that name
    step(
      () => {
        fs.unlinkSync(`${dir}/kernel/a/x2.ko`);
        fs.mkdirSync(`${dir}/kernel/a/x2.ko`);
        fs.writeFileSync(`${dir}/kernel/a/x2.ko/v.ko`, '');
      },
      2,
      ['kernel/a/new.ko', 'kernel/a/x2.ko/v.ko', 'kernel/b/c/z.ko', 'kernel/b/d/w.ko'],
    );
    // a directory replaced by another one (a new inode)
    step(
      () => {
        fs.rmSync(`${dir}/kernel/b/c`, { recursive: true });
        fs.mkdirSync(`${dir}/kernel/b/c`);
        fs.writeFileSync(`${dir}/kernel/b/c/z.ko`, '');
      },
      2,
      ['kernel/a/new.ko', 'kernel/a/x2.ko/v.ko', 'kernel/b/c/z.ko', 'kernel/b/d/w.ko'],
    );
  });

  it('never records a directory holding a link, and follows a link that changes', () => {
    const dir = tree(['kernel/a/x.ko']);
    const one = fs.mkdtempSync(path.join(root, 'one-'));
    const two = fs.mkdtempSync(path.join(root, 'two-'));
    fs.writeFileSync(`${one}/l1.ko`, '');
    fs.writeFileSync(`${two}/l2.ko`, '');
    fs.symlinkSync(one, `${dir}/kernel/linked`);
    const first = walkWith(dir, null);
    expect(names(first, dir)).toEqual(['kernel/a/x.ko', 'kernel/linked/l1.ko']);
    // kernel/ (it holds the link) is listed every time; the linked directory is recorded under its path
    const second = walkWith(dir, first.next);
    expect([second.listed, second.recalled]).toEqual([1, 3]);
    // the link made to point elsewhere (rename over it: kernel/ changes, but its listing is never recorded anyway)
    fs.symlinkSync(two, `${dir}/kernel/linked.new`);
    fs.renameSync(`${dir}/kernel/linked.new`, `${dir}/kernel/linked`);
    const third = walkWith(dir, second.next);
    expect(names(third, dir)).toEqual(['kernel/a/x.ko', 'kernel/linked/l2.ko']);
    expect([third.listed, third.recalled]).toEqual([2, 2]);
  });

  it('does not record a directory changed within a tick of the walk', () => {
    const dir = tree(['kernel/a/x.ko']);
    // the real clock: everything was made just now
    const w = walkWith(dir, null, [], null);
    expect(w.listed).toBe(3);
    expect(w.next.readUInt32LE(4)).toBe(0);
    expect(walkWith(dir, w.next).recalled).toBe(0);
    // nor one whose times lie ahead of the writer's horizon
    const memo = fns.walkMemoNew(null, LATER);
    walkModules(dir, [], memo);
    expect(recordOf(memo, dir, Math.floor(Date.now() / 1000) - 60).readUInt32LE(4)).toBe(0);
    // nor on another device than the cache's
    expect(recordOf(memo, dir, LATER, true).readUInt32LE(4)).toBe(0);
  });

  it('applies the excludes at walk time: a record made with others serves as well', () => {
    const dir = tree(['kernel/a/x.ko', 'kernel/b/y.ko', 'kernel/build/q.ko', 'kernel/source/s.ko']);
    const without = walkWith(dir, null, ['b']);
    expect(names(without, dir)).toEqual(['kernel/a/x.ko']);
    // b was never walked: listed now, the rest recalled
    const withB = walkWith(dir, without.next);
    expect(names(withB, dir)).toEqual(['kernel/a/x.ko', 'kernel/b/y.ko']);
    expect([withB.listed, withB.recalled]).toEqual([1, 3]);
    const noA = walkWith(dir, withB.next, ['a', 'x.ko']);
    expect(names(noA, dir)).toEqual(['kernel/b/y.ko']);
    expect(noA.listed).toBe(0);
  });

  it('records a directory that overlapping roots walk twice once', () => {
    const dir = tree(['kernel/a/x.ko', 'extra/y.ko']);
    const memo = fns.walkMemoNew(null, LATER);
    walkModules(dir, [], memo);
    walkModules(`${dir}/extra`, [], memo);
    const next = recordOf(memo, dir);
    // the module directory, extra, kernel, kernel/a
    expect(next.readUInt32LE(4)).toBe(4);
    expect(walkWith(dir, next).recalled).toBe(4);
  });

  it('reads any damaged record as none: the same walk, everything listed', () => {
    const dir = tree(['kernel/a/x.ko', 'kernel/b/y.ko', 'kernel/b/c/z.ko']);
    const good = walkWith(dir, null).next;
    expect(walkWith(dir, good).recalled).toBe(5);
    const rootDir = Buffer.from(dir, 'latin1');
    const firstPathLen = 16 + 56;
    const variants: [string, Buffer][] = [
      ['empty', Buffer.alloc(0)],
      ['head only', good.subarray(0, 16)],
      ['truncated', good.subarray(0, good.length - 3)],
      ['truncated, resealed', resealed(good.subarray(0, good.length - 3))],
      ['one byte flipped', Buffer.from(good.map((b, i) => (i === good.length - 5 ? b ^ 1 : b)))],
      ['random bytes', Buffer.from(Array.from({ length: good.length }, (_, i) => (i * 7919 + 13) & 0xff))],
      ['another magic', resealed(Buffer.concat([Buffer.from('XXXX'), good.subarray(4)]))],
      ['a directory more than there are', resealed(withU32(good, 4, good.readUInt32LE(4) + 1))],
      ['a directory fewer', resealed(withU32(good, 4, good.readUInt32LE(4) - 1))],
      ['an absurd count', resealed(withU32(good, 4, 0xffffffff))],
      ['a huge path length', resealed(withU32(good, firstPathLen, 0xfffffff0))],
      ['a huge entry length', resealed(withU32(good, firstPathLen + 4, 0xfffffff0))],
      ['an entry more than there are', resealed(withU32(good, firstPathLen + 8, good.readUInt32LE(firstPathLen + 8) + 1))],
      ['an entry fewer', resealed(withU32(good, firstPathLen + 8, good.readUInt32LE(firstPathLen + 8) - 1))],
      ['a payload length that does not add up', withU32(good, 8, good.length)],
      ['an entry of another type', resealed(Buffer.from(good.toString('latin1').replace('dkernel\0', 'lkernel\0'), 'latin1'))],
      ['a name with a slash', resealed(Buffer.from(good.toString('latin1').replace('fx.ko\0', 'f/.ko\0'), 'latin1'))],
      ['names out of order', resealed(Buffer.from(good.toString('latin1').replace('dc\0fy.ko\0', 'fy.ko\0dc\0'), 'latin1'))],
      ['a path twice', resealed(Buffer.from(good.toString('latin1').split(`${dir}/kernel/a`).join(`${dir}/kernel/b`), 'latin1'))],
      ['a relative path', resealed(Buffer.from(good.toString('latin1').split(rootDir.toString('latin1')).join(rootDir.toString('latin1').replace('/', 'x')), 'latin1'))],
    ];
    for (const [what, rec] of variants) {
      const w = walkWith(dir, rec);
      expect(w.recalled, what).toBe(0);
      expect(w.listed, what).toBe(5);
      expect(w.next.equals(good), what).toBe(true);
    }
    // a record of another tree is used for nothing of this one
    const other = tree(['kernel/a/x.ko']);
    expect(walkWith(dir, walkWith(other, null).next).recalled).toBe(0);
    expect(() => walkModules(dir, [], {})).toThrow(TypeError);
  });
});

function withU32(buf: Buffer, at: number, value: number): Buffer {
  const out = Buffer.from(buf);
  out.writeUInt32LE(value >>> 0, at);
  return out;
}

describe('depmod runs with the walk record', () => {
  /** a tree of 40 directories of a module each (more than a new record's rewrite threshold) */
  function bigTree(): string {
    const files = Array.from({ length: 40 }, (_, i) => `kernel/d${i}/m${i}.ko`);
    const dir = tree(files);
    fs.writeFileSync(`${dir}/modules.dep`, '');
    return dir.slice(0, -'/lib/modules/1.0'.length);
  }
  async function run(basedir: string, opts: Partial<Parameters<typeof depmod>[0]> = {}): Promise<{ stats: ScanCacheStats; out: string }> {
    let stats: ScanCacheStats | undefined;
    let out = '';
    await depmod({ kernelVersion: '1.0', basedir, configPaths: ['/dev/null'], threads: 0, onScanCache: (s) => (stats = s), dryRun: true, output: (d) => (out += d), ...opts });
    return { stats: stats!, out };
  }

  it('is written with the cache, read by the next run and by -n, kept in -o, and left alone without the cache', async () => {
    setWalkRecordClock(LATER);
    try {
      const basedir = bigTree();
      const moddir = `${basedir}/lib/modules/1.0`;
      const reference = (await run(basedir, { scanCache: false })).out;
      expect((await run(basedir, { scanCache: false })).stats).toMatchObject({ dirsListed: 0, dirsRecalled: 0 });
      // the first run lists everything; its record (41 new directories) makes the cache worth writing
      expect((await run(basedir, { dryRun: false })).stats).toMatchObject({ written: true, dirsListed: 42, dirsRecalled: 0 });
      const second = await run(basedir);
      expect(second.out).toBe(reference);
      // the module directory itself changed (the files written into it): listed again
      expect(second.stats).toMatchObject({ dirsListed: 1, dirsRecalled: 41 });
      // one module added: its directory listed again (and the module directory, changed by the first
      // run's files after its listing); too little to rewrite the cache for
      const cacheBefore = fs.readFileSync(`${moddir}/${SCAN_CACHE_FILE}`);
      nextTick();
      fs.writeFileSync(`${moddir}/kernel/d3/extra.ko`, '');
      expect((await run(basedir, { dryRun: false })).stats).toMatchObject({ written: false, dirsListed: 2, dirsRecalled: 40 });
      expect(fs.readFileSync(`${moddir}/${SCAN_CACHE_FILE}`).equals(cacheBefore)).toBe(true);
      const fourth = await run(basedir);
      expect(fourth.stats).toMatchObject({ dirsListed: 2, dirsRecalled: 40 });
      expect(fourth.out).toBe((await run(basedir, { scanCache: false })).out);
      expect(fourth.out).not.toBe(reference);
      // -o: the cache and its record in the output directory, the record's paths those of the tree
      const outdir = path.join(root, `out${serial++}`);
      fs.mkdirSync(`${outdir}/lib/modules/1.0`, { recursive: true });
      fs.writeFileSync(`${outdir}/lib/modules/1.0/modules.dep`, '');
      expect((await run(basedir, { dryRun: false, outdir })).stats).toMatchObject({ written: true, dirsListed: 42, dirsRecalled: 0 });
      expect((await run(basedir, { outdir })).stats).toMatchObject({ dirsListed: 0, dirsRecalled: 42 });
    } finally {
      setWalkRecordClock(undefined);
    }
  });
});
