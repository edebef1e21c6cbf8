// Tampered modules fail in the simulated kernel exactly as Linux 6.12 fails them: the errno (through the
// library), kmod's message and exit status (through kmodts' modprobe CLI) and the kernel log lines.
// Each module is taken from the Debian tree, its signature removed (a signed module that was changed
// fails the signature check first, as on the real kernel, which is checked too) and one thing changed.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { moduleClosure } from '../../vm/harness';
import { reference, repoRoot, runKmod } from '../../support/reference';

// the built library (the CLI loads its tools with require(), which needs the compiled files)
const dist = path.join(repoRoot, 'dist');
const { main } = require(path.join(dist, 'cli/main.js')) as typeof import('../../../src/cli/main');
const { captureIo } = require(path.join(dist, 'cli/io.js')) as typeof import('../../../src/cli/io');
const { decompress } = require(path.join(dist, 'file/decompress.js')) as typeof import('../../../src/file/decompress');
const { ElfImage } = require(path.join(dist, 'backends/sim/elf-image.js')) as typeof import('../../../src/backends/sim/elf-image');
const { SimBackend, createSimBackend } = require(path.join(dist, 'backends/sim/index.js')) as typeof import('../../../src/backends/sim');
const { KmodError } = require(path.join(dist, 'errors.js')) as typeof import('../../../src/errors');
const { loadKernelSymbols } = require(path.join(dist, 'backends/sim/kernel-model.js')) as typeof import('../../../src/backends/sim/kernel-model');

const ref = reference();
const srcMods = path.join(ref.KTREE, 'lib/modules', ref.KVER);
let work: string;
let savedEnv: NodeJS.ProcessEnv;

/** The module's ELF without its signature trailer. */
function unsignedImage(rel: string): Buffer {
  const img = decompress(fs.readFileSync(path.join(srcMods, rel)), rel);
  const magic = '~Module signature appended~\n';
  if (img.toString('latin1', img.length - magic.length) !== magic) return Buffer.from(img);
  const sigLen = img.readUInt32BE(img.length - magic.length - 4);
  return Buffer.from(img.subarray(0, img.length - magic.length - 12 - sigLen));
}

interface Sec {
  name: string;
  type: number;
  offset: number;
  size: number;
  info: number;
  link: number;
}

function sections(b: Buffer): Sec[] {
  const e = new ElfImage(b);
  const shoff = e.u64(0x28);
  const n = e.u16(0x3c);
  const str = e.shdr(shoff, e.u16(0x3e));
  const out: Sec[] = [];
  for (let i = 0; i < n; i++) {
    const s = e.shdr(shoff, i);
    out.push({ name: e.cstr(str.offset + s.name), type: s.type, offset: s.offset, size: s.size, info: s.info, link: s.link });
  }
  return out;
}

/** Replaces a string in .modinfo with another of the same length. */
function patchModinfo(b: Buffer, from: string, to: string): void {
  expect(to.length).toBe(from.length);
  const mi = sections(b).find((s) => s.name === '.modinfo') as Sec;
  const at = b.indexOf(from, mi.offset, 'latin1');
  expect(at).toBeGreaterThanOrEqual(mi.offset);
  expect(at).toBeLessThan(mi.offset + mi.size);
  b.write(to, at, 'latin1');
}

/** Undefined symbols of a module (names). */
function undefinedSymbols(b: Buffer): string[] {
  const e = new ElfImage(b);
  const secs = sections(b);
  const sym = secs.find((s) => s.type === 2) as Sec;
  const str = secs[sym.link];
  const out: string[] = [];
  for (let o = sym.offset + 24; o < sym.offset + sym.size; o += 24) if (e.u16(o + 6) === 0) out.push(e.cstr(str.offset + e.u32(o)));
  return out;
}

/** A tree with the given modules (and their dependencies) as plain .ko files, some replaced, depmod'ed. */
function makeTree(name: string, names: string[], replace: Record<string, Buffer>, omit: string[] = []): string {
  const root = path.join(work, name);
  const mods = path.join(root, 'lib/modules', ref.KVER);
  for (const rel of moduleClosure(srcMods, names)) {
    const base = path.basename(rel).replace(/\.ko\.xz$/, '');
    if (omit.includes(base)) continue;
    const dst = path.join(mods, rel.replace(/\.xz$/, ''));
    fs.mkdirSync(path.dirname(dst), { recursive: true });
    fs.writeFileSync(dst, replace[base] ?? decompress(fs.readFileSync(path.join(srcMods, rel)), rel));
  }
  for (const f of ['modules.builtin', 'modules.builtin.modinfo', 'modules.order']) fs.copyFileSync(path.join(srcMods, f), path.join(mods, f));
  const r = runKmod('depmod', ['-b', root, ref.KVER]);
  expect(r.status).toBe(0);
  return root;
}

