// arm64: every module of Debian's 6.12 arm64 tree (linux-image-arm64 of trixie, fetched by
// scripts/fetch-tree.sh, with Module.symvers and .config from the matching linux-headers package) loads
// in a simulated arm64 kernel: every relocation type those modules use (MOVW, ADRP/ADD/LDST, branches
// through PLTs, PREL32 ...) is applied with the kernel's overflow rules, and the layout and symbol
// resolution hold. The dependency order comes from kmod 34.2's depmod, written to a temporary directory.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cacheRoot, repoRoot, runKmod } from '../../support/reference';

const dist = path.join(repoRoot, 'dist');
const { createSimBackend } = require(path.join(dist, 'backends/sim/index.js')) as typeof import('../../../src/backends/sim');

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-simarm64-'));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

/** The arm64 tree and its headers (downloaded once into .cache). */
function arm64Kernel(): { ktree: string; kver: string; headers: string } {
  const out = execFileSync('bash', [path.join(repoRoot, 'scripts/fetch-tree.sh'), 'arm64', 'linux-image-arm64'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const ktree = /^KTREE=(.*)$/m.exec(out)?.[1];
  const kver = /^KVER=(.*)$/m.exec(out)?.[1];
  if (!ktree || !kver) throw new Error(`fetch-tree.sh arm64 gave no tree: ${out}`);
  const cache = cacheRoot;
  const headers = path.join(cache, `headers-arm64-${kver}`);
  const src = path.join(headers, 'usr/src', `linux-headers-${kver}`);
  if (!fs.existsSync(path.join(src, 'Module.symvers'))) {
    // same apt configuration as fetch-tree.sh
    const apt = path.join(cache, 'apt-trixie-arm64');
    const debs = path.join(cache, 'debs-arm64');
    fs.mkdirSync(debs, { recursive: true });
    execFileSync(
      'apt-get',
      [
        '-q', '-o', `Dir::Etc::sourcelist=${path.join(cache, 'apt-trixie/etc/sources.list')}`, '-o', 'Dir::Etc::sourceparts=/dev/null',
        '-o', `Dir::State::Lists=${path.join(apt, 'lists')}`, '-o', `Dir::Cache=${apt}`, '-o', 'Debug::NoLocking=1',
        '-o', 'APT::Architecture=arm64', '-o', 'APT::Architectures::=arm64', '-o', 'Acquire::By-Hash=force',
        'download', `linux-headers-${kver}`,
      ],
      { cwd: debs, stdio: ['ignore', 'ignore', 'inherit'] },
    );
    const deb = fs.readdirSync(debs).find((f) => f.startsWith(`linux-headers-${kver}_`) && f.endsWith('.deb'));
    if (!deb) throw new Error(`linux-headers-${kver} was not downloaded`);
    fs.mkdirSync(headers + '.tmp', { recursive: true });
    execFileSync('dpkg-deb', ['-x', path.join(debs, deb), headers + '.tmp']);
    fs.rmSync(headers, { recursive: true, force: true });
    fs.renameSync(headers + '.tmp', headers);
  }
  return { ktree, kver, headers: src };
}

describe('arm64', () => {
  it('every module of the Debian arm64 tree loads in a simulated arm64 kernel', () => {
    const { ktree, kver, headers } = arm64Kernel();
    const moddir = path.join(ktree, 'lib/modules', kver);
    const idx = path.join(work, 'idx');
    const r = runKmod('depmod', ['-b', ktree, '-o', idx, kver]);
    expect(r.status).toBe(0);
    const deps = new Map<string, string[]>();
    for (const line of fs.readFileSync(path.join(idx, 'lib/modules', kver, 'modules.dep'), 'utf8').split('\n')) {
      const i = line.indexOf(':');
      if (i > 0) deps.set(line.slice(0, i), line.slice(i + 1).trim().split(' ').filter((d) => d !== ''));
    }
    expect(deps.size).toBeGreaterThan(4000);
    const sim = createSimBackend({}, { stateDir: path.join(work, 'state'), env: {}, kernelVersion: kver, moduleDir: moddir, symvers: path.join(headers, 'Module.symvers'), config: path.join(headers, '.config') });
    expect(sim.spec().arch).toBe('arm64');
    expect(sim.spec().vermagic).toBe(`${kver} SMP mod_unload modversions aarch64`);
    const loaded = new Set<string>();
    const failed = new Map<string, string>();
    const load = (p: string): void => {
      if (loaded.has(p) || failed.has(p)) return;
      for (const d of [...(deps.get(p) ?? [])].reverse()) load(d);
      try {
        sim.finitModule(path.join(moddir, p), '', 4);
        loaded.add(p);
      } catch (err) {
        failed.set(p, `${(err as { errno: number }).errno} ${(err as Error).message}`);
      }
    };
    for (const p of deps.keys()) load(p);
    // one module is named like a built-in that has /sys/module/<name>: the kernel refuses it too
    expect([...failed]).toEqual([[expect.stringMatching(/\/core\.ko/), '22 Invalid argument: core: module is already loaded']]);
    expect(loaded.size).toBe(deps.size - 1);
    const log = sim.kernelLog().slice(1).map((x) => x.text);
    expect(log.filter((l) => !/module is from the staging directory/.test(l))).toEqual(['core: module is already loaded']);
  }, 600_000);

  it('a branch relocation whose symbol lies outside the symbol table: ENOEXEC and a line, where the kernel would read past it (module-plts.c)', () => {
    const { ktree, kver, headers } = arm64Kernel();
    const moddir = path.join(ktree, 'lib/modules', kver);
    const { decompress } = require(path.join(dist, 'file/decompress.js')) as typeof import('../../../src/file/decompress');
    const rel = 'kernel/drivers/net/dummy.ko.xz';
    const img = Buffer.from(decompress(fs.readFileSync(path.join(moddir, rel)), rel));
    const b = Buffer.from(img.subarray(0, img.length - 40 - img.readUInt32BE(img.length - 32)));
    // the first R_AARCH64_JUMP26/CALL26 (282, 283) of a RELA section applying to code: its symbol index made huge
    const shoff = Number(b.readBigUInt64LE(0x28));
    const header = (i: number): number => shoff + 64 * i;
    const strOff = Number(b.readBigUInt64LE(header(b.readUInt16LE(0x3e)) + 24));
    let damaged: string | undefined;
    for (let i = 1; i < b.readUInt16LE(0x3c) && damaged === undefined; i++) {
      const h = header(i);
      if (b.readUInt32LE(h + 4) !== 4 || (Number(b.readBigUInt64LE(header(b.readUInt32LE(h + 44)) + 8)) & 4) === 0) continue;
      const [off, size] = [Number(b.readBigUInt64LE(h + 24)), Number(b.readBigUInt64LE(h + 32))];
      for (let e = off; e < off + size && damaged === undefined; e += 24) {
        const type = b.readUInt32LE(e + 8);
        if (type !== 282 && type !== 283) continue;
        b.writeUInt32LE(0xffffff, e + 12);
        damaged = `relocation ${(e - off) / 24} of ${b.toString('latin1', strOff + b.readUInt32LE(h), b.indexOf(0, strOff + b.readUInt32LE(h)))}`;
      }
    }
    expect(damaged).toBeDefined();
    const sim = createSimBackend({}, { stateDir: path.join(work, 'state-plt'), env: {}, kernelVersion: kver, moduleDir: moddir, symvers: path.join(headers, 'Module.symvers'), config: path.join(headers, '.config') });
    let errno: number | undefined;
    try {
      sim.initModule(b, '');
    } catch (err) {
      errno = (err as { errno: number }).errno;
    }
    expect(errno).toBe(8);
    expect(sim.kernelLog().slice(1).map((x) => x.text).slice(-1)).toEqual([`module: dummy: ${damaged} is outside its section or symbol table`]);
    expect(sim.procModules()).toEqual([]);
  });
});
