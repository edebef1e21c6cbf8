// Differential suite: kmodts depmod against kmod 34.2's depmod on real Debian module trees:
//   - the Debian 6.12 cloud-amd64 tree (.ko.xz), options -n, -E/-e, -F/-e, -v, -w;
//   - the same tree recompressed with zstd and with gzip (compared with the .xz result modulo extension);
//   - the Debian s390x (64-bit big-endian) and armhf (32-bit) trees, fetched by scripts/fetch-tree.sh,
//     with the symbols read and the indexes built by the native helper and by its JavaScript twins;
//   - kmod's own modprobe reading kmodts' indexes: `modprobe -D` of every module as with kmod's indexes.
// Every output file must be byte-identical, and stdout, stderr and exit status identical.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { copyTree, DEPMOD_FILES, moduleFiles, differingFiles, kmodDepmod, kmodtsDepmod, normalizePointers, removeOutputs, runBoth, snapshot, temporaryFiles } from '../depmod/support';
import { reference, repoRoot, runKmod } from '../support/reference';

/**
 * A scratch tree (hard links) of the reference tree with every .ko.xz recompressed as .ko.<ext>: the
 * recompressed copy is made once per machine and shared with the benchmarks (bench/trees.js).
 */
function recompressedTree(srcModdir: string, kver: string, ext: 'zst' | 'gz'): { root: string; moddir: string } {
  const { recompressedCopy } = require(path.join(repoRoot, 'bench/trees.js')) as {
    recompressedCopy: (tree: { root: string; kver: string; moddir: string }, ext: string) => { moddir: string };
  };
  const root = path.resolve(srcModdir, '../../..');
  return copyTree(recompressedCopy({ root, kver, moddir: srcModdir }, ext).moddir, kver, ext);
}

const text = (b: Buffer | null | undefined): string => (b ?? Buffer.alloc(0)).toString('latin1');

describe('depmod on the Debian 6.12 cloud-amd64 tree (kmod 34.2 differential)', () => {
  const ref = reference();
  const refModdir = path.join(ref.KTREE, 'lib/modules', ref.KVER);
  let tree: { root: string; moddir: string };
  let xzFiles: Map<string, Buffer | null>;
  beforeAll(() => {
    tree = copyTree(refModdir, ref.KVER, 'cloud');
  });

  it('writes the 11 files byte-identical to kmod (and to the reference indexes)', async () => {
    const r = await runBoth(['-C', '/dev/null', '-b', tree.root, ref.KVER], tree.moddir);
    expect(r.kmodts).toEqual(r.kmod);
    expect(r.kmod.status).toBe(0);
    expect(differingFiles(r.kmodFiles, r.kmodtsFiles)).toEqual([]);
    expect(differingFiles(snapshot(refModdir), r.kmodtsFiles)).toEqual([]);
    expect(temporaryFiles(tree.moddir)).toEqual([]);
    expect(text(r.kmodtsFiles.get('modules.dep')).split('\n').length).toBeGreaterThan(1000);
    xzFiles = r.kmodtsFiles;
  });

  it('-n output', async () => {
    const r = await runBoth(['-C', '/dev/null', '-n', '-b', tree.root, ref.KVER], tree.moddir);
    expect(r.kmodts).toEqual(r.kmod);
    expect(r.kmod.stdout.length).toBeGreaterThan(100_000);
  });

  it('-e -E Module.symvers, -w, -v', async () => {
    const r = await runBoth(['-C', '/dev/null', '-n', '-e', '-w', '-v', '-E', ref.SYMVERS, '-b', tree.root, ref.KVER], tree.moddir);
    expect(r.kmodts).toEqual(r.kmod);
    expect(r.kmod.stdout).toContain(' needs "');
  });

  it('-e -F System.map', async () => {
    const map = path.join(ref.KTREE, 'boot', `System.map-${ref.KVER}`);
    const r = await runBoth(['-C', '/dev/null', '-n', '-e', '-F', map, '-b', tree.root, ref.KVER], tree.moddir);
    expect(r.kmodts).toEqual(r.kmod);
  });

  it("kmod's modprobe reads kmodts' indexes: -D of every module as with kmod's own", () => {
    for (const [f, data] of xzFiles) fs.writeFileSync(path.join(tree.moddir, f), data!);
    const names = text(xzFiles.get('modules.dep'))
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => path.basename(l.slice(0, l.indexOf(':'))).replace(/\.ko.*$/, ''));
    const builtin = fs.readFileSync(path.join(refModdir, 'modules.builtin'), 'latin1').split('\n').filter((l) => l !== '').map((l) => path.basename(l).replace(/\.ko.*$/, ''));
    const args = (root: string) => ['-C', '/dev/null', '-d', root, '-S', ref.KVER, '-D', '-a', ...names, ...builtin.slice(0, 50), 'pci:v00008086d00001000sv*sd*bc*sc*i*', 'symbol:nf_conntrack_in'];
    const mine = runKmod('modprobe', args(tree.root));
    const theirs = runKmod('modprobe', args(ref.KTREE));
    expect(mine.stdout.split(tree.root).join('ROOT')).toBe(theirs.stdout.split(ref.KTREE).join('ROOT'));
    expect(mine.stderr.split(tree.root).join('ROOT')).toBe(theirs.stderr.split(ref.KTREE).join('ROOT'));
    expect(mine.status).toBe(theirs.status);
    expect(mine.stdout.split('\n').length).toBeGreaterThan(names.length);
  });

  it('the zstd recompression gives kmod\'s files, equal to the .xz result modulo extension', async () => {
    const zt = recompressedTree(refModdir, ref.KVER, 'zst');
    const r = await runBoth(['-C', '/dev/null', '-b', zt.root, ref.KVER], zt.moddir);
    expect(r.kmodts).toEqual(r.kmod);
    expect(differingFiles(r.kmodFiles, r.kmodtsFiles)).toEqual([]);
    for (const f of ['modules.dep', 'modules.alias', 'modules.softdep', 'modules.weakdep', 'modules.symbols', 'modules.devname']) {
      expect(text(r.kmodtsFiles.get(f))).toBe(text(xzFiles.get(f)).replace(/\.ko\.xz/g, '.ko.zst'));
    }
    for (const f of ['modules.alias.bin', 'modules.symbols.bin', 'modules.builtin.bin', 'modules.builtin.alias.bin']) {
      expect(r.kmodtsFiles.get(f)!.equals(xzFiles.get(f)!)).toBe(true);
    }
  });

  it('the gzip recompression equals the .xz result modulo extension (kmod 34.2 as Debian builds it has no zlib)', async () => {
    const gt = recompressedTree(refModdir, ref.KVER, 'gz');
    const t = await kmodtsDepmod(['-C', '/dev/null', '-b', gt.root, ref.KVER]);
    expect(t).toEqual({ stdout: '', stderr: '', status: 0 });
    const files = snapshot(gt.moddir);
    for (const f of ['modules.dep', 'modules.alias', 'modules.softdep', 'modules.weakdep', 'modules.symbols', 'modules.devname']) {
      expect(text(files.get(f))).toBe(text(xzFiles.get(f)).replace(/\.ko\.xz/g, '.ko.gz'));
    }
    for (const f of ['modules.alias.bin', 'modules.symbols.bin', 'modules.builtin.bin', 'modules.builtin.alias.bin']) {
      expect(files.get(f)!.equals(xzFiles.get(f)!)).toBe(true);
    }
    // modules.dep.bin holds paths: same trie contents with .gz for .xz
    const { BinaryIndex } = require(path.join(repoRoot, 'dist/indexes/binary.js')) as typeof import('../../src/indexes/binary');
    const dump = (b: Buffer) => new BinaryIndex(b, 'modules.dep.bin').dump('');
    expect(dump(files.get('modules.dep.bin')!)).toBe(dump(xzFiles.get('modules.dep.bin')!).replace(/\.ko\.xz/g, '.ko.gz'));
    // and kmod itself indexes none of them
    const k = kmodDepmod(['-C', '/dev/null', '-n', '-b', gt.root, ref.KVER]);
    expect(k.stdout.startsWith('# Aliases')).toBe(true);
  });
});

