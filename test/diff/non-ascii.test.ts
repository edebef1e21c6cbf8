// Differential suite: bytes above 0x7f in names, kmodts vs kmod 34.2. kmod takes arguments, the
// environment, paths and file names as C strings, so UTF-8 ("é", 0xc3 0xa9) and bytes that are not
// UTF-8 (0xff, a lone 0xe9) reach its files and messages as they came. Node decodes argv, the
// environment and directory names as UTF-8; kmodts reads them again as bytes (src/file/binary-os.ts).
// The arguments go to both tools as bytes, through perl (Debian's perl-base is essential) reading them
// from a NUL-separated file: Node itself can only pass UTF-8 to a child process.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { moduleDir, reference, runKmod, runKmodts, type RunOptions, type RunResult } from '../support/reference';

const ref = reference();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-non-ascii-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** a binary string (one char per byte) as a path for node:fs */
const bytes = (s: string): Buffer => Buffer.from(s, 'latin1');

const UTF8_DIR = `${tmp}/d\xc3\xa9j\xc3\xa0`;
const ODD_DIR = `${tmp}/odd\xe9`;
const DUMMY = fs.readFileSync(path.join(moduleDir(ref), 'kernel/drivers/net/dummy.ko.xz'));
for (const d of [UTF8_DIR, ODD_DIR]) fs.mkdirSync(bytes(d));
const UTF8_FILE = `${UTF8_DIR}/dumm\xc3\xbf.ko.xz`;
const ODD_FILE = `${ODD_DIR}/du\xffmy.ko.xz`;
for (const f of [UTF8_FILE, ODD_FILE]) fs.writeFileSync(bytes(f), DUMMY);

let argsFiles = 0;
/**
 * RunOptions that hand `args` (binary strings) to the command as their bytes: perl reads them from a
 * NUL-separated file and appends them to the command's own argv. (Not bash: it reads ~/.bashrc when
 * its stdin is a socket, as a child's pipes from Node are.)
 */
function withArgs(args: string[], opts: RunOptions = {}): RunOptions {
  const file = path.join(tmp, `args-${argsFiles++}`);
  fs.writeFileSync(file, Buffer.concat(args.map((a) => Buffer.concat([bytes(a), Buffer.from([0])]))));
  const wrap = ['perl', '-e', 'open(my $f, "<:raw", shift) or die; local $/; my @a = split(/\\0/, <$f>); exec(@ARGV, @a) or die', file];
  return { ...opts, wrap: [...(opts.wrap ?? []), ...wrap] };
}

function expectSame(ours: RunResult, kmod: RunResult): void {
  expect({ status: ours.status, stdout: ours.stdout, stderr: ours.stderr }).toEqual({ status: kmod.status, stdout: kmod.stdout, stderr: kmod.stderr });
}

/** both tools with `args` given as bytes */
function both(tool: string, args: string[], opts: RunOptions = {}): { kmod: RunResult; ours: RunResult } {
  return { kmod: runKmod(tool, [], withArgs(args, opts)), ours: runKmodts(tool, [], withArgs(args, opts)) };
}

