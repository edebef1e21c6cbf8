// The batch reader (src/file/batch-read.ts over native/read_batch.c): for every file, whatever the
// order the pool finishes them in and however the callers' buffers are reused, the outcome
// readAndDecode gives for it (images, DecompressErrors, read errnos), damaged files included; files
// asked for before close() are still delivered; without the addon, the same outcomes.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { openBatchReader, type BatchReader } from '../../src/file/batch-read';
import { nativeDecoder, useNativeDecoder } from '../../src/file/native-decode';
import { readAndDecode, type DecodeBuffers, type ReadDecoded } from '../../src/file/read-decode';
import { repoRoot } from '../support/reference';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-batch-read-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
afterEach(() => useNativeDecoder(true));

const original = Buffer.alloc(200_000);
for (let i = 0; i < original.length; i++) original[i] = (i * 5 + (i >> 8) * 11 + ((i * i) >> 12)) & 0xff;
const input = path.join(tmp, 'input');
fs.writeFileSync(input, original);
const xz = execFileSync('xz', ['-c', '--check=crc32', input]);
const zst = execFileSync('zstd', ['-q', '-c', input]);
const gz = zlib.gzipSync(original);

function put(name: string, data: Buffer): string {
  const f = path.join(tmp, name);
  fs.writeFileSync(f, data);
  return f;
}

/** good files of each kind, damaged ones (cut, a bit flipped), and files that cannot be read */
function inputs(): string[] {
  const files = [put('a.ko.xz', xz), put('a.ko.zst', zst), put('a.ko.gz', gz), put('a.ko', original), put('empty.ko.xz', Buffer.alloc(0)), put('five.ko', Buffer.from('\x7fELF\x02'))];
  for (const [ext, good] of [['xz', xz], ['zst', zst]] as const) {
    for (let i = 0; i < 12; i++) files.push(put(`cut${i}.ko.${ext}`, good.subarray(0, Math.floor((good.length * i) / 12))));
    for (let i = 0; i < 12; i++) {
      const d = Buffer.from(good);
      d[Math.floor((d.length * i) / 12)] ^= 1 << (i % 8);
      files.push(put(`flip${i}.ko.${ext}`, d));
    }
  }
  // a name that is not ASCII: paths are binary strings (their chars are the name's bytes)
  fs.writeFileSync(path.join(tmp, 'caf\u00e9.ko.zst'), zst);
  files.push(Buffer.from(path.join(tmp, 'caf\u00e9.ko.zst'), 'utf8').toString('latin1'));
  files.push(path.join(tmp, 'missing.ko.zst'), tmp);
  return files;
}

/** what a result says, its buffers compared by content */
function summary(r: ReadDecoded): unknown {
  if ('readErrno' in r) return r;
  const base = { compression: r.compression, raw: r.raw.toString('base64') };
  if ('error' in r) return { ...base, error: { message: r.error.message, file: r.error.file, detail: r.error.detail, fn: r.error.fn, errno: r.error.errno } };
  return { ...base, image: r.image.toString('base64') };
}

/** every file through the reader, `slots` buffer pairs reused from result to result; the summaries in input order */
function readAll(reader: BatchReader, files: string[], slots: DecodeBuffers[]): Promise<unknown[]> {
  const out: unknown[] = new Array(files.length);
  return new Promise((resolve, reject) => {
    let next = 0;
    let done = 0;
    const start = (slot: DecodeBuffers): void => {
      if (next >= files.length) return;
      const i = next++;
      reader.read(
        files[i],
        slot,
        (r) => {
          out[i] = summary(r);
          done++;
          if (done === files.length) resolve(out);
          else start(slot);
        },
        reject,
      );
    };
    for (const slot of slots) start(slot);
  });
}

