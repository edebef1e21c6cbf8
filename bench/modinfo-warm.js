// modinfo of the files named in argv, run in this process four times through the tool's front end
// (src/cli/modinfo.ts, output captured); prints the median wall ms of the last three, when the code is
// warm (bench/modinfo.bench.js's floor of the .ko row).
'use strict';
const path = require('node:path');
const dist = path.join(__dirname, '..', 'dist');
const { run } = require(path.join(dist, 'cli/modinfo.js'));
const { captureIo } = require(path.join(dist, 'cli/io.js'));

(async () => {
  const files = process.argv.slice(2);
  const ms = [];
  for (let r = 0; r < 4; r++) {
    const io = captureIo({});
    const t0 = process.hrtime.bigint();
    const status = await run(files, { prog: 'modinfo', argv0: 'modinfo', io, settings: { backend: 'native', json: false } });
    if (status !== 0) throw new Error(`modinfo exited ${status}: ${io.err().slice(0, 500)}`);
    if (r > 0) ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  process.stdout.write(`${ms.sort((a, b) => a - b)[1]}\n`);
})().catch((err) => {
  process.stderr.write(`${err.stack}\n`);
  process.exit(1);
});