describe.each([
  ['s390x', 'linux-image-s390x', 'ELF64 big-endian', [2, 2]],
  ['armhf', 'linux-image-armmp', 'ELF32 little-endian', [1, 1]],
] as const)('depmod on the Debian %s tree (kmod 34.2 differential)', (arch, meta, kind, ident) => {
  it(`writes the 11 files byte-identical to kmod (${kind} modules)`, async () => {
    const out = execFileSync('bash', [path.join(repoRoot, 'scripts/fetch-tree.sh'), arch, meta], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const ktree = /^KTREE=(.*)$/m.exec(out)![1];
    const kver = /^KVER=(.*)$/m.exec(out)![1];
    const src = path.join(ktree, 'lib/modules', kver);
    const head = fs.readFileSync(moduleFiles(path.join(src, 'kernel')).find((f) => f.endsWith('.ko.xz'))!);
    expect(head.length).toBeGreaterThan(0);
    const tree = copyTree(src, kver, arch);
    const scan = require(path.join(repoRoot, 'dist/depmod/module-scan.js')) as typeof import('../../src/depmod/module-scan');
    const nativeBefore = scan.nativeSymbolStats.done;
    const r = await runBoth(['-C', '/dev/null', '-b', tree.root, kver], tree.moddir);
    expect(r.kmodts).toEqual(r.kmod);
    expect(r.kmod.status).toBe(0);
    expect(differingFiles(r.kmodFiles, r.kmodtsFiles)).toEqual([]);
    // the symbols came from the native helper, the indexes too; their JavaScript twins write the same files
    expect(scan.nativeSymbolStats.done - nativeBefore).toBeGreaterThan(1000);
    const writer = require(path.join(repoRoot, 'dist/indexes/writer.js')) as typeof import('../../src/indexes/writer');
    expect(scan.useNativeSymbols(false)).toBe(false);
    expect(writer.useNativeIndexBuilder(false)).toBe(false);
    try {
      removeOutputs(tree.moddir);
      // every module read again (not taken from the scan cache of the run before)
      const js = await kmodtsDepmod(['-C', '/dev/null', '-b', tree.root, kver], undefined, { KMODTS_DEPMOD_CACHE: 'off' });
      expect(normalizePointers(js)).toEqual(r.kmod);
      expect(differingFiles(r.kmodFiles, snapshot(tree.moddir))).toEqual([]);
    } finally {
      scan.useNativeSymbols(true);
      writer.useNativeIndexBuilder(true);
    }
    expect(text(r.kmodtsFiles.get('modules.dep')).split('\n').length).toBeGreaterThan(1000);
    // the modules really are of that kind (EI_CLASS, EI_DATA)
    const { decompress } = require(path.join(repoRoot, 'dist/file/decompress.js')) as typeof import('../../src/file/decompress');
    const elf = decompress(head, 'x');
    expect([elf[4], elf[5]]).toEqual([...ident]);
    expect(DEPMOD_FILES.every((f) => r.kmodtsFiles.get(f) !== null)).toBe(true);
  });
});
