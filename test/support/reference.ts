// Access to the reference material (kmod 34.2, the Debian 6.12 cloud-amd64 tree) and helpers that run
// kmod and kmodts side by side. scripts/fetch-reference.sh obtains everything into the machine's cache.
import { execFileSync, spawnSync, type SpawnSyncOptions } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const repoRoot = path.resolve(__dirname, '../..');

/** The per-machine download cache shared by every clone (the scripts use the same rule):
 *  $KMODTS_CACHE, else $XDG_CACHE_HOME/kmodts, else ~/.cache/kmodts. */
export const cacheRoot =
  process.env.KMODTS_CACHE || path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'kmodts');

export interface Reference {
  /** unpacked kmod 34.2 (trixie) root */
  KMOD_ROOT: string;
  /** unpacked kernel package root: pass as -d/-b; modules in $KTREE/lib/modules/$KVER */
  KTREE: string;
  KVER: string;
  VMLINUZ: string;
  SYMVERS: string;
}

let cached: Reference | undefined;

/** Runs scripts/fetch-reference.sh (cached downloads) and returns what it found. Throws on failure. */
export function reference(): Reference {
  if (cached) return cached;
  const out = execFileSync('bash', [path.join(repoRoot, 'scripts/fetch-reference.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const r: Record<string, string> = {};
  for (const line of out.split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line);
    if (m) r[m[1]] = m[2];
  }
  for (const k of ['KMOD_ROOT', 'KTREE', 'KVER', 'VMLINUZ', 'SYMVERS']) {
    if (!r[k]) throw new Error(`fetch-reference.sh did not report ${k}`);
  }
  cached = r as unknown as Reference;
  return cached;
}

export function moduleDir(ref = reference()): string {
  return path.join(ref.KTREE, 'lib/modules', ref.KVER);
}

/** The reference tree's module files (all .ko.xz), absolute paths in sorted order. */
export function moduleFiles(ref = reference()): string[] {
  return execFileSync('find', [moduleDir(ref), '-name', '*.ko.xz'], { encoding: 'utf8' }).trim().split('\n').sort();
}

export interface RunResult {
  stdout: string;
  stderr: string;
  status: number;
}

/** The environment tools run in: no NODE_EXTRA_CA_CERTS (34 ms per node start), C locale. */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, LANG: 'C', LC_ALL: 'C', ...extra };
  return env;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  input?: string;
  /** a file to bind-mount over /proc/cmdline for this command (needs root: unshare -m) */
  cmdline?: string;
  /** a command to run the tool under (e.g. `unshare -m sh -c ...` setting up mounts); argv is appended */
  wrap?: string[];
}

function spawn(argv: string[], opts: RunOptions): RunResult {
  let cmd = argv;
  if (opts.cmdline !== undefined) {
    const f = path.join(fs.mkdtempSync('/tmp/kmodts-cmdline-'), 'cmdline');
    fs.writeFileSync(f, opts.cmdline);
    cmd = ['unshare', '-m', 'sh', '-c', 'mount --bind "$0" /proc/cmdline && exec "$@"', f, ...argv];
  }
  if (opts.wrap !== undefined) cmd = [...opts.wrap, ...cmd];
  const so: SpawnSyncOptions = {
    env: cleanEnv(opts.env),
    cwd: opts.cwd,
    input: opts.input,
    encoding: 'latin1',
    maxBuffer: 1 << 30,
  };
  const r = spawnSync(cmd[0], cmd.slice(1), so);
  if (r.error) throw r.error;
  return { stdout: r.stdout as unknown as string, stderr: r.stderr as unknown as string, status: r.status ?? 128 + 1 };
}

/** Runs kmod 34.2's `tool` (modprobe, depmod, ...) through trixie's loader. */
export function runKmod(tool: string, args: string[], opts: RunOptions = {}): RunResult {
  const k = reference().KMOD_ROOT;
  return spawn(
    [`${k}/usr/lib64/ld-linux-x86-64.so.2`, '--library-path', `${k}/usr/lib/x86_64-linux-gnu`, '--argv0', tool, `${k}/usr/bin/kmod`, ...args],
    opts,
  );
}

/** Runs kmodts' `tool` as a user would: node bin/kmodts.js tool args. */
export function runKmodts(tool: string, args: string[], opts: RunOptions = {}, settings: string[] = []): RunResult {
  return spawn([process.execPath, path.join(repoRoot, 'bin/kmodts.js'), ...settings, tool, ...args], opts);
}

let linkDir: string | undefined;
/** Runs kmodts through a link named `name` (kmod, lsmod, ...) to bin/kmodts.js, as an installed tool runs. */
export function runKmodtsLink(name: string, args: string[], opts: RunOptions = {}): RunResult {
  linkDir ??= fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-links-'));
  const link = path.join(linkDir, name);
  if (!fs.existsSync(link)) fs.symlinkSync(path.join(repoRoot, 'bin/kmodts.js'), link);
  return spawn([process.execPath, link, ...args], opts);
}
