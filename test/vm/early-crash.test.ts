// Which guests that never finished are booted once more (harness.ts earlyKernelCrash): only a kernel
// that crashed by itself before the first report, never a guest that reported, hung or just stopped.
import { describe, expect, it } from 'vitest';
import { earlyKernelCrash } from './harness';

// the console of a CI boot of the system suite (Debian's cloud kernel, -smp 2 under multi-threaded TCG)
const int3AtBoot = [
  'SeaBIOS (version 1.16.2-debian-1.16.2-1)',
  'Booting from ROM...',
  '[    3.184961] Oops: int3: 0000 [#1] PREEMPT SMP NOPTI',
  '[    3.185442] RIP: 0010:sched_clock_cpu+0x9/0x1d0',
  '[    3.186698]  ttwu_queue_wakelist+0xa4/0x100',
  '[    3.187697] Kernel panic - not syncing: Fatal exception in interrupt',
].join('\n');

describe('earlyKernelCrash', () => {
  it('takes a kernel oops or panic before any report, qemu gone by itself', () => {
    expect(earlyKernelCrash(0, 0, int3AtBoot)).toBe(true);
    expect(earlyKernelCrash(0, 0, '[    1.2] Kernel panic - not syncing: VFS: Unable to mount root fs')).toBe(true);
  });

  it('leaves a guest that reported anything: what crashed it may be the tools under test', () => {
    expect(earlyKernelCrash(1, 0, int3AtBoot)).toBe(false);
    expect(earlyKernelCrash(12, 0, int3AtBoot)).toBe(false);
  });

  it('leaves a guest that hung (a second timeout would double the wait) or stopped without a crash', () => {
    expect(earlyKernelCrash(0, 'timeout', int3AtBoot)).toBe(false);
    expect(earlyKernelCrash(0, 0, 'SeaBIOS\nBooting from ROM...\n[    2.0] Run /init as init process')).toBe(false);
    expect(earlyKernelCrash(0, 'spawn error: ENOENT', '')).toBe(false);
  });

  it('does not take a warning for a crash', () => {
    expect(earlyKernelCrash(0, 0, '[    5.0] BUG: soft lockup - CPU#1 stuck for 22s!')).toBe(false);
    expect(earlyKernelCrash(0, 0, '[    5.0] WARNING: CPU: 0 PID: 1 at kernel/foo.c:12')).toBe(false);
  });
});
