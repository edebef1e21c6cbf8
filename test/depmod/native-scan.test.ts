// depmod's scan in C on the pool (native/module_scan.c, read by src/depmod/native-scan.ts) against the
// JavaScript scan of the same image (module-scan.ts scanModuleImage), which stays the reference: every
// module of the cloud tree as .ko, .ko.zst and .ko.xz through the pool both ways; the big-endian
// (s390x) and 32-bit (armhf) trees image by image; and damaged images (truncated headers, section
// tables out of range, .modinfo without its NUL, huge section sizes, wrong class and byte order,
// random flips), where the C must either give the JavaScript scan or leave the image to it, and must
// leave every image whose header JavaScript rejects. The addon is part of the build: its absence fails.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { scanModuleImage, type ModuleScan } from '../../src/depmod/module-scan';
import { scanImageInC } from '../../src/depmod/native-scan';
import { poolScanStats } from '../../src/depmod/pool-scan';
import { startScanPool } from '../../src/depmod/scan-pool';
import { decompress } from '../../src/file/decompress';
import { Elf } from '../../src/file/elf';
import { buildModule } from '../support/elf-writer';
import { prng } from '../support/prng';
import { moduleFiles, reference, repoRoot } from '../support/reference';
import { plainPieces, plainScan } from './support';
import { aliasPieces } from '../../src/depmod/alias-files';
import { modnameFromPath } from '../../src/names/modname';
import { keyOf, statKeys } from '../../src/depmod/stat-keys';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-native-scan-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** plainScan, or undefined for no scan */
function plain(s: ModuleScan | undefined): unknown {
  return s === undefined ? undefined : plainScan(s);
}

/** the cloud tree's modules as .ko.<ext> (bench/trees.js makes the copy once per machine) */
function cloudModules(ext: 'xz' | 'zst' | 'ko'): string[] {
  if (ext === 'xz') return moduleFiles();
  const { recompressedCopy } = require(path.join(repoRoot, 'bench/trees.js')) as {
    recompressedCopy: (tree: { root: string; kver: string; moddir: string }, ext: string) => { moddir: string };
  };
  const ref = reference();
  const moddir = path.join(ref.KTREE, 'lib/modules', ref.KVER);
  const copy = recompressedCopy({ root: ref.KTREE, kver: ref.KVER, moddir }, ext).moddir;
  const suffix = ext === 'ko' ? '.ko' : `.ko.${ext}`;
  return execFileSync('find', [copy, '-name', `*${suffix}`], { encoding: 'utf8' }).trim().split('\n').sort();
}

