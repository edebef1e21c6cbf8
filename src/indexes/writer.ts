// Builds kmod's binary index (a Patricia trie of key -> prioritised values) and serialises it the way
// kmod 34's depmod does: header, then every node in pre-order (node, then its children by ascending
// character), child references computed from precomputed subtree sizes. See KMOD.md §6.
//
// Nodes are kept small (depmod builds tries of tens of thousands of keys, and their objects are most
// of its garbage-collection work): a node holds the character leading to it, its children in
// character order, and its first value inline, with further values in a list only when there are any.
//
// Keys and values are "binary strings": one JS char per byte (latin1), so comparisons and lengths are
// bytewise as in C.
import { INDEX_MAGIC, INDEX_VERSION, INDEX_NODE_CHILDS, INDEX_NODE_PREFIX, INDEX_NODE_VALUES } from './format';
import { isAscii } from 'node:buffer';
import { loadNativeIndexBuilder, loadNativeIndexBuilderInBackground, type BuildIndexFn, type BuildIndexInBackgroundFn } from '../native-addon';

interface TrieValue {
  priority: number;
  value: string;
}

interface TrieNode {
  prefix: string;
  /** the character leading to this node from its parent */
  ch: number;
  /** in ascending character order */
  children: TrieNode[] | undefined;
  /** the values in file order (ascending priority; a new value goes before the first with priority >= its own) */
  value: string | undefined;
  priority: number;
  more: TrieValue[] | undefined;
  size: number;
  total: number;
}

function newNode(prefix: string, ch: number): TrieNode {
  return { prefix, ch, children: undefined, value: undefined, priority: 0, more: undefined, size: 0, total: 0 };
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
  // test() first: it makes no match object for the common clean string
  if (!NOT_7BIT.test(s)) return;
  const m = NOT_7BIT.exec(s)!;
  throw new IndexCharacterError(m[0].charCodeAt(0), s);
}

/**
 * checkString of an entry's key and value, where a value equal to `checked` (one that passed before)
 * is not checked again: depmod inserts many keys in a row with one module name as their value. Returns
 * the value, now checked.
 */
function checkEntry(key: string, value: string, checked: string | undefined): string {
  checkString(key);
  if (value !== checked) checkString(value);
  return value;
}

function addValue(node: TrieNode, value: string, priority: number): boolean {
  if (node.value === undefined) {
    node.value = value;
    node.priority = priority;
    return false;
  }
  const values: TrieValue[] = [{ priority: node.priority, value: node.value }];
  if (node.more !== undefined) values.push(...node.more);
  let duplicate = false;
  for (const v of values) if (v.value === value) duplicate = true;
  let i = 0;
  while (i < values.length && values[i].priority < priority) i++;
  values.splice(i, 0, { priority, value });
  node.value = values[0].value;
  node.priority = values[0].priority;
  node.more = values.slice(1);
  return duplicate;
}

/** What depmod writes an index through: IndexBuilder, or IndexBatch where no duplicate is reported. */
export interface IndexWriter {
  insert(key: string, value: string, priority: number): boolean;
  serialize(): Buffer;
}

/** An in-memory index as depmod builds it. */
export class IndexBuilder implements IndexWriter {
  private readonly root = newNode('', 0);
  /** the value last checked (checkEntry) */
  private checkedValue: string | undefined;

  /**
   * Adds value under key with priority. Returns true when the key already held an equal value
   * (depmod's -w "duplicate" warnings).
   */
  insert(key: string, value: string, priority: number): boolean {
    this.checkedValue = checkEntry(key, value, this.checkedValue);
    let node = this.root;
    let i = 0;
    for (;;) {
      const prefix = node.prefix;
      // the whole prefix matching is the common case: one native comparison
      if (prefix.length > 0 && !key.startsWith(prefix, i)) {
        let j = 0;
        while (i + j < key.length && prefix.charCodeAt(j) === key.charCodeAt(i + j)) j++;
        // split: the node keeps prefix[0..j), a new child at prefix[j] takes the rest and the contents
        const child: TrieNode = {
          prefix: prefix.slice(j + 1),
          ch: prefix.charCodeAt(j),
          children: node.children,
          value: node.value,
          priority: node.priority,
          more: node.more,
          size: 0,
          total: 0,
        };
        node.prefix = prefix.slice(0, j);
        node.children = [child];
        node.value = undefined;
        node.priority = 0;
        node.more = undefined;
        i += j;
      } else i += prefix.length;
      if (i === key.length) return addValue(node, value, priority);
      const ch = key.charCodeAt(i);
      const children = node.children;
      let k = 0;
      if (children !== undefined) while (k < children.length && children[k].ch < ch) k++;
      if (children === undefined || k === children.length || children[k].ch !== ch) {
        const child = newNode(key.slice(i + 1), ch);
        child.value = value;
        child.priority = priority;
        if (children === undefined) node.children = [child];
        else children.splice(k, 0, child);
        return false;
      }
      node = children[k];
      i++;
    }
  }

