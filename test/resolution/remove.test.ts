// modprobe -r's flow (rmmod_do_module) on the Debian tree with an in-memory kernel: order of
// softdeps, holders and dependencies, the checks, the --wait retry loop and kmod 34.2's time-out quirk.
import { describe, expect, it } from 'vitest';
import { emptyConfig, type ModprobeConfig } from '../../src/resolution/config';
import { Context } from '../../src/resolution/context';
import type { Module } from '../../src/resolution/module';
import { removeModule, type RemoveOptions } from '../../src/resolution/remove';
import { FakeBackend, type FakeModuleState } from '../support/fake-backend';
import { softdepChain } from './softdep-chain';
import { reference } from '../support/reference';

const ref = reference();
const live = (refcnt = 0, holders: string[] = []): FakeModuleState => ({ initstate: 'live\n', refcnt, holders });

function setup(cfg: Partial<ModprobeConfig>, loaded: Record<string, FakeModuleState>) {
  const ctx = new Context({ root: ref.KTREE, kernelVersion: ref.KVER, config: { ...emptyConfig(), ...cfg }, backend: new FakeBackend(loaded) });
  const events: string[] = [];
  const removed: string[] = [];
  const opts: RemoveOptions = {
    show: (l) => events.push(l.trimEnd()),
    report: (m) => events.push(`LOG ${m.trimEnd()}`),
    error: (m) => events.push(`ERR ${m.trimEnd()}`),
    removeFromKernel: (m: Module, force: boolean, nolog: boolean) => {
      removed.push(`${m.name}${force ? ' force' : ''}${nolog ? ' nolog' : ''}`);
      return 0;
    },
  };
  return { ctx, events, removed, opts };
}

