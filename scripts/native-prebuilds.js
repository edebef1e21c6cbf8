// Where the native helper is, in one place for src/native-addon.ts (loading it), scripts/build-native.js
// (the install step, which builds it only when no prebuilt one loads) and scripts/prebuild-native.js
// (which makes the prebuilt ones at pack time). The layout is prebuildify's: prebuilds/<platform>-<arch>/.
// The addon uses Node-API only (NAPI_VERSION in binding.gyp), so one binary serves every Node >= 20.19.
'use strict';
const path = require('node:path');

const addonName = 'kmodts_native';

/** the prebuilt helper shipped in the package for this platform and architecture */
function prebuildFile(root, platform = process.platform, arch = process.arch) {
  return path.join(root, 'prebuilds', `${platform}-${arch}`, `${addonName}.node`);
}

/** the helper built on this machine by node-gyp (scripts/build-native.js, or `npm rebuild kmodts`) */
function localBuildFile(root) {
  return path.join(root, 'build', 'Release', `${addonName}.node`);
}

/**
 * The prebuilt targets: Node's arch name, the ELF e_machine the binary must carry, and the C compiler
 * that makes it on an x86_64 Debian host, with the Debian packages that provide it (and, for a cross
 * compiler, the target's C library headers).
 */
const prebuildTargets = [
  { platform: 'linux', arch: 'x64', elfMachine: 62, cc: 'x86_64-linux-gnu-gcc', debianPackage: 'gcc' },
  {
    platform: 'linux',
    arch: 'arm64',
    elfMachine: 183,
    cc: 'aarch64-linux-gnu-gcc',
    debianPackage: 'gcc-aarch64-linux-gnu',
    // the C library's headers for the target (the cross compiler only recommends them)
    libcHeaders: { file: '/usr/aarch64-linux-gnu/include/stdint.h', debianPackage: 'libc6-dev-arm64-cross' },
  },
];

module.exports = { addonName, prebuildFile, localBuildFile, prebuildTargets };
