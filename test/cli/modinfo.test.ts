// modinfo (src/cli/modinfo.ts) creates its context as kmod_new() does: the configuration kmod's modinfo
// reads (modules.softdep, modules.weakdep, the kernel command line) is parsed, and its errors reported,
// also when only a module file is shown.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../support/reference';

const dist = path.join(repoRoot, 'dist');
const { main } = require(path.join(dist, 'cli/main.js')) as typeof import('../../src/cli/main');
const { captureIo } = require(path.join(dist, 'cli/io.js')) as typeof import('../../src/cli/io');

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-modinfo-test-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('modinfo and the configuration', () => {
  it('reports a bad modules.softdep line when showing a module file', async () => {
    const moduleDir = path.join(tmp, 'lib/modules/1');
    fs.mkdirSync(moduleDir, { recursive: true });
    fs.writeFileSync(path.join(moduleDir, 'modules.softdep'), 'bogus\n');
    const ko = path.join(repoRoot, 'examples/out-of-tree/greet_extra.ko');
    const io = captureIo({});
    const status = await main('kmodts', ['modinfo', '-b', tmp, '-k', '1', '-F', 'name', ko], io);
    expect({ status, out: io.out(), err: io.err() }).toEqual({
      status: 0,
      out: 'greet_extra\n',
      err: `libkmod: ERROR: kmod_config_parse: ${moduleDir}/modules.softdep line 1: ignoring bad line starting with 'bogus'\n`,
    });
  });
});
