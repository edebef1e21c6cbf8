// depmod's reads on libuv's thread pool (src/depmod/pool-scan.ts, through the addon's decoder): the same
// scans as the calling thread's reads and as the worker threads', for .ko.xz, .ko.zst, .ko.gz and .ko
// files, images larger than a slot's buffers, and damaged, empty, unreadable and missing files.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { moduleFiles, repoRoot } from '../support/reference';
import { plainScan } from './support';

type PoolModule = typeof import('../../src/depmod/scan-pool');
const { startScanPool } = require(path.join(repoRoot, 'dist/depmod/scan-pool.js')) as PoolModule;
const { decodesOffThread } = require(path.join(repoRoot, 'dist/file/read-decode.js')) as typeof import('../../src/file/read-decode');
const { poolScanStats } = require(path.join(repoRoot, 'dist/depmod/pool-scan.js')) as typeof import('../../src/depmod/pool-scan');

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-pool-scan-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));


function put(name: string, data: Buffer): string {
  const f = path.join(tmp, name);
  fs.writeFileSync(f, data);
  return f;
}

/** the test's files: real modules recompressed every way, one with a 12 MB image, and damaged ones */
function files(): string[] {
  const xzs = moduleFiles().slice(0, 80);
  const out = [...xzs];
  for (const [i, f] of xzs.slice(0, 30).entries()) {
    const image = execFileSync('xz', ['-dc', f], { maxBuffer: 1 << 26 });
    out.push(put(`m${i}.ko.zst`, execFileSync('zstd', ['-q', '-c', `--stream-size=${image.length}`], { input: image, maxBuffer: 1 << 26 })));
    // gzip: one member (decoded and scanned on the pool), or two (left to node:zlib: the image comes back)
    const gz = i % 2 === 0 ? zlib.gzipSync(image) : Buffer.concat([zlib.gzipSync(image.subarray(0, 4096)), zlib.gzipSync(image.subarray(4096))]);
    if (i < 5) out.push(put(`m${i}.ko.gz`, gz), put(`m${i}.ko`, image));
  }
  // an image above a slot's limit: a module with 12 MB of zeros after it (its ELF is intact)
  const big = Buffer.concat([execFileSync('xz', ['-dc', xzs[0]]), Buffer.alloc(12 << 20)]);
  const bigXz = execFileSync('xz', ['-c', '-0', '--check=crc32'], { input: big, maxBuffer: 1 << 26 });
  const bigZst = execFileSync('zstd', ['-q', '-c', `--stream-size=${big.length}`], { input: big, maxBuffer: 1 << 26 });
  out.push(put('big.ko.xz', bigXz), put('big.ko.zst', bigZst), put('big.ko', big));
  const goodXz = fs.readFileSync(xzs[1]);
  const goodZst = fs.readFileSync(out[xzs.length]);
  const flipped = Buffer.from(goodZst);
  flipped[flipped.length >> 1] ^= 0x40;
  out.push(
    put('cut.ko.xz', goodXz.subarray(0, goodXz.length >> 1)),
    put('cut.ko.zst', goodZst.subarray(0, goodZst.length >> 1)),
    put('flipped.ko.zst', flipped),
    put('twice.ko.zst', Buffer.concat([goodZst, goodZst])),
    put('empty.ko.xz', Buffer.alloc(0)),
    put('short.ko.zst', goodZst.subarray(0, 5)),
    put('text.ko', Buffer.from('not a module at all\n')),
    path.join(tmp, 'missing.ko.xz'),
    tmp,
    // the same file twice in one scan
    xzs[2],
  );
  return out;
}

async function scanAll(paths: string[], opts: Parameters<PoolModule['startScanPool']>[0], ahead: string[] = []): Promise<{ scans: unknown[]; seen: number[] }> {
  const pool = startScanPool(opts);
  for (const p of ahead) pool.readAhead(p);
  const seen: number[] = [];
  const scans = await pool.scan(paths, (i) => seen.push(i));
  pool.close();
  return { scans: scans.map(plainScan), seen: seen.sort((a, b) => a - b) };
}

