// Unit tests of the simulated kernel's pure parts: the kernel's parameter tokeniser and setters, the
// relocation formulas and overflow rules of x86_64 and arm64, kernfs directory order, vermagic.
import { describe, expect, it } from 'vitest';
import { nextArg, parseModuleArgs, kstrtobool, parameq, type ParamDesc } from '../../../src/backends/sim/params';
import { relocateArm64, relocateX86 } from '../../../src/backends/sim/relocate';
import { kernfsOrder } from '../../../src/backends/sim/kernfs';
import { composeVermagic, moduleSetting, parseKernelConfig, simOptionsFromEnv } from '../../../src/backends/sim/kernel-model';

function tokens(s: string): [string, string | null][] {
  const out: [string, string | null][] = [];
  let pos = 0;
  while (pos < s.length) {
    const r = nextArg(s, pos);
    out.push([r.param, r.val]);
    pos = r.next;
  }
  return out;
}

function parse(args: string, params: ParamDesc[]): { err: number; log: string[] } {
  const log: string[] = [];
  const r = parseModuleArgs('m', args, params, (l, t) => log.push(`${l} ${t}`), { lockdown: false });
  return { err: r.err, log };
}

describe('next_arg', () => {
  it('splits on spaces, keeps quoted spaces, strips the quotes the kernel strips', () => {
    expect(tokens('a=1 b c="x y" "d=e f" g="h"i')).toEqual([
      ['a', '1'],
      ['b', null],
      ['c', 'x y'],
      ['d', 'e f'],
      ['g', 'h"i'],
    ]);
    expect(tokens('=x')).toEqual([['=x', null]]);
    expect(tokens('a=')).toEqual([['a', '']]);
    expect(tokens('a==b')).toEqual([['a', '=b']]);
  });
  it('parameq treats - and _ alike', () => {
    expect(parameq('max-part', 'max_part')).toBe(true);
    expect(parameq('max_part', 'max_parts')).toBe(false);
  });
  it('kstrtobool', () => {
    expect(['y', 'Y', 't', '1', 'on', 'ON'].map((s) => kstrtobool(s))).toEqual([true, true, true, true, true, true]);
    expect(['n', 'f', '0', 'off'].map((s) => kstrtobool(s))).toEqual([false, false, false, false]);
    expect(['', 'o', 'x', null].map((s) => kstrtobool(s))).toEqual([-22, -22, -22, -22]);
  });
});

describe('parse_args', () => {
  const p = (): ParamDesc[] => [
    { name: 'n', kind: 'int', perm: 0o444, flags: 0 },
    { name: 'u8', kind: 'byte', perm: 0, flags: 0 },
    { name: 'flag', kind: 'bool', perm: 0o644, flags: 0 },
    { name: 'inv', kind: 'invbool', perm: 0o644, flags: 0 },
    { name: 's', kind: 'string', perm: 0o444, flags: 0, maxlen: 4 },
    { name: 'arr', kind: 'array', perm: 0o444, flags: 0, max: 2, elem: 'int' },
    { name: 'hx', kind: 'hexint', perm: 0o444, flags: 0 },
    { name: 'danger', kind: 'int', perm: 0, flags: 1 },
  ];
  it('integers: bases, signs, ranges, a trailing newline', () => {
    const params = p();
    expect(parse('n=0x10', params).err).toBe(0);
    expect(params[0].value).toBe('16');
    expect(parse('n=010', params).err).toBe(0);
    expect(params[0].value).toBe('8');
    expect(parse('n=-5', params).err).toBe(0);
    expect(params[0].value).toBe('-5');
    expect(parse('n=+5', params).err).toBe(0);
    expect(parse('n=2147483648', params)).toEqual({ err: -34, log: ["3 m: `2147483648' invalid for parameter `n'"] });
    expect(parse('u8=256', params).err).toBe(-34);
    expect(parse('u8=-1', params).err).toBe(-22);
    expect(parse('n=', params).err).toBe(-22);
    expect(parse('n=1x', params).err).toBe(-22);
    expect(parse('n', params)).toEqual({ err: -22, log: ["3 m: `' invalid for parameter `n'"] });
    expect(parse('hx=0', params).err).toBe(0);
    expect(params[6].value).toBe('00000000');
    expect(parse('hx=255', params).err).toBe(0);
    expect(params[6].value).toBe('0x0000ff');
  });
  it('bools take a bare name; invbool does not', () => {
    const params = p();
    expect(parse('flag', params).err).toBe(0);
    expect(params[2].value).toBe('Y');
    expect(parse('inv', params).err).toBe(-22);
    expect(parse('inv=1', params).err).toBe(0);
    expect(params[3].value).toBe('N');
  });
  it('strings too long are ENOSPC with both messages; arrays are bounded', () => {
    expect(parse('s=abcd', p())).toEqual({ err: -28, log: ["3 s: string doesn't fit in 3 chars.", "3 m: `abcd' too large for parameter `s'"] });
    expect(parse('arr=1,2,3', p())).toEqual({ err: -22, log: ['3 arr: can only take 2 arguments', "3 m: `1,2,3' invalid for parameter `arr'"] });
    const params = p();
    expect(parse('arr=1,0x2', params).err).toBe(0);
    expect(params[5].value).toBe('1,2');
  });
  it('unknown names are warned about and ignored, dyndbg and async_probe are taken, the last error wins', () => {
    expect(parse('zz=1 a.dyndbg=+p dyndbg async_probe x.y=2', p())).toEqual({ err: 0, log: ["4 m: unknown parameter 'zz' ignored", "4 m: unknown parameter 'x' ignored"] });
    expect(parse('n=x u8=300 flag', p()).err).toBe(-34);
    expect(parse('danger=1', p())).toEqual({ err: 0, log: ['5 Setting dangerous option danger - tainting kernel'] });
  });
  it("'--' ends the parameters; the rest is reported", () => {
    expect(parse('n=1 -- a b', p())).toEqual({ err: 0, log: ["4 m: parameters 'a b' after `--' ignored"] });
    expect(parse('n=x -- a', p()).err).toBe(-22);
  });
});