function foreignTree(arch: string, meta: string): string[] {
  const out = execFileSync('bash', [path.join(repoRoot, 'scripts/fetch-tree.sh'), arch, meta], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const ktree = /^KTREE=(.*)$/m.exec(out)![1];
  const kver = /^KVER=(.*)$/m.exec(out)![1];
  return execFileSync('find', [path.join(ktree, 'lib/modules', kver), '-name', '*.ko*'], { encoding: 'utf8' }).trim().split('\n').sort();
}

/** the pool's scans of `paths`, made there in C (onPool) or sent back as images and scanned here */
async function poolScans(paths: string[], onPool: boolean): Promise<{ scans: unknown[]; inC: number; raw: ModuleScan[]; keys: (Uint32Array | undefined)[] }> {
  const before = poolScanStats.scannedOnPool;
  const pool = startScanPool({ scanOnPool: onPool });
  try {
    const keys: (Uint32Array | undefined)[] = [];
    const scans = await pool.scan(paths, (i, _scan, key) => (keys[i] = key));
    expect(pool.statKeysFromReads).toBe(true);
    return { scans: scans.map(plain), inC: poolScanStats.scannedOnPool - before, raw: scans, keys };
  } finally {
    pool.close();
  }
}

/** the C scan of an image, which must be the JavaScript one wherever the C gives one; whether it did */
function agrees(image: Buffer, what: string): boolean {
  const scan = scanImageInC(image);
  if (scan === undefined) return false;
  const js = scanModuleImage(image, 'm.ko');
  // the exports as the block held them, joined (what the symbol table and the cache writer take), until made strings
  expect(scan.exportsJoined, what).toBe(js.exports.join('\0'));
  expect(plain(scan), what).toEqual(plain(js));
  expect(scan.exportsJoined, what).toBeUndefined();
  return true;
}

describe('depmod scan in C on the pool', () => {
  it.each(['ko', 'zst', 'xz'] as const)('gives the JavaScript scan of every module of the cloud tree as .%s, all of them scanned in C', async (ext) => {
    const files = cloudModules(ext);
    expect(files.length).toBeGreaterThan(1000);
    const inC = await poolScans(files, true);
    const here = await poolScans(files, false);
    expect(inC.inC).toBe(files.length);
    expect(here.inC).toBe(0);
    for (let i = 0; i < files.length; i++) expect(inC.scans[i], files[i]).toEqual(here.scans[i]);
    // and each module's alias pieces, made in C from its path: alias-files.ts' of its name and aliases
    let withPieces = 0;
    for (let i = 0; i < files.length; i++) {
      const scan = inC.raw[i];
      const expected = aliasPieces({ modname: modnameFromPath(files[i])!, aliases: scan.aliases });
      expect(plainPieces(scan.aliasPieces), files[i]).toEqual(plainPieces(expected));
      if (scan.aliasPieces !== undefined) withPieces++;
    }
    expect(withPieces).toBe(files.length);
    // each file's stat key as its reading thread took it: stat()'s, both ways
    const stat = statKeys(files);
    for (const run of [inC, here]) for (let i = 0; i < files.length; i++) expect([...run.keys[i]!], files[i]).toEqual([...stat.subarray(12 * i, 12 * i + 12)]);
  });

  it('makes the alias pieces alias-files.ts makes: dashes, [...] classes, bad brackets, long and 8-bit aliases, names from paths', () => {
    const aliasSets: string[][] = [
      [],
      ['pci:v00008086d*sv*sd*bc*sc*i*', 'of:N*T*Cfoo-bar', 'a-b-c'],
      ['usb:v[0-9]d-x', 'x[a-b]-y[c-d]'],
      ['bad]bracket', 'fine'],
      ['fine', 'open[bracket-'],
      [`${'d-'.repeat(2100)}`, `${'e'.repeat(4094)}[a-b]-z`, `${'f'.repeat(4095)}-g`],
      ['caf\xe9-x', 'ok'],
      ['ok', 'edge\x80'],
      ['edge\x7f-x'],
      [`${'g'.repeat(4096)}\xe9`],
      ['devname:fuse', 'char-major-10-229', 'x-y'],
      ['', '-', '[]', '[-]-'],
    ];
    const paths = ['/lib/modules/k/kernel/a/snd-hda-intel.ko', 'rel/x-y.z.ko.zst', 'plain.ko', '/m/dir.d/-.ko.xz', '/m/trailing/', `/m/${'n-'.repeat(2100)}.ko`];
    let compared = 0;
    for (const [k, aliases] of aliasSets.entries()) {
      const image = buildModule({ name: `m${k}`, vermagic: '6.1 SMP ', modinfo: aliases.map((a) => ['alias', a] as [string, string]) });
      for (const p of paths) {
        const scan = scanImageInC(image, undefined, p);
        expect(scan, p).toBeDefined();
        expect(scan!.aliases).toEqual(aliases);
        const modname = modnameFromPath(p);
        const expected = modname === null ? null : aliasPieces({ modname, aliases });
        expect(plainPieces(scan!.aliasPieces), `${JSON.stringify(aliases).slice(0, 80)} ${p.slice(0, 40)}`).toEqual(plainPieces(expected));
        compared++;
      }
      // without a path: no pieces
      expect(scanImageInC(image)!.aliasPieces).toBeUndefined();
    }
    expect(compared).toBe(aliasSets.length * paths.length);
  });

  it.each([
    ['s390x (ELF64 big-endian)', () => foreignTree('s390x', 'linux-image-s390x')],
    ['armhf (ELF32 little-endian)', () => foreignTree('armhf', 'linux-image-armmp')],
  ] as const)('gives the JavaScript scan of every 3rd module of the %s tree', (_, files) => {
    const list = files();
    let compared = 0;
    for (let i = 0; i < list.length; i += 3) {
      expect(agrees(decompress(fs.readFileSync(list[i]), list[i]), list[i]), list[i]).toBe(true);
      compared++;
    }
    expect(compared).toBeGreaterThan(300);
  });

  /** one module of each ELF kind: amd64 (ELF64 LE), s390x (ELF64 BE), armhf (ELF32 LE) */
  function samples(): { file: string; image: Buffer }[] {
    const pick = [moduleFiles()[7], foreignTree('s390x', 'linux-image-s390x')[11], foreignTree('armhf', 'linux-image-armmp')[13]];
    return pick.map((file) => ({ file, image: decompress(fs.readFileSync(file), file) }));
  }

  it('leaves to JavaScript every image whose header or section table JavaScript rejects', () => {
    let rejected = 0;
    for (const { file, image } of samples()) {
      const elf = new Elf(image, file);
      const is64 = elf.is64;
      const le = !elf.msb;
      const put = (b: Buffer, at: number, v: number, size: 2 | 4 | 8): void => {
        if (size === 2) (le ? b.writeUInt16LE : b.writeUInt16BE).call(b, v, at);
        else if (size === 4) (le ? b.writeUInt32LE : b.writeUInt32BE).call(b, v >>> 0, at);
        else (le ? b.writeBigUInt64LE : b.writeBigUInt64BE).call(b, BigInt(v), at);
      };
      const shstr = elf.shoff + elf.shstrndx * elf.shentsize;
      const bad: [string, Buffer][] = [];
      const edit = (what: string, f: (b: Buffer) => void): void => {
        const b = Buffer.from(image);
        f(b);
        bad.push([what, b]);
      };
      for (let n = 0; n <= (is64 ? 64 : 52); n++) bad.push([`cut to ${n} bytes`, image.subarray(0, n)]);
      bad.push(['cut inside the section table', image.subarray(0, elf.shoff + elf.shentsize * elf.shnum - 1)]);
      edit('magic', (b) => (b[1] = 0x46));
      for (const cls of [0, 3, 0xff]) edit(`class ${cls}`, (b) => (b[4] = cls));
      for (const enc of [0, 3]) edit(`data encoding ${enc}`, (b) => (b[5] = enc));
      edit('other byte order', (b) => (b[5] = le ? 2 : 1));
      edit('other class', (b) => (b[4] = is64 ? 1 : 2));
      edit('section header size', (b) => put(b, is64 ? 58 : 46, elf.shentsize + 8, 2));
      edit('section table past the end', (b) => put(b, is64 ? 40 : 32, image.length, is64 ? 8 : 4));
      edit('section table offset 2^64-1', (b) => b.fill(0xff, is64 ? 40 : 32, is64 ? 48 : 36));
      edit('section count 0xffff', (b) => put(b, is64 ? 60 : 48, 0xffff, 2));
      for (const idx of [0, elf.shnum, 0xffff]) edit(`name table index ${idx}`, (b) => put(b, is64 ? 62 : 50, idx, 2));
      edit('name table past the end', (b) => put(b, shstr + (is64 ? 24 : 16), image.length, is64 ? 8 : 4));
      edit('name table size huge', (b) => (is64 ? b.fill(0xff, shstr + 32, shstr + 40) : put(b, shstr + 20, 0xffffffff, 4)));
      edit('name table without its NUL', (b) => {
        const h = new Elf(image, file).sections()[elf.shstrndx];
        b[h.offset + h.size - 1] = 0x41;
      });
      edit('name table name out of range', (b) => put(b, shstr, 0xfffffff, 4));
      for (const [what, b] of bad) {
        const js = scanModuleImage(b, file);
        expect(js.symbolsErrno, `${file}: ${what}`).toBeDefined();
        expect(scanImageInC(b), `${file}: ${what}`).toBeUndefined();
        rejected++;
      }
    }
    expect(rejected).toBeGreaterThan(200);
  });

  /**
   * Damaged copies of the samples: each wanted section's size and offset set to 0, 1, past the end,
   * 2^32-1, 2^63, 2^64-1; its last NUL replaced, all of it NULs; cuts; `flips` rounds of random flips
   * in sections and the section table.
   */
  function damaged(flips: number): [string, Buffer][] {
    const rand = prng(0x63736361);
    const out: [string, Buffer][] = [];
    for (const { file, image } of samples()) {
      const elf = new Elf(image, file);
      const sections = elf.sections();
      const wanted = ['.modinfo', '.symtab', '.strtab', '__versions', '__ksymtab_strings'];
      const add = (b: Buffer, what: string): number => out.push([`${file}: ${what}`, b]);
      for (const s of sections.filter((h) => h.name !== undefined && wanted.includes(h.name))) {
        const field = (b: Buffer, off64: number, off32: number, v: bigint): void => {
          const at = s.headerOffset + (elf.is64 ? off64 : off32);
          if (elf.is64) (elf.msb ? b.writeBigUInt64BE : b.writeBigUInt64LE).call(b, v, at);
          else (elf.msb ? b.writeUInt32BE : b.writeUInt32LE).call(b, Number(v & 0xffffffffn), at);
        };
        for (const size of [0n, 1n, BigInt(image.length), BigInt(image.length - s.offset + 1), 2n ** 32n - 1n, 2n ** 63n, 2n ** 64n - 1n]) {
          const b = Buffer.from(image);
          field(b, 32, 20, size);
          add(b, `${s.name} size ${size}`);
        }
        for (const off of [0n, BigInt(image.length), BigInt(image.length - 1), 2n ** 64n - 1n]) {
          const b = Buffer.from(image);
          field(b, 24, 16, off);
          add(b, `${s.name} offset ${off}`);
        }
        if (s.size > 0) {
          const b = Buffer.from(image);
          b[s.offset + s.size - 1] = 0x78;
          add(b, `${s.name} without its last NUL`);
          add(Buffer.from(image).fill(0, s.offset, s.offset + s.size), `${s.name} all NULs`);
        }
      }
      for (let k = 1; k < 16; k++) add(image.subarray(0, Math.floor((image.length * k) / 16)), `cut at ${k}/16`);
      const regions = sections.filter((h) => h.size > 0 && h.valid && h.type !== 8);
      regions.push({ offset: elf.shoff, size: elf.shnum * elf.shentsize } as (typeof regions)[number]);
      for (let round = 0; round < flips; round++) {
        const b = Buffer.from(image);
        const r = regions[Math.floor(rand() * regions.length)];
        for (let k = 1 + Math.floor(rand() * 6); k > 0; k--) {
          const at = r.offset + Math.floor(rand() * r.size);
          b[at] = rand() < 0.3 ? 0 : rand() < 0.5 ? 0xff : b[at] ^ (1 << Math.floor(rand() * 8));
        }
        add(b, `flips, round ${round}`);
      }
    }
    return out;
  }

  it('agrees on damaged sections: .modinfo without NUL, huge or outside sizes and offsets, truncations, random flips', () => {
    const cases = damaged(150);
    let inC = 0;
    for (const [what, b] of cases) if (agrees(b, what)) inC++;
    expect(cases.length).toBeGreaterThan(500);
    // most damaged images are still the C's (it leaves only what JavaScript treats otherwise)
    expect(inC).toBeGreaterThan(cases.length / 2);
  });

  it('agrees on damaged .ko files read in parts on the pool, each after a good module (so the job\'s buffer holds other bytes)', async () => {
    const good = cloudModules('ko');
    const files: string[] = [];
    damaged(40).forEach(([, b], k) => {
      const f = path.join(tmp, `damaged-${k}.ko`);
      fs.writeFileSync(f, b);
      files.push(good[(k * 7) % good.length], f);
    });
    const inC = await poolScans(files, true);
    const here = await poolScans(files, false);
    for (let i = 0; i < files.length; i++) expect(inC.scans[i], files[i]).toEqual(here.scans[i]);
    expect(inC.inC).toBeGreaterThan(files.length * 0.75);
  });

  it('gives the old path\'s scans for damaged, gzip, empty, short, missing and unreadable files, and images too large for a slot', async () => {
    const good = moduleFiles().slice(0, 12);
    const image = decompress(fs.readFileSync(good[0]), good[0]);
    const put = (name: string, data: Buffer): string => {
      const f = path.join(tmp, name);
      fs.writeFileSync(f, data);
      return f;
    };
    const zst = (b: Buffer): Buffer => execFileSync('zstd', ['-q', '-c', `--stream-size=${b.length}`], { input: b, maxBuffer: 1 << 26 });
    const cut = image.subarray(0, 40);
    const noNul = Buffer.from(image);
    const modinfo = new Elf(image, 'm.ko').findSection('.modinfo')!;
    noNul[modinfo.offset + modinfo.size - 1] = 0x78;
    const classless = Buffer.from(image);
    classless[4] = 7;
    const big = Buffer.concat([image, Buffer.alloc(10 << 20)]);
    // a scan's block larger than a slot's buffer (then one of its own, and the slot grown), twice
    const many = buildModule({
      name: 'many',
      vermagic: '6.1 SMP ',
      imports: Array.from({ length: 6000 }, (_, k) => ({ name: `imported_symbol_${'x'.repeat(k % 30)}_${k}`, crc: k % 3 === 0 ? null : k, weak: k % 7 === 0 })),
      exports: Array.from({ length: 1500 }, (_, k) => ({ name: `exported_${k}`, crc: k + 1 })),
      modinfo: [['alias', 'many-1'], ['softdep', 'pre: a'], ['weakdep', 'b'], ['alias', '']],
    });
    const files = [
      ...good,
      put('cut.ko', cut),
      put('cut.ko.zst', zst(cut)),
      put('nonul.ko', noNul),
      put('nonul.ko.zst', zst(noNul)),
      put('classless.ko.zst', zst(classless)),
      put('m.ko.gz', zlib.gzipSync(image)),
      // two members: left to node:zlib (native/decode_gzip.c), then scanned here
      put('two.ko.gz', Buffer.concat([zlib.gzipSync(image.subarray(0, 1000)), zlib.gzipSync(image.subarray(1000))])),
      put('big.ko', big),
      put('big.ko.zst', zst(big)),
      put('many.ko', many),
      put('many.ko.zst', zst(many)),
      put('empty.ko', Buffer.alloc(0)),
      put('short.ko.zst', Buffer.from([0x28, 0xb5, 0x2f])),
      put('flipped.ko.zst', ((b) => ((b[b.length >> 1] ^= 0x10), b))(zst(image))),
      put('text.ko', Buffer.from('not a module\n')),
      path.join(tmp, 'missing.ko'),
      tmp,
      good[3],
    ];
    const inC = await poolScans(files, true);
    const here = await poolScans(files, false);
    for (let i = 0; i < files.length; i++) expect(inC.scans[i], files[i]).toEqual(here.scans[i]);
    // the good ones, m.ko.gz, nonul.* (its .modinfo runs to the section's end, as in JavaScript), big.* and many.* were the C's
    expect(inC.inC).toBe(good.length + 1 + 1 + 2 + 2 + 2);
    expect((inC.scans[files.indexOf(path.join(tmp, 'many.ko'))] as { importLengths: number[] }).importLengths.length).toBeGreaterThanOrEqual(6000);
    // every file's stat key as its reader took it, whatever became of the file: stat()'s (a missing
    // file's says so; a directory's is its own, as stat() gives it)
    const stat = statKeys(files);
    for (const run of [inC, here]) for (let i = 0; i < files.length; i++) expect([...run.keys[i]!], files[i]).toEqual([...stat.subarray(12 * i, 12 * i + 12)]);
    expect(keyOf(stat, files.indexOf(path.join(tmp, 'missing.ko')))).toBeUndefined();
  });
});
