// The probe list and kmod_module_probe_insert_module's decisions, with kmod's quirks, on the Debian tree.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { emptyConfig, type ModprobeConfig } from '../../src/resolution/config';
import { Context, LOG_ERR } from '../../src/resolution/context';
import type { Module } from '../../src/resolution/module';
import {
  concatOptions,
  PROBE_APPLY_BLACKLIST,
  PROBE_APPLY_BLACKLIST_ALIAS_ONLY,
  PROBE_DRY_RUN,
  PROBE_FAIL_ON_LOADED,
  PROBE_IGNORE_COMMAND,
  PROBE_IGNORE_LOADED,
  probeInsertModule,
  probeList,
  systemCommand,
} from '../../src/resolution/probe';
import { FakeBackend, type FakeModuleState } from '../support/fake-backend';
import { softdepChain } from './softdep-chain';
import { probePlan } from '../../src/resolution/plan';
import { reference } from '../support/reference';

const ref = reference();

function setup(cfg: Partial<ModprobeConfig> = {}, loaded: Record<string, FakeModuleState> = {}) {
  const logs: string[] = [];
  const backend = new FakeBackend(loaded);
  const ctx = new Context({ root: ref.KTREE, kernelVersion: ref.KVER, config: { ...emptyConfig(), ...cfg }, backend, log: (p, fn, m) => { if (p <= LOG_ERR) logs.push(`${fn}: ${m}`); } });
  const actions: string[] = [];
  const printAction = (m: Module, install: boolean, options: string): void => {
    actions.push(install ? `install ${m.installCommand()} ${options}` : m.path ? `insmod ${m.name} ${options}` : `nopath ${m.name} ${options}`);
  };
  return { ctx, logs, backend, actions, printAction };
}

const names = (l: Module[]): string[] => l.map((m) => m.name);
const DRY = PROBE_DRY_RUN | PROBE_IGNORE_LOADED | PROBE_APPLY_BLACKLIST_ALIAS_ONLY;

describe('module options', () => {
  it('concatenates as module_options_concat (trailing space without extra options)', () => {
    expect(concatOptions(undefined, undefined)).toBeUndefined();
    expect(concatOptions(undefined, '')).toBeUndefined();
    expect(concatOptions('a=1', undefined)).toBe('a=1 ');
    expect(concatOptions('a=1', 'b=2')).toBe('a=1 b=2');
    expect(concatOptions(undefined, 'b=2')).toBe('b=2');
    expect(concatOptions('a=1', '')).toBe('a=1 ');
  });

  it('joins every options line for the name or the alias, skipping empty ones', () => {
    const { ctx } = setup({ options: [{ modname: 'nfsd', options: 'a=1' }, { modname: 'my_nfs', options: 'b=2' }, { modname: 'nfsd', options: '' }, { modname: 'nfsd', options: 'c=3' }], aliases: [{ name: 'my_nfs', modname: 'nfsd' }] });
    expect(ctx.lookup('nfsd')[0].options()).toBe('a=1 c=3');
    expect(ctx.lookup('my-nfs')[0].options()).toBe('a=1 b=2 c=3');
    expect(ctx.lookup('grace')[0].options()).toBeUndefined();
  });
});

