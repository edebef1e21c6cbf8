// depmod's rows of the goals table: kmodts against kmod 34.2 on Debian 6.12's full amd64 tree and its
// cloud tree, each as .ko.xz and as .ko.zst (and the cloud tree uncompressed), on Node 20, 24 and 26, `node -e 0` alongside (bench/lib.js's
// measureGoal). Both tools index a scratch copy of the tree (hard links) with -C /dev/null so that the
// host's depmod.d plays no part. kmodts runs without a scan cache, in the two ways a run has none:
// - a tree indexed before (its modules.dep there) whose cache is gone: the run writes one for the next
//   runs (module-load.ts), as the first kmodts run over an installed tree, or one after a cache was lost;
// - a fresh tree's first indexing (no modules.dep: a kernel package's postinst, an image being built):
//   no cache is written, as none was asked for.
// Each row's kmodts runs are the first kind unless its label says "first indexing".
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { rounds, wanted, details, options, measureGoal, kmodArgv, kmodtsArgv, row, runtimes, timeSideBySide, fmtMs } = require('./lib');
const { SCAN_CACHE, fullTree, cloudTree, modules, zstCopy, recompressedCopy, scratchTree, reference } = require('./trees');

/** the goal rows of one tree: a run without its cache (which writes one), then a fresh tree's first indexing */
function depmodRow(work, source, timeGoal, defaultRounds) {
  const fresh = `${work}, a fresh tree's first indexing`;
  if (!wanted(work) && !wanted(fresh)) return;
  const tree = scratchTree(source());
  const args = ['-C', '/dev/null', '-b', tree.root, tree.kver];
  const n = modules(tree, '.ko').length + modules(tree, '.ko.xz').length + modules(tree, '.ko.zst').length;
  row(`${work}: modules`, String(n));
  const cache = path.join(tree.moddir, SCAN_CACHE);
  const common = { kmod: kmodArgv(reference(), 'depmod', args), kmodts: (node) => kmodtsArgv('depmod', args, [], node), runs: rounds(defaultRounds), timeGoal };
  if (wanted(work)) measureGoal({ ...common, work, before: (kind) => kind === 'kmodts' && fs.rmSync(cache, { force: true }) });
  if (wanted(fresh)) {
    const indexed = path.join(tree.moddir, 'modules.dep');
    measureGoal({
      ...common,
      work: fresh,
      before: (kind) => {
        if (kind !== 'kmodts') return;
        fs.rmSync(cache, { force: true });
        fs.rmSync(indexed, { force: true });
      },
    });
  }
}

depmodRow('depmod, full tree (.ko.xz)', fullTree, 0.6, 3);
depmodRow('depmod, full tree as .ko.zst', () => zstCopy(fullTree()), 0.6, 3);
depmodRow('depmod, cloud tree (.ko.xz)', cloudTree, 0.8, 5);
depmodRow('depmod, cloud tree as .ko.zst', () => zstCopy(cloudTree()), 0.8, 5);
// not in the table; its cloud goal, since a goal for one tree holds for all of them
depmodRow('depmod, cloud tree as .ko (uncompressed)', () => recompressedCopy(cloudTree(), 'ko'), 0.8, 5);

// .ko.gz: no goal row, as Debian's kmod 34.2 is built -ZLIB and indexes none of the files (no reference
// to hold kmodts to). kmodts side by side with kmod on the same modules as .ko.xz, for scale, and with
// itself on them; the gzip files are decoded on libuv's thread pool by the zlib Node links in.
const gzWork = 'depmod, cloud tree as .ko.gz (no kmod reference: -ZLIB)';
// (not a row of the goals table: measured with the other rows, or when a word picks it, e.g. `npm run bench gz`)
if (details() || (wanted(gzWork) && !options().rowWords.includes('goals'))) {
  const gzTree = scratchTree(recompressedCopy(cloudTree(), 'gz'));
  const xzTree = scratchTree(cloudTree());
  const argsOf = (tree) => ['-C', '/dev/null', '-b', tree.root, tree.kver];
  const caches = [gzTree, xzTree].map((tree) => path.join(tree.moddir, SCAN_CACHE));
  for (const rt of runtimes()) {
    const [gz, xz, kmodXz] = timeSideBySide([kmodtsArgv('depmod', argsOf(gzTree), [], rt.node), kmodtsArgv('depmod', argsOf(xzTree), [], rt.node), kmodArgv(reference(), 'depmod', argsOf(xzTree))], {
      runs: rounds(5),
      before: (j) => j < 2 && fs.rmSync(caches[j], { force: true }),
    });
    row(`${gzWork}: ${rt.label}`, `.ko.gz ${fmtMs(gz.ms)} (CPU ${fmtMs(gz.cpuMs)}), the same as .ko.xz ${fmtMs(xz.ms)}; kmod 34.2 on .ko.xz ${fmtMs(kmodXz.ms)}`);
  }
}
