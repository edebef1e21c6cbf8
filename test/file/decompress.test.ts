// Decompression of module files: the whole xz/zstd/gzip formats (made here with the xz, zstd and gzip
// tools), and truncated or corrupt streams, which must give a DecompressError naming the file — never a
// partial result, never wrong bytes where the format has a check.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decompress, DecompressError, detectCompression } from '../../src/file/decompress';
import { libzstdDecompress, zstdErrorName } from '../../src/file/libzstd';
import { liblzmaDecompress } from '../../src/file/liblzma';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-decompress-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

// ~200 KB that compresses like code: repeated structure with varying bytes
const original = Buffer.alloc(200_000);
for (let i = 0; i < original.length; i++) original[i] = (i * 7 + (i >> 9) * 13 + ((i * i) >> 13)) & 0xff;
const input = path.join(tmp, 'input');
fs.writeFileSync(input, original);
fs.writeFileSync(path.join(tmp, 'empty'), '');

function tool(cmd: string, args: string[], data?: Buffer): Buffer {
  return execFileSync(cmd, args, { input: data, maxBuffer: 1 << 26 });
}

/** decompress must either throw a DecompressError for `file` or give exactly `expected` */
function errorOrExact(data: Buffer, file: string, expected: Buffer): 'error' | 'ok' {
  try {
    const out = decompress(data, file);
    expect(out.equals(expected)).toBe(true);
    return 'ok';
  } catch (err) {
    expect(err).toBeInstanceOf(DecompressError);
    expect((err as DecompressError).file).toBe(file);
    expect((err as DecompressError).errno).toBe(22);
    expect((err as DecompressError).message).toContain(file);
    return 'error';
  }
}

function cutPoints(n: number): number[] {
  const s = new Set<number>([6, 7, 12, 13, 20, n - 1, n - 2, n - 4, n - 8, n - 12, n - 13]);
  for (let i = 1; i < 24; i++) s.add(Math.floor((n * i) / 24));
  return [...s].filter((c) => c >= 6 && c < n).sort((a, b) => a - b);
}

describe('detectCompression', () => {
  it('recognises the magic bytes in kmod\'s order, whatever the name', () => {
    expect(detectCompression(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0]))).toBe('zstd');
    expect(detectCompression(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0]))).toBe('xz');
    expect(detectCompression(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 1]))).toBe('none');
    expect(detectCompression(Buffer.from([0x1f, 0x8b, 8]))).toBe('gzip');
    expect(detectCompression(Buffer.from('\x7fELF'))).toBe('none');
    expect(detectCompression(Buffer.alloc(0))).toBe('none');
    expect(detectCompression(Buffer.from([0x28, 0xb5]))).toBe('none');
    expect(decompress(original, 'plain.ko').equals(original)).toBe(true);
  });
});

describe('xz', () => {
  const variants: [string, Buffer][] = [
    ['crc32 (as the kernel writes)', tool('xz', ['-c', '--check=crc32', '--lzma2=dict=1MiB', input])],
    ['crc64', tool('xz', ['-c', '--check=crc64', input])],
    ['sha256', tool('xz', ['-c', '--check=sha256', input])],
    ['no check', tool('xz', ['-c', '--check=none', input])],
    ['BCJ x86', tool('xz', ['-c', '--x86', '--lzma2', input])],
    ['BCJ arm64 + delta', tool('xz', ['-c', '--arm64', '--delta=dist=4', '--lzma2', input])],
    ['several blocks', tool('xz', ['-c', '--block-size=50000', input])],
  ];

  it.each(variants)('%s', (_name, data) => {
    expect(detectCompression(data)).toBe('xz');
    expect(decompress(data, 'm.ko.xz').equals(original)).toBe(true);
  });

  it('several concatenated streams, with stream padding between them', () => {
    const a = variants[0][1];
    const b = variants[2][1];
    expect(decompress(Buffer.concat([a, b]), 'two.ko.xz').equals(Buffer.concat([original, original]))).toBe(true);
    expect(decompress(Buffer.concat([a, Buffer.alloc(8), b]), 'pad.ko.xz').equals(Buffer.concat([original, original]))).toBe(true);
  });

  it('truncated anywhere: "Unexpected end of input", never a partial result', () => {
    const data = variants[0][1];
    for (const n of cutPoints(data.length)) {
      expect(() => decompress(data.subarray(0, n), 'cut.ko.xz')).toThrow(DecompressError);
      try {
        decompress(data.subarray(0, n), 'cut.ko.xz');
      } catch (err) {
        expect((err as DecompressError).detail).toMatch(/^xz: (Unexpected end of input|File is corrupt)$/);
        expect((err as DecompressError).fn).toBe('xz_uncompress_belch');
      }
    }
  });

  it('corrupt bytes or trailing garbage: an error (every check kind catches them)', () => {
    for (const [name, data] of variants.filter(([n]) => n !== 'no check')) {
      for (const at of [12, 40, data.length >> 2, data.length >> 1, data.length - 30, data.length - 14, data.length - 3]) {
        const d = Buffer.from(data);
        d[at] ^= 0x10;
        expect(errorOrExact(d, `${name}.ko.xz`, original)).toBe('error');
      }
    }
    expect(() => decompress(Buffer.concat([variants[0][1], Buffer.from('garbage')]), 'g.ko.xz')).toThrow(/Unexpected end of input/);
    expect(() => decompress(Buffer.concat([variants[0][1], Buffer.from('garbage-garbage-garbage')]), 'g.ko.xz')).toThrow(DecompressError);
  });
});

