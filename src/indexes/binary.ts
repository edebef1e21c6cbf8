// Reader of kmod's binary module indexes (modules.*.bin), following libkmod's searches exactly:
// exact lookup (index_mm_search), wildcard search (index_mm_searchwild) and the dump used by
// `modprobe -c`. A file is read in chunks as the searches touch them (paged-file.ts), as libkmod maps
// it, and every read is bounds-checked: a malformed file raises FormatError naming the file and the offset.
// named imports: `import * as` makes tsc copy every export of node:fs at load (start-up)
import { closeSync, constants, fstatSync, openSync, readSync } from '../file/binary-os';
import { FormatError } from '../errors';
import { KMOD_FIRST_FD } from '../log';
import { fnmatch } from '../names/fnmatch';
import { PagedFile } from './paged-file';
import {
  INDEX_CHILDMAX,
  INDEX_HEADER_SIZE,
  INDEX_MAGIC,
  INDEX_NODE_CHILDS,
  INDEX_NODE_MASK,
  INDEX_NODE_PREFIX,
  INDEX_NODE_VALUES,
  INDEX_VERSION_MAJOR,
} from './format';

/** A value stored under a key, with the priority depmod gave it (module index). */
export interface IndexValue {
  value: string;
  priority: number;
}

/** What both the binary reader and the text fallback offer. */
export interface ModuleIndex {
  /** the file it was read from */
  readonly file: string;
  /** first value stored under exactly this key */
  search(key: string): string | undefined;
  /** values of every key matching `key`, keys being fnmatch patterns; ascending priority */
  searchWild(key: string): IndexValue[];
  /** "<prefix><key> <value>\n" for every value, keys in byte order (modprobe -c) */
  dump(prefix: string): string;
}

/** The header of an index file is wrong: libkmod refuses the file (with this message, if any). */
export class IndexHeaderError extends FormatError {
  constructor(file: string, what: string, readonly kmodMessage?: string) {
    super(file, what);
    this.name = 'IndexHeaderError';
  }
}

interface Node {
  /** where the node starts in the file; -1 for a node without parts (nothing to read, no children) */
  offset: number;
  prefix: string;
  first: number;
  last: number;
  /** buffer offset of the child reference array */
  children: number;
  valueCount: number;
  /** buffer offset of the first value */
  values: number;
}

const EMPTY_NODE: Node = { offset: -1, prefix: '', first: INDEX_CHILDMAX, last: 0, children: 0, valueCount: 0, values: 0 };

/** libkmod's add_value: insert before the first value whose priority is >= the new one. */
export function addValue(out: IndexValue[], v: IndexValue): void {
  let i = 0;
  while (i < out.length && out[i].priority < v.priority) i++;
  out.splice(i, 0, v);
}

/**
 * An index file opened for reading: its descriptor, size and whether it is a regular file; 'missing'
 * (ENOENT, ENOTDIR) or 'unusable' (any other reason open fails). Opened without blocking: a FIFO in
 * its place would hold kmod's open until someone writes to it, kmodts goes on (it is no index).
 */
function openIndexFile(file: string): { fd: number; size: number; regular: boolean } | 'missing' | 'unusable' {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT' || code === 'ENOTDIR' ? 'missing' : 'unusable';
  }
  try {
    const st = fstatSync(fd);
    return { fd, size: st.size, regular: st.isFile() };
  } catch {
    closeSync(fd);
    return 'unusable';
  }
}

export class BinaryIndex implements ModuleIndex {
  private readonly root: Node | undefined;
  private readonly bytes: PagedFile;

  /** The index in `source`: its bytes, or the file they are read from as searches need them. */
  constructor(source: Buffer | PagedFile, readonly file: string) {
    this.bytes = source instanceof PagedFile ? source : PagedFile.of(source, file);
    const header = Buffer.alloc(Math.min(this.bytes.size, INDEX_HEADER_SIZE));
    for (let i = 0; i < header.length; i++) header[i] = this.bytes.byte(i);
    BinaryIndex.checkHeader(header, file);
    this.root = this.readNode(this.bytes.u32(8));
  }

  /** Throws IndexHeaderError unless buf starts with a header libkmod accepts. */
  static checkHeader(buf: Buffer, file: string): void {
    if (buf.length < INDEX_HEADER_SIZE) {
      throw new IndexHeaderError(file, `too short for an index header (${buf.length} bytes)`);
    }
    const magic = buf.readUInt32BE(0);
    if (magic !== INDEX_MAGIC) {
      throw new IndexHeaderError(
        file,
        `bad magic 0x${magic.toString(16)} (expected 0x${INDEX_MAGIC.toString(16)})`,
        `magic check fail: ${magic.toString(16)} instead of ${INDEX_MAGIC.toString(16)}\n`,
      );
    }
    const version = buf.readUInt32BE(4);
    if (version >>> 16 !== INDEX_VERSION_MAJOR) {
      throw new IndexHeaderError(
        file,
        `unsupported major version ${version >>> 16} (expected ${INDEX_VERSION_MAJOR})`,
        `major version check fail: ${version >>> 16} instead of ${INDEX_VERSION_MAJOR}\n`,
      );
    }
  }

