// kmod's read_str_long() (refcnt, coresize): verdicts of kmod 34.2's lsmod on these file contents.
import { describe, expect, it } from 'vitest';
import { readStrLong } from '../../src/file/read-str-long';

describe('readStrLong', () => {
  it('takes a base-10 number followed by whitespace', () => {
    expect(readStrLong('12345\n')).toBe(12345n);
    expect(readStrLong('+5\n')).toBe(5n);
    expect(readStrLong('  42\t')).toBe(42n);
    expect(readStrLong('-7\n')).toBe(-7n);
    expect(readStrLong('010\n')).toBe(10n);
    expect(readStrLong('5 garbage\n')).toBe(5n);
    expect(readStrLong('\n5\n')).toBe(5n);
  });
  it('refuses what strtol does not end on whitespace', () => {
    for (const t of ['42', '12x', 'abc\n', '', '\n', '0x10\n', '9e3\n', '4\x005\n']) expect(readStrLong(t), JSON.stringify(t)).toBeUndefined();
  });
  it('saturates as strtol, and reads 31 bytes only', () => {
    expect(readStrLong('99999999999999999999\n')).toBe((1n << 63n) - 1n);
    expect(readStrLong('-99999999999999999999\n')).toBe(-(1n << 63n));
    // 31 digits fill the buffer: no whitespace after them
    expect(readStrLong('1234567890123456789012345678901\n')).toBeUndefined();
    expect(readStrLong('123456789012345678901234567890 \n')).toBe((1n << 63n) - 1n);
  });
});
