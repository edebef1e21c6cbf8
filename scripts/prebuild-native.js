// Pack-time step (`npm pack` / `npm publish` run it as "prepack"): the native helper prebuilt for every
// target of scripts/native-prebuilds.js, so that installing the package needs no C compiler. Each binary
// is compiled straight with the target's gcc (x86_64 with the host's, arm64 with Debian's cross compiler)
// from binding.gyp's sources, flags and defines, against the Node-API headers (the node-api-headers
// package; they are the same for every architecture), then its ELF header is checked. A missing
// compiler fails the step with one line naming its Debian package: a package without a prebuild
// would need a compiler on every machine that installs it.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { addonName, prebuildFile, prebuildTargets } = require('./native-prebuilds.js');

const root = path.resolve(__dirname, '..');

/** binding.gyp's one target (the file is plain JSON) */
function gypTarget() {
  const gyp = JSON.parse(fs.readFileSync(path.join(root, 'binding.gyp'), 'utf8'));
  const target = gyp.targets.find((t) => t.target_name === addonName);
  if (!target) throw new Error(`binding.gyp: no target ${addonName}`);
  return target;
}

function nodeApiIncludeDir() {
  try {
    return require('node-api-headers').include_dir;
  } catch {
    // a node installed with its headers (official tarballs, Debian's libnode-dev)
    for (const dir of [path.join(path.dirname(process.execPath), '../include/node'), '/usr/include/node']) {
      if (fs.existsSync(path.join(dir, 'node_api.h'))) return dir;
    }
    throw new Error('prebuild-native: no Node-API headers (npm install node-api-headers, or Debian package libnode-dev)');
  }
}

/** What the ELF header of a file says: class, byte order, type and machine. */
function elfHeader(file) {
  const b = fs.readFileSync(file);
  if (b.length < 20 || b.readUInt32BE(0) !== 0x7f454c46) return null;
  return { class64: b[4] === 2, littleEndian: b[5] === 1, type: b.readUInt16LE(16), machine: b.readUInt16LE(18) };
}

/** null when file is a 64-bit little-endian shared object for the target, else what is wrong */
function elfMismatch(file, target) {
  const h = elfHeader(file);
  if (h === null) return 'not an ELF file';
  if (!h.class64 || !h.littleEndian) return 'not a 64-bit little-endian ELF file';
  if (h.type !== 3) return `ELF type ${h.type}, not a shared object (3)`;
  if (h.machine !== target.elfMachine) return `ELF machine ${h.machine}, not ${target.elfMachine} (${target.arch})`;
  return null;
}

function build(target, gyp, includeDir) {
  const out = prebuildFile(root, target.platform, target.arch);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const cc = process.env[`KMODTS_CC_${target.arch.toUpperCase()}`] || target.cc;
  const args = [
    ...gyp.cflags,
    '-fPIC',
    '-shared',
    '-s',
    `-DNODE_GYP_MODULE_NAME=${addonName}`,
    ...gyp.defines.map((d) => `-D${d}`),
    `-I${includeDir}`,
    ...gyp.sources.map((s) => path.join(root, s)),
    ...(gyp.libraries ?? []),
    '-o',
    `${out}.tmp`,
  ];
  // a cross compiler without its target's C library fails on every file with many lines: one says why
  const headers = target.libcHeaders;
  if (headers && !process.env[`KMODTS_CC_${target.arch.toUpperCase()}`] && !fs.existsSync(headers.file)) {
    throw new Error(`prebuild-native: no C library headers for linux-${target.arch}: ${headers.file} (Debian package ${headers.debianPackage})`);
  }
  const r = spawnSync(cc, args, { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.error) throw new Error(`prebuild-native: ${cc} cannot run (Debian package ${target.debianPackage}): ${r.error.message}`);
  if (r.status !== 0) throw new Error(`prebuild-native: ${cc} failed for linux-${target.arch} (exit ${r.status})`);
  const wrong = elfMismatch(`${out}.tmp`, target);
  if (wrong) throw new Error(`prebuild-native: ${out}: ${wrong}`);
  fs.renameSync(`${out}.tmp`, out);
  return out;
}

function main() {
  const gyp = gypTarget();
  const includeDir = nodeApiIncludeDir();
  fs.rmSync(path.join(root, 'prebuilds'), { recursive: true, force: true });
  for (const target of prebuildTargets) {
    const out = build(target, gyp, includeDir);
    console.log(`prebuild-native: ${path.relative(root, out)}`);
  }
}

if (require.main === module) {
  try {
    main();
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
  }
}

module.exports = { elfHeader, elfMismatch, gypTarget, nodeApiIncludeDir };
