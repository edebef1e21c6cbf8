import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readBinaryString } from '../../src/file/read-text';

describe('readBinaryString', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-read-text-'));
  const write = (name: string, bytes: number[] | Buffer): string => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, Buffer.from(bytes));
    return f;
  };
  it('gives one char per byte whatever the bytes: ASCII, valid UTF-8, invalid UTF-8, NUL, every byte value', () => {
    const all = Buffer.alloc(256);
    for (let i = 0; i < 256; i++) all[i] = i;
    const cases: [string, number[] | Buffer][] = [
      ['ascii', Buffer.from('options snd-pcsp index=-2\n# comment\n')],
      ['utf8', Buffer.from('alias caf\u00e9 x \u2603\n', 'utf8')],
      ['invalid', [0x61, 0xff, 0xfe, 0x80, 0x0a]],
      ['nul', [0x61, 0x00, 0x62]],
      ['all', all],
      ['empty', []],
    ];
    for (const [name, bytes] of cases) {
      const f = write(name, bytes);
      expect(readBinaryString(f)).toBe(fs.readFileSync(f, 'latin1'));
      expect(Buffer.from(readBinaryString(f), 'latin1')).toEqual(Buffer.from(bytes));
    }
  });
  it('throws as readFileSync does for a missing file or a directory', () => {
    expect(() => readBinaryString(path.join(dir, 'missing'))).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    expect(() => readBinaryString(dir)).toThrow(expect.objectContaining({ code: 'EISDIR' }));
  });
});