describe('xz: liblzma as WebAssembly (where the native binding is not installed)', () => {
  const kernelLike = tool('xz', ['-c', '--check=crc32', '--lzma2=dict=1MiB', input]);
  const cases: [string, Buffer][] = [
    ['crc32', kernelLike],
    ['sha256 + BCJ', tool('xz', ['-c', '--check=sha256', '--x86', '--lzma2', input])],
    ['two streams with padding', Buffer.concat([kernelLike, Buffer.alloc(4), kernelLike])],
    ['garbage after', Buffer.concat([kernelLike, Buffer.from('garbage')])],
    ['3 zero bytes after', Buffer.concat([kernelLike, Buffer.alloc(3)])],
    ['cut', kernelLike.subarray(0, kernelLike.length >> 1)],
    ['cut in the footer', kernelLike.subarray(0, kernelLike.length - 3)],
    ['header only', kernelLike.subarray(0, 12)],
    ['flipped data', Buffer.concat([kernelLike.subarray(0, 500), Buffer.from([kernelLike[500] ^ 4]), kernelLike.subarray(501)])],
    ['flipped check', Buffer.concat([kernelLike.subarray(0, 12), Buffer.from([kernelLike[12] ^ 1]), kernelLike.subarray(13)])],
  ];

  it.each(cases)('%s: the same verdict as the xz tool, and as decompress()', (_name, data) => {
    const r = liblzmaDecompress(data);
    let toolOk = true;
    try {
      tool('xz', ['-dc'], data);
    } catch {
      toolOk = false;
    }
    expect('image' in r).toBe(toolOk);
    let mine: string;
    try {
      mine = decompress(data, 'x.ko.xz').toString('latin1');
    } catch (err) {
      mine = (err as DecompressError).detail;
    }
    const messages: Record<number, string> = { 7: 'xz: File format not recognized', 9: 'xz: File is corrupt', 10: 'xz: Unexpected end of input' };
    expect('image' in r ? r.image.toString('latin1') : messages[r.ret]).toBe(mine);
  });
});

/** libkmod's message for a file, or 'ok' when decompress gives exactly `expected` */
function verdict(data: Buffer, expected: Buffer, file = 'm.ko.zst'): string {
  try {
    const out = decompress(data, file);
    return out.equals(expected) ? 'ok' : 'WRONG BYTES';
  } catch (err) {
    expect(err).toBeInstanceOf(DecompressError);
    return (err as DecompressError).detail;
  }
}

