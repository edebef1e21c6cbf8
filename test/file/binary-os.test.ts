import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import * as bfs from '../../src/file/binary-os';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-binary-os-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const distBinaryOs = path.join(__dirname, '../../dist/file/binary-os.js');

describe('binary strings at the edge of the process', () => {
  it('binaryString keeps binary strings and takes other strings as UTF-8', () => {
    expect(bfs.binaryString('abc')).toBe('abc');
    expect(bfs.binaryString('caf\xc3\xa9')).toBe('caf\xc3\xa9');
    expect(bfs.binaryString('x\xffy')).toBe('x\xffy');
    // a char above 0xff: an ordinary JavaScript string, its UTF-8 bytes
    expect(bfs.binaryString('\u20ac')).toBe('\xe2\x82\xac');
    expect(bfs.binaryFromUtf8('caf\u00e9')).toBe('caf\xc3\xa9');
  });

  it('osPath gives node:fs the bytes of a non-ASCII path and leaves others alone', () => {
    expect(bfs.osPath('/tmp/a')).toBe('/tmp/a');
    expect(bfs.osPath(3)).toBe(3);
    expect(bfs.osPath('/tmp/\xff')).toEqual(Buffer.from([0x2f, 0x74, 0x6d, 0x70, 0x2f, 0xff]));
  });

  it('files named by bytes that are not UTF-8 are made, listed, read and removed by their bytes', () => {
    const dir = `${tmp}/d\xe9`;
    bfs.mkdirSync(dir);
    bfs.writeFileSync(`${dir}/b\xffd`, 'x');
    bfs.writeFileSync(`${dir}/caf\xc3\xa9`, 'y');
    // the bytes on disk are the chars of the binary strings
    expect(fs.readdirSync(Buffer.from(dir, 'latin1'), { encoding: 'buffer' }).map((b) => b.toString('hex')).sort()).toEqual(['62ff64', '636166c3a9']);
    expect(bfs.readdirSync(dir).sort()).toEqual(['b\xffd', 'caf\xc3\xa9']);
    expect(bfs.readdirSync(dir, { withFileTypes: true }).map((e) => e.name).sort()).toEqual(['b\xffd', 'caf\xc3\xa9']);
    const d = bfs.opendirSync(dir);
    const names: string[] = [];
    for (let e = d.readSync(); e !== null; e = d.readSync()) names.push(e.name);
    d.closeSync();
    expect(names.sort()).toEqual(['b\xffd', 'caf\xc3\xa9']);
    expect(bfs.readFileSync(`${dir}/b\xffd`, 'latin1')).toBe('x');
    expect(bfs.existsSync(`${dir}/b\xffd`)).toBe(true);
    expect(bfs.statSync(`${dir}/caf\xc3\xa9`).size).toBe(1);
    bfs.renameSync(`${dir}/b\xffd`, `${dir}/n\xe9w`);
    expect(bfs.existsSync(`${dir}/n\xe9w`)).toBe(true);
    expect(bfs.realpathSync(`${dir}/n\xe9w`)).toBe(`${fs.realpathSync(tmp)}/d\xe9/n\xe9w`);
    bfs.unlinkSync(`${dir}/n\xe9w`);
    expect(bfs.existsSync(`${dir}/n\xe9w`)).toBe(false);
  });

  it('childText passes the bytes of UTF-8 text to a child process as they are', () => {
    const echo = spawnSync('printf', ['%s', bfs.childText('caf\xc3\xa9')], { encoding: 'latin1', env: bfs.childEnv({ PATH: process.env.PATH }) });
    expect(echo.stdout).toBe('caf\xc3\xa9');
  });

  it('processArgs and processEnv give the bytes the process was given, UTF-8 or not', () => {
    // a child Node, its arguments and environment set by perl as bytes (Node can only pass UTF-8)
    const script = `const b = require(${JSON.stringify(distBinaryOs)}); const e = b.processEnv(); process.stdout.write(JSON.stringify({ args: b.processArgs(), env: e.KMODTS_TEST_BYTES, key: Object.keys(e).filter((k) => k.startsWith('KMODTS_K')) }));`;
    const perl = 'my $n = shift; $ENV{"KMODTS_TEST_BYTES"} = "x\\xffy\\xc3\\xa9"; $ENV{"KMODTS_K\\xc3\\xa9Y"} = "1"; exec($n, "-e", shift, "--", "a", "b\\xffc", "caf\\xc3\\xa9", "\\xc3") or die';
    const r = spawnSync('perl', ['-e', perl, process.execPath, script], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual({ args: ['a', 'b\xffc', 'caf\xc3\xa9', '\xc3'], env: 'x\xffy\xc3\xa9', key: ['KMODTS_K\xc3\xa9Y'] });
  });

  it('processArgs: ASCII arguments as they are, without reading /proc', () => {
    expect(bfs.processArgs(['node', 'script', '-n', 'dummy'])).toEqual(['script', '-n', 'dummy']);
  });

  it('processArgs: an argument that is not in /proc/self/cmdline is taken as UTF-8', () => {
    expect(bfs.processArgs(['node', 'script', 'caf\u00e9'])).toEqual(['script', 'caf\xc3\xa9']);
  });

  it('currentDirectory is the directory by its bytes', () => {
    const dir = `${fs.realpathSync(tmp)}/cwd\xff`;
    bfs.mkdirSync(dir);
    const r = spawnSync('sh', ['-c', `cd "$(printf '%b' "$0")" && exec "$@"`, dir.replace(/\xff/, '\\0377'), process.execPath, '-e', `process.stdout.write(Buffer.from(require(${JSON.stringify(distBinaryOs)}).currentDirectory(), 'latin1').toString('hex'))`], { encoding: 'utf8' });
    expect(r.stdout).toBe(Buffer.from(dir, 'latin1').toString('hex'));
  });

  it('currentDirectory is found past PATH_MAX (where process.cwd() fails), by its bytes', () => {
    // 21 levels of 200 bytes, one of them UTF-8 "é": over 4096 bytes, which getcwd(2) cannot return
    const names = Array.from({ length: 21 }, (_, i) => (i === 7 ? '\u00e9'.repeat(100) : String(i % 10).repeat(200)));
    const start = process.cwd();
    process.chdir(tmp);
    let made = 0;
    try {
      for (const n of names) {
        fs.mkdirSync(n);
        process.chdir(n);
        made++;
      }
      expect(() => process.cwd()).toThrow();
      expect(bfs.currentDirectory()).toBe(bfs.binaryFromUtf8(`${fs.realpathSync(tmp)}/${names.join('/')}`));
    } finally {
      // removed from inside: rm -r cannot name the deepest directories by their full path
      while (made > 0) {
        process.chdir('..');
        fs.rmdirSync(names[--made]);
      }
      process.chdir(start);
    }
  });
});
