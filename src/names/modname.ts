// Module-name normalization as kmod does it (shared/util.c): module names use '_' where files and
// users may write '-'; alias patterns keep '-' inside [...] character classes.

/** kmod's name buffers are PATH_MAX (4096) bytes: longer names are cut at 4095 characters. */
const NAME_MAX_CHARS = 4095;

/**
 * modname_normalize(): the part before the first '.', with '-' turned into '_'
 * ("snd-hda-intel.ko.xz" → "snd_hda_intel").
 */
export function modnameNormalize(name: string): string {
  let end = name.length;
  const dot = name.indexOf('.');
  if (dot >= 0) end = dot;
  const nul = name.indexOf('\0');
  if (nul >= 0 && nul < end) end = nul;
  if (end > NAME_MAX_CHARS) end = NAME_MAX_CHARS;
  const s = name.slice(0, end);
  return s.includes('-') ? s.replaceAll('-', '_') : s;
}

/** The extensions of module files kmod knows (kmod_exts); kmodts reads all three compressions. */
const KMOD_EXTENSIONS = ['.ko', '.ko.gz', '.ko.xz', '.ko.zst'];

/**
 * path_ends_with_kmod_ext(): whether a path ends in a module extension with something before it (".ko"
 * alone does not count: modinfo takes it as an alias, depmod skips such a file).
 */
export function pathEndsWithKmodExt(path: string): boolean {
  // (indexed: called per file; unoptimized, those allocate iterators (decisions.md))
  for (let k = 0; k < KMOD_EXTENSIONS.length; k++) if (path.length > KMOD_EXTENSIONS[k].length && path.endsWith(KMOD_EXTENSIONS[k])) return true;
  return false;
}

/**
 * path_to_modname(): the normalized module name of a file path ("kernel/fs/foo-bar.ko.zst" → "foo_bar");
 * null when the path ends in '/' or is empty (no basename).
 */
export function modnameFromPath(path: string): string | null {
  const base = path.slice(path.lastIndexOf('/') + 1);
  if (base === '') return null;
  return modnameNormalize(base);
}

/**
 * The bracket rule shared by alias_normalize() and underscores(): '-' becomes '_' except inside a
 * [...] class; a ']' outside a class or a '[' never closed makes the name invalid (kmod's -EINVAL).
 * `text` is the name as kmod's in-place loop leaves it, also when invalid (dashes before the bad
 * bracket already turned); `limit` cuts the result as alias_normalize's fixed buffer does.
 */
function dashesToUnderscores(s: string, limit: number): { text: string; valid: boolean } {
  // string searches, not a regular expression: each regex costs a compile on its first use, and this
  // runs at every start (start-up is measured in bench/modprobe.bench.js)
  if (s.length <= limit && !s.includes('[') && !s.includes(']') && !s.includes('\0')) return { text: s.includes('-') ? s.replaceAll('-', '_') : s, valid: true };
  let out = '';
  let i = 0;
  for (; i < limit && i < s.length; i++) {
    const c = s[i];
    if (c === '\0') break;
    if (c === '-') out += '_';
    else if (c === ']') return { text: out + s.slice(i), valid: false };
    else if (c === '[') {
      const close = s.indexOf(']', i);
      const nul = s.indexOf('\0', i);
      if (close < 0 || (nul >= 0 && nul < close)) return { text: out + s.slice(i), valid: false };
      out += s.slice(i, close + 1);
      i = close;
    } else out += c;
  }
  return { text: out, valid: true };
}

/**
 * alias_normalize(): what every lookup name goes through before kmod searches for it ('-' → '_'
 * outside [...]). Returns null for bad brackets, where kmod fails with -EINVAL.
 */
export function aliasNormalize(alias: string): string | null {
  const r = dashesToUnderscores(alias, NAME_MAX_CHARS);
  return r.valid ? r.text : null;
}

/**
 * underscores(): the configuration parser's in-place variant of aliasNormalize (no length limit).
 * Returns null for bad brackets or a missing word (kmod's -EINVAL for a NULL argument).
 */
export function underscores(s: string | null | undefined): string | null {
  if (s === null || s === undefined) return null;
  const r = dashesToUnderscores(s, Number.POSITIVE_INFINITY);
  return r.valid ? r.text : null;
}

/**
 * underscores() as kmod runs it, in place: the text it leaves behind even when it fails, which
 * kmod then prints in its message (`a-b]-c` → `a_b]-c`, invalid).
 */
export function underscoresInPlace(s: string): { text: string; valid: boolean } {
  return dashesToUnderscores(s, Number.POSITIVE_INFINITY);
}
