// Context.lookup: kmod 34.2's lookup order and the module pool, on the Debian tree.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { emptyConfig, type ModprobeConfig } from '../../src/resolution/config';
import { Context, LOG_ERR } from '../../src/resolution/context';
import { KmodError } from '../../src/errors';
import { FakeBackend } from '../support/fake-backend';
import { moduleDir, reference } from '../support/reference';

const ref = reference();

function ctxWith(cfg: Partial<ModprobeConfig> = {}, backend = new FakeBackend()): { ctx: Context; logs: string[] } {
  const logs: string[] = [];
  const ctx = new Context({
    root: ref.KTREE,
    kernelVersion: ref.KVER,
    config: { ...emptyConfig(), ...cfg },
    backend,
    log: (prio, fn, msg) => logs.push(`${prio} ${fn}: ${msg}`),
  });
  return { ctx, logs };
}

const names = (mods: { name: string }[]): string[] => mods.map((m) => m.name);

describe('Context.lookup', () => {
  it('resolves a module name through modules.dep, with its path and dependencies', () => {
    const { ctx } = ctxWith();
    const [m, ...rest] = ctx.lookup('nfsd');
    expect(rest).toEqual([]);
    expect(m.name).toBe('nfsd');
    expect(m.alias).toBeUndefined();
    expect(m.path).toBe(path.join(moduleDir(ref), 'kernel/fs/nfsd/nfsd.ko.xz'));
    // modules.dep lists users before providers; libkmod's list is that line reversed
    expect(names(m.dependencies())).toEqual(['sunrpc', 'grace', 'lockd', 'nfs_acl', 'auth_rpcgss']);
    expect(ctx.dirname).toBe(moduleDir(ref));
  });

  it('normalizes dashes outside brackets and rejects bad brackets with EINVAL', () => {
    const { ctx } = ctxWith();
    expect(names(ctx.lookup('snd-pcm'))).toEqual(names(ctx.lookup('snd_pcm')));
    expect(() => ctx.lookup('bad]name')).toThrow(KmodError);
    try {
      ctx.lookup('open[bracket');
    } catch (e) {
      expect((e as KmodError).errno).toBe(22);
    }
  });

  it('config aliases come first (fnmatch, config order, alias = the pattern) and shadow real modules', () => {
    const { ctx } = ctxWith({ aliases: [{ name: 'vsock', modname: 'nonexist2' }, { name: 'wild*', modname: 'grace' }, { name: 'wi?d-x', modname: 'lockd' }] });
    const [v] = ctx.lookup('vsock');
    expect(v.name).toBe('nonexist2');
    expect(v.alias).toBe('vsock');
    expect(v.path).toBeUndefined();
    const w = ctx.lookup('wild_x');
    expect(names(w)).toEqual(['grace']);
    expect(w[0].alias).toBe('wild*');
    expect(w[0].path).toMatch(/grace\.ko\.xz$/);
  });

  it('symbol: names use modules.symbols (and skip modules.dep)', () => {
    const { ctx } = ctxWith();
    const [m] = ctx.lookup('symbol:svc_rqst_replace_page');
    expect(m.name).toBe('sunrpc');
    expect(m.alias).toBe('symbol:svc_rqst_replace_page');
    expect(ctx.lookup('symbol:no_such_symbol')).toEqual([]);
  });

  it('install/remove commands make a name resolvable before modules.alias', () => {
    const { ctx } = ctxWith({ installs: [{ modname: 'cmdonly', command: '/bin/true' }], removes: [{ modname: 'rmonly', command: '/bin/false' }] });
    const [i] = ctx.lookup('cmdonly');
    expect(i.installCommand()).toBe('/bin/true');
    expect(i.path).toBeUndefined();
    const [r] = ctx.lookup('rmonly');
    expect(r.removeCommand()).toBe('/bin/false');
  });

  it('modules.alias: every match, in module order, alias = the normalized input', () => {
    const { ctx } = ctxWith();
    const mods = ctx.lookup('net-pf-40');
    expect(names(mods)).toEqual(['vmw_vsock_vmci_transport', 'hv_sock', 'vsock_loopback']);
    expect(mods.every((m) => m.alias === 'net_pf_40')).toBe(true);
  });

  it('builtin modules and builtin aliases', () => {
    const { ctx } = ctxWith();
    const [e] = ctx.lookup('ext4');
    expect(e.isBuiltin()).toBe(true);
    expect(e.path).toBeUndefined();
    expect(e.initstate()).toBe('builtin');
    const [md5] = ctx.lookup('crypto-md5');
    expect(md5.name).toBe('md5');
    expect(md5.isBuiltin()).toBe(true);
    expect(ctx.lookup('no-such-thing')).toEqual([]);
  });

  it('pools modules by name and by name + alias', () => {
    const { ctx } = ctxWith();
    const a = ctx.moduleFromName('nfs-acl');
    expect(a.name).toBe('nfs_acl');
    expect(ctx.moduleFromName('nfs_acl.ko.xz')).toBe(a);
    expect(ctx.moduleFromAlias('x', 'nfs_acl')).not.toBe(a);
    expect(ctx.lookup('nfsd')[0].dependencies()).toContain(a);
  });

  it('lookupName (modinfo -m) uses only modules.dep and the builtin indexes', () => {
    const { ctx } = ctxWith({ aliases: [{ name: 'nfsd', modname: 'other' }] });
    expect(ctx.lookupName('nfsd')?.name).toBe('nfsd');
    expect(ctx.lookupName('ext4')?.isBuiltin()).toBe(true);
    expect(ctx.lookupName('net-pf-40')).toBeUndefined();
  });

  it('moduleFromPath: stat()s the file and names the module after it', () => {
    const { ctx } = ctxWith();
    const p = path.join(moduleDir(ref), 'kernel/fs/nfsd/nfsd.ko.xz');
    const m = ctx.moduleFromPath(p);
    expect(m.name).toBe('nfsd');
    expect(m.path).toBe(p);
    expect(() => ctx.moduleFromPath('/nonexistent/x.ko')).toThrow(/No such file/);
  });

  it('reads the text files when the .bin indexes are missing', () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-lookup-'));
    const dir = path.join(root, 'lib/modules', ref.KVER);
    fs.mkdirSync(dir, { recursive: true });
    for (const f of ['modules.dep', 'modules.alias', 'modules.symbols', 'modules.builtin', 'modules.builtin.modinfo']) {
      fs.copyFileSync(path.join(moduleDir(ref), f), path.join(dir, f));
    }
    fs.symlinkSync(path.join(moduleDir(ref), 'kernel'), path.join(dir, 'kernel')); // dependencies are stat()ed
    const ctx = new Context({ root, kernelVersion: ref.KVER, config: emptyConfig(), backend: new FakeBackend() });
    expect(names(ctx.lookup('net-pf-40'))).toEqual(['vmw_vsock_vmci_transport', 'hv_sock', 'vsock_loopback']);
    expect(names(ctx.lookup('nfsd')[0].dependencies())).toEqual(['sunrpc', 'grace', 'lockd', 'nfs_acl', 'auth_rpcgss']);
    expect(ctx.lookup('crypto-md5')[0].isBuiltin()).toBe(true);
  });

  it('initstate from the backend, as libkmod reads /sys/module', () => {
    const backend = new FakeBackend({ vsock: { initstate: 'live\n' }, grace: { initstate: 'coming\n' }, lockd: {}, sunrpc: { initstate: 'weird\n' } });
    const { ctx, logs } = ctxWith({}, backend);
    expect(ctx.moduleFromName('vsock').initstate()).toBe('live');
    expect(ctx.moduleFromName('grace').initstate()).toBe('coming');
    expect(ctx.moduleFromName('lockd').initstate()).toBe('coming'); // directory without initstate
    expect(ctx.moduleFromName('nfsd').initstate()).toBeUndefined();
    expect(ctx.moduleFromName('sunrpc').initstate()).toBeUndefined();
    expect(logs.filter((l) => !l.startsWith('6 '))).toEqual([`${LOG_ERR} kmod_module_get_initstate: unknown /sys/module/sunrpc/initstate: 'weird\n'\n`]);
  });
  it('a lookup again does again what kmod does again: reports a modules.dep line it cannot parse, sets install commands', () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-lookup-again-'));
    try {
      const dir = path.join(root, 'lib/modules/1.0');
      fs.mkdirSync(path.join(dir, 'kernel'), { recursive: true });
      fs.writeFileSync(path.join(dir, 'kernel/x.ko'), '');
      fs.writeFileSync(path.join(dir, 'modules.dep'), 'kernel/x.ko: kernel/missing.ko\n');
      const logs: string[] = [];
      const config = { ...emptyConfig(), installs: [{ modname: 'cmd', command: '/bin/true' }] };
      const ctx = new Context({ root, kernelVersion: '1.0', config, backend: new FakeBackend(), log: (p, fn) => logs.push(fn) });
      for (let i = 0; i < 3; i++) expect(names(ctx.lookup('x'))).toEqual(['x']);
      expect(logs.filter((fn) => fn === 'kmod_module_parse_depline')).toHaveLength(3);
      const [cmd] = ctx.lookup('cmd');
      cmd.setInstallCommand('changed');
      expect(ctx.lookup('cmd')[0].installCommand()).toBe('/bin/true');
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