  /** The file contents, kmod 34 layout (pre-order). */
  serialize(): Buffer {
    const total = computeSize(this.root);
    // zeroed: absent children are null references and need no writing
    const out = Buffer.alloc(12 + total);
    writeU32(out, 0, INDEX_MAGIC);
    writeU32(out, 4, INDEX_VERSION);
    writeU32(out, 8, 12 | mask(this.root));
    const end = writeNode(this.root, out, 12);
    if (end !== out.length) throw new Error(`index writer: wrote ${end} of ${out.length} bytes`);
    return out;
  }
}

function mask(n: TrieNode): number {
  let m = 0;
  if (n.children !== undefined) m |= INDEX_NODE_CHILDS;
  if (n.prefix.length > 0) m |= INDEX_NODE_PREFIX;
  if (n.value !== undefined) m |= INDEX_NODE_VALUES;
  return m;
}

function computeSize(n: TrieNode): number {
  let size = 0;
  let total = 0;
  const children = n.children;
  if (children !== undefined) {
    size += 2 + (children[children.length - 1].ch - children[0].ch + 1) * 4;
    for (const child of children) total += computeSize(child);
  }
  if (n.prefix.length > 0) size += n.prefix.length + 1;
  if (n.value !== undefined) {
    size += 4 + 4 + n.value.length + 1;
    if (n.more !== undefined) for (const v of n.more) size += 4 + v.value.length + 1;
  }
  n.size = size;
  n.total = total + size;
  return n.total;
}

/** a big-endian u32 (byte stores: Buffer.writeUInt32BE checks its arguments on every call) */
function writeU32(out: Buffer, pos: number, v: number): void {
  out[pos] = v >>> 24;
  out[pos + 1] = v >>> 16;
  out[pos + 2] = v >>> 8;
  out[pos + 3] = v;
}

/** a 7-bit string's bytes at pos, then its NUL; returns the position after the NUL */
function writeString(out: Buffer, pos: number, s: string): number {
  const n = s.length;
  // one native copy for a long string, a loop for the many short ones (prefixes of a character or two)
  if (n > 24) out.write(s, pos, n, 'latin1');
  else for (let i = 0; i < n; i++) out[pos + i] = s.charCodeAt(i);
  out[pos + n] = 0;
  return pos + n + 1;
}

/** Writes n at offset (pre-order) and returns the offset after its subtree. */
function writeNode(n: TrieNode, out: Buffer, offset: number): number {
  let pos = offset;
  if (n.prefix.length > 0) pos = writeString(out, pos, n.prefix);
  const children = n.children;
  if (children !== undefined) {
    const first = children[0].ch;
    const last = children[children.length - 1].ch;
    out[pos++] = first;
    out[pos++] = last;
    let childOff = offset + n.size;
    for (const child of children) {
      writeU32(out, pos + 4 * (child.ch - first), childOff | mask(child));
      childOff += child.total;
    }
    pos += 4 * (last - first + 1);
  }
  if (n.value !== undefined) {
    writeU32(out, pos, 1 + (n.more?.length ?? 0));
    writeU32(out, pos + 4, n.priority);
    pos = writeString(out, pos + 8, n.value);
    if (n.more !== undefined) {
      for (const v of n.more) {
        writeU32(out, pos, v.priority);
        pos = writeString(out, pos + 4, v.value);
      }
    }
  }
  if (children !== undefined) for (const child of children) pos = writeNode(child, out, pos);
  return pos;
}

let nativeBuild: BuildIndexFn | null | undefined;
let nativeBuildInBackground: BuildIndexInBackgroundFn | null | undefined;

/**
 * Whether IndexBatch builds through the native helper (when it is built): false makes it use
 * IndexBuilder (tests compare the two). Returns whether the helper is in use.
 */
export function useNativeIndexBuilder(on: boolean): boolean {
  nativeBuild = on ? loadNativeIndexBuilder() : null;
  nativeBuildInBackground = on ? loadNativeIndexBuilderInBackground() : null;
  return nativeBuild !== null;
}

/**
 * An index whose entries are gathered, then built at once: by the native helper
 * (native/index_writer.c) when it is there, else by IndexBuilder, with the same bytes either way. Each
 * entry is checked as IndexBuilder.insert checks it (the same error, at the same entry), but no
 * duplicate is reported: a caller that reports them (depmod -w) uses IndexBuilder.
 */
