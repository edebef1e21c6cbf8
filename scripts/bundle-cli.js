// Build step after tsc (`npm run build`): one start-up bundle per CLI tool, dist/bundle/<tool>.js,
// which bin/kmodts.js loads instead of the CommonJS module graph. Its V8 code cache is not made here:
// V8 rejects a cache made by any other Node version, so bin/kmodts.js makes one for the Node that runs
// it, on first use, in the user's cache directory, keyed by the content hash that heads the bundle. Measured on `modprobe -D nfsd` (docs/decisions.md, "Build and module
// format"): resolving, reading and compiling ~19 separate files costs ~7 ms of a ~37 ms run.
//
// A bundle holds the modules a tool loads on every run: the static imports (top-level requires that
// tsc emits) of cli/main.js and cli/<tool>.js, followed transitively, plus the few lazily required
// modules listed in alwaysLoaded. Everything else (decompressors, native addon, simulated kernel,
// other tools) stays lazy and is required from dist/ as before: the bundle registers its modules in
// require.cache under their dist/ file names, so a module is never instantiated twice.
//
// The bundle is minified (terser: whitespace and comments only; names and code kept, so stack traces
// stay readable): reading and decoding the source is part of every start, and it halves the bytes
// (docs/decisions.md).
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const { minify_sync: minifySync } = require('terser');

const distDir = path.join(__dirname, '..', 'dist');
const outDir = path.join(distDir, 'bundle');

const tools = ['modprobe', 'insmod', 'rmmod', 'lsmod', 'modinfo', 'depmod', 'kmod', 'check', 'dmesg'];
/** lazily required modules that every run of the tool loads anyway (kmod_new reads the config) */
const alwaysLoaded = {
  modprobe: ['resolution/config.js', 'cli/backend-select.js'],
  insmod: ['resolution/config.js', 'cli/backend-select.js'],
  rmmod: ['resolution/config.js', 'cli/backend-select.js'],
  lsmod: ['cli/backend-select.js'],
  modinfo: ['resolution/config.js'],
};

/** relative requires of a compiled module: [specifier, dist-relative key, top-level?] */
function relativeRequires(key) {
  const text = fs.readFileSync(path.join(distDir, key), 'utf8');
  const found = [];
  for (const m of text.matchAll(/^(.*?)require\((["'])(\.[^"']*)\2\)/gm)) {
    let target = path.relative(distDir, path.resolve(path.dirname(path.join(distDir, key)), m[3]));
    if (!target.endsWith('.js') && !target.endsWith('.json')) target += '.js';
    // tsc puts an import's require at column 0 (`const x = require(...)`); lazy ones are indented
    found.push([m[3], target, !/^\s/.test(m[1])]);
  }
  return { text, found };
}

function bundle(tool) {
  const keys = [];
  const modules = new Map();
  const visit = (key) => {
    if (modules.has(key) || !key.endsWith('.js') || !fs.existsSync(path.join(distDir, key))) return;
    const { text, found } = relativeRequires(key);
    modules.set(key, { text, found });
    keys.push(key);
    for (const [, target, topLevel] of found) if (topLevel) visit(target);
  };
  for (const key of ['cli/main.js', `cli/${tool}.js`, ...(alwaysLoaded[tool] ?? [])]) visit(key);
  // each module: its CommonJS wrapper and its specifier -> key map, for the bundled ones only
  const parts = keys.map((key) => {
    const { text, found } = modules.get(key);
    const map = Object.fromEntries(found.filter(([, target]) => modules.has(target)).map(([spec, target]) => [spec, target]));
    const body = text.replace(/^\/\/# sourceMappingURL=.*$/m, '');
    return `${JSON.stringify(key)}: [function (exports, require, module, __filename, __dirname) {${body}\n}, ${JSON.stringify(map)}]`;
  });
  return minified(`(function () { return {\n${parts.join(',\n')}\n}; })`);
}

/** the bundle without comments and layout: no renaming, no rewriting (compress off) */
function minified(source) {
  const r = minifySync(source, { compress: false, mangle: false, format: { comments: false } });
  // the bundle is an expression; terser ends it as a statement
  return r.code.replace(/;$/, '');
}

/** the bundle headed by its content hash (bin/kmodts.js's code-cache key; see bundleHashPattern there) */
function withHash(source) {
  const hash = crypto.createHash('sha256').update(source).digest('hex').slice(0, 16);
  return `/*kmodts-bundle ${hash}*/${source}`;
}

fs.rmSync(outDir, { recursive: true, force: true });
fs.mkdirSync(outDir, { recursive: true });
for (const tool of tools) {
  fs.writeFileSync(path.join(outDir, `${tool}.js`), withHash(bundle(tool)));
}
