// Static device nodes (kmod 34.2's `kmod static-nodes`, tools/static-nodes.c): modules.devname, written
// by depmod, lists the device nodes that loading a module would create ("name devname c|bMAJ:MIN"), so
// that a boot system can create them before the module is loaded. This module reads that file exactly as
// kmod does (fgets into a 4096-byte buffer, then sscanf "%s %s %c%u:%u") and renders it in kmod's three
// formats; src/cli/kmod.ts prints.
import * as fs from '../file/binary-os';
import { PATH_MAX } from '../file/binary-os';
import { fgetsPieces, readFileBytes } from '../file/read-text';
import { EISDIR, ENOENT, errnoOf } from '../errno';
import { KmodError } from '../errors';
import { mkdirParents } from '../file/mkdir-p';

export { mkdirParents };

/** kmod's compiled-in module directory (Debian's build); static-nodes takes no root or version option. */
export const STATIC_NODES_MODULE_DIRECTORY = '/lib/modules';

export type StaticNodesFormat = 'human' | 'tmpfiles' | 'devname';
/** in kmod's order (its help lists them so) */
export const staticNodesFormats: readonly StaticNodesFormat[] = ['human', 'tmpfiles', 'devname'];

export interface DevnameEntry {
  module: string;
  /** the node's path under /dev */
  devname: string;
  type: 'c' | 'b';
  /** unsigned 32-bit, as sscanf's %u stores them (so "-1" is 4294967295) */
  major: number;
  minor: number;
}

/** One read of the file: an entry, or a line kmod rejects (`text` as kmod echoes it, newline included). */
export type DevnameRecord = { kind: 'entry'; entry: DevnameEntry } | { kind: 'invalid'; text: string };

/** The modules.devname kmod reads for kernel `release` ("Error: ... - path too long" when over PATH_MAX). */
export function devnamePath(release: string): string {
  const p = `${STATIC_NODES_MODULE_DIRECTORY}/${release}/modules.devname`;
  if (p.length >= PATH_MAX) throw new KmodError(36 /* ENAMETOOLONG */, `${p}: path too long`, { file: p });
  return p;
}

/**
 * The file's bytes as a binary string, or undefined when it does not exist (kmod: a warning, success).
 * A directory reads as empty (fopen succeeds on one and the first fgets fails). Other errors throw.
 */
export function readDevnameFile(file: string): string | undefined {
  try {
    return readFileBytes(file).toString('latin1');
  } catch (err) {
    const errno = errnoOf(err);
    if (errno === ENOENT) return undefined;
    if (errno === EISDIR) return '';
    throw new KmodError(errno, undefined, { file, cause: err });
  }
}

const isSpace = (c: string | undefined): boolean => c === ' ' || c === '\t' || c === '\n' || c === '\v' || c === '\f' || c === '\r';

/**
 * glibc's %u: optional sign and decimal digits, converted by strtoul (saturating at 2^64-1, a minus sign
 * negating modulo 2^64) and stored into an unsigned int (the low 32 bits). Returns the value and where
 * it stopped, or undefined when no digits follow.
 */
function scanUnsigned(s: string, at: number): { value: number; end: number } | undefined {
  let i = at;
  while (isSpace(s[i])) i++;
  let negative = false;
  if (s[i] === '+' || s[i] === '-') negative = s[i++] === '-';
  const start = i;
  while (s[i] !== undefined && s[i] >= '0' && s[i] <= '9') i++;
  if (i === start) return undefined;
  const ULONG_MAX = (1n << 64n) - 1n;
  let v = BigInt(s.slice(start, i));
  if (v > ULONG_MAX) v = ULONG_MAX;
  else if (negative) v = (1n << 64n) - v;
  return { value: Number(v & 0xffffffffn), end: i };
}

/** glibc's %s after skipping white space: the run of non-space characters, or undefined at the end. */
function scanWord(s: string, at: number): { word: string; end: number } | undefined {
  let i = at;
  while (isSpace(s[i])) i++;
  const start = i;
  while (i < s.length && !isSpace(s[i])) i++;
  return i === start ? undefined : { word: s.slice(start, i), end: i };
}

