// Differential suite: modprobe resolution (-D, -R, -n -v, -r -n -v, -c, errors, option parsing),
// kmod 34.2 vs kmodts on the Debian 6.12 cloud-amd64 tree. kmod runs as a pool of processes; kmodts
// runs in-process (plus a spawned sample of the real CLI). Every case must be byte-identical.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { describeMismatch, runKmodMany, runKmodtsInProcess, type ToolCase } from '../support/kmod-pool';
import { moduleDir, reference, repoRoot, runKmod, runKmodts, type RunResult } from '../support/reference';

const ref = reference();
const MODDIR = moduleDir(ref);
const TREE = ['-d', ref.KTREE, '-S', ref.KVER];
const RESOLVE_CONF = path.join(repoRoot, 'test/fixtures/modprobe-resolve/resolve.conf');
const CONFIG_FIXTURES = path.join(repoRoot, 'test/fixtures/modprobe.d');

/** module names, in modules.dep order */
function moduleNames(): string[] {
  return fs
    .readFileSync(path.join(MODDIR, 'modules.dep'), 'latin1')
    .split('\n')
    .filter((l) => l.includes(':'))
    .map((l) => path.basename(l.slice(0, l.indexOf(':'))).replace(/\..*$/, ''));
}

/** A device string the glob pattern matches: '*' -> star (default "X1"), '?' -> 'q', [set] -> its first character. */
export function concreteFromPattern(p: string, star = 'X1'): string {
  let out = '';
  for (let i = 0; i < p.length; i++) {
    const c = p[i];
    if (c === '*') out += star;
    else if (c === '?') out += 'q';
    else if (c === '[') {
      const close = p.indexOf(']', i + 2);
      if (close < 0) {
        out += c;
        continue;
      }
      let first = p[i + 1] === '!' || p[i + 1] === '^' ? '' : p[i + 1];
      if (first === '') first = p[i + 2] === 'z' ? 'a' : 'z';
      out += first;
      i = close;
    } else if (c === '\\' && i + 1 < p.length) out += p[++i];
    else out += c;
  }
  return out;
}

function aliasStrings(star?: string): string[] {
  return fs
    .readFileSync(path.join(MODDIR, 'modules.alias'), 'latin1')
    .split('\n')
    .filter((l) => l.startsWith('alias '))
    .map((l) => concreteFromPattern(l.split(' ')[1], star));
}

// ---- a fake /sys/module with some loaded, busy, coming and odd modules ------------------------
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-modprobe-diff-'));
const SYS_MODULE = path.join(scratch, 'sys-module');
function fakeModule(name: string, files: Record<string, string>, holders: string[] = []): void {
  const d = path.join(SYS_MODULE, name);
  fs.mkdirSync(path.join(d, 'holders'), { recursive: true });
  for (const [f, v] of Object.entries(files)) fs.writeFileSync(path.join(d, f), v);
  for (const h of holders) fs.symlinkSync(`../../${h}`, path.join(d, 'holders', h));
}
fakeModule('sunrpc', { initstate: 'live\n', refcnt: '3\n' }, ['lockd', 'auth_rpcgss', 'nfs_acl']);
fakeModule('grace', { initstate: 'live\n', refcnt: '0\n' });
fakeModule('lockd', { initstate: 'live\n', refcnt: '0\n' });
fakeModule('vsock', { initstate: 'live\n', refcnt: '1\n' }, ['vsock_loopback']);
fakeModule('vsock_loopback', { initstate: 'live\n', refcnt: '0\n' });
fakeModule('vmw_vsock_virtio_transport_common', { initstate: 'live\n', refcnt: '0\n' });
fakeModule('xfs', { initstate: 'coming\n', refcnt: '0\n' });
fakeModule('btrfs', { initstate: 'going\n', refcnt: '0\n' });
fakeModule('dm_mod', { initstate: 'bogus\n', refcnt: '0\n' });
fakeModule('loop', { refcnt: '0\n' }); // a directory without initstate: "coming" to libkmod
fakeModule('ext4', { initstate: 'live\n' }); // builtin by modules.builtin anyway

