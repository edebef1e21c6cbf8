// openModuleFile: reading, lazy decompression and parsing, errors with errno and file, libkmod's log line.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { KmodError } from '../../src/errors';
import { openModuleFile, ReadBuffer } from '../../src/file/module-file';
import { decodesOffThread } from '../../src/file/read-decode';
import { builtinInfo, fileInfo, moduleInfo, moduleParams } from '../../src/resolution/modinfo';
import { Context } from '../../src/resolution/context';
import { moduleDir } from '../support/reference';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-modfile-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function errnoOf(f: () => unknown): number | undefined {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(KmodError);
    return (err as KmodError).errno;
  }
  return undefined;
}

describe('openModuleFile', () => {
  it('an uncompressed file without a size (a device, a /proc file) is EINVAL, as libkmod\'s mmap of it: /dev/zero is not read for ever', () => {
    for (const f of ['/dev/zero', '/dev/urandom', '/proc/self/status']) expect(errnoOf(() => openModuleFile(f)), f).toBe(22);
  });
  const xz = path.join(moduleDir(), 'kernel/net/key/af_key.ko.xz');

  it('opens a compressed module and gives every view', () => {
    const m = openModuleFile(xz);
    expect(m.compression).toBe('xz');
    expect(m.raw.length).toBe(fs.statSync(xz).size);
    expect(m.image.subarray(0, 4).toString('latin1')).toBe('\x7fELF');
    expect(m.modinfo()).toContainEqual(['name', 'af_key']);
    expect(m.versions().length).toBeGreaterThan(10);
    expect(m.dependencySymbols().length).toBeGreaterThanOrEqual(m.versions().length);
    expect(m.thisModuleName()).toBe('af_key');
    expect(m.signature()?.idType).toBe('PKCS#7');
    // no exports: no __crc_ symbols and no __ksymtab_strings (ENODATA, as kmod)
    expect(errnoOf(() => m.exportedSymbols())).toBe(61);
    const info = fileInfo(m);
    expect(info.slice(-5).map(([k]) => k)).toEqual(['sig_id', 'signer', 'sig_key', 'sig_hashalgo', 'signature']);
  });

  it('missing, short, non-ELF and corrupt files fail with kmod\'s errno, naming the file', () => {
    expect(errnoOf(() => openModuleFile(path.join(tmp, 'none.ko')))).toBe(2);
    const short = path.join(tmp, 'short.ko');
    fs.writeFileSync(short, '12345');
    expect(errnoOf(() => openModuleFile(short))).toBe(22);
    const text = path.join(tmp, 'text.ko');
    fs.writeFileSync(text, 'just some text, not ELF');
    expect(errnoOf(() => openModuleFile(text).elf)).toBe(8);
    const cut = path.join(tmp, 'cut.ko.xz');
    fs.writeFileSync(cut, fs.readFileSync(xz).subarray(0, 1000));
    const logs: string[] = [];
    const m = openModuleFile(cut, { log: (prio, fn, msg) => logs.push(`${prio} ${fn} ${msg}`) });
    expect(errnoOf(() => m.modinfo())).toBe(22);
    expect(logs).toEqual(['3 xz_uncompress_belch xz: Unexpected end of input\n']);
    try {
      void m.image;
    } catch (err) {
      expect((err as KmodError).file).toBe(cut);
      expect((err as KmodError).message).toContain(cut);
    }
  });

  it('reads the same module from .ko, .ko.zst and .ko.gz', () => {
    const img = execFileSync('xz', ['-dc', xz]);
    const ko = path.join(tmp, 'af_key.ko');
    fs.writeFileSync(ko, img);
    fs.writeFileSync(`${ko}.zst`, execFileSync('zstd', ['-q', '-c', ko]));
    fs.writeFileSync(`${ko}.gz`, execFileSync('gzip', ['-c', ko]));
    const want = fileInfo(openModuleFile(xz));
    for (const f of [ko, `${ko}.zst`, `${ko}.gz`]) expect(fileInfo(openModuleFile(f))).toEqual(want);
  });
});

