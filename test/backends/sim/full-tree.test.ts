// Every module of the Debian 6.12 cloud-amd64 tree loads in the simulated kernel through modprobe's
// library flow (lookup, dependencies and soft dependencies from the tree's indexes, insertion with
// in-kernel xz decompression), with Debian's Module.symvers and the keys built into Debian's vmlinuz,
// and is removed again the way `modprobe -r` does it; afterwards no module is left.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { reference, repoRoot } from '../../support/reference';
import { debianKernel } from './support';

const dist = path.join(repoRoot, 'dist');
const { Context } = require(path.join(dist, 'resolution/context.js')) as typeof import('../../../src/resolution/context');
const { probeInsertModule, PROBE_APPLY_BLACKLIST_ALIAS_ONLY } = require(path.join(dist, 'resolution/probe.js')) as typeof import('../../../src/resolution/probe');
const { removeModule } = require(path.join(dist, 'resolution/remove.js')) as typeof import('../../../src/resolution/remove');
const { createSimBackend } = require(path.join(dist, 'backends/sim/index.js')) as typeof import('../../../src/backends/sim');

const ref = reference();
const moddir = path.join(ref.KTREE, 'lib/modules', ref.KVER);
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-fulltree-'));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

function treeModules(): string[] {
  return fs
    .readFileSync(path.join(moddir, 'modules.dep'), 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => path.basename(l.slice(0, l.indexOf(':'))).replace(/\.ko(\..*)?$/, '').replace(/-/g, '_'));
}

describe('the whole Debian tree in the simulated kernel', () => {
  it('every module loads through modprobe (with dependencies and softdeps) and is removed again', () => {
    const names = treeModules();
    expect(names.length).toBe(1138);
    const sim = createSimBackend({}, { stateDir: path.join(work, 'state'), ...debianKernel(ref) });
    const emptyConf = path.join(work, 'conf');
    fs.mkdirSync(emptyConf);
    const errors: string[] = [];
    const ctx = new Context({ root: ref.KTREE, kernelVersion: ref.KVER, backend: sim, configPaths: [emptyConf], log: (p, fn, msg) => { if (p <= 3) errors.push(`${fn}: ${msg}`); } });
    const failed: string[] = [];
    for (const name of names) {
      const mods = ctx.lookup(name);
      expect(mods.length).toBeGreaterThan(0);
      const r = probeInsertModule(mods[0], PROBE_APPLY_BLACKLIST_ALIAS_ONLY, undefined);
      if (r !== 0) failed.push(`${name}: ${r}`);
    }
    expect(failed).toEqual([]);
    expect(errors).toEqual([]);
    const loaded = sim.procModules() ?? [];
    expect(loaded.length).toBe(1138);
    expect(new Set(loaded.map((m) => m.name))).toEqual(new Set(names));
    // the kernel said nothing: every module is signed with the built-in key, in-tree and GPL-compatible
    expect(sim.kernelLog().slice(1)).toEqual([]);
    expect(loaded.every((m) => m.taints === '' && m.state === 'Live')).toBe(true);
    // modprobe -r of every module without holders, newest first, until nothing more goes: a module
    // with users cannot go, and modprobe -r removes the dependencies nobody uses any more
    const notRemoved: string[] = [];
    for (let pass = 0, removed = 1; removed > 0 && pass < 10; pass++) {
      removed = 0;
      for (const p of sim.procModules() ?? []) {
        const m = ctx.moduleFromName(p.name);
        if (sim.initstate(m.name) === undefined || sim.holders(m.name).length > 0) continue;
        const r = removeModule(m, { error: (msg) => notRemoved.push(`${p.name}: ${msg}`), report: (msg) => notRemoved.push(`${p.name}: ${msg}`) });
        if (r === 0) removed++;
        else notRemoved.push(`${p.name}: ${r}`);
      }
    }
    // vrf and hv_balloon have an init but no exit function: permanent, as on the real kernel, and
    // so is what they use
    const permanent = ['hv_balloon', 'vrf'];
    const dep = fs.readFileSync(path.join(moddir, 'modules.dep'), 'utf8');
    const keep = new Set(permanent);
    for (const line of dep.split('\n')) {
      const [file, deps] = line.split(':');
      if (file && permanent.includes(path.basename(file).replace(/\.ko.*$/, '')))
        for (const d of deps.trim().split(' ').filter((x) => x !== '')) keep.add(path.basename(d).replace(/\.ko.*$/, '').replace(/-/g, '_'));
    }
    expect(keep.size).toBeGreaterThan(2);
    const left = (sim.procModules() ?? []).map((m) => m.name).sort();
    expect(left).toEqual([...keep].sort());
    expect(new Set(notRemoved.map((l) => l.slice(0, l.indexOf(':'))))).toEqual(new Set(permanent));
    expect(sim.procModules()?.find((m) => m.name === 'vrf')?.users).toEqual(['[permanent]']);
  }, 600_000);
});