// a tree with the indexes but without module files (dependencies are stat()ed), and a copy of one module
const BARE_ROOT = path.join(scratch, 'bare');
fs.mkdirSync(path.join(BARE_ROOT, 'lib/modules', ref.KVER), { recursive: true });
for (const f of fs.readdirSync(MODDIR)) if (f.startsWith('modules.')) fs.copyFileSync(path.join(MODDIR, f), path.join(BARE_ROOT, 'lib/modules', ref.KVER, f));
const COPIED_SUNRPC = path.join(scratch, 'copy', 'sunrpc.ko.xz');
fs.mkdirSync(path.dirname(COPIED_SUNRPC));
fs.copyFileSync(path.join(MODDIR, 'kernel/net/sunrpc/sunrpc.ko.xz'), COPIED_SUNRPC);

/** a copy of the tree's indexes with one file changed (module files through a symlink) */
function treeWith(name: string, file: string, change: (b: Buffer) => Buffer): string {
  const root = path.join(scratch, name);
  const dir = path.join(root, 'lib/modules', ref.KVER);
  fs.mkdirSync(dir, { recursive: true });
  for (const f of fs.readdirSync(MODDIR)) if (f.startsWith('modules.')) fs.copyFileSync(path.join(MODDIR, f), path.join(dir, f));
  fs.symlinkSync(path.join(MODDIR, 'kernel'), path.join(dir, 'kernel'));
  fs.writeFileSync(path.join(dir, file), change(fs.readFileSync(path.join(dir, file))));
  return root;
}
const badMagic = (b: Buffer): Buffer => {
  const c = Buffer.from(b);
  c.writeUInt32BE(0x12345678, 0);
  return c;
};
const badVersion = (b: Buffer): Buffer => {
  const c = Buffer.from(b);
  c.writeUInt32BE(0x00030001, 4);
  return c;
};
const BROKEN_TREES = [
  treeWith('bad-dep-magic', 'modules.dep.bin', badMagic),
  treeWith('bad-alias-version', 'modules.alias.bin', badVersion),
  treeWith('bad-builtin-alias-magic', 'modules.builtin.alias.bin', badMagic),
  treeWith('bad-builtin-magic', 'modules.builtin.bin', badMagic),
  treeWith('short-symbols', 'modules.symbols.bin', (b) => b.subarray(0, 8)),
  treeWith('empty-builtin', 'modules.builtin.bin', () => Buffer.alloc(0)),
];

interface Family {
  name: string;
  cases: ToolCase[];
}

const t = (...args: string[]): ToolCase => ({ args: [...TREE, ...args] });
const withConf = (...args: string[]): ToolCase => ({ args: [...TREE, '-C', RESOLVE_CONF, ...args] });
const withSys = (c: ToolCase): ToolCase => ({ ...c, sysModule: SYS_MODULE });

const resolveNames = ['my-nfs', 'wild-thing', 'multi-x', 'ghost', 'nfsd', 'lockd', 'sunrpc', 'xfs', 'cmdonly', 'vsock',
  'net-pf-40', 'net-pf-99', 'hv_sock', 'vsock_loopback', 'btrfs', 'e1000', 'e1000e', 'loop', 'ext4', 'crypto-md5',
  'grace', 'vmw_vsock_virtio_transport', 'symbol:nfsd4_ssc_init_umount_work', 'nonexist'];

