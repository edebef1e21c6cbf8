// The scan cache file (src/depmod/scan-cache.ts): what it keeps and gives back, what it refuses to store
// (files changed within a timestamp tick of the run), and every kind of damaged file, which must read
// as "no cache" and never throw.
import { crc32 } from 'node:zlib';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { aliasPieces } from '../../src/depmod/alias-files';
import { scanModuleImage, ScanStore, type ModuleScan } from '../../src/depmod/module-scan';
import { modnameFromPath } from '../../src/names/modname';
import { SCAN_CACHE_FILE, ScanCache, ScanCacheWriter, useNativeCacheRead, useNativeRefChecks } from '../../src/depmod/scan-cache';
import { statKey as statModule } from '../../src/depmod/stat-keys';
import { moduleBytes, tmpRoot } from './support';
import { startScanPool } from '../../src/depmod/scan-pool';
import { scanImageInC } from '../../src/depmod/native-scan';
import { moduleFiles } from '../support/reference';
import { loadNativeWordRangesBelow, loadNativeWordRangesMark, nativeFunction } from '../../src/native-addon';

const dir = tmpRoot('scan-cache');
const file = (name: string): string => path.join(dir, name);

function scanOf(p: string): ModuleScan {
  return scanModuleImage(fs.readFileSync(p), p, new ScanStore());
}

/** 32-bit words of an entry's record in the file */
const RECORD_WORDS = 12;
/** record words (scan-cache-format.ts) */
const [ALIASES, SOFTDEPS, WEAKDEPS, EXPORTS, IMPORTS, AT, ALIAS_TEXT, LINE_BYTES, KEY_BYTES, FLAGS] = [1, 2, 3, 4, 5, 6, 8, 9, 10, 11];

/** a scan with its typed arrays as plain arrays */
function plain(scan: ModuleScan): unknown {
  const pieces = scan.aliasPieces && { lines: [...scan.aliasPieces.lines], keys: [...scan.aliasPieces.keys], keyLengths: [...scan.aliasPieces.keyLengths] };
  const { aliases, softdeps, weakdeps, exports, symbolsErrno } = scan;
  return { aliases, softdeps, weakdeps, exports, symbolsErrno, aliasPieces: pieces, exportCrcs: [...scan.exportCrcs], importNames: [...scan.importNames], importLengths: [...scan.importLengths], importCrcs: [...scan.importCrcs], importWeak: [...scan.importWeak], importKeys: [...scan.importKeys] };
}

/**
 * what the cache gives back for a module: its scan, with its alias pieces, and its aliases as strings
 * only if one of them is a devname: (the pieces stand for the rest)
 */
function cachedScanOf(p: string): ModuleScan {
  const scan = scanOf(p);
  const pieces = aliasPieces({ modname: modnameFromPath(p)!, aliases: scan.aliases });
  if (pieces === null) return scan;
  scan.aliasPieces = pieces;
  if (!scan.aliases.some((a) => a.startsWith('devname:'))) scan.aliases = [];
  return scan;
}

/** the cache file's header line, the counts of its second line, and its body */
function parts(data: Buffer): { head: string; counts: number[]; body: Buffer } {
  const first = data.indexOf(0x0a);
  const second = data.indexOf(0x0a, first + 1);
  const counts = data.toString('latin1', first + 1, second).trim().split(' ').slice(0, 7).map(Number);
  return { head: data.toString('latin1', 0, first + 1), counts, body: Buffer.from(data.subarray(second + 1)) };
}
/** a file from parts, with a correct hash */
function rebuilt(head: string, counts: number[], body: Buffer): Buffer {
  const hash = crc32(body).toString(16).padStart(8, '0');
  return Buffer.concat([Buffer.from(`${head}${counts.join(' ')} ${hash}\n`, 'latin1'), body]);
}
/** the body with the 32-bit word at byte `at` set to `value` */
function withWord(body: Buffer, at: number, value: number): Buffer {
  const copy = Buffer.from(body);
  copy.writeUInt32LE(value, at);
  return copy;
}
/** the body with 32-bit word `word` of entry `entry`'s record set to `value` (keys: 12 32-bit words an entry) */
function withRecordWord(body: Buffer, count: number, entry: number, word: number, value: number): Buffer {
  const copy = Buffer.from(body);
  copy.writeUInt32LE(value, 48 * count + 4 * (RECORD_WORDS * entry + word));
  return copy;
}

