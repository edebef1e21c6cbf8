// Runs the VM suite's scenarios (test/vm/scenarios.ts) against the simulated kernel: kmodts' CLI with
// --backend=sim, in a mount namespace where /lib/modules/`uname -r` is the guest's module tree and
// /etc/modprobe.d holds only the scenario's files, so the same command lines run unchanged. The
// outcome of every step is put in the shape of test/vm/expected-kmod.json for comparison.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { moduleClosure } from '../../vm/harness';
import { scenarios, vmModules, vmRecompress, type Scenario, type Step } from '../../vm/scenarios';
import { cacheRoot, repoRoot, runKmod, type Reference } from '../../support/reference';
import { createSimBackend, SimBackend } from '../../../src/backends/sim';

export interface StepOutcome {
  tool: string;
  args: string[];
  stdout: string;
  stderr: string;
  status: number;
  procModules: { name: string; size: number; refcnt: number; users: string[]; state: string; taints: string }[];
  sys: Record<string, string | null>;
  /** kernel log records written during the step (text only) */
  kmsg?: string[];
  /** /proc/sys/kernel/tainted before and after the step */
  taintedBefore?: number;
  tainted?: number;
}

const cacheDir = path.join(cacheRoot, 'sim-vm');

/** The guest's module tree (same closure, recompressions and depmod as the VM's), cached. */
export function guestTree(ref: Reference): string {
  const key = createHash('sha256').update(JSON.stringify({ vmModules, vmRecompress })).digest('hex').slice(0, 12);
  const root = path.join(cacheDir, `tree-${ref.KVER}-${key}`);
  const dstMods = path.join(root, 'lib/modules', ref.KVER);
  if (fs.existsSync(path.join(dstMods, 'modules.dep.bin'))) return root;
  fs.rmSync(root, { recursive: true, force: true });
  const srcMods = path.join(ref.KTREE, 'lib/modules', ref.KVER);
  for (const rel of moduleClosure(srcMods, vmModules)) {
    const name = path.basename(rel).replace(/\.ko\.xz$/, '');
    const how = vmRecompress[name];
    const dst = path.join(dstMods, rel);
    fs.mkdirSync(path.dirname(dst), { recursive: true });
    fs.copyFileSync(path.join(srcMods, rel), dst);
    if (how === 'none') execFileSync('xz', ['-d', dst]);
    else if (how === 'zst') {
      execFileSync('xz', ['-d', dst]);
      execFileSync('zstd', ['-q', '--rm', dst.replace(/\.xz$/, ''), '-o', dst.replace(/\.xz$/, '.zst')]);
    }
  }
  for (const f of ['modules.builtin', 'modules.builtin.modinfo', 'modules.order']) fs.copyFileSync(path.join(srcMods, f), path.join(dstMods, f));
  const r = runKmod('depmod', ['-b', root, ref.KVER]);
  if (r.status !== 0) throw new Error(`depmod failed: ${r.stderr}`);
  return root;
}

function sysView(b: SimBackend, extra: string[]): Record<string, string | null> {
  const sys: Record<string, string | null> = {};
  for (const p of b.procModules() ?? []) {
    sys[`${p.name}/initstate`] = b.readModuleAttr(p.name, 'initstate') ?? null;
    sys[`${p.name}/refcnt`] = b.readModuleAttr(p.name, 'refcnt') ?? null;
    sys[`${p.name}/holders`] = (b.holders(p.name) ?? []).join(' ');
  }
  for (const e of extra) {
    const slash = e.indexOf('/');
    sys[e] = b.readModuleAttr(e.slice(0, slash), e.slice(slash + 1)) ?? null;
  }
  return sys;
}

/**
 * Runs one scenario against a freshly booted simulated kernel that carries the taints `tainted` (the
 * real kernel's before the scenario: taints are boot-wide and some messages appear only while their
 * taint is unset); returns the outcome of every compared step.
 */
