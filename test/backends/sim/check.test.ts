// kmodts check: on the example tree (exact text, JSON against its schema, exit statuses, colour) and on the
// Debian 6.12 tree with its Module.symvers: good modules load; tampered copies of real Debian modules fail
// for the exact reason (CRC, vermagic, namespace, GPL-only, unknown symbol, truncated file), and so do
// out-of-tree modules built against that kernel with test/support/elf-writer.ts.
import Ajv2020 from 'ajv/dist/2020';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildModule } from '../../support/elf-writer';
import { moduleDir, reference, repoRoot } from '../../support/reference';

const dist = path.join(repoRoot, 'dist');
const { main } = require(path.join(dist, 'cli/main.js')) as typeof import('../../../src/cli/main');
const { captureIo } = require(path.join(dist, 'cli/io.js')) as typeof import('../../../src/cli/io');
const { decompress } = require(path.join(dist, 'file/decompress.js')) as typeof import('../../../src/file/decompress');

const ajv = new Ajv2020({ strict: true, allErrors: true });
const validate = ajv.compile(JSON.parse(fs.readFileSync(path.join(repoRoot, 'docs/json-schema/check.json'), 'utf8')));

async function kmodts(args: string[], env: NodeJS.ProcessEnv = {}, tty = false): Promise<{ out: string; err: string; status: number }> {
  const io = captureIo({ HOME: scratch, ...env });
  io.stdoutIsTTY = tty;
  const status = await main('kmodts', args, io);
  return { out: io.out(), err: io.err(), status };
}

function checkDoc(out: string): any {
  const doc = JSON.parse(out);
  if (!validate(doc)) throw new Error(ajv.errorsText(validate.errors));
  return doc;
}

let scratch: string;
beforeAll(() => {
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-check-test-'));
});
afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));

const exampleRoot = path.join(repoRoot, 'examples/tree');
const ex = ['check', '-d', exampleRoot, '-S', '6.12.0-example'];
const oot = (f: string): string => path.join(repoRoot, 'examples/out-of-tree', f);

