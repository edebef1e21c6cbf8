#!/usr/bin/env node
'use strict';
// Start-up: the tool's bundle (dist/bundle/<tool>.js, made by scripts/bundle-cli.js) with its V8 code
// cache, instead of resolving and compiling each dist/ file. The tool is guessed from the command
// line (the symlink's name or the first argument naming a tool); a wrong guess only costs speed, as
// anything outside the bundle is required from dist/ as usual.
const fs = require('node:fs');
const path = require('node:path');

const distDir = path.join(__dirname, '..', 'dist');
// src/cli/main.ts's tool names (which of them have a bundle is up to scripts/bundle-cli.js)
const tools = ['modprobe', 'insmod', 'rmmod', 'lsmod', 'modinfo', 'depmod', 'kmod', 'check', 'dmesg'];

function bundledMain() {
  const base = path.basename(process.argv[1] || '').replace(/\.js$/, '');
  const tool = tools.includes(base) ? base : process.argv.slice(2).find((a) => tools.includes(a));
  if (tool === undefined) return undefined;
  const file = `${distDir}/bundle/${tool}.js`;
  const bundleStat = fs.statSync(file, { throwIfNoEntry: false });
  // none (tsc alone, or a tool without one), or older than tsc's last output: dist/ as it is
  if (bundleStat === undefined || fs.statSync(`${distDir}/cli/main.js`).mtimeMs > bundleStat.mtimeMs) return undefined;
  const source = fs.readFileSync(file, 'utf8');
  let cachedData;
  try {
    cachedData = fs.readFileSync(`${distDir}/bundle/${tool}.cache`);
  } catch {
    // compiled from source then
  }
  // a cache from another V8 is rejected by V8 itself and the source compiled as usual
  const table = new (require('node:vm').Script)(source, { filename: file, cachedData }).runInThisContext()();
  // this module's constructor is node:module's Module; requiring node:module itself loads more (~0.4 ms)
  const Module = module.constructor;
  const load = (key) => {
    const filename = `${distDir}/${key}`;
    const cached = require.cache[filename];
    if (cached !== undefined) return cached.exports;
    const [body, bundled] = table[key];
    // registered as dist/<key> so that modules required later from dist/ share this instance
    const mod = new Module(filename, module);
    mod.filename = filename;
    mod.paths = module.paths;
    require.cache[filename] = mod;
    let fromDist;
    const distRequire = () => (fromDist ??= Module.createRequire(filename));
    const requireFn = (spec) => {
      const target = bundled[spec];
      if (target !== undefined) return load(target);
      // Node's own modules resolve the same from anywhere: no per-module require needed for them
      return spec.startsWith('node:') ? require(spec) : distRequire()(spec);
    };
    requireFn.resolve = (spec, options) => distRequire().resolve(spec, options);
    requireFn.cache = require.cache;
    body.call(mod.exports, mod.exports, requireFn, mod, filename, filename.slice(0, filename.lastIndexOf('/')));
    mod.loaded = true;
    return mod.exports;
  };
  return load('cli/main.js');
}

(bundledMain() ?? require('../dist/cli/main.js')).runFromProcess();
