// lsmod / kmod list over /proc/modules lines that are no well-formed entry: each line is a module, named
// as kmod_module_new_from_loaded() names it (kmod 34.2's output for these inputs).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../support/reference';

const dist = path.join(repoRoot, 'dist');
const { main } = require(path.join(dist, 'cli/main.js')) as typeof import('../../src/cli/main');
const { captureIo } = require(path.join(dist, 'cli/io.js')) as typeof import('../../src/cli/io');

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-lsmod-test-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function lsmod(procModules: string): Promise<{ out: string; err: string; status: number }> {
  const proc = fs.mkdtempSync(path.join(tmp, 'proc-'));
  fs.writeFileSync(path.join(proc, 'modules'), procModules, 'latin1');
  // an empty /sys: no module directory
  const io = captureIo({ KMODTS_PROC_DIR: proc, KMODTS_SYS_DIR: path.join(tmp, 'no-sys') });
  const status = await main('kmodts', ['lsmod'], io);
  return { out: io.out(), err: io.err(), status };
}

const header = 'Module                  Size  Used by\n';
const missing = (name: string): string => `lsmod: ERROR: could not open '/sys/module/${name}/holders': No such file or directory\n`;

describe('lsmod and odd /proc/modules lines', () => {
  it('lists a line without fields, with a tab, with a leading blank', async () => {
    expect(await lsmod('b\nx\t10 0 - Live 0x0\n y 3 0 - Live 0x0\n')).toEqual({
      // (printf's %-19s pads "b\n" as two characters)
      out: `${header}b\n${' '.repeat(24)}-2  -2\nx                         -2  -2\ny                         -2  -2\n`,
      err: missing('b\n') + missing('x') + missing('y'),
      status: 0,
    });
  });

  it('reports a line without a name while reading the list, before any module', async () => {
    expect(await lsmod('x 1 0 - Live 0x0\n   ')).toEqual({
      out: `${header}x                         -2  -2\n`,
      err: "lsmod: ERROR: could not get module from name '(null)': No such file or directory\n" + missing('x'),
      status: 0,
    });
  });

  it('shows the holders path cut as kmod\'s PATH_MAX buffer cuts it', async () => {
    const r = await lsmod(`${'a'.repeat(5000)} 1 0 - Live 0x0\n`);
    expect(r.err).toBe(`lsmod: ERROR: could not open '/sys/module/${'a'.repeat(4083)}': No such file or directory\n`);
    expect(r.out).toBe(`${header}${'a'.repeat(4095)}       -2  -2\n`);
  });
});