interface Outcome {
  status: number;
  stderr: string;
  log: string[];
}

/** `kmodts --backend=sim modprobe -d root -S kver args` in-process, in a fresh simulated kernel. */
async function modprobe(root: string, args: string[]): Promise<Outcome & { state: string }> {
  const state = fs.mkdtempSync(path.join(work, 'state-'));
  const env = { ...simEnv(root), KMODTS_SIM_STATE: state };
  Object.assign(process.env, env);
  const io = captureIo(env);
  const status = await main('kmodts', ['--backend=sim', 'modprobe', '-d', root, '-S', ref.KVER, ...args], io);
  const b = new SimBackend(state);
  return { status, stderr: io.err(), log: b.kernelLog().slice(1).map((r) => r.text), state };
}

function simEnv(root: string): Record<string, string> {
  return {
    KMODTS_SIM_KVER: ref.KVER,
    KMODTS_SIM_MODDIR: path.join(root, 'lib/modules', ref.KVER),
    KMODTS_SIM_SYMVERS: ref.SYMVERS,
    KMODTS_SIM_CONFIG: path.join(ref.KTREE, 'boot', `config-${ref.KVER}`),
    KMODTS_SIM_VMLINUZ: ref.VMLINUZ,
  };
}

/** The errno the library reports for loading the file into a fresh simulated kernel. */
function libraryErrno(root: string, rel: string, params = ''): number {
  const b = createSimBackend({}, { stateDir: fs.mkdtempSync(path.join(work, 'lib-')), env: simEnv(root) });
  try {
    b.finitModule(path.join(root, 'lib/modules', ref.KVER, rel), params, 0);
  } catch (err) {
    expect(err).toBeInstanceOf(KmodError);
    return (err as InstanceType<typeof KmodError>).errno;
  }
  return 0;
}

const UNSIGNED = (m: string): string => `${m}: module verification failed: signature and/or required key missing - tainting kernel`;
const DUMMY = 'kernel/drivers/net/dummy.ko';

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-tamper-'));
  savedEnv = { ...process.env };
});
afterAll(() => {
  for (const k of Object.keys(process.env)) if (!(k in savedEnv)) delete process.env[k];
  Object.assign(process.env, savedEnv);
  fs.rmSync(work, { recursive: true, force: true });
});

