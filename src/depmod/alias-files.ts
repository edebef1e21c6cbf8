// The depmod outputs made from the modules' modinfo alone: modules.alias(.bin), modules.softdep,
// modules.weakdep and modules.devname. They need no symbol resolution; each comes with the messages
// making it gave (and the FATAL that stopped it, if any), so depmod reports them at the file's turn, in
// kmod's order, wherever the files were built.
import { LOG_ERR, LOG_WARNING } from '../log';
import { IndexBatch, IndexBuilder, IndexCharacterError } from '../indexes/writer';
import { aliasNormalize } from '../names/modname';
import { nativeFunction } from '../native-addon';
import { modnameBytes, type JoinedBytes } from './joined-bytes';

/** What a module contributes (its index is its position in the list, kmod's module order). */
export interface AliasSource {
  modname: string;
  /** its aliases; may be left empty where `pieces` stand for them, unless one starts with "devname:" */
  aliases: string[];
  softdeps: string[];
  weakdeps: string[];
  /** its share of modules.alias and modules.alias.bin ready made (from the scan cache), if it has them */
  pieces?: AliasPieces;
}

/**
 * A module's share of modules.alias and modules.alias.bin as bytes (kept in depmod's scan cache, so that
 * a run that takes the module from the cache makes no string for each of its aliases): its lines of
 * modules.alias, and its normalized aliases (the index keys), one after the other, with their lengths.
 */
export interface AliasPieces {
  lines: Uint8Array;
  keys: Uint8Array;
  keyLengths: Uint32Array;
  /**
   * Where they lie, as the addon's alias files take them (native/alias_files.c): pieces kept in a buffer
   * of their own write their row at rows[at, at + 8), `source` giving a buffer's index among the sources.
   * Those without it are copied.
   */
  placeRow?(rows: Uint32Array, at: number, source: (buffer: ArrayBufferLike) => number): void;
}

/**
 * The pieces of a module with these aliases, or null when one of them makes a message or stops the
 * index (an unmatched bracket, a byte above 127): such a module's aliases are always gone through one by
 * one, so that the message comes in its place.
 */
export function aliasPieces(mod: ModinfoAliases): AliasPieces | null {
  const keys: string[] = [];
  for (const a of mod.aliases) {
    const key = aliasNormalize(a);
    if (key === null || NOT_7BIT.test(key)) return null;
    keys.push(key);
  }
  return {
    lines: Buffer.from(aliasLines(mod), 'latin1'),
    keys: Buffer.from(keys.join(''), 'latin1'),
    keyLengths: Uint32Array.from(keys, (k) => k.length),
  };
}

const NOT_7BIT = /[^\x00-\x7f]/;

export const ALIAS_FILE_NAMES = ['modules.alias', 'modules.alias.bin', 'modules.softdep', 'modules.weakdep', 'modules.devname'] as const;
export type AliasFileName = (typeof ALIAS_FILE_NAMES)[number];

/** One output file: its contents (null: not written, as .bin files with -n), the messages making it gave, or the FATAL that stopped it. */
export interface BuiltFile {
  /** (a promise where its index is built on the thread pool) */
  data: string | Uint8Array | Promise<Uint8Array> | null;
  logs: [priority: number, message: string][];
  fatal?: string;
}

export interface AliasFileOptions {
  dryRun: boolean;
  warnDuplicates: boolean;
  /** modules.alias.bin built on libuv's thread pool (IndexBatch.serializeInBackground), where it can be */
  inBackground?: boolean;
  /** the modules' names as bytes, where the caller keeps them (asked for only by the addon's alias files) */
  moduleNames?: () => JoinedBytes;
}

export function buildAliasFiles(mods: AliasSource[], opts: AliasFileOptions): Record<AliasFileName, BuiltFile> {
  const native = opts.dryRun || opts.warnDuplicates || opts.inBackground !== true ? null : nativeAliasFiles(mods, opts.moduleNames);
  return {
    'modules.alias': { data: native?.[0] ?? aliasText(mods), logs: [] },
    'modules.alias.bin': opts.dryRun ? { data: null, logs: [] } : native !== null ? { data: native[1], logs: [] } : aliasBin(mods, opts.warnDuplicates, opts.inBackground === true),
    'modules.softdep': { data: listText(mods, '# Soft dependencies extracted from modules themselves.\n', 'softdep', (m) => m.softdeps), logs: [] },
    'modules.weakdep': { data: listText(mods, '# Weak dependencies extracted from modules themselves.\n', 'weakdep', (m) => m.weakdeps), logs: [] },
    'modules.devname': devname(mods),
  };
}

type ModinfoAliases = Pick<AliasSource, 'modname' | 'aliases'>;

const ALIAS_HEADER = '# Aliases extracted from modules themselves.\n';

let nativeAliasFilesOn = true;

