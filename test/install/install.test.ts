// Installing the packed package as users do, on a machine where nothing may be compiled: CC and CXX
// name compilers that do not exist. With npm 11 and npm 10, globally into a fresh prefix and as a
// dependency of a new project, the installation must succeed without building anything, ship what it
// should (LICENSE, docs/json-schema, the prebuilt helpers, man pages under names that do not shadow
// kmod's, no code cache, nothing that names the packer's directories), and the installed tools must
// match kmod 34.2 on a tree of .ko.xz, .ko.zst and .ko.gz modules (for .gz, kmod's result on the same
// module as .xz: Debian's kmod is built without zlib), real loading included: on a kernel without
// module support that ends in kmod's ENOSYS message, never in "the native loader is not built".
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanEnv, repoRoot, runKmod } from '../support/reference';
import {
  filesContaining,
  installDependency,
  installGlobal,
  machineNpm,
  noCompilerEnv,
  npm10,
  packCopy,
  run,
  tarballFiles,
  type Installation,
  type NpmCommand,
} from './npm-package';

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-install-'));
afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));

const kver = '6.12.0-example';
const exampleModules = path.join(repoRoot, 'examples/tree/lib/modules', kver);
/** depmod's own input files in a module directory; everything else named modules.* it writes */
const depmodInputs = new Set(['modules.order', 'modules.builtin', 'modules.builtin.modinfo']);
const compressors = [
  { ext: '.xz', argv: ['xz', '--check=crc32', '--lzma2=dict=1MiB'], debianPackage: 'xz-utils' },
  { ext: '.zst', argv: ['zstd', '-q', '--rm'], debianPackage: 'zstd' },
  { ext: '.gz', argv: ['gzip', '-9n'], debianPackage: 'gzip' },
];

/**
 * The example tree with its modules compressed in turn with xz, zstd and gzip (or, for kmod, xz in place
 * of gzip: Debian's kmod 34.2 is built without zlib and skips .ko.gz, a difference docs/compat.md lists),
 * and depmod's output removed: root/lib/modules/<kver>. Returns the module files (relative to the module
 * dir).
 */
function compressedTree(root: string, gzipAsXz = false): string[] {
  const dir = path.join(root, 'lib/modules', kver);
  fs.cpSync(exampleModules, dir, { recursive: true });
  for (const f of fs.readdirSync(dir)) if (f.startsWith('modules.') && !depmodInputs.has(f)) fs.rmSync(path.join(dir, f));
  const kos = fs
    .readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ko'))
    .sort();
  return kos.map((ko, i) => {
    let c = compressors[i % compressors.length];
    if (gzipAsXz && c.ext === '.gz') c = compressors[0];
    const r = run([...c.argv, path.join(dir, ko)]);
    if (r.status !== 0) throw new Error(`${c.argv[0]} failed on ${ko} (Debian package ${c.debianPackage}): ${r.stderr}`);
    fs.rmSync(path.join(dir, ko), { force: true });
    return ko + c.ext;
  });
}

const npms: { name: string; npm: () => NpmCommand; major: number }[] = [
  { name: "npm 11 (the machine's)", npm: machineNpm, major: 11 },
  { name: 'npm 10 (from the registry, cached)', npm: npm10, major: 10 },
];

let tarball = '';
let packedFrom = '';
beforeAll(() => {
  ({ tarball, packedFrom } = packCopy(scratch));
});

