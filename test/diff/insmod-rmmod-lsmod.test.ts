// Differential suite: insmod, rmmod, lsmod vs kmod 34.2 on this machine's kernel, with a fake
// /sys/module (bind-mounted for kmod, KMODTS_SYS_DIR for kmodts) for rmmod's user-space checks.
// Only files that cannot be loaded and names no kernel has are used: on a kernel with module support
// these cases fail in the kernel the same way for both tools, and load nothing. Loading for real is
// proven in the VM suite (test/vm).
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { describeMismatch, runKmodMany, runKmodtsInProcess, type ToolCase } from '../support/kmod-pool';
import { runKmod, runKmodts, type RunResult } from '../support/reference';

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-insmod-diff-'));
const SYS = path.join(scratch, 'sys-module');
const SYS_XZ = path.join(scratch, 'sys-module-xz');

function fakeModule(root: string, name: string, files: Record<string, string>, holders: string[] = []): void {
  const d = path.join(root, name);
  fs.mkdirSync(path.join(d, 'holders'), { recursive: true });
  for (const [f, v] of Object.entries(files)) fs.writeFileSync(path.join(d, f), v);
  for (const h of holders) fs.symlinkSync(`../../${h}`, path.join(d, 'holders', h));
}
for (const root of [SYS, SYS_XZ]) {
  fakeModule(root, 'kmodts_idle', { initstate: 'live\n', refcnt: '0\n' });
  fakeModule(root, 'kmodts_busy', { initstate: 'live\n', refcnt: '3\n' }, ['kmodts_user_b', 'kmodts_user_a', 'kmodts_user_c']);
  fakeModule(root, 'kmodts_used', { initstate: 'live\n', refcnt: '1\n' });
  fakeModule(root, 'kmodts_norefcnt', { initstate: 'live\n' });
  fakeModule(root, 'kmodts_coming', { refcnt: '0\n' });
  fakeModule(root, 'kmodts_going', { initstate: 'going\n', refcnt: '0\n' });
  fakeModule(root, 'kmodts_odd', { initstate: 'weird\n', refcnt: '0\n' });
  fakeModule(root, 'kmodts_badcount', { initstate: 'live\n', refcnt: 'many\n' });
  // directories without holders/: a loaded-looking one, and a bare one as a builtin module's parameters make
  fs.mkdirSync(path.join(root, 'kmodts_noholders'));
  fs.writeFileSync(path.join(root, 'kmodts_noholders', 'initstate'), 'live\n');
  fs.writeFileSync(path.join(root, 'kmodts_noholders', 'refcnt'), '0\n');
  fs.mkdirSync(path.join(root, 'kmodts_bare'));
}
fs.writeFileSync(path.join(SYS_XZ, 'compression'), 'xz\n');

// files: none of them is a loadable module
const JUNK = path.join(scratch, 'kmodts_junk.ko');
fs.writeFileSync(JUNK, Buffer.alloc(256, 0x41));
const JUNK_XZ = path.join(scratch, 'kmodts_junkxz.ko.xz');
execFileSync('xz', ['-z', '-k', '-c', JUNK], { stdio: ['ignore', fs.openSync(JUNK_XZ, 'w'), 'inherit'] });
const JUNK_ZST = path.join(scratch, 'kmodts_junkzst.ko.zst');
execFileSync('zstd', ['-q', '-f', JUNK, '-o', JUNK_ZST]);
const BAD_XZ = path.join(scratch, 'kmodts_bad.ko.xz');
fs.writeFileSync(BAD_XZ, fs.readFileSync(JUNK_XZ).subarray(0, 30));
const SHORT = path.join(scratch, 'kmodts_short.ko');
fs.writeFileSync(SHORT, 'abc');
const DIR = path.join(scratch, 'kmodts_dir.ko');
fs.mkdirSync(DIR);
const IDLE_FILE = path.join(scratch, 'kmodts-idle.ko');
fs.writeFileSync(IDLE_FILE, 'x');
// the same module name from another path (kmod frees each argument's module before the next)
const IDLE_FILE_ELSEWHERE = path.join(scratch, 'elsewhere', 'kmodts-idle.ko');
fs.mkdirSync(path.dirname(IDLE_FILE_ELSEWHERE));
fs.writeFileSync(IDLE_FILE_ELSEWHERE, 'x');

