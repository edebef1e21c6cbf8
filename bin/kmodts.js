#!/usr/bin/env node
'use strict';
// Start-up: the tool's bundle (dist/bundle/<tool>.js, made by scripts/bundle-cli.js) with a V8 code
// cache of it, instead of resolving and compiling each dist/ file. The cache is made for the Node that
// runs this, on its first run of the tool, in the user's cache directory (see codeCacheFile). The tool is guessed from the command
// line (the symlink's name or the first argument naming a tool); a wrong guess only costs speed, as
// anything outside the bundle is required from dist/ as usual.
const fs = require('node:fs');
const path = require('node:path');

const distDir = path.join(__dirname, '..', 'dist');
const nodeMajor = Number(process.versions.node.split('.')[0]);
// src/cli/main.ts's tool names (which of them have a bundle is up to scripts/bundle-cli.js)
const tools = ['modprobe', 'insmod', 'rmmod', 'lsmod', 'modinfo', 'depmod', 'kmod', 'check', 'dmesg'];

/**
 * Process settings of a tool, made before anything of it is compiled or run (so that its code cache is
 * made and checked under the same V8 flags). modinfo runs briefly over many small inputs:
 * - V8's optimizing compilers (TurboFan, and Maglev on Node 22+) cost it ~10 MB of peak RSS (their
 *   zones, the binary's compiler pages) and bring no measurable CPU back; the baseline compiler
 *   (Sparkplug) stays. (`--max-opt=1` would say the same, but Node 24 ignores it at run time.)
 * - Its prefetcher has at most 3 files on libuv's thread pool at once (src/file/prefetch.ts), and each
 *   pool thread keeps its own C heap (liblzma's 1 MiB dictionary, ...): no more threads than that, or
 *   than cores (~1.3 MB of peak RSS per thread). Unless the user chose a size.
 * Measurements: docs/decisions.md, issue 14.
 */
const toolSetup = {
  // depmod's JavaScript runs once over each of thousands of modules and is done in well under a second
  // of CPU (the scans are C on the pool): TurboFan's compiles of it, on V8's worker threads, cost more
  // CPU than the optimized code gives back (a cached run of the full tree: 0.63 -> 0.50 s of CPU; a cold
  // run of the cloud tree 0.49 -> 0.44 s; the full .ko.xz tree not slower). Maglev (Node 22+) is off
  // too: no slower without it (docs/decisions.md), and its compiles also run on V8's worker threads
  // (see noBackgroundCompiles).
  depmod() {
    setV8Flags('--no-turbofan --no-maglev');
  },
  modinfo() {
    setV8Flags('--no-turbofan --no-maglev');
    if (process.env.UV_THREADPOOL_SIZE === undefined) {
      process.env.UV_THREADPOOL_SIZE = String(Math.max(2, Math.min(3, require('node:os').availableParallelism())));
    }
  },
};

/**
 * Node 24 and 26 compile baseline code (Sparkplug) on V8's worker threads by default. Such a job can wait
 * for a garbage collection on the main thread while the main thread, exiting, waits for the workers: the
 * process hangs after its output (nodejs/node#54918; one modinfo run in ~150 here, on Node 24.22). A
 * module tool must not hang a package installation: those tools compile on the main thread, as Node 20
 * and 22 do anyway. A worker waits for a collection only when its allocation finds the old generation at
 * V8's allocation limit (Heap::ShouldExpandOldGenerationOnSlowAllocation), and the first limit is half
 * the maximum heap: the native backend's modprobe, insmod, rmmod, lsmod and kmod stay a few MB from it
 * (`modprobe -D` collects no garbage at all), so they skip the 3 ms that loading node:v8 costs them on
 * Node 24. depmod, modinfo and the simulated kernel's runs (module images decoded and linked) do not.
 * The flag is not part of V8's code cache check, so a cache serves runs with and without it.
 */
const smallHeapTools = ['modprobe', 'insmod', 'rmmod', 'lsmod', 'kmod'];