describe('openBatchReader', () => {
  it('uses the addon\'s reader (run `npm run build` and scripts/build-native.js when this fails)', () => {
    expect(typeof (nativeDecoder() as unknown as { readerOpen?: unknown } | null)?.readerOpen).toBe('function');
  });

  it('gives each file readAndDecode\'s outcome, buffers reused or too small, one job or several', async () => {
    const files = inputs();
    const expected = await Promise.all(files.map(async (f) => summary(await readAndDecode(f))));
    const big = (): DecodeBuffers => ({ image: Buffer.alloc(1 << 20), raw: Buffer.alloc(1 << 20) });
    const tiny = (): DecodeBuffers => ({ image: Buffer.alloc(64), raw: Buffer.alloc(64) });
    for (const [jobs, slots] of [[1, [big()]], [2, [big(), tiny(), big()]], [3, [tiny(), tiny(), tiny(), tiny(), tiny(), tiny()]], [2, [{}, {}]]] as const) {
      const reader = openBatchReader(jobs);
      expect(await readAll(reader, files, [...slots])).toEqual(expected);
      reader.close();
    }
  });

  it('delivers the files asked for before close(); none can be asked for after', async () => {
    const files = inputs();
    const reader = openBatchReader(2);
    const got = new Map<number, ReadDecoded>();
    const all = new Promise<void>((resolve, reject) => {
      files.forEach((f, i) =>
        reader.read(
          f,
          {},
          (r) => {
            got.set(i, r);
            if (got.size === files.length) resolve();
          },
          reject,
        ),
      );
    });
    reader.close();
    expect(() => reader.read(files[0], {}, () => undefined, () => undefined)).toThrow(/after close/);
    await all;
    const r = got.get(1)!;
    expect('image' in r && r.image.equals(original)).toBe(true);
    expect(got.get(files.length - 2)).toEqual({ readErrno: 2 });
    expect(got.get(files.length - 1)).toEqual({ readErrno: 21 });
  });

  it('hands files queued during a delivery to the pool before the delivery ends', async () => {
    // the addon's own reader, its deliveries and kicks observed: a batch-read module of this test's own
    // whose decoder is the addon's with those two functions wrapped
    const real = nativeDecoder() as unknown as Record<string, (...args: unknown[]) => unknown>;
    // the results of the delivery under way, and how many of them its callbacks have had
    let delivering = 0;
    let seen = 0;
    let kicksInside = 0;
    let largest = 0;
    const observed = Object.create(real, {
      readerOpen: {
        value: (jobs: unknown, table: unknown, done: (count: number, extras: unknown) => void) =>
          real.readerOpen(jobs, table, (count: number, extras: unknown) => {
            delivering = count;
            seen = 0;
            largest = Math.max(largest, count);
            try {
              done(count, extras);
            } finally {
              delivering = 0;
            }
          }),
      },
      readerKick: {
        value: (reader: unknown) => {
          // (the kick at a delivery's end comes after its last callback)
          if (seen < delivering) kicksInside++;
          return real.readerKick(reader);
        },
      },
    });
    vi.resetModules();
    vi.doMock('../../src/file/native-decode', async (original) => ({ ...(await original<object>()), nativeDecoder: () => observed }));
    try {
      const { openBatchReader: openObserved } = await import('../../src/file/batch-read');
      const file = put('k.ko', original);
      const reader = openObserved(2);
      const total = 64;
      let asked = 0;
      let got = 0;
      const finished = new Promise<void>((resolve, reject) => {
        // every result asks for the next file, as depmod's scan keeps its window full
        const ask = (): void => {
          if (asked === total) return;
          asked++;
          reader.read(
            file,
            {},
            () => {
              seen++;
              if (++got === total) resolve();
              else ask();
            },
            reject,
          );
        };
        for (let i = 0; i < 16; i++) ask();
      });
      // (the reader hands them to the pool at the end of this turn)
      await Promise.resolve();
      // this thread busy while the pool reads the first 16: they come back in one delivery
      const until = Date.now() + 300;
      while (Date.now() < until);
      await finished;
      reader.close();
      expect(largest).toBeGreaterThanOrEqual(8);
      expect(kicksInside).toBeGreaterThan(0);
    } finally {
      vi.doUnmock('../../src/file/native-decode');
      vi.resetModules();
    }
  });

  it('without the addon: the same outcomes', async () => {
    const files = inputs();
    const expected = await Promise.all(files.map(async (f) => summary(await readAndDecode(f))));
    useNativeDecoder(false);
    const reader = openBatchReader(2);
    expect(await readAll(reader, files, [{}, {}])).toEqual(expected);
    reader.close();
  });

  it('a reader never closed does not keep the process alive', () => {
    const script = `
      const { openBatchReader } = require(${JSON.stringify(path.join(repoRoot, 'dist/file/batch-read.js'))});
      const reader = openBatchReader(2);
      reader.read(${JSON.stringify(put('b.ko.zst', zst))}, {}, (r) => console.log('image' in r ? r.image.length : 'failed'), (err) => console.log('internal', err));
    `;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60_000 });
    expect(r.error).toBeUndefined();
    expect(r.stdout).toBe(`${original.length}\n`);
    expect(r.status).toBe(0);
  });
});
