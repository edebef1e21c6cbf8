// The native backend: /proc and /sys as kmod reads them (over fake trees), and the system calls
// through the addon — on this machine's kernel, which may or may not support modules; the calls are
// made only with arguments that cannot load or remove anything.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadedModuleNames, NativeBackend, parseProcModules, rawDirEntries } from '../../src/backends/native';
import { KmodError } from '../../src/errors';
import { EINVAL, ENOENT, ENOEXEC, ENOSYS, EPERM } from '../../src/errno';
import { cleanEnv, repoRoot } from '../support/reference';

let tmp: string;

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-native-'));
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

function write(file: string, text: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
}

describe('parseProcModules', () => {
  it('reads every field of the kernel format, with and without users and taints', () => {
    const text =
      'llc 16384 3 bridge,stp,garp, Live 0xffffffffc0a10000\n' +
      'dummy 12288 0 - Live 0x0000000000000000 (OE)\n' +
      'vrf 36864 0 [permanent], Live 0xffffffffc0b10000\n' +
      'foo 16384 1 - Loading 0xffffffffc0c00000 (OE+)\n' +
      'bar 8192 -1 - Unloading 0xffffffffc0d00000\n';
    expect(parseProcModules(text)).toEqual([
      { name: 'llc', size: 16384, refcnt: 3, users: ['bridge', 'stp', 'garp'], state: 'Live', address: '0xffffffffc0a10000', taints: '' },
      { name: 'dummy', size: 12288, refcnt: 0, users: [], state: 'Live', address: '0x0000000000000000', taints: 'OE' },
      { name: 'vrf', size: 36864, refcnt: 0, users: ['[permanent]'], state: 'Live', address: '0xffffffffc0b10000', taints: '' },
      { name: 'foo', size: 16384, refcnt: 1, users: [], state: 'Loading', address: '0xffffffffc0c00000', taints: 'OE+' },
      { name: 'bar', size: 8192, refcnt: -1, users: [], state: 'Unloading', address: '0xffffffffc0d00000', taints: '' },
    ]);
  });
  it('skips empty and truncated lines instead of failing', () => {
    expect(parseProcModules('\nshort 1 2\n\ndummy 12288 0 - Live 0x0\n')).toEqual([
      { name: 'dummy', size: 12288, refcnt: 0, users: [], state: 'Live', address: '0x0', taints: '' },
    ]);
  });
});

describe('loadedModuleNames (kmod_module_new_from_loaded)', () => {
  it('takes the first token of every line, well-formed or not', () => {
    expect(loadedModuleNames('a 1 0 - Live 0x0\nb\nc 5\n\tx\t10 0\n y 3\n')).toEqual(['a', 'b\n', 'c', 'x', 'y']);
    expect(loadedModuleNames('\n')).toEqual(['\n']);
    expect(loadedModuleNames('')).toEqual([]);
    // a line of blanks without newline has none
    expect(loadedModuleNames('x 1\n  \t')).toEqual(['x', null]);
  });
  it('reads 4095 bytes a line and skips the rest of a longer one', () => {
    expect(loadedModuleNames(`${'a'.repeat(5000)} 1\nb 1\n`)).toEqual(['a'.repeat(4095), 'b']);
    expect(loadedModuleNames(`${' '.repeat(4095)}late 1\nz 1\n`)).toEqual([null, 'z']);
  });
  it('stops at a NUL, and skips the lines after it up to one ending its visible part with a newline', () => {
    expect(loadedModuleNames('x\0y 1\nq-r 1\nk 1\n')).toEqual(['x', 'k']);
    expect(loadedModuleNames('\0abc\nk 1\n')).toEqual([null, 'k']);
    expect(loadedModuleNames('a\0\nb 1\nc 1\n')).toEqual(['a', 'c']);
  });
});

describe('rawDirEntries', () => {
  it('returns the directory order of the file system, not a sorted one', () => {
    const dir = path.join(tmp, 'order');
    for (const n of ['zeta', 'alpha', 'mid', 'beta']) write(path.join(dir, n), '');
    const expected = spawnSync('ls', ['-U', '-1', dir], { encoding: 'utf8' }).stdout.split('\n').filter((l) => l !== '');
    expect(rawDirEntries(dir)).toEqual(expected);
    expect(rawDirEntries(dir).slice().sort()).toEqual(['alpha', 'beta', 'mid', 'zeta']);
  });
  it('gives [] for a missing directory', () => {
    expect(rawDirEntries(path.join(tmp, 'missing'))).toEqual([]);
  });
});

