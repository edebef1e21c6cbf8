// kmod_module_insert_module / kmod_module_remove_module logic against a recording kernel: which system
// call is made with which flags and image, the fallbacks, force stripping, and the errors and logs.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../../src/loading/backend';
import { EEXIST, EINVAL, ENODATA, ENOENT, ENOSYS, EAGAIN } from '../../src/errno';
import { SHF_ALLOC } from '../../src/file/elf';
import { moduleDir, repoRoot } from '../support/reference';

// from the build: insert.ts loads the module-file reader lazily with require(), which vitest's
// TypeScript transform does not serve (`npm test` builds first)
function built<T>(file: string): T {
  const f = path.join(repoRoot, 'dist', file);
  if (!fs.existsSync(f)) throw new Error(`${f} is missing: run \`npx tsc -p tsconfig.build.json\``);
  return require(f) as T;
}
const { Context } = built<typeof import('../../src/resolution/context')>('resolution/context.js');
const { KmodError } = built<typeof import('../../src/errors')>('errors.js');
const { Elf } = built<typeof import('../../src/file/elf')>('file/elf.js');
const { modinfoStrings } = built<typeof import('../../src/file/module-elf')>('file/module-elf.js');
const { INSERT_FORCE_MODVERSION, INSERT_FORCE_VERMAGIC, REMOVE_FORCE, REMOVE_NOLOG, insertModule, removeModuleFromKernel } =
  built<typeof import('../../src/loading/insert')>('loading/insert.js');

type Call = { call: 'finit'; path: string; params: string; flags: number } | { call: 'init'; image: Buffer; params: string } | { call: 'delete'; name: string; flags: number };

/** A kernel that records the calls and answers with the next queued errno (0 = success). */
class RecordingKernel implements Backend {
  readonly kind = 'sim' as const;
  calls: Call[] = [];
  answers: number[] = [];
  constructor(private readonly kernelCompression?: string) {}
  private answer(): void {
    const e = this.answers.shift() ?? 0;
    if (e !== 0) throw new KmodError(e);
  }
  finitModule(p: string, params: string, flags: number): void {
    this.calls.push({ call: 'finit', path: p, params, flags });
    this.answer();
  }
  initModule(image: Uint8Array, params: string): void {
    this.calls.push({ call: 'init', image: Buffer.from(image), params });
    this.answer();
  }
  deleteModule(name: string, flags: number): void {
    this.calls.push({ call: 'delete', name, flags });
    this.answer();
  }
  initstate() { return undefined; }
  refcnt() { return undefined; }
  holders() { return []; }
  procModules() { return []; }
  compression() { return this.kernelCompression; }
  readModuleAttr() { return undefined; }
}

let tmp: string;
let plain: string;
let xz: string;
let zst: string;
let image: Buffer;

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-insert-'));
  xz = path.join(tmp, 'dummy.ko.xz');
  fs.copyFileSync(path.join(moduleDir(), 'kernel/drivers/net/dummy.ko.xz'), xz);
  plain = path.join(tmp, 'dummy.ko');
  image = execFileSync('xz', ['-dc', xz], { maxBuffer: 1 << 28 });
  fs.writeFileSync(plain, image);
  zst = path.join(tmp, 'zdummy.ko.zst');
  execFileSync('zstd', ['-q', '-f', plain, '-o', zst]);
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

function setup(kernelCompression?: string) {
  const kernel = new RecordingKernel(kernelCompression);
  const logs: string[] = [];
  const ctx = new Context({ backend: kernel, configPaths: [], moduleDir: tmp, log: (prio, fn, msg) => {
    if (fn !== 'kmod_new') logs.push(`${prio} ${fn}: ${msg}`);
  } });
  return { kernel, logs, ctx };
}

