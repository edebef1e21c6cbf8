// kmod's mkdir_p (src/file/mkdir-p.ts): the errno of the first mkdir that fails, where Node's recursive
// mkdirSync reports another one or never returns.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { mkdirP } from '../../src/file/mkdir-p';
import { EROFS, ENOENT, ENOTDIR } from '../../src/errno';

describe('mkdirP', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-mkdirp-'));
  it('makes the missing directories with the mode, from the longest that exists; a file in the way is ENOTDIR', () => {
    expect(mkdirP(path.join(dir, 'a//b/c/'))).toBe(0);
    expect(fs.statSync(path.join(dir, 'a/b/c')).mode & 0o7777).toBe(0o755 & ~process.umask());
    expect(mkdirP(path.join(dir, 'a/b'))).toBe(0);
    fs.writeFileSync(path.join(dir, 'f'), '');
    expect(mkdirP(path.join(dir, 'f/g'))).toBe(ENOTDIR);
  });
  it('under /proc/self (mkdir says ENOENT there for ever): ENOENT, and it returns', () => {
    expect(mkdirP('/proc/self/x/y')).toBe(ENOENT);
  });
  it('on a read-only file system: EROFS (as root, a read-only tmpfs)', () => {
    if (process.getuid?.() !== 0) return;
    const ro = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-mkdirp-ro-'));
    if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'ro', 'tmpfs', ro]).status !== 0) return;
    try {
      expect(mkdirP(path.join(ro, 'lib/modules'))).toBe(EROFS);
    } finally {
      spawnSync('umount', [ro]);
    }
  });
});
