// Binary strings (one char per byte) handed to the addon as bytes one after another with their lengths,
// and back: depmod's names for the addon's hash order, symbol table and text makers.

/** strings one after another as bytes (null: a char above 0xff, which has no byte), and their lengths */
export interface JoinedBytes {
  bytes: Uint8Array | null;
  lengths: Uint32Array;
}

const ABOVE_LATIN1 = /[^\0-\xff]/;

/** whether a char of s is above 0xff (a binary string's never is) */
export function aboveLatin1(s: string): boolean {
  return ABOVE_LATIN1.test(s);
}

/** the strings' bytes (one join, one conversion) and lengths */
export function joinedBytes(parts: string[]): JoinedBytes {
  const lengths = new Uint32Array(parts.length);
  for (let k = 0; k < parts.length; k++) lengths[k] = parts[k].length;
  const joined = parts.join('');
  return { bytes: aboveLatin1(joined) ? null : Buffer.from(joined, 'latin1'), lengths };
}

/** each module list's names as bytes (modnameBytes): a depmod run's list is made once and not changed after */
const modnamesOf = new WeakMap<readonly { readonly modname: string }[], JoinedBytes>();

/**
 * The modules' names joined as bytes, made once per list: the addon's symbol table (owned-symbols.ts)
 * and its alias files (alias-files.ts) both take them, ~1-2 ms each on the full tree.
 */
export function modnameBytes(mods: readonly { readonly modname: string }[]): JoinedBytes {
  let made = modnamesOf.get(mods);
  if (made === undefined) modnamesOf.set(mods, (made = joinedBytes(mods.map((m) => m.modname))));
  return made;
}

/** the strings of bytes made by joinedBytes (or the addon): one decode, then a slice each */
export function splitJoined({ bytes, lengths }: JoinedBytes): string[] {
  const all = Buffer.from(bytes!.buffer, bytes!.byteOffset, bytes!.byteLength).toString('latin1');
  const out: string[] = new Array(lengths.length);
  for (let k = 0, at = 0; k < lengths.length; at += lengths[k], k++) out[k] = all.slice(at, at + lengths[k]);
  return out;
}