describe('npm pack', () => {
  it('ships LICENSE, docs/json-schema, both prebuilt helpers and the man pages; no code cache, no build output', () => {
    const files = tarballFiles(tarball);
    expect(files).toEqual(
      expect.arrayContaining([
        'package/LICENSE',
        'package/README.md',
        'package/docs/json-schema/README.md',
        'package/prebuilds/linux-x64/kmodts_native.node',
        'package/prebuilds/linux-arm64/kmodts_native.node',
        'package/dist/man/kmodts.1',
        'package/dist/man/kmodts-modprobe.8',
        'package/man/modprobe.8',
        'package/completion/kmodts.bash',
        'package/completion/_kmodts',
      ]),
    );
    expect(files.filter((f) => f.endsWith('.cache') || f.startsWith('package/build/') || f.startsWith('package/test/'))).toEqual([]);
    expect(fs.readFileSync(path.join(repoRoot, 'LICENSE'), 'utf8')).toMatch(/^\s*GNU LESSER GENERAL PUBLIC LICENSE\s+Version 2\.1, February 1999/);
    // pack time leaves the copy it ran in as it found it (postpack)
    expect(fs.existsSync(path.join(packedFrom, 'prebuilds'))).toBe(false);
  });
});

for (const { name, npm: npmOf, major } of npms) {
  describe(`installed with ${name}, no C compiler`, () => {
    const base = path.join(scratch, `npm${major}`);
    let npm: NpmCommand;
    const installs: Record<'global' | 'dependency', Installation | undefined> = { global: undefined, dependency: undefined };
    beforeAll(() => {
      npm = npmOf();
      const env = noCompilerEnv(scratch);
      installs.global = installGlobal(npm, tarball, path.join(base, 'prefix'), env);
      installs.dependency = installDependency(npm, tarball, path.join(base, 'project'), env);
    });

    it(`is npm ${major}`, () => expect(npm.major).toBe(major));

    for (const kind of ['global', 'dependency'] as const) {
      it(`${kind}: npm succeeds and nothing is compiled (the prebuilt helper is used)`, () => {
        const inst = installs[kind]!;
        expect(inst.result.stderr).not.toMatch(/gyp ERR!|native loader/);
        expect(inst.result.status, inst.result.stderr).toBe(0);
        expect(fs.existsSync(path.join(inst.packageDir, 'build'))).toBe(false);
        expect(fs.existsSync(path.join(inst.packageDir, 'prebuilds/linux-x64/kmodts_native.node'))).toBe(true);
        // the prebuilt helper carries the decoder (native/decompress.c) and opens the system's libraries
        const versions = execFileSync(process.execPath, ['-p', `JSON.stringify(require(${JSON.stringify(path.join(inst.packageDir, 'prebuilds/linux-x64/kmodts_native.node'))}).libraryVersions())`], { encoding: 'utf8' });
        expect(JSON.parse(versions)).toMatchObject({ liblzma: expect.any(Number), libzstd: expect.any(Number) });
        expect(JSON.parse(versions).libzstd).toBeGreaterThan(0);
      });

      it(`${kind}: no installed file names the directory it was packed in`, () => {
        expect(filesContaining(installs[kind]!.packageDir, packedFrom)).toEqual([]);
      });

      it(`${kind}: modinfo, depmod and modprobe -D on .ko.xz, .ko.zst and .ko.gz match kmod 34.2`, () => {
        checkToolsOnCompressedTree(installs[kind]!, path.join(base, `tree-${kind}`));
      });

      it(`${kind}: insmod of each format really loads, ending in kmod's message on this kernel`, () => {
        checkRealLoad(installs[kind]!, path.join(base, `load-${kind}`));
      });
    }

    it('global: the man pages are installed as kmodts-<page>, none under kmod names', () => {
      const man = path.join(base, 'prefix/share/man');
      const pages = fs.readdirSync(path.join(repoRoot, 'man'));
      for (const section of ['1', '5', '8']) {
        const expected = pages.filter((p) => p.endsWith(`.${section}`)).map((p) => (p === 'kmodts.1' ? p : `kmodts-${p}`));
        expect(fs.readdirSync(path.join(man, `man${section}`)).sort(), section).toEqual(expected.sort());
      }
      expect(fs.readdirSync(path.join(man, 'man8'))).toContain('kmodts-modprobe.8');
      // what README's commands for kmod's names and for completion install from
      const pkg = path.join(base, 'prefix/lib/node_modules/kmodts');
      for (const f of ['man/modprobe.8', 'man/modprobe.d.5', 'completion/kmodts.bash', 'completion/_kmodts']) {
        expect(fs.existsSync(path.join(pkg, f)), f).toBe(true);
      }
    });
  });
}