function families(): Family[] {
  const mods = moduleNames();
  const aliases = aliasStrings();
  const f: Family[] = [
    { name: '-D <every module>', cases: mods.map((m) => t('-D', m)) },
    { name: '-R <every module>', cases: mods.map((m) => t('-R', m)) },
    { name: '-D <every modules.alias pattern, made concrete>', cases: aliases.map((a) => t('-D', a)) },
    { name: '-R <every modules.alias pattern, made concrete>', cases: aliases.map((a) => t('-R', a)) },
    { name: "-R <every modules.alias pattern, '*' matching nothing>", cases: aliasStrings('').map((a) => t('-R', a)) },
  ];
  const sample = mods.filter((_, i) => i % 25 === 0);
  f.push({
    name: '-n -v / -r -n -v samples (real /sys)',
    cases: [...sample.map((m) => t('-n', '-v', m)), ...sample.map((m) => t('-r', '-n', '-v', m)), ...sample.map((m) => t('-n', m))],
  });
  const ops: string[][] = [['-D'], ['-R'], ['-n', '-v'], ['-r', '-n', '-v'], ['-D', '-i'], ['-n', '-v', '-b'], ['-r', '-n', '-v', '-i'],
    ['-n', '-v', '--first-time'], ['-r', '-n', '--first-time'], ['-r', '-n', '-v', '--remove-holders'], ['-n', '-v', '-a', 'nonexist']];
  f.push({
    name: 'resolution config (-C resolve.conf), fake /sys',
    // removal against the real /sys would depend on the machine (and kmod crashes on softdep loops of
    // loaded modules): -r runs only against the fake /sys
    cases: ops.flatMap((op) => resolveNames.flatMap((n) => (op[0] === '-r' ? [withSys(withConf(...op, n))] : [withSys(withConf(...op, n)), withConf(...op, n)]))),
  });
  f.push({
    name: 'module options on the command line',
    cases: [
      withConf('-D', 'nfsd', 'a=1', 'b=x y', "c='q r'", 'd="s t"', 'e', 'f=', '=g h'),
      withConf('-D', 'sunrpc', 'x=1'),
      withConf('-D', '-i', 'sunrpc', 'x=1'),
      withConf('-n', '-v', 'my-nfs', 'p=1'),
      withConf('-D', 'multi-x', 'p=1'),
      withConf('-D', 'lockd', ''),
      t('-D', 'vsock', ''),
      t('-D', 'vsock', 'a b'),
      t('-D', 'nfsd', 'opt with space=1 2'),
    ],
  });
  const cmdlines = [
    'nfsd.kcmd=1 sunrpc.x="a b" lockd.flag modprobe.blacklist=vsock_loopback,hv_sock',
    '"nfsd.quoted=a b c" nfs-acl.p=1 nfs_acl.q=2 modprobe.blacklist=nfsd',
    'BOOT_IMAGE=/vmlinuz ro quiet grace.g=1 -- nfsd.after_dashes=1',
  ];
  f.push({
    name: 'kernel command lines',
    cases: cmdlines.flatMap((cmdline) =>
      [['-D', 'nfsd'], ['-n', '-v', 'net-pf-40'], ['-n', '-v', '-b', 'nfsd'], ['-D', 'nfsd', 'extra=1'], ['-D', 'lockd'], ['-R', 'nfsd']].flatMap((a) => [
        { ...t(...a), cmdline },
        { ...withConf(...a), cmdline },
      ]),
    ),
  });
  // the configuration engineer's fixtures (test/fixtures/modprobe.d): every name they mention, resolved
  const fixtureFiles = ['etc', 'run', 'usr-local-lib', 'usr-lib', 'lib', 'single']
    .flatMap((d) => fs.readdirSync(path.join(CONFIG_FIXTURES, d)).map((f) => path.join(CONFIG_FIXTURES, d, f)))
    .concat(fs.readdirSync(path.join(CONFIG_FIXTURES, 'cases')).map((f) => path.join(CONFIG_FIXTURES, 'cases', f)))
    .filter((f) => fs.statSync(f, { throwIfNoEntry: false })?.isFile() === true);
  const fixtureCases: ToolCase[] = [];
  for (const file of fixtureFiles) {
    const words = new Set<string>();
    for (const line of fs.readFileSync(file, 'latin1').split('\n')) {
      const w = line.trim().split(/[ \t]+/);
      if (['alias', 'options', 'install', 'remove', 'softdep', 'weakdep', 'blacklist'].includes(w[0])) {
        for (const x of w.slice(1, w[0] === 'alias' ? 3 : 2)) if (/^[\w:*?[\]!-]+$/.test(x)) words.add(x.replace(/[*?]/g, 'z'));
      }
    }
    for (const n of [...words].slice(0, 12)) {
      fixtureCases.push(t('-C', file, '-D', n), t('-C', file, '-R', n), t('-C', file, '-n', '-v', '-i', n));
    }
  }
  f.push({ name: 'names from the modprobe.d fixtures (-C each file)', cases: fixtureCases });
  f.push({
    name: 'index files refused by their header (bad magic, version, short, empty)',
    cases: BROKEN_TREES.flatMap((root) =>
      [['-D', 'nfsd'], ['-R', 'net-pf-40'], ['-D', 'crypto-md5'], ['-D', 'ext4'], ['-R', 'symbol:svc_rqst_replace_page'], ['-c'], ['-q', '-D', 'nfsd']].map((a) => ({ args: ['-d', root, '-S', ref.KVER, ...a] })),
    ),
  });
  const here = { cwd: MODDIR };
  f.push({
    name: 'unknown names, paths, bad input',
    cases: [
      t('nonexist'), t('-D', 'nonexist'), t('-R', 'nonexist'), t('-q', 'nonexist'), t('-a', 'nonexist', 'vsock', 'nonexist2'),
      t('-a', '-n', '-v', 'nonexist', 'vsock', 'nonexist2'), t('-D', 'bad]name'), t('-D', 'open[bracket'), t('-D', ''),
      t('-D', 'symbol:nonexist'), t('-D', 'symbol:nfs*'), t('-r', 'nonexist'), t('-r', '-a', 'nonexist', 'ext4', 'vsock'),
      t('-r', 'bad]name'), t('-r', '-n', 'ext4'), t('-r', '-n', '--first-time', 'nfsd'), t('-n', '--first-time', 'ext4'),
      t('-D', path.join(MODDIR, 'kernel/fs/nfsd/nfsd.ko.xz')), t('-D', '/nonexistent/x.ko'),
      { ...t('-D', './kernel/fs/nfsd/nfsd.ko.xz'), ...here }, { ...t('-R', './kernel/fs/nfsd/nfsd.ko.xz'), ...here },
      t('-D', 'kernel/fs/nfsd/nfsd.ko.xz'),
      ...['*', '?', '[a-z]*', 'pci:*', '\\', 'symbol:', 'symbol:*', 'x\\*', '-', '_', 'a b', 'nfsd.ko', 'NFSD'].flatMap((w) => [t('-R', w), t('-D', w)]),
      { args: ['-d', path.join(scratch, 'no-such-root'), '-S', ref.KVER, '-D', 'nfsd'] },
      { args: ['-d', BARE_ROOT, '-S', ref.KVER, '-D', 'nfsd'] }, { args: ['-d', BARE_ROOT, '-S', ref.KVER, '-D', 'lockd'] },
      { args: ['-d', BARE_ROOT, '-S', ref.KVER, '-n', '-v', 'nfsd'] }, { args: ['-d', BARE_ROOT, '-S', ref.KVER, '-r', '-n', '-v', 'nfsd'] },
      { args: ['-d', BARE_ROOT, '-S', ref.KVER, '-R', 'nfsd'] }, { args: ['-d', BARE_ROOT, '-S', ref.KVER, '-c'] },
      t('-D', '-a', COPIED_SUNRPC, 'nfsd'), t('-D', '-a', 'nfsd', COPIED_SUNRPC), t('-D', COPIED_SUNRPC), t('-R', COPIED_SUNRPC),
      { args: ['-S', 'no-such-version', '-D', 'nfsd'] },
      { args: ['-d', ref.KTREE, '-D', 'nfsd'] },
      { args: ['-d', path.relative(repoRoot, ref.KTREE), '-S', ref.KVER, '-D', 'nfsd'], cwd: repoRoot },
      { args: ['-d', path.relative(repoRoot, ref.KTREE), '-S', ref.KVER, '-D', 'nonexist'], cwd: repoRoot },
      { args: ['-d', `${ref.KTREE}/`, '-S', ref.KVER, '-D', 'nfsd'] },
      { args: ['-d', '', '-S', ref.KVER, '-D', 'nfsd'] },
      t('--show-modversions', '/nonexistent.ko'), t('--show-exports', '/nonexistent.ko'),
      t('--show-modversions', path.join(MODDIR, 'kernel/fs/nfs_common/grace.ko.xz')),
      t('--show-exports', path.join(MODDIR, 'kernel/fs/nfs_common/grace.ko.xz')),
      t('--dump-modversions', path.join(MODDIR, 'kernel/net/vmw_vsock/vsock.ko.xz')),
    ],
  });
  f.push({
    name: 'option parsing (glibc getopt_long) and MODPROBE_OPTIONS',
    cases: [
      t(), t('-q'), t('-v'), t('--bogus'), t('-z'), t('-C'), t('--config'), t('-Dz', 'nfsd'), t('--show', 'nfsd'), t('--show-', 'nfsd'),
      t('--show-d', 'nfsd'), t('--remove-', '-n', 'nfsd'), t('--dry-run=1', 'nfsd'), t('--dry', '-v', 'nfsd'), t('--resolve', 'vsock'),
      t('-w', 'abc', '-r', 'nfsd'), t('-w', '', '-r', 'nfsd'), t('--wait=0x10', '-r', '-n', '-v', 'grace'), t('-w', '010', '-r', '-n', 'grace'),
      t('-w', ' 5', '-r', '-n', 'grace'), t('-w', '5x', '-r', 'grace'), t('--bogus', '-V'),
      t('-nv', 'nfsd'), t('-vvv', '-n', 'vsock'), t('-vq', '-n', 'vsock'), t('-qv', '-n', 'vsock'), t('nfsd', '-D'), t('-D', '--', '-x'),
      t('-D', 'vsock', '--', '-i'), t('-Cnone', '-D', 'nfsd'), t(`--config=${RESOLVE_CONF}`, '-D', 'my-nfs'), t('-c', '-C', RESOLVE_CONF),
      t('-c', '-C', '/dev/null'), t('-c', '-C', RESOLVE_CONF, '-C', path.join(CONFIG_FIXTURES, 'etc')), t('-c', 'extra', 'args'),
      t('-c'), t('-D', '-c', 'nfsd'), t('-R', '-D', 'nfsd'), t('-r', '-c'), t('-a'), t('-r'), t('--show-exports'), t('-s', 'nonexist'),
      t('--first-time', '-D', 'ext4'), t('-f', '-D', 'nfsd'), t('--force-vermagic', '--force-modversion', '-D', 'nfsd'),
      { ...t('-D', 'nfsd'), env: { MODPROBE_OPTIONS: '-v -q' } },
      { ...t('nfsd'), env: { MODPROBE_OPTIONS: '-D' } },
      { ...t('nfsd'), env: { MODPROBE_OPTIONS: '"-D" -i' } },
      { ...t('-n', 'nfsd'), env: { MODPROBE_OPTIONS: '-v  -i' } },
      { ...t('-n', '-v', 'nfsd'), env: { MODPROBE_OPTIONS: `-C '${RESOLVE_CONF}'` } },
      { ...t('-n', '-v', 'nfsd'), env: { MODPROBE_OPTIONS: `'-C' ${RESOLVE_CONF} ` } },
      { ...t('-D', 'nfsd'), env: { MODPROBE_OPTIONS: '--bogus' } },
      { ...t('-D', 'nfsd'), env: { MODPROBE_OPTIONS: '' } },
      { ...t('-D', 'nfsd'), env: { MODPROBE_OPTIONS: 'a"b c"d -D' } },
      { ...t('nfsd', '-D'), env: { POSIXLY_CORRECT: '1' } },
      { ...t('-D', 'nfsd'), env: { KMOD_LOG: 'debug' } },
    ],
  });
  return f;
}