describe('ReadBuffer', () => {
  it('reads files whole, smaller and larger than the buffer, growing it; larger than its limit in a buffer of their own', () => {
    const rb = new ReadBuffer(100 << 10);
    const sizes = [0, 1, 6, 65535, 65536, 65537, 70000, 200 << 10, 12];
    for (const [i, size] of sizes.entries()) {
      const f = path.join(tmp, `rb-${i}`);
      const data = Buffer.alloc(size);
      for (let j = 0; j < size; j++) data[j] = (j * 31 + i) & 0xff;
      fs.writeFileSync(f, data);
      expect(rb.read(f).equals(data)).toBe(true);
    }
    // what stat does not report is read too (as readFileSync does)
    expect(rb.read('/proc/self/status').toString('latin1')).toContain('Name:');
  });

  it('decompresses into its image buffer, grown for larger images, and the images are those of a fresh read', () => {
    const rb = new ReadBuffer();
    const files = ['kernel/net/key/af_key.ko.xz', 'kernel/fs/bcachefs/bcachefs.ko.xz', 'kernel/net/core/failover.ko.xz'].map((f) => path.join(moduleDir(), f));
    for (const f of files) {
      const mf = openModuleFile(f, { readBuffer: rb });
      expect(mf.image.equals(openModuleFile(f).image)).toBe(true);
    }
    // after the large module, a buffer that fits it serves the next files (with the addon's decoder)
    const again = openModuleFile(files[1], { readBuffer: rb });
    expect(again.image.equals(openModuleFile(files[1]).image)).toBe(true);
    if (decodesOffThread()) expect(again.image.buffer).toBe(rb.imageBuffer().buffer);
  });

  it('fails with the system error of open or read', () => {
    const rb = new ReadBuffer();
    expect(() => rb.read(path.join(tmp, 'no-such-file'))).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    expect(() => rb.read(tmp)).toThrow(expect.objectContaining({ code: 'EISDIR' }));
    expect(errnoOf(() => openModuleFile(tmp, { readBuffer: rb }))).toBe(21);
  });

  it('gives the same module views as a fresh read, and moduleInfo over many files gives each its own strings', () => {
    const rb = new ReadBuffer();
    const xz = path.join(moduleDir(), 'kernel/net/key/af_key.ko.xz');
    const ko = path.join(tmp, 'rb-af_key.ko');
    fs.writeFileSync(ko, execFileSync('xz', ['-dc', xz]));
    for (const f of [xz, ko]) expect(fileInfo(openModuleFile(f, { readBuffer: rb }))).toEqual(fileInfo(openModuleFile(f)));
    const ctx = new Context({ root: '/nonexistent-kmodts-root', kernelVersion: '0', configPaths: [] });
    const others = ['kernel/fs/fat/vfat.ko.xz', 'kernel/drivers/net/dummy.ko.xz'].map((f) => path.join(moduleDir(), f));
    const lists = [ko, ...others, ko].map((f) => moduleInfo(ctx.moduleFromPath(f), ctx));
    expect(lists[0]).toEqual(fileInfo(openModuleFile(ko)));
    expect(lists[1]).toEqual(fileInfo(openModuleFile(others[0])));
    expect(lists[2]).toEqual(fileInfo(openModuleFile(others[1])));
    expect(lists[3]).toEqual(lists[0]);
  });
});

describe('builtinInfo (modules.builtin.modinfo)', () => {
  const dir = path.join(tmp, 'builtin');
  fs.mkdirSync(dir);
  const write = (records: string[]): void => fs.writeFileSync(path.join(dir, 'modules.builtin.modinfo'), records.join('\0') + '\0');

  it('collects the records of one module, in order, split at the first "="', () => {
    write(['aa.license=GPL', 'ext4.softdep=pre: crc32c', 'ext4.license=GPL', 'ext4.parm=x:y=z', 'ext4.noeq', 'ext4x.license=MIT', 'ext4.late=1']);
    expect(builtinInfo(dir, 'ext4')).toEqual([['softdep', 'pre: crc32c'], ['license', 'GPL'], ['parm', 'x:y=z'], ['noeq', '']]);
    expect(builtinInfo(dir, 'ext')).toEqual([]);
  });

  it('a record without a module prefix is EINVAL, logged as libkmod does; a missing file is ENOENT', () => {
    write(['aa.license=GPL', 'noprefix', 'ext4.license=GPL']);
    const logs: string[] = [];
    expect(errnoOf(() => builtinInfo(dir, 'ext4', (p, fn, m) => logs.push(`${p} ${fn} ${m}`)))).toBe(22);
    expect(logs).toEqual(['3 get_strings get_strings: unexpected string without modname prefix\n']);
    expect(errnoOf(() => builtinInfo(path.join(tmp, 'nowhere'), 'ext4'))).toBe(2);
  });

  it('a file that never ends (linked to /dev/zero) is EFBIG, logged as a failed read, where libkmod reads for ever', () => {
    const zero = path.join(tmp, 'zero');
    fs.mkdirSync(zero);
    fs.symlinkSync('/dev/zero', path.join(zero, 'modules.builtin.modinfo'));
    const logs: string[] = [];
    expect(errnoOf(() => builtinInfo(zero, 'ext4', (p, fn, m) => logs.push(`${p} ${fn} ${m}`)))).toBe(27);
    expect(logs).toEqual(['3 get_strings get_string: File too large\n']);
  });
});

describe('moduleParams', () => {
  it('merges parm and parmtype by name, newest name first, and reports entries without ":"', () => {
    const bad: string[] = [];
    const p = moduleParams([['parm', 'a:first'], ['parmtype', 'b:int'], ['parmtype', 'a:bool'], ['parm', 'broken'], ['parm', 'c:'], ['license', 'GPL']], (k, v) => bad.push(`${k}=${v}`));
    expect(p).toEqual([{ name: 'c', description: '' }, { name: 'b', type: 'int' }, { name: 'a', description: 'first', type: 'bool' }]);
    expect(bad).toEqual(['parm=broken']);
  });
});
