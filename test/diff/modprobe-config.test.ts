// Differential suite: the configuration part of `modprobe -c` (modprobe.d files, modules.softdep /
// modules.weakdep, the kernel command line) and libkmod's configuration messages, kmod 34.2 vs kmodts.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG_PATHS, formatConfig, loadConfig } from '../../src/resolution/config';
import { LOG_ERR } from '../../src/resolution/context';
import { priorityName } from '../../src/cli/log';
import { cleanEnv, moduleDir as refModuleDir, reference, repoRoot, runKmod, runKmodts, type RunResult } from '../support/reference';

const FIX = path.join(repoRoot, 'test/fixtures/modprobe.d');
const ROOT = path.join(FIX, 'root');
const KVER = '1.0-test';
const END_MARK = '\n# End of configuration files. Dumping indexes now:\n';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-config-diff-'));
// rm(1) copes with paths longer than PATH_MAX (the long-name case below)
afterAll(() => execFileSync('rm', ['-rf', tmp]));

interface Case {
  name: string;
  /** -C arguments (as given on the command line; relative ones are relative to the repository) */
  config: string[];
  /** fake /proc/cmdline contents */
  cmdline?: string;
  /** module tree root (-d) and version (-S); default the fixture's */
  root?: string;
  kver?: string;
}

/** kmod 34.2: config part of stdout, the whole stderr and the status */
function kmodSide(c: Case): RunResult & { config: string } {
  const args = ['-c', '-d', c.root ?? ROOT, '-S', c.kver ?? KVER, ...c.config.flatMap((p) => ['-C', p])];
  const raw = runKmod('modprobe', args, { cmdline: c.cmdline ?? '', cwd: repoRoot });
  // both sides are binary strings (latin1: one char per byte)
  const r = { stdout: raw.stdout, stderr: raw.stderr, status: raw.status };
  const end = r.stdout.indexOf(END_MARK);
  return { ...r, config: end >= 0 ? r.stdout.slice(0, end) : `(no end marker) ${r.stdout}` };
}

let caseNo = 0;
/** kmodts in-process: what libkmod's default logger would print before the tool routes messages */
function kmodtsSide(c: Case): { config: string; stderr: string } {
  const procDir = path.join(tmp, `proc${caseNo++}`);
  fs.mkdirSync(procDir);
  fs.writeFileSync(path.join(procDir, 'cmdline'), c.cmdline ?? '');
  let stderr = '';
  const cfg = loadConfig({
    configPaths: c.config,
    moduleDir: `${c.root ?? ROOT}/lib/modules/${c.kver ?? KVER}`,
    procDir,
    log: (prio, fn, msg) => {
      if (prio <= LOG_ERR) stderr += `libkmod: ${priorityName(prio)}: ${fn}: ${msg}`;
    },
  });
  return { config: formatConfig(cfg), stderr };
}

const rel = (p: string): string => path.relative(repoRoot, path.join(FIX, p));
const abs = (p: string): string => path.join(FIX, p);
const dirs = ['etc', 'run', 'usr-local-lib', 'usr-lib', 'lib'];
const caseFiles = fs.readdirSync(path.join(FIX, 'cases')).sort();

const cmdlines: string[] = [
  '',
  'psmouse.foo psmouse.bar=1',
  'psmouse.foobar="test 1" psmouse."invalid option" " notamodule"',
  'psmouse.foo=2 ivrs_acpihid[14:00.5]=AMD0020:00',
  'testmodule.testparam=1.5G',
  '"parport.dyndbg=file drivers/parport/ieee1284_ops.c +mpf"',
  'modprobe.blacklist=foo,bar modprobe.blacklist=foo2 modprobe.blacklist= modprobe.blacklist=a,,snd-pcsp,',
  'BOOT_IMAGE=/boot/vmlinuz-6.1 root=UUID=1234-5678 ro initrd=\\x quiet rw -- snd-hda-intel.model=auto\n',
  'mitigations=auto console=ttyS0 quiet reboot=k panic=1 nomodule random.trust_cpu=1 page_reporting.page_reporting_order=11 rdinit=/init -- --addr 0.0.0.0:2024\n',
  'mod.p="a b" x.y="unterminated value',
  'a-b.c-d=e-f "quoted-mod.p=v" "mod.noval" mod.p.q=1 mod..p=1 .p=1 mod.=x mod.p=a=b',
  'm.a=1\tm.b=2\nm.c=3\r\fm.d=4\vm.e=5\n',
  'bad]name.p=1 br[ack.p=1 ok[a-b]-x.p=1 [a.b=1',
  'modprobe.blacklist modprobe.blacklistx=1 "modprobe.blacklist=q1,q2" modprobe.options=1',
  'm.p=1" m.p="x"y "m.p=x"y z.p=1 " "a.b=1" "',
  '"',
  'a.b=1\0c.d=2',
  'tab.opt="x\ty" sp.opt="  " e.q="" "w.x="y z"" q.r="s"t"u v"',
  `${'x'.repeat(4080)} edge.param=straddles-the-limit after.p=1`,
  `${'y'.repeat(4084)} near.p=1`,
  'utf.p=café ünï.p=1 "ü.p=a b"',
];