describe('tampered modules fail as the kernel fails them', () => {
  it('an untouched module loads (signature verified with the key built into the kernel image)', async () => {
    const root = makeTree('ok', ['dummy'], {});
    const r = await modprobe(root, ['dummy']);
    expect(r).toMatchObject({ status: 0, stderr: '', log: [] });
    expect(new SimBackend(r.state).procModulesText()).toMatch(/^dummy 12288 0 - Live 0x[0-9a-f]{16}\n$/);
  });

  it('a changed signed module: the signature no longer verifies (EKEYREJECTED)', async () => {
    const img = decompress(fs.readFileSync(path.join(srcMods, 'kernel/drivers/net/dummy.ko.xz')), 'dummy');
    const changed = Buffer.from(img);
    const mi = sections(changed).find((s) => s.name === '.modinfo') as Sec;
    changed[mi.offset + 1] ^= 0x20;
    const root = makeTree('badsig', ['dummy'], { dummy: changed });
    const r = await modprobe(root, ['dummy']);
    expect(r).toMatchObject({ status: 1, stderr: "modprobe: ERROR: could not insert 'dummy': Key was rejected by service\n", log: [] });
    expect(libraryErrno(root, DUMMY)).toBe(129);
  });

  it('a changed CRC in __versions: "disagrees about version of symbol", EINVAL', async () => {
    const b = unsignedImage('kernel/drivers/net/dummy.ko.xz');
    const vers = sections(b).find((s) => s.name === '__versions') as Sec;
    // an entry other than module_layout (whose mismatch is ENOEXEC)
    let entry = vers.offset;
    while (b.toString('latin1', entry + 8, entry + 8 + 14) === 'module_layout\0') entry += 64;
    const sym = b.toString('latin1', entry + 8, b.indexOf(0, entry + 8));
    b.writeUInt32LE((b.readUInt32LE(entry) ^ 0x1) >>> 0, entry);
    const root = makeTree('crc', ['dummy'], { dummy: b });
    const r = await modprobe(root, ['dummy']);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe("modprobe: ERROR: could not insert 'dummy': Invalid argument\n");
    expect(r.log).toEqual([UNSIGNED('dummy'), `dummy: disagrees about version of symbol ${sym}`, `dummy: Unknown symbol ${sym} (err -22)`]);
    expect(libraryErrno(root, DUMMY)).toBe(22);
  });

  it('a changed module_layout CRC: ENOEXEC before anything else', async () => {
    const b = unsignedImage('kernel/drivers/net/dummy.ko.xz');
    const vers = sections(b).find((s) => s.name === '__versions') as Sec;
    let entry = -1;
    for (let o = vers.offset; o < vers.offset + vers.size; o += 64) if (b.toString('latin1', o + 8, o + 8 + 14) === 'module_layout\0') entry = o;
    expect(entry).toBeGreaterThanOrEqual(0);
    b.writeUInt32LE((b.readUInt32LE(entry) ^ 0x100) >>> 0, entry);
    const root = makeTree('layout', ['dummy'], { dummy: b });
    const r = await modprobe(root, ['dummy']);
    expect(r).toMatchObject({ status: 1, stderr: "modprobe: ERROR: could not insert 'dummy': Exec format error\n", log: ['dummy: disagrees about version of symbol module_layout'] });
  });

  it('a missing dependency: "Unknown symbol", ENOENT', async () => {
    // macvtap needs macvlan; a tree without macvlan gives a modules.dep without it
    const root = makeTree('missing', ['macvtap'], {}, ['macvlan']);
    const needed = undefinedSymbols(unsignedImage('kernel/drivers/net/macvtap.ko.xz'));
    const r = await modprobe(root, ['macvtap']);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe("modprobe: ERROR: could not insert 'macvtap': Unknown symbol in module, or unknown parameter (see dmesg)\n");
    const unknown = r.log.filter((l) => l.startsWith('macvtap: Unknown symbol '));
    expect(unknown.length).toBeGreaterThan(0);
    for (const l of unknown) {
      const m = /^macvtap: Unknown symbol (\S+) \(err -2\)$/.exec(l);
      expect(m).not.toBeNull();
      expect(needed).toContain(m?.[1]);
      expect(m?.[1]).toMatch(/^macvlan_/);
    }
    expect(r.log.length).toBe(unknown.length);
    expect(libraryErrno(root, 'kernel/drivers/net/macvtap.ko')).toBe(2);
  });

  it('a wrong vermagic: "version magic ... should be ...", ENOEXEC', async () => {
    const b = unsignedImage('kernel/drivers/net/dummy.ko.xz');
    patchModinfo(b, 'SMP preempt mod_unload', 'SMP preempt mod_unlaod');
    const root = makeTree('vermagic', ['dummy'], { dummy: b });
    const r = await modprobe(root, ['dummy']);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe("modprobe: ERROR: could not insert 'dummy': Exec format error\n");
    expect(r.log).toEqual([`dummy: version magic '${ref.KVER} SMP preempt mod_unlaod modversions ' should be '${ref.KVER} SMP preempt mod_unload modversions '`]);
    expect(libraryErrno(root, DUMMY)).toBe(8);
  });

  it('a namespace not imported: "module uses symbol (...) from namespace ..., but does not import it.", EINVAL', async () => {
    const b = unsignedImage('kernel/fs/efivarfs/efivarfs.ko.xz');
    patchModinfo(b, 'import_ns=EFIVAR', 'import_nz=EFIVAR');
    const root = makeTree('ns', ['efivarfs'], { efivarfs: b });
    const r = await modprobe(root, ['efivarfs']);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe("modprobe: ERROR: could not insert 'efivarfs': Invalid argument\n");
    expect(r.log[0]).toBe(UNSIGNED('efivarfs'));
    const pairs = r.log.slice(1);
    expect(pairs.length).toBeGreaterThan(0);
    for (let i = 0; i < pairs.length; i += 2) {
      const m = /^efivarfs: module uses symbol \((\S+)\) from namespace EFIVAR, but does not import it\.$/.exec(pairs[i]);
      expect(m).not.toBeNull();
      expect(pairs[i + 1]).toBe(`efivarfs: Unknown symbol ${m?.[1]} (err -22)`);
    }
    expect(libraryErrno(root, 'kernel/fs/efivarfs/efivarfs.ko')).toBe(22);
  });

  it('GPL-only symbols used by a non-GPL module are not found: taint P, "Unknown symbol", ENOENT', async () => {
    const b = unsignedImage('kernel/drivers/net/dummy.ko.xz');
    const gpl = loadKernelSymbols(ref.SYMVERS).gpl;
    const gplUsed = undefinedSymbols(b).filter((s) => gpl.has(s));
    expect(gplUsed.length).toBeGreaterThan(0);
    patchModinfo(b, 'license=GPL', 'license=BSD');
    const root = makeTree('gpl', ['dummy'], { dummy: b });
    const r = await modprobe(root, ['dummy']);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe("modprobe: ERROR: could not insert 'dummy': Unknown symbol in module, or unknown parameter (see dmesg)\n");
    expect(r.log.slice(0, 4)).toEqual([
      "dummy: module license 'BSD' taints kernel.",
      'Disabling lock debugging due to kernel taint',
      UNSIGNED('dummy'),
      'dummy: module license taints kernel.',
    ]);
    expect(r.log.slice(4)).toEqual(gplUsed.map((s) => `dummy: Unknown symbol ${s} (err -2)`));
    expect(libraryErrno(root, DUMMY)).toBe(2);
  });

  it('bad parameter values: EINVAL for junk, ERANGE out of range; unknown ones only warned about', async () => {
    const root = makeTree('param', ['dummy'], {});
    let r = await modprobe(root, ['dummy', 'numdummies=abc']);
    expect(r).toMatchObject({ status: 1, stderr: "modprobe: ERROR: could not insert 'dummy': Invalid argument\n", log: ["dummy: `abc' invalid for parameter `numdummies'"] });
    r = await modprobe(root, ['dummy', 'numdummies=99999999999']);
    expect(r).toMatchObject({ status: 1, stderr: "modprobe: ERROR: could not insert 'dummy': Numerical result out of range\n", log: ["dummy: `99999999999' invalid for parameter `numdummies'"] });
    r = await modprobe(root, ['dummy', 'no_such=1', 'numdummies=2']);
    expect(r).toMatchObject({ status: 0, stderr: '', log: ["dummy: unknown parameter 'no_such' ignored"] });
    expect(libraryErrno(root, DUMMY, 'numdummies=abc')).toBe(22);
  });

  it('a relocation overflow: R_X86_64_32S turned into R_X86_64_32 against a kernel address, ENOEXEC', async () => {
    const b = unsignedImage('kernel/drivers/net/dummy.ko.xz');
    const secs = sections(b);
    const symtab = secs.find((s) => s.type === 2) as Sec;
    const e = new ElfImage(b);
    let patched = false;
    for (const rs of secs) {
      if (rs.type !== 4 || patched) continue;
      for (let o = rs.offset; o < rs.offset + rs.size; o += 24) {
        const symI = b.readUInt32LE(o + 12);
        // 32S against an undefined (kernel) symbol
        if (b.readUInt32LE(o + 8) === 11 && e.u16(symtab.offset + symI * 24 + 6) === 0) {
          b.writeUInt32LE(10, o + 8);
          patched = true;
          break;
        }
      }
    }
    expect(patched).toBe(true);
    const root = makeTree('reloc', ['dummy'], { dummy: b });
    const r = await modprobe(root, ['dummy']);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe("modprobe: ERROR: could not insert 'dummy': Exec format error\n");
    expect(r.log.length).toBe(3);
    expect(r.log[0]).toBe(UNSIGNED('dummy'));
    expect(r.log[1]).toMatch(/^module: overflow in relocation type 10 val ffffffff[89a-f][0-9a-f]{7}$/);
    expect(r.log[2]).toBe("module: `dummy' likely not compiled with -mcmodel=kernel");
    expect(libraryErrno(root, DUMMY)).toBe(8);
  });

  it('a truncated ELF: "Invalid ELF section header overflow", ENOEXEC', async () => {
    const b = unsignedImage('kernel/drivers/net/dummy.ko.xz');
    const root = makeTree('trunc', ['dummy'], { dummy: b.subarray(0, Math.floor(b.length / 2)) });
    const r = await modprobe(root, ['dummy']);
    expect(r).toMatchObject({ status: 1, stderr: "modprobe: ERROR: could not insert 'dummy': Exec format error\n", log: ['Invalid ELF section header overflow'] });
    expect(libraryErrno(root, DUMMY)).toBe(8);
  });

  it('a file that is not ELF at all, and one too short for a header', async () => {
    const root = makeTree('garbage', ['dummy'], { dummy: Buffer.from('not an ELF file, just text long enough to pass the 64 byte header size check....') });
    const r = await modprobe(root, ['dummy']);
    expect(r).toMatchObject({ status: 1, stderr: "modprobe: ERROR: could not insert 'dummy': Exec format error\n", log: ['Invalid ELF header magic: != \\x7fELF'] });
    // finit_module of a 4-byte file: the kernel reads it and refuses the header
    const short = path.join(work, 'short.ko');
    fs.writeFileSync(short, '\x7fELF');
    const state = fs.mkdtempSync(path.join(work, 'short-'));
    const b = createSimBackend({}, { stateDir: state, env: simEnv(root) });
    expect(() => b.finitModule(short, '', 0)).toThrow(expect.objectContaining({ errno: 8 }));
    expect(b.kernelLog().slice(1).map((x) => x.text)).toEqual(['Invalid ELF header len 4']);
    // init_module refuses it before reading: ENOEXEC, nothing logged
    expect(() => b.initModule(Buffer.from('\x7fELF'), '')).toThrow(expect.objectContaining({ errno: 8 }));
    expect(b.kernelLog().length).toBe(2);
  });
});