/** the number of distinct imports (name and CRC) of the modules: one dictionary entry each */
function distinct(paths: string[]): number {
  const seen = new Set<string>();
  for (const p of paths) {
    const scan = scanOf(p);
    for (let j = 0, at = 0; j < scan.importLengths.length; at += scan.importLengths[j] + 1, j++) {
      seen.add(`${scan.importCrcs[j]} ${Buffer.from(scan.importNames).toString('latin1', at, at + scan.importLengths[j])}`);
    }
  }
  return seen.size;
}

describe('scan cache', () => {
  let cacheBytes: Buffer;
  const old = [file('old1.ko'), file('old2.ko')];
  const third = file('old3.ko');
  const lonely = file('lonely.ko');
  const exporter = file('exporter.ko');
  const odd = file('odd.ko');
  beforeAll(async () => {
    fs.writeFileSync(old[0], moduleBytes({ rel: 'old1.ko', exports: ['one_a', 'one_b'], imports: ['printk'], weakImports: ['maybe'], modinfo: [['alias', 'one-alias'], ['softdep', 'pre: two'], ['weakdep', 'three']] }));
    fs.writeFileSync(old[1], moduleBytes({ rel: 'old2.ko', imports: ['one_a'], modinfo: [['alias', 'devname:two'], ['alias', 'char-major-10-1']] }));
    // a third, with imports shared with the first (one dictionary entry each), stored later
    fs.writeFileSync(third, moduleBytes({ rel: 'old3.ko', imports: ['printk', 'one_b'], weakImports: ['maybe'], modinfo: [['alias', 'three-[ab]-x']] }));
    // exports and nothing else in its lists (no softdeps or weakdeps)
    fs.writeFileSync(exporter, moduleBytes({ rel: 'exporter.ko', exports: ['ex_one', 'ex_two', 'ex_three'], imports: ['printk'], modinfo: [['alias', 'ex-alias']] }));
    // a module whose imports no other has
    fs.writeFileSync(lonely, moduleBytes({ rel: 'lonely.ko', imports: ['only_here_a', 'only_here_b', 'only_here_c'] }));
    // exports after a softdep whose value is empty (its list is not)
    fs.writeFileSync(odd, moduleBytes({ rel: 'odd.ko', exports: ['odd_a', 'odd_b'], imports: ['printk'], modinfo: [['softdep', ''], ['alias', 'odd-alias']] }));
    // older than the run by more than the tick the cache allows for
    await new Promise((r) => setTimeout(r, 2300));
    fs.writeFileSync(file('new.ko'), moduleBytes({ rel: 'new.ko', exports: ['fresh'] }));
    const w = new ScanCacheWriter();
    for (const p of [...old, file('new.ko')]) w.add(p, statModule(p)!, scanOf(p));
    expect(w.write(dir)).toBe(true);
    cacheBytes = fs.readFileSync(file(SCAN_CACHE_FILE));
  }, 20_000);

  it('gives back each old enough scan as it was made', () => {
    const cache = ScanCache.load(file(SCAN_CACHE_FILE))!;
    expect(cache).toBeDefined();
    for (const p of old) expect(plain(cache.get(p, statModule(p)!)!)).toEqual(plain(cachedScanOf(p)));
    // the first has no devname: its aliases are only in its pieces; the second keeps them as strings too
    expect(cache.get(old[0], statModule(old[0])!)!.aliases).toEqual([]);
    expect(cache.get(old[1], statModule(old[1])!)!.aliases).toEqual(['devname:two', 'char-major-10-1']);
  });

  it('writes a file of all its scans from its sections as it writes one entry by entry', () => {
    // all old enough: the file is written from the sections' chunks; with a young module among them
    // (left out, and without imports, so the dictionary is the same) entry by entry, from views of them
    const whole = file('whole');
    const picked = file('picked');
    fs.mkdirSync(whole, { recursive: true });
    fs.mkdirSync(picked, { recursive: true });
    const all = new ScanCacheWriter();
    for (const p of [old[0], old[1], third]) all.add(p, statModule(p)!, scanOf(p));
    expect(all.write(whole)).toBe(true);
    const some = new ScanCacheWriter();
    for (const p of [old[0], file('new.ko'), old[1], third]) some.add(p, statModule(p)!, scanOf(p));
    expect(some.write(picked)).toBe(true);
    const a = fs.readFileSync(path.join(whole, SCAN_CACHE_FILE));
    expect(fs.readFileSync(path.join(picked, SCAN_CACHE_FILE)).equals(a)).toBe(true);
    const cache = ScanCache.load(path.join(whole, SCAN_CACHE_FILE))!;
    for (const p of [old[0], old[1], third]) expect(plain(cache.get(p, statModule(p)!)!)).toEqual(plain(cachedScanOf(p)));
  });

  it("writes a C scan's exports, kept joined, as it writes them as strings", () => {
    // every kind of list beside the exports, and an empty softdep value
    const mods = [old[0], old[1], third, exporter, lonely, odd];
    const dirs = { strings: file('as-strings'), joined: file('joined') };
    for (const [kind, out] of Object.entries(dirs)) {
      fs.mkdirSync(out, { recursive: true });
      const w = new ScanCacheWriter();
      for (const p of mods) {
        const scan = kind === 'joined' ? scanImageInC(fs.readFileSync(p), new ScanStore(), p)! : scanOf(p);
        if (kind === 'joined') expect(scan.exportsJoined, p).toBeDefined();
        w.add(p, statModule(p)!, scan);
      }
      expect(w.write(out)).toBe(true);
    }
    const bytes = fs.readFileSync(path.join(dirs.joined, SCAN_CACHE_FILE));
    expect(bytes.equals(fs.readFileSync(path.join(dirs.strings, SCAN_CACHE_FILE)))).toBe(true);
    const cache = ScanCache.load(path.join(dirs.joined, SCAN_CACHE_FILE))!;
    expect(cache.get(odd, statModule(odd)!)!.softdeps).toEqual(['']);
    for (const p of mods) expect(plain(cache.get(p, statModule(p)!)!)).toEqual(plain(cachedScanOf(p)));
  });

  it('does not store a file changed within a timestamp tick of the run', () => {
    const cache = ScanCache.load(file(SCAN_CACHE_FILE))!;
    expect(cache.size).toBe(2);
    expect(cache.get(file('new.ko'), statModule(file('new.ko'))!)).toBeUndefined();
  });

  it('misses when anything in the stat changed: touch, rewrite, replacement', () => {
    const cache = ScanCache.load(file(SCAN_CACHE_FILE))!;
    const key = statModule(old[0])!;
    expect(cache.get(old[0], key)).toBeDefined();
    // every word of the key: device, inode, size, mtime and ctime (seconds and nanoseconds)
    for (let w = 0; w < key.length; w++) {
      const changed = key.slice();
      changed[w] ^= 1;
      expect(cache.get(old[0], changed), `word ${w}`).toBeUndefined();
    }
    expect(cache.get(file('elsewhere.ko'), key)).toBeUndefined();
  });

  it('reads any damaged file as no cache, without throwing', async () => {
    const bad = file('bad.cache');
    const { head, counts, body } = parts(cacheBytes);
    const [count, pathBytes, textBytes, blockBytes, dictCount, dictNameBytes, walkBytes] = counts;
    const pad = (n: number): number => (8 - (n & 7)) & 7;
    const texts = 48 * count + 4 * RECORD_WORDS * count + pathBytes;
    const block = texts + textBytes + pad(texts + textBytes);
    const dict = block + blockBytes;
    expect(count).toBe(2);
    const records = 48 * count;
    const variants: [string, Buffer][] = [
      ['empty', Buffer.alloc(0)],
      ['garbage', Buffer.from('\x00\x01garbage\n')],
      ['truncated', cacheBytes.subarray(0, cacheBytes.length - 7)],
      ['truncated in the header', cacheBytes.subarray(0, head.length + 5)],
      ['header only', Buffer.from(head)],
      ['another version', Buffer.from(cacheBytes.toString('latin1').replace(/^(kmodts depmod scan cache \d+) \S+/, '$1 9.9.9'), 'latin1')],
      ['another format', Buffer.from(cacheBytes.toString('latin1').replace(/^kmodts depmod scan cache \d+/, 'kmodts depmod scan cache 1'), 'latin1')],
      ['one byte flipped in the numbers', Buffer.from(cacheBytes.map((b, i) => (i === cacheBytes.length - 3 ? b ^ 0x10 : b)))],
      ['one byte flipped in the keys', Buffer.from(cacheBytes.map((b, i) => (i === cacheBytes.length - body.length + 3 ? b ^ 0x01 : b)))],
      ['one byte flipped in the strings', Buffer.from(cacheBytes.map((b, i) => (i === cacheBytes.length - body.length + records + 4 * RECORD_WORDS * count + pathBytes + 2 ? b ^ 0x01 : b)))],
      ['longer than it says', Buffer.concat([cacheBytes, Buffer.from('x')])],
      ['an absurd count (hash right)', rebuilt(head, [2 ** 40, ...counts.slice(1)], body)],
      ['a count one too many (hash right)', rebuilt(head, [count + 1, ...counts.slice(1)], body)],
      ['a count one too few (hash right)', rebuilt(head, [count - 1, ...counts.slice(1)], body)],
      ['lengths that do not add up (hash right)', rebuilt(head, [count, pathBytes + 8, textBytes - 8, blockBytes, dictCount, dictNameBytes, walkBytes], body)],
      ['a dictionary entry more than there are (hash right)', rebuilt(head, [count, pathBytes, textBytes, blockBytes - 16, dictCount + 1, dictNameBytes, walkBytes], body)],
      ['an absurd dictionary (hash right)', rebuilt(head, [count, pathBytes, textBytes, blockBytes, 2 ** 40, dictNameBytes, walkBytes], body)],
      ['a walk record longer than the file (hash right)', rebuilt(head, [...counts.slice(0, 6), body.length + 1], body)],
      ['a dictionary name without its NUL (hash right)', rebuilt(head, counts, Buffer.from(body.map((b, i) => (i === body.length - 1 ? 0x41 : b))))],
      ['dictionary name lengths that do not add up (hash right)', rebuilt(head, counts, withWord(body, dict + 12 * dictCount, body.readUInt32LE(dict + 12 * dictCount) + 1))],
      ['a path too few (hash right)', rebuilt(head, counts, Buffer.from(body.map((b, i) => (i > records + 4 * RECORD_WORDS * count && i < records + 4 * RECORD_WORDS * count + pathBytes && b === 0 ? 0x41 : b))))],
      ['an entry past the numbers (hash right)', rebuilt(head, counts, withRecordWord(body, count, 1, AT, blockBytes))],
      ['a misaligned entry (hash right)', rebuilt(head, counts, withRecordWord(body, count, 0, AT, 4))],
      ['an absurd import count (hash right)', rebuilt(head, counts, withRecordWord(body, count, 0, IMPORTS, 0xffffffff))],
      ['strings past their part (hash right)', rebuilt(head, counts, withRecordWord(body, count, 1, 0, textBytes + 1))],
      ['strings short of their part (hash right)', rebuilt(head, counts, withRecordWord(body, count, 1, 0, 0))],
      ["an entry's aliases, lines and keys beyond its text (hash right)", rebuilt(head, counts, withRecordWord(body, count, 1, LINE_BYTES, textBytes + 1))],
      ['alias keys said to be more than there are (hash right)', rebuilt(head, counts, withRecordWord(body, count, 1, ALIASES, 0x40000000))],
      ['the header line without its hash', Buffer.from(cacheBytes.toString('latin1').replace(/ [0-9a-f]{8} *\n/, '\n'), 'latin1')],
    ];
    for (const [what, data] of variants) {
      fs.writeFileSync(bad, data);
      expect(ScanCache.load(bad), what).toBeUndefined();
      // read in the background, by the addon (its checksum) and in JavaScript (zlib's)
      for (const native of [true, false]) {
        expect(useNativeCacheRead(native), 'the native helper is built (npm run build)').toBe(native);
        expect(await ScanCache.loadInBackground(bad), `${what}, in the background, native ${native}`).toBeUndefined();
      }
    }
    for (const native of [true, false]) {
      useNativeCacheRead(native);
      expect(await ScanCache.loadInBackground(file('missing.cache'))).toBeUndefined();
      expect(await ScanCache.loadInBackground(dir)).toBeUndefined();
      fs.writeFileSync(bad, cacheBytes);
      const good = (await ScanCache.loadInBackground(bad))!;
      expect(good, `the undamaged file, native ${native}`).toBeDefined();
      expect(plain(good.get(old[1], statModule(old[1])!)!)).toEqual(plain(cachedScanOf(old[1])));
    }
    useNativeCacheRead(true);
    expect(ScanCache.load(file('missing.cache'))).toBeUndefined();
    expect(ScanCache.load(dir)).toBeUndefined();
    // consistent files (hash right) whose entries do not add up: those entries miss, the others hit
    const misses: [string, Buffer][] = [
      ['a reference past the dictionary', withWord(body, block + 16, dictCount)],
      ['a weak reference past the dictionary', withWord(body, block + 16, (0x80000000 | dictCount) >>> 0)],
      ['more aliases than strings', withRecordWord(withRecordWord(body, count, 0, ALIASES, 2), count, 0, FLAGS, 0)],
      ['one alias key more than there are', withRecordWord(body, count, 0, ALIASES, 2)],
      ['fewer exports than strings', withRecordWord(body, count, 0, EXPORTS, 1)],
      ['alias keys longer than their lengths say', withRecordWord(body, count, 0, KEY_BYTES, 10)],
    ];
    // the references checked by the addon at load and by get() without it
    for (const native of [true, false]) {
      expect(useNativeRefChecks(native), 'the native helper is built (npm run build)').toBe(native);
      for (const [what, damaged] of misses) {
        fs.writeFileSync(bad, rebuilt(head, counts, damaged));
        const cache = ScanCache.load(bad)!;
        expect(cache, what).toBeDefined();
        expect(cache.get(old[0], statModule(old[0])!), `${what}, native ${native}`).toBeUndefined();
        expect(plain(cache.get(old[1], statModule(old[1])!)!), what).toEqual(plain(cachedScanOf(old[1])));
      }
    }
    useNativeRefChecks(true);
  });

  it("misses an entry whose exports do not number what its record says, by the addon's count and by splitting them", () => {
    const sub = file('counted');
    fs.mkdirSync(sub);
    const w = new ScanCacheWriter();
    for (const p of [exporter, old[1]]) w.add(p, statModule(p)!, scanOf(p));
    expect(w.write(sub)).toBe(true);
    const { head, counts, body } = parts(fs.readFileSync(path.join(sub, SCAN_CACHE_FILE)));
    const [count, pathBytes] = counts;
    const records = 48 * count;
    const word0 = (word: number): number => body.readUInt32LE(records + 4 * word);
    // the exporter's lists are its three exports alone: their bytes, and the NUL after the first
    expect([word0(SOFTDEPS), word0(WEAKDEPS), word0(EXPORTS)]).toEqual([0, 0, 3]);
    const lists = records + 4 * RECORD_WORDS * count + pathBytes + word0(ALIAS_TEXT);
    expect(body.toString('latin1', lists, lists + 11)).toBe('ex_one\0ex_t');
    const withByte = (at: number, value: number): Buffer => Buffer.from(body.map((b, i) => (i === at ? value : b)));
    const damaged: [string, Buffer][] = [
      ['two exports run together', withByte(lists + 6, 0x41)],
      ['an export split in two', withByte(lists + 2, 0)],
      ['an export more than there are', withRecordWord(body, count, 0, EXPORTS, 4)],
      ['an export fewer than there are', withRecordWord(body, count, 0, EXPORTS, 2)],
    ];
    const bad = path.join(sub, 'bad.cache');
    for (const native of [true, false]) {
      expect(useNativeRefChecks(native), 'the native helper is built (npm run build)').toBe(native);
      const good = ScanCache.load(path.join(sub, SCAN_CACHE_FILE))!;
      expect(plain(good.get(exporter, statModule(exporter)!)!)).toEqual(plain(cachedScanOf(exporter)));
      for (const [what, data] of damaged) {
        fs.writeFileSync(bad, rebuilt(head, counts, data));
        const cache = ScanCache.load(bad)!;
        expect(cache, what).toBeDefined();
        expect(cache.get(exporter, statModule(exporter)!), `${what}, native ${native}`).toBeUndefined();
        expect(plain(cache.get(old[1], statModule(old[1])!)!), what).toEqual(plain(cachedScanOf(old[1])));
      }
    }
    useNativeRefChecks(true);
  });

  it('carries kept entries into a new cache with a new scan, their imports in one dictionary', () => {
    const cache = ScanCache.load(file(SCAN_CACHE_FILE))!;
    expect(cache.dictionary.size).toBe(distinct(old));
    expect(distinct([...old, third])).toBe(distinct(old) + 1);
    // (false: the one new scan rewrites the cache, as more of them would)
    const w = new ScanCacheWriter(false);
    for (const p of old) w.keep(p, statModule(p)!, cache);
    w.add(third, statModule(third)!, scanOf(third));
    const sub = file('carried');
    fs.mkdirSync(sub);
    expect(w.write(sub)).toBe(true);
    const next = ScanCache.load(path.join(sub, SCAN_CACHE_FILE))!;
    expect(next.size).toBe(3);
    // the old entries, and one_b from the new scan
    expect(next.dictionary.size).toBe(distinct([...old, third]));
    for (const p of [...old, third]) expect(plain(next.get(p, statModule(p)!)!), p).toEqual(plain(cachedScanOf(p)));
    // every old entry is still used: the old dictionary is kept whole, its entries where they were
    const d = cache.dictionary;
    expect(Buffer.from(next.dictionary.names.subarray(0, d.names.length)).equals(Buffer.from(d.names))).toBe(true);
    expect([...next.dictionary.crcs.subarray(0, d.size)]).toEqual([...d.crcs]);
    expect([...next.dictionary.keys.subarray(0, d.size)]).toEqual([...d.keys]);
  });

  it('gives a new cache a dictionary of only what its entries use when much of the old one is unused', () => {
    const first = new ScanCacheWriter();
    for (const p of [lonely, old[1]]) first.add(p, statModule(p)!, scanOf(p));
    const src = file('compacted-src');
    fs.mkdirSync(src);
    expect(first.write(src)).toBe(true);
    const cache = ScanCache.load(path.join(src, SCAN_CACHE_FILE))!;
    expect(cache.dictionary.size).toBe(distinct([lonely, old[1]]));
    // lonely's module is gone: its three imports go unused
    const w = new ScanCacheWriter(false);
    w.keep(old[1], statModule(old[1])!, cache);
    w.add(third, statModule(third)!, scanOf(third));
    const sub = file('compacted');
    fs.mkdirSync(sub);
    expect(w.write(sub)).toBe(true);
    const next = ScanCache.load(path.join(sub, SCAN_CACHE_FILE))!;
    expect(next.size).toBe(2);
    expect(next.dictionary.size).toBe(distinct([old[1], third]));
    expect(distinct([old[1], third])).toBeLessThan(distinct([lonely, old[1], third]));
    for (const p of [old[1], third]) expect(plain(next.get(p, statModule(p)!)!), p).toEqual(plain(cachedScanOf(p)));
  });

  it('a cache that cannot be written is no error; a killed run\'s temporary file is removed', () => {
    expect(new ScanCacheWriter().write(file('no/such/dir'))).toBe(false);
    // pid 2^22 + 1 is above any pid_max: no such process
    const abandoned = file(`${SCAN_CACHE_FILE}.tmp-4194305-abc`);
    const ours = file(`${SCAN_CACHE_FILE}.tmp-${process.pid}-abc`);
    fs.writeFileSync(abandoned, 'half');
    fs.writeFileSync(ours, 'half');
    const w = new ScanCacheWriter();
    w.add(old[0], statModule(old[0])!, scanOf(old[0]));
    expect(w.write(dir)).toBe(true);
    expect(fs.existsSync(abandoned)).toBe(false);
    expect(fs.existsSync(ours)).toBe(true);
    fs.rmSync(ours);
    expect(ScanCache.load(file(SCAN_CACHE_FILE))!.size).toBe(1);
  });

  it('is left as it is when the run adds nothing to it', () => {
    const before = fs.readFileSync(file(SCAN_CACHE_FILE));
    // everything from the cache
    const cache = ScanCache.load(file(SCAN_CACHE_FILE))!;
    const hits = new ScanCacheWriter();
    hits.keep(old[0], statModule(old[0])!, cache);
    expect(hits.write(dir)).toBe(false);
    // only a file changed just now was scanned
    const now = file('just-now.ko');
    fs.writeFileSync(now, moduleBytes({ rel: 'just-now.ko', exports: ['now'] }));
    const fresh = new ScanCacheWriter();
    fresh.keep(old[0], statModule(old[0])!, cache);
    fresh.add(now, statModule(now)!, scanOf(now));
    expect(fresh.write(dir)).toBe(false);
    expect(fs.readFileSync(file(SCAN_CACHE_FILE)).equals(before)).toBe(true);
    expect(fs.readdirSync(dir).filter((n) => n.includes('.tmp-'))).toEqual([]);
  });
});

