// A machine that lacks something the suites need: the run fails at once, with one line naming what is
// missing and its Debian package (tests never install packages themselves).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { missingPrerequisites, prerequisites } from './prerequisites';
import { repoRoot } from './reference';

const bin = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-prereq-'));
afterAll(() => fs.rmSync(bin, { recursive: true, force: true }));

/** A PATH directory holding every command this machine has except `leaveOut`. */
function pathWithout(leaveOut: string): string {
  const dir = path.join(bin, leaveOut);
  fs.mkdirSync(dir);
  const names = ['sh', ...prerequisites.map((p) => p.what).filter((w) => /^[\w+.-]+$/.test(w))];
  for (const name of names) {
    if (name === leaveOut) continue;
    const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
    if (r.status === 0) fs.symlinkSync(r.stdout.trim(), path.join(dir, name));
  }
  return dir;
}

describe('test prerequisites', () => {
  it('a missing one is one line naming it and its Debian package', () => {
    const saved = process.env.PATH;
    process.env.PATH = pathWithout('zstd');
    try {
      expect(missingPrerequisites()).toEqual(['missing test prerequisite: zstd (Debian package zstd)']);
      expect(missingPrerequisites(['qemu-system-x86', 'zstd'])).toEqual(['missing test prerequisite: zstd (Debian package zstd)']);
      expect(missingPrerequisites(['qemu-system-x86'])).toEqual([]);
    } finally {
      process.env.PATH = saved;
    }
  });

  it('no reachable Debian mirror for the reference downloads: one line naming it and the setting', () => {
    const cache = fs.mkdtempSync(path.join(bin, 'cache-'));
    const r = spawnSync(process.execPath, [path.join(repoRoot, 'node_modules/vitest/vitest.mjs'), 'run', 'test/names/fnmatch.test.ts'], {
      cwd: repoRoot,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, NO_COLOR: '1', KMODTS_CACHE: cache, KMODTS_DEBIAN_MIRROR: 'http://127.0.0.1:9/debian' },
      encoding: 'utf8',
    });
    expect(r.status).toBe(1);
    const out = r.stdout + r.stderr;
    expect(out.match(/.*missing test prerequisite.*/g)).toEqual([
      'Error: missing test prerequisite: a reachable Debian mirror, for kmod 34.2 and the Debian 6.12 kernel ' +
        '(fetch-reference: no Debian mirror reachable (http://127.0.0.1:9/debian): set KMODTS_DEBIAN_MIRROR to one that is)',
    ]);
    expect(out).not.toMatch(/^(W|E|Err):/m);
  });

  it('fails the whole run from global setup, before any test, with that line and no stack', () => {
    const r = spawnSync(process.execPath, [path.join(repoRoot, 'node_modules/vitest/vitest.mjs'), 'run', 'test/names/fnmatch.test.ts'], {
      cwd: repoRoot,
      env: { PATH: pathWithout('zsh'), HOME: process.env.HOME, NO_COLOR: '1' },
      encoding: 'utf8',
    });
    expect(r.status).toBe(1);
    const out = r.stdout + r.stderr;
    expect(out.match(/missing test prerequisite.*/g)).toEqual(['missing test prerequisite: zsh (Debian package zsh)']);
    expect(out).not.toMatch(/global-setup\.ts|prerequisites\.ts/);
    expect(out).not.toMatch(/✓|passed/);
  });
});