  /**
   * Checks only the header of an index file (what kmod_load_resources' mmap open checks):
   * false when the file is missing, or cannot be opened, or is shorter than a header but not a
   * regular file (libkmod gives up there without a message); IndexHeaderError when refused, with
   * libkmod's message where it logs one (a bad magic or version, a directory that mmap refuses).
   */
  static probe(file: string): boolean {
    const opened = openIndexFile(file);
    if (typeof opened === 'string') return false;
    try {
      const { fd, size, regular } = opened;
      if (size < INDEX_HEADER_SIZE) {
        if (!regular) return false;
        throw new IndexHeaderError(file, `too short for an index header (${size} bytes)`);
      }
      if (!regular) {
        // mmap of anything but a regular file (here, a directory) fails so; kmod's descriptor: KMOD_FIRST_FD
        throw new IndexHeaderError(file, 'not a regular file', `mmap(NULL, ${size}, PROT_READ, MAP_PRIVATE, ${KMOD_FIRST_FD}, 0): No such device\n`);
      }
      const buf = Buffer.alloc(INDEX_HEADER_SIZE);
      const n = readSync(fd, buf, 0, INDEX_HEADER_SIZE, 0);
      BinaryIndex.checkHeader(buf.subarray(0, n), file);
      return true;
    } finally {
      closeSync(opened.fd);
    }
  }

  /**
   * Reads an index file, as libkmod's index_file_open does on each lookup when the indexes are not
   * loaded: undefined when it does not exist (kmodts then reads the text file instead); any other
   * reason it cannot be opened or read (a directory, no permission, a name too long, a link loop)
   * throws IndexHeaderError, read as no matches (kmod finds nothing in it either).
   */
  static open(file: string): BinaryIndex | undefined {
    const opened = openIndexFile(file);
    if (opened === 'missing') return undefined;
    if (opened === 'unusable') throw new IndexHeaderError(file, 'cannot be opened');
    if (!opened.regular) {
      closeSync(opened.fd);
      throw new IndexHeaderError(file, 'not a regular file');
    }
    // (the descriptor is the PagedFile's from here)
    const paged = PagedFile.open(opened.fd, opened.size, file);
    try {
      return new BinaryIndex(paged, file);
    } catch (err) {
      paged.close();
      throw err;
    }
  }

  /** Lets go of the file (its descriptor, where parts are still unread): the index is not searched again. */
  close(): void {
    this.bytes.close();
  }

  private bad(what: string, offset: number): never {
    throw new FormatError(this.file, `${what} at offset ${offset}`);
  }

  private u32(pos: number): number {
    if (pos + 4 > this.bytes.size) this.bad('truncated node', pos);
    return this.bytes.u32(pos);
  }

  private cstring(pos: number): { s: string; next: number } {
    const end = this.bytes.indexOfNul(pos);
    if (end < 0) this.bad('unterminated string', pos);
    return { s: this.bytes.latin1(pos, end), next: end + 1 };
  }

  /** The node a reference points at; undefined for a null reference (absent child). */
  private readNode(ref: number): Node | undefined {
    const offset = ref & INDEX_NODE_MASK;
    if ((ref & (INDEX_NODE_PREFIX | INDEX_NODE_CHILDS | INDEX_NODE_VALUES)) === 0) {
      // no parts: libkmod reads nothing (the empty index's root, or an absent child)
      return offset === 0 ? undefined : EMPTY_NODE;
    }
    if (offset < INDEX_HEADER_SIZE || offset >= this.bytes.size) this.bad('node reference out of range', offset);
    let p = offset;
    let prefix = '';
    if (ref & INDEX_NODE_PREFIX) {
      const r = this.cstring(p);
      prefix = r.s;
      p = r.next;
    }
    let first = INDEX_CHILDMAX;
    let last = 0;
    let children = 0;
    if (ref & INDEX_NODE_CHILDS) {
      if (p + 2 > this.bytes.size) this.bad('truncated node', p);
      first = this.bytes.byte(p);
      last = this.bytes.byte(p + 1);
      if (first > last || first >= INDEX_CHILDMAX || last >= INDEX_CHILDMAX) this.bad(`bad child range ${first}..${last}`, p);
      children = p + 2;
      p = children + 4 * (last - first + 1);
      if (p > this.bytes.size) this.bad('truncated child table', children);
    }
    let valueCount = 0;
    let values = 0;
    if (ref & INDEX_NODE_VALUES) {
      valueCount = this.u32(p);
      values = p + 4;
      if (valueCount > this.bytes.size) this.bad(`impossible value count ${valueCount}`, p);
    }
    return { offset, prefix, first, last, children, valueCount, values };
  }