/** sscanf(line, "%s %s %c%u:%u"): the entry when all five convert and the type is c or b. */
function scanEntry(line: string): DevnameEntry | undefined {
  const mod = scanWord(line, 0);
  if (!mod) return undefined;
  const dev = scanWord(line, mod.end);
  if (!dev) return undefined;
  let i = dev.end;
  while (isSpace(line[i])) i++;
  if (i >= line.length) return undefined;
  const type = line[i++];
  const major = scanUnsigned(line, i);
  if (!major || line[major.end] !== ':') return undefined;
  const minor = scanUnsigned(line, major.end + 1);
  if (!minor || (type !== 'c' && type !== 'b')) return undefined;
  return { module: mod.word, devname: dev.word, type, major: major.value, minor: minor.value };
}

/**
 * Parses modules.devname as kmod reads it: pieces of at most 4095 bytes ending at a newline (a longer line
 * is read as several), each cut at its first NUL byte; pieces starting with '#' are comments; any other
 * piece that does not scan (blank lines included) is an invalid record.
 */
export function parseDevname(text: string): DevnameRecord[] {
  const records: DevnameRecord[] = [];
  for (const piece of fgetsPieces(text)) {
    if (piece[0] === '#') continue;
    const entry = scanEntry(piece);
    records.push(entry ? { kind: 'entry', entry } : { kind: 'invalid', text: piece });
  }
  return records;
}

/** One entry in `format`, as kmod's write_human/write_tmpfiles/write_devname print it. */
export function formatDevnameEntry(e: DevnameEntry, format: StaticNodesFormat): string {
  switch (format) {
    case 'human':
      return (
        `Module: ${e.module}\n\tDevice node: /dev/${e.devname}\n` +
        `\t\tType: ${e.type === 'c' ? 'character' : 'block'} device\n\t\tMajor: ${e.major}\n\t\tMinor: ${e.minor}\n`
      );
    case 'tmpfiles': {
      const slash = e.devname.lastIndexOf('/');
      const dir = slash >= 0 ? `d /dev/${e.devname.slice(0, slash)} 0755 - - -\n` : '';
      return `${dir}${e.type}! /dev/${e.devname} 0600 - - - ${e.major}:${e.minor}\n`;
    }
    case 'devname':
      return `${e.module} ${e.devname} ${e.type}${e.major}:${e.minor}\n`;
  }
}

/** Why an output file could not be opened: its parent directories, or the file itself. */
export class StaticNodesOutputError extends KmodError {
  constructor(readonly stage: 'parent-directory' | 'create', file: string, errno: number, cause?: unknown) {
    super(errno, undefined, { file, cause });
    this.name = 'StaticNodesOutputError';
  }
}

/**
 * Opens `file` for the output as kmod does: parent directories first, then open(O_WRONLY|O_CREAT|O_TRUNC,
 * 0666), in place (the output may be a device, a pipe or a link, as for kmod). Returns the descriptor.
 */
export function openStaticNodesOutput(file: string): number {
  const errno = mkdirParents(file);
  if (errno !== 0) throw new StaticNodesOutputError('parent-directory', file, errno);
  try {
    return fs.openSync(file, 'w', 0o666);
  } catch (err) {
    throw new StaticNodesOutputError('create', file, errnoOf(err), err);
  }
}

/** Writes `text` to an opened output and closes it; like kmod, failed writes are not reported. */
export function writeStaticNodesOutput(fd: number, text: string): void {
  const data = Buffer.from(text, 'latin1');
  try {
    let off = 0;
    while (off < data.length) off += fs.writeSync(fd, data, off, data.length - off);
  } catch {
    // kmod ignores fprintf's and fclose's results: a full disk still exits 0 (docs/compat.md)
  } finally {
    fs.closeSync(fd);
  }
}