describe("the addon's check of word ranges (the cache's import references)", () => {
  it('says which ranges hold only words below the limit once masked, and refuses what it cannot take', () => {
    const check = loadNativeWordRangesBelow();
    expect(check, 'the native helper is built (npm run build)').not.toBeNull();
    const words = Uint32Array.of(0, 4, 0x80000004, 5, 0x80000005, 3);
    const mask = 0x7fffffff;
    // [0,4], [4 weak], [5], [5 weak], nothing, past the end, overflowing the end
    const starts = Uint32Array.of(0, 2, 3, 4, 6, 6, 0xffffffff);
    const counts = Uint32Array.of(2, 1, 1, 1, 0, 1, 2);
    expect(Array.from(check!(words, starts, counts, mask, 5))).toEqual([1, 1, 0, 0, 1, 0, 0]);
    expect(Array.from(check!(words, starts, counts, 0xffffffff, 5))).toEqual([1, 0, 0, 0, 1, 0, 0]);
    expect(() => check!(words, starts, Uint32Array.of(1), mask, 5)).toThrow(RangeError);
    expect(() => check!(words, [0] as unknown as Uint32Array, Uint32Array.of(1), mask, 5)).toThrow(TypeError);
    expect(() => check!(new Int32Array(2) as unknown as Uint32Array, starts, counts, mask, 5)).toThrow(TypeError);
    expect(() => check!(words, starts, counts, 'x' as unknown as number, 5)).toThrow(TypeError);
  });

  it('counts the NULs of byte ranges, and marks a range out of bounds', () => {
    const count = nativeFunction('nulsInRanges');
    expect(count, 'the native helper is built (npm run build)').not.toBeNull();
    const bytes = Uint8Array.from(Buffer.from('ab\0cd\0\0e', 'latin1'));
    // all, the first string, an empty range, the last byte, past the end, overflowing the end
    const starts = Uint32Array.of(0, 0, 3, 7, 7, 0xffffffff);
    const lengths = Uint32Array.of(8, 2, 0, 1, 2, 2);
    expect(Array.from(count!(bytes, starts, lengths))).toEqual([3, 0, 0, 0, 0xffffffff, 0xffffffff]);
    expect(Array.from(count!(new Uint8Array(0), Uint32Array.of(0), Uint32Array.of(0)))).toEqual([0]);
    expect(count!(bytes, new Uint32Array(0), new Uint32Array(0))).toEqual(new Uint32Array(0));
    expect(() => count!(bytes, starts, Uint32Array.of(1))).toThrow(RangeError);
    expect(() => count!(bytes, [0] as unknown as Uint32Array, Uint32Array.of(1))).toThrow(TypeError);
    expect(() => count!(new Uint16Array(2) as unknown as Uint8Array, starts, lengths)).toThrow(TypeError);
    expect(() => (count as unknown as (a: Uint8Array) => Uint32Array)(bytes)).toThrow(TypeError);
  });

  it('adds up the words of ranges, and marks a range out of bounds', () => {
    const sums = nativeFunction('wordRangeSums');
    expect(sums, 'the native helper is built (npm run build)').not.toBeNull();
    const words = Uint32Array.of(1, 2, 0xffffffff, 0xffffffff, 5);
    // the first two, the large two (no overflow), nothing, the last, past the end, overflowing the end
    const starts = Uint32Array.of(0, 2, 4, 4, 4, 0xffffffff);
    const counts = Uint32Array.of(2, 2, 0, 1, 2, 2);
    expect(Array.from(sums!(words, starts, counts))).toEqual([3, 2 * 0xffffffff, 0, 5, -1, -1]);
    expect(sums!(new Uint32Array(0), new Uint32Array(0), new Uint32Array(0))).toEqual(new Float64Array(0));
    expect(() => sums!(words, starts, Uint32Array.of(1))).toThrow(RangeError);
    expect(() => sums!(words, [0] as unknown as Uint32Array, Uint32Array.of(1))).toThrow(TypeError);
    expect(() => (sums as unknown as (a: Uint32Array) => Float64Array)(words)).toThrow(TypeError);
  });

  it('marks the values of the ranges once masked, or gives null for a value or range out of bounds', () => {
    const mark = loadNativeWordRangesMark();
    expect(mark, 'the native helper is built (npm run build)').not.toBeNull();
    const words = Uint32Array.of(0, 4, 0x80000004, 2, 9);
    const mask = 0x7fffffff;
    expect(Array.from(mark!(words, Uint32Array.of(0, 2), Uint32Array.of(2, 2), mask, 5)!)).toEqual([1, 0, 1, 0, 1]);
    expect(Array.from(mark!(words, Uint32Array.of(), Uint32Array.of(), mask, 3)!)).toEqual([0, 0, 0]);
    expect(mark!(words, Uint32Array.of(0), Uint32Array.of(5), mask, 5)).toBeNull();
    expect(mark!(words, Uint32Array.of(2), Uint32Array.of(1), 0xffffffff, 5)).toBeNull();
    expect(mark!(words, Uint32Array.of(4), Uint32Array.of(2), mask, 10)).toBeNull();
    expect(mark!(words, Uint32Array.of(0xffffffff), Uint32Array.of(2), mask, 10)).toBeNull();
    expect(() => mark!(words, Uint32Array.of(0), Uint32Array.of(), mask, 5)).toThrow(RangeError);
    expect(() => mark!(words, [0] as unknown as Uint32Array, Uint32Array.of(1), mask, 5)).toThrow(TypeError);
    expect(() => mark!(words, Uint32Array.of(0), Uint32Array.of(1), mask, 'x' as unknown as number)).toThrow(TypeError);
    expect(() => mark!(words, Uint32Array.of(0), Uint32Array.of(1), mask, 2 ** 31)).toThrow(RangeError);
  });

  it('writes the same file from the scans made in C on the pool (their alias pieces made there) as from scans made here', async () => {
    const paths = moduleFiles().slice(0, 400);
    const written: Buffer[] = [];
    for (const onPool of [true, false]) {
      const pool = startScanPool({ scanOnPool: onPool });
      try {
        const scans = await pool.scan(paths);
        // the C scans come with their alias pieces, these without
        expect(scans.filter((s) => s.aliasPieces !== undefined).length > 300).toBe(onPool);
        const w = new ScanCacheWriter();
        paths.forEach((p, k) => w.add(p, statModule(p)!, scans[k]));
        const out = path.join(dir, `same-${onPool}`);
        fs.mkdirSync(out, { recursive: true });
        expect(w.write(out)).toBe(true);
        written.push(fs.readFileSync(path.join(out, SCAN_CACHE_FILE)));
      } finally {
        pool.close();
      }
    }
    expect(written[0].length).toBeGreaterThan(100_000);
    expect(written[0].equals(written[1])).toBe(true);
  });
});
