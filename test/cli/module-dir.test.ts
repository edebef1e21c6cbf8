// The module directory modprobe and modinfo build from -d/-b and -S/-k must fit in PATH_MAX bytes, as
// kmod 34.2's tools check it (`bad directory <dir>: path too long`, exit 1, before anything is read); a
// relative one needs a current directory (kmod_new() fails without).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { inDeepDirectory, inRemovedDirectory } from '../support/odd-cwd';
import { repoRoot } from '../support/reference';

const dist = path.join(repoRoot, 'dist');
const { main } = require(path.join(dist, 'cli/main.js')) as typeof import('../../src/cli/main');
const { captureIo } = require(path.join(dist, 'cli/io.js')) as typeof import('../../src/cli/io');
const { moduleDirectoryTooLong } = require(path.join(dist, 'cli/module-dir.js')) as typeof import('../../src/cli/module-dir');

async function run(args: string[]): Promise<{ out: string; err: string; status: number }> {
  const io = captureIo({});
  const status = await main('kmodts', args, io);
  return { out: io.out(), err: io.err(), status };
}

const root = '/nonexistent-root';
/** a version making "<root>/lib/modules/<version>" exactly `bytes` long */
const versionFor = (bytes: number, fill = 'v'): string => fill.repeat(bytes - `${root}/lib/modules/`.length);

describe('module directory over PATH_MAX', () => {
  it('modprobe stops with kmod\'s message when the directory takes 4096 bytes or more', async () => {
    for (const bytes of [4096, 5000]) {
      const kver = versionFor(bytes);
      expect(await run(['modprobe', '-d', root, '-S', kver, '-D', 'virtio_net'])).toEqual({
        out: '',
        err: `modprobe: ERROR: bad directory ${root}/lib/modules/${kver}: path too long\n`,
        status: 1,
      });
    }
    // -c takes no module name but the check still applies
    expect((await run(['modprobe', '-d', root, '-S', versionFor(4096), '-c'])).err).toMatch(/^modprobe: ERROR: bad directory .*: path too long\n$/);
  });

  it('modprobe goes on at 4095 bytes', async () => {
    const r = await run(['modprobe', '-d', root, '-S', versionFor(4095), '-D', 'virtio_net']);
    expect(r.err).not.toContain('bad directory');
    expect(r.err).toContain('FATAL: Module virtio_net not found in directory');
  });

  it('counts bytes of binary strings, not their UTF-8 encoding (modprobe, modinfo)', async () => {
    // 0xe9 bytes: 4000 of them fit, though their UTF-8 form would be twice as long
    const kver = versionFor(4095, '\xe9');
    expect(moduleDirectoryTooLong(root, kver)).toBeUndefined();
    expect(moduleDirectoryTooLong(root, kver + '\xe9')).toBe(`bad directory ${root}/lib/modules/${kver}\xe9: path too long\n`);
    // 3000 bytes: room for the configuration's file names after it (modules.softdep)
    const short = versionFor(3000, '\xe9');
    expect(await run(['modprobe', '-d', root, '-S', short, '-D', 'virtio_net'])).toEqual({
      out: '',
      err: `modprobe: FATAL: Module virtio_net not found in directory ${root}/lib/modules/${short}\n`,
      status: 1,
    });
    expect(await run(['modinfo', '-b', root, '-k', short, 'virtio_net'])).toEqual({ out: '', err: 'modinfo: ERROR: Module virtio_net not found.\n', status: 1 });
    expect((await run(['modinfo', '-b', root, '-k', `${kver}\xe9`, 'virtio_net'])).err).toMatch(/^modinfo: ERROR: bad directory .*: path too long\n$/);
  });

  it('is not checked without a root or a version', () => {
    expect(moduleDirectoryTooLong(undefined, undefined)).toBeUndefined();
  });
});

describe('no current directory', () => {
  const tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-module-dir-')));
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const runInRemovedDirectory = (args: string[]): Promise<{ out: string; err: string; status: number }> => inRemovedDirectory(tmp, () => run(args));
  const failed = (prog: string) => ({ out: '', err: `libkmod: ERROR: kmod_new: could not retrieve directory\n${prog}: ERROR: kmod_new() failed!\n`, status: 1 });

  it('modprobe and modinfo with a relative module directory: kmod_new() failed!', async () => {
    expect(await runInRemovedDirectory(['modprobe', '-d', 'rel', '-S', '1', '-c'])).toEqual(failed('modprobe'));
    expect(await runInRemovedDirectory(['modprobe', '-d', '.', '-S', '1', '-D', 'x'])).toEqual(failed('modprobe'));
    expect(await runInRemovedDirectory(['modinfo', '-b', '.', '-k', '1', 'x'])).toEqual(failed('modinfo'));
  });

  it('modprobe ./PATH: ENOMEM, as libkmod reports a NULL path_make_absolute_cwd()', async () => {
    expect(await runInRemovedDirectory(['modprobe', '-d', root, '-S', '1', '-D', './x.ko'])).toEqual({
      out: '',
      err: 'modprobe: FATAL: Failed to get module from path ./x.ko: Cannot allocate memory\n',
      status: 1,
    });
  });
});

describe('a current directory deeper than PATH_MAX', () => {
  it('a module file named relative to it is not found (its absolute path is too long)', async () => {
    const tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-module-dir-')));
    try {
      await inDeepDirectory(tmp, async () => {
        fs.copyFileSync(path.join(repoRoot, 'examples/out-of-tree/greet_extra.ko'), 'greet_extra.ko');
        expect(await run(['modinfo', '-F', 'name', 'greet_extra.ko'])).toEqual({ out: '', err: 'modinfo: ERROR: Module file greet_extra.ko not found.\n', status: 1 });
        expect(await run(['modinfo', './greet_extra.ko', 'greet_extra.ko'])).toEqual({
          out: '',
          err: 'modinfo: ERROR: Module file ./greet_extra.ko not found.\nmodinfo: ERROR: Module file greet_extra.ko not found.\n',
          status: 1,
        });
        expect(await run(['modprobe', '-d', root, '-S', '1', '-D', './greet_extra.ko'])).toEqual({
          out: '',
          err: 'modprobe: FATAL: Failed to get module from path ./greet_extra.ko: File name too long\n',
          status: 1,
        });
      });
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});