describe('removeModule', () => {
  it('post softdeps (reverse), the module, unused dependencies, pre softdeps (reverse)', () => {
    const { ctx, events, removed, opts } = setup(
      { softdeps: [{ name: 'lockd', pre: ['vsock', 'grace'], post: ['nfs_acl', 'auth_rpcgss'] }] },
      { lockd: live(), grace: live(), sunrpc: live(2), vsock: live(), nfs_acl: live(), auth_rpcgss: live() },
    );
    expect(removeModule(ctx.lookup('lockd')[0], opts)).toBe(0);
    // lockd's dependencies: sunrpc (in use: skipped), grace (unused: removed); grace is also a pre softdep
    expect(removed).toEqual(['auth_rpcgss', 'nfs_acl', 'lockd', 'grace', 'grace', 'vsock']);
    expect(events).toEqual(['rmmod auth_rpcgss', 'rmmod nfs_acl', 'rmmod lockd', 'rmmod grace', 'rmmod grace', 'rmmod vsock']);
  });

  it('checks: not loaded (silent, or an error with --first-time), builtin, in use', () => {
    const { ctx, events, opts } = setup({}, { vsock: live(1) });
    expect(removeModule(ctx.lookup('nfsd')[0], opts)).toBe(0);
    expect(removeModule(ctx.lookup('nfsd')[0], { ...opts, firstTime: true })).toBe(-2);
    expect(removeModule(ctx.lookup('ext4')[0], opts)).toBe(-2);
    expect(removeModule(ctx.lookup('vsock')[0], opts)).toBe(-16);
    expect(events).toEqual(['LOG Module nfsd is not in kernel.', 'LOG Module ext4 is builtin.', 'LOG Module vsock is in use.']);
  });

  it('--remove-holders removes the holders first and stops at the first failure', () => {
    const { ctx, removed, opts } = setup({}, { vsock: live(0, ['vsock_loopback', 'hv_sock']), vsock_loopback: live(), hv_sock: live(1) });
    expect(removeModule(ctx.lookup('vsock')[0], { ...opts, removeHolders: true })).toBe(-16);
    expect(removed).toEqual([]); // holders in reverse order: hv_sock (in use) first
    const b = setup({}, { vsock: live(0, ['vsock_loopback', 'hv_sock']), vsock_loopback: live(), hv_sock: live() });
    expect(removeModule(b.ctx.lookup('vsock')[0], { ...b.opts, removeHolders: true })).toBe(0);
    // each holder also takes its unused dependencies along (vsock itself, whose refcnt reads 0 here)
    expect(b.removed.filter((n) => n !== 'vsock' && n !== 'hv_vmbus' && n !== 'vmw_vsock_virtio_transport_common')).toEqual(['hv_sock', 'vsock_loopback']);
    expect(b.removed.at(-1)).toBe('vsock');
  });

  it('remove commands replace the module removal and skip the state checks', () => {
    const { ctx, events, removed, opts } = setup({ removes: [{ modname: 'nfs*', command: 'echo bye $CMDLINE_OPTS' }] }, {});
    const ran: string[] = [];
    expect(removeModule(ctx.lookup('nfsd')[0], { ...opts, runCommand: (cmd, env) => (ran.push(`${cmd}|${env.MODPROBE_MODULE}`), 0) })).toBe(0);
    expect(ran).toEqual(['echo bye |nfsd']);
    expect(events).toEqual(['remove echo bye']); // (trailing blank trimmed by this test's show())
    expect(removed).toEqual([]);
    expect(removeModule(ctx.lookup('nfsd')[0], { ...opts, runCommand: () => 3 })).toBe(-3);
    expect(events.at(-1)).toBe('LOG Error running remove command for nfsd');
  });

  it('--wait retries a busy module with a growing back-off, and a time-out ends in success (kmod 34.2)', () => {
    const { ctx, opts } = setup({}, { grace: live() });
    let calls = 0;
    const busyTwice = (m: Module, force: boolean, nolog: boolean): number => {
      calls++;
      expect(nolog).toBe(true);
      return calls <= 2 ? -11 : 0;
    };
    expect(removeModule(ctx.lookup('grace')[0], { ...opts, waitMsec: 1000, removeFromKernel: busyTwice })).toBe(0);
    expect(calls).toBe(3);
    let forever = 0;
    const t0 = Date.now();
    expect(removeModule(ctx.lookup('grace')[0], { ...opts, waitMsec: 30, removeFromKernel: () => (forever++, -11) })).toBe(0);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(25);
    expect(forever).toBeGreaterThan(2);
  });

  it('a dry run shows but removes nothing; -f is passed on', () => {
    const { ctx, removed, events, opts } = setup({}, { grace: live() });
    expect(removeModule(ctx.lookup('grace')[0], { ...opts, dryRun: true })).toBe(0);
    expect(removed).toEqual([]);
    expect(events).toEqual(['rmmod grace']);
    removeModule(ctx.lookup('grace')[0], { ...opts, force: true });
    expect(removed).toEqual(['grace force']);
  });

  it('removes along chains of soft dependencies 6,000 deep (kmod recurses; JavaScript\'s stack would overflow)', () => {
    const tree = softdepChain(6000);
    const loaded = Object.fromEntries(tree.chain.map((name) => [name, live()]));
    const removedWith = (kind: 'pre' | 'post'): string[] => {
      const ctx = tree.context(kind, new FakeBackend(loaded));
      const removed: string[] = [];
      expect(removeModule(ctx.lookup('c0')[0], { removeFromKernel: (m: Module) => (removed.push(m.name), 0) })).toBe(0);
      return removed;
    };
    // post softdeps go before the module, pre ones after it
    expect(removedWith('post')).toEqual([...tree.chain].reverse());
    expect(removedWith('pre')).toEqual(tree.chain);
    tree.remove();
  });

  it('stops a softdep loop between loaded modules instead of recursing forever', () => {
    const { ctx, opts } = setup({ softdeps: [{ name: 'vsock', pre: [], post: ['grace'] }, { name: 'grace', pre: ['vsock'], post: [] }] }, { vsock: live(), grace: live() });
    expect(() => removeModule(ctx.lookup('vsock')[0], opts)).toThrow(/soft dependency loop while removing vsock/);
  });
});
