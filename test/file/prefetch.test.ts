// ImagePrefetcher (worker threads reading and decompressing ahead): same files, same errors as the
// sequential path. Runs the build (dist/), where the worker script exists.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { moduleDir, repoRoot } from '../support/reference';

const dist = path.join(repoRoot, 'dist/file');
const { ImagePrefetcher } = require(path.join(dist, 'prefetch.js')) as typeof import('../../src/file/prefetch');
const { openModuleFile } = require(path.join(dist, 'module-file.js')) as typeof import('../../src/file/module-file');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-prefetch-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('ImagePrefetcher', () => {
  it('gives the files in order with the images openModuleFile would give, and the same errors', async () => {
    const dir = moduleDir();
    const good = ['kernel/net/key/af_key.ko.xz', 'kernel/net/core/failover.ko.xz', 'kernel/drivers/net/virtio_net.ko.xz'].map((r) => path.join(dir, r));
    const cut = path.join(tmp, 'cut.ko.xz');
    fs.writeFileSync(cut, fs.readFileSync(good[0]).subarray(0, 500));
    const files = [...good, path.join(tmp, 'missing.ko'), cut, ...good];
    const p = ImagePrefetcher.start(files, 2);
    expect(p).toBeDefined();
    try {
      for (let i = 0; i < files.length; i++) {
        const logs: string[] = [];
        const mf = await p!.take(i, { log: (_p, fn, m) => logs.push(`${fn}: ${m}`) });
        if (files[i].endsWith('missing.ko')) {
          expect(mf).toBeUndefined();
          continue;
        }
        expect(mf).toBeDefined();
        if (files[i] === cut) {
          expect(() => mf!.image).toThrow(/Unexpected end of input/);
          expect(logs).toEqual(['xz_uncompress_belch: xz: Unexpected end of input\n']);
          continue;
        }
        const ref = openModuleFile(files[i]);
        expect(mf!.image.equals(ref.image)).toBe(true);
        expect(mf!.raw.equals(ref.raw)).toBe(true);
        expect(mf!.modinfo()).toEqual(ref.modinfo());
      }
      // out of order or unknown: the caller opens the file itself
      expect(await p!.take(99, {})).toBeUndefined();
    } finally {
      p!.close();
    }
  });
});
