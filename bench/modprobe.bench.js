// modprobe resolution start-up: `modprobe -D <module>` on the Debian 6.12 tree, kmodts vs kmod 34.2
// vs a bare `node -e 0` (the runtime's floor), as medians and ratios. Also the same through an esbuild
// bundle of the CLI when esbuild is installed (one file instead of the CommonJS module graph).
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { repoRoot, reference, time, kmodArgv, kmodtsArgv, row } = require('./lib');

const ref = reference();
const tree = ['-d', ref.KTREE, '-S', ref.KVER];
const runs = 21;

const node0 = time([process.execPath, '-e', '0'], { runs });
row('node -e 0', `${node0.ms.toFixed(1)} ms`);
for (const mod of ['nfsd', 'ext4', 'pci:v00008086d000010D3sv*sd*bc*sc*i*']) {
  const args = [...tree, '-D', mod];
  const k = time(kmodArgv(ref, 'modprobe', args), { runs });
  const t = time(kmodtsArgv('modprobe', args), { runs });
  row(`kmod modprobe -D ${mod}`, `${k.ms.toFixed(1)} ms  ${k.peakKiB} KiB`);
  row(`kmodts modprobe -D ${mod}`, `${t.ms.toFixed(1)} ms  ${t.peakKiB} KiB  ${(t.ms / node0.ms).toFixed(2)}x node -e 0, ${(t.ms / k.ms).toFixed(1)}x kmod`);
}

// modules loaded by `modprobe -D nfsd` (what start-up pays for)
const probe = spawnSync(process.execPath, ['-e', `
  process.argv = [process.argv[0], ${JSON.stringify(path.join(repoRoot, 'bin/kmodts.js'))}, 'modprobe', ${tree.map((a) => JSON.stringify(a)).join(',')}, '-D', 'nfsd'];
  const before = new Set(Object.keys(require.cache));
  process.on('exit', () => { const n = Object.keys(require.cache).filter((k) => !before.has(k)); process.stderr.write('MODULES ' + n.length + ' ' + n.map((f) => require('path').relative(${JSON.stringify(repoRoot)}, f)).join(' ') + '\\n'); });
  require(${JSON.stringify(path.join(repoRoot, 'bin/kmodts.js'))});
`], { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
const m = /MODULES (\d+) (.*)/.exec(probe.stderr || '');
if (m) row('CommonJS files loaded by kmodts modprobe -D nfsd', `${m[1]}: ${m[2]}`);

let esbuild;
try {
  esbuild = require('esbuild');
} catch {
  row('esbuild bundle', 'skipped (esbuild not installed)');
}
if (esbuild) {
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-bundle-')), 'kmodts.js');
  esbuild.buildSync({ entryPoints: [path.join(repoRoot, 'dist/cli/main.js')], bundle: true, platform: 'node', target: 'node20', outfile: out, external: ['*.node'], logLevel: 'silent' });
  const entry = out.replace(/\.js$/, '-entry.js');
  fs.writeFileSync(entry, `require(${JSON.stringify(out)}).runFromProcess();\n`);
  const t = time([process.execPath, entry, 'modprobe', ...tree, '-D', 'nfsd'], { runs });
  row('kmodts modprobe -D nfsd (esbuild bundle)', `${t.ms.toFixed(1)} ms  ${(t.ms / node0.ms).toFixed(2)}x node -e 0`);
}
