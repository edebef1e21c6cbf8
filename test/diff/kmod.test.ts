// Differential suite: kmod 34.2's multi-call `kmod` (help, list, static-nodes, -V/-h, bad options and
// commands) against kmodts run through a link named `kmod`, as installed.
//
// static-nodes reads /lib/modules/`uname -r`/modules.devname and takes no option to read another, so
// each case runs both tools under `unshare -m` with an overlay on the directory /lib is (the fake
// modules/<release>/ above the real one). `kmod list` needs /proc/modules, which this host may not
// have: kmod gets a tmpfs /proc holding a fake one (and a fake /sys/module bind-mounted), kmodts the same
// files through KMODTS_PROC_DIR/KMODTS_SYS_DIR. Needs root (mounts), as the other differentials.
import { execFile, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { maskPointers } from '../support/kmod-pool';
import { cacheRoot, reference, repoRoot, runKmod, runKmodts, runKmodtsLink, type RunOptions, type RunResult } from '../support/reference';

const KVER = os.release();
const LIB = fs.realpathSync('/lib');
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-kmod-diff-'));

/** A file's state after a run: contents and mode, or absent. */
type FileState = { data: string; mode: number } | 'absent' | 'directory';

interface Outcome extends RunResult {
  files: FileState[];
}

/** What modules.devname is in a case's fake module directory. */
type Devname = string | Buffer | 'missing' | 'directory' | 'symlink-loop' | 'release-is-a-file';

interface Case {
  name: string;
  args: string[];
  devname: Devname;
  /** resets the output's surroundings before each tool runs */
  prepare?: () => void;
  /** files compared after the runs */
  files?: string[];
  cwd?: string;
  /** stdout and stderr on one pipe (`2>&1`) */
  combined?: boolean;
}

let layers = 0;
/** The overlay layer for `devname`: modules/<release>/modules.devname (a whiteout when missing). */
function layer(devname: Devname): string {
  const dir = path.join(scratch, `layer-${layers++}`);
  const release = path.join(dir, 'modules', KVER);
  const file = path.join(release, 'modules.devname');
  if (devname === 'release-is-a-file') {
    fs.mkdirSync(path.dirname(release), { recursive: true });
    fs.writeFileSync(release, 'not a directory\n');
    return dir;
  }
  fs.mkdirSync(release, { recursive: true });
  if (devname === 'missing') execFileSync('mknod', [file, 'c', '0', '0']); // overlayfs' whiteout
  else if (devname === 'directory') fs.mkdirSync(file);
  else if (devname === 'symlink-loop') fs.symlinkSync('modules.devname', file);
  else fs.writeFileSync(file, devname);
  return dir;
}

const OVERLAY = 'mount -t overlay overlay -o "lowerdir=$0:$1" "$1" || exit 99; shift; exec "$@"';

function checkSetup(r: RunResult, what: string): RunResult {
  if (r.status === 99) throw new Error(`could not mount the overlay for ${what} (needs root and overlayfs): ${r.stderr}`);
  return r;
}

function fileState(f: string): FileState {
  const st = fs.statSync(f, { throwIfNoEntry: false });
  if (st === undefined) return 'absent';
  if (st.isDirectory()) return 'directory';
  return { data: st.isFile() ? fs.readFileSync(f, 'latin1') : '(special)', mode: st.mode & 0o7777 };
}

function runCase(c: Case, lower: string): { kmod: Outcome; kmodts: Outcome } {
  const script = c.combined === true ? OVERLAY.replace('exec "$@"', 'exec "$@" 2>&1') : OVERLAY;
  const opts: RunOptions = { wrap: ['unshare', '-m', 'sh', '-c', script, lower, LIB], cwd: c.cwd };
  const one = (run: () => RunResult): Outcome => {
    c.prepare?.();
    const r = checkSetup(run(), c.name);
    return { ...r, files: (c.files ?? []).map(fileState) };
  };
  return { kmod: one(() => runKmod('kmod', c.args, opts)), kmodts: one(() => runKmodtsLink('kmod', c.args, opts)) };
}

/** Help texts are our own words: compared by usage line, options, commands and formats listed. */
function helpShape(text: string): string {
  const lines = text.split('\n');
  const usage = lines.findIndex((l) => l === 'Usage:');
  if (usage < 0) return text;
  const tokens = [
    ...[...text.matchAll(/^\t(-\w, --[\w=-]+)/gm)].map((m) => m[1]),
    ...[...text.matchAll(/^ {2}([\w-]+) /gm)].map((m) => m[1]),
    ...[...text.matchAll(/^\t(human|tmpfiles|devname) /gm)].map((m) => m[1]),
  ];
  return `[help: ${lines[usage + 1]} | ${tokens.join(' ')}]`;
}

/** kmodts' version line says +ZLIB on purpose (docs/compat.md) */
const normal = (r: Outcome): Outcome => ({ ...r, stdout: helpShape(r.stdout).replace(/^(kmod version 34\.2\n\+ZSTD \+XZ )-ZLIB/, '$1+ZLIB') });

// synthetic modules.devname contents
const LONG = 'm'.repeat(5000);
const synthetic: Record<string, Devname> = {
  empty: '',
  missing: 'missing',
  'a directory': 'directory',
  'a symlink loop': 'symlink-loop',
  'the release is a file': 'release-is-a-file',
  'comments only': '# Device nodes to trigger on-demand module loading.\n#x y c1:2\n',
  'comments and entries': '# header\nfuse fuse c10:229\n#fuse fuse c10:229\nloop loop-control c10:237\n  # not a comment\n',
  'nested device names': 'tun net/tun c10:200\nsnd_timer snd/timer c116:33\nx a/b/c/d b8:0\n/abs /dev/x c1:1\n',
  'blank and space-only lines': '\n \n\t\nfuse fuse c10:229\n\n',
  'missing fields': 'm\nm d\nm d c\nm d c1\nm d c1:\nm d c:2\nm d 1:2\n',
  'bad type': 'm d x1:2\nm d C1:2\nm d B1:2\nm d -1:2\nm d cc1:2\n',
  'odd numbers': 'a n c0:0\nb n c4294967295:4294967296\nc n b-1:-4294967295\nd n c99999999999999999999999:1\ne n c-99999999999999999999:+7\nf n c007:08\ng n c+:1\nh n c1:-\ni n c0x10:1\nj n c1.5:2\n',
  'separators': 'a\tb\tc1:2\t\nc  d   b 3:  4  \ne f c5 :6\ng h c7: 8trailing junk\ni j c9:10 extra fields here\n\vk l\fc1:1\r\n',
  'no final newline': 'fuse fuse c10:229\nloop loop-control c10:237',
  'no final newline, malformed': 'fuse fuse c10:229\nbroken',
  'very long lines': `${LONG} d c1:2\nm ${LONG} c3:4\n#${LONG}\nm d c5:6\n${'x '.repeat(3000)}\n`,
  'NUL bytes': Buffer.from('a b c1:2\nc\0d c3:4\n\0e f c5:6\ng h c7:\x008\n'),
  'non-ASCII bytes': Buffer.from([...Buffer.from('m\xe9 d\xff c1:2\n', 'latin1'), ...Buffer.from('bad\xfe\n', 'latin1')]),
};

const formats = [[], ['--format=human'], ['--format=tmpfiles'], ['--format=devname'], ['-f', 'tmpfiles'], ['-fdevname']];

const OUT = path.join(scratch, 'out');
const NEW_FILE = path.join(OUT, 'static-nodes.conf');
const DEEP_FILE = path.join(OUT, 'a//b/c', 'static-nodes.conf');
const EXISTING = path.join(OUT, 'existing.conf');
const NOT_DIR = path.join(OUT, 'plain-file');
const resetOut = (): void => {
  fs.rmSync(OUT, { recursive: true, force: true });
  fs.mkdirSync(OUT);
  fs.writeFileSync(EXISTING, 'old contents that are longer than the new ones\n'.repeat(200), { mode: 0o640 });
  fs.chmodSync(EXISTING, 0o640);
  fs.writeFileSync(NOT_DIR, 'x');
};

function outputCases(devname: Devname): Case[] {
  const o = (name: string, args: string[], files: string[], extra: Partial<Case> = {}): Case => ({ name, args, devname, prepare: resetOut, files, ...extra });
  return [
    o('to a new file', ['static-nodes', '--format=tmpfiles', `--output=${NEW_FILE}`], [NEW_FILE]),
    o('to a new file in missing directories', ['static-nodes', '-o', DEEP_FILE, '-f', 'devname'], [DEEP_FILE, path.dirname(DEEP_FILE)]),
    o('to an existing file (truncated, mode kept)', ['static-nodes', `-o${EXISTING}`], [EXISTING]),
    o('relative, in a new directory', ['static-nodes', '-o', 'rel/dir/x.conf'], [path.join(OUT, 'rel/dir/x.conf')], { cwd: OUT }),
    o('below a regular file', ['static-nodes', '-o', `${NOT_DIR}/x/y.conf`], [NOT_DIR]),
    o('over a directory', ['static-nodes', '-o', OUT], [OUT]),
    o('a path ending in /', ['static-nodes', '-o', `${OUT}/newdir/`], [path.join(OUT, 'newdir')]),
    o('an empty path', ['static-nodes', '-o', ''], []),
    o('under /proc (cannot create)', ['static-nodes', '-o', '/proc/kmodts-none/x.conf'], []),
    o('an unwritable /proc file', ['static-nodes', '-o', '/proc/version'], []),
    o('/dev/null', ['static-nodes', '-o', '/dev/null'], []),
    o('/dev/full (write errors are not reported)', ['static-nodes', '-o', '/dev/full'], []),
    o('the last -o wins', ['static-nodes', '-o', NEW_FILE, '-o', EXISTING], [NEW_FILE, EXISTING]),
  ];
}

const fake = (name: string, args: string[], devname: Devname = 'fuse fuse c10:229\n'): Case => ({ name, args, devname });
const commandLineCases: Case[] = [
  fake('no arguments', []),
  fake('help', ['help']), fake('help with arguments', ['help', '-x', 'y']),
  fake('-h', ['-h']), fake('--help', ['--help']), fake('--he', ['--he']), fake('-h -x', ['-h', '-x']), fake('-x -h', ['-x', '-h']),
  fake('-V', ['-V']), fake('--version', ['--version']), fake('-V list', ['-V', 'list']), fake('-Vh', ['-Vh']),
  fake('-x', ['-x']), fake('--bogus', ['--bogus']), fake('--help=x', ['--help=x']), fake('-', ['-']), fake('--', ['--']),
  fake('-- static-nodes', ['--', 'static-nodes']), fake('-- static-nodes -x', ['--', 'static-nodes', '-x']),
  fake('unknown command', ['bogus']), fake('empty command', ['']), fake('a tool name as command', ['lsmod']),
  fake('modprobe as command', ['modprobe', '-V']), fake('insert', ['insert', 'x']), fake('remove', ['remove', 'x']),
  fake('command case', ['LIST']), fake('command prefix', ['stat']), fake('command after an unknown one', ['x', 'list']),
  fake('static-nodes -h', ['static-nodes', '-h']), fake('static-nodes --help', ['static-nodes', '--help']),
  fake('static-nodes -x', ['static-nodes', '-x']), fake('static-nodes --bogus', ['static-nodes', '--bogus']),
  fake('static-nodes -f', ['static-nodes', '-f']), fake('static-nodes --format', ['static-nodes', '--format']),
  fake('static-nodes -o', ['static-nodes', '-o']), fake('static-nodes --output', ['static-nodes', '--output']),
  fake('unknown format', ['static-nodes', '--format=bogus']), fake('empty format', ['static-nodes', '-f', '']),
  fake('format prefix', ['static-nodes', '--format=tmp']), fake('format case', ['static-nodes', '-f', 'Human']),
  fake('long option prefixes', ['static-nodes', '--form=devname', '--h']), fake('--output=', ['static-nodes', '--output=']),
  fake('bad format then -h', ['static-nodes', '-f', 'x', '-h']), fake('-h then bad format', ['static-nodes', '-h', '-f', 'x']),
  fake('good then bad format', ['static-nodes', '-f', 'devname', '-f', 'x']), fake('-x then bad format', ['static-nodes', '-x', '-f', 'x']),
  fake('a non-option stops option parsing', ['static-nodes', 'extra', '--format=bogus']),
  fake('arguments are ignored', ['static-nodes', '-f', 'devname', 'extra', 'args']),
  fake('-- in static-nodes', ['static-nodes', '--', '-x']), fake('bundled', ['static-nodes', '-hf', 'x']),
  fake('format then help', ['static-nodes', '-fdevname', '-h']),
  fake('list -x', ['list', '-x']), fake('list --bogus', ['list', '--bogus']), fake('list -h', ['list', '-h']), fake('list -V', ['list', '-V']),
  fake('list extra -x (stops at the argument)', ['list', 'extra', '-x']), fake('-- list -x', ['--', 'list', '-x']),
];

const listCases: string[][] = [['list'], ['list', '-v'], ['list', '-s'], ['list', 'extra'], ['list', '-vvv']];

/** the fake /proc/modules and /sys/module for `kmod list` */
function fakeProcAndSys(): { proc: string; sys: string } {
  const proc = path.join(scratch, 'proc');
  const sys = path.join(scratch, 'sys');
  fs.mkdirSync(proc);
  fs.writeFileSync(
    path.join(proc, 'modules'),
    'kmodts_a 16384 1 kmodts_b, Live 0x0000000000000000\nkmodts_b 8192 0 - Live 0x0000000000000000\nkmodts_gone 100 2 - Live 0x0\n',
  );
  for (const [name, files] of [['kmodts_a', { initstate: 'live\n', refcnt: '1\n', coresize: '12345\n' }], ['kmodts_b', { initstate: 'live\n', refcnt: '0\n' }]] as const) {
    const d = path.join(sys, 'module', name);
    fs.mkdirSync(path.join(d, 'holders'), { recursive: true });
    for (const [f, v] of Object.entries(files)) fs.writeFileSync(path.join(d, f), v);
  }
  fs.symlinkSync('../../kmodts_b', path.join(sys, 'module/kmodts_a/holders/kmodts_b'));
  return { proc, sys };
}

/**
 * Debian trees' modules.devname, made by kmod 34.2's depmod (-o: the cached trees stay untouched) and
 * kept in the machine's cache as kmod-devname/<arch>-<version>.devname: a run of depmod takes ~15 s and
 * scripts/fetch-tree.sh ~25 s, and neither output changes once made.
 */
async function debianDevnames(): Promise<Map<string, string>> {
  const ref = reference();
  const found = new Map<string, string>([['cloud-amd64 (reference)', fs.readFileSync(path.join(ref.KTREE, 'lib/modules', ref.KVER, 'modules.devname'), 'latin1')]]);
  const trees = [['amd64', 'linux-image-amd64'], ['arm64', 'linux-image-arm64'], ['armhf', 'linux-image-armmp'], ['s390x', 'linux-image-s390x']];
  const cacheDir = path.join(cacheRoot, 'kmod-devname');
  fs.mkdirSync(cacheDir, { recursive: true });
  const run = promisify(execFile);
  await Promise.all(
    trees.map(async ([arch, meta]) => {
      const hit = fs.readdirSync(cacheDir).find((f) => f.startsWith(`${arch}-`) && f.endsWith('.devname'));
      if (hit !== undefined) {
        found.set(`${arch} ${hit.slice(arch.length + 1, -'.devname'.length)}`, fs.readFileSync(path.join(cacheDir, hit), 'latin1'));
        return;
      }
      const { stdout } = await run('bash', [path.join(repoRoot, 'scripts/fetch-tree.sh'), arch, meta], { encoding: 'utf8' });
      const ktree = /^KTREE=(.*)$/m.exec(stdout)![1];
      const kver = /^KVER=(.*)$/m.exec(stdout)![1];
      const outdir = path.join(scratch, `depmod-${arch}`);
      const k = ref.KMOD_ROOT;
      const loader = [`${k}/usr/lib64/ld-linux-x86-64.so.2`, '--library-path', `${k}/usr/lib/x86_64-linux-gnu`, '--argv0', 'depmod', `${k}/usr/bin/kmod`];
      await run(loader[0], [...loader.slice(1), '-C', '/dev/null', '-b', ktree, '-o', outdir, kver], { maxBuffer: 1 << 26 });
      const text = fs.readFileSync(path.join(outdir, 'lib/modules', kver, 'modules.devname'), 'latin1');
      const cached = path.join(cacheDir, `${arch}-${kver}.devname`);
      fs.writeFileSync(`${cached}.tmp${process.pid}`, text, 'latin1');
      fs.renameSync(`${cached}.tmp${process.pid}`, cached);
      found.set(`${arch} ${kver}`, text);
    }),
  );
  return found;
}

function compareAll(cases: Case[], kmodOutcomes: Outcome[] = []): string[] {
  const mismatches: string[] = [];
  for (const c of cases) {
    const r = runCase(c, layer(c.devname));
    kmodOutcomes.push(r.kmod);
    const [k, t] = [normal(r.kmod), normal(r.kmodts)];
    if (JSON.stringify(k) !== JSON.stringify(t)) mismatches.push(`${c.name} (${JSON.stringify(c.args)}):\n kmod   ${JSON.stringify(k)}\n kmodts ${JSON.stringify(t)}`);
  }
  return mismatches;
}

let debian = new Map<string, string>();
beforeAll(async () => {
  debian = await debianDevnames();
}, 900_000);

describe('kmod vs kmod 34.2', () => {
  it('static-nodes on the Debian trees, every format, to stdout and to a file', () => {
    expect(debian.size).toBe(5);
    const cases: Case[] = [];
    for (const [tree, text] of debian) {
      // every tree lists character devices, and some in subdirectories (tmpfiles' "d" lines)
      expect(text).toMatch(/^\S+ \S+\/\S+ c\d+:\d+$/m);
      for (const f of formats) cases.push({ name: `${tree} ${f.join(' ')}`, args: ['static-nodes', ...f], devname: text });
      cases.push(...outputCases(text).slice(0, 3).map((c) => ({ ...c, name: `${tree}: ${c.name}` })));
    }
    const kmod: Outcome[] = [];
    const mismatches = compareAll(cases, kmod);
    // the fake tree was the one read: kmod printed its nodes (and wrote them for --output)
    expect(kmod.filter((r) => r.stdout.includes('\tDevice node: /dev/net/tun\n')).length).toBe(debian.size * 2);
    expect(kmod.filter((r) => r.files.some((f) => typeof f === 'object' && f.data.includes('net/tun'))).length).toBe(debian.size * 3);
    console.log(`Debian trees: ${cases.length - mismatches.length}/${cases.length} identical`);
    expect(mismatches).toEqual([]);
  });

  it('static-nodes on synthetic modules.devname files, every format', () => {
    const cases: Case[] = [];
    for (const [name, devname] of Object.entries(synthetic)) for (const f of formats.slice(0, 4)) cases.push({ name: `${name} ${f.join(' ')}`, args: ['static-nodes', ...f], devname });
    const mismatches = compareAll(cases);
    console.log(`synthetic files: ${cases.length - mismatches.length}/${cases.length} identical`);
    expect(mismatches).toEqual([]);
  });

  it('static-nodes with stdout and stderr on one pipe: the errors fall between the same bytes of output', () => {
    const lines: string[] = [];
    for (let i = 0; i < 400; i++) lines.push(i % 37 === 5 ? `broken line ${i}\n` : `mod${i} dev/node${i} c${i}:${i % 7}\n`);
    const devname = lines.join('');
    const cases: Case[] = formats.slice(0, 4).map((f) => ({ name: `2>&1 ${f.join(' ')}`, args: ['static-nodes', ...f], devname, combined: true }));
    const kmod: Outcome[] = [];
    const mismatches = compareAll(cases, kmod);
    // more than one buffer of output, the errors among it
    expect(kmod.every((r) => r.stdout.length > 8192 && r.stdout.lastIndexOf('Error: invalid devname entry') > 4096)).toBe(true);
    expect(mismatches).toEqual([]);
  });

  it('static-nodes --output: new, existing, unwritable, special files; with malformed and missing input', () => {
    const cases = [
      ...outputCases('tun net/tun c10:200\nbad line\nfuse fuse c10:229\n'),
      ...outputCases('missing').slice(0, 3).map((c) => ({ ...c, name: `missing input: ${c.name}` })),
    ];
    const mismatches = compareAll(cases);
    console.log(`--output: ${cases.length - mismatches.length}/${cases.length} identical`);
    expect(mismatches).toEqual([]);
  });

  it('options, commands and usage errors', () => {
    const mismatches = compareAll(commandLineCases);
    console.log(`command lines: ${commandLineCases.length - mismatches.length}/${commandLineCases.length} identical`);
    expect(mismatches).toEqual([]);
  });

  it('kmod list is lsmod, over a fake /proc/modules and /sys/module', () => {
    const { proc, sys } = fakeProcAndSys();
    const kmodWrap = ['unshare', '-m', 'sh', '-c', 'mount -t tmpfs none /proc && cp "$0/modules" /proc/modules && mount --bind "$1/module" /sys/module || exit 99; shift; exec "$@"', proc, sys];
    const mismatches: string[] = [];
    for (const args of listCases) {
      const k = checkSetup(runKmod('kmod', args, { wrap: kmodWrap }), args.join(' '));
      const t = runKmodtsLink('kmod', args, { env: { KMODTS_PROC_DIR: proc, KMODTS_SYS_DIR: sys } });
      // libkmod's INFO lines show pointers; kmodts prints stand-ins (docs/compat.md)
      [k.stderr, t.stderr] = [maskPointers(k.stderr), maskPointers(t.stderr)];
      if (JSON.stringify(t) !== JSON.stringify(k)) mismatches.push(`${args.join(' ')}:\n kmod   ${JSON.stringify(k)}\n kmodts ${JSON.stringify(t)}`);
    }
    expect(mismatches).toEqual([]);
    // the listing itself is lsmod's, for both
    const kmodList = runKmod('kmod', ['list'], { wrap: kmodWrap });
    expect(kmodList.stdout).toBe(runKmod('lsmod', [], { wrap: kmodWrap }).stdout);
    expect(kmodList.stdout).toMatch(/^kmodts_a +12345 {2}1 kmodts_b\n/m);
    expect(runKmodtsLink('lsmod', [], { env: { KMODTS_PROC_DIR: proc, KMODTS_SYS_DIR: sys } }).stdout).toBe(kmodList.stdout);
  });

  it('kmod on this host as it is (no fake files), and `kmodts kmod` as the link', () => {
    for (const args of [['list'], ['static-nodes'], ['static-nodes', '-f', 'tmpfiles'], ['-V'], []]) {
      const k = runKmod('kmod', args);
      const link = runKmodtsLink('kmod', args);
      const multi = runKmodts('kmod', args);
      const shape = (r: RunResult) => normal({ ...r, files: [] });
      expect(shape(link), args.join(' ')).toEqual(shape(k));
      expect(multi, args.join(' ')).toEqual(link);
    }
  });

  it('links named after the six tools are those tools, as kmod run under their names', () => {
    for (const tool of ['lsmod', 'rmmod', 'insmod', 'modinfo', 'modprobe', 'depmod']) {
      for (const args of [['-V'], ['--bogus']]) {
        const shape = (r: RunResult) => normal({ ...r, files: [] });
        expect(shape(runKmodtsLink(tool, args)), `${tool} ${args.join(' ')}`).toEqual(shape(runKmod(tool, args)));
      }
    }
  });
});
