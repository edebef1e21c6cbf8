// Lets a plain `node` process (the fuzz workers, scripts/fuzz.js) require the fuzz harness's TypeScript
// files: each .ts file is transpiled to CommonJS by the TypeScript compiler on load, the output being
// cached by content hash (loading the compiler costs each worker about a second). The library itself
// is used from dist/, as the CLI uses it. A worker runs in its own process so that a hang or a crash
// on one input is seen and bounded.
'use strict';
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const cacheDir = path.join(os.tmpdir(), `kmodts-fuzz-ts-${process.getuid?.() ?? 0}`);
let ts;

require.extensions['.ts'] = (module, filename) => {
  const source = fs.readFileSync(filename, 'utf8');
  const key = crypto.createHash('sha256').update(filename).update('\0').update(source).digest('hex').slice(0, 32);
  const cached = path.join(cacheDir, key + '.js');
  let out;
  try {
    out = fs.readFileSync(cached, 'utf8');
  } catch {
    ts ??= require('typescript');
    out = ts.transpileModule(source, {
      fileName: filename,
      compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true, sourceMap: false },
    }).outputText;
    try {
      fs.mkdirSync(cacheDir, { recursive: true });
      const tmp = `${cached}.${process.pid}.tmp`;
      fs.writeFileSync(tmp, out);
      fs.renameSync(tmp, cached);
    } catch {
      /* no cache: transpiled again next time */
    }
  }
  module._compile(out, filename);
};