describe('non-ASCII bytes, kmodts vs kmod 34.2', () => {
  it('the argument passing itself hands over bytes that are not UTF-8', () => {
    const r = runKmod('modprobe', [], withArgs(['-n', 'x\xffy']));
    expect(r.stderr).toContain('Module x\xffy not found');
  });

  it.each([
    ['a UTF-8 directory and file', UTF8_FILE],
    ['a directory and file that are not UTF-8', ODD_FILE],
  ])('modinfo of a module file in %s, by absolute path', (_what, file) => {
    for (const args of [[file], ['-F', 'filename', file], ['-0', '-F', 'name', file]]) {
      const { kmod, ours } = both('modinfo', args);
      expect(kmod.status).toBe(0);
      expectSame(ours, kmod);
    }
  });

  it('modinfo by a relative path from a non-ASCII current directory, with and without PWD', () => {
    const rel = `./${path.basename(ODD_FILE)}`;
    // cd into the directory by its bytes, then run the command (PWD as the shell sets it, then none)
    for (const unsetPwd of [false, true]) {
      const cd = ['sh', '-c', `cd "$(printf '%b' "$0")" && ${unsetPwd ? 'unset PWD && ' : ''}exec "$@"`, `${tmp}/odd\\0351`];
      const { kmod, ours } = both('modinfo', ['-F', 'filename', rel], { wrap: cd });
      expect(kmod.stdout).toBe(`${ODD_DIR}/${rel}\n`);
      expectSame(ours, kmod);
    }
  });

  it.each([['x\xffy'], ['caf\xc3\xa9'], ['x\xe9y'], ['\xc3']])('modprobe -n and modinfo of a missing module %j', (name) => {
    for (const [tool, args] of [
      ['modprobe', ['-d', ref.KTREE, '-S', ref.KVER, '-n', name]],
      ['modinfo', ['-b', ref.KTREE, '-k', ref.KVER, name]],
      ['rmmod', [name]],
    ] as const) {
      const { kmod, ours } = both(tool, [...args]);
      expect(kmod.stderr).toContain(name);
      expectSame(ours, kmod);
    }
  });

  it('insmod of a file with a non-ASCII path reaches the kernel (ENOSYS here) and names the file as given', () => {
    for (const file of [UTF8_FILE, ODD_FILE, `${ODD_DIR}/missing\xff.ko`]) {
      const { kmod, ours } = both('insmod', [file, 'opt=\xe9t\xc3\xa9']);
      expect(kmod.stderr).toContain(file);
      expectSame(ours, kmod);
    }
  });

  it('modprobe runs an install command with its bytes, MODPROBE_OPTIONS included', () => {
    // the configuration named in MODPROBE_OPTIONS, by a UTF-8 path (Node passes the environment as UTF-8)
    const conf = `${UTF8_DIR}/install.conf`;
    fs.writeFileSync(bytes(conf), bytes('install dummy echo "caf\xc3\xa9 [$CMDLINE_OPTS]"\noptions dummy numdummies=1 n\xc3\xa9=1\n'));
    const env = { MODPROBE_OPTIONS: `-C ${Buffer.from(conf, 'latin1').toString('utf8')}` };
    for (const extra of [['-n', '-v'], []]) {
      const { kmod, ours } = both('modprobe', ['-d', ref.KTREE, '-S', ref.KVER, ...extra, 'dummy', 'x=\xc3\xbf'], { env });
      expect(kmod.stdout).toContain('caf\xc3\xa9');
      expectSame(ours, kmod);
    }
  });

  it('depmod on a tree with non-ASCII directory and file names: the same FATAL, and the same files', () => {
    const tree = path.join(tmp, 'tree');
    const kdir = `${tree}/lib/modules/${ref.KVER}/kernel`;
    fs.mkdirSync(bytes(`${kdir}/n\xc3\xa9w`), { recursive: true });
    fs.writeFileSync(bytes(`${kdir}/n\xc3\xa9w/dummy.ko.xz`), DUMMY);
    const outK = path.join(tmp, 'out-kmod');
    const outT = path.join(tmp, 'out-kmodts');
    const kmod = runKmod('depmod', [], withArgs(['-b', tree, '-o', outK, ref.KVER]));
    const ours = runKmodts('depmod', [], withArgs(['-b', tree, '-o', outT, ref.KVER]));
    expect(kmod.stderr).toContain("bad character '\xc3'=0xc3");
    expect(kmod.stderr).toContain('kernel/n\xc3\xa9w/dummy.ko.xz');
    expectSame(ours, kmod);
    // what both wrote (kmod also leaves its temporary index file behind, docs/compat.md)
    const written = (out: string): Record<string, string> => {
      const d = path.join(out, 'lib/modules', ref.KVER);
      const files = fs.readdirSync(d).filter((f) => !/\.bin\.\d+\./.test(f));
      return Object.fromEntries(files.map((f) => [f, fs.readFileSync(path.join(d, f), 'latin1')]));
    };
    expect(written(outT)).toEqual(written(outK));
  });
});