const cases: Case[] = [
  ...dirs.map((d) => ({ name: `dir ${d}`, config: [abs(d)] })),
  { name: 'default precedence: etc run usr-local-lib usr-lib lib', config: dirs.map(abs) },
  { name: 'reversed precedence', config: [...dirs].reverse().map(abs) },
  { name: 'relative paths', config: dirs.map(rel) },
  { name: 'trailing slashes', config: dirs.map((d) => `${abs(d)}/`) },
  { name: 'double slash inside', config: [`${FIX}//etc`] },
  ...caseFiles.map((f) => ({ name: `file cases/${f}`, config: [abs(`cases/${f}`)] })),
  { name: 'cases directory', config: [abs('cases')] },
  { name: 'single file without .conf', config: [abs('single/standalone')] },
  { name: 'single file hides same name in a later dir', config: [abs('single/50-override.conf'), abs('etc')] },
  { name: 'dir hides same-named single file given later', config: [abs('etc'), abs('single/50-override.conf')] },
  { name: 'single file named like modules.softdep is ignored', config: [abs('root/lib/modules/1.0-test/modules.softdep')] },
  { name: 'symlink to a directory', config: [abs('single/link-to-etc')] },
  { name: 'symlink to a file (named by the link)', config: [abs('single/link-file.conf'), abs('single/standalone')] },
  { name: 'same file twice', config: [abs('cases/brackets.conf'), abs('cases/brackets.conf')] },
  { name: 'same dir twice', config: [abs('run'), abs('run')] },
  { name: 'nonexistent path', config: [abs('does-not-exist'), abs('run')] },
  { name: 'empty path', config: ['', abs('run')] },
  { name: '/dev/null', config: ['/dev/null'] },
  { name: 'a hidden file given directly', config: [abs('etc/.hidden.conf')] },
  { name: 'a dangling symlink given directly', config: [abs('etc/dangling.conf')] },
  { name: 'subdirectory given directly', config: [abs('etc/sub.conf')] },
  { name: 'no module tree', config: [abs('run')], root: path.join(FIX, 'nowhere') },
  ...cmdlines.map((cmdline, i) => ({ name: `cmdline ${i}: ${JSON.stringify(cmdline.slice(0, 60))}`, config: ['/dev/null'], cmdline })),
  { name: 'cmdline with config files', config: dirs.map(abs), cmdline: cmdlines[1] + ' modprobe.blacklist=k1 override-me.x=cmd' },
];

