// PartsPrefetcher (modinfo's parts of modules read ahead on libuv's thread pool, a batch of files a
// request, compressed ones decompressed there): every file gives what modinfo's own read gives, whether
// the batch packed it or left it to the caller (damaged, not ELF, missing, too small, parts larger than
// a batch, a stream the decoder refuses), in order, with files skipped and batches passed; and a
// batch's packing, however damaged, is never read out of range.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Elf } from '../../src/file/elf';
import { openModuleFile, type ModuleFile } from '../../src/file/module-file';
import { PackedParts } from '../../src/file/modinfo-parts';
import { PartsPrefetcher } from '../../src/file/parts-prefetch';
import { fileInfo } from '../../src/resolution/modinfo';
import { moduleDir, reference } from '../support/reference';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-parts-prefetch-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** every 12th module of the reference tree, decompressed (well over two batches of 32) */
function modules(): string[] {
  const xz = execFileSync('find', [moduleDir(reference()), '-name', '*.ko.xz'], { encoding: 'utf8' }).trim().split('\n').sort().filter((_, i) => i % 12 === 0);
  return xz.map((f, i) => {
    const out = path.join(tmp, `${i}-${path.basename(f, '.xz')}`);
    fs.writeFileSync(out, execFileSync('xz', ['-dc', f], { maxBuffer: 1 << 28 }));
    return out;
  });
}

/** files the batches leave to the caller: damaged, not ELF, missing, under a page, a .modinfo larger than a batch */
function oddFiles(good: string, large: string): string[] {
  const bytes = fs.readFileSync(good);
  const write = (name: string, b: Buffer): string => {
    const f = path.join(tmp, name);
    fs.writeFileSync(f, b);
    return f;
  };
  const noTable = Buffer.from(bytes);
  noTable.writeBigUInt64LE(0x7fffffffn, 40);
  const big = Buffer.from(fs.readFileSync(large));
  const elf = new Elf(big, large);
  const modinfo = elf.sections().find((h) => h.name === '.modinfo')!;
  // .modinfo made 300 KiB from the start of the file: more than a batch holds
  big.writeBigUInt64LE(0n, modinfo.headerOffset + 24);
  big.writeBigUInt64LE(300n << 10n, modinfo.headerOffset + 32);
  return [
    write('no-table.ko', noTable),
    write('cut.ko', bytes.subarray(0, bytes.length >> 1)),
    write('text.ko', Buffer.from('not a module\n'.repeat(1000))),
    write('small.ko', bytes.subarray(0, 3000)),
    path.join(tmp, 'missing.ko'),
    write('huge-modinfo.ko', big),
  ];
}

function infoOrError(open: () => ModuleFile): unknown {
  try {
    return fileInfo(open());
  } catch (err) {
    return { error: (err as Error).message };
  }
}