describe('insertModule: which call', () => {
  it('an uncompressed file goes to finit_module with no flags and the options as given', () => {
    const { kernel, ctx, logs } = setup('xz');
    expect(insertModule(ctx, ctx.moduleFromPath(plain), 'numdummies=2', 0)).toBe(0);
    expect(kernel.calls).toEqual([{ call: 'finit', path: plain, params: 'numdummies=2', flags: 0 }]);
    expect(logs).toEqual([]);
  });
  it('parameters are never NULL: no options means ""', () => {
    const { kernel, ctx } = setup();
    insertModule(ctx, ctx.moduleFromPath(plain), undefined, 0);
    expect(kernel.calls[0]).toMatchObject({ call: 'finit', params: '' });
  });
  it('a file compressed as the kernel decompresses goes to finit_module with MODULE_INIT_COMPRESSED_FILE', () => {
    const { kernel, ctx } = setup('xz');
    expect(insertModule(ctx, ctx.moduleFromPath(xz), '', 0)).toBe(0);
    expect(kernel.calls).toEqual([{ call: 'finit', path: xz, params: '', flags: 4 }]);
  });
  it('force flags become the finit_module ignore flags', () => {
    const { kernel, ctx } = setup('xz');
    insertModule(ctx, ctx.moduleFromPath(xz), '', INSERT_FORCE_VERMAGIC);
    insertModule(ctx, ctx.moduleFromPath(xz), '', INSERT_FORCE_MODVERSION);
    insertModule(ctx, ctx.moduleFromPath(xz), '', INSERT_FORCE_VERMAGIC | INSERT_FORCE_MODVERSION);
    expect(kernel.calls.map((c) => (c.call === 'finit' ? c.flags : -1))).toEqual([4 | 2, 4 | 1, 4 | 3]);
  });
  it('another compression (or a kernel without /sys/module/compression) is decompressed here for init_module', () => {
    for (const [kc, file] of [['xz', zst], [undefined, xz], ['zstd', xz]] as const) {
      const { kernel, ctx } = setup(kc);
      expect(insertModule(ctx, ctx.moduleFromPath(file), 'a=1', 0)).toBe(0);
      expect(kernel.calls).toHaveLength(1);
      expect(kernel.calls[0].call).toBe('init');
      const c = kernel.calls[0] as { image: Buffer; params: string };
      expect(c.params).toBe('a=1');
      expect(c.image.equals(image)).toBe(true);
    }
  });
  it('finit_module returning ENOSYS falls back to init_module with the decompressed image', () => {
    const { kernel, ctx, logs } = setup('xz');
    kernel.answers = [ENOSYS, 0];
    expect(insertModule(ctx, ctx.moduleFromPath(xz), '', 0)).toBe(0);
    expect(kernel.calls.map((c) => c.call)).toEqual(['finit', 'init']);
    expect((kernel.calls[1] as { image: Buffer }).image.equals(image)).toBe(true);
    expect(logs).toEqual([]);
  });
  it('both calls missing: -ENOSYS with libkmod\'s INFO', () => {
    const { kernel, ctx, logs } = setup('xz');
    kernel.answers = [ENOSYS, ENOSYS];
    expect(insertModule(ctx, ctx.moduleFromPath(xz), '', 0)).toBe(-ENOSYS);
    expect(logs).toEqual([`6 kmod_module_insert_module: Failed to insert module '${xz}': Function not implemented\n`]);
  });
  it('there is no user-space retry when the kernel fails to decompress', () => {
    const { kernel, ctx } = setup('xz');
    kernel.answers = [EINVAL];
    expect(insertModule(ctx, ctx.moduleFromPath(xz), '', 0)).toBe(-EINVAL);
    expect(kernel.calls).toHaveLength(1);
  });
  it('the kernel\'s EEXIST comes back as -EEXIST', () => {
    const { kernel, ctx, logs } = setup('xz');
    kernel.answers = [EEXIST];
    expect(insertModule(ctx, ctx.moduleFromPath(plain), '', 0)).toBe(-EEXIST);
    expect(logs).toEqual([`6 kmod_module_insert_module: Failed to insert module '${plain}': File exists\n`]);
  });
});

describe('insertModule: force stripping in user space', () => {
  function stripped(flags: number): Buffer {
    const { kernel, ctx } = setup('xz');
    expect(insertModule(ctx, ctx.moduleFromPath(zst), '', flags)).toBe(0);
    return (kernel.calls[0] as { image: Buffer }).image;
  }
  it('--force-modversion clears SHF_ALLOC of __versions and changes nothing else', () => {
    const out = stripped(INSERT_FORCE_MODVERSION);
    const before = new Elf(image, 'orig').findSection('__versions')!;
    const after = new Elf(out, 'stripped').findSection('__versions')!;
    expect(before.flags & BigInt(SHF_ALLOC)).not.toBe(0n);
    expect(after.flags).toBe(before.flags & ~BigInt(SHF_ALLOC));
    const diff = [...out].map((b, i) => (b !== image[i] ? i : -1)).filter((i) => i >= 0);
    expect(diff.every((i) => i >= before.headerOffset + 8 && i < before.headerOffset + 16)).toBe(true);
  });
  it('--force-vermagic blanks the whole "vermagic=..." string', () => {
    const out = stripped(INSERT_FORCE_VERMAGIC);
    const orig = modinfoStrings(new Elf(image, 'orig'));
    const now = modinfoStrings(new Elf(out, 'stripped'));
    expect(orig.some((s) => s.startsWith('vermagic='))).toBe(true);
    expect(now).toEqual(orig.filter((s) => !s.startsWith('vermagic=')));
    expect(out.length).toBe(image.length);
  });
  it('no vermagic to strip: ENODATA, logged as kmod does, nothing loaded', () => {
    const noVermagic = Buffer.from(image);
    const sec = new Elf(noVermagic, 'x').findSection('.modinfo')!;
    const text = noVermagic.toString('latin1', sec.offset, sec.offset + sec.size);
    const at = text.indexOf('vermagic=');
    noVermagic.write('xermagic=', sec.offset + at, 'latin1');
    const f = path.join(tmp, 'novermagic.ko.zst');
    const raw = path.join(tmp, 'novermagic.ko');
    fs.writeFileSync(raw, noVermagic);
    execFileSync('zstd', ['-q', '-f', raw, '-o', f]);
    const { kernel, ctx, logs } = setup('xz');
    expect(insertModule(ctx, ctx.moduleFromPath(f), '', INSERT_FORCE_VERMAGIC)).toBe(-ENODATA);
    expect(kernel.calls).toEqual([]);
    expect(logs).toEqual([
      '3 do_init_module: Failed to strip version information: No data available\n',
      `6 kmod_module_insert_module: Failed to insert module '${f}': No data available\n`,
    ]);
  });
});

