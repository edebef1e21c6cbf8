// Differential suite: module-directory files that are not files, kmodts vs kmod 34.2. Each index and
// text file of the Debian cloud tree in turn is replaced by a directory or by a link to itself, and
// modprobe (-n -v, -D, -R, -c) and modinfo run on the tree: kmod maps the .bin indexes when modprobe
// starts ("mmap(NULL, 4096, ...): No such device" for a directory), then finds nothing in a file it
// cannot read; modinfo of a builtin module reports the failed read of modules.builtin.modinfo. A FIFO
// in an index's place holds kmod's open until someone writes to it; kmodts must not hang, and answers
// as kmod answers for an empty file there.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { moduleDir, reference, runKmod, runKmodts, type RunResult } from '../support/reference';

const ref = reference();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-odd-index-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const moddir = path.join(tmp, 'lib/modules', ref.KVER);
fs.mkdirSync(moddir, { recursive: true });
const source = moduleDir(ref);
// the modules themselves by a link (nothing here opens them), the index and text files as copies
fs.symlinkSync(path.join(source, 'kernel'), path.join(moddir, 'kernel'));
const FILES = fs.readdirSync(source).filter((f) => f.startsWith('modules.'));
for (const f of FILES) fs.copyFileSync(path.join(source, f), path.join(moddir, f));

const PCI = fs.readFileSync(path.join(source, 'modules.alias'), 'latin1').match(/^alias (pci:\S+) /m)![1];
const COMMANDS: [string, string[]][] = [
  ['modprobe', ['-d', tmp, '-S', ref.KVER, '-n', '-v', 'dummy']],
  ['modprobe', ['-d', tmp, '-S', ref.KVER, '-D', 'ext4']],
  ['modprobe', ['-d', tmp, '-S', ref.KVER, '-n', '-v', PCI]],
  ['modprobe', ['-d', tmp, '-S', ref.KVER, '-R', 'virtio_net']],
  ['modprobe', ['-d', tmp, '-S', ref.KVER, '-c']],
  ['modinfo', ['-b', tmp, '-k', ref.KVER, '-F', 'name', 'dummy']],
  ['modinfo', ['-b', tmp, '-k', ref.KVER, 'ext4']],
];

function same(ours: RunResult, kmod: RunResult): void {
  expect({ status: ours.status, stdout: ours.stdout, stderr: ours.stderr }).toEqual({ status: kmod.status, stdout: kmod.stdout, stderr: kmod.stderr });
}

/** `file` replaced by what `make` puts there while `run` runs, then restored */
function replaced<T>(file: string, make: (p: string) => void, run: () => T): T {
  const p = path.join(moddir, file);
  fs.rmSync(p, { force: true });
  make(p);
  try {
    return run();
  } finally {
    fs.rmSync(p, { recursive: true, force: true });
    fs.copyFileSync(path.join(source, file), p);
  }
}

describe('index and text files that are not files, kmodts vs kmod 34.2', () => {
  it('the tree as it is: the same answers (the commands themselves work)', () => {
    for (const [tool, args] of COMMANDS) same(runKmodts(tool, args), runKmod(tool, args));
  });

  it.each(FILES)('%s as a directory, then as a link to itself', (file) => {
    for (const make of [(p: string) => fs.mkdirSync(p), (p: string) => fs.symlinkSync(path.basename(p), p)]) {
      replaced(file, make, () => {
        for (const [tool, args] of COMMANDS) same(runKmodts(tool, args), runKmod(tool, args));
      });
    }
  });

  it('a .bin index that is a directory: kmod\'s mmap message', () => {
    const r = replaced('modules.dep.bin', (p) => fs.mkdirSync(p), () => runKmod('modprobe', COMMANDS[0][1]));
    expect(r.stderr).toMatch(/^modprobe: ERROR: mmap\(NULL, \d+, PROT_READ, MAP_PRIVATE, 3, 0\): No such device\n/);
  });

  it.each(FILES.filter((f) => f.endsWith('.bin')))('%s as a FIFO: no hang, the answers kmod gives for an empty file there', (file) => {
    for (const [tool, args] of COMMANDS) {
      const ours = replaced(file, (p) => execFileSync('mkfifo', [p]), () => runKmodts(tool, args));
      const kmod = replaced(file, (p) => fs.writeFileSync(p, ''), () => runKmod(tool, args));
      same(ours, kmod);
    }
  });
});
