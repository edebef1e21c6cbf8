// The system suite's host side: a Debian trixie root (scripts/build-system-root.sh, cached per
// machine), kmodts installed into it from its npm tarball (prepare.sh: update-initramfs with kmod,
// then with kmodts in kmod's place, one ext4 image each), and one QEMU boot of Debian's 6.12 kernel
// per image, each from the initramfs its own tools built. Anything missing throws: the suite fails.
import { execFileSync, spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cacheRoot, reference, repoRoot, type Reference } from '../support/reference';
import { runQemu, type VmRun } from '../vm/harness';
import { scenarios } from './scenarios';

export type Impl = 'kmod' | 'kmodts';
export const impls: Impl[] = ['kmod', 'kmodts'];

const systemCache = path.join(cacheRoot, 'system');

/** host commands the suite needs, with the Debian package that has each */
const prerequisites: Record<string, string> = {
  debootstrap: 'debootstrap',
  'qemu-system-x86_64': 'qemu-system-x86',
  'mkfs.ext4': 'e2fsprogs',
  unshare: 'util-linux',
  chroot: 'coreutils',
  npm: 'npm',
};

/** Throws one line naming the first missing prerequisite and its Debian package. */
export function checkPrerequisites(): void {
  if (process.getuid?.() !== 0) throw new Error('the system suite must run as root (debootstrap, chroot, overlay mounts)');
  for (const [cmd, pkg] of Object.entries(prerequisites)) {
    if (spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status !== 0) {
      throw new Error(`missing prerequisite: ${cmd} (Debian package: ${pkg})`);
    }
  }
}

/** The cached root file system (built on first use). */
export function systemRoot(): string {
  const out = execFileSync('bash', [path.join(repoRoot, 'scripts/build-system-root.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const m = /^ROOT=(.*)$/m.exec(out);
  if (!m) throw new Error('build-system-root.sh did not report ROOT');
  return m[1];
}

/** `npm pack` of this checkout, as a user would get it from the registry (dist/ must be built). */
function packTarball(dir: string): string {
  if (!fs.existsSync(path.join(repoRoot, 'dist/cli/main.js'))) throw new Error('dist/ is missing: run `npm run build`');
  // --ignore-scripts: `prepare` would rebuild dist/, which the caller has just built
  const out = execFileSync('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', dir], { cwd: repoRoot, encoding: 'utf8' });
  const name = out.trim().split('\n').pop()!;
  return path.join(dir, name);
}

export interface Prepared {
  ref: Reference;
  work: string;
  initramfs: Record<Impl, { image: string; tree: string; status: number; output: string; showDepends: string; firmware: string }>;
  rootImage: Record<Impl, string>;
}

/** Everything before the boots: root, tarball, the overlay's installs, both initramfs and images. */
export function prepareSystem(): Prepared {
  checkPrerequisites();
  const ref = reference();
  const root = systemRoot();
  fs.mkdirSync(systemCache, { recursive: true });
  const work = fs.mkdtempSync(path.join(systemCache, 'run-'));
  try {
    return prepareIn(work, root, ref);
  } catch (err) {
    fs.rmSync(work, { recursive: true, force: true });
    throw err;
  }
}

function prepareIn(work: string, root: string, ref: Reference): Prepared {
  const guest = path.join(work, 'guest');
  fs.mkdirSync(guest);
  // prepare.sh too: bash reads a script as it runs it, so editing the checkout meanwhile must not matter
  for (const f of ['prepare.sh', 'guest.js', 'kmodts-system.service', '60-kmodts-modalias.rules', 'replace-kmod.sh', 'initramfs-hook.sh']) {
    fs.copyFileSync(path.join(__dirname, f), path.join(guest, f));
  }
  fs.writeFileSync(path.join(guest, 'scenarios.json'), JSON.stringify({ scenarios }));
  const tarball = packTarball(work);
  const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'bash', path.join(guest, 'prepare.sh'), root, work, tarball, ref.KVER, guest], {
    encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20,
  });
  if (r.status !== 0) throw new Error(`prepare.sh failed (${r.status ?? r.signal}):\n${(r.stderr ?? '').slice(-4000)}`);
  const initramfs = {} as Prepared['initramfs'];
  const rootImage = {} as Prepared['rootImage'];
  for (const impl of impls) {
    initramfs[impl] = {
      image: path.join(work, `initrd-${impl}.img`),
      tree: path.join(work, `initrd-${impl}.d`),
      status: Number(fs.readFileSync(path.join(work, `update-initramfs-${impl}.status`), 'utf8')),
      output: fs.readFileSync(path.join(work, `update-initramfs-${impl}.out`), 'utf8'),
      showDepends: fs.readFileSync(path.join(work, `show-depends-${impl}.out`), 'utf8'),
      firmware: fs.readFileSync(path.join(work, `firmware-${impl}.out`), 'utf8'),
    };
    rootImage[impl] = path.join(work, `root-${impl}.img`);
  }
  return { ref, work, initramfs, rootImage };
}

/** Boots the system whose tools are `impl`'s, from the initramfs they built; the root disk is a
 *  throw-away snapshot of its image. Has QEMU's virtio-rng device for the device-alias scenario. */
export async function bootSystem(p: Prepared, impl: Impl): Promise<VmRun> {
  const run = await runQemu({
    args: [
      '-m', '1024', '-smp', '2', '-net', 'none', '-device', 'virtio-rng-pci',
      '-kernel', p.ref.VMLINUZ, '-initrd', p.initramfs[impl].image,
      '-drive', `file=${p.rootImage[impl]},format=raw,if=virtio,snapshot=on`,
      // TCG on a shared machine is slow, and a kmodts start is a Node start: udev and systemd wait long
      '-append', 'root=/dev/vda rw console=ttyS0 panic=-1 quiet systemd.show_status=0 udev.event_timeout=600 systemd.default_timeout_start_sec=600',
    ],
    reportFile: path.join(p.work, `ttyS1-${impl}.txt`),
    consoleFile: path.join(systemCache, `last-console-${impl}.txt`),
    timeoutMs: 900_000,
  });
  // the last run's reports, for reading what each step printed (the work directory is removed)
  fs.writeFileSync(path.join(systemCache, `last-reports-${impl}.json`), JSON.stringify(run.reports, null, 1));
  return run;
}

export interface TreeEntry {
  type: 'file' | 'link' | 'dir';
  mode: number;
  /** sha256 of a file's bytes, or a link's target */
  content: string;
}

/** Every path of an unpacked initramfs with its type, mode and content hash (or link target). */
export function treeManifest(dir: string): Map<string, TreeEntry> {
  const out = new Map<string, TreeEntry>();
  const walk = (rel: string) => {
    for (const name of fs.readdirSync(path.join(dir, rel)).sort()) {
      const r = rel === '' ? name : `${rel}/${name}`;
      const full = path.join(dir, r);
      const st = fs.lstatSync(full);
      if (st.isSymbolicLink()) out.set(r, { type: 'link', mode: st.mode & 0o7777, content: fs.readlinkSync(full) });
      else if (st.isDirectory()) {
        out.set(r, { type: 'dir', mode: st.mode & 0o7777, content: '' });
        walk(r);
      } else out.set(r, { type: 'file', mode: st.mode & 0o7777, content: crypto.createHash('sha256').update(fs.readFileSync(full)).digest('hex') });
    }
  };
  walk('');
  return out;
}

export function removeWork(p: Prepared): void {
  fs.rmSync(p.work, { recursive: true, force: true });
}
