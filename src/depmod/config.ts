// depmod.d configuration (kmod's tools/depmod.c cfg_*): search, override, external, exclude. It is kept
// apart from the modprobe.d reader (src/resolution/config.ts) because kmod has two implementations with different
// filters and messages (depmod: INFO for non-.conf names, its own error texts). Files from
// all configuration paths are merged by basename (bytewise; the first path holding a name wins) and
// parsed in that order. Lists keep kmod's linked-list order: every directive is prepended, so the last
// parsed comes first.
import * as fs from '../file/binary-os';
import * as path from 'node:path';
import { configLines, sortedInsertIndex } from '../resolution/config';
import { errnoOf, strerror } from '../errno';
import { LOG_ERR, LOG_INFO } from '../log';
import { readBinaryString } from '../file/read-text';
import { compilePosixExtended } from '../names/posix-regex';

/** kmod 34.2's default depmod.d locations, in priority order (they are not prefixed by --basedir). */
export const DEFAULT_DEPMOD_CONFIG_PATHS = [
  '/etc/depmod.d',
  '/run/depmod.d',
  '/usr/local/lib/depmod.d',
  '/usr/lib/depmod.d',
  '/lib/depmod.d',
];

export type SearchEntry = { type: 'path'; path: string } | { type: 'built-in' } | { type: 'external' };

export interface DepmodConfig {
  /** search list, highest priority first (kmod's order: later words and lines come first) */
  searches: SearchEntry[];
  /** override paths "<subdir>/<modname>", last parsed first */
  overrides: string[];
  /** external directories, last parsed first */
  externals: string[];
  /** file or directory names never descended into / never indexed */
  excludes: Set<string>;
}

/** (priority, message with trailing '\n') — depmod's own log */
export type DepmodLog = (priority: number, message: string) => void;

/**
 * freadline_wrapped() as depmod sees it: config.ts's logical lines (configLines), each cut at its first
 * NUL, where kmod's C string ends. Yields [line, number of the last physical line].
 */
export function* wrappedLines(text: string): Generator<[string, number]> {
  for (const { line, lineNumber } of configLines(text)) {
    const nul = line.indexOf('\0');
    yield [nul >= 0 ? line.slice(0, nul) : line, lineNumber];
  }
}

/** strtok_r over " \t": the words of a line */
function words(line: string): string[] {
  return line.split(/[ \t]+/).filter((w) => w !== '');
}

/** regcomp(REG_EXTENDED|REG_NOSUB) + regexec, unanchored; "*" is the old-style match-all. */
export function kernelMatches(pattern: string, kversion: string): boolean {
  if (pattern === '*') return true;
  return compilePosixExtended(pattern)?.test(kversion) ?? false;
}

function parseFile(cfg: DepmodConfig, file: string, kversion: string, log: DepmodLog): void {
  let text: string;
  try {
    text = readBinaryString(file);
  } catch (err) {
    log(LOG_ERR, `file parse ${file}: ${strerror(errnoOf(err))}\n`);
    return;
  }
  for (const [line, linenum] of wrappedLines(text)) {
    if (line === '' || line[0] === '#') continue;
    const w = words(line);
    if (w.length === 0) continue;
    const cmd = w[0];
    let bad = false;
    if (cmd === 'search') {
      for (const sp of w.slice(1)) {
        cfg.searches.unshift(sp === 'built-in' ? { type: 'built-in' } : sp === 'external' ? { type: 'external' } : { type: 'path', path: sp });
      }
    } else if (cmd === 'override') {
      if (w.length < 4) bad = true;
      else if (!kernelMatches(w[2], kversion)) log(LOG_INFO, `${file}:${linenum}: override kernel did not match ${w[2]}\n`);
      else cfg.overrides.unshift(`${w[3]}/${w[1]}`);
    } else if (cmd === 'external') {
      if (w.length < 3) bad = true;
      else if (!kernelMatches(w[1], kversion)) log(LOG_INFO, `${file}:${linenum}: external directory did not match ${w[1]}\n`);
      else cfg.externals.unshift(w[2]);
    } else if (cmd === 'exclude') {
      for (const sp of w.slice(1)) cfg.excludes.add(sp);
    } else if (cmd === 'include' || cmd === 'make_map_files') {
      log(LOG_INFO, `${file}:${linenum}: command ${cmd} not implemented yet\n`);
    } else bad = true;
    if (bad) log(LOG_ERR, `${file}:${linenum}: ignoring bad line starting with '${cmd}'\n`);
  }
}

interface CfgFile {
  name: string;
  /** the name's bytes, for strcmp's order (UTF-16 order differs for some non-ASCII names) */
  nameBytes: Buffer;
  path: string;
}

function insertSorted(files: CfgFile[], dir: string, name: string | undefined): void {
  let full: string;
  if (name === undefined) {
    full = dir;
    name = path.basename(dir);
  } else full = `${dir}/${name}`;
  const nameBytes = Buffer.from(name);
  // -1: the earlier (higher-priority) path keeps the name
  const at = sortedInsertIndex(files, nameBytes);
  if (at >= 0) files.splice(at, 0, { name, nameBytes, path: full });
}

function listFiles(files: CfgFile[], p: string, log: DepmodLog): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(p);
  } catch {
    return;
  }
  if (!st.isDirectory()) {
    insertSorted(files, p, undefined);
    return;
  }
  let dir: fs.Dir;
  try {
    dir = fs.opendirSync(p);
  } catch (err) {
    log(LOG_ERR, `files list ${p}: ${strerror(errnoOf(err))}\n`);
    return;
  }
  try {
    for (let de = dir.readSync(); de !== null; de = dir.readSync()) {
      const name = de.name;
      if (name[0] === '.') continue;
      if (name.length < 6 || !name.endsWith('.conf')) {
        log(LOG_INFO, `All cfg files need .conf: ${p}/${name}\n`);
        continue;
      }
      let est: fs.Stats;
      try {
        est = fs.statSync(`${p}/${name}`);
      } catch {
        log(LOG_ERR, `Cannot stat directory entry: ${p}${name}\n`);
        continue;
      }
      if (est.isDirectory()) {
        log(LOG_ERR, `Directories inside directories are not supported: ${p}/${name}\n`);
        continue;
      }
      insertSorted(files, p, name);
    }
  } finally {
    dir.closeSync();
  }
}

/** cfg_load(): every configuration file of `paths` (default: kmod's depmod.d directories). */
export function loadDepmodConfig(paths: string[] | undefined, kversion: string, log: DepmodLog): DepmodConfig {
  const cfg: DepmodConfig = { searches: [], overrides: [], externals: [], excludes: new Set() };
  const files: CfgFile[] = [];
  for (const p of paths ?? DEFAULT_DEPMOD_CONFIG_PATHS) listFiles(files, p, log);
  for (const f of files) parseFile(cfg, f.path, kversion, log);
  if (cfg.searches.length === 0) cfg.searches.unshift({ type: 'path', path: 'updates' });
  return cfg;
}

/** The configuration depmod uses when given module paths (no depmod.d is read). */
export function emptyDepmodConfig(): DepmodConfig {
  return { searches: [], overrides: [], externals: [], excludes: new Set() };
}
