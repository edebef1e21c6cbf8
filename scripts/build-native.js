// npm "install" step: nothing to do when the package's prebuilt native helper (prebuilds/, see
// scripts/native-prebuilds.js) loads on this machine; else builds it (native/, binding.gyp) with
// node-gyp when a compiler is there. Installation never fails because of it: without the addon only
// the commands that really load or unload modules fail, with a message saying why.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { prebuildFile } = require('./native-prebuilds.js');

const root = path.resolve(__dirname, '..');
if (prebuiltLoads()) process.exit(0);
if (!fs.existsSync(path.join(root, 'binding.gyp'))) process.exit(0);
const gyp = (() => {
  try {
    return require.resolve('node-gyp/bin/node-gyp.js');
  } catch {
    // npm bundles node-gyp: next to npm_execpath under `npm install`, else beside this node's prefix
    const npmDirs = [
      path.dirname(path.dirname(process.env.npm_execpath || '/nonexistent/bin/x')),
      path.join(path.dirname(path.dirname(process.execPath)), 'lib/node_modules/npm'),
    ];
    for (const npmDir of npmDirs) {
      const p = path.join(npmDir, 'node_modules/node-gyp/bin/node-gyp.js');
      if (fs.existsSync(p)) return p;
    }
    return null;
  }
})();
if (!gyp) {
  console.warn('kmodts: node-gyp not found; the native loader is not built (insmod/modprobe cannot load modules)');
  process.exit(0);
}
const args = [gyp, 'rebuild', '--silent'];
if (fs.existsSync('/usr/include/node/node_api.h')) args.push('--nodedir=/usr');
const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
if (r.status !== 0) {
  console.warn('kmodts: building the native loader failed; insmod/modprobe will not be able to load modules');
}
process.exit(0);

/** true when this platform's prebuilt helper is there and this Node loads it (glibc, architecture) */
function prebuiltLoads() {
  const file = prebuildFile(root);
  if (!fs.existsSync(file)) return false;
  try {
    require(file);
    return true;
  } catch (err) {
    console.warn(`kmodts: the prebuilt native loader does not load here (${err.message.split('\n')[0]}); building it`);
    return false;
  }
}
