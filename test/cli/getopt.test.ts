import { describe, expect, it } from 'vitest';
import { getoptLong, type LongOption } from '../../src/cli/getopt';

const longs: LongOption[] = [
  { name: 'show-depends', hasArg: 0, val: 'D' },
  { name: 'show-config', hasArg: 0, val: 'c' },
  { name: 'showconfig', hasArg: 0, val: 'c' },
  { name: 'config', hasArg: 1, val: 'C' },
  { name: 'dry-run', hasArg: 0, val: 'n' },
  { name: 'verbose', hasArg: 0, val: 'v' },
];
const p = (...argv: string[]) => getoptLong('modprobe', argv, 'DcnC:v', longs, {});

describe('getoptLong (glibc semantics)', () => {
  it('bundles short options and counts repeats', () => {
    expect(p('-nvv', 'foo').options.map((o) => o.opt)).toEqual(['n', 'v', 'v']);
  });
  it('takes attached and separate values', () => {
    expect(p('-Cfile', 'x').options).toEqual([{ opt: 'C', arg: 'file' }]);
    expect(p('-C', 'file', 'x').options).toEqual([{ opt: 'C', arg: 'file' }]);
    expect(p('--config=a=b').options).toEqual([{ opt: 'C', arg: 'a=b' }]);
    expect(p('--config', 'f').options).toEqual([{ opt: 'C', arg: 'f' }]);
  });
  it('permutes options after positionals and stops at --', () => {
    const r = p('foo', 'a=1', '-v', '--', '-n');
    expect(r.options).toEqual([{ opt: 'v' }]);
    expect(r.args).toEqual(['foo', 'a=1', '-n']);
  });
  it('accepts unique prefixes and prefixes whose candidates are equivalent', () => {
    expect(p('--show-dep').options).toEqual([{ opt: 'D' }]);
    expect(p('--showc').options).toEqual([{ opt: 'c' }]);
  });
  it('reports ambiguity with glibc wording', () => {
    expect(p('--show').error).toBe("modprobe: option '--show' is ambiguous; possibilities: '--show-depends' '--show-config' '--showconfig'");
  });
  it('reports unknown and malformed options with glibc wording', () => {
    expect(p('--bogus=1').error).toBe("modprobe: unrecognized option '--bogus=1'");
    expect(p('-z').error).toBe("modprobe: invalid option -- 'z'");
    expect(p('-C').error).toBe("modprobe: option requires an argument -- 'C'");
    expect(p('--config').error).toBe("modprobe: option '--config' requires an argument");
    expect(p('--dry-run=1').error).toBe("modprobe: option '--dry-run' doesn't allow an argument");
  });
  it('honours a leading + (stop at the first positional)', () => {
    const r = getoptLong('kmod', ['-v', 'list', '-x'], '+v', longs, {});
    expect(r.options).toEqual([{ opt: 'v' }]);
    expect(r.args).toEqual(['list', '-x']);
  });
});