describe('x86_64 relocations', () => {
  const run = (type: number, val: number, P = -0x3fe00000, init = 0): { r: number; bytes: number[]; log: string[] } => {
    const buf = new Uint8Array(16);
    const view = new DataView(buf.buffer);
    view.setUint32(0, init, true);
    const log: string[] = [];
    const r = relocateX86(view, 0, P, type, val, 'm', (_l, t) => log.push(t));
    return { r, bytes: [...buf.subarray(0, 8)], log };
  };
  it('64, PC32, PLT32, 32S, PC64 write what the kernel writes', () => {
    expect(run(1, -0x7f000000).bytes).toEqual([0, 0, 0, 0x81, 0xff, 0xff, 0xff, 0xff]);
    // PC32 from 0xffffffffc0200000 to 0xffffffff81000000: -0x3f200000
    expect(run(2, -0x7f000000).bytes).toEqual([0, 0, 0xe0, 0xc0, 0, 0, 0, 0]);
    expect(run(4, -0x7f000000).bytes.slice(0, 4)).toEqual([0, 0, 0xe0, 0xc0]);
    expect(run(11, -0x7f000000).bytes.slice(0, 4)).toEqual([0, 0, 0, 0x81]);
    expect(run(24, 0).bytes).toEqual([0, 0, 0xe0, 0x3f, 0, 0, 0, 0]);
    expect(run(10, 0x1234).bytes.slice(0, 4)).toEqual([0x34, 0x12, 0, 0]);
  });
  it('overflow of 32 and 32S, a non-zero target, an unknown type: ENOEXEC and the kernel lines', () => {
    expect(run(10, -0x7f000000)).toMatchObject({ r: -8, log: ['module: overflow in relocation type 10 val ffffffff81000000', "module: `m' likely not compiled with -mcmodel=kernel"] });
    expect(run(11, 0x80000000).r).toBe(-8);
    expect(run(11, -0x80000000).r).toBe(0);
    const nz = run(2, 0, -0x3fe00000, 1);
    expect(nz.r).toBe(-8);
    expect(nz.log[0]).toMatch(/^module: x86\/modules: Invalid relocation target, existing value is nonzero for type 2, loc [0-9a-f]{16}, val 3fe00000$/);
    expect(run(3, 0)).toMatchObject({ r: -8, log: ['module: m: Unknown rela relocation: 3'] });
    expect(run(0, 5)).toMatchObject({ r: 0, bytes: [0, 0, 0, 0, 0, 0, 0, 0] });
  });
});