describe('probe list', () => {
  it('dependencies (deepest first), softdeps around each module, first softdep entry only', () => {
    const { ctx } = setup({ softdeps: [{ name: 'nfsd', pre: ['crypto-md5'], post: [] }, { name: 'nfsd', pre: ['vsock'], post: [] }] });
    expect(names(probeList(ctx.lookup('nfsd')[0], false))).toEqual(['sunrpc', 'grace', 'lockd', 'nfs_acl', 'auth_rpcgss', 'md5', 'nfsd']);
  });

  it('-i skips the top module softdeps but not those of its dependencies', () => {
    const { ctx } = setup({ softdeps: [{ name: 'nfsd', pre: ['crypto-md5'], post: [] }, { name: 'grace', pre: ['vsock'], post: [] }] });
    expect(names(probeList(ctx.lookup('nfsd')[0], true))).toEqual(['sunrpc', 'vsock', 'grace', 'lockd', 'nfs_acl', 'auth_rpcgss', 'nfsd']);
  });

  it('keeps duplicates and stops softdep loops through the visited flag', () => {
    const { ctx } = setup({ softdeps: [{ name: 'vsock', pre: [], post: ['vsock_loopback'] }, { name: 'vsock_loopback', pre: ['vsock'], post: [] }] });
    // vsock_loopback depends on vsock: vsock appears again as its dependency
    expect(names(probeList(ctx.lookup('vsock')[0], false))).toEqual(['vsock', 'vsock', 'vmw_vsock_virtio_transport_common', 'vsock_loopback']);
  });

  it('follows chains of soft dependencies 6,000 deep (kmod recurses; JavaScript\'s stack would overflow)', () => {
    const tree = softdepChain(6000);
    const listFor = (kind: 'pre' | 'post'): string[] => {
      const ctx = tree.context(kind, new FakeBackend({}));
      const list = names(probeList(ctx.lookup('c0')[0], false));
      // the plan (--json, the library) walks the same way
      expect(probePlan(ctx.lookup('c0')[0]).steps.map((st) => st.module)).toEqual(list);
      return list;
    };
    expect(listFor('post')).toEqual(tree.chain);
    expect(listFor('pre')).toEqual([...tree.chain].reverse());
    tree.remove();
  });

  it('reports softdeps that cannot be looked up and continues', () => {
    const { ctx, logs } = setup({ softdeps: [{ name: 'grace', pre: ['bad]name', 'nonexistent'], post: [] }] });
    expect(names(probeList(ctx.lookup('grace')[0], false))).toEqual(['grace']);
    expect(logs).toEqual(["lookup_dep: failed to lookup dependency 'bad]name', continuing anyway.\n"]);
  });
});

