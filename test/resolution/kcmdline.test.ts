import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseCmdlineChars, parseKernelCmdline, readKernelCmdline } from '../../src/resolution/kcmdline';

type Logged = [number, string, string][];
function parse(text: string): { options: string[]; blacklists: string[]; logged: Logged } {
  const logged: Logged = [];
  const r = parseKernelCmdline(text, (p, fn, m) => logged.push([p, fn, m]));
  return { options: r.options.map((o) => `${o.modname} ${o.options}`), blacklists: r.blacklists, logged };
}

describe('parseKernelCmdline', () => {
  // kmod's testsuite module-param-kcmdline* expectations, and its documented cases
  it('takes mod.param and mod.param=value words', () => {
    expect(parse('psmouse.foo psmouse.bar=1').options).toEqual(['psmouse foo', 'psmouse bar=1']);
    expect(parse('testmodule.testparam=1.5G').options).toEqual(['testmodule testparam=1.5G']);
  });

  it('keeps quoted values and drops ill-formed quoting', () => {
    expect(parse('psmouse.foobar="test 1" psmouse."invalid option" " notamodule"').options).toEqual(['psmouse foobar="test 1"']);
  });

  it('re-quotes a word quoted as a whole by the bootloader', () => {
    expect(parse('"parport.dyndbg=file drivers/parport/ieee1284_ops.c +mpf"').options).toEqual([
      'parport dyndbg="file drivers/parport/ieee1284_ops.c +mpf"',
    ]);
    expect(parse('"m.p=v"').options).toEqual(['m p="v"']);
  });

  it('ignores words with "=" before ".", words without ".", and "--"', () => {
    const r = parse('BOOT_IMAGE=/boot/vmlinuz-6.1.0 root=UUID=x.y ro initrd=\\x quiet rw -- a.b=1\n');
    expect(r.options).toEqual(['a b=1']);
    expect(r.logged).toEqual([]);
  });

  it('normalizes module names but not blacklist entries', () => {
    const r = parse('snd-hda-intel.model=a-b modprobe.blacklist=snd-pcsp,b,,c, modprobe.blacklist=d');
    expect(r.options).toEqual(['snd_hda_intel model=a-b']);
    expect(r.blacklists).toEqual(['snd-pcsp', 'b', '', 'c', '', 'd']);
  });

  it('reports a module name with bad brackets and goes on', () => {
    const r = parse('psmouse.foo=2 ivrs_acpihid[14:00.5]=AMD0020:00 x.y=1');
    expect(r.options).toEqual(['psmouse foo=2', 'x y=1']);
    expect(r.logged).toEqual([
      [3, 'kcmdline_parse_result', "Ignoring bad option on kernel command line while parsing module name: 'ivrs_acpihid[14:00'\n"],
    ]);
  });

  it('shows a bad name as kmod\'s in-place normalization left it', () => {
    expect(parse('v1mod-x[m.p=1').logged).toEqual([
      [3, 'kcmdline_parse_result', "Ignoring bad option on kernel command line while parsing module name: 'v1mod_x[m'\n"],
    ]);
  });

  it('ends at NUL, and a last word needs no terminator', () => {
    expect(parse('a.b=1\0c.d=2').options).toEqual(['a b=1']);
    expect(parse('a.b=1').options).toEqual(['a b=1']);
  });

  it('drops a value whose quote is never closed', () => {
    expect(parse('a.b=1 x.y="open value').options).toEqual(['a b=1']);
  });

  it('accepts all C whitespace as separators and turns tabs in quoted values into spaces', () => {
    expect(parse('m.a=1\tm.b=2\nm.c=3\r\fm.d=4\vm.e=5').options).toEqual(['m a=1', 'm b=2', 'm c=3', 'm d=4', 'm e=5']);
    expect(parse('m.a="x\ty"').options).toEqual(['m a="x y"']);
  });

  it('handles malformed words without throwing', () => {
    for (const s of ['"', '""', '.', '=', '..', 'a.', '.b', 'a.b.c=1', '"a', 'a"', '"a.b=1"c', '\0', ' \n ']) {
      expect(() => parse(s)).not.toThrow();
    }
    // (outputs checked against kmod 34.2) a second '.' spoils a word; an empty module name does not
    expect(parse('a..b=1 a.b.c=1 .p=1').options).toEqual([' p=1']);
    expect(parse('mod.=x').options).toEqual(['mod =x']);
  });
});