/** the installed kmodts, as a user runs it: its own home (a first run makes the code cache there) */
function kmodtsOf(inst: Installation, home: string) {
  return (tool: string, args: string[]) => run([inst.bin, tool, ...args], { env: cleanEnv({ HOME: home }) });
}

function checkToolsOnCompressedTree(inst: Installation, work: string): void {
  const ours = path.join(work, 'kmodts');
  const theirs = path.join(work, 'kmod');
  const modules = compressedTree(ours);
  compressedTree(theirs, true);
  expect(new Set(modules.map((m) => path.extname(m)))).toEqual(new Set(['.xz', '.zst', '.gz']));
  // what kmod says on its tree (.xz where ours has .gz; the same length, so binary indexes compare too)
  const asTheirs = (text: string) => text.replaceAll(ours, theirs).replaceAll('.ko.gz', '.ko.xz');
  const home = path.join(work, 'home');
  const kmodts = kmodtsOf(inst, home);
  const same = (r: { status: number; stdout: string; stderr: string }) => ({ status: r.status, stdout: asTheirs(r.stdout), stderr: asTheirs(r.stderr) });

  expect(kmodts('depmod', ['-b', ours, kver])).toEqual({ status: 0, stdout: '', stderr: '' });
  expect(runKmod('depmod', ['-b', theirs, kver]).status).toBe(0);
  const written = fs.readdirSync(path.join(theirs, 'lib/modules', kver)).filter((f) => f.startsWith('modules.')).sort();
  expect(fs.readdirSync(path.join(ours, 'lib/modules', kver)).filter((f) => f.startsWith('modules.')).sort()).toEqual(written);
  for (const f of written) {
    const read = (root: string) => fs.readFileSync(path.join(root, 'lib/modules', kver, f)).toString('latin1');
    expect(asTheirs(read(ours)), f).toBe(read(theirs));
  }

  for (const m of modules) {
    const file = path.join(ours, 'lib/modules', kver, m);
    expect(same(kmodts('modinfo', [file])), m).toEqual(runKmod('modinfo', [asTheirs(file)]));
  }
  for (const name of ['greet_fancy', 'greet_bonjour', 'greet_hello']) {
    const r = kmodts('modprobe', ['-d', ours, '-S', kver, '-D', name]);
    expect(r.status, name).toBe(0);
    expect(same(r), name).toEqual(runKmod('modprobe', ['-d', theirs, '-S', kver, '-D', name]));
  }
  // the runs made the code cache, for this Node, in the user's cache
  const [cacheDir] = fs.readdirSync(path.join(home, '.cache/kmodts/v8'));
  expect(cacheDir).toBe(`${process.version}-${process.arch}`);
  expect(fs.readdirSync(path.join(home, '.cache/kmodts/v8', cacheDir)).some((f) => /^modprobe-[0-9a-f]{8}-[0-9a-f]{16}\.cache$/.test(f))).toBe(true);
}

function checkRealLoad(inst: Installation, work: string): void {
  const modules = compressedTree(work);
  const kmodts = kmodtsOf(inst, path.join(work, 'home'));
  // greet_core: no dependencies; one file of each format
  const byExt = new Map(modules.map((m) => [path.extname(m), path.join(work, 'lib/modules', kver, m)]));
  const kernelHasModules = fs.existsSync('/proc/modules');
  for (const [ext, file] of byExt) {
    const r = kmodts('insmod', [file]);
    expect(r.stderr, ext).not.toContain('native loader');
    // what kmod 34.2 says and does on this kernel
    expect(r, ext).toEqual(runKmod('insmod', [file]));
    if (!kernelHasModules) {
      expect(r, ext).toEqual({ status: 1, stdout: '', stderr: `insmod: ERROR: could not insert module ${file}: Function not implemented\n` });
    }
  }
}
