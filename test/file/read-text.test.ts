import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { readBinaryString, readFileBytes, UNSIZED_FILE_MAX_BYTES } from '../../src/file/read-text';

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
    expect(() => readBinaryString(path.join(dir, 'missing'))).toThrow(expect.objectContaining({ code: 'ENOENT', syscall: 'open' }));
    expect(() => readBinaryString(dir)).toThrow(expect.objectContaining({ code: 'EISDIR', syscall: 'read' }));
  });
  it('reads a FIFO to its end (a configuration given as <(...))', async () => {
    const fifo = path.join(dir, 'fifo');
    fs.rmSync(fifo, { force: true });
    await new Promise((resolve) => spawn('mkfifo', [fifo]).on('exit', resolve));
    const text = 'alias x \xff y\n'.repeat(10000);
    // (the writer has its bytes already: this thread blocks in the read, its event loop with it)
    const source = write('fifo-source', Buffer.from(text, 'latin1'));
    const writer = spawn('sh', ['-c', `cat '${source}' > '${fifo}'`], { stdio: 'ignore' });
    expect(readBinaryString(fifo)).toBe(text);
    await new Promise((resolve) => writer.on('exit', resolve));
  });
  it('refuses a device that never ends with EFBIG, after its first UNSIZED_FILE_MAX_BYTES', () => {
    expect(() => readBinaryString('/dev/zero')).toThrow(expect.objectContaining({ code: 'EFBIG', syscall: 'read' }));
    expect(UNSIZED_FILE_MAX_BYTES).toBe(64 << 20);
  });
  it('gives the first `limit` bytes where a limit is given, of any kind of file', () => {
    expect(readBinaryString('/dev/zero', 10)).toBe('\0'.repeat(10));
    const f = write('long', Buffer.from('0123456789abcdef'));
    expect(readBinaryString(f, 4)).toBe('0123');
    expect(readBinaryString(f, 100)).toBe('0123456789abcdef');
    expect(readBinaryString(f, 0)).toBe('');
  });
  it('reads a regular file that says it is empty (procfs) to its end', () => {
    expect(fs.statSync('/proc/self/status').size).toBe(0);
    expect(readBinaryString('/proc/self/status')).toMatch(/^Name:/);
  });
});

describe('readFileBytes', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-readbytes-'));
  it('reads regular files, /proc files and FIFOs to their end, by path or by descriptor', async () => {
    const f = path.join(dir, 'f');
    fs.writeFileSync(f, Buffer.from([0, 1, 2, 0xff]));
    expect(readFileBytes(f)).toEqual(Buffer.from([0, 1, 2, 0xff]));
    const fd = fs.openSync(f, 'r');
    expect(readFileBytes(fd)).toEqual(Buffer.from([0, 1, 2, 0xff]));
    // (the descriptor stays the caller's)
    expect(fs.fstatSync(fd).size).toBe(4);
    fs.closeSync(fd);
    expect(readFileBytes('/proc/self/status').toString('latin1')).toMatch(/^Name:/);
    const fifo = path.join(dir, 'fifo');
    await new Promise((resolve) => spawn('mkfifo', [fifo]).on('exit', resolve));
    const writer = spawn('sh', ['-c', `printf 'a\\nb\\n' > '${fifo}'`], { stdio: 'ignore' });
    expect(readFileBytes(fifo).toString()).toBe('a\nb\n');
    await new Promise((resolve) => writer.on('exit', resolve));
  });
  it('refuses a device that never ends with EFBIG (a modules.order or System.map linked to /dev/zero), by path or by descriptor', () => {
    expect(() => readFileBytes('/dev/zero')).toThrow(expect.objectContaining({ code: 'EFBIG' }));
    const fd = fs.openSync('/dev/zero', 'r');
    try {
      expect(() => readFileBytes(fd)).toThrow(expect.objectContaining({ code: 'EFBIG' }));
    } finally {
      fs.closeSync(fd);
    }
  });
  it('throws as readFileSync for a missing file or a directory', () => {
    expect(() => readFileBytes(path.join(dir, 'missing'))).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    expect(() => readFileBytes(dir)).toThrow(expect.objectContaining({ code: 'EISDIR' }));
  });
});
