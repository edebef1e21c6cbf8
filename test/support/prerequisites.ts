// What the suites need from the machine. Tests never install anything: each missing prerequisite is
// one line naming it and the Debian package that provides it, and the run fails (never skips).
// README's "Running the tests" section lists the same set; .ci/run installs these packages.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface Prerequisite {
  /** what is missing, as the line names it */
  what: string;
  /** the Debian package that provides it (or how to get it) */
  provider: string;
  present(): boolean;
}

function onPath(cmd: string): boolean {
  return (process.env.PATH ?? '').split(':').some((dir) => {
    try {
      fs.accessSync(path.join(dir || '.', cmd), fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

function command(cmd: string, pkg: string): Prerequisite {
  return { what: cmd, provider: `Debian package ${pkg}`, present: () => onPath(cmd) };
}

interface PrebuildTarget {
  arch: string;
  cc: string;
  debianPackage: string;
  libcHeaders?: { file: string; debianPackage: string };
}

/** each cross-compiled prebuild target's compiler and its target's C library headers */
function crossPrebuildPrerequisites(): Prerequisite[] {
  const { prebuildTargets } = require('../../scripts/native-prebuilds.js') as { prebuildTargets: PrebuildTarget[] };
  return prebuildTargets
    .filter((t) => t.libcHeaders !== undefined)
    .flatMap((t) => [
      command(t.cc, t.debianPackage),
      {
        what: `${t.arch} C library headers ${t.libcHeaders!.file}`,
        provider: `Debian package ${t.libcHeaders!.debianPackage}`,
        present: () => fs.existsSync(t.libcHeaders!.file),
      },
    ]);
}

const BUSYBOX = '/bin/busybox';

/** The VM suites copy busybox into the guest's initramfs: it must need no shared libraries. */
function busyboxIsStatic(): boolean {
  if (!fs.existsSync(BUSYBOX)) return false;
  const r = spawnSync('ldd', [BUSYBOX], { encoding: 'utf8' });
  return /not a dynamic executable|statically linked/.test(r.stdout + r.stderr);
}

/** a runtime library of gcc's, where `gcc -print-file-name` finds it */
export function gccRuntimeFile(name: string): string | null {
  const r = spawnSync('gcc', [`-print-file-name=${name}`], { encoding: 'utf8' });
  const file = r.status === 0 ? r.stdout.trim() : '';
  return path.isAbsolute(file) && fs.existsSync(file) ? file : null;
}

function gccRuntime(name: string, what: string, pkg: string): Prerequisite {
  return { what: `gcc's ${what} runtime ${name}`, provider: `Debian package ${pkg}`, present: () => gccRuntimeFile(name) !== null };
}

export const prerequisites: Prerequisite[] = [
  command('bash', 'bash'),
  command('find', 'findutils'),
  command('dpkg-deb', 'dpkg'),
  command('apt-get', 'apt'),
  command('xz', 'xz-utils'),
  command('zstd', 'zstd'),
  command('gzip', 'gzip'),
  command('python3', 'python3'),
  command('readelf', 'binutils'),
  command('ldd', 'libc-bin'),
  command('script', 'bsdutils'),
  command('unshare', 'util-linux'),
  command('zsh', 'zsh'),
  command('groff', 'groff-base'),
  command('man', 'man-db'),
  command('cpio', 'cpio'),
  command('qemu-system-x86_64', 'qemu-system-x86'),
  command('gcc', 'gcc'),
  command('g++', 'g++'),
  command('make', 'make'),
  command('git', 'git'),
  // the addon built with -fsanitize=address,undefined (test/native/sanitized-addon.test.ts)
  gccRuntime('libasan.so', 'AddressSanitizer', 'libasan8'),
  gccRuntime('libubsan.so', 'UndefinedBehaviorSanitizer', 'libubsan1'),
  // the system suite: a Debian root file system, its disk image
  command('debootstrap', 'debootstrap'),
  command('mkfs.ext4', 'e2fsprogs'),
  // the native helper's cross-compiled prebuilds (npm pack), as scripts/native-prebuilds.js names
  // their compilers and C library headers, and the arm64 one's check under emulation
  ...crossPrebuildPrerequisites(),
  command('qemu-aarch64-static', 'qemu-user-static'),
  { what: `a statically linked ${BUSYBOX}`, provider: 'Debian package busybox-static', present: busyboxIsStatic },
  {
    // scripts/build-native.js builds against them (--nodedir=/usr): node-gyp would otherwise download them
    what: 'Node.js headers /usr/include/node/node_api.h',
    provider: "Debian package libnode-dev (NodeSource's nodejs has them)",
    present: () => fs.existsSync('/usr/include/node/node_api.h'),
  },
  {
    what: 'root (unshare -m bind-mounts fake /proc/cmdline and /sys/module)',
    provider: 'run the tests as root',
    present: () => process.getuid?.() === 0,
  },
];

/** One line per missing prerequisite (all of them, or those named). */
export function missingPrerequisites(names?: string[]): string[] {
  return prerequisites
    .filter((p) => names === undefined || names.some((n) => p.what === n || p.provider.endsWith(` ${n}`)))
    .filter((p) => !p.present())
    .map((p) => `missing test prerequisite: ${p.what} (${p.provider})`);
}

/** An Error whose whole text is the given lines (no stack: the lines say everything). */
export function prerequisiteError(lines: string[]): Error {
  const err = new Error(lines.join('\n'));
  err.stack = err.message;
  return err;
}

/** Throws when any of the named prerequisites (commands or Debian packages) is missing. */
export function requirePrerequisites(names: string[]): void {
  const missing = missingPrerequisites(names);
  if (missing.length > 0) throw prerequisiteError(missing);
}