describe('kmodts check on the example tree', () => {
  it('says which modules load and why the others do not', async () => {
    const r = await kmodts([...ex, 'greet_fancy', 'greet:bonjour', oot('greet_extra.ko'), oot('greet_closed.ko'), oot('greet_stale.ko'), 'nothere']);
    expect(r.err).toBe('');
    expect(r.status).toBe(1);
    expect(r.out).toBe(
      [
        'ok    greet_fancy: loads greet_core greet_log greet_hello greet_fancy',
        '      kernel: greet_core: module verification failed: signature and/or required key missing - tainting kernel',
        'ok    greet:bonjour: loads greet_core greet_bonjour (built in: greet_plain)',
        '      kernel: greet_core: module verification failed: signature and/or required key missing - tainting kernel',
        `ok    ${oot('greet_extra.ko')}: loads greet_core greet_log greet_hello greet_extra`,
        '      kernel: greet_core: module verification failed: signature and/or required key missing - tainting kernel',
        '      kernel: greet_extra: loading out-of-tree module taints kernel.',
        `FAIL  ${oot('greet_closed.ko')}: greet_closed does not load`,
        "      greet_closed uses greet_register, exported GPL-only by greet_core, but its licence 'Proprietary' is not GPL-compatible",
        '      kernel: greet_core: module verification failed: signature and/or required key missing - tainting kernel',
        '      kernel: greet_closed: loading out-of-tree module taints kernel.',
        "      kernel: greet_closed: module license 'Proprietary' taints kernel.",
        '      kernel: Disabling lock debugging due to kernel taint',
        '      kernel: greet_closed: module license taints kernel.',
        '      kernel: greet_closed: Unknown symbol greet_register (err -2)',
        `FAIL  ${oot('greet_stale.ko')}: greet_stale does not load`,
        '      greet_stale was built against another version of greet_count: CRC 0x5a82c107 in the module, 0x7b6185f1 in greet_core',
        '      kernel: greet_core: module verification failed: signature and/or required key missing - tainting kernel',
        '      kernel: greet_stale: loading out-of-tree module taints kernel.',
        '      kernel: greet_stale: disagrees about version of symbol greet_count',
        '      kernel: greet_stale: Unknown symbol greet_count (err -22)',
        `FAIL  nothere: no module or alias nothere in ${exampleRoot}/lib/modules/6.12.0-example`,
        '3 of 6 do not load on 6.12.0-example.',
        '',
      ].join('\n'),
    );
  });

  it("shows, in text, every kernel log line of the JSON output (not only the failing module's)", async () => {
    const args = [...ex, 'greet_fancy', oot('greet_extra.ko'), oot('greet_closed.ko')];
    const doc = checkDoc((await kmodts(['--json', ...args])).out);
    const text = (await kmodts(args)).out;
    const shown = text.split('\n').filter((l) => l.startsWith('      kernel: ')).map((l) => l.slice('      kernel: '.length));
    expect(shown).toEqual(doc.results.flatMap((r: { kernelLog: string[] }) => r.kernelLog));
    expect(shown).toContain('Disabling lock debugging due to kernel taint');
  });

  it('exits 0 when all load, prints nothing with -q, and 2 when it cannot run', async () => {
    expect(await kmodts([...ex, 'greet_fancy', 'greet_bonjour'])).toMatchObject({ status: 0, err: '' });
    expect(await kmodts([...ex, '-q', 'greet_fancy'])).toEqual({ out: '', err: '', status: 0 });
    expect(await kmodts([...ex, '-q', oot('greet_stale.ko')])).toEqual({ out: '', err: '', status: 1 });
    expect(await kmodts([...ex])).toMatchObject({ status: 2, out: '' });
    expect(await kmodts([...ex, '--bogus', 'x'])).toEqual({ out: '', err: "kmodts check: unrecognized option '--bogus'\n", status: 2 });
    expect(await kmodts([...ex, '--color=sometimes', 'x'])).toMatchObject({ status: 2, out: '' });
    const noSymvers = await kmodts(['check', '-d', scratch, '-S', '6.12.0-example', 'x']);
    expect(noSymvers.status).toBe(2);
    expect(noSymvers.err).toMatch(/^kmodts check: no module directory /);
    fs.mkdirSync(path.join(scratch, 'root/lib/modules/6.12.0-example'), { recursive: true });
    const bare = await kmodts(['check', '-d', path.join(scratch, 'root'), 'x']);
    expect(bare.status).toBe(2);
    expect(bare.err).toMatch(/^kmodts check: no Module\.symvers for kernel 6\.12\.0-example \(looked in .*\); give one with -E\n$/);
  });

  it('applies a modprobe.d configuration given with -C (blacklist, options, install commands not run)', async () => {
    const conf = path.join(scratch, 'check.conf');
    fs.writeFileSync(conf, 'blacklist greet_bonjour\noptions greet_hello times=lots\ninstall greet_log /bin/false\n');
    const doc = checkDoc((await kmodts(['--json', ...ex, '-C', conf, 'greet:bonjour', 'greet_bonjour', 'greet_hello', 'greet_log'])).out);
    const [alias, name, hello, log] = doc.results;
    expect(alias.failure).toMatchObject({ module: 'greet_bonjour', problems: [{ reason: 'blacklisted' }] });
    expect(name).toMatchObject({ ok: true, loaded: ['greet_core', 'greet_bonjour'] });
    expect(hello.failure).toMatchObject({ module: 'greet_hello', errno: 22, problems: [{ reason: 'bad-parameter' }] });
    expect(hello.failure.problems[0].detail).toBe("greet_hello: value 'lots' is not valid for parameter times");
    // the install command stands in for loading greet_log: it is not run, and nothing is loaded
    expect(log).toMatchObject({ ok: true, loaded: [], installCommands: ['greet_log'] });
    const text = await kmodts([...ex, '-C', conf, 'greet_log']);
    expect(text.out).toBe('ok    greet_log: loads nothing (install command, not run: greet_log)\nIt loads on 6.12.0-example.\n');
  });

  it('checks every module of the tree with --all', async () => {
    const r = await kmodts([...ex, '--all']);
    expect(r.status).toBe(0);
    expect(r.out.split('\n').filter((l) => l.startsWith('ok    ')).length).toBe(5);
    expect(r.out).toMatch(/All 5 load on 6\.12\.0-example\.\n$/);
  });

  it('colours on a terminal or with --color=always, not when piped or with NO_COLOR', async () => {
    const args = [...ex, oot('greet_stale.ko'), 'greet_log'];
    expect((await kmodts(args, {}, true)).out).toContain('\x1b[31mFAIL\x1b[39m');
    expect((await kmodts(args, {}, true)).out).toContain('\x1b[32mok  \x1b[39m');
    expect((await kmodts([...ex, '--color=always', 'greet_log'])).out).toContain('\x1b[32m');
    expect((await kmodts(args, {})).out).not.toContain('\x1b');
    expect((await kmodts(args, { NO_COLOR: '1' }, true)).out).not.toContain('\x1b');
    expect((await kmodts([...ex, '--color=never', 'greet_log'], {}, true)).out).not.toContain('\x1b');
  });

  it('gives the same results as JSON, valid against docs/json-schema/check.json', async () => {
    const r = await kmodts(['--json', ...ex, 'greet_fancy', oot('greet_closed.ko'), oot('greet_stale.ko'), 'nothere']);
    expect(r.status).toBe(1);
    const doc = checkDoc(r.out);
    expect(doc.kernel).toEqual({
      version: '6.12.0-example',
      moduleDirectory: `${exampleRoot}/lib/modules/6.12.0-example`,
      vermagic: '6.12.0-example SMP preempt mod_unload modversions ',
      symvers: `${exampleRoot}/lib/modules/6.12.0-example/build/Module.symvers`,
    });
    expect(doc.summary).toEqual({ checked: 4, load: 1, fail: 3 });
    const [fancy, closed, stale, nothere] = doc.results;
    expect(fancy).toMatchObject({ ok: true, loaded: ['greet_core', 'greet_log', 'greet_hello', 'greet_fancy'], taints: 'E' });
    expect(closed.failure).toMatchObject({ module: 'greet_closed', errno: 2, problems: [{ reason: 'gpl-only', symbol: 'greet_register' }] });
    expect(closed.taints).toContain('P');
    expect(stale.failure).toMatchObject({ module: 'greet_stale', errno: 22, problems: [{ reason: 'symbol-version', symbol: 'greet_count' }] });
    expect(nothere.failure).toMatchObject({ module: 'nothere', problems: [{ reason: 'not-found' }] });
  });
});