describe('insertModule: bad input', () => {
  it('a module without a path: could not find module by name', () => {
    const { kernel, ctx, logs } = setup();
    expect(insertModule(ctx, ctx.moduleFromName('nowhere'), '', 0)).toBe(-ENOENT);
    expect(kernel.calls).toEqual([]);
    expect(logs[0]).toBe("3 kmod_module_insert_module: could not find module by name='nowhere'\n");
  });
  it('a file removed after lookup, or shorter than any compression magic', () => {
    const gone = path.join(tmp, 'gone.ko');
    fs.writeFileSync(gone, image);
    const short = path.join(tmp, 'short.ko');
    fs.writeFileSync(short, 'ab');
    const { kernel, ctx } = setup();
    const m = ctx.moduleFromPath(gone);
    fs.rmSync(gone);
    expect(insertModule(ctx, m, '', 0)).toBe(-ENOENT);
    expect(insertModule(ctx, ctx.moduleFromPath(short), '', 0)).toBe(-EINVAL);
    expect(kernel.calls).toEqual([]);
  });
  it('a corrupt compressed file: EINVAL with the decompressor\'s message, no call', () => {
    const bad = path.join(tmp, 'bad.ko.zst');
    const z = fs.readFileSync(zst);
    fs.writeFileSync(bad, z.subarray(0, z.length >> 1));
    const { kernel, ctx, logs } = setup('xz');
    expect(insertModule(ctx, ctx.moduleFromPath(bad), '', 0)).toBe(-EINVAL);
    expect(kernel.calls).toEqual([]);
    expect(logs.some((l) => l.startsWith('3 kmod_file_load_zstd: zstd'))).toBe(true);
  });
  it('force on a file that is not ELF: the ELF error, no call', () => {
    const junk = path.join(tmp, 'junk.ko.zst');
    const raw = path.join(tmp, 'junk.ko');
    fs.writeFileSync(raw, Buffer.alloc(4096, 0x41));
    execFileSync('zstd', ['-q', '-f', raw, '-o', junk]);
    const { kernel, ctx } = setup('xz');
    expect(insertModule(ctx, ctx.moduleFromPath(junk), '', INSERT_FORCE_MODVERSION)).toBeLessThan(0);
    expect(kernel.calls).toEqual([]);
  });
});

describe('removeModuleFromKernel', () => {
  it('always O_NONBLOCK, O_TRUNC with force', () => {
    const { kernel, ctx } = setup();
    expect(removeModuleFromKernel(ctx, ctx.moduleFromName('dummy'), 0)).toBe(0);
    expect(removeModuleFromKernel(ctx, ctx.moduleFromName('dummy'), REMOVE_FORCE)).toBe(0);
    expect(kernel.calls).toEqual([
      { call: 'delete', name: 'dummy', flags: 0o4000 },
      { call: 'delete', name: 'dummy', flags: 0o4000 | 0o1000 },
    ]);
  });
  it('errors are logged unless NOLOG', () => {
    const { kernel, ctx, logs } = setup();
    kernel.answers = [EAGAIN, EAGAIN];
    expect(removeModuleFromKernel(ctx, ctx.moduleFromName('llc'), 0)).toBe(-EAGAIN);
    expect(removeModuleFromKernel(ctx, ctx.moduleFromName('llc'), REMOVE_NOLOG)).toBe(-EAGAIN);
    expect(logs).toEqual(["3 kmod_module_remove_module: could not remove 'llc': Resource temporarily unavailable\n"]);
  });
});