describe('NativeBackend over a fake /sys and /proc', () => {
  let b: NativeBackend;
  beforeAll(() => {
    const sys = path.join(tmp, 'sys');
    const proc = path.join(tmp, 'proc');
    write(path.join(sys, 'module/llc/initstate'), 'live\n');
    write(path.join(sys, 'module/llc/refcnt'), '2\n');
    write(path.join(sys, 'module/llc/coresize'), '16384\n');
    fs.mkdirSync(path.join(sys, 'module/llc/holders'), { recursive: true });
    fs.symlinkSync('../../stp', path.join(sys, 'module/llc/holders/stp'));
    fs.symlinkSync('../../bridge', path.join(sys, 'module/llc/holders/bridge'));
    write(path.join(sys, 'module/foo/initstate'), 'coming\n');
    write(path.join(sys, 'module/bar/initstate'), 'going\n');
    write(path.join(sys, 'module/odd/initstate'), 'weird\n');
    fs.mkdirSync(path.join(sys, 'module/ext4/parameters'), { recursive: true });
    write(path.join(sys, 'module/compression'), 'xz\n');
    write(path.join(proc, 'modules'), 'llc 16384 2 bridge,stp, Live 0xffffffffc0a10000\n');
    b = new NativeBackend({ sysDir: sys, procDir: proc });
  });
  it('reads initstate, with a bare directory meaning builtin', () => {
    expect(b.initstate('llc')).toBe('live');
    expect(b.initstate('foo')).toBe('coming');
    expect(b.initstate('bar')).toBe('going');
    expect(b.initstate('ext4')).toBe('builtin');
    expect(b.initstate('odd')).toBeUndefined();
    expect(b.initstate('nothere')).toBeUndefined();
  });
  it('answers a module that is not loaded, or odd /sys entries, as a failed read does', () => {
    const sys = b.sysDir;
    write(path.join(sys, 'module/plainfile'), '');
    fs.mkdirSync(path.join(sys, 'module/dirstate/initstate'), { recursive: true });
    expect(b.initstate('plainfile')).toBeUndefined();
    expect(b.initstate('dirstate')).toBe('builtin');
    expect(b.readModuleAttr('dirstate', 'initstate')).toBeUndefined();
    expect(b.readModuleAttr('plainfile', 'initstate')).toBeUndefined();
    expect(b.refcnt('nothere')).toBeUndefined();
    // modprobe asks this for each module of its list, most of them not loaded
    for (let i = 0; i < 5000; i++) expect(b.initstate(`absent${i}`)).toBeUndefined();
  });
  it('reads refcnt, holders in directory order, attributes, compression and /proc/modules', () => {
    expect(b.refcnt('llc')).toBe(2);
    expect(b.refcnt('ext4')).toBeUndefined();
    expect(b.holders('llc')).toEqual(rawDirEntries(path.join(b.sysDir, 'module/llc/holders')));
    expect(b.holders('llc').slice().sort()).toEqual(['bridge', 'stp']);
    expect(b.holders('nothere')).toBeUndefined();
    expect(b.readModuleAttr('llc', 'coresize')).toBe('16384\n');
    expect(b.readModuleAttr('llc', 'nothing')).toBeUndefined();
    expect(b.compression()).toBe('xz');
    expect(b.procModules()?.map((m) => m.name)).toEqual(['llc']);
  });
  it('reports no /proc/modules and no compression when the kernel has none', () => {
    const empty = new NativeBackend({ sysDir: path.join(tmp, 'nosys'), procDir: path.join(tmp, 'noproc') });
    expect(empty.procModules()).toBeUndefined();
    expect(empty.compression()).toBeUndefined();
  });
});

describe('system calls through the addon', () => {
  const b = new NativeBackend();
  const errnoOf = (f: () => void): number => {
    try {
      f();
    } catch (err) {
      expect(err).toBeInstanceOf(KmodError);
      return (err as KmodError).errno;
    }
    throw new Error('the call succeeded');
  };
  it('delete_module of a name no kernel has fails (ENOSYS here, ENOENT/EPERM on a kernel with modules)', () => {
    expect([ENOSYS, ENOENT, EPERM]).toContain(errnoOf(() => b.deleteModule('kmodts_no_such_module', 0o4000)));
  });
  it('finit_module and init_module of a file that is not a module fail', () => {
    const junk = path.join(tmp, 'junk.ko');
    fs.writeFileSync(junk, Buffer.alloc(128, 0x41));
    expect([ENOSYS, ENOEXEC, EPERM]).toContain(errnoOf(() => b.finitModule(junk, '', 0)));
    expect([ENOSYS, ENOEXEC, EPERM]).toContain(errnoOf(() => b.initModule(new Uint8Array(128), '')));
    // flags the kernel does not know are refused before anything is read
    expect([ENOSYS, EINVAL, EPERM]).toContain(errnoOf(() => b.finitModule(junk, '', 0x80)));
  });
  it('finit_module of a missing file fails with the open() errno, not a crash', () => {
    expect(errnoOf(() => b.finitModule(path.join(tmp, 'missing.ko'), '', 0))).toBe(ENOENT);
  });
  it('the addon rejects wrong argument types with a TypeError', () => {
    const addon = require(path.join(repoRoot, 'build/Release/kmodts_native.node'));
    expect(() => addon.finitModule('x', '', 0)).toThrow(TypeError);
    expect(() => addon.initModule('not bytes', '')).toThrow(TypeError);
    expect(() => addon.deleteModule(1, 0)).toThrow(TypeError);
    expect(() => addon.deleteModule('x')).toThrow(TypeError);
  });
});

describe('without the compiled helper', () => {
  it('only loading and removing fail, with a message saying why', () => {
    const env = cleanEnv({ KMODTS_NATIVE_ADDON: path.join(tmp, 'no-such-addon.node') });
    const bin = path.join(repoRoot, 'bin/kmodts.js');
    const r = spawnSync(process.execPath, [bin, 'rmmod', '-f', 'kmodts_no_such_module'], { env, encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`rmmod: ERROR: the native loader ${path.join(tmp, 'no-such-addon.node')} is not built`);
    expect(r.stderr).toContain('rmmod: ERROR: could not remove module kmodts_no_such_module: Function not implemented\n');
    // reading state needs no helper
    const v = spawnSync(process.execPath, [bin, 'insmod', '--version'], { env, encoding: 'utf8' });
    expect(v.status).toBe(0);
  });
});