/** A Debian module, decompressed, with its signature trailer removed (tampering would break it anyway). */
function debianModule(rel: string): Buffer {
  const raw = decompress(fs.readFileSync(path.join(moduleDir(), rel)), rel);
  const magic = '~Module signature appended~\n';
  if (raw.toString('latin1', raw.length - magic.length) !== magic) return raw;
  const sigLen = raw.readUInt32BE(raw.length - magic.length - 4);
  return raw.subarray(0, raw.length - magic.length - 12 - sigLen);
}

/** Section [offset, size] by name (ELF64 little endian). */
function section(elf: Buffer, name: string): [number, number] {
  const shoff = Number(elf.readBigUInt64LE(40));
  const shnum = elf.readUInt16LE(60);
  const shstr = elf.readUInt16LE(62);
  const strOff = Number(elf.readBigUInt64LE(shoff + shstr * 64 + 24));
  for (let i = 0; i < shnum; i++) {
    const h = shoff + i * 64;
    const n = elf.readUInt32LE(h);
    const end = elf.indexOf(0, strOff + n);
    if (elf.toString('latin1', strOff + n, end) === name) return [Number(elf.readBigUInt64LE(h + 24)), Number(elf.readBigUInt64LE(h + 32))];
  }
  throw new Error(`no section ${name}`);
}