interface Family {
  tool: 'insmod' | 'rmmod' | 'lsmod';
  name: string;
  cases: ToolCase[];
}

const c = (...args: string[]): ToolCase => ({ args });
const sys = (root: string, ...args: string[]): ToolCase => ({ args, sysModule: root });

const fams: Family[] = [
  {
    tool: 'insmod',
    name: 'insmod: usage and options',
    cases: [c(), c('-'), c('-x'), c('--bogus'), c('--forc', JUNK), c('-h'), c('--help'), c('-V'), c('--version'), c('-h', '-x'), c('-x', '-h'),
      c('-v'), c('-vvvv'), c('-f'), c(JUNK, '-x'), c('--', '-x'), c('-V', 'ignored')],
  },
  {
    tool: 'insmod',
    name: 'insmod: files that cannot load (each load path)',
    cases: [c('/nonexistent.ko'), c('-f', '/nonexistent.ko'), c(DIR), c(SHORT), c(JUNK), c('-f', JUNK), c('-vvv', JUNK),
      c(JUNK, 'a=1', 'b=x y', "c='q r'", 'd="s t"', 'e', 'f='), c(JUNK_XZ), c('-f', JUNK_XZ), c(JUNK_ZST), c('-f', JUNK_ZST), c('-vvv', JUNK_ZST),
      c(BAD_XZ), c('-vvv', BAD_XZ), sys(SYS_XZ, JUNK_XZ), sys(SYS_XZ, '-vvv', '-f', JUNK_XZ), sys(SYS_XZ, BAD_XZ), sys(SYS_XZ, JUNK_ZST),
      { ...c('-vvv', JUNK), env: { KMOD_LOG: 'debug' } }, { ...c('-vvv', 'kmodts_junk.ko'), cwd: scratch },
      { ...c('./kmodts_junkzst.ko.zst'), cwd: scratch }, { ...c('-vvv', '../' + path.basename(scratch) + '/kmodts_junkxz.ko.xz'), cwd: scratch }],
  },
  {
    tool: 'rmmod',
    name: 'rmmod: usage and options',
    cases: [c(), c('-x'), c('--bogus'), c('-h'), c('-V'), c('-s', '-h'), c('-v'), c('-f')],
  },
  {
    tool: 'rmmod',
    name: 'rmmod: user-space checks over a fake /sys/module',
    cases: [
      sys(SYS, 'kmodts_idle'), sys(SYS, '-v', 'kmodts_idle'), sys(SYS, '-vvv', 'kmodts_idle'), sys(SYS, 'kmodts-idle'), sys(SYS, 'kmodts_busy'),
      sys(SYS, 'kmodts_used'), sys(SYS, 'kmodts_norefcnt'), sys(SYS, 'kmodts_coming'), sys(SYS, 'kmodts_going'), sys(SYS, 'kmodts_odd'),
      sys(SYS, 'kmodts_badcount'), sys(SYS, 'kmodts_not_loaded'), sys(SYS, '-f', 'kmodts_busy'), sys(SYS, '-f', 'kmodts_not_loaded'),
      sys(SYS, 'kmodts_busy', 'kmodts_used', 'kmodts_idle', 'kmodts_not_loaded'), sys(SYS, IDLE_FILE), { ...sys(SYS, 'kmodts-idle.ko'), cwd: scratch },
      sys(SYS, IDLE_FILE, IDLE_FILE_ELSEWHERE, 'kmodts_idle', IDLE_FILE), sys(SYS, '-v', IDLE_FILE_ELSEWHERE, IDLE_FILE), sys(SYS, 'a'.repeat(70)), sys(SYS, '-vvv', 'kmodts_busy'),
      // empty names (kmod looks at /sys/module//holders), and holders/ missing
      sys(SYS, ''), sys(SYS, '.ko'), sys(SYS, '.ko', 'kmodts_idle'), sys(SYS, 'kmodts_noholders'), sys(SYS, 'kmodts_bare'), sys(SYS, '-vvv', 'kmodts_bare'),
    ],
  },
  {
    tool: 'lsmod',
    name: 'lsmod: options and this kernel',
    cases: [c(), c('x'), c('-h'), c('-V'), c('-x'), c('-v'), c('-vvv'), c('-s', '-h'), sys(SYS)],
  },
];

