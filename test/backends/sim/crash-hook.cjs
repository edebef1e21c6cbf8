// Preloaded (node -r) into a kmodts process by state-crash.test.ts: counts the process's changes to the
// state directory (each write, append, rename, link, unlink, truncate of a file in it is one step) and
// kills the process with SIGKILL at step KMODTS_CRASH_STEP, either before the change or, with
// KMODTS_CRASH_MODE=torn, in the middle of it (half of an append or write reaches the file). At exit, one
// character per step (1: a write that can be torn, 0: not) goes to KMODTS_CRASH_COUNT, so that a test
// knows the steps there are.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const dir = path.resolve(process.env.KMODTS_CRASH_DIR || '/nonexistent');
const stop = Number(process.env.KMODTS_CRASH_STEP || 0);
const torn = process.env.KMODTS_CRASH_MODE === 'torn';
const countFile = process.env.KMODTS_CRASH_COUNT;
const fds = new Set();
let step = 0;
/** per step, whether a torn variant exists (a write that can be cut in the middle) */
const tearable = [];

const inDir = (p) => typeof p === 'string' && path.resolve(p).startsWith(dir + '/');
const die = () => process.kill(process.pid, 'SIGKILL');

function half(data) {
  const b = Buffer.isBuffer(data) ? data : Buffer.from(String(data));
  return b.subarray(0, Math.max(0, b.length >> 1));
}

/** calls in progress: Node's appendFileSync calls writeFileSync, which counts as the same step */
let depth = 0;

function wrap(name, isOurs, tear) {
  const orig = fs[name];
  fs[name] = function (...args) {
    if (depth === 0 && isOurs(args)) {
      step++;
      tearable.push(tear ? 1 : 0);
      if (process.env.KMODTS_CRASH_TRACE) process._rawDebug(`step ${step}: ${name} ${typeof args[0] === 'number' ? `fd ${args[0]}` : args[0]}`);
      if (step === stop) {
        if (torn && tear) tear(orig, args);
        die();
      }
    }
    depth++;
    try {
      return orig.apply(this, args);
    } finally {
      depth--;
    }
  };
}

const origOpen = fs.openSync;
fs.openSync = function (p, flags, ...rest) {
  const fd = origOpen.call(this, p, flags, ...rest);
  if (inDir(p) && flags !== 'r' && flags !== undefined) fds.add(fd);
  return fd;
};
const origClose = fs.closeSync;
fs.closeSync = function (fd) {
  fds.delete(fd);
  return origClose.call(this, fd);
};

const pathArg = (args) => inDir(args[0]);
const pathOrFd = (args) => inDir(args[0]) || (typeof args[0] === 'number' && fds.has(args[0]));
wrap('appendFileSync', pathArg, (orig, args) => orig(args[0], half(args[1]), args[2]));
wrap('writeFileSync', pathOrFd, (orig, args) => orig(args[0], half(args[1]), args[2]));
wrap('writeSync', pathOrFd, (orig, args) => typeof args[1] === 'string' && orig(args[0], half(args[1])));
wrap('renameSync', pathArg);
wrap('linkSync', pathArg);
wrap('unlinkSync', pathArg);
wrap('truncateSync', pathArg);
wrap('rmSync', pathArg);
wrap('fsyncSync', (args) => fds.has(args[0]));

if (countFile) process.on('exit', () => fs.writeFileSync(countFile, tearable.join('')));