/** Whether modules.alias(.bin) are made by the addon where it can (false: in JavaScript; tests compare the two). Returns whether they are. */
export function useNativeAliasFiles(on: boolean): boolean {
  nativeAliasFilesOn = on;
  return on && nativeFunction('aliasFiles') !== null;
}

/**
 * modules.alias, and modules.alias.bin built on the pool, by the addon from every module's pieces where
 * they lie (a cached run's in its cache's buffer; a new scan's copied into one); null where it cannot:
 * no addon, a module without pieces, a key or name that is not 7-bit, or too many buffers
 */
function nativeAliasFiles(mods: AliasSource[], moduleNames: (() => JoinedBytes) | undefined): [Uint8Array, Promise<Uint8Array>] | null {
  const make = nativeAliasFilesOn ? nativeFunction('aliasFiles') : null;
  if (make === null) return null;
  const names = moduleNames?.() ?? modnameBytes(mods);
  if (names.bytes === null) return null;
  const sources: Uint8Array[] = [];
  const known: ArrayBufferLike[] = [];
  const source = (buffer: ArrayBufferLike): number => {
    let i = known.indexOf(buffer);
    if (i < 0) {
      i = known.push(buffer) - 1;
      sources.push(new Uint8Array(buffer));
    }
    return i;
  };
  // pieces without a place of their own: their lines and keys, and their key lengths, copied into two more sources
  const copied: Uint8Array[] = [];
  const copiedLengths: Uint32Array[] = [];
  let copiedBytes = 0;
  let copiedKeys = 0;
  const rows = new Uint32Array(ROW * mods.length);
  for (let k = 0; k < mods.length; k++) {
    const p = mods[k].pieces;
    if (p === undefined) return null;
    if (p.placeRow !== undefined) {
      p.placeRow(rows, ROW * k, source);
      continue;
    }
    const { lines, keys, keyLengths } = p;
    rows.set([COPIED, copiedBytes, lines.length, copiedBytes + lines.length, keys.length, COPIED_LENGTHS, 4 * copiedKeys, keyLengths.length], ROW * k);
    copied.push(lines, keys);
    copiedLengths.push(keyLengths);
    copiedBytes += lines.length + keys.length;
    copiedKeys += keyLengths.length;
  }
  if (known.length > COPIED) return null;
  while (sources.length < COPIED) sources.push(new Uint8Array(0));
  const text = new Uint8Array(copiedBytes);
  for (let k = 0, at = 0; k < copied.length; at += copied[k].length, k++) text.set(copied[k], at);
  const lengths = new Uint32Array(copiedKeys);
  for (let k = 0, at = 0; k < copiedLengths.length; at += copiedLengths[k].length, k++) lengths.set(copiedLengths[k], at);
  sources.push(text, new Uint8Array(lengths.buffer));
  return make(sources, rows, names.bytes, names.lengths, ALIAS_HEADER);
}

/** the numbers of a module's row (native/alias_files.c), and the sources of copied pieces (after those placed) */
const ROW = 8;
const COPIED = 6;
const COPIED_LENGTHS = 7;

/** a module's lines of modules.alias */
function aliasLines(m: ModinfoAliases): string {
  let lines = '';
  for (const a of m.aliases) lines += `alias ${a} ${m.modname}\n`;
  return lines;
}

function aliasText(mods: AliasSource[]): Uint8Array {
  const parts: Uint8Array[] = [Buffer.from(ALIAS_HEADER, 'latin1')];
  // modules without pieces (scanned in this run) in runs of lines, each run one string
  let run = '';
  for (let k = 0; k < mods.length; k++) {
    const pieces = mods[k].pieces;
    if (pieces === undefined) {
      run += aliasLines(mods[k]);
      continue;
    }
    if (run !== '') parts.push(Buffer.from(run, 'latin1'));
    run = '';
    parts.push(pieces.lines);
  }
  if (run !== '') parts.push(Buffer.from(run, 'latin1'));
  // TypedArray set() for each part: Buffer.concat makes another view of each of the thousands of parts
  let total = 0;
  for (let k = 0; k < parts.length; k++) total += parts[k].length;
  const out = Buffer.allocUnsafe(total);
  for (let k = 0, at = 0; k < parts.length; at += parts[k].length, k++) out.set(parts[k], at);
  return out;
}

function listText(mods: AliasSource[], header: string, word: string, list: (m: AliasSource) => string[]): string {
  const parts = [header];
  for (let k = 0; k < mods.length; k++) {
    const values = list(mods[k]);
    for (let j = 0; j < values.length; j++) parts.push(`${word} ${mods[k].modname} ${values[j]}\n`);
  }
  return parts.join('');
}