const fams = families();
const kmodResults = new Map<string, RunResult[]>();

beforeAll(async () => {
  for (const fam of fams) kmodResults.set(fam.name, await runKmodMany('modprobe', fam.cases));
}, 600_000);

describe('modprobe vs kmod 34.2', () => {
  for (const fam of fams) {
    it(fam.name, async () => {
      const kmod = kmodResults.get(fam.name)!;
      const mismatches: string[] = [];
      for (let i = 0; i < fam.cases.length; i++) {
        const ours = await runKmodtsInProcess('modprobe', fam.cases[i]);
        const d = describeMismatch(fam.cases[i], kmod[i], ours);
        if (d !== undefined) mismatches.push(d);
      }
      console.log(`${fam.name}: ${fam.cases.length - mismatches.length}/${fam.cases.length} identical`);
      expect(mismatches.slice(0, 20)).toEqual([]);
      expect(fam.cases.length).toBeGreaterThan(0);
    });
  }

  it('-V: kmod 34.2 with every feature kmodts has (+ZLIB where Debian\'s build says -ZLIB; docs/compat.md)', async () => {
    for (const args of [['-V'], ['--version', '--bogus'], ['-qV', 'x']]) {
      const kmod = runKmod('modprobe', args);
      const ours = await runKmodtsInProcess('modprobe', { args });
      expect(kmod.stdout).toBe('kmod version 34.2\n+ZSTD +XZ -ZLIB +OPENSSL\n');
      expect(ours.stdout).toBe('kmod version 34.2\n+ZSTD +XZ +ZLIB +OPENSSL\n');
      expect([ours.status, ours.stderr]).toEqual([kmod.status, kmod.stderr]);
    }
  });

  it('help: stdout and exit 0 like kmod (our own wording)', async () => {
    const kmod = runKmod('modprobe', ['-h']);
    const ours = await runKmodtsInProcess('modprobe', { args: ['-h'] });
    expect(ours.status).toBe(kmod.status);
    expect(ours.stderr).toBe(kmod.stderr);
    expect(ours.stdout).toMatch(/^Usage:\n\tmodprobe \[options\]/);
    expect(ours.stdout).not.toBe(kmod.stdout);
  });

  it('an index whose nodes point outside the file: kmodts names the file and fails (kmod reads out of bounds)', async () => {
    const root = treeWith('bad-node', 'modules.dep.bin', (b) => {
      const c = Buffer.from(b);
      const root = c.readUInt32BE(8);
      c.writeUInt32BE(((root & 0xf0000000) | 0x0fffff00) >>> 0, 8);
      return c;
    });
    const ours = await runKmodtsInProcess('modprobe', { args: ['-d', root, '-S', ref.KVER, '-D', 'nfsd'] });
    expect(ours.status).toBe(1);
    expect(ours.stdout).toBe('');
    expect(ours.stderr).toBe(`modprobe: ERROR: ${root}/lib/modules/${ref.KVER}/modules.dep.bin: node reference out of range at offset 268435200\n`);
  });

  it('a softdep loop between loaded modules during removal: kmod crashes, kmodts stops with an error', async () => {
    const sys = path.join(scratch, 'loop-sys');
    fs.mkdirSync(path.join(sys, 'vsock'), { recursive: true });
    fs.writeFileSync(path.join(sys, 'vsock', 'initstate'), 'live\n');
    fs.mkdirSync(path.join(sys, 'vmw_vsock_virtio_transport'), { recursive: true });
    fs.writeFileSync(path.join(sys, 'vmw_vsock_virtio_transport', 'initstate'), 'live\n');
    const c: ToolCase = { ...withConf('-r', '-n', '-v', 'vsock'), sysModule: sys };
    const [kmod] = await runKmodMany('modprobe', [c]);
    expect(kmod.status).toBeGreaterThan(128); // SIGSEGV from unbounded recursion
    const ours = await runKmodtsInProcess('modprobe', c);
    expect(ours.status).toBe(1);
    expect(ours.stderr).toBe('modprobe: ERROR: soft dependency loop while removing vsock\n');
    expect(ours.stdout).toBe('rmmod vmw_vsock_virtio_transport\n');
  });

  it('install and remove commands really run (spawned CLI: the commands write to the real stdout)', async () => {
    const conf = path.join(repoRoot, 'test/fixtures/modprobe-resolve/commands.conf');
    const sysDir = path.join(scratch, 'sys-for-cli');
    if (!fs.existsSync(sysDir)) {
      fs.mkdirSync(sysDir);
      fs.symlinkSync(SYS_MODULE, path.join(sysDir, 'module'));
    }
    const cases: ToolCase[] = [
      ['cmdonly'], ['-v', 'cmdonly', 'a=1', 'b=x y'], ['failcmd'], ['-v', 'failcmd'], ['-q', 'failcmd'], ['-v', 'sunrpc', 'x=1'],
      ['-i', '-n', '-v', 'sunrpc'], ['-r', 'cmdonly'], ['-r', '-v', 'cmdonly'], ['-r', 'failrm'], ['-r', '-q', 'failrm'], ['-a', '-r', 'failrm', 'cmdonly'],
      ['-r', '-v', 'grace'], ['-v', '-q', '-v', 'cmdonly'],
    ].map((a) => ({ args: [...TREE, '-C', conf, ...a], sysModule: SYS_MODULE }));
    const kmod = await runKmodMany('modprobe', cases);
    const mismatches: string[] = [];
    cases.forEach((c, i) => {
      const ours = runKmodts('modprobe', c.args, { env: { KMODTS_SYS_DIR: sysDir } });
      const d = describeMismatch(c, kmod[i], ours);
      if (d !== undefined) mismatches.push(d);
    });
    console.log(`install/remove commands run: ${cases.length - mismatches.length}/${cases.length} identical`);
    expect(mismatches).toEqual([]);
    expect(kmod[1].stdout).toContain(`install cmdonly [-C ${conf} -v] <c=1 a=1 b=x y>`);
  });

  it('the real CLI (spawned) agrees on a sample', () => {
    const sample: string[][] = [
      [...TREE, '-D', 'nfsd'], [...TREE, '-R', 'net-pf-40'], [...TREE, '-D', 'nonexist'], [...TREE, '-c'],
      [...TREE, '-C', RESOLVE_CONF, '-D', 'lockd'], [...TREE, '--bogus'], [...TREE, '-r', '-n', '-v', 'nfsd'],
    ];
    for (const args of sample) {
      const kmod = runKmod('modprobe', args);
      const ours = runKmodts('modprobe', args);
      expect(describeMismatch({ args }, kmod, ours)).toBeUndefined();
    }
  });

  it('stdout and stderr on one pipe (`2>&1`) interleave as kmod\'s: stdout goes out in whole 4096-byte buffers', () => {
    const mixed = moduleNames().slice(0, 600).flatMap((n, i) => (i % 11 === 0 ? [`no_such_${i}`, n] : [n]));
    const args = [...TREE, '-D', '-a', ...mixed];
    const wrap = ['sh', '-c', '"$@" 2>&1', 'sh'];
    const kmod = runKmod('modprobe', args, { wrap });
    const ours = runKmodts('modprobe', args, { wrap });
    expect(kmod.stdout.length).toBeGreaterThan(20_000);
    expect(describeMismatch({ args }, kmod, ours)).toBeUndefined();
  });
});
