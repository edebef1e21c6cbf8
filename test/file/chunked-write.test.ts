// Writing a file in order through one small buffer (src/file/chunked-write.ts): whatever the sizes of
// the parts against the chunk, the file holds them in order from its start offset, and the observer
// sees the same bytes in the same order.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { chunkedWrite, writeAllAt } from '../../src/file/chunked-write';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-chunked-'));

function bytes(n: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);
}

describe('chunkedWrite', () => {
  it('writes parts smaller than, as large as and larger than a chunk, and zeros, in order after `start`', () => {
    for (const chunkBytes of [1, 7, 16, 64, 1 << 16]) {
      const file = path.join(dir, `f${chunkBytes}`);
      fs.writeFileSync(file, 'HEAD');
      const fd = fs.openSync(file, 'r+');
      const parts = [bytes(3, 1), new Uint8Array(0), bytes(16, 2), bytes(40, 3), bytes(1, 4), bytes(15, 5), bytes(100, 6)];
      const seen: Uint8Array[] = [];
      const out = chunkedWrite(fd, 4, (b) => seen.push(Uint8Array.from(b)), chunkBytes);
      const expected: Uint8Array[] = [];
      for (const [k, part] of parts.entries()) {
        out.put(part);
        expected.push(part);
        out.zeros(k % 8);
        expected.push(new Uint8Array(k % 8));
      }
      out.finish();
      fs.closeSync(fd);
      const body = Buffer.concat(expected);
      expect(fs.readFileSync(file).equals(Buffer.concat([Buffer.from('HEAD'), body])), `chunk ${chunkBytes}`).toBe(true);
      expect(Buffer.concat(seen).equals(body)).toBe(true);
      expect(seen.every((b) => b.length > 0)).toBe(true);
      // nothing larger than a chunk goes out but a part that was that large on its own
      expect(seen.every((b) => b.length <= Math.max(chunkBytes, 100))).toBe(true);
    }
  });

  it('writes nothing for nothing put', () => {
    const file = path.join(dir, 'empty');
    fs.writeFileSync(file, '');
    const fd = fs.openSync(file, 'r+');
    const seen: Uint8Array[] = [];
    const out = chunkedWrite(fd, 0, (b) => seen.push(b), 8);
    out.put(new Uint8Array(0));
    out.zeros(0);
    out.finish();
    fs.closeSync(fd);
    expect(fs.statSync(file).size).toBe(0);
    expect(seen).toEqual([]);
  });
});

describe('writeAllAt', () => {
  it('writes at the offset given, over what is there, and leaves the rest', () => {
    const file = path.join(dir, 'at');
    fs.writeFileSync(file, 'abcdefgh');
    const fd = fs.openSync(file, 'r+');
    writeAllAt(fd, Buffer.from('XY'), 3);
    fs.closeSync(fd);
    expect(fs.readFileSync(file, 'latin1')).toBe('abcXYfgh');
  });

  it('throws the system error for a descriptor it cannot write', () => {
    const file = path.join(dir, 'ro');
    fs.writeFileSync(file, 'x');
    const fd = fs.openSync(file, 'r');
    expect(() => writeAllAt(fd, Buffer.from('y'), 0)).toThrow(/EBADF/);
    fs.closeSync(fd);
  });
});