function aliasBin(mods: AliasSource[], warnDuplicates: boolean, inBackground: boolean): BuiltFile {
  const logs: BuiltFile['logs'] = [];
  // built at once (natively when the helper is there) unless each duplicate is to be reported
  const idx = warnDuplicates ? new IndexBuilder() : new IndexBatch();
  for (let k = 0; k < mods.length; k++) {
    const m = mods[k];
    const pieces = m.pieces;
    if (pieces !== undefined && idx instanceof IndexBatch) {
      if (pieces.keyLengths.length === 0) continue;
      try {
        idx.insertKeys(pieces.keys, pieces.keyLengths, m.modname, k);
      } catch (err) {
        if (err instanceof IndexCharacterError) return { data: null, logs, fatal: err.message };
        throw err;
      }
      continue;
    }
    for (const a of pieces === undefined ? m.aliases : piecesKeys(pieces)) {
      const alias = aliasNormalize(a);
      if (alias === null) {
        logs.push([LOG_WARNING, `Unmatched bracket in ${a}\n`]);
        continue;
      }
      let duplicate: boolean;
      try {
        duplicate = idx.insert(alias, m.modname, k);
      } catch (err) {
        if (err instanceof IndexCharacterError) return { data: null, logs, fatal: err.message };
        throw err;
      }
      if (duplicate && warnDuplicates) logs.push([LOG_WARNING, `duplicate module alias:\n${alias} ${m.modname}\n`]);
    }
  }
  return { data: inBackground && idx instanceof IndexBatch ? idx.serializeInBackground() : idx.serialize(), logs };
}

/** the keys of `pieces` as strings (with -w, whose index takes them one by one): each is its own normalized form */
function piecesKeys(pieces: AliasPieces): string[] {
  const keys: string[] = [];
  const bytes = Buffer.from(pieces.keys.buffer, pieces.keys.byteOffset, pieces.keys.byteLength);
  let at = 0;
  for (const len of pieces.keyLengths) {
    keys.push(bytes.toString('latin1', at, at + len));
    at += len;
  }
  return keys;
}

/** a module's modules.devname line, or the error for a devname without a device number; none for most */
type Devname = { line: string } | { error: string } | null;

/** does one of the aliases start with "devname:"? (a loop: unoptimized, a callback per alias costs more) */
export function hasDevname(aliases: string[]): boolean {
  for (let k = 0; k < aliases.length; k++) if (aliases[k].charCodeAt(0) === 0x64 && aliases[k].startsWith('devname:')) return true;
  return false;
}

function devnameOf(mod: ModinfoAliases): Devname {
  // most modules have no devname: one test per alias for them instead of the three below
  if (!hasDevname(mod.aliases)) return null;
  let name: string | null = null;
  let type = '';
  let major = 0;
  let minor = 0;
  for (const value of mod.aliases) {
    let mm: [number, number] | null;
    if (value.startsWith('devname:')) name = value.slice(8);
    else if ((mm = scanMajorMinor(value, 'char-major-')) !== null) {
      type = 'c';
      [major, minor] = mm;
    } else if ((mm = scanMajorMinor(value, 'block-major-')) !== null) {
      type = 'b';
      [major, minor] = mm;
    }
    if (type !== '' && name !== null) break;
  }
  if (name === null) return null;
  if (type === '') return { error: `Module '${mod.modname}' has devname (${name}) but lacks major and minor information. Ignoring.\n` };
  return { line: `${mod.modname} ${name} ${type}${major}:${minor}\n` };
}

function devname(mods: AliasSource[]): BuiltFile {
  const logs: BuiltFile['logs'] = [];
  let out = '';
  for (let k = 0; k < mods.length; k++) {
    const d = devnameOf(mods[k]);
    if (d === null || d === undefined) continue;
    if ('error' in d) logs.push([LOG_ERR, d.error]);
    else {
      if (out === '') out = '# Device nodes to trigger on-demand module loading.\n';
      out += d.line;
    }
  }
  return { data: out, logs };
}

/** sscanf(value, "<prefix>%u-%u") == 2 */
function scanMajorMinor(value: string, prefix: string): [number, number] | null {
  if (!value.startsWith(prefix)) return null;
  const m = /^[ \t\n\v\f\r]*([+-]?\d+)-[ \t\n\v\f\r]*([+-]?\d+)/.exec(value.slice(prefix.length));
  if (m === null) return null;
  return [scanUnsigned(m[1]), scanUnsigned(m[2])];
}

/** %u: strtoul then truncation to unsigned int */
function scanUnsigned(s: string): number {
  const neg = s[0] === '-';
  const digits = s.replace(/^[+-]/, '');
  let v = BigInt(digits);
  if (v > 0xffffffffffffffffn) v = 0xffffffffffffffffn;
  if (neg) v = (0x10000000000000000n - v) & 0xffffffffffffffffn;
  return Number(v & 0xffffffffn);
}
