// The .bin reader: against the reference indexes of the Debian tree (written by kmod 34.2's depmod)
// and their text counterparts, on hand-made tries in both node layouts, and on malformed files.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FormatError } from '../../src/errors';
import { fnmatch } from '../../src/names/fnmatch';
import { addValue, BinaryIndex, IndexHeaderError, type IndexValue } from '../../src/indexes/binary';
import { aliasNormalize } from '../../src/names/modname';
import { moduleDir, repoRoot, runKmodts } from '../support/reference';

const MODDIR = moduleDir();
const bin = (name: string): BinaryIndex => BinaryIndex.open(path.join(MODDIR, name))!;

function hex(s: string): Buffer {
  return Buffer.from(s.replace(/\s+/g, ''), 'hex');
}
const str = (s: string): string => Buffer.from(s + '\0', 'latin1').toString('hex');

// KMOD.md §6.3: modules.builtin.bin holding only "unix" (value "", priority 0)
const UNIX_POST_ORDER = hex(`b007f457 00020001 20000019 ${str('nix')} 00000001 00000000 00 75 75 c000000c`);
const UNIX_PRE_ORDER = hex(`b007f457 00020001 2000000c 75 75 c0000012 ${str('nix')} 00000001 00000000 00`);
const EMPTY = hex('b007f457 00020001 0000000c');

describe('BinaryIndex on the reference indexes', () => {
  it('finds every modules.dep line under its module name', () => {
    const idx = bin('modules.dep.bin');
    const lines = fs.readFileSync(path.join(MODDIR, 'modules.dep'), 'latin1').split('\n').filter((l) => l !== '');
    let found = 0;
    for (const line of lines) {
      const name = path.basename(line.slice(0, line.indexOf(':'))).replace(/\..*$/, '').replace(/-/g, '_');
      if (idx.search(name) === line) found++;
    }
    expect(found).toBe(lines.length);
    expect(idx.search('no_such_module')).toBeUndefined();
    expect(idx.search('')).toBeUndefined();
    expect(idx.search('nfs')).not.toBeUndefined();
    expect(idx.search('nf')).toBeUndefined();
  });

  it('dumps modules.alias.bin as the sorted, normalized modules.alias', () => {
    const dump = bin('modules.alias.bin').dump('alias ').split('\n').filter((l) => l !== '');
    const text = fs.readFileSync(path.join(MODDIR, 'modules.alias'), 'latin1').split('\n').filter((l) => l.startsWith('alias '));
    const normalized = text.map((l) => {
      const [, key, value] = l.split(' ');
      return `alias ${aliasNormalize(key)} ${value}`;
    });
    expect([...dump].sort()).toEqual([...normalized].sort());
    const keys = dump.map((l) => l.split(' ')[1]);
    const sorted = [...keys].sort((a, b) => Buffer.compare(Buffer.from(a, 'latin1'), Buffer.from(b, 'latin1')));
    expect(keys).toEqual(sorted);
  });

  it('wildcard search agrees with fnmatch over all entries', () => {
    const idx = bin('modules.alias.bin');
    const entries = idx.entries();
    const probes = ['net-pf-40'.replace(/-/g, '_'), 'pci:v00008086d000010D3sv00001234sd00005678bc02sc00i00', 'fs_xfs', 'crypto_md5',
      'usb:v046Dp0A4Dd0100dc00dsc00dp00ic01isc01ip00in00', 'virtio:d00000001v00001AF4', 'nothing_at_all'];
    for (const key of probes) {
      const want: IndexValue[] = [];
      for (const e of entries) if (fnmatch(e.key, key)) addValue(want, { value: e.value, priority: e.priority });
      const got = idx.searchWild(key);
      expect(new Set(got.map((v) => v.value))).toEqual(new Set(want.map((v) => v.value)));
      expect(got.map((v) => v.priority)).toEqual([...got.map((v) => v.priority)].sort((a, b) => a - b));
    }
    expect(idx.searchWild('net_pf_40').map((v) => v.value)).toEqual(['vmw_vsock_vmci_transport', 'hv_sock', 'vsock_loopback']);
  });
});