describe('arm64 relocations', () => {
  const run = (type: number, val: number, P: number, insn = 0, plt?: bigint): { r: number; word: number; log: string[] } => {
    const buf = new Uint8Array(8);
    const view = new DataView(buf.buffer);
    view.setUint32(0, insn, true);
    const log: string[] = [];
    const r = relocateArm64(view, 0, P, type, val, 'm', (_l, t) => log.push(t), () => plt);
    return { r, word: view.getUint32(0, true), log };
  };
  const BL = 0x94000000;
  it('CALL26 within ±128 MiB encodes the word offset; beyond, a PLT entry is used or ENOEXEC', () => {
    expect(run(283, 0x1000 + 0x100, 0x1000, BL).word).toBe((BL | 0x40) >>> 0);
    expect(run(283, 0x1000 - 4, 0x1000, BL).word).toBe((BL | 0x3ffffff) >>> 0);
    expect(run(283, 0x1000 + 0x10000000, 0x1000, BL, 0x2000n)).toMatchObject({ r: 0, word: (BL | 0x400) >>> 0 });
    expect(run(283, 0x1000 + 0x10000000, 0x1000, BL).r).toBe(-8);
  });
  it('data relocations: ABS64 unchecked, ABS32/PREL32 ranges with the kernel line', () => {
    expect(run(257, -1, 0).r).toBe(0);
    expect(run(258, 0xffffffff, 0).r).toBe(0);
    expect(run(258, 0x100000000, 0)).toMatchObject({ r: -8, log: ['Modules: module m: overflow in relocation type 258 val 100000000'] });
    expect(run(261, 0x1000 + 0x7fffffff, 0x1000).r).toBe(0);
    expect(run(261, 0x1000 + 0x80000000, 0x1000).r).toBe(-8);
    expect(run(999, 0, 0)).toMatchObject({ r: -8, log: ['Modules: module m: unsupported RELA relocation: 999'] });
  });
  it('ADRP takes page differences; ADD_ABS_LO12_NC the low 12 bits; MOVW_UABS_G0 checks, _NC does not', () => {
    const ADRP = 0x90000000;
    const w = run(275, 0x5000 + 0x123, 0x1ff0, ADRP).word;
    // pages 0x5000 - 0x1000 = 4 pages: immlo = 0, immhi = 1
    expect(w).toBe((ADRP | (1 << 5)) >>> 0);
    expect(run(277, 0x5123, 0, 0x91000000).word).toBe((0x91000000 | (0x123 << 10)) >>> 0);
    expect(run(263, 0x10000, 0).r).toBe(-8);
    expect(run(264, 0x10000, 0).r).toBe(0);
  });
});

describe('kernel facts', () => {
  it('kernfs orders holders by name hash, as lsmod shows them on the real kernel', () => {
    // as read from /sys/module/*/holders on Debian's 6.12 kernel (test/vm/expected-kmod.json)
    expect(kernfsOrder(['garp', 'stp', 'bridge'])).toEqual(['bridge', 'stp', 'garp']);
    expect(kernfsOrder(['garp', 'stp'])).toEqual(['stp', 'garp']);
    expect(kernfsOrder(['garp', 'bridge'])).toEqual(['bridge', 'garp']);
  });
  it('vermagic from the configuration', () => {
    const cfg = parseKernelConfig('CONFIG_SMP=y\nCONFIG_PREEMPT_BUILD=y\nCONFIG_MODULE_UNLOAD=y\nCONFIG_MODVERSIONS=y\n# CONFIG_X is not set\nCONFIG_S="a b"\n');
    expect(composeVermagic('6.1.0', cfg, 'x86_64')).toBe('6.1.0 SMP preempt mod_unload modversions ');
    expect(composeVermagic('6.1.0', cfg, 'arm64')).toBe('6.1.0 SMP preempt mod_unload modversions aarch64');
    expect(cfg.get('CONFIG_S')).toBe('a b');
  });
  it('options from the environment', () => {
    expect(simOptionsFromEnv({ KMODTS_SIM_KVER: '6.1', KMODTS_SIM_SET: 'CONFIG_MODULE_SIG_FORCE=y,CONFIG_MODVERSIONS=n', KMODTS_SIM_INIT_ERRORS: 'a=19,b=-22', KMODTS_SIM_SIG_ENFORCE: '0' })).toEqual({
      kernelVersion: '6.1',
      configOverrides: { CONFIG_MODULE_SIG_FORCE: true, CONFIG_MODVERSIONS: false },
      initErrors: { a: 19, b: 22 },
      sigEnforce: false,
    });
  });

  it('a per-module setting is found under the name or with dashes, and never on the prototype', () => {
    const { initErrors } = simOptionsFromEnv({ KMODTS_SIM_INIT_ERRORS: 'snd-hda=19,__proto__=5' });
    expect(moduleSetting(initErrors, 'snd_hda')).toBe(19);
    expect(moduleSetting(initErrors, 'snd-hda')).toBe(19);
    for (const name of ['constructor', 'toString', 'hasOwnProperty', 'valueOf']) expect(moduleSetting(initErrors, name)).toBeUndefined();
    expect(moduleSetting(undefined, 'x')).toBeUndefined();
  });
});
