// Working directories the kernel cannot give a path for: one removed while current (getcwd: ENOENT),
// and one deeper than PATH_MAX (getcwd: ENAMETOOLONG). For the tests of how kmodts names relative
// paths there, as libkmod does.
import * as fs from 'node:fs';
import * as path from 'node:path';

/** one level of the deep directory, and how many: 17 x 251 bytes is over PATH_MAX (4096) */
export const DEEP_LEVEL = 'd'.repeat(250);
export const DEEP_LEVELS = 17;

/** runs f in a directory made below `base` and removed before f runs; the working directory is put back */
export async function inRemovedDirectory<T>(base: string, f: () => T | Promise<T>): Promise<T> {
  const start = process.cwd();
  const dir = fs.mkdtempSync(path.join(base, 'gone-'));
  process.chdir(dir);
  fs.rmdirSync(dir);
  try {
    return await f();
  } finally {
    process.chdir(start);
  }
}

/**
 * runs f in a directory DEEP_LEVELS levels of DEEP_LEVEL below `base`, made one level at a time (mkdir
 * and chdir take each relative name), then removes them and puts the working directory back
 */
export async function inDeepDirectory<T>(base: string, f: () => T | Promise<T>): Promise<T> {
  const start = process.cwd();
  process.chdir(base);
  let made = 0;
  try {
    for (; made < DEEP_LEVELS; made++) {
      fs.mkdirSync(DEEP_LEVEL);
      process.chdir(DEEP_LEVEL);
    }
    return await f();
  } finally {
    for (const name of fs.readdirSync('.')) fs.rmSync(name, { recursive: true, force: true });
    while (made > 0) {
      process.chdir('..');
      fs.rmdirSync(DEEP_LEVEL);
      made--;
    }
    process.chdir(start);
  }
}
