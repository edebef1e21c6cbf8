// native/file_crc.c readWithCrc: depmod's scan cache read on the thread pool with the CRC-32 of its body
// (src/depmod/scan-cache.ts). Its CRC must be zlib's, after exactly the lines asked to be skipped.
// And its crc32, which checksums the cache as it is written (scan-cache-format.ts checksumUpdate).
import { crc32 } from 'node:zlib';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadNativeCrc32, loadNativeReadWithCrc } from '../../src/native-addon';
import { checksum } from '../../src/depmod/scan-cache-format';
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

describe("the addon's crc32, zlib's on the calling thread", () => {
  const native = loadNativeCrc32();

  it('continues any CRC over any bytes as zlib does, from any offset of any buffer', () => {
    expect(native, 'the native helper is built (npm run build)').not.toBeNull();
    const rand = prng(0xc32);
    const whole = Buffer.alloc(70000);
    for (let k = 0; k < whole.length; k++) whole[k] = Math.floor(rand() * 256);
    for (const size of [1, 2, 7, 8, 9, 15, 16, 17, 63, 64, 65, 1000, 4093, 65536 + 3]) {
      for (const start of [0, 1, 3, 8, 13]) {
        const part = whole.subarray(start, start + size);
        for (const crc of [0, 1, 0x12345678, 0xffffffff, crc32(whole.subarray(0, start))]) {
          expect(native!(part, crc), `size ${size} at ${start} from ${crc}`).toBe(crc32(part, crc));
        }
      }
    }
    // chained over parts as the writer does: the CRC of the whole
    let crc = 0;
    for (let at = 0; at < whole.length; at += 4099) crc = native!(whole.subarray(at, at + 4099), crc);
    expect(crc).toBe(crc32(whole));
    // no bytes: the CRC as it was (zlib starts again from 0 there, which checksumUpdate never asks of it)
    expect(native!(new Uint8Array(0), 0x1234)).toBe(0x1234);
    expect(checksum([whole.subarray(0, 100), new Uint8Array(0), whole.subarray(100)])).toBe(crc32(whole).toString(16).padStart(8, '0'));
  });

  it('refuses anything but bytes and a CRC', () => {
    const loose = native as unknown as (...a: unknown[]) => number;
    expect(() => loose()).toThrow(/expected bytes and a CRC/);
    expect(() => loose(new Uint8Array(4))).toThrow(/expected bytes and a CRC/);
    expect(() => loose('text', 0)).toThrow(/crc32: unexpected argument type/);
    expect(() => loose(new Uint16Array(4), 0)).toThrow(/crc32: unexpected argument type/);
    expect(() => loose(new ArrayBuffer(4), 0)).toThrow(/crc32: unexpected argument type/);
    expect(() => loose(new Uint8Array(4), 'zero')).toThrow(/expected bytes and a CRC/);
  });
});
