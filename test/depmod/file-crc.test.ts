// native/file_crc.c readWithCrc: depmod's scan cache read on the thread pool with the CRC-32 of its body
// (src/depmod/scan-cache.ts). Its CRC must be zlib's, after exactly the lines asked to be skipped.
import { crc32 } from 'node:zlib';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadNativeReadWithCrc } from '../../src/native-addon';
import { prng } from '../support/prng';
import { tmpRoot } from './support';

const dir = tmpRoot('file-crc');

describe("the addon's read with a CRC-32 (readWithCrc)", () => {
  const read = loadNativeReadWithCrc();

  it('reads the whole file and gives the CRC-32 of what follows the lines skipped, as zlib computes it', async () => {
    expect(read, 'the native helper is built (npm run build)').not.toBeNull();
    const rand = prng(0xc4c);
    const f = path.join(dir, 'data');
    // sizes around the 8-byte steps and unaligned starts, newlines anywhere, a few MB
    const sizes = [0, 1, 2, 7, 8, 9, 15, 16, 17, 63, 64, 65, 1000, 4093, 65536 + 3, 3 * 1024 * 1024 + 5];
    for (const size of sizes) {
      const data = Buffer.alloc(size);
      for (let k = 0; k < size; k++) data[k] = rand() < 0.01 ? 0x0a : Math.floor(rand() * 256);
      fs.writeFileSync(f, data);
      for (const skip of [0, 1, 2, 5]) {
        const [got, crc] = await read!(f, skip);
        expect(got.equals(data), `size ${size}`).toBe(true);
        let at = 0;
        for (let line = 0; line < skip && at >= 0; line++) {
          const nl = data.indexOf(0x0a, at);
          at = nl < 0 ? -1 : nl + 1;
        }
        expect(crc, `size ${size}, ${skip} lines skipped`).toBe(at < 0 ? -1 : crc32(data.subarray(at)));
      }
    }
  });

  it('rejects a file it cannot read, and refuses malformed arguments at once', async () => {
    const loose = read as unknown as (...a: unknown[]) => Promise<[Buffer, number]>;
    await expect(read!(path.join(dir, 'missing'), 2)).rejects.toThrow(/^readWithCrc: open .*missing failed: No such file or directory$/);
    await expect(read!(dir, 0)).rejects.toThrow(/^readWithCrc: read .* failed: Is a directory$/);
    expect(() => loose()).toThrow(TypeError);
    expect(() => loose(path.join(dir, 'data'))).toThrow(/expected a path and a line count/);
    expect(() => loose(42, 2)).toThrow(TypeError);
    expect(() => loose(Buffer.from('/etc/hostname'), 2)).toThrow(TypeError);
    expect(() => loose('/etc/host\0name', 2)).toThrow(/without NULs/);
    expect(() => loose('/etc/hostname', 'two')).toThrow(TypeError);
    expect(() => loose('/etc/hostname', {})).toThrow(TypeError);
    // a path of any length is only a file that is not there
    await expect(read!(`/${'x'.repeat(10000)}`, 0)).rejects.toThrow(/File name too long/);
    // paths are binary strings (one char per byte), as kmodts holds them
    const nonAscii = path.join(dir, 'caf\u00e9 \u2603');
    fs.writeFileSync(nonAscii, 'a\nb');
    expect(await read!(Buffer.from(nonAscii).toString('latin1'), 1)).toEqual([Buffer.from('a\nb'), crc32('b')]);
  });
});
