// `npm run bench`: runs every bench/*.bench.js in turn (each prints its own rows).
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const dir = path.join(__dirname, '..', 'bench');
const only = process.argv.slice(2);
for (const f of fs.readdirSync(dir).filter((n) => n.endsWith('.bench.js')).sort()) {
  if (only.length && !only.some((o) => f.includes(o))) continue;
  console.log(`\n== ${f.replace('.bench.js', '')}`);
  require(path.join(dir, f));
}