function noBackgroundCompiles(tool) {
  // (Node 20 and 22 default to it)
  if (nodeMajor < 23) return;
  if (smallHeapTools.includes(tool) && !simulatedKernel(tool)) return;
  setV8Flags('--no-concurrent-sparkplug');
}

/**
 * V8's setFlagsFromString. node:v8 loads ~40 of Node's modules with it (its streams, for heap
 * snapshots): ~2-3 ms of every depmod and modinfo run. Node 20's internal binding has the same function
 * without them. process.binding('v8') is deprecated there: its warning (also with --pending-deprecation,
 * --trace-deprecation or --throw-deprecation) is silenced for the call through process.noDeprecation,
 * which Node checks before it emits, and restored after. Node 22 has the binding too, but Node 24 has
 * none: node:v8 from Node 22 on.
 */
function setV8Flags(flags) {
  if (nodeMajor < 22) {
    const quiet = process.noDeprecation;
    process.noDeprecation = true;
    try {
      const binding = process.binding('v8');
      if (typeof binding.setFlagsFromString === 'function') {
        binding.setFlagsFromString(flags);
        return;
      }
    } catch {
      // no such binding: node:v8
    } finally {
      process.noDeprecation = quiet;
    }
  }
  require('node:v8').setFlagsFromString(flags);
}

/**
 * Whether the run is the simulated kernel's: KMODTS_BACKEND, or a kmodts setting before the tool's name
 * naming it (--backend=sim, --backend sim, or an abbreviation of the option: any argument `sim` or `...=sim`)
 */
function simulatedKernel(tool) {
  if (process.env.KMODTS_BACKEND === 'sim') return true;
  const args = process.argv.slice(2);
  const settings = args.slice(0, Math.max(0, args.indexOf(tool)));
  return settings.some((a) => a === 'sim' || a.endsWith('=sim'));
}

function bundledMain() {
  const base = path.basename(process.argv[1] || '').replace(/\.js$/, '');
  const tool = tools.includes(base) ? base : process.argv.slice(2).find((a) => tools.includes(a));
  noBackgroundCompiles(tool);
  if (tool === undefined) return undefined;
  toolSetup[tool]?.();
  const file = `${distDir}/bundle/${tool}.js`;
  const bundleStat = fs.statSync(file, { throwIfNoEntry: false });
  // none (tsc alone, or a tool without one), or older than tsc's last output: dist/ as it is
  if (bundleStat === undefined || fs.statSync(`${distDir}/cli/main.js`).mtimeMs > bundleStat.mtimeMs) return undefined;
  const source = fs.readFileSync(file, 'utf8');
  const cacheFile = codeCacheFile(tool, file, source);
  const cachedData = cacheFile === null ? undefined : readOwnFile(cacheFile);
  const script = new (require('node:vm').Script)(source, { filename: file, cachedData });
  if (cacheFile !== null && (cachedData === undefined || script.cachedDataRejected)) {
    // after the command, so that its output is not delayed; 'exit' also runs on process.exit()
    process.once('exit', () => writeCodeCache(cacheFile, source, file));
  }
  const table = script.runInThisContext()();
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
    requireFn.resolve.paths = (spec) => distRequire().resolve.paths(spec);
    requireFn.cache = require.cache;
    body.call(mod.exports, mod.exports, requireFn, mod, filename, filename.slice(0, filename.lastIndexOf('/')));
    mod.loaded = true;
    return mod.exports;
  };
  return load('cli/main.js');
}

// The code cache's key: Node's version and architecture (V8 rejects another V8's cache), the bundle's
// content hash (V8 checks little of the source: a cache must never meet another bundle) and the bundle's
// path (Node 20's V8 keeps the file name a cache was made with for stack traces: an installation's
// traces must name its own files).
const bundleHashPattern = /^\/\*kmodts-bundle ([0-9a-f]{16})\*\//;