export function runScenario(ref: Reference, scenario: Scenario, steps: Step[] = scenario.steps, tainted = 0): StepOutcome[] {
  const tree = guestTree(ref);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-simvm-'));
  const state = path.join(work, 'state');
  const etc = path.join(work, 'modprobe.d');
  fs.mkdirSync(etc);
  for (const [f, text] of Object.entries(scenario.files ?? {})) {
    if (!f.startsWith('/etc/modprobe.d/')) throw new Error(`scenario file outside /etc/modprobe.d: ${f}`);
    fs.writeFileSync(path.join(etc, path.basename(f)), text);
  }
  const hostKver = os.release();
  const moddir = `/lib/modules/${hostKver}`;
  const treeMods = path.join(tree, 'lib/modules', ref.KVER);
  const env: NodeJS.ProcessEnv = {
    PATH: '/usr/local/bin:/usr/bin:/bin',
    LANG: 'C',
    LC_ALL: 'C',
    KMODTS_BACKEND: 'sim',
    KMODTS_SIM_STATE: state,
    KMODTS_SIM_KVER: ref.KVER,
    KMODTS_SIM_MODDIR: treeMods,
    KMODTS_SIM_SYMVERS: ref.SYMVERS,
    KMODTS_SIM_CONFIG: path.join(ref.KTREE, 'boot', `config-${ref.KVER}`),
    KMODTS_SIM_VMLINUZ: ref.VMLINUZ,
  };
  const script =
    'mkdir -p "$KMODTS_T_MODDIR" 2>/dev/null; mount --bind "$KMODTS_T_TREE" "$KMODTS_T_MODDIR" && ' +
    'mkdir -p /etc/modprobe.d && mount --bind "$KMODTS_T_ETC" /etc/modprobe.d && ' +
    'for d in /run/modprobe.d /lib/modprobe.d /usr/lib/modprobe.d /usr/local/lib/modprobe.d; do [ -d $d ] && mount -t tmpfs none $d; done; exec "$@"';
  const run = (step: Step): { stdout: string; stderr: string; status: number } => {
    const args = step.args.map((a) => a.split('$MODDIR').join(moddir));
    const r = spawnSync(
      'unshare',
      ['-m', 'sh', '-c', script, 'sh', process.execPath, path.join(repoRoot, 'bin/kmodts.js'), step.tool, ...args],
      { env: { ...env, KMODTS_T_MODDIR: moddir, KMODTS_T_TREE: treeMods, KMODTS_T_ETC: etc }, encoding: 'latin1' },
    );
    if (r.error) throw r.error;
    // the guest's kernel release appears in kmod's messages where the host's would
    const fix = (s: string): string => s.split(hostKver).join(ref.KVER);
    return { stdout: fix(r.stdout), stderr: fix(r.stderr), status: r.status ?? 128 };
  };
  try {
    createSimBackend({ simState: state }, { env }).reboot(tainted);
    for (const s of scenario.setup ?? []) {
      const r = run(s);
      if (r.status !== 0) throw new Error(`setup step ${s.tool} ${s.args.join(' ')} failed: ${r.stderr}`);
    }
    const out: StepOutcome[] = [];
    let seen = -1;
    for (const s of steps) {
      const r = run(s);
      const b = new SimBackend(state);
      const log = b.kernelLog();
      const kmsg = log.filter((x) => x.seq > seen).map((x) => x.text);
      if (log.length > 0) seen = log[log.length - 1].seq;
      out.push({
        tool: s.tool,
        args: s.args,
        ...r,
        procModules: (b.procModules() ?? []).map((p) => ({ name: p.name, size: p.size, refcnt: p.refcnt, users: p.users, state: p.state, taints: p.taints ? `(${p.taints})` : '' })),
        sys: sysView(b, scenario.sysfs ?? []),
        kmsg: kmsg.filter((t) => !t.startsWith('Linux version ')),
        tainted: b.tainted(),
      });
    }
    return out;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

export { scenarios };
