// src/static-nodes.ts: modules.devname read as kmod 34.2 reads it (fgets pieces, sscanf "%s %s %c%u:%u"),
// the three output formats, and the output file's parent directories. The same behaviour against kmod
// itself: test/diff/kmod.test.ts.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ENOTDIR } from '../../src/errno';
import {
  devnamePath,
  formatDevnameEntry,
  mkdirParents,
  openStaticNodesOutput,
  parseDevname,
  readDevnameFile,
  StaticNodesOutputError,
  writeStaticNodesOutput,
  type DevnameRecord,
} from '../../src/indexes/static-nodes';

const entry = (module: string, devname: string, type: 'c' | 'b', major: number, minor: number): DevnameRecord => ({
  kind: 'entry',
  entry: { module, devname, type, major, minor },
});
const invalid = (text: string): DevnameRecord => ({ kind: 'invalid', text });

describe('parseDevname', () => {
  it('reads entries and skips comment lines', () => {
    expect(parseDevname('# Device nodes\nfuse fuse c10:229\ntun net/tun c10:200\n')).toEqual([entry('fuse', 'fuse', 'c', 10, 229), entry('tun', 'net/tun', 'c', 10, 200)]);
    expect(parseDevname('')).toEqual([]);
  });

  it('rejects what sscanf does not convert fully, blank lines included, echoing the line', () => {
    expect(parseDevname('\nm\nm d\nm d c\nm d c1\nm d c1:\nm d x1:2\nm d c1 :2\nm d c0x1:2')).toEqual([
      invalid('\n'), invalid('m\n'), invalid('m d\n'), invalid('m d c\n'), invalid('m d c1\n'), invalid('m d c1:\n'), invalid('m d x1:2\n'),
      invalid('m d c1 :2\n'), invalid('m d c0x1:2'),
    ]);
    // a '#' only counts in the first column
    expect(parseDevname(' # x y c1:2\n')).toEqual([invalid(' # x y c1:2\n')]);
  });

  it('takes white space where sscanf skips it, and ignores what follows the minor', () => {
    expect(parseDevname('a\tb \t c 1: 2junk more\n')).toEqual([entry('a', 'b', 'c', 1, 2)]);
  });

  it('converts numbers as %u does: sign, wrap to 32 bits, saturation', () => {
    const nums = parseDevname('a b c-1:4294967296\na b b+7:-4294967295\na b c99999999999999999999:-99999999999999999999\n');
    expect(nums).toEqual([entry('a', 'b', 'c', 4294967295, 0), entry('a', 'b', 'b', 7, 1), entry('a', 'b', 'c', 4294967295, 4294967295)]);
    expect(parseDevname('a b c+:1\na b c-:1\n').map((r) => r.kind)).toEqual(['invalid', 'invalid']);
  });

  it('reads a line longer than 4095 bytes as several pieces, and stops each at a NUL byte', () => {
    const long = 'x'.repeat(5000);
    const r = parseDevname(`${long} d c1:2\n`);
    expect(r).toEqual([invalid('x'.repeat(4095)), entry('x'.repeat(905), 'd', 'c', 1, 2)]);
    expect(parseDevname('a\0b d c1:2\n\0\n')).toEqual([invalid('a'), invalid('')]);
  });
});

describe('formatDevnameEntry', () => {
  const tun = { module: 'tun', devname: 'net/tun', type: 'c' as const, major: 10, minor: 200 };
  const loop = { module: 'loop', devname: 'loop0', type: 'b' as const, major: 7, minor: 0 };
  it('human', () => {
    expect(formatDevnameEntry(loop, 'human')).toBe('Module: loop\n\tDevice node: /dev/loop0\n\t\tType: block device\n\t\tMajor: 7\n\t\tMinor: 0\n');
  });
  it('tmpfiles: a directory line for nested nodes', () => {
    expect(formatDevnameEntry(tun, 'tmpfiles')).toBe('d /dev/net 0755 - - -\nc! /dev/net/tun 0600 - - - 10:200\n');
    expect(formatDevnameEntry(loop, 'tmpfiles')).toBe('b! /dev/loop0 0600 - - - 7:0\n');
  });
  it('devname', () => {
    expect(formatDevnameEntry(tun, 'devname')).toBe('tun net/tun c10:200\n');
  });
});

describe('files', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-static-nodes-'));

  it('the input: its path, missing, a directory, unreadable', () => {
    expect(devnamePath('6.1.0')).toBe('/lib/modules/6.1.0/modules.devname');
    expect(() => devnamePath('x'.repeat(5000))).toThrow(/path too long/);
    expect(readDevnameFile(path.join(dir, 'none'))).toBeUndefined();
    expect(readDevnameFile(dir)).toBe('');
    fs.writeFileSync(path.join(dir, 'f'), 'x');
    expect(() => readDevnameFile(path.join(dir, 'f/g'))).toThrow(expect.objectContaining({ errno: ENOTDIR }));
  });

  it('mkdirParents creates the missing directories, refuses a file in the way', () => {
    expect(mkdirParents(path.join(dir, 'a//b/c/file'))).toBe(0);
    expect(fs.statSync(path.join(dir, 'a/b/c')).isDirectory()).toBe(true);
    expect(fs.existsSync(path.join(dir, 'a/b/c/file'))).toBe(false);
    expect(mkdirParents('file-here')).toBe(0);
    expect(mkdirParents('/file-at-root')).toBe(0);
    expect(mkdirParents(path.join(dir, 'f/x/file'))).toBe(ENOTDIR);
  });

  it('the output: truncated in place, typed errors naming the stage', () => {
    const out = path.join(dir, 'new/dir/out.conf');
    writeStaticNodesOutput(openStaticNodesOutput(out), 'one\n');
    fs.chmodSync(out, 0o640);
    writeStaticNodesOutput(openStaticNodesOutput(out), 'two\n');
    expect(fs.readFileSync(out, 'utf8')).toBe('two\n');
    expect(fs.statSync(out).mode & 0o777).toBe(0o640);
    const stage = (file: string) => {
      try {
        openStaticNodesOutput(file);
      } catch (err) {
        expect(err).toBeInstanceOf(StaticNodesOutputError);
        return [(err as StaticNodesOutputError).stage, (err as StaticNodesOutputError).reason];
      }
      return undefined;
    };
    expect(stage(path.join(dir, 'f/x/y'))).toEqual(['parent-directory', 'Not a directory']);
    expect(stage(dir)).toEqual(['create', 'Is a directory']);
  });
});
