// Reading a file as a binary string (one char per byte, as every kmodts parser takes its input).
import { readFileSync } from './binary-os';

/**
 * The file's bytes as a latin1 string. Node reads UTF-8 in one native call but latin1 through its
 * JavaScript read loop (~3x slower for small files, measured at start-up); for an ASCII file both give
 * the same string, so UTF-8 is tried first and the file read again as latin1 only when it has a byte
 * above 0x7f (a decoded string whose UTF-8 length differs from its length). Throws as readFileSync.
 */
export function readBinaryString(file: string): string {
  const text = readFileSync(file, 'utf8');
  return Buffer.byteLength(text, 'utf8') === text.length ? text : readFileSync(file, 'latin1');
}