describe('BinaryIndex on hand-made files', () => {
  it('reads both node layouts of the same trie', () => {
    for (const buf of [UNIX_POST_ORDER, UNIX_PRE_ORDER]) {
      const idx = new BinaryIndex(buf, 'unix.bin');
      expect(idx.search('unix')).toBe('');
      expect(idx.search('uni')).toBeUndefined();
      expect(idx.search('unixx')).toBeUndefined();
      expect(idx.searchWild('unix')).toEqual([{ value: '', priority: 0 }]);
      expect(idx.dump('')).toBe('unix \n');
    }
  });

  it('an empty index has no entries', () => {
    const idx = new BinaryIndex(EMPTY, 'empty.bin');
    expect(idx.search('x')).toBeUndefined();
    expect(idx.searchWild('x')).toEqual([]);
    expect(idx.dump('alias ')).toBe('');
  });

  it('orders values as libkmod add_value does (ascending priority, later first among equals)', () => {
    const out: IndexValue[] = [];
    for (const [value, priority] of [['a', 5], ['b', 1], ['c', 5], ['d', 3], ['e', 1]] as const) addValue(out, { value, priority });
    expect(out.map((v) => v.value)).toEqual(['e', 'b', 'd', 'c', 'a']);
  });
});

describe('BinaryIndex on malformed files', () => {
  it('refuses a bad header like libkmod (with its message)', () => {
    const badMagic = Buffer.from(UNIX_PRE_ORDER);
    badMagic.writeUInt32BE(0xdeadbeef, 0);
    expect(() => new BinaryIndex(badMagic, 'x.bin')).toThrow(IndexHeaderError);
    try {
      new BinaryIndex(badMagic, 'x.bin');
    } catch (e) {
      expect((e as IndexHeaderError).kmodMessage).toBe('magic check fail: deadbeef instead of b007f457\n');
      expect((e as IndexHeaderError).message).toContain('x.bin');
    }
    const badVersion = Buffer.from(UNIX_PRE_ORDER);
    badVersion.writeUInt32BE(0x00030001, 4);
    expect(() => new BinaryIndex(badVersion, 'x.bin')).toThrow(/major version/);
    const minor = Buffer.from(UNIX_PRE_ORDER);
    minor.writeUInt32BE(0x00020007, 4); // the minor version is not checked
    expect(new BinaryIndex(minor, 'x.bin').search('unix')).toBe('');
    expect(() => new BinaryIndex(Buffer.alloc(0), 'x.bin')).toThrow(IndexHeaderError);
    expect(() => new BinaryIndex(EMPTY.subarray(0, 11), 'x.bin')).toThrow(IndexHeaderError);
  });

  it('reports out-of-range node references as FormatError naming the file', () => {
    const rootOut = Buffer.from(UNIX_PRE_ORDER);
    rootOut.writeUInt32BE(0x20000000 | 0x0ffffff0, 8);
    expect(() => new BinaryIndex(rootOut, '/x/modules.dep.bin')).toThrow(FormatError);
    expect(() => new BinaryIndex(rootOut, '/x/modules.dep.bin')).toThrow(/\/x\/modules.dep.bin: node reference out of range/);
    const childOut = Buffer.from(UNIX_PRE_ORDER);
    childOut.writeUInt32BE((0xc0000000 | 0x00001000) >>> 0, 14);
    const idx = new BinaryIndex(childOut, 'c.bin');
    expect(() => idx.search('unix')).toThrow(FormatError);
    expect(() => idx.searchWild('unix')).toThrow(FormatError);
    expect(() => idx.dump('')).toThrow(FormatError);
    const intoHeader = Buffer.from(UNIX_PRE_ORDER);
    intoHeader.writeUInt32BE((0xc0000000 | 4) >>> 0, 14);
    expect(() => new BinaryIndex(intoHeader, 'h.bin').search('unix')).toThrow(FormatError);
  });

  it('reports bad child ranges', () => {
    for (const [first, last] of [[0x76, 0x75], [0x80, 0x81], [0x75, 0x90]]) {
      const b = Buffer.from(UNIX_PRE_ORDER);
      b[12] = first;
      b[13] = last;
      expect(() => new BinaryIndex(b, 'r.bin')).toThrow(/bad child range|truncated/);
    }
  });

  it('never reads past the end of a truncated file', () => {
    const full = fs.readFileSync(path.join(MODDIR, 'modules.builtin.alias.bin'));
    const idx = new BinaryIndex(full, 'full.bin');
    const keys = idx.entries().map((e) => e.key);
    expect(keys.length).toBeGreaterThan(50);
    let formatErrors = 0;
    for (let len = 0; len < full.length; len += 97) {
      const cut = full.subarray(0, len);
      try {
        const t = new BinaryIndex(cut, 'cut.bin');
        t.dump('');
        for (const k of keys.slice(0, 20)) t.searchWild(k);
      } catch (e) {
        expect(e).toBeInstanceOf(FormatError);
        formatErrors++;
      }
    }
    expect(formatErrors).toBeGreaterThan(10);
  });

  it('treats a missing file as absent', () => {
    expect(BinaryIndex.open('/nonexistent/modules.dep.bin')).toBeUndefined();
    expect(BinaryIndex.probe('/nonexistent/modules.dep.bin')).toBe(false);
  });

  it('reports a child pointing back at an ancestor as a cycle naming the file and offset (every walk)', () => {
    // root at 12: children 'u'..'u', the child reference being the root's own
    const loop = hex(`b007f457 00020001 2000000c 75 75 2000000c`);
    const idx = new BinaryIndex(loop, '/x/modules.alias.bin');
    const cycle = /^\/x\/modules\.alias\.bin: cycle: a child reference points back at an ancestor node at offset 12$/;
    expect(() => idx.dump('alias ')).toThrow(cycle);
    expect(() => idx.entries()).toThrow(cycle);
    // a wildcard child leading back to the root: index_mm_searchwild_all's walk
    const wild = hex(`b007f457 00020001 2000000c 2a 2a 2000000c`);
    expect(() => new BinaryIndex(wild, 'w.bin').searchWild('x')).toThrow(/w\.bin: cycle: .* at offset 12$/);
    // the exact search consumes a key character per step: it ends without looping
    expect(idx.search('uuuuuuuu')).toBeUndefined();
  });

  it('reports a node shared by two parents (no writer produces one) instead of walking it twice', () => {
    // root 'a'..'b', both children the same value node at 22
    const shared = hex(`b007f457 00020001 2000000c 61 62 40000016 40000016 00000001 00000000 00`);
    expect(() => new BinaryIndex(shared, 's.bin').dump('')).toThrow(/s\.bin: a node reached twice \(shared by two parents\) at offset 22$/);
    expect(new BinaryIndex(shared, 's.bin').search('a')).toBe('');
  });

  it('walks a chain deeper than any stack without recursion', () => {
    const depth = 200_000;
    const buf = Buffer.alloc(12 + 6 * depth + 9);
    buf.writeUInt32BE(0xb007f457, 0);
    buf.writeUInt32BE(0x00020001, 4);
    buf.writeUInt32BE((0x20000000 | 12) >>> 0, 8);
    for (let i = 0; i < depth; i++) {
      const at = 12 + 6 * i;
      buf[at] = 0x61;
      buf[at + 1] = 0x61;
      const next = 12 + 6 * (i + 1);
      buf.writeUInt32BE(((i + 1 < depth ? 0x20000000 : 0x40000000) | next) >>> 0, at + 2);
    }
    buf.writeUInt32BE(1, 12 + 6 * depth);
    const idx = new BinaryIndex(buf, 'deep.bin');
    const all = idx.entries();
    expect(all.length).toBe(1);
    expect(all[0].key).toBe('a'.repeat(depth));
    expect(idx.dump('').length).toBe(depth + 2);
    expect(idx.searchWild('a'.repeat(depth)).length).toBe(1);
  });

  it('modprobe -c on a modules.alias.bin whose child points back at the root (issue 15, reproducer 1): exit 1, one line', () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-cycle-'));
    try {
      fs.cpSync(path.join(repoRoot, 'examples/tree'), root, { recursive: true });
      const file = path.join(root, 'lib/modules/6.12.0-example/modules.alias.bin');
      const b = fs.readFileSync(file);
      const rootRef = b.readUInt32BE(8);
      expect(rootRef >>> 28).toBe(0x2); // children only: first, last, then the child table
      const table = (rootRef & 0x0fffffff) + 2;
      let slot = table;
      while (b.readUInt32BE(slot) === 0) slot += 4;
      b.writeUInt32BE(rootRef, slot);
      fs.writeFileSync(file, b);
      const args = ['-d', root, '-S', '6.12.0-example', '-C', '/nonexistent'];
      const r = runKmodts('modprobe', ['-c', ...args]);
      expect(r.status).toBe(1);
      expect(r.stderr).toBe(`modprobe: ERROR: ${file}: cycle: a child reference points back at an ancestor node at offset ${rootRef & 0x0fffffff}\n`);
      // lookups that do not reach the damaged node still work (docs/compat.md)
      const dep = runKmodts('modprobe', ['--show-depends', 'greet_core', ...args]);
      expect({ status: dep.status, err: dep.stderr }).toEqual({ status: 0, err: '' });
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