describe('zstd', () => {
  const sized = tool('zstd', ['-q', '-c', input]);
  const unsized = tool('zstd', ['-q', '-c'], original);
  const noCheck = tool('zstd', ['-q', '-c', '--no-check', input]);
  const half = original.length >> 1;
  const halfFile = path.join(tmp, 'half');
  fs.writeFileSync(halfFile, original.subarray(0, half));
  const multi = Buffer.concat([tool('zstd', ['-q', '-c', halfFile]), tool('zstd', ['-q', '-c', '-19'], original.subarray(half))]);
  const skippable = Buffer.from([0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 1, 2, 3]);
  const emptyFrame = tool('zstd', ['-q', '-c', path.join(tmp, 'empty')]);

  // libkmod 34.2 (kmod_file_load_zstd): the first frame's content size, one ZSTD_decompress into exactly
  // that much; the messages are libzstd 1.5.7's (checked against the library itself)
  it.each([
    ['a frame with its content size and checksum', () => sized, 'ok'],
    ['no checksum', () => noCheck, 'ok'],
    ['a skippable frame after the frame', () => Buffer.concat([sized, skippable]), 'ok'],
    ['no content size (zstd writing to a pipe)', () => unsized, 'zstd: Failed to determine decompression size'],
    ['an empty frame (content size 0)', () => emptyFrame, 'zstd: Failed to determine decompression size'],
    ['the magic number alone', () => sized.subarray(0, 4), 'zstd: Failed to determine decompression size'],
    ['two frames (the first one sized)', () => multi, 'zstd: Destination buffer is too small'],
    ['the same frame twice', () => Buffer.concat([sized, sized]), 'zstd: Destination buffer is too small'],
    ['an empty frame after the frame', () => Buffer.concat([sized, emptyFrame]), 'ok'],
    ['bytes after the frame', () => Buffer.concat([sized, Buffer.from('junk!!')]), 'zstd: Src size is incorrect'],
    ['4 zero bytes of padding', () => Buffer.concat([sized, Buffer.alloc(4)]), 'zstd: Src size is incorrect'],
    ['8 zero bytes of padding', () => Buffer.concat([sized, Buffer.alloc(8)]), 'zstd: Src size is incorrect'],
    ['a cut skippable frame after the frame', () => Buffer.concat([sized, skippable.subarray(0, 9)]), 'zstd: Src size is incorrect'],
    ['the checksum cut off', () => sized.subarray(0, sized.length - 2), "zstd: Restored data doesn't match checksum"],
    ['a wrong checksum', () => Buffer.concat([sized.subarray(0, sized.length - 1), Buffer.from([sized[sized.length - 1] ^ 1])]), "zstd: Restored data doesn't match checksum"],
    ['a reserved bit in the frame header', () => Buffer.concat([sized.subarray(0, 4), Buffer.from([sized[4] | 8]), sized.subarray(5)]), 'zstd: Failed to determine decompression size'],
  ])('%s', (_name, data, expected) => {
    expect(verdict(data(), original)).toBe(expected);
  });

  it('truncated anywhere: an error with libzstd\'s wording, never a partial result', () => {
    for (const data of [sized, noCheck, multi]) {
      for (const n of cutPoints(data.length)) {
        // (a cut inside the second frame: the first one has filled the buffer its size asked for)
        expect(verdict(data.subarray(0, n), original)).toMatch(/^zstd: (Src size is incorrect|Restored data doesn't match checksum|Failed to determine decompression size|Data corruption detected|Destination buffer is too small)$/);
      }
    }
  });

  it('corrupt bytes: the verdict of libzstd itself', () => {
    let errors = 0;
    for (const data of [sized, noCheck]) {
      for (let at = 4; at < data.length; at += Math.max(1, data.length >> 7)) {
        const d = Buffer.from(data);
        d[at] ^= 0x22;
        const mine = verdict(d, original);
        const r = libzstdDecompress(d);
        const libzstd = 'image' in r ? (r.image.equals(original) ? 'ok' : 'WRONG BYTES') : 'error' in r ? `zstd: ${r.error}` : '';
        // (a flip in a frame without checksum may give other bytes: libzstd's result, not ours, decides)
        if (mine !== 'WRONG BYTES' || data !== noCheck) expect(mine).toBe(libzstd);
        if (mine !== 'ok') errors++;
      }
    }
    expect(errors).toBeGreaterThan(100);
  });

  it('a content size too large for any allocation: ENOMEM without a message, as libkmod\'s failed malloc', () => {
    // the 8-byte content size field (FCS flag 3), stating 2^50 bytes
    const header = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0xc0, 0x58, 0, 0, 0, 0, 0, 4, 0, 1, 0, 0, 0x41]);
    try {
      decompress(header, 'huge.ko.zst');
      expect.unreachable();
    } catch (err) {
      expect((err as DecompressError).errno).toBe(12);
      expect((err as DecompressError).detail).toBe('');
    }
  });

  it('libzstd error names by code', () => {
    expect(zstdErrorName(-72)).toBe('Src size is incorrect');
    expect(zstdErrorName(-70)).toBe('Destination buffer is too small');
    expect(zstdErrorName(-119)).toBe('Unspecified error code');
  });
});

describe('gzip', () => {
  const gz = tool('gzip', ['-c', '-n', input]);

  it('one member, several members', () => {
    expect(decompress(gz, 'a.ko.gz').equals(original)).toBe(true);
    expect(decompress(Buffer.concat([gz, gz]), 'b.ko.gz').equals(Buffer.concat([original, original]))).toBe(true);
  });

  it('truncated or corrupt: an error naming the file', () => {
    for (const n of cutPoints(gz.length)) expect(() => decompress(gz.subarray(0, n), 'cut.ko.gz')).toThrow(DecompressError);
    for (const at of [10, 100, gz.length >> 1, gz.length - 6]) {
      const d = Buffer.from(gz);
      d[at] ^= 0x40;
      expect(errorOrExact(d, 'flip.ko.gz', original)).toBe('error');
    }
  });
});