describe('modprobe -c configuration vs kmod 34.2', () => {
  beforeAll(() => {
    reference();
  });

  it('kmod 34.2 searches the default directories kmodts uses', () => {
    const k = reference().KMOD_ROOT;
    const lib = fs.readFileSync(path.join(k, 'usr/lib/x86_64-linux-gnu/libkmod.so.2'), 'latin1');
    for (const d of DEFAULT_CONFIG_PATHS) expect(lib.includes(`${d}\0`), d).toBe(true);
  });

  it.each(cases)('$name', (c) => {
    const k = kmodSide(c);
    const t = kmodtsSide(c);
    expect(k.status).toBe(0);
    expect(t.config).toBe(k.config);
    expect(t.stderr).toBe(k.stderr);
  });

  it('a file whose full name exceeds PATH_MAX is reported, not parsed', () => {
    // a directory path under PATH_MAX whose files' paths are over it
    let dir = path.join(tmp, 'long');
    while (dir.length < 4080) dir = path.join(dir, 'd'.repeat(Math.min(200, Math.max(1, 4080 - dir.length - 1))));
    fs.mkdirSync(dir, { recursive: true });
    execFileSync('sh', ['-c', 'cd "$1" && printf "options long x=1\\n" > this-name-is-long-enough.conf && printf "options short x=1\\n" > a.conf', 'sh', dir]);
    const c: Case = { name: 'long', config: [dir, abs('run')] };
    const k = kmodSide(c);
    const t = kmodtsSide(c);
    expect(k.stderr).toContain('path too long');
    expect(k.config).toContain('options short x=1');
    // compare with the long directory name shortened, to keep failure reports readable
    const short = (s: string): string => s.split(dir).join('<long dir>');
    expect(short(t.config)).toBe(short(k.config));
    expect(short(t.stderr)).toBe(short(k.stderr));
  });

  it('a socket named *.conf (open fails: skipped silently)', async () => {
    const dir = path.join(tmp, 'sockdir');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'a.conf'), 'blacklist a\n');
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(path.join(dir, 'b.conf'), resolve));
    try {
      const c: Case = { name: 'socket', config: [dir] };
      const k = kmodSide(c);
      const t = kmodtsSide(c);
      expect(k.config).toContain('blacklist a');
      expect(t.config).toBe(k.config);
      expect(t.stderr).toBe(k.stderr);
    } finally {
      server.close();
    }
  });

  it('the Debian tree: its modules.softdep and modules.weakdep', () => {
    const ref = reference();
    const c: Case = { name: 'ktree', config: ['/dev/null'], root: ref.KTREE, kver: ref.KVER };
    const k = kmodSide(c);
    const t = kmodtsSide(c);
    expect(fs.existsSync(path.join(refModuleDir(ref), 'modules.softdep'))).toBe(true);
    expect(t.config).toBe(k.config);
    expect(t.stderr).toBe(k.stderr);
  });
});

