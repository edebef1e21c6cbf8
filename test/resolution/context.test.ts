// The current directory as libkmod uses it (path_make_absolute_cwd): a directory too deep for getcwd(2)'s
// buffer, and none at all (removed), for Context's module directory and kmod_module_new_from_path.
// When the configuration is parsed: on first use, or at creation as kmod_new() does (parseConfigNow).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { absolutePath, Context } from '../../src/resolution/context';
import { IndexBuilder } from '../../src/indexes/writer';
import { KmodError } from '../../src/errors';
import { ENAMETOOLONG, ENOMEM } from '../../src/errno';
import type { LogFn } from '../../src/log';
import { DEEP_LEVEL, DEEP_LEVELS, inDeepDirectory, inRemovedDirectory } from '../support/odd-cwd';

const tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-context-')));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** runs `f` in a fresh directory removed before `f` runs */
const errnoOf = (f: () => unknown): number | undefined => {
  try {
    f();
  } catch (err) {
    if (err instanceof KmodError) return err.errno;
    throw err;
  }
  return undefined;
};

describe('no current directory', () => {
  it('absolutePath fails with ENOMEM for a relative path (path_make_absolute_cwd returns NULL)', () =>
    inRemovedDirectory(tmp, () => {
      expect(errnoOf(() => absolutePath('x.ko'))).toBe(ENOMEM);
      expect(absolutePath('/abs/x.ko')).toBe('/abs/x.ko');
    }));

  it('a Context on a relative module directory fails as kmod_new(): "could not retrieve directory"', () => {
    const logged: [number, string, string][] = [];
    const log: LogFn = (p, fn, m) => logged.push([p, fn, m]);
    return inRemovedDirectory(tmp, () => {
      expect(errnoOf(() => new Context({ root: 'rel', kernelVersion: '1', log }))).toBe(ENOMEM);
      expect(logged).toEqual([[3, 'kmod_new', 'could not retrieve directory\n']]);
      // an absolute one does not need it
      expect(new Context({ root: '/abs', kernelVersion: '1' }).dirname).toBe('/abs/lib/modules/1');
    });
  });

  it('moduleFromPath fails with ENOMEM', () => {
    const ctx = new Context({ root: '/abs', kernelVersion: '1' });
    return inRemovedDirectory(tmp, () => {
      expect(errnoOf(() => ctx.moduleFromPath('./x.ko'))).toBe(ENOMEM);
    });
  });
});

describe('a current directory deeper than PATH_MAX', () => {
  it('moduleFromPath fails with ENAMETOOLONG even when the caller found the file by its relative path', () =>
    inDeepDirectory(tmp, () => {
      fs.writeFileSync('x.ko', '');
      const ctx = new Context({ root: '/abs', kernelVersion: '1' });
      expect(absolutePath('x.ko')).toBe(`${tmp}/${Array(DEEP_LEVELS).fill(DEEP_LEVEL).join('/')}/x.ko`);
      expect(errnoOf(() => ctx.moduleFromPath('x.ko', true))).toBe(ENAMETOOLONG);
      expect(errnoOf(() => ctx.moduleFromPath('x.ko'))).toBe(ENAMETOOLONG);
    }));
});

describe('parseConfigNow', () => {
  // from dist/: the configuration parser is required lazily, by its compiled name
  const { Context: DistContext } = require(path.join(__dirname, '../../dist/resolution/context.js')) as typeof import('../../src/resolution/context');
  const moduleDir = path.join(tmp, 'mods');
  fs.mkdirSync(moduleDir, { recursive: true });
  fs.writeFileSync(path.join(moduleDir, 'modules.softdep'), 'bogus\n');
  const make = (parseConfigNow: boolean) => {
    const logged: [number, string, string][] = [];
    const ctx = new DistContext({ moduleDir, configPaths: [], procDir: path.join(tmp, 'no-proc'), log: (p, fn, m) => logged.push([p, fn, m]), parseConfigNow });
    return { ctx, logged };
  };
  const bad: [number, string, string] = [3, 'kmod_config_parse', `${moduleDir}/modules.softdep line 1: ignoring bad line starting with 'bogus'\n`];
  const created: [number, string, string] = [6, 'kmod_new', 'ctx 0x5555555592a0 created\n'];

  it('parses at creation, its messages before `ctx … created`, as kmod_new()', () => {
    const { ctx, logged } = make(true);
    expect(logged).toEqual([bad, created]);
    ctx.config();
    expect(logged).toEqual([bad, created]);
  });

  it('else on first use', () => {
    const { ctx, logged } = make(false);
    expect(logged).toEqual([created]);
    ctx.config();
    expect(logged).toEqual([created, bad]);
  });
});

describe('release (kmod_unref)', () => {
  it('lets go of the index files its lookups left open, and a lookup afterwards opens them again', () => {
    const fds = (): number => fs.readdirSync('/proc/self/fd').length;
    const moduleDir = path.join(tmp, 'indexes');
    fs.mkdirSync(moduleDir);
    // an index of a few chunks: one lookup reads part of it and keeps the file open
    const b = new IndexBuilder();
    for (let i = 0; i < 5000; i++) b.insert(`mod${i}`, `kernel/m/mod${i}.ko:${' kernel/dep.ko'.repeat(i % 7)}`, i);
    fs.writeFileSync(path.join(moduleDir, 'modules.dep.bin'), b.serialize());
    const ctx = new Context({ moduleDir });
    const before = fds();
    expect(ctx.index('dep')!.search('mod17')).toBe('kernel/m/mod17.ko: kernel/dep.ko kernel/dep.ko kernel/dep.ko');
    expect(fds()).toBe(before + 1);
    ctx.release();
    expect(fds()).toBe(before);
    expect(ctx.index('dep')!.search('mod18')).toBe('kernel/m/mod18.ko: kernel/dep.ko kernel/dep.ko kernel/dep.ko kernel/dep.ko');
    ctx.release();
    expect(fds()).toBe(before);
  });
});