/** Replaces `from` by `to` (same length) inside section `name`. */
function patch(elf: Buffer, name: string, from: string, to: string): Buffer {
  expect(to.length).toBe(from.length);
  const out = Buffer.from(elf);
  const [off, size] = section(out, name);
  const at = out.indexOf(from, off, 'latin1');
  if (at < 0 || at + from.length > off + size) throw new Error(`${from} not in ${name}`);
  out.write(to, at, 'latin1');
  return out;
}

describe('kmodts check on the Debian tree', () => {
  let dir: string;
  let kernelArgs: string[];
  const files: Record<string, Buffer> = {};
  beforeAll(() => {
    const ref = reference();
    kernelArgs = ['check', '-d', ref.KTREE, '-S', ref.KVER, '-E', ref.SYMVERS];
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-check-debian-'));
    const loopback = debianModule('kernel/net/vmw_vsock/vsock_loopback.ko.xz');
    const cxl = debianModule('kernel/drivers/cxl/cxl_pci.ko.xz');
    // the CRC of vsock_core_register in __versions: name at +8, CRC at +0 of a 64-byte entry
    const crc = Buffer.from(loopback);
    const [voff, vsize] = section(crc, '__versions');
    const entry = crc.indexOf('vsock_core_register\0', voff, 'latin1') - 8;
    expect(entry).toBeGreaterThanOrEqual(voff);
    expect(entry).toBeLessThan(voff + vsize);
    crc.writeUInt32LE(crc.readUInt32LE(entry) ^ 0xffff, entry);
    const ksym = symvers(ref.SYMVERS);
    Object.assign(files, {
      'vsock_loopback.ko': loopback,
      'crc.ko': crc,
      // with modversions the kernel compares vermagic after the release: change what follows it
      'vermagic.ko': patch(loopback, '.modinfo', ' SMP preempt mod_unload', ' SMP voluntr mod_unload'),
      'license.ko': patch(loopback, '.modinfo', 'license=GPL v2', 'license=Propri'),
      'unknown.ko': patch(loopback, '.strtab', 'vsock_core_register\0', 'vsock_core_registeX\0'),
      'truncated.ko': loopback.subarray(0, loopback.length >> 1),
      'namespace.ko': patch(cxl, '.modinfo', 'import_ns=CXL', 'import_nx=CXL'),
      'cxl_pci.ko': cxl,
      // out of tree, built against this kernel's Module.symvers
      'dkms_hello.ko': buildModule({
        name: 'dkms_hello',
        vermagic: `${ref.KVER} SMP preempt mod_unload modversions `,
        intree: false,
        moduleLayoutCrc: ksym.get('module_layout'),
        imports: [{ name: '_printk', crc: ksym.get('_printk')! }, { name: 'vsock_core_register', crc: ksym.get('vsock_core_register') ?? null }],
        params: [{ name: 'greeting', type: 'charp', description: 'what to say' }],
        paramOpsCrcs: { param_ops_charp: ksym.get('param_ops_charp')! },
      }),
      'dkms_old.ko': buildModule({
        name: 'dkms_old',
        vermagic: `${ref.KVER} SMP preempt mod_unload modversions `,
        intree: false,
        moduleLayoutCrc: ksym.get('module_layout')! ^ 1,
        imports: [{ name: '_printk', crc: ksym.get('_printk')! }],
      }),
    });
    for (const [n, b] of Object.entries(files)) fs.writeFileSync(path.join(dir, n), b);
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** name → CRC of the vmlinux exports and of the tree's modules' exports */
  function symvers(file: string): Map<string, number> {
    const m = new Map<string, number>();
    for (const line of fs.readFileSync(file, 'latin1').split('\n')) {
      const f = line.split('\t');
      if (f.length >= 4) m.set(f[1], Number.parseInt(f[0], 16));
    }
    return m;
  }

  it('loads good modules of the tree, with their dependencies, and untampered copies', async () => {
    const r = await kmodts(['--json', ...kernelArgs, 'nfsd', 'xfs', 'vsock_loopback', 'cxl_pci', path.join(dir, 'vsock_loopback.ko'), path.join(dir, 'cxl_pci.ko')]);
    const doc = checkDoc(r.out);
    expect(doc.results.map((x: any) => [x.target.replace(dir + '/', ''), x.ok, x.failure?.problems])).toEqual([
      ['nfsd', true, undefined],
      ['xfs', true, undefined],
      ['vsock_loopback', true, undefined],
      ['cxl_pci', true, undefined],
      ['vsock_loopback.ko', true, undefined],
      ['cxl_pci.ko', true, undefined],
    ]);
    expect(r.status).toBe(0);
    expect(doc.results[0].loaded).toEqual(['sunrpc', 'grace', 'lockd', 'nfs_acl', 'auth_rpcgss', 'nfsd']);
    expect(doc.results[0].builtin).toEqual(['md5']);
    expect(doc.results[2].taints).toBe(''); // Debian's signed module verifies against the kernel's key
    expect(doc.results[4].taints).toBe('E'); // the copy has no signature any more
  });

  it('reports each tampered module with the exact reason', async () => {
    const names = ['crc.ko', 'vermagic.ko', 'license.ko', 'unknown.ko', 'truncated.ko', 'namespace.ko', 'dkms_hello.ko', 'dkms_old.ko'];
    const r = await kmodts(['--json', ...kernelArgs, ...names.map((n) => path.join(dir, n))]);
    expect(r.status).toBe(1);
    const doc = checkDoc(r.out);
    const got = Object.fromEntries(
      doc.results.map((x: any) => [path.basename(x.target), x.ok ? 'ok' : x.failure.problems.map((p: any) => `${p.reason}${p.symbol ? ':' + p.symbol : ''}`).join(',')]),
    );
    expect(got).toEqual({
      'crc.ko': 'symbol-version:vsock_core_register',
      'vermagic.ko': 'vermagic',
      'license.ko': expect.stringMatching(/^(gpl-only:\w+,)+gpl-only:\w+$/),
      'unknown.ko': 'unknown-symbol:vsock_core_registeX',
      'truncated.ko': 'invalid-module',
      'namespace.ko': expect.stringMatching(/^(namespace:\w+,)+namespace:\w+$/),
      'dkms_hello.ko': 'ok',
      'dkms_old.ko': 'symbol-version:module_layout',
    });
    const errnos = Object.fromEntries(doc.results.map((x: any) => [path.basename(x.target), x.failure?.errno]));
    expect(errnos).toEqual({
      'crc.ko': 22, 'vermagic.ko': 8, 'license.ko': 2, 'unknown.ko': 2, 'truncated.ko': 8, 'namespace.ko': 22, 'dkms_hello.ko': undefined, 'dkms_old.ko': 8,
    });
    const byName = (n: string): any => doc.results.find((x: any) => path.basename(x.target) === n);
    expect(byName('vermagic.ko').failure.problems[0].detail).toContain(`version magic '${reference().KVER} SMP voluntr mod_unload modversions '`);
    const license = byName('license.ko').failure.problems;
    expect(license.map((p: any) => p.symbol)).toEqual(expect.arrayContaining(['vsock_core_register', 'alloc_workqueue']));
    expect(license.find((p: any) => p.symbol === 'vsock_core_register').detail).toBe(
      "vsock_loopback uses vsock_core_register, exported GPL-only by vsock, but its licence 'Propri' is not GPL-compatible",
    );
    expect(license.find((p: any) => p.symbol === 'alloc_workqueue').detail).toContain('exported GPL-only by the kernel');
    const ns = byName('namespace.ko').failure.problems[0].detail;
    expect(ns).toMatch(/^cxl_pci uses \w+ from namespace CXL without importing it/);
    const text = await kmodts([...kernelArgs, path.join(dir, 'license.ko')]);
    expect(text.out).toMatch(/more like these \(gpl-only\)\n/);
  });
});