describe('probeInsertModule', () => {
  it('prints each action with its options; a dry run inserts nothing', () => {
    const { ctx, actions, printAction, backend } = setup({ options: [{ modname: 'sunrpc', options: 'x=1' }] });
    expect(probeInsertModule(ctx.lookup('nfsd')[0], DRY, 'extra=2', { printAction })).toBe(0);
    expect(actions).toEqual(['insmod sunrpc x=1 ', 'insmod grace ', 'insmod lockd ', 'insmod nfs_acl ', 'insmod auth_rpcgss ', 'insmod nfsd extra=2']);
    expect(backend.calls).toEqual([]);
  });

  it('softdeps make a module ignore its install command (kmod issue #446); -i ignores the top one', () => {
    const cfg = { installs: [{ modname: 'grace', command: '/bin/g $CMDLINE_OPTS' }, { modname: 'lockd', command: '/bin/l' }], softdeps: [{ name: 'lockd', pre: ['vsock'], post: [] }] };
    const a = setup(cfg);
    probeInsertModule(a.ctx.lookup('lockd')[0], DRY, undefined, { printAction: a.printAction });
    expect(a.actions).toEqual(['insmod sunrpc ', 'install /bin/g $CMDLINE_OPTS ', 'insmod vsock ', 'insmod lockd ']);
    const b = setup(cfg);
    probeInsertModule(b.ctx.lookup('grace')[0], DRY | PROBE_IGNORE_COMMAND, undefined, { printAction: b.printAction });
    expect(b.actions).toEqual(['insmod grace ']);
  });

  it('blacklist applies to alias lookups only, or to the name with -b', () => {
    const { ctx, actions, printAction } = setup({ blacklists: ['hv_sock', 'grace'] });
    const viaAlias = ctx.lookup('net-pf-40');
    const results = viaAlias.map((m) => probeInsertModule(m, DRY, undefined, { printAction }));
    expect(results).toEqual([0, PROBE_APPLY_BLACKLIST_ALIAS_ONLY, 0]);
    expect(probeInsertModule(ctx.lookup('grace')[0], DRY, undefined, {})).toBe(0);
    expect(probeInsertModule(ctx.lookup('grace')[0], DRY | PROBE_APPLY_BLACKLIST, undefined, {})).toBe(PROBE_APPLY_BLACKLIST);
    // dependencies are never filtered
    expect(actions.filter((a) => a.includes('hv_sock'))).toEqual([]);
    expect(actions.filter((a) => a.includes('vsock_loopback'))).toEqual(['insmod vsock_loopback ']);
  });

  it('already loaded: silent success, or -EEXIST with --first-time; loaded dependencies are skipped', () => {
    const { ctx, actions, printAction } = setup({}, { nfsd: { initstate: 'live\n' }, sunrpc: { initstate: 'live\n' } });
    const flags = PROBE_DRY_RUN | PROBE_APPLY_BLACKLIST_ALIAS_ONLY;
    expect(probeInsertModule(ctx.lookup('nfsd')[0], flags, undefined, { printAction })).toBe(0);
    expect(probeInsertModule(ctx.lookup('nfsd')[0], flags | PROBE_FAIL_ON_LOADED, undefined, { printAction })).toBe(-17);
    expect(probeInsertModule(ctx.lookup('ext4')[0], flags | PROBE_FAIL_ON_LOADED, undefined, { printAction })).toBe(-17);
    expect(actions).toEqual([]);
    probeInsertModule(ctx.lookup('lockd')[0], flags, undefined, { printAction });
    expect(actions).toEqual(['insmod grace ', 'insmod lockd ']);
  });

  it('runs install commands through the shell runner with $CMDLINE_OPTS and MODPROBE_MODULE', () => {
    const { ctx, logs } = setup({ installs: [{ modname: 'grace', command: 'echo $CMDLINE_OPTS; x $CMDLINE_OPTS' }], options: [{ modname: 'grace', options: 'a=1' }] });
    const ran: string[] = [];
    const r = probeInsertModule(ctx.lookup('grace')[0], PROBE_IGNORE_LOADED, 'b=2', {
      env: { MODPROBE_OPTIONS: '-v' },
      runCommand: (cmd, env) => {
        ran.push(`${cmd} | ${env.MODPROBE_MODULE} | ${env.MODPROBE_OPTIONS}`);
        return 3;
      },
    });
    expect(ran).toEqual(['echo a=1 b=2; x a=1 b=2 | grace | -v']);
    expect(r).toBe(-22);
    expect(logs).toEqual(["command_do: Error running install command 'echo a=1 b=2; x a=1 b=2' for module grace: retcode 3\n"]);
  });

  it('inserts each module of the list when not a dry run, with its options and the flags; stops at a required failure', () => {
    const { ctx, actions, printAction } = setup({ options: [{ modname: 'lockd', options: 'l=1' }], softdeps: [{ name: 'lockd', pre: [], post: ['vsock'] }] });
    const inserted: string[] = [];
    const insert = (_c: Context, m: Module, options: string | undefined, flags: number): number => {
      inserted.push(`${m.name} [${options}] ${flags}`);
      return m.name === 'vsock' ? -5 : m.name === 'grace' ? -17 : 0;
    };
    // grace: EEXIST ignored; vsock: a softdep, its error ignored
    expect(probeInsertModule(ctx.lookup('lockd')[0], PROBE_IGNORE_LOADED, 'x=2', { printAction, insert })).toBe(0);
    expect(inserted).toEqual([`sunrpc [undefined] ${PROBE_IGNORE_LOADED}`, `grace [undefined] ${PROBE_IGNORE_LOADED}`, `lockd [l=1 x=2] ${PROBE_IGNORE_LOADED}`, `vsock [undefined] ${PROBE_IGNORE_LOADED}`]);
    expect(actions).toEqual(['insmod sunrpc ', 'insmod grace ', 'insmod lockd l=1 x=2', 'insmod vsock ']);
    const failing = (_c: Context, m: Module): number => (m.name === 'sunrpc' ? -8 : 0);
    const seen: string[] = [];
    expect(probeInsertModule(ctx.lookup('nfsd')[0], PROBE_IGNORE_LOADED, undefined, { insert: (c, m) => (seen.push(m.name), failing(c, m)) })).toBe(-8);
    expect(seen).toEqual(['sunrpc']);
    let called = false;
    probeInsertModule(ctx.lookup('nfsd')[0], DRY, undefined, { insert: () => ((called = true), 0) });
    expect(called).toBe(false);
  });
});

describe('systemCommand (system(3) for install and remove commands)', () => {
  it('runs /bin/sh as glibc does: named sh, with -c -- so a command may start with "-"', () => {
    const fs = require('node:fs') as typeof import('node:fs');
    const os = require('node:os') as typeof import('node:os');
    const path = require('node:path') as typeof import('node:path');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-system-'));
    try {
      fs.writeFileSync(path.join(dir, '-x'), '#!/bin/sh\nexit 7\n', { mode: 0o755 });
      const env = { PATH: `${dir}:/usr/bin:/bin` };
      expect(systemCommand('-x', env)).toBe(7);
      const out = path.join(dir, 'argv0');
      expect(systemCommand(`printf %s "$0" > '${out}'`, env)).toBe(0);
      expect(fs.readFileSync(out, 'utf8')).toBe('sh');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
