// bin/kmodts.js's V8 code cache: made for the running Node on a tool's first run, in the user's cache
// directory, keyed by Node version and architecture, the bundle's place and its content; never shipped,
// never taken from a file another user owns, and never in the way when it cannot be made.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vm from 'node:vm';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanEnv, repoRoot } from '../support/reference';

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-code-cache-'));
afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));

const tree = path.join(repoRoot, 'examples/tree');
const args = ['modprobe', '-d', tree, '-S', '6.12.0-example', '-D', 'greet_fancy'];
const cacheName = /^modprobe-[0-9a-f]{8}-[0-9a-f]{16}\.cache$/;

/** bin/ and dist/ copied to scratch/<name> (timestamps kept: a bundle older than dist/ is not used) */
function packageCopy(name: string): string {
  const root = path.join(scratch, name);
  for (const dir of ['bin', 'dist']) fs.cpSync(path.join(repoRoot, dir), path.join(root, dir), { recursive: true, preserveTimestamps: true });
  return root;
}

function kmodts(root: string, env: NodeJS.ProcessEnv) {
  const r = spawnSync(process.execPath, [path.join(root, 'bin/kmodts.js'), ...args], { env: cleanEnv(env), encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function cacheDir(xdg: string): string {
  return path.join(xdg, 'kmodts', 'v8', `${process.version}-${process.arch}`);
}

const expected = kmodts(repoRoot, {});

describe('the code cache', () => {
  it('is not in the build output', () => {
    expect(fs.readdirSync(path.join(repoRoot, 'dist/bundle')).filter((f) => !f.endsWith('.js'))).toEqual([]);
  });

  it('is made on the first run, for this Node, readable by this user only, and V8 accepts it', () => {
    const xdg = path.join(scratch, 'xdg-first');
    expect(expected.status).toBe(0);
    expect(kmodts(repoRoot, { XDG_CACHE_HOME: xdg })).toEqual(expected);
    const files = fs.readdirSync(cacheDir(xdg));
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(cacheName);
    const file = path.join(cacheDir(xdg), files[0]);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    const bundle = path.join(repoRoot, 'dist/bundle/modprobe.js');
    const script = new vm.Script(fs.readFileSync(bundle, 'utf8'), { filename: bundle, cachedData: fs.readFileSync(file) });
    expect(script.cachedDataRejected).toBe(false);
    // the next run uses it and leaves it as it is
    const before = fs.statSync(file).mtimeMs;
    expect(kmodts(repoRoot, { XDG_CACHE_HOME: xdg })).toEqual(expected);
    expect(fs.statSync(file).mtimeMs).toBe(before);
  });

  it('holds every function of the bundle, whatever the first run used (modprobe -V, or a whole -D)', () => {
    const made = (name: string, toolArgs: string[]): Buffer => {
      const xdg = path.join(scratch, name);
      const r = spawnSync(process.execPath, [path.join(repoRoot, 'bin/kmodts.js'), ...toolArgs], { env: cleanEnv({ XDG_CACHE_HOME: xdg }), encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      const files = fs.readdirSync(cacheDir(xdg));
      expect(files).toHaveLength(1);
      return fs.readFileSync(path.join(cacheDir(xdg), files[0]));
    };
    // (a cache made of the first run's own lazy compile held only what -V ran: 68 of 169 KB on Node 20,
    // and every -D after it parsed and compiled the rest again)
    const short = made('xdg-short', ['modprobe', '-V']);
    const long = made('xdg-long', args);
    expect(short.length).toBe(long.length);
  });

  it('lives under $HOME/.cache without XDG_CACHE_HOME', () => {
    const home = path.join(scratch, 'home');
    expect(kmodts(repoRoot, { HOME: home })).toEqual(expected);
    expect(fs.readdirSync(cacheDir(path.join(home, '.cache')))).toEqual([expect.stringMatching(cacheName)]);
  });

  it("lives under the home the password database gives without HOME (systemd's units, udev's programs)", () => {
    // this checkout's cache file, by the name a run given XDG_CACHE_HOME makes
    const named = path.join(scratch, 'xdg-name');
    expect(kmodts(repoRoot, { XDG_CACHE_HOME: named })).toEqual(expected);
    const [name] = fs.readdirSync(cacheDir(named));
    const file = path.join(cacheDir(path.join(os.userInfo().homedir, '.cache')), name);
    // (deleting a cache is harmless; another test's run without HOME may make it again meanwhile: the
    // same rule at work)
    fs.rmSync(file, { force: true });
    expect(kmodts(repoRoot, {})).toEqual(expected);
    expect(fs.existsSync(file)).toBe(true);
  });

  it('is one per installed place (stack traces name the files of the installation that runs)', () => {
    const xdg = path.join(scratch, 'xdg-places');
    for (const place of ['place-a', 'place-b']) expect(kmodts(packageCopy(place), { XDG_CACHE_HOME: xdg })).toEqual(expected);
    expect(fs.readdirSync(cacheDir(xdg))).toHaveLength(2);
  });

  it("replaces the cache of an older bundle at the same place", () => {
    const xdg = path.join(scratch, 'xdg-rebuilt');
    const root = packageCopy('rebuilt');
    expect(kmodts(root, { XDG_CACHE_HOME: xdg })).toEqual(expected);
    const [old] = fs.readdirSync(cacheDir(xdg));
    // a different bundle: another content hash in its head (a comment; the code is the same)
    const bundle = path.join(root, 'dist/bundle/modprobe.js');
    const source = fs.readFileSync(bundle, 'utf8');
    const stat = fs.statSync(bundle);
    fs.writeFileSync(bundle, source.replace(/^\/\*kmodts-bundle [0-9a-f]{16}\*\//, '/*kmodts-bundle 0123456789abcdef*/'));
    fs.utimesSync(bundle, stat.atime, stat.mtime);
    expect(kmodts(root, { XDG_CACHE_HOME: xdg })).toEqual(expected);
    const now = fs.readdirSync(cacheDir(xdg));
    expect(now).toHaveLength(1);
    expect(now[0]).toMatch(/-0123456789abcdef\.cache$/);
    expect(now[0].slice(0, 'modprobe-'.length + 8)).toBe(old.slice(0, 'modprobe-'.length + 8));
  });

  it("is not taken from a file another user owns (it is made anew)", () => {
    if (process.getuid!() !== 0) throw new Error('this test needs root (it gives a cache file to another user with chown)');
    const xdg = path.join(scratch, 'xdg-owner');
    expect(kmodts(repoRoot, { XDG_CACHE_HOME: xdg })).toEqual(expected);
    const file = path.join(cacheDir(xdg), fs.readdirSync(cacheDir(xdg))[0]);
    fs.chownSync(file, 65534, 65534);
    expect(kmodts(repoRoot, { XDG_CACHE_HOME: xdg })).toEqual(expected);
    expect(fs.statSync(file).uid).toBe(0);
  });

  it('without a usable cache directory, or without a home, the tools run as usual', () => {
    expect(kmodts(repoRoot, { XDG_CACHE_HOME: '/proc/kmodts-no-such-dir' })).toEqual(expected);
    const file = path.join(scratch, 'a-file');
    fs.writeFileSync(file, '');
    expect(kmodts(repoRoot, { XDG_CACHE_HOME: file })).toEqual(expected);
    expect(kmodts(repoRoot, {})).toEqual(expected);
  });
});
