// Module.refcnt() as kmod_module_get_refcnt: the number of /sys/module/<m>/refcnt, -ENOENT without the
// file, -EINVAL and libkmod's error when read_str_long refuses it (modprobe -r prints that message).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { NativeBackend } from '../../src/backends/native';
import { emptyConfig } from '../../src/resolution/config';
import { Context } from '../../src/resolution/context';
import { EINVAL, ENOENT } from '../../src/errno';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-module-test-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('Module.refcnt', () => {
  it('reads refcnt as kmod does', () => {
    const sys = path.join(tmp, 'sys');
    const refcnts: Record<string, string> = { zero: '0\n', two: '2\n', big: '4294967297\n', bad: 'x\n', empty: '' };
    for (const [name, text] of Object.entries(refcnts)) {
      fs.mkdirSync(path.join(sys, 'module', name), { recursive: true });
      fs.writeFileSync(path.join(sys, 'module', name, 'refcnt'), text);
    }
    const logged: string[] = [];
    const ctx = new Context({
      moduleDir: path.join(tmp, 'mods'),
      config: emptyConfig(),
      backend: new NativeBackend({ sysDir: sys, procDir: path.join(tmp, 'proc') }),
      log: (_p, fn, m) => logged.push(`${fn}: ${m}`),
    });
    const refcnt = (name: string): number => ctx.moduleFromName(name).refcnt();
    expect([refcnt('zero'), refcnt('two'), refcnt('big'), refcnt('absent')]).toEqual([0, 2, 1, -ENOENT]);
    expect(logged.filter((l) => l.startsWith('kmod_module_get_refcnt'))).toEqual([]);
    expect([refcnt('bad'), refcnt('empty')]).toEqual([-EINVAL, -EINVAL]);
    expect(logged.filter((l) => l.startsWith('kmod_module_get_refcnt'))).toEqual([
      "kmod_module_get_refcnt: could not read integer from '/sys/module/bad/refcnt': 'Invalid argument'\n",
      "kmod_module_get_refcnt: could not read integer from '/sys/module/empty/refcnt': 'Invalid argument'\n",
    ]);
  });
});
