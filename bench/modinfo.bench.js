// modinfo over every module of the Debian 6.12 tree in one call, kmodts vs kmod 34.2 (goal: <= 1.5x), and
// decompression throughput (MB/s of module data out) of kmodts' decoders vs the xz and zstd tools on
// the same files (goal for xz: >= 80% of xz -dc).
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync, spawnSync } = require('node:child_process');
const { repoRoot, reference, time, kmodArgv, kmodtsArgv, row, benchEnv } = require('./lib');

const ref = reference();
const files = execFileSync('find', [ref.MODDIR, '-name', '*.ko.xz'], { encoding: 'utf8' }).trim().split('\n').sort();
const runs = 5;

const node0 = time([process.execPath, '-e', '0'], { runs });
const k = time(kmodArgv(ref, 'modinfo', files), { runs });
const t = time(kmodtsArgv('modinfo', files), { runs });
row('node -e 0', `${node0.ms.toFixed(1)} ms`);
row(`kmod modinfo, all ${files.length} modules (.ko.xz) in one call`, `${k.ms.toFixed(0)} ms  ${k.peakKiB} KiB`);
row('kmodts modinfo, same', `${t.ms.toFixed(0)} ms  ${t.peakKiB} KiB  (${(t.ms / k.ms).toFixed(2)}x kmod; goal <= 1.5x)`);

// the same tree as .ko.zst, for both tools
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-modinfo-bench-'));
const images = files.map((f) => execFileSync('xz', ['-dc', f], { maxBuffer: 1 << 28 }));
const zfiles = files.map((f, i) => {
  const p = path.join(tmp, `${i}-${path.basename(f, '.xz')}`);
  fs.writeFileSync(p, images[i]);
  return p;
});
spawnSync('zstd', ['-q', '--rm', ...zfiles]);
const zsts = zfiles.map((p) => `${p}.zst`);
const kz = time(kmodArgv(ref, 'modinfo', zsts), { runs });
const tz = time(kmodtsArgv('modinfo', zsts), { runs });
row('kmod modinfo, all modules as .ko.zst', `${kz.ms.toFixed(0)} ms`);
row('kmodts modinfo, same', `${tz.ms.toFixed(0)} ms  (${(tz.ms / kz.ms).toFixed(2)}x kmod)`);

// decompression throughput: MB of module data out per second
const totalOut = images.reduce((n, b) => n + b.length, 0);
const mb = totalOut / 1e6;
const { decompress } = require(path.join(repoRoot, 'dist/file/decompress.js'));
function inProcess(list) {
  const data = list.map((f) => fs.readFileSync(f));
  decompress(data[0], list[0]); // load the decoder
  const ms = [];
  for (let r = 0; r < 3; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < data.length; i++) decompress(data[i], list[i]);
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  ms.sort((a, b) => a - b);
  return ms[1];
}
// the tools decode the same files, concatenated on stdin (xz and zstd accept concatenated streams/frames)
function toolMs(cmd, list) {
  const all = Buffer.concat(list.map((f) => fs.readFileSync(f)));
  const ms = [];
  for (let r = 0; r < 3; r++) {
    const t0 = process.hrtime.bigint();
    const res = spawnSync(cmd, ['-dc'], { input: all, maxBuffer: 1 << 30, env: benchEnv() });
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
    if (res.status !== 0) throw new Error(`${cmd} -dc failed`);
  }
  ms.sort((a, b) => a - b);
  return ms[1];
}
const xzOurs = inProcess(files);
const xzTool = toolMs('xz', files);
row(`xz: kmodts decompress (${mb.toFixed(0)} MB out)`, `${(mb / (xzOurs / 1000)).toFixed(0)} MB/s  (${((xzTool / xzOurs) * 100).toFixed(0)}% of xz -dc; goal >= 80%)`);
row('xz: xz -dc', `${(mb / (xzTool / 1000)).toFixed(0)} MB/s`);
const zOurs = inProcess(zsts);
const zTool = toolMs('zstd', zsts);
row('zstd: kmodts decompress (libzstd as wasm)', `${(mb / (zOurs / 1000)).toFixed(0)} MB/s  (${((zTool / zOurs) * 100).toFixed(0)}% of zstd -dc)`);
row('zstd: zstd -dc', `${(mb / (zTool / 1000)).toFixed(0)} MB/s`);
fs.rmSync(tmp, { recursive: true, force: true });
