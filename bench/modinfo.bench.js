// modinfo's rows of the goals table: modinfo of every module of the cloud tree in one call (as a user
// querying many modules does), .ko.xz and .ko.zst (and .ko), kmodts on Node 20, 24 and 26 against kmod 34.2 (goal:
// <= 1.0x, memory <= 2x). Then, unless rows were picked, decompression throughput (MB/s of module data
// out) of kmodts' decoders against the xz and zstd tools on the same files.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { repoRoot, rounds, wanted, details, measureGoal, kmodArgv, kmodtsArgv, row, benchEnv, timeSideBySide, fmtMs } = require('./lib');
const { cloudTree, modules, zstCopy, recompressedCopy, reference } = require('./trees');

function modinfoRow(work, files) {
  measureGoal({
    work,
    kmod: kmodArgv(reference(), 'modinfo', files),
    kmodts: (node) => kmodtsArgv('modinfo', files, [], node),
    runs: rounds(5),
    timeGoal: 1.0,
  });
}

const xzWork = 'modinfo of every cloud module, .ko.xz';
const zstWork = 'modinfo of every cloud module, .ko.zst';
if (wanted(xzWork)) modinfoRow(xzWork, modules(cloudTree(), '.ko.xz'));
if (wanted(zstWork)) modinfoRow(zstWork, modules(zstCopy(cloudTree()), '.ko.zst'));
// not in the table; its goal, since a goal for one tree holds for all of them
const koWork = 'modinfo of every cloud module, .ko (uncompressed)';
if (wanted(koWork)) modinfoRow(koWork, modules(recompressedCopy(cloudTree(), 'ko'), '.ko'));

/** median ms of three in-process decodings of every file */
function inProcess(list) {
  const { decompress } = require(path.join(repoRoot, 'dist/file/decompress.js'));
  const data = list.map((f) => fs.readFileSync(f));
  decompress(data[0], list[0]); // load the decoder
  const ms = [];
  for (let r = 0; r < 3; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < data.length; i++) decompress(data[i], list[i]);
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return ms.sort((a, b) => a - b)[1];
}

/** median ms of the tool decoding the same files, concatenated on stdin (both accept concatenated streams) */
function toolMs(cmd, list) {
  const all = Buffer.concat(list.map((f) => fs.readFileSync(f)));
  const ms = [];
  for (let r = 0; r < 3; r++) {
    const t0 = process.hrtime.bigint();
    const res = spawnSync(cmd, ['-dc'], { input: all, maxBuffer: 1 << 30, env: benchEnv() });
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
    if (res.status !== 0) throw new Error(`${cmd} -dc failed`);
  }
  return ms.sort((a, b) => a - b)[1];
}

/**
 * The floor of the .ko row: what kmodts pays before its first module (modinfo of one module, against
 * `node -e 0`), and per module in a process whose code is warm (in-process runs after the first), next
 * to kmod's whole run: a cold process runs most of its per-module code unoptimized.
 */
function koFloor() {
  const files = modules(recompressedCopy(cloudTree(), 'ko'), '.ko');
  const [kmod, node0, one, all] = timeSideBySide(
    [kmodArgv(reference(), 'modinfo', files), [process.execPath, '-e', '0'], kmodtsArgv('modinfo', files.slice(0, 1)), kmodtsArgv('modinfo', files)],
    { runs: rounds(7) },
  );
  row(`.ko floor: kmod 34.2, all ${files.length} modules`, fmtMs(kmod.ms));
  row('.ko floor: kmodts, all modules (cold process)', `${fmtMs(all.ms)}  (${((all.ms - one.ms) * 1000 / (files.length - 1)).toFixed(0)} µs a module after the first)`);
  row('.ko floor: kmodts, one module (start-up)', `${fmtMs(one.ms)}  (node -e 0: ${fmtMs(node0.ms)})`);
  const warm = spawnSync(process.execPath, [path.join(__dirname, 'modinfo-warm.js'), ...files], { encoding: 'utf8', env: benchEnv(), maxBuffer: 1 << 26 });
  if (warm.status !== 0) throw new Error(`bench: modinfo-warm.js failed: ${warm.stderr}`);
  const warmMs = Number(warm.stdout.trim());
  row('.ko floor: kmodts, all modules in a warm process', `${fmtMs(warmMs)}  (${((warmMs * 1000) / files.length).toFixed(0)} µs a module; start-up + this = ${fmtMs(one.ms + warmMs)}, ${((one.ms + warmMs) / kmod.ms).toFixed(2)}x kmod)`);
}

if (details()) {
  koFloor();
  const xz = modules(cloudTree(), '.ko.xz');
  const zst = modules(zstCopy(cloudTree()), '.ko.zst');
  const mb = spawnSync('sh', ['-c', 'cat "$@" | xz -dc | wc -c', 'sh', ...xz], { encoding: 'utf8' }).stdout / 1e6;
  const xzOurs = inProcess(xz);
  const xzTool = toolMs('xz', xz);
  row(`xz: kmodts decompress (${mb.toFixed(0)} MB out)`, `${(mb / (xzOurs / 1000)).toFixed(0)} MB/s  (${((xzTool / xzOurs) * 100).toFixed(0)}% of xz -dc)`);
  row('xz: xz -dc', `${(mb / (xzTool / 1000)).toFixed(0)} MB/s`);
  const zOurs = inProcess(zst);
  const zTool = toolMs('zstd', zst);
  row('zstd: kmodts decompress (libzstd as wasm)', `${(mb / (zOurs / 1000)).toFixed(0)} MB/s  (${((zTool / zOurs) * 100).toFixed(0)}% of zstd -dc)`);
  row('zstd: zstd -dc', `${(mb / (zTool / 1000)).toFixed(0)} MB/s`);
}
