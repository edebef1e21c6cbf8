// A file written in order through one small buffer. Fresh memory is dear where page faults are (several
// microseconds each on a virtual machine): depmod's 5 MB scan cache made in one buffer before it was
// written cost ~27 ms of faults there, and thousands of small parts written one system call each, or
// gathered into iovecs, cost as much in calls.
import * as fs from './binary-os';

/** `bytes` written at `position` of fd (short writes continued) */
export function writeAllAt(fd: number, bytes: Uint8Array, position: number): void {
  for (let done = 0; done < bytes.length; ) done += fs.writeSync(fd, bytes, done, bytes.length - done, position + done);
}

export interface ChunkedWrite {
  /** the next bytes of the file */
  put(bytes: Uint8Array): void;
  /** n zero bytes (n < 8: padding) */
  zeros(n: number): void;
  /** writes what is left */
  finish(): void;
}

const ZEROS = new Uint8Array(8);

/**
 * The bytes put, written from `start` of fd in chunks of `chunkBytes` (a part as large goes out on its
 * own); `written` sees every non-empty piece in file order as it goes out (a checksum, say).
 */
export function chunkedWrite(fd: number, start: number, written: (bytes: Uint8Array) => void, chunkBytes = 256 << 10): ChunkedWrite {
  const chunk = Buffer.allocUnsafeSlow(chunkBytes);
  let used = 0;
  let position = start;
  const emit = (bytes: Uint8Array): void => {
    if (bytes.length === 0) return;
    written(bytes);
    writeAllAt(fd, bytes, position);
    position += bytes.length;
  };
  const flush = (): void => {
    emit(chunk.subarray(0, used));
    used = 0;
  };
  const put = (bytes: Uint8Array): void => {
    if (used + bytes.length > chunkBytes) flush();
    if (bytes.length >= chunkBytes) emit(bytes);
    else {
      chunk.set(bytes, used);
      used += bytes.length;
    }
  };
  return { put, zeros: (n) => put(ZEROS.subarray(0, n)), finish: flush };
}
