// The man pages render without a single warning (groff with all warnings on, and man-db's man -l),
// and package.json installs every one of them, under names that do not shadow kmod's pages.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from './support/reference';

const manPagesScript = require('../scripts/man-pages.js') as {
  installedManName(page: string): string;
  packageManEntries(): string[];
};

const pages = ['kmodts.1', 'modprobe.d.5', 'depmod.d.5', 'modprobe.8', 'insmod.8', 'rmmod.8', 'lsmod.8', 'modinfo.8', 'depmod.8', 'kmod.8'];
const manDir = path.join(repoRoot, 'man');

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { PATH: process.env.PATH, LANG: 'C', LC_ALL: 'C', ...env } });
  if (r.error) throw new Error(`${cmd} cannot run (groff-base and man-db are needed): ${r.error.message}`);
  return r;
}

describe('man pages', () => {
  it('are exactly the expected set, all listed in package.json "man" under kmodts- names', () => {
    expect(fs.readdirSync(manDir).sort()).toEqual([...pages].sort());
    const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8'));
    const installed = pages.map((p) => (p === 'kmodts.1' ? p : `kmodts-${p}`));
    expect([...pkg.man].sort()).toEqual(installed.map((p) => `./dist/man/${p}`).sort());
    expect(manPagesScript.packageManEntries()).toEqual(pkg.man);
    // the build made each of them, a copy of its page in man/ (which stays in the package, for
    // installing the pages under kmod's names)
    for (const page of pages) {
      expect(fs.readFileSync(path.join(repoRoot, 'dist/man', manPagesScript.installedManName(page)), 'utf8'), page).toBe(
        fs.readFileSync(path.join(manDir, page), 'utf8'),
      );
    }
    expect(pkg.files).toEqual(expect.arrayContaining(['man/', 'dist/']));
  });

  for (const page of pages) {
    it(`${page} renders without warnings`, () => {
      const file = path.join(manDir, page);
      const g = run('groff', ['-man', '-ww', '-z', file]);
      expect(g.stderr).toBe('');
      expect(g.status).toBe(0);
      const m = run('man', ['--warnings=all', '-l', file], { MANWIDTH: '80' });
      expect(m.stderr).toBe('');
      expect(m.status).toBe(0);
      // the NAME line names the page, and the title matches the file name
      const [name, section] = [page.replace(/\.\d$/, ''), page.slice(-1)];
      expect(fs.readFileSync(file, 'utf8')).toMatch(new RegExp(`^\\.TH ${name.toUpperCase().replace('.', '\\.')} ${section} `));
      expect(m.stdout).toMatch(new RegExp(`^NAME\\n +${name.replace(".", "\\.")} +- `, 'm'));
    });
  }

  it('document every option kmod 34.2 lists in its help texts', async () => {
    const { runKmod } = await import('./support/reference');
    for (const tool of ['modprobe', 'insmod', 'rmmod', 'lsmod', 'modinfo', 'depmod']) {
      const help = runKmod(tool, ['-h']).stdout;
      // option lines only: the prose of modprobe's help mentions a misspelt "--force-modversions"
      const longs = [...help.matchAll(/^\t(?:-., |    )--([a-z][a-z-]+)/gm)].map((m) => m[1]);
      expect(longs.length, tool).toBeGreaterThan(3);
      const text = run('man', ['-l', path.join(manDir, `${tool}.8`)], { MANWIDTH: '200' }).stdout;
      for (const opt of new Set(longs)) expect(text, `${tool}.8 --${opt}`).toContain(`--${opt}`);
    }
  });

  it('kmod.8 documents every command, option and format of kmod 34.2\'s kmod and its static-nodes', async () => {
    const { runKmod } = await import('./support/reference');
    const help = runKmod('kmod', ['-h']).stdout + runKmod('kmod', ['static-nodes', '-h']).stdout;
    const longs = [...help.matchAll(/^\t-., --([a-z][a-z-]+)/gm)].map((m) => `--${m[1]}`);
    const names = [...help.matchAll(/^(?: {2}|\t)([a-z][a-z-]+) +\S/gm)].map((m) => m[1]).filter((n) => n !== 'kmod'); // not the usage lines
    expect(longs).toEqual(['--version', '--help', '--format', '--output', '--help']);
    expect(names).toEqual(['help', 'list', 'static-nodes', 'lsmod', 'rmmod', 'insmod', 'modinfo', 'modprobe', 'depmod', 'human', 'tmpfiles', 'devname']);
    const text = run('man', ['-l', path.join(manDir, 'kmod.8')], { MANWIDTH: '200' }).stdout;
    for (const word of [...longs, ...names]) expect(text, `kmod.8 ${word}`).toContain(word);
  });
});
