// kmod's mkdir_p() and mkdir_parents() (shared/util.c): the directories of a path created with a mode,
// from the longest prefix that is a directory on. Node's recursive mkdirSync differs: it reports another
// errno (ENOENT where a read-only file system refuses the first mkdir with EROFS) and, where mkdir keeps
// failing with ENOENT under an existing directory (/proc/self), it never returns.
import * as fs from './binary-os';
import { EEXIST, ENOTDIR, errnoOf } from '../errno';

/** stat's verdict on a path: a directory, something else, or an error (kmod's is_dir()). */
function isDir(p: string): boolean | 'error' {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return 'error';
  }
}

/**
 * mkdir_p(dir): each prefix of `dir` ending before a run of '/' (and `dir` itself), shortest first; from
 * the longest one that is a directory on, each made with `mode`. Something there that is not a
 * directory is ENOTDIR; a directory that appears meanwhile (EEXIST) is fine. Returns 0 or the errno.
 */
export function mkdirP(dir: string, mode = 0o755): number {
  if (dir === '') return 0;
  const prefixes: string[] = [];
  for (let i = 1; i < dir.length; i++) if (dir[i] === '/' && dir[i - 1] !== '/') prefixes.push(dir.slice(0, i));
  prefixes.push(dir);
  let first = 0;
  for (let i = prefixes.length - 1; i >= 0; i--) {
    const d = isDir(prefixes[i]);
    if (d === true) {
      first = i + 1;
      break;
    }
    if (d === false) return ENOTDIR;
  }
  for (let i = first; i < prefixes.length; i++) {
    try {
      fs.mkdirSync(prefixes[i], { mode });
    } catch (err) {
      const errno = errnoOf(err);
      if (errno !== EEXIST) return errno;
    }
  }
  return 0;
}

/** mkdir_parents(file): mkdirP of what comes before the last '/' of `file` (nothing without one). */
export function mkdirParents(file: string): number {
  return mkdirP(file.slice(0, Math.max(file.lastIndexOf('/'), 0)));
}
