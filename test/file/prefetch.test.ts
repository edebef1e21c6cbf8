// ImagePrefetcher (module files read and decompressed ahead on libuv's thread pool, into reused
// buffers): the same files, images and errors as the sequential path, in order, with files skipped,
// large files steered to the buffer that grows, and nothing started without the addon's decoder.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { defaultAhead, ImagePrefetcher } from '../../src/file/prefetch';
import { openModuleFile, type ModuleFile } from '../../src/file/module-file';
import { useNativeDecoder } from '../../src/file/native-decode';
import { moduleDir } from '../support/reference';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-prefetch-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
afterEach(() => useNativeDecoder(true));

const dir = moduleDir();
// small and large (bcachefs: 0.8 MB compressed, 5.6 MB decompressed) modules of the cloud tree
const small = ['kernel/net/key/af_key.ko.xz', 'kernel/net/core/failover.ko.xz', 'kernel/drivers/net/virtio_net.ko.xz'].map((r) => path.join(dir, r));
const large = ['kernel/fs/bcachefs/bcachefs.ko.xz', 'kernel/fs/btrfs/btrfs.ko.xz'].map((r) => path.join(dir, r));
const cut = path.join(tmp, 'cut.ko.xz');
fs.writeFileSync(cut, fs.readFileSync(small[0]).subarray(0, 500));
const missing = path.join(tmp, 'missing.ko');

const sizeOf = (f: string): number => (fs.existsSync(f) ? fs.statSync(f).size : 0);

/** what the prefetched file must match: the sequential path's own reading */
function expectSameAs(mf: ModuleFile | undefined, file: string): void {
  expect(mf).toBeDefined();
  const ref = openModuleFile(file);
  expect(mf!.path).toBe(file);
  expect(mf!.image.equals(ref.image)).toBe(true);
  expect(mf!.raw.equals(ref.raw)).toBe(true);
  expect(mf!.modinfo()).toEqual(ref.modinfo());
  expect(mf!.signature()).toEqual(ref.signature());
}

describe('ImagePrefetcher', () => {
  it('gives the files in order with the images openModuleFile gives, and the same errors', async () => {
    const files = [...small, missing, cut, large[0], ...small, large[1], large[0], small[0]];
    for (const sizes of [files.map(sizeOf), undefined]) {
      const p = ImagePrefetcher.start(files, sizes, 2);
      expect(p).toBeDefined();
      try {
        for (let i = 0; i < files.length; i++) {
          const logs: string[] = [];
          const mf = await p!.take(i, { log: (_p, fn, m) => logs.push(`${fn}: ${m}`) });
          if (files[i] === missing) {
            // the caller opens it itself, and reports ENOENT as it always does
            expect(mf).toBeUndefined();
            continue;
          }
          if (files[i] === cut) {
            expect(mf).toBeDefined();
            expect(() => mf!.image).toThrow(/Unexpected end of input/);
            expect(logs).toEqual(['xz_uncompress_belch: xz: Unexpected end of input\n']);
            continue;
          }
          expectSameAs(mf, files[i]);
        }
        // passed or out of range: the caller opens the file itself
        expect(await p!.take(3, {})).toBeUndefined();
        expect(await p!.take(99, {})).toBeUndefined();
      } finally {
        p!.close();
      }
    }
  });

  it('skips the files not taken, whatever slots they were given, and keeps the order of the rest', async () => {
    const files = [small[0], large[0], small[1], large[1], small[2], large[0], small[0], small[1]];
    const p = ImagePrefetcher.start(files, files.map(sizeOf), 1)!;
    try {
      for (const i of [1, 4, 5, 7]) expectSameAs(await p.take(i, {}), files[i]);
    } finally {
      p.close();
    }
  });

  it('reads a large file before its turn (the buffer that grows is free), whether it is then taken or passed over', async () => {
    // tiny files (failover) in front of each large one: the window of one file ahead (two tiny slots)
    // reaches none of them
    const t = small[1];
    const files = [t, t, t, t, t, large[0], t, t, t, t, large[1], t, large[0], small[0]];
    for (const takes of [files.map((_, i) => i), [0, 3, 6, 8, 11, 13], [7, 13], [12]]) {
      const p = ImagePrefetcher.start(files, files.map(sizeOf), 1)!;
      try {
        for (const i of takes) expectSameAs(await p.take(i, {}), files[i]);
      } finally {
        p.close();
      }
    }
  });

  it('reads deeper ahead where decoding is fast (zstd, gzip) than where liblzma is the slower side', () => {
    const xz = defaultAhead(small);
    expect(xz).toBeGreaterThan(1);
    const zst = small.map((f) => f.replace(/\.xz$/, '.zst'));
    expect(defaultAhead(zst)).toBeGreaterThan(xz);
    expect(defaultAhead(small.map((f) => f.replace(/\.xz$/, '.gz')))).toBe(defaultAhead(zst));
    // by the most of them: one xz file among zstd ones is read as those are
    expect(defaultAhead([...zst, small[0]])).toBe(defaultAhead(zst));
    expect(defaultAhead([...small, zst[0]])).toBe(xz);
  });

  it('keeps two small files ahead where decoding is fast, one where liblzma is the slower side', () => {
    // small by their sizes (between 12 and 128 KiB): only the small buffers take them, and the files
    // asked for at the start are as many as those buffers (memory: docs/decisions.md, issue 14)
    const names = Array.from({ length: 10 }, (_, i) => path.join(tmp, `small${i}.ko`));
    const sizes = names.map(() => 50_000);
    for (const [ext, buffers] of [['.xz', 2], ['.zst', 3], ['.gz', 3]] as const) {
      const files = names.map((f) => f + ext);
      const p = ImagePrefetcher.start(files, sizes)!;
      try {
        expect((p as unknown as { inFlight: Map<number, unknown> }).inFlight.size).toBe(buffers);
      } finally {
        p.close();
      }
    }
  });

  it('reuses its buffers: a file taken is valid until the next take', async () => {
    // af_key (24 KB) goes to the small slots, failover (5 KB) to the tiny ones
    const files = [small[0], small[1], small[0], small[1], small[0], small[1], small[0], small[1]];
    const p = ImagePrefetcher.start(files, files.map(sizeOf), 1)!;
    const buffers = new Map<string, Set<ArrayBufferLike>>(small.slice(0, 2).map((f) => [f, new Set()]));
    try {
      for (let i = 0; i < files.length; i++) {
        const mf = (await p.take(i, {}))!;
        expectSameAs(mf, files[i]);
        buffers.get(files[i])!.add(mf.image.buffer);
      }
    } finally {
      p.close();
    }
    // one file taken and one ahead of each kind: two slots of each kind in turn, the tiny ones smaller
    expect(buffers.get(small[0])!.size).toBe(2);
    expect(buffers.get(small[1])!.size).toBe(2);
    for (const b of buffers.get(small[1])!) expect(b.byteLength).toBeLessThan(Math.min(...[...buffers.get(small[0])!].map((s) => s.byteLength)));
  });

  it('closes with requests in flight, and takes nothing after', async () => {
    const files = [...large, ...small];
    const p = ImagePrefetcher.start(files, files.map(sizeOf), 3)!;
    expectSameAs(await p.take(0, {}), files[0]);
    p.close();
    expect(await p.take(1, {})).toBeUndefined();
  });

  it('does not start without the addon decoder (the sequential path serves)', () => {
    useNativeDecoder(false);
    expect(ImagePrefetcher.start(small)).toBeUndefined();
  });
});
