// kmodts check and --json: the cost of a check against the example tree and the Debian tree (after the first
// run has cached the kernel's signing keys), and what --json adds to modprobe -D and modinfo.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { repoRoot, reference, benchEnv, time, kmodtsArgv, row } = require('./lib');

const ref = reference();
const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-bench-check-'));
const env = benchEnv({ HOME: cache });
const base = time([process.execPath, '-e', '0'], { env }).ms;
const example = ['-d', path.join(repoRoot, 'examples/tree'), '-S', '6.12.0-example'];
const debian = ['-d', ref.KTREE, '-S', ref.KVER, '-E', ref.SYMVERS];

const report = (label, argv, runs = 7) => {
  const t = time(argv, { env, runs });
  row(label, `${t.ms.toFixed(0)} ms (node -e 0: ${base.toFixed(0)} ms), peak ${(t.peakKiB / 1024).toFixed(0)} MiB`);
  return t.ms;
};

report('check greet_fancy (example tree)', kmodtsArgv('check', [...example, '-q', 'greet_fancy']));
report('check --all (example tree, 5 modules)', kmodtsArgv('check', [...example, '-q', '--all']));
report('check xfs (Debian 6.12)', kmodtsArgv('check', [...debian, '-q', 'xfs']));
const names = ['xfs', 'btrfs', 'nfsd', 'ext4', 'vsock_loopback', 'virtio_net', 'cxl_pci', 'kvm_intel', 'sunrpc', 'dm_crypt'];
const ms = report(`check ${names.length} modules (Debian 6.12)`, kmodtsArgv('check', [...debian, '-q', ...names]), 5);
row('  per module', `${((ms - base) / names.length).toFixed(0)} ms`);
const dashD = ['-d', ref.KTREE, '-S', ref.KVER, '-D', 'btrfs'];
const text = report('modprobe -D btrfs', kmodtsArgv('modprobe', dashD));
const json = report('--json modprobe -D btrfs', kmodtsArgv('modprobe', dashD, ['--json']));
row('  --json / text', (json / text).toFixed(2));
const mi = ['-b', ref.KTREE, '-k', ref.KVER, 'btrfs', 'xfs', 'vsock'];
const mtext = report('modinfo btrfs xfs vsock', kmodtsArgv('modinfo', mi));
const mjson = report('--json modinfo btrfs xfs vsock', kmodtsArgv('modinfo', mi, ['--json']));
row('  --json / text', (mjson / mtext).toFixed(2));
fs.rmSync(cache, { recursive: true, force: true });
