// A module's __versions entries by name, for module-scan.ts: each import's CRC is the first entry of its
// name (kmod_elf_crc_find scans from the start). Module-level and reused from module to module.
import { FNV_OFFSET, FNV_PRIME } from './hash';

/**
 * A module's __versions entries by name, for the first entry of each name (kmod_elf_crc_find scans
 * from the start): an open-addressing table in typed arrays reused from module to module, keyed by
 * FNV-1a and confirmed byte by byte. No string is made for an entry.
 */
export const versionIndex = {
  /** entry index + 1 by slot, 0 for none */
  slots: new Int32Array(256),
  keys: new Int32Array(128),
  /** each entry's name length, -1 when its slot holds no NUL */
  lens: new Int32Array(128),
  /** 1 for each entry a symbol has used */
  used: new Uint8Array(128),
  mask: 0,
  d: Buffer.alloc(0) as Buffer,
  /** offset of entry 0's name; entries `stride` bytes apart */
  names: 0,
  stride: 64,
};

/** indexes `count` entries whose `namlen`-byte names start at `names`, `stride` bytes apart */
export function indexVersions(d: Buffer, names: number, count: number, namlen: number, stride: number): void {
  const v = versionIndex;
  let size = 16;
  while (size < count * 2) size *= 2;
  const mask = size - 1;
  if (v.slots.length < size) v.slots = new Int32Array(size);
  if (v.keys.length < count) {
    v.keys = new Int32Array(size);
    v.lens = new Int32Array(size);
    v.used = new Uint8Array(size);
  }
  v.mask = mask;
  v.d = d;
  v.names = names;
  v.stride = stride;
  const { slots, keys, lens, used } = v;
  used.fill(0, 0, count);
  slots.fill(0, 0, size);
  for (let i = 0; i < count; i++) {
    const no = names + i * stride;
    // the name's length and FNV-1a in one pass
    let len = 0;
    let h = FNV_OFFSET;
    for (; len < namlen; len++) {
      const c = d[no + len];
      if (c === 0) break;
      h = Math.imul(h ^ c, FNV_PRIME);
    }
    if (len === namlen) {
      lens[i] = -1; // no NUL in the slot
      continue;
    }
    h |= 0;
    keys[i] = h;
    lens[i] = len;
    let slot = h & mask;
    for (; slots[slot] !== 0; slot = (slot + 1) & mask) if (sameVersion(slots[slot] - 1, no, len, h)) break;
    if (slots[slot] === 0) slots[slot] = i + 1;
  }
}

/** is entry i named like the len bytes at start (whose FNV-1a is h)? */
function sameVersion(i: number, start: number, len: number, h: number): boolean {
  const v = versionIndex;
  if (v.keys[i] !== h || v.lens[i] !== len) return false;
  const d = v.d;
  const vo = v.names + i * v.stride;
  for (let k = 0; k < len; k++) if (d[vo + k] !== d[start + k]) return false;
  return true;
}

/** the first entry named like d[start..end) (whose FNV-1a is h), or -1 */
export function findVersion(start: number, end: number, h: number): number {
  const { slots, mask } = versionIndex;
  for (let slot = h & mask; slots[slot] !== 0; slot = (slot + 1) & mask) {
    if (sameVersion(slots[slot] - 1, start, end - start, h)) return slots[slot] - 1;
  }
  return -1;
}

