// The scan cache file (src/depmod/scan-cache.ts): what it keeps and gives back, what it refuses to store
// (files changed within a timestamp tick of the run), and every kind of damaged file, which must read
// as "no cache" and never throw.
import { crc32 } from 'node:zlib';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { scanModuleImage, ScanStore, type ModuleScan } from '../../src/depmod/module-scan';
import { SCAN_CACHE_FILE, ScanCache, ScanCacheWriter, statModule } from '../../src/depmod/scan-cache';
import { moduleBytes, tmpRoot } from './support';

const dir = tmpRoot('scan-cache');
const file = (name: string): string => path.join(dir, name);

function scanOf(p: string): ModuleScan {
  return scanModuleImage(fs.readFileSync(p), p, new ScanStore());
}

function plain(scan: ModuleScan): unknown {
  return { ...scan, exportCrcs: [...scan.exportCrcs], importNames: [...scan.importNames], importLengths: [...scan.importLengths], importCrcs: [...scan.importCrcs], importWeak: [...scan.importWeak], importKeys: [...scan.importKeys] };
}

/** the cache file's parts, and one rebuilt from parts (with a correct hash) */
function parts(data: Buffer): { head: string; json: string; block: Buffer } {
  const first = data.indexOf(0x0a);
  const second = data.indexOf(0x0a, first + 1);
  const [jsonBytes] = data.toString('latin1', first + 1, second).split(' ').map(Number);
  const body = data.subarray(second + 1);
  return { head: data.toString('latin1', 0, first + 1), json: body.toString('utf8', 0, jsonBytes), block: body.subarray(jsonBytes) };
}
function rebuilt(head: string, json: string, block: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(json, 'utf8'), block]);
  const hash = crc32(body).toString(16).padStart(8, '0');
  return Buffer.concat([Buffer.from(`${head}${Buffer.byteLength(json)} ${block.length} ${hash}\n`, 'latin1'), body]);
}

describe('scan cache', () => {
  let cacheBytes: Buffer;
  const old = [file('old1.ko'), file('old2.ko')];
  beforeAll(async () => {
    fs.writeFileSync(old[0], moduleBytes({ rel: 'old1.ko', exports: ['one_a', 'one_b'], imports: ['printk'], weakImports: ['maybe'], modinfo: [['alias', 'one-alias'], ['softdep', 'pre: two'], ['weakdep', 'three']] }));
    fs.writeFileSync(old[1], moduleBytes({ rel: 'old2.ko', imports: ['one_a'], modinfo: [['alias', 'devname:two'], ['alias', 'char-major-10-1']] }));
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
    for (const p of old) expect(plain(cache.get(p, statModule(p)!)!)).toEqual(plain(scanOf(p)));
  });

  it('does not store a file changed within a timestamp tick of the run', () => {
    const cache = ScanCache.load(file(SCAN_CACHE_FILE))!;
    expect(cache.size).toBe(2);
    expect(cache.get(file('new.ko'), statModule(file('new.ko'))!)).toBeUndefined();
  });

  it('misses when anything in the stat changed: touch, rewrite, replacement', () => {
    const cache = ScanCache.load(file(SCAN_CACHE_FILE))!;
    const st = statModule(old[0])!;
    const changed = { ...st, ctimeNs: st.ctimeNs + 1n } as typeof st;
    expect(cache.get(old[0], changed)).toBeUndefined();
    expect(cache.get(old[0], { ...st, ino: st.ino + 1n } as typeof st)).toBeUndefined();
    expect(cache.get(old[0], { ...st, mtimeNs: st.mtimeNs + 1n } as typeof st)).toBeUndefined();
    expect(cache.get(old[0], { ...st, size: st.size + 1n } as typeof st)).toBeUndefined();
    expect(cache.get(file('elsewhere.ko'), st)).toBeUndefined();
  });

  it('reads any damaged file as no cache, without throwing', () => {
    const bad = file('bad.cache');
    const { head, json, block } = parts(cacheBytes);
    const entries = JSON.parse(json) as unknown[][];
    const variants: [string, Buffer][] = [
      ['empty', Buffer.alloc(0)],
      ['garbage', Buffer.from('\x00\x01garbage\n')],
      ['truncated', cacheBytes.subarray(0, cacheBytes.length - 7)],
      ['header only', Buffer.from(head)],
      ['another version', Buffer.from(cacheBytes.toString('latin1').replace(/^(kmodts depmod scan cache \d+) \S+/, '$1 9.9.9'), 'latin1')],
      ['another format', Buffer.from(cacheBytes.toString('latin1').replace(/^kmodts depmod scan cache \d+/, 'kmodts depmod scan cache 999'), 'latin1')],
      ['one byte flipped in the numbers', Buffer.from(cacheBytes.map((b, i) => (i === cacheBytes.length - 3 ? b ^ 0x10 : b)))],
      ['one byte flipped in the names', Buffer.from(cacheBytes.map((b, i) => (i === head.length + 90 ? b ^ 0x01 : b)))],
      ['longer than it says', Buffer.concat([cacheBytes, Buffer.from('x')])],
      ['not JSON (hash right)', rebuilt(head, '{"a":', block)],
      ['not a list (hash right)', rebuilt(head, '{}', block)],
      ['an entry of the wrong shape', rebuilt(head, JSON.stringify([[1, 2, 3]]), block)],
      ['an entry past the numbers', rebuilt(head, JSON.stringify(entries.map((e) => e.map((v, k) => (k === 8 ? block.length : v)))), block)],
      ['a misaligned entry', rebuilt(head, JSON.stringify(entries.map((e) => e.map((v, k) => (k === 8 ? 4 : v)))), block)],
      ['a negative count', rebuilt(head, JSON.stringify(entries.map((e) => e.map((v, k) => (k === 6 ? -1 : v)))), block)],
      ['exports not strings', rebuilt(head, JSON.stringify(entries.map((e) => e.map((v, k) => (k === 5 ? [1] : v)))), block)],
    ];
    for (const [what, data] of variants) {
      fs.writeFileSync(bad, data);
      expect(ScanCache.load(bad), what).toBeUndefined();
    }
    expect(ScanCache.load(file('missing.cache'))).toBeUndefined();
    expect(ScanCache.load(dir)).toBeUndefined();
    // a consistent file (hash right) whose names are shorter than its lengths say: that entry misses
    const short = rebuilt(head, JSON.stringify(entries.map((e) => e.map((v, k) => (k === 7 ? 0 : v)))), block);
    fs.writeFileSync(bad, short);
    const cache = ScanCache.load(bad)!;
    expect(cache.get(old[0], statModule(old[0])!)).toBeUndefined();
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