describe('the quote-free fast path', () => {
  it("gives the state machine's options, blacklists and messages on 50,000 random lines without quotes", () => {
    // a fixed-seed generator (xorshift32): the same lines on every run
    let seed = 0x2545f491;
    const next = (n: number): number => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) % n;
    };
    const pieces = ['a', 'b', '.', '=', ' ', '\t', '\n', '\v', '-', '_', ',', '[', ']', 'modprobe', 'blacklist', 'x.y=z', 'snd-pcsp'];
    let withOptions = 0;
    for (let i = 0; i < 50_000; i++) {
      let line = '';
      for (let n = next(14); n > 0; n--) line += pieces[next(pieces.length)];
      const fastLog: string[] = [];
      const exactLog: string[] = [];
      const fast = parseKernelCmdline(line, (_p, _f, m) => fastLog.push(m));
      expect(fast).toEqual(parseCmdlineChars(line, (_p, _f, m) => exactLog.push(m)));
      expect(fastLog).toEqual(exactLog);
      if (fast.options.length > 0 || fast.blacklists.length > 0) withOptions++;
    }
    expect(withOptions).toBeGreaterThan(10_000);
  });
});

describe('readKernelCmdline', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-kcmdline-'));
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('reads <procDir>/cmdline', () => {
    fs.writeFileSync(path.join(tmp, 'cmdline'), 'quiet a.b=1 modprobe.blacklist=x\n');
    expect(readKernelCmdline(tmp)).toEqual({ options: [{ modname: 'a', options: 'b=1' }], blacklists: ['x'] });
  });

  it('is silent about a missing file', () => {
    const logged: string[] = [];
    expect(readKernelCmdline(path.join(tmp, 'nope'), (_p, _f, m) => logged.push(m))).toEqual({ options: [], blacklists: [] });
    expect(logged).toEqual([]);
  });

  it('reports a file that opens but cannot be read, naming /proc/cmdline as kmod does', () => {
    const d = path.join(tmp, 'dirproc');
    fs.mkdirSync(path.join(d, 'cmdline'), { recursive: true });
    const logged: [number, string, string][] = [];
    expect(readKernelCmdline(d, (p, f, m) => logged.push([p, f, m]))).toEqual({ options: [], blacklists: [] });
    expect(logged).toEqual([[3, 'kmod_config_parse_kcmdline', "could not read from '/proc/cmdline': Is a directory\n"]]);
  });

  it('reads only the first 4095 bytes', () => {
    const d = path.join(tmp, 'long');
    fs.mkdirSync(d);
    fs.writeFileSync(path.join(d, 'cmdline'), `${'x'.repeat(4080)} a.b=1 c.d=2`);
    expect(readKernelCmdline(d).options).toEqual([{ modname: 'a', options: 'b=1' }, { modname: 'c', options: 'd=2' }]);
    // (as kmod 34.2) the last word is cut after "a.bcdef=" and still taken
    fs.writeFileSync(path.join(d, 'cmdline'), `${'x'.repeat(4086)} a.bcdef=1`);
    expect(readKernelCmdline(d).options).toEqual([{ modname: 'a', options: 'bcdef=' }]);
  });

  it('reads no more than those of a file that never ends', () => {
    const d = path.join(tmp, 'endless');
    fs.mkdirSync(d);
    fs.symlinkSync('/dev/zero', path.join(d, 'cmdline'));
    const logged: string[] = [];
    expect(readKernelCmdline(d, (_p, _f, m) => logged.push(m))).toEqual({ options: [], blacklists: [] });
    expect(logged).toEqual([]);
  });
});