const kmodResults = new Map<string, RunResult[]>();

beforeAll(async () => {
  for (const fam of fams) kmodResults.set(fam.name, await runKmodMany(fam.tool, fam.cases));
}, 600_000);

/** kmodts' version line says +ZLIB on purpose (it reads gzip modules itself; docs/compat.md) */
function versionLine(r: RunResult): RunResult {
  return { ...r, stdout: r.stdout.replace(/^(kmod version 34\.2\n\+ZSTD \+XZ )-ZLIB/, '$1+ZLIB') };
}

/** help texts are our own words: compared by status and shape only */
function isHelp(cs: ToolCase): boolean {
  return cs.args.some((a) => a === '-h' || a === '--help') && !(cs.args.indexOf('-x') >= 0 && cs.args.indexOf('-x') < cs.args.indexOf('-h'));
}

describe('insmod, rmmod, lsmod vs kmod 34.2', () => {
  for (const fam of fams) {
    it(fam.name, async () => {
      const kmod = kmodResults.get(fam.name)!;
      const mismatches: string[] = [];
      for (let i = 0; i < fam.cases.length; i++) {
        const cs = fam.cases[i];
        const ours = await runKmodtsInProcess(fam.tool, cs);
        if (isHelp(cs)) {
          expect(ours.status).toBe(kmod[i].status);
          expect(ours.stderr).toBe(kmod[i].stderr);
          expect(ours.stdout.startsWith(`Usage:\n\t${fam.tool} [options]`)).toBe(true);
          expect(kmod[i].stdout.startsWith(`Usage:\n\t${fam.tool} [options]`)).toBe(true);
          continue;
        }
        const d = describeMismatch(cs, versionLine(kmod[i]), ours);
        if (d !== undefined) mismatches.push(d);
      }
      console.log(`${fam.name}: ${fam.cases.length - mismatches.length}/${fam.cases.length} identical`);
      expect(mismatches).toEqual([]);
    });
  }

  it('a module file read from a pipe (insmod /dev/stdin, as insmod <(...)): kmod\'s pread of the magic fails, ESPIPE', () => {
    for (const file of [JUNK, JUNK_XZ, SHORT]) {
      // a real pipe from cat (a child's stdin from Node is a socket, which /dev/stdin cannot open)
      const wrap = ['sh', '-c', 'cat "$0" | exec "$@"', file];
      const k = runKmod('insmod', ['/dev/stdin'], { wrap });
      const t = runKmodts('insmod', ['/dev/stdin'], { wrap });
      expect(k.stderr).toContain('Illegal seek');
      expect({ stdout: t.stdout, stderr: t.stderr, status: t.status }).toEqual({ stdout: k.stdout, stderr: k.stderr, status: k.status });
    }
  });

  it('the real CLI (spawned) agrees too', () => {
    for (const [tool, args] of [['insmod', [JUNK]], ['insmod', []], ['rmmod', ['kmodts_not_loaded']], ['lsmod', []]] as const) {
      const k = runKmod(tool, [...args]);
      const t = runKmodts(tool, [...args]);
      expect({ tool, stdout: t.stdout, stderr: t.stderr, status: t.status }).toEqual({ tool, stdout: k.stdout, stderr: k.stderr, status: k.status });
    }
  });
});
