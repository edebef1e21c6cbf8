// Build step (`npm run build`): the man pages as npm installs them, dist/man/, named so that they do not
// shadow kmod's own pages when both are installed: man/modprobe.8 is installed as kmodts-modprobe.8
// (`man kmodts-modprobe`), man/kmodts.1 keeps its name. Every page in man/ follows the rule, so a new
// page is picked up by the next build, which also brings package.json "man" up to date (test/man.test.ts
// checks the two agree).
// Installing them under kmod's names instead, when kmodts replaces kmod, is a copy of man/ (README,
// kmodts(1)).
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const sourceDir = path.join(root, 'man');
const outDir = path.join(root, 'dist', 'man');

/** the name a page of man/ is installed under */
function installedManName(page) {
  return page.startsWith('kmodts') ? page : `kmodts-${page}`;
}

/** the pages of man/ (name.section) */
function manPages() {
  return fs.readdirSync(sourceDir).filter((f) => /\.[1-9]$/.test(f)).sort();
}

/** package.json "man", as it must read */
function packageManEntries() {
  return manPages().map((page) => `./dist/man/${installedManName(page)}`);
}

if (require.main === module) {
  fs.rmSync(outDir, { recursive: true, force: true });
  fs.mkdirSync(outDir, { recursive: true });
  for (const page of manPages()) fs.copyFileSync(path.join(sourceDir, page), path.join(outDir, installedManName(page)));
  const pkgFile = path.join(root, 'package.json');
  const pkg = JSON.parse(fs.readFileSync(pkgFile, 'utf8'));
  const entries = packageManEntries();
  if (JSON.stringify(pkg.man) !== JSON.stringify(entries)) {
    pkg.man = entries;
    fs.writeFileSync(`${pkgFile}.tmp`, `${JSON.stringify(pkg, null, 2)}\n`);
    fs.renameSync(`${pkgFile}.tmp`, pkgFile);
  }
}

module.exports = { installedManName, manPages, packageManEntries };
