// The depmod scan pool: results on libuv's thread pool (the addon's decoder) and on worker threads
// equal those on the calling thread, each module is reported once, and a worker thread that fails at start-up or in the middle of the scan leaves the work to
// the calling thread instead of losing modules or hanging.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { moduleFiles, repoRoot } from '../support/reference';
import { plainScan } from './support';

// the pool starts dist/depmod/decode-worker.js, and its code runs from dist/ like the CLI's
type PoolModule = typeof import('../../src/depmod/scan-pool');
const { scanModules, startScanPool } = require(path.join(repoRoot, 'dist/depmod/scan-pool.js')) as PoolModule;

/** a scan as plain data, for comparing (its alias pieces, made only where the scan is made in C, are test/depmod/native-scan.test.ts') */
const plain = plainScan;

async function scanWith(paths: string[], opts: Parameters<typeof scanModules>[1], startFirst = 0): Promise<{ scans: unknown[]; seen: number[] }> {
  const seen: number[] = [];
  // startFirst: the pool is started that many ms before the scan (depmod walks the tree meanwhile)
  const pool = startScanPool(opts);
  if (startFirst > 0) await new Promise((r) => setTimeout(r, startFirst));
  const scans = await pool.scan(paths, (i) => seen.push(i));
  return { scans: scans.map(plain), seen: seen.sort((a, b) => a - b) };
}

describe('depmod scan pool', () => {
  const paths = [...moduleFiles().slice(0, 300), '/nonexistent/missing.ko'];
  // 'auto': libuv's thread pool (the addon is built for the tests); 'workers': worker threads
  for (const reader of ['auto', 'workers'] as const) {
    it(`${reader}: gives the same scans as on this thread, each module once`, async () => {
      const here = await scanWith(paths, { threads: 0 });
      const threaded = await scanWith(paths, { threads: 1, reader });
      expect(threaded.scans).toEqual(here.scans);
      expect(threaded.seen).toEqual(paths.map((_, i) => i));
      expect(here.scans.length).toBe(paths.length);
      expect((here.scans[paths.length - 1] as { symbolsErrno?: number }).symbolsErrno).toBe(2);
    });
    it(`${reader}: gives the same scans when batches stop early and modules need buffers of their own`, async () => {
      // a buffer of 256 KiB: every module above it is sent again alone with one of its size, and a batch
      // stops at the first image that does not fit, the rest going back to the queue
      const here = await scanWith(paths, { threads: 0 });
      const small = await scanWith(paths, { threads: 1, batchBuffer: 256 << 10, reader });
      expect(small.scans).toEqual(here.scans);
      expect(small.seen).toEqual(paths.map((_, i) => i));
    });
    it(`${reader}: takes the files read ahead (during the walk) into the scan, once each, and drops the others`, async () => {
      const here = await scanWith(paths, { threads: 0 });
      const pool = startScanPool({ threads: 1, reader });
      // read ahead: the scan's first files, a file the scan does not ask for, and files from its end
      const extra = moduleFiles()[400];
      for (const p of [...paths.slice(0, 40), extra, ...paths.slice(-12)]) pool.readAhead(p);
      // the thread answers while this one "walks"
      await new Promise((r) => setTimeout(r, 300));
      const seen: number[] = [];
      const scans = await pool.scan(paths, (i) => seen.push(i));
      expect(scans.map(plain)).toEqual(here.scans);
      expect(seen.sort((a, b) => a - b)).toEqual(paths.map((_, i) => i));
    });
  }
  it('finishes on this thread when the worker fails at start-up or mid-scan', async () => {
    const here = await scanWith(paths, { threads: 0 });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-pool-test-'));
    try {
      const atStart = path.join(dir, 'fails-at-start.js');
      fs.writeFileSync(atStart, "throw new Error('no thread today');\n");
      // answers the sizes, then dies on its second batch
      const midScan = path.join(dir, 'fails-mid-scan.js');
      const real = path.join(repoRoot, 'dist/depmod/decode-worker.js');
      fs.writeFileSync(midScan, `const { parentPort } = require('node:worker_threads');\nlet batches = 0;\nparentPort.on('message', (m) => { if (m.paths && ++batches === 2) process.exit(3); });\nrequire(${JSON.stringify(real)});\n`);
      for (const [workerScript, startFirst] of [[atStart, 0], [atStart, 500], [midScan, 0]] as const) {
        const r = await scanWith(paths, { threads: 1, workerScript }, startFirst);
        expect(r.scans).toEqual(here.scans);
        // onResult may see a module twice (before and after the fallback), never none
        expect([...new Set(r.seen)]).toEqual(paths.map((_, i) => i));
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