describe('PartsPrefetcher', () => {
  const good = modules();
  const bySize = [...good].sort((a, b) => fs.statSync(b).size - fs.statSync(a).size);
  const odd = oddFiles(good[0], bySize[0]);
  // the odd files spread among the good ones, some at a batch's edges
  const files = [...good];
  odd.forEach((f, k) => files.splice(Math.min(files.length, [0, 31, 32, 40, 63, 64][k]), 0, f));

  it('gives every file what openModuleFile gives, or leaves it to the caller', async () => {
    expect(good.length).toBeGreaterThan(64);
    expect(fs.statSync(bySize[0]).size).toBeGreaterThan(300 << 10);
    const p = PartsPrefetcher.start(files, false);
    expect(p, 'the addon (node scripts/build-native.js) reads parts on the pool').toBeDefined();
    let packed = 0;
    try {
      for (let i = 0; i < files.length; i++) {
        const f = files[i];
        const mf = await p!.take(i, { modinfoOnly: true });
        if (mf !== undefined) packed++;
        if (odd.includes(f)) expect(mf, f).toBeUndefined();
        const got = mf === undefined ? infoOrError(() => openModuleFile(f, { modinfoOnly: true })) : infoOrError(() => mf);
        expect(got, f).toEqual(infoOrError(() => openModuleFile(f)));
      }
    } finally {
      p!.close();
    }
    expect(packed).toBe(good.length);
  });

  it('takes files with others skipped, and whole batches passed', async () => {
    const p = PartsPrefetcher.start(files, false)!;
    try {
      for (const i of [1, 2, 5, 33, 34, 100, 101, files.length - 1]) {
        if (i >= files.length) continue;
        const mf = await p.take(i, { modinfoOnly: true });
        const f = files[i];
        if (odd.includes(f)) continue;
        expect(mf, f).toBeDefined();
        expect(infoOrError(() => mf!)).toEqual(infoOrError(() => openModuleFile(f)));
      }
      // behind the last one taken, or past the end: left to the caller
      expect(await p.take(0, {})).toBeUndefined();
      expect(await p.take(files.length, {})).toBeUndefined();
    } finally {
      p.close();
    }
  });

  it('a FIFO in the list does not hold the pool: it is left to the caller, and the files after it come', async () => {
    const fifo = path.join(tmp, 'fifo.ko');
    execFileSync('mkfifo', [fifo]);
    const list = [good[0], fifo, good[1]];
    const p = PartsPrefetcher.start(list, false)!;
    try {
      expect(await p.take(0, {})).toBeDefined();
      expect(await p.take(1, {})).toBeUndefined();
      expect(await p.take(2, {})).toBeDefined();
    } finally {
      p.close();
    }
  });

  it('compressed modules: the parts of their images, as openModuleFile gives them; streams the decoder refuses left to the caller', async () => {
    const xz = execFileSync('find', [moduleDir(reference()), '-name', '*.ko.xz'], { encoding: 'utf8' }).trim().split('\n').sort().filter((_, i) => i % 40 === 0);
    const write = (name: string, b: Buffer): string => {
      const f = path.join(tmp, name);
      fs.writeFileSync(f, b);
      return f;
    };
    // (from a file: zstd states the frame's size only then, and libkmod refuses a frame without it)
    const compress = (cmd: string, args: string[], b: Buffer): Buffer => {
      const f = write('to-compress', b);
      return execFileSync(cmd, [...args, f], { maxBuffer: 1 << 28 });
    };
    const plain = fs.readFileSync(good[1]);
    const zst = compress('zstd', ['-q', '-c'], plain);
    const xzBytes = fs.readFileSync(xz[0]);
    const decoded = [
      ...xz,
      write('c.ko.zst', zst),
      write('c.ko.gz', compress('gzip', ['-c', '-n'], plain)),
      // the magic decides, not the name (libkmod's kmod_file_open)
      write('zstd-named.ko', zst),
      write('plain-named.ko.xz', plain),
    ];
    const refused = [
      write('cut.ko.xz', xzBytes.subarray(0, xzBytes.length >> 1)),
      write('cut.ko.zst', zst.subarray(0, zst.length - 100)),
      write('flipped.ko.zst', Buffer.concat([zst.subarray(0, 40), Buffer.from(zst.subarray(40, 60).map((x) => x ^ 0xff)), zst.subarray(60)])),
      write('text.ko.zst', compress('zstd', ['-q', '-c'], Buffer.from('not a module\n'.repeat(1000)))),
      write('no-size.ko.zst', execFileSync('zstd', ['-q', '-c'], { input: plain })),
      write('magic-only.ko.xz', xzBytes.subarray(0, 6)),
    ];
    const list = [...decoded];
    refused.forEach((f, k) => list.splice(Math.min(list.length, [0, 7, 8, 9, 10, 17][k]), 0, f));
    const p = PartsPrefetcher.start(list, true);
    expect(p, 'the addon (node scripts/build-native.js) decompresses on the pool').toBeDefined();
    try {
      for (let i = 0; i < list.length; i++) {
        const f = list[i];
        const mf = await p!.take(i, { modinfoOnly: true });
        // (gzip the addon leaves to node:zlib where it is not certain to decode as it does)
        if (decoded.includes(f) && !f.endsWith('.gz')) expect(mf, f).toBeDefined();
        if (refused.includes(f)) expect(mf, f).toBeUndefined();
        const got = mf === undefined ? infoOrError(() => openModuleFile(f, { modinfoOnly: true })) : infoOrError(() => mf);
        expect(got, f).toEqual(infoOrError(() => openModuleFile(f)));
      }
    } finally {
      p!.close();
    }
  });

  it('a damaged packing: no read out of range, no exception', () => {
    let seed = 12345;
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed / 2 ** 32;
    };
    const sample = fs.readFileSync(good[0]);
    for (let round = 0; round < 300; round++) {
      const b = Buffer.alloc(8 + Math.floor(random() * 4096));
      for (let k = 0; k < b.length; k++) b[k] = random() * 256;
      const words = new Float64Array(b.buffer, b.byteOffset, b.length >> 3);
      // plausible numbers where the table and a record's header are, so that the checks are reached
      const at = 8 * Math.floor(random() * 4);
      words[0] = random() < 0.8 ? at : random() * 1e20 - 1e10;
      if (at + 16 <= b.length) {
        words[at >> 3] = random() < 0.8 ? 1 : random() * 3;
        words[(at >> 3) + 1] = Math.floor(random() * (b.length - at));
      }
      if (random() < 0.3) sample.copy(b, Math.min(b.length, at + 16), 0, 64);
      expect(() => new PackedParts(b, 1 + Math.floor(random() * 3)).place(Math.floor(random() * 3), `garbage-${round}.ko`)).not.toThrow();
    }
    // a table that does not fit the buffer, and one not on an 8-byte boundary: every file left to the caller
    expect(new PackedParts(Buffer.alloc(8), 4).place(2, 'x.ko')).toBeUndefined();
    expect(new PackedParts(Buffer.alloc(64).subarray(4), 2).place(0, 'x.ko')).toBeUndefined();
  });
});