/** A small seeded PRNG (mulberry32), so that generated cases are the same on every run. */
function prng(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

/** text made of pieces that matter to the parsers, at random */
function generate(rand: (n: number) => number, pieces: string[], count: number): string {
  let s = '';
  for (let i = 0; i < count; i++) s += pieces[rand(pieces.length)];
  return s;
}

const configPieces = [
  'alias ', 'blacklist ', 'options ', 'install ', 'remove ', 'softdep ', 'weakdep ', 'include ', 'config ',
  'pre: ', 'post: ', 'pre:', ' ', '  ', '\t', '\n', '\n', '\n', '\\\n', '\\', '#', '# c\n', '[', ']', '[a-z]', '-', '_',
  'mod-a', 'b', 'x=1', '"q r"', '*', '\r', 'pci:v*', 'é',
];
const cmdlinePieces = [
  'm', 'mod-x', '.', '.', '=', '=', '"', ' ', ' ', '\t', '\n', 'p', 'v1', ',', 'modprobe.blacklist=', 'modprobe',
  '[', ']', '-', 'a b', 'BOOT_IMAGE=/x', 'é',
];

describe('generated input vs kmod 34.2', () => {
  it.each([1, 2, 3, 4, 5, 6])('configuration directory #%i (40 generated files)', (seed) => {
    const rand = prng(seed);
    const dir = path.join(tmp, `gen-config-${seed}`);
    fs.mkdirSync(dir);
    for (let i = 0; i < 40; i++) fs.writeFileSync(path.join(dir, `g${i}.conf`), generate(rand, configPieces, 20 + rand(200)));
    const c: Case = { name: 'gen', config: [dir] };
    const k = kmodSide(c);
    const t = kmodtsSide(c);
    expect(k.config.length + k.stderr.length).toBeGreaterThan(100);
    expect(t.config).toBe(k.config);
    expect(t.stderr).toBe(k.stderr);
  });

  it.each(Array.from({ length: 24 }, (_, i) => i + 1))('kernel command line #%i', (seed) => {
    const rand = prng(1000 + seed);
    const cmdline = generate(rand, cmdlinePieces, seed % 4 === 0 ? 1500 : 40 + rand(300));
    const c: Case = { name: 'gen', config: ['/dev/null'], cmdline };
    const k = kmodSide(c);
    const t = kmodtsSide(c);
    expect(t.config).toBe(k.config);
    expect(t.stderr).toBe(k.stderr);
  });
});

/**
 * Runs a command with the fixture directories mounted over the default modprobe.d locations
 * (a private mount namespace; overlays keep the host's /etc and /usr/local/lib untouched).
 * /lib is a symlink to /usr/lib here, so /lib/modprobe.d is /usr/lib/modprobe.d.
 */
function withDefaultDirs(argv: string[], cmdline: string): RunResult {
  const work = fs.mkdtempSync(path.join(tmp, 'ns-'));
  const cmdFile = path.join(work, 'cmdline');
  fs.writeFileSync(cmdFile, cmdline);
  for (const d of ['etc-up', 'etc-work', 'local-up', 'local-work']) fs.mkdirSync(path.join(work, d));
  fs.cpSync(abs('etc'), path.join(work, 'etc-up/modprobe.d'), { recursive: true, verbatimSymlinks: true });
  fs.cpSync(abs('usr-local-lib'), path.join(work, 'local-up/modprobe.d'), { recursive: true });
  const script = [
    'set -e',
    'W="$1"; shift',
    'mount --bind "$W/cmdline" /proc/cmdline',
    'mount -t overlay overlay -o "lowerdir=/etc,upperdir=$W/etc-up,workdir=$W/etc-work" /etc',
    'mkdir -p /usr/local/lib',
    'mount -t overlay overlay -o "lowerdir=/usr/local/lib,upperdir=$W/local-up,workdir=$W/local-work" /usr/local/lib',
    'mount -t tmpfs tmpfs /run',
    `mkdir /run/modprobe.d && cp -a "${abs('run')}/." /run/modprobe.d/`,
    `mount --bind "${abs('usr-lib')}" /usr/lib/modprobe.d`,
    'exec "$@"',
  ].join('\n');
  const r = spawnSync('unshare', ['-m', 'sh', '-c', script, 'sh', work, ...argv], {
    env: cleanEnv(),
    encoding: 'latin1',
    maxBuffer: 1 << 30,
  });
  if (r.error) throw r.error;
  return { stdout: r.stdout, stderr: r.stderr, status: r.status ?? 129 };
}

describe('default search path vs kmod 34.2', () => {
  it('kmod with fixtures over /etc, /run, /usr/local/lib, /usr/lib equals kmodts given those dirs', () => {
    const k = reference().KMOD_ROOT;
    const cmdline = 'psmouse.foo=1 modprobe.blacklist=bl';
    const r = withDefaultDirs(
      [`${k}/usr/lib64/ld-linux-x86-64.so.2`, '--library-path', `${k}/usr/lib/x86_64-linux-gnu`, '--argv0', 'modprobe', `${k}/usr/bin/kmod`, '-c', '-d', ROOT, '-S', KVER],
      cmdline,
    );
    expect(r.status).toBe(0);
    const kconfig = r.stdout.slice(0, r.stdout.indexOf(END_MARK));
    // the same directories, under their real names in messages: compare with names mapped
    const t = kmodtsSide({ name: 'defaults', config: dirs.map(abs), cmdline });
    const mapped = (s: string): string =>
      s
        .split(`${abs('etc')}/`).join('/etc/modprobe.d/')
        .split(`${abs('run')}/`).join('/run/modprobe.d/')
        .split(`${abs('usr-local-lib')}/`).join('/usr/local/lib/modprobe.d/')
        .split(`${abs('usr-lib')}/`).join('/usr/lib/modprobe.d/')
        .split(`${abs('lib')}/`).join('/lib/modprobe.d/');
    // lib/ is not mounted anywhere (it is usr-lib/ here): drop its contribution from our side
    const t2 = kmodtsSide({ name: 'defaults', config: ['etc', 'run', 'usr-local-lib', 'usr-lib'].map(abs), cmdline });
    expect(t.config).not.toBe(''); // sanity: the fixtures are there
    expect(t2.config).toBe(kconfig);
    expect(mapped(t2.stderr)).toBe(r.stderr);
  });

  it('the kmodts CLI reads the same default directories', () => {
    const cmdline = 'psmouse.foo=1 modprobe.blacklist=bl';
    const k = reference().KMOD_ROOT;
    const kr = withDefaultDirs(
      [`${k}/usr/lib64/ld-linux-x86-64.so.2`, '--library-path', `${k}/usr/lib/x86_64-linux-gnu`, '--argv0', 'modprobe', `${k}/usr/bin/kmod`, '-c', '-d', ROOT, '-S', KVER],
      cmdline,
    );
    const tr = withDefaultDirs([process.execPath, path.join(repoRoot, 'bin/kmodts.js'), 'modprobe', '-c', '-d', ROOT, '-S', KVER], cmdline);
    expect(tr).toEqual(kr);
  });
});

describe('configuration read by every tool (kmod_new) vs kmod 34.2', () => {
  // kmod's insmod, rmmod, lsmod, modinfo and depmod create their context with an empty search path:
  // no modprobe.d, but still <moduledir>/modules.softdep, modules.weakdep and /proc/cmdline.
  const cmdline = 'a.b=1 bad-x[.p=1 modprobe.blacklist=q\n';
  const tools: [string, string[]][] = [
    ['modinfo', ['-b', ROOT, '-k', KVER, '/nonexistent.ko']],
    ['modinfo', ['/nonexistent.ko']],
    ['insmod', ['/nonexistent.ko']],
    ['rmmod', ['nonexistent_module']],
    ['lsmod', []],
    ['depmod', ['-n', '-b', ROOT, KVER]],
    ['depmod', ['-n', '-b', path.join(FIX, 'nowhere'), KVER]],
    ['modprobe', ['-n', '-d', ROOT, '-S', KVER, 'nonexistent_module']],
  ];
  it.each(tools)('%s %j', (tool, args) => {
    const k = reference().KMOD_ROOT;
    const kr = withDefaultDirs([`${k}/usr/lib64/ld-linux-x86-64.so.2`, '--library-path', `${k}/usr/lib/x86_64-linux-gnu`, '--argv0', tool, `${k}/usr/bin/kmod`, ...args], cmdline);
    const tr = withDefaultDirs([process.execPath, path.join(repoRoot, 'bin/kmodts.js'), tool, ...args], cmdline);
    expect(kr.stderr).toContain("module name: 'bad_x['");
    expect(tr).toEqual(kr);
  });
});

describe('whole `modprobe -c` output of the kmodts CLI vs kmod 34.2', () => {
  it.each(cases)('$name', (c) => {
    const args = ['-c', '-d', c.root ?? ROOT, '-S', c.kver ?? KVER, ...c.config.flatMap((p) => ['-C', p])];
    const k = runKmod('modprobe', args, { cmdline: c.cmdline ?? '', cwd: repoRoot });
    const t = runKmodts('modprobe', args, { cmdline: c.cmdline ?? '', cwd: repoRoot });
    expect(t).toEqual(k);
  });

  const variants: [string, string[], NodeJS.ProcessEnv][] = [
    ['KMOD_LOG=0 silences libkmod', [], { KMOD_LOG: '0' }],
    ['KMOD_LOG=err', [], { KMOD_LOG: 'err' }],
    ['KMOD_LOG=2', [], { KMOD_LOG: '2' }],
    ['-q does not silence configuration errors', ['-q'], {}],
    ['-v', ['-v'], {}],
    ['-C given in MODPROBE_OPTIONS', [], { MODPROBE_OPTIONS: `-C ${abs('cases/bad-lines.conf')}` }],
  ];
  it.each(variants)('%s', (_name, extra, env) => {
    const args = ['-c', ...extra, '-d', ROOT, '-S', KVER, '-C', abs('cases')];
    const cmdline = 'bad]x.p=1 ok.p=2';
    const k = runKmod('modprobe', args, { cmdline, env });
    const t = runKmodts('modprobe', args, { cmdline, env });
    expect(t).toEqual(k);
  });

  it.each(['root/', './root', `${ROOT}//`])('-d %s names modules.softdep as kmod does', (d) => {
    const args = ['-c', '-C', '/dev/null', '-d', d, '-S', KVER];
    const k = runKmod('modprobe', args, { cmdline: '', cwd: FIX });
    const t = runKmodts('modprobe', args, { cmdline: '', cwd: FIX });
    expect(k.stderr).toContain('modules.softdep line 5');
    expect(t).toEqual(k);
  });

  it('the Debian tree (configuration and index dump)', () => {
    const ref = reference();
    const args = ['-c', '-d', ref.KTREE, '-S', ref.KVER, '-C', abs('etc')];
    const k = runKmod('modprobe', args, { cmdline: cmdlines[8] });
    const t = runKmodts('modprobe', args, { cmdline: cmdlines[8] });
    expect(k.stdout.length).toBeGreaterThan(100000);
    expect(t).toEqual(k);
  });
});