/**
 * A run of an IndexBatch's entries: keys one after the other (a string or bytes) with their lengths,
 * and either one value and priority for all of them or one each.
 */
interface BatchRun {
  /** (insert()'s run: its keys, joined when the batch is built) */
  keys: string | Uint8Array | string[];
  lengths: ArrayLike<number>;
  /** one value for all keys, a value each, or the values' bytes one after the other (valueLengths) */
  value: string | string[] | Uint8Array;
  valueLengths?: ArrayLike<number>;
  priority: number | ArrayLike<number>;
}

export class IndexBatch implements IndexWriter {
  /** the entries in insertion order, as runs (insert() adds to the open run of single entries) */
  private readonly runs: BatchRun[] = [];
  /** the run insert() adds to, until another kind of run is added */
  private open: (BatchRun & { keys: string[]; lengths: number[]; value: string[]; priority: number[] }) | undefined;
  private count = 0;
  private checkedValue: string | undefined;

  /** IndexBuilder.insert, except that it returns false for a duplicate too */
  insert(key: string, value: string, priority: number): boolean {
    this.checkedValue = checkEntry(key, value, this.checkedValue);
    if (this.open === undefined) {
      this.open = { keys: [], lengths: [], value: [], priority: [] };
      this.runs.push(this.open);
    }
    this.open.keys.push(key);
    this.open.lengths.push(key.length);
    this.open.value.push(value);
    this.open.priority.push(priority);
    this.count++;
    return false;
  }

  private add(run: BatchRun): void {
    this.open = undefined;
    this.runs.push(run);
    this.count += run.lengths.length;
  }

  /**
   * Several keys with one value and priority, as bytes one after the other (`lengths` says where each
   * ends), without a string for each: the caller has checked that every key is 7-bit. The value is
   * checked here.
   */
  insertKeys(keys: Uint8Array, lengths: Uint32Array, value: string, priority: number): void {
    if (value !== this.checkedValue) checkString(value);
    this.checkedValue = value;
    let total = 0;
    for (let k = 0; k < lengths.length; k++) total += lengths[k];
    if (total !== keys.length) throw new RangeError(`insertKeys: ${keys.length} bytes of keys, but lengths adding up to ${total}`);
    this.add({ keys, lengths, value, priority });
  }

  /**
   * insert() of many entries at once: `keys` all keys one after the other (`lengths` says where each
   * ends), the values and priorities one per key. The strings are checked all together (one search of
   * each); only when that finds a byte above 127 are they gone through in order, for insert()'s error.
   */
  insertRun(keys: string, lengths: ArrayLike<number>, values: string[], priorities: ArrayLike<number>): void {
    const n = lengths.length;
    let total = 0;
    for (let k = 0; k < n; k++) total += lengths[k];
    if (total !== keys.length || values.length !== n || priorities.length !== n) throw new RangeError('insertRun: keys, lengths, values and priorities do not match');
    if (NOT_7BIT.test(keys) || NOT_7BIT.test(values.join(''))) {
      for (let k = 0, at = 0; k < n; at += lengths[k], k++) this.checkedValue = checkEntry(keys.slice(at, at + lengths[k]), values[k], this.checkedValue);
    }
    this.add({ keys, lengths, value: values, priority: priorities });
  }

  /**
   * insertRun with the values as bytes one after the other (`valueLengths` says where each ends), for a
   * caller that holds them as bytes (depmod's modules.dep lines): no string for each. The keys may be
   * bytes too. A byte above 127 sends the run through insertRun, for its error.
   */
  insertRunBytes(keys: string | Uint8Array, lengths: ArrayLike<number>, values: Uint8Array, valueLengths: ArrayLike<number>, priorities: ArrayLike<number>): void {
    const n = lengths.length;
    const mismatch = (): RangeError => new RangeError('insertRunBytes: keys, lengths, values and priorities do not match');
    if (valueLengths.length !== n || priorities.length !== n) throw mismatch();
    let total = 0;
    let valueTotal = 0;
    for (let k = 0; k < n; k++) {
      total += lengths[k];
      valueTotal += valueLengths[k];
    }
    if (total !== keys.length || valueTotal !== values.length) throw mismatch();
    if ((typeof keys === 'string' ? NOT_7BIT.test(keys) : !isAscii(keys)) || !isAscii(values)) {
      const strings: string[] = [];
      const bytes = Buffer.from(values.buffer, values.byteOffset, values.byteLength);
      for (let k = 0, at = 0; k < n; at += valueLengths[k], k++) strings.push(bytes.toString('latin1', at, at + valueLengths[k]));
      this.insertRun(typeof keys === 'string' ? keys : Buffer.from(keys.buffer, keys.byteOffset, keys.byteLength).toString('latin1'), lengths, strings, priorities);
      return;
    }
    this.add({ keys, lengths, value: values, valueLengths, priority: priorities });
  }


