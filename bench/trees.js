// The module trees the goals table runs on: Debian 6.12's full amd64 tree (linux-image-amd64, ~4,230
// .ko.xz) and its cloud-amd64 tree (the reference, ~1,140 .ko.xz), each also as .ko.zst. A .ko.zst copy
// is made once per machine, as `make modules_install` with CONFIG_MODULE_COMPRESS_ZSTD makes it: each
// module decompressed to a file and compressed by `zstd -T0 --rm -f -q` (6.12's scripts/Makefile.modinst;
// from a file, so the frame records the content size kmod needs). It is cached beside the source tree in
// ~/.cache/kmodts, written to a temporary directory and renamed into place when complete.
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { repoRoot, reference } = require('./lib');

const SCAN_CACHE = 'modules.kmodts-cache.bin';

let ref;
const refOnce = () => (ref ??= reference());

/** A module tree: `root` (pass to -b/-d), `kver`, `moddir` = root/lib/modules/kver. */
const treeAt = (root, kver) => ({ root, kver, moddir: path.join(root, 'lib/modules', kver) });

function fullTree() {
  const out = execFileSync('bash', [path.join(repoRoot, 'scripts/fetch-tree.sh'), 'amd64', 'linux-image-amd64'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  return treeAt(/^KTREE=(.*)$/m.exec(out)[1], /^KVER=(.*)$/m.exec(out)[1]);
}

function cloudTree() {
  const r = refOnce();
  return treeAt(r.KTREE, r.KVER);
}

/** the tree's module files with the given suffix, sorted */
function modules(tree, suffix) {
  return execFileSync('find', [path.join(tree.moddir, 'kernel'), '-name', `*${suffix}`], { encoding: 'utf8', maxBuffer: 1 << 26 }).split('\n').filter(Boolean).sort();
}

/** how each recompressed copy is made from a module file: the command that compresses it in place */
const RECOMPRESS = {
  // 6.12's scripts/Makefile.modinst with CONFIG_MODULE_COMPRESS_ZSTD
  zst: 'zstd -T0 --rm -f -q',
  // no compression (CONFIG_MODULE_COMPRESS_NONE, Debian 12's trees, most self-built kernels): left as .ko
  ko: ':',
  // gzip's fastest level: the depmod differential only needs .ko.gz files, not the kernel's level
  gz: 'gzip -n -1 -f',
};

/** the file name suffix of a copy's modules */
const suffixOf = (ext) => (ext === 'ko' ? '.ko' : `.ko.${ext}`);

/** whether dir holds a finished copy of every .ko.xz of tree, as .ko.<ext> (or .ko) */
function isCopyOf(dir, tree, xzCount, ext) {
  if (!fs.existsSync(path.join(dir, '.stamp'))) return false;
  const copy = treeAt(dir, tree.kver);
  if (!fs.existsSync(path.join(copy.moddir, 'kernel'))) return false;
  return modules(copy, suffixOf(ext)).length === xzCount && modules(copy, '.ko.xz').length === 0;
}

/**
 * The tree with every .ko.xz recompressed as .ko.<ext> (ext 'ko': decompressed, as .ko; zst: as `make modules_install` with
 * CONFIG_MODULE_COMPRESS_ZSTD writes it, zstd's default level, from a file so that the frame stores the
 * content size, which libkmod needs), made once per machine as `<tree>-<ext>` beside the tree. Shared by
 * the benchmarks and the depmod differential (which hard-links it into a scratch tree).
 */
function recompressedCopy(tree, ext) {
  const xzCount = modules(tree, '.ko.xz').length;
  const dst = `${tree.root}-${ext}`;
  if (isCopyOf(dst, tree, xzCount, ext)) return treeAt(dst, tree.kver);
  const tmp = fs.mkdtempSync(`${dst}.tmp-`);
  process.stderr.write(`bench: recompressing ${xzCount} modules of ${tree.moddir} as ${suffixOf(ext)} into ${dst} (once per machine)\n`);
  const moddir = path.join(tmp, 'lib/modules', tree.kver);
  fs.mkdirSync(path.dirname(moddir), { recursive: true });
  // hard links for everything (the .ko.xz links are then replaced, never written through)
  execFileSync('cp', ['-al', tree.moddir, moddir]);
  const script = `for f; do xz -dc "$f" > "\${f%.xz}" && rm -f "$f" && ${RECOMPRESS[ext]} "\${f%.xz}" || exit 1; done`;
  execFileSync('sh', ['-c', `find "$0" -name '*.ko.xz' -print0 | xargs -0 -r -n 64 -P ${os.availableParallelism()} sh -c '${script}' sh`, moddir], { stdio: 'inherit' });
  fs.writeFileSync(path.join(tmp, '.stamp'), `${tree.root} recompressed with ${RECOMPRESS[ext]}\n`);
  if (!isCopyOf(tmp, tree, xzCount, ext)) throw new Error(`bench: the ${suffixOf(ext)} copy in ${tmp} is incomplete`);
  fs.rmSync(dst, { recursive: true, force: true });
  fs.renameSync(tmp, dst);
  return treeAt(dst, tree.kver);
}

const zstCopy = (tree) => recompressedCopy(tree, 'zst');

/**
 * A scratch copy (hard links) of the tree's modules and the files depmod reads besides them, for
 * depmod -b to write its indexes into; removed at exit.
 */
function scratchTree(tree) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-bench-tree-'));
  process.on('exit', () => fs.rmSync(root, { recursive: true, force: true }));
  const dst = treeAt(root, tree.kver);
  fs.mkdirSync(dst.moddir, { recursive: true });
  execFileSync('cp', ['-al', path.join(tree.moddir, 'kernel'), dst.moddir]);
  for (const f of ['modules.order', 'modules.builtin', 'modules.builtin.modinfo']) fs.copyFileSync(path.join(tree.moddir, f), path.join(dst.moddir, f));
  return dst;
}

module.exports = { SCAN_CACHE, fullTree, cloudTree, modules, zstCopy, recompressedCopy, scratchTree, reference: refOnce };
