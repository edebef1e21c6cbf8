// Builds kmod's binary index (a Patricia trie of key -> prioritised values) and serialises it the way
// kmod 34's depmod does: header, then every node in pre-order (node, then its children by ascending
// character), child references computed from precomputed subtree sizes. See KMOD.md §6.
//
// Keys and values are "binary strings": one JS char per byte (latin1), so comparisons and lengths are
// bytewise as in C.
import { INDEX_MAGIC, INDEX_VERSION, INDEX_NODE_CHILDS, INDEX_NODE_PREFIX, INDEX_NODE_VALUES } from './format';

/** Only 7-bit characters may appear in index keys and values (kmod CRITs otherwise). */
export const INDEX_CHILDMAX = 128;

interface TrieValue {
  priority: number;
  value: string;
}

interface TrieNode {
  prefix: string;
  /** child characters in ascending order, and the children in the same order (small: most nodes have few) */
  chars: number[] | undefined;
  children: TrieNode[] | undefined;
  first: number;
  last: number;
  /** kept in ascending priority; a new value goes before the first with priority >= its own */
  values: TrieValue[] | undefined;
  size: number;
  total: number;
}

function newNode(prefix: string): TrieNode {
  return { prefix, chars: undefined, children: undefined, first: INDEX_CHILDMAX, last: 0, values: undefined, size: 0, total: 0 };
}

/** Thrown for a key or value with a byte >= 128 (kmod: "Module index: bad character ..." FATAL). */
export class IndexCharacterError extends Error {
  constructor(readonly char: number, readonly text: string) {
    super(`Module index: bad character '${String.fromCharCode(char)}'=0x${char.toString(16)} - only 7-bit ASCII is supported:\n${text}\n`);
    this.name = 'IndexCharacterError';
  }
}

/** any byte >= 128 (one native search instead of a loop over every character of every key and value) */
const NOT_7BIT = /[^\x00-\x7f]/;

function checkString(s: string): void {
  const m = NOT_7BIT.exec(s);
  if (m !== null) throw new IndexCharacterError(m[0].charCodeAt(0), s);
}

function addValue(node: TrieNode, value: string, priority: number): boolean {
  let values = node.values;
  if (values === undefined) {
    node.values = [{ priority, value }];
    return false;
  }
  let duplicate = false;
  for (const v of values) if (v.value === value) duplicate = true;
  let i = 0;
  while (i < values.length && values[i].priority < priority) i++;
  values.splice(i, 0, { priority, value });
  return duplicate;
}

/** An in-memory index as depmod builds it. */
export class IndexBuilder {
  private readonly root = newNode('');

  /**
   * Adds value under key with priority. Returns true when the key already held an equal value
   * (depmod's -w "duplicate" warnings).
   */
  insert(key: string, value: string, priority: number): boolean {
    checkString(key);
    checkString(value);
    let node = this.root;
    let i = 0;
    for (;;) {
      const prefix = node.prefix;
      let j = 0;
      for (; j < prefix.length; j++) {
        const ch = prefix.charCodeAt(j);
        if (ch !== (i + j < key.length ? key.charCodeAt(i + j) : 0)) {
          // split: the node keeps prefix[0..j), a new child at prefix[j] takes the rest and the contents
          const child: TrieNode = {
            prefix: prefix.slice(j + 1),
            chars: node.chars,
            children: node.children,
            first: node.first,
            last: node.last,
            values: node.values,
            size: 0,
            total: 0,
          };
          node.prefix = prefix.slice(0, j);
          node.chars = [ch];
          node.children = [child];
          node.first = ch;
          node.last = ch;
          node.values = undefined;
          break;
        }
      }
      i += j;
      if (i === key.length) return addValue(node, value, priority);
      const ch = key.charCodeAt(i);
      const chars = node.chars;
      let k = 0;
      if (chars !== undefined) while (k < chars.length && chars[k] < ch) k++;
      if (chars === undefined || k === chars.length || chars[k] !== ch) {
        if (ch < node.first) node.first = ch;
        if (ch > node.last) node.last = ch;
        const child = newNode(key.slice(i + 1));
        child.values = [{ priority, value }];
        if (chars === undefined) {
          node.chars = [ch];
          node.children = [child];
        } else {
          chars.splice(k, 0, ch);
          node.children!.splice(k, 0, child);
        }
        return false;
      }
      node = node.children![k];
      i++;
    }
  }

  /** The file contents, kmod 34 layout (pre-order). */
  serialize(): Buffer {
    const total = computeSize(this.root);
    // zeroed: absent children are null references and need no writing
    const out = Buffer.alloc(12 + total);
    out.writeUInt32BE(INDEX_MAGIC, 0);
    out.writeUInt32BE(INDEX_VERSION, 4);
    out.writeUInt32BE((12 | mask(this.root)) >>> 0, 8);
    const end = writeNode(this.root, out, 12);
    if (end !== out.length) throw new Error(`index writer: wrote ${end} of ${out.length} bytes`);
    return out;
  }
}

function hasChildren(n: TrieNode): boolean {
  return n.first < INDEX_CHILDMAX;
}

function mask(n: TrieNode): number {
  let m = 0;
  if (hasChildren(n)) m |= INDEX_NODE_CHILDS;
  if (n.prefix.length > 0) m |= INDEX_NODE_PREFIX;
  if (n.values !== undefined) m |= INDEX_NODE_VALUES;
  return m;
}

function computeSize(n: TrieNode): number {
  let size = 0;
  let total = 0;
  if (hasChildren(n)) {
    size += 2 + (n.last - n.first + 1) * 4;
    for (const child of n.children!) total += computeSize(child);
  }
  if (n.prefix.length > 0) size += n.prefix.length + 1;
  if (n.values !== undefined) {
    size += 4;
    for (const v of n.values) size += 4 + v.value.length + 1;
  }
  n.size = size;
  n.total = total + size;
  return n.total;
}

/** a 7-bit string's bytes at pos, then its NUL; returns the position after the NUL */
function writeString(out: Buffer, pos: number, s: string): number {
  for (let i = 0; i < s.length; i++) out[pos++] = s.charCodeAt(i);
  out[pos++] = 0;
  return pos;
}

/** Writes n at offset (pre-order) and returns the offset after its subtree. */
function writeNode(n: TrieNode, out: Buffer, offset: number): number {
  let pos = offset;
  if (n.prefix.length > 0) pos = writeString(out, pos, n.prefix);
  if (hasChildren(n)) {
    out[pos++] = n.first;
    out[pos++] = n.last;
    const chars = n.chars!;
    const children = n.children!;
    let childOff = offset + n.size;
    for (let k = 0; k < chars.length; k++) {
      const child = children[k];
      out.writeUInt32BE((childOff | mask(child)) >>> 0, pos + 4 * (chars[k] - n.first));
      childOff += child.total;
    }
    pos += 4 * (n.last - n.first + 1);
  }
  if (n.values !== undefined) {
    out.writeUInt32BE(n.values.length, pos);
    pos += 4;
    for (const v of n.values) {
      out.writeUInt32BE(v.priority >>> 0, pos);
      pos = writeString(out, pos + 4, v.value);
    }
  }
  if (hasChildren(n)) {
    for (const child of n.children!) pos = writeNode(child, out, pos);
  }
  return pos;
}
