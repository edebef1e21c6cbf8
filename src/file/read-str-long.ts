// kmod's read_str_long() (shared/util.c), with which libkmod reads /sys/module/<name>/refcnt and
// coresize: the file's first 31 bytes (read_str_safe into a 32-byte buffer), strtol in base 10, and the
// number must be followed by whitespace (a NUL, the end of what was read, is not).

const SPACE = /[\t\n\v\f\r ]/;
const LONG_MAX = (1n << 63n) - 1n;
const LONG_MIN = -(1n << 63n);

/** The value read_str_long() gives for the file's text (a binary string), undefined for its -EINVAL. */
export function readStrLong(text: string): bigint | undefined {
  let buf = text.slice(0, 31);
  const nul = buf.indexOf('\0');
  if (nul >= 0) buf = buf.slice(0, nul);
  const m = /^[\t\n\v\f\r ]*([+-]?)(\d+)/.exec(buf);
  if (!m) return undefined;
  const next = buf[m[0].length];
  if (next === undefined || !SPACE.test(next)) return undefined;
  // strtol saturates at LONG_MIN/LONG_MAX
  const v = BigInt(m[1] + m[2]);
  return v > LONG_MAX ? LONG_MAX : v < LONG_MIN ? LONG_MIN : v;
}
