// errno numbers (Linux, all architectures Debian ships use the asm-generic values for these)
// and glibc's strerror() texts, which kmod prints through %m and strerror().
export const EPERM = 1;
export const ENOENT = 2;
export const ESRCH = 3;
export const EINTR = 4;
export const EIO = 5;
export const ENXIO = 6;
export const E2BIG = 7;
export const ENOEXEC = 8;
export const EBADF = 9;
export const EAGAIN = 11;
export const ENOMEM = 12;
export const EACCES = 13;
export const EFAULT = 14;
export const EBUSY = 16;
export const EEXIST = 17;
export const ENODEV = 19;
export const ENOTDIR = 20;
export const EISDIR = 21;
export const EINVAL = 22;
export const ENFILE = 23;
export const EMFILE = 24;
export const ETXTBSY = 26;
export const EFBIG = 27;
export const ENOSPC = 28;
export const ESPIPE = 29;
export const EROFS = 30;
export const ERANGE = 34;
export const EDEADLK = 35;
export const ENAMETOOLONG = 36;
export const ENOSYS = 38;
export const ENOTEMPTY = 39;
export const ELOOP = 40;
export const ENODATA = 61;
export const ENOPKG = 65;
export const ENOTSUP = 95;
export const EOPNOTSUPP = 95;
export const EKEYREJECTED = 129;
export const ENOKEY = 126;
export const EKEYEXPIRED = 127;
export const EBADMSG = 74;
export const EOVERFLOW = 75;
export const EILSEQ = 84;

const messages: Record<number, string> = {
  0: 'Success',
  1: 'Operation not permitted',
  2: 'No such file or directory',
  3: 'No such process',
  4: 'Interrupted system call',
  5: 'Input/output error',
  6: 'No such device or address',
  7: 'Argument list too long',
  8: 'Exec format error',
  9: 'Bad file descriptor',
  11: 'Resource temporarily unavailable',
  12: 'Cannot allocate memory',
  13: 'Permission denied',
  14: 'Bad address',
  16: 'Device or resource busy',
  17: 'File exists',
  19: 'No such device',
  20: 'Not a directory',
  21: 'Is a directory',
  22: 'Invalid argument',
  23: 'Too many open files in system',
  24: 'Too many open files',
  26: 'Text file busy',
  27: 'File too large',
  28: 'No space left on device',
  29: 'Illegal seek',
  30: 'Read-only file system',
  34: 'Numerical result out of range',
  35: 'Resource deadlock avoided',
  36: 'File name too long',
  38: 'Function not implemented',
  39: 'Directory not empty',
  40: 'Too many levels of symbolic links',
  61: 'No data available',
  74: 'Bad message',
  75: 'Value too large for defined data type',
  84: 'Invalid or incomplete multibyte or wide character',
  95: 'Operation not supported',
  126: 'Required key not available',
  127: 'Key has expired',
  129: 'Key was rejected by service',
};

/** glibc's strerror() text for a positive errno value. */
export function strerror(errno: number): string {
  return messages[errno] ?? `Unknown error ${errno}`;
}

const byCode: Record<string, number> = {
  EPERM, ENOENT, ESRCH, EINTR, EIO, ENXIO, E2BIG, ENOEXEC, EBADF, EAGAIN, ENOMEM, EACCES, EFAULT, EBUSY,
  EEXIST, ENODEV, ENOTDIR, EISDIR, EINVAL, ENFILE, EMFILE, ETXTBSY, EFBIG, ENOSPC, ESPIPE, EROFS, ERANGE,
  ENAMETOOLONG, ENOSYS, ENOTEMPTY, ELOOP, ENODATA, ENOTSUP, EOPNOTSUPP, EBADMSG, EOVERFLOW, EILSEQ,
};

/** errno of a Node.js system error (err.code 'ENOENT' → 2); EIO when unknown. */
export function errnoOf(err: unknown): number {
  const e = err as { errno?: number; code?: string };
  if (typeof e?.code === 'string' && byCode[e.code] !== undefined) return byCode[e.code];
  if (typeof e?.errno === 'number') return Math.abs(e.errno);
  return EIO;
}