  private child(node: Node, ch: number): Node | undefined {
    if (ch < node.first || ch > node.last) return undefined;
    return this.readNode(this.u32(node.children + 4 * (ch - node.first)));
  }

  private nodeValues(node: Node): IndexValue[] {
    const out: IndexValue[] = [];
    let p = node.values;
    for (let i = 0; i < node.valueCount; i++) {
      const priority = this.u32(p);
      const r = this.cstring(p + 4);
      out.push({ value: r.s, priority });
      p = r.next;
    }
    return out;
  }

  search(key: string): string | undefined {
    let node = this.root;
    let k = 0;
    while (node) {
      const prefix = node.prefix;
      for (let j = 0; j < prefix.length; j++) {
        if (prefix.charCodeAt(j) !== (k + j < key.length ? key.charCodeAt(k + j) : 0)) return undefined;
      }
      k += prefix.length;
      if (k === key.length) {
        if (node.valueCount === 0) return undefined;
        return this.cstring(node.values + 4).s;
      }
      node = this.child(node, key.charCodeAt(k));
      k++;
    }
    return undefined;
  }

  searchWild(key: string): IndexValue[] {
    const out: IndexValue[] = [];
    let node = this.root;
    let k = 0;
    while (node) {
      const prefix = node.prefix;
      for (let j = 0; j < prefix.length; j++) {
        const ch = prefix[j];
        if (ch === '*' || ch === '?' || ch === '[') {
          this.searchAll(node, j, '', key.slice(k + j), out);
          return out;
        }
        if (prefix.charCodeAt(j) !== (k + j < key.length ? key.charCodeAt(k + j) : 0)) return out;
      }
      k += prefix.length;
      const rest = key.slice(k);
      for (const w of ['*', '?', '[']) {
        const c = this.child(node, w.charCodeAt(0));
        if (c) this.searchAll(c, 0, w, rest, out);
      }
      if (k >= key.length) {
        for (const v of this.nodeValues(node)) addValue(out, v);
        return out;
      }
      node = this.child(node, key.charCodeAt(k));
      k++;
    }
    return out;
  }

  /** index_mm_searchwild_all: every key below `node` (pattern built from `pattern`) tested on subkey. */
  private searchAll(node: Node, j: number, pattern: string, subkey: string, out: IndexValue[]): void {
    this.walk(node, pattern + node.prefix.slice(j), undefined, (n, pat) => {
      if (n.valueCount > 0 && fnmatch(pat, subkey)) {
        for (const v of this.nodeValues(n)) addValue(out, v);
      }
    });
  }

  /**
   * Depth-first walk of the trie below `start` (keys in byte order), without recursion: a file may
   * describe any graph, so a node met again is an error (a cycle, or a child shared by two parents,
   * which no index writer produces) rather than an endless walk or a blown stack. `enter` sees a node
   * before its children, `leave` after them; `key` is the whole key up to the end of the node's prefix.
   */
  private walk(start: Node, startKey: string, enter?: (node: Node, key: string) => void, leave?: (node: Node, key: string) => void): void {
    /** offsets of the nodes met so far: true while on the current path (ancestors) */
    const met = new Map<number, boolean>();
    const frames: { node: Node; key: string; ch: number }[] = [];
    const push = (node: Node, key: string): void => {
      if (node.offset >= 0) {
        const onPath = met.get(node.offset);
        if (onPath === true) this.bad('cycle: a child reference points back at an ancestor node', node.offset);
        if (onPath === false) this.bad('a node reached twice (shared by two parents)', node.offset);
        met.set(node.offset, true);
      }
      enter?.(node, key);
      frames.push({ node, key, ch: node.first });
    };
    push(start, startKey);
    while (frames.length > 0) {
      const f = frames[frames.length - 1];
      if (f.ch <= f.node.last) {
        const ch = f.ch++;
        const c = this.child(f.node, ch);
        if (c) push(c, f.key + String.fromCharCode(ch) + c.prefix);
        continue;
      }
      frames.pop();
      if (f.node.offset >= 0) met.set(f.node.offset, false);
      leave?.(f.node, f.key);
    }
  }

  dump(prefix: string): string {
    this.bytes.readAll();
    const parts: string[] = [];
    if (this.root) {
      this.walk(this.root, prefix + this.root.prefix, (node, k) => {
        for (const v of this.nodeValues(node)) parts.push(`${k} ${v.value}\n`);
      });
    }
    return parts.join('');
  }

  /** every (key, value) in dump order, for tools that need the whole index */
  entries(): { key: string; value: string; priority: number }[] {
    const out: { key: string; value: string; priority: number }[] = [];
    this.bytes.readAll();
    if (this.root) {
      this.walk(this.root, this.root.prefix, (node, k) => {
        for (const v of this.nodeValues(node)) out.push({ key: k, value: v.value, priority: v.priority });
      });
    }
    return out;
  }
}