/** 32-bit FNV-1a of a string, in hex (a file name key; node:crypto would cost more than it saves) */
function fnv1a(text) {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return (h >>> 0).toString(16).padStart(8, '0');
}

/** $XDG_CACHE_HOME/kmodts/v8/<node>-<arch>/<tool>-<path hash>-<bundle hash>.cache, or null (no home, no hash) */
function codeCacheFile(tool, bundleFile, source) {
  const hash = bundleHashPattern.exec(source);
  const xdg = process.env.XDG_CACHE_HOME;
  const base = xdg && path.isAbsolute(xdg) ? xdg : cacheHomeOfUser();
  if (hash === null || base === null) return null;
  return path.join(base, 'kmodts', 'v8', `${process.version}-${process.arch}`, `${tool}-${fnv1a(bundleFile)}-${hash[1]}.cache`);
}

/**
 * ~/.cache: $HOME's, else (no HOME: systemd's units such as modprobe@.service and
 * kmod-static-nodes.service, udev's RUN programs, cron) the home of the running user in the password
 * database, as os.homedir() finds it. Without it those starts compiled the whole bundle every time
 * (`modprobe -D` ~5 ms more, docs/decisions.md). null when there is neither.
 */
function cacheHomeOfUser() {
  const home = process.env.HOME;
  if (home) return path.join(home, '.cache');
  try {
    const dir = require('node:os').userInfo().homedir;
    return dir && path.isAbsolute(dir) ? path.join(dir, '.cache') : null;
  } catch {
    return null;
  }
}

/**
 * The file's bytes when this user owns it (V8 runs what a cache holds: root, say under sudo with the
 * caller's HOME, must not take a cache that another user could have written), else undefined.
 */
function readOwnFile(file) {
  let fd;
  try {
    fd = fs.openSync(file, 'r');
    return fs.fstatSync(fd).uid === process.getuid() ? fs.readFileSync(fd) : undefined;
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/**
 * mkdir -p, one level at a time: Node's own recursive mkdir never returns under /proc (Node 20-24),
 * and a cache must not cost a hang.
 */
function makeDirs(dir) {
  if (fs.existsSync(dir)) return;
  makeDirs(path.dirname(dir));
  fs.mkdirSync(dir, { mode: 0o700 });
}

/**
 * V8's code cache of the bundle with every function compiled (V8 compiles lazily, and a cache holds
 * only what was compiled): --no-lazy for one compilation, switched off again before the cache is made,
 * as V8 rejects a cache made under other flags. Written to a temporary file and renamed; caches of
 * older bundles at the same place are removed. Any failure (read-only home, ...) only means no cache.
 */
function writeCodeCache(cacheFile, source, filename) {
  const tmp = `${cacheFile}.${process.pid}.tmp`;
  try {
    const v8 = require('node:v8');
    // every function compiled now, whatever this run used: without --no-compilation-cache V8 would hand
    // back this run's own compile of the same source (its lazy functions only), so that a cache made by
    // `modprobe -V` left `modprobe -D` parsing and compiling its code on every run
    v8.setFlagsFromString('--no-lazy --no-compilation-cache');
    const script = new (require('node:vm').Script)(source, { filename });
    v8.setFlagsFromString('--lazy --compilation-cache');
    const dir = path.dirname(cacheFile);
    makeDirs(dir);
    fs.writeFileSync(tmp, script.createCachedData(), { mode: 0o600 });
    fs.renameSync(tmp, cacheFile);
    const place = path.basename(cacheFile).replace(/[0-9a-f]{16}\.cache$/, '');
    for (const name of fs.readdirSync(dir)) {
      if (name !== path.basename(cacheFile) && name.startsWith(place) && name.endsWith('.cache')) fs.rmSync(path.join(dir, name), { force: true });
    }
  } catch {
    try {
      fs.unlinkSync(tmp);
    } catch {
      // never made
    }
  }
}

(bundledMain() ?? require('../dist/cli/main.js')).runFromProcess();
