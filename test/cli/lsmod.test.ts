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

async function lsmod(procModules: string, sysModule: Record<string, Record<string, string>> = {}): Promise<{ out: string; err: string; status: number }> {
  const proc = fs.mkdtempSync(path.join(tmp, 'proc-'));
  fs.writeFileSync(path.join(proc, 'modules'), procModules, 'latin1');
  // /sys/module/<name>/<file> as given (none by default)
  const sys = fs.mkdtempSync(path.join(tmp, 'sys-'));
  for (const [name, files] of Object.entries(sysModule)) {
    fs.mkdirSync(path.join(sys, 'module', name, 'holders'), { recursive: true });
    for (const [file, text] of Object.entries(files)) fs.writeFileSync(path.join(sys, 'module', name, file), text);
  }
  const io = captureIo({ KMODTS_PROC_DIR: proc, KMODTS_SYS_DIR: sys });
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

  it('reads refcnt and coresize as read_str_long(): refcnt first, an int; coresize 0 when unreadable', async () => {
    const r = await lsmod('b 1 0 - Live 0x0\nd 1 0 - Live 0x0\nf 1 0 - Live 0x0\n', {
      b: { coresize: 'abc\n', refcnt: 'x\n' },
      d: { coresize: '99999999999999999999\n', refcnt: '4294967296\n' },
      f: { coresize: '12x', refcnt: '1\n2\n' },
    });
    expect(r.out).toBe(`${header}b                          0  -22\nd                   9223372036854775807  0\nf                          0  1\n`);
    expect(r.err).toBe(
      "lsmod: ERROR: could not read integer from '/sys/module/b/refcnt': 'Invalid argument'\n" +
        'lsmod: ERROR: failed to read coresize from /sys/module/b\n' +
        'lsmod: ERROR: failed to read coresize from /sys/module/f\n',
    );
  });
});