describe('depmod scan on libuv\'s thread pool', () => {
  const paths = files();

  it('is the default reader where the addon has its decoder (built for the tests)', () => {
    expect(decodesOffThread()).toBe(true);
  });

  it('gives the calling thread\'s scans and the worker threads\', each file once, whatever the window', async () => {
    const here = await scanAll(paths, { threads: 0 });
    const workers = await scanAll(paths, { threads: 1, reader: 'workers' });
    expect(workers.scans).toEqual(here.scans);
    for (const threads of [1, 3, 8]) {
      const pooled = await scanAll(paths, { threads, reader: 'auto' });
      expect(pooled.scans, `window ${threads + 1}`).toEqual(here.scans);
      expect(pooled.seen).toEqual(paths.map((_, i) => i));
    }
    // the damaged and unusable files are refused with libkmod's errno; the big images are scanned
    const errnoOf = (name: string): unknown => (here.scans[paths.indexOf(path.join(tmp, name))] as { symbolsErrno?: number }).symbolsErrno;
    expect(errnoOf('cut.ko.xz')).toBe(22);
    expect(errnoOf('cut.ko.zst')).toBe(22);
    expect(errnoOf('empty.ko.xz')).toBe(22);
    expect(errnoOf('missing.ko.xz')).toBe(2);
    for (const big of ['big.ko.xz', 'big.ko.zst', 'big.ko']) expect(here.scans[paths.indexOf(path.join(tmp, big))], big).toEqual(here.scans[0]);
  });

  it('narrows its window to cores + 1 once an image comes back instead of a scan, and only then', async () => {
    const here = await scanAll(paths, { threads: 0 });
    const gzAt = paths.findIndex((p) => p.endsWith('m1.ko.gz'));
    expect(gzAt).toBeGreaterThan(40);
    const stats = poolScanStats;
    // xz, zst and single-member gzip modules only: all scanned on the pool, all 16 slots kept
    const before = stats.slotsDropped;
    const scanned = await scanAll(paths.slice(0, gzAt), { threads: 2 });
    expect(scanned.scans).toEqual(here.scans.slice(0, gzAt));
    expect(stats.slotsDropped).toBe(before);
    // a two-member gzip module's image comes back: the 13 slots beyond 3 are dropped as they come back
    const mixed = await scanAll(paths, { threads: 2 });
    expect(mixed.scans).toEqual(here.scans);
    expect(stats.slotsDropped - before).toBe(13);
    // images all along (no scan on the pool): a window of cores + 1 from the start, nothing to drop
    const images = await scanAll(paths, { threads: 2, scanOnPool: false });
    expect(images.scans).toEqual(here.scans);
    expect(stats.slotsDropped - before).toBe(13);
  });

  it('takes files read ahead into the scan once, and lets reads of other files go', async () => {
    const here = await scanAll(paths, { threads: 0 });
    const extra = moduleFiles()[300];
    const pooled = await scanAll(paths, { threads: 2 }, [paths[0], extra, paths[paths.length - 3], path.join(tmp, 'missing.ko.xz')]);
    expect(pooled.scans).toEqual(here.scans);
    expect(pooled.seen).toEqual(paths.map((_, i) => i));
  });

  it('runs a read ahead\'s beforeRead (depmod\'s stat for its cache) only for the files it takes', async () => {
    const pool = startScanPool({ threads: 2 });
    const called: string[] = [];
    // more files than the pool has slots: the rest are not read ahead, and must not be stat()ed on the walk
    for (const p of paths) pool.readAhead(p, () => called.push(p));
    expect(called.length).toBeGreaterThan(0);
    expect(called.length).toBeLessThanOrEqual(16);
    expect(called.length).toBeLessThan(paths.length);
    expect(called).toEqual(paths.slice(0, called.length));
    // a file already read ahead is not taken again
    pool.readAhead(paths[0], () => called.push('again'));
    expect(called).not.toContain('again');
    const scans = await pool.scan(paths);
    pool.close();
    expect(scans.map(plainScan)).toEqual((await scanAll(paths, { threads: 0 })).scans);
  });
});