  /** The file contents, as IndexBuilder.serialize() gives them for the same inserts. */
  serialize(): Buffer {
    if (nativeBuild === undefined) nativeBuild = loadNativeIndexBuilder();
    const input = this.buildInput();
    if (nativeBuild !== null) return nativeBuild(...input);
    return buildInJavaScript(input);
  }

  /**
   * serialize(), built on libuv's thread pool by the native helper when it is there (the caller goes on
   * meanwhile), else at once. Nothing may be inserted into the batch afterwards.
   */
  serializeInBackground(): Promise<Buffer> {
    if (nativeBuildInBackground === undefined) nativeBuildInBackground = loadNativeIndexBuilderInBackground();
    if (nativeBuild === undefined) nativeBuild = loadNativeIndexBuilder();
    // useNativeIndexBuilder(false) turns both off
    if (nativeBuildInBackground === null || nativeBuild === null) return Promise.resolve(this.serialize());
    return nativeBuildInBackground(...this.buildInput());
  }

  /**
   * the entries as the native helper takes them: keys, their lengths, values, their lengths, priorities,
   * where each value starts (a run's one value is there once for all its keys)
   */
  private buildInput(): Parameters<BuildIndexFn> {
    const n = this.count;
    const keyLengths = new Uint32Array(n);
    const valueLengths = new Uint32Array(n);
    // (only where a run has one value for its keys: else each value follows the one before)
    const valueStarts = this.runs.some((run) => typeof run.value === 'string') ? new Uint32Array(n) : undefined;
    const priorities = new Uint32Array(n);
    const keys: (string | Uint8Array)[] = [];
    const values: (string | Uint8Array)[] = [];
    let k = 0;
    let at = 0;
    for (const run of this.runs) {
      const m = run.lengths.length;
      keyLengths.set(run.lengths, k);
      keys.push(Array.isArray(run.keys) ? run.keys.join('') : run.keys);
      if (typeof run.value === 'string') {
        valueLengths.fill(run.value.length, k, k + m);
        valueStarts!.fill(at, k, k + m);
        values.push(run.value);
        at += run.value.length;
      } else {
        if (run.value instanceof Uint8Array) valueLengths.set(run.valueLengths!, k);
        else for (let j = 0; j < m; j++) valueLengths[k + j] = run.value[j].length;
        if (valueStarts !== undefined) {
          for (let j = k; j < k + m; j++) {
            valueStarts[j] = at;
            at += valueLengths[j];
          }
        }
        values.push(run.value instanceof Uint8Array ? run.value : run.value.join(''));
      }
      if (typeof run.priority === 'number') priorities.fill(run.priority, k, k + m);
      else priorities.set(run.priority, k);
      k += m;
    }
    // the strings are 7-bit (checked): one byte per character
    const keyBytes = joinBytes(keys);
    // runs of strings joined first: one conversion each rather than one per part
    const valueBytes = joinBytes(values.every((v) => typeof v === 'string') ? [values.join('')] : values);
    return [keyBytes, keyLengths, valueBytes, valueLengths, priorities, valueStarts];
  }
}

/** IndexBatch's entries built by IndexBuilder (no native helper) */
function buildInJavaScript([keyBytes, keyLengths, valueBytes, valueLengths, priorities, valueStarts]: Parameters<BuildIndexFn>): Buffer {
  const idx = new IndexBuilder();
  const keys = Buffer.from(keyBytes.buffer, keyBytes.byteOffset, keyBytes.byteLength);
  const values = Buffer.from(valueBytes.buffer, valueBytes.byteOffset, valueBytes.byteLength);
  for (let j = 0, kat = 0, next = 0; j < keyLengths.length; kat += keyLengths[j], j++) {
    const vat = valueStarts === undefined ? next : valueStarts[j];
    next = vat + valueLengths[j];
    idx.insert(keys.toString('latin1', kat, kat + keyLengths[j]), values.toString('latin1', vat, next), priorities[j]);
  }
  return idx.serialize();
}

/** strings (latin1) and bytes, one after the other in one buffer */
function joinBytes(parts: (string | Uint8Array)[]): Buffer {
  let total = 0;
  for (const part of parts) total += part.length;
  const out = Buffer.allocUnsafe(total);
  let at = 0;
  for (const part of parts) {
    if (typeof part === 'string') at += out.write(part, at, 'latin1');
    else {
      out.set(part, at);
      at += part.length;
    }
  }
  return out;
}
