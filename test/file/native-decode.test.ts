// The addon's decoder (native/decompress.c through src/file/native-decode.ts) and the asynchronous
// read-and-decode built on it (src/file/read-decode.ts): images exactly those of xz(1)/zstd(1), libkmod's
// verdict words for damaged files, gzip's outcomes exactly node:zlib's, no crash on any damage, the caller's buffers reused when the image
// fits, and the WebAssembly fallback when the addon or a library is missing.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { decompress, DecompressError } from '../../src/file/decompress';
import { nativeDecoder, NativeStatus, useNativeDecoder } from '../../src/file/native-decode';
import { decodesOffThread, readAndDecode } from '../../src/file/read-decode';
import { repoRoot } from '../support/reference';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-native-decode-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
afterEach(() => useNativeDecoder(true));

// ~300 KB that compresses like code
const original = Buffer.alloc(300_000);
for (let i = 0; i < original.length; i++) original[i] = (i * 7 + (i >> 9) * 13 + ((i * i) >> 13)) & 0xff;
const input = path.join(tmp, 'input');
fs.writeFileSync(input, original);

function tool(cmd: string, args: string[]): Buffer {
  return execFileSync(cmd, args, { maxBuffer: 1 << 26 });
}
const xz = tool('xz', ['-c', '--check=crc32', '--lzma2=dict=1MiB', input]);
const zst = tool('zstd', ['-q', '-c', input]);
const gz = zlib.gzipSync(original);

function put(name: string, data: Buffer): string {
  const f = path.join(tmp, name);
  fs.writeFileSync(f, data);
  return f;
}

/** every message libkmod logs for a refused xz or zstd file (xz_uncompress_belch, kmod_file_load_*) */
const XZ_WORDS = ['xz: File format not recognized', 'xz: Unsupported compression options', 'xz: File is corrupt', 'xz: Unexpected end of input', 'xz: Internal error (bug)'];
const ZSTD_WORD = /^zstd: (Failed to determine decompression size|[A-Z][A-Za-z' :]+)$/;

/** damaged copies: cut at many points, one bit flipped at many points */
function damaged(good: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 1; i < 64; i++) out.push(good.subarray(0, Math.floor((good.length * i) / 64)));
  for (let c = 0; c < 40; c++) out.push(good.subarray(0, c));
  for (let i = 0; i < 160; i++) {
    const at = i < 40 ? i : i < 120 ? Math.floor((good.length * (i - 40)) / 80) : good.length - (i - 119);
    const d = Buffer.from(good);
    d[at] ^= 1 << (i % 8);
    out.push(d);
  }
  return out;
}

describe('the native decoder', () => {
  it('is in the addon (npm install builds native/) and opens the system libraries (Debian packages liblzma5, libzstd1)', () => {
    const native = nativeDecoder();
    expect(native, 'the addon has no decodeImage: run `npm run build` and scripts/build-native.js').not.toBeNull();
    expect(decodesOffThread()).toBe(true);
    for (const data of [xz, zst]) {
      const r = native!.decodeImage(data, null);
      expect(r.status, 'liblzma.so.5 or libzstd.so.1 cannot be opened (Debian packages liblzma5, libzstd1)').toBe(NativeStatus.ok);
      expect(r.image!.equals(original)).toBe(true);
    }
    const versions = native!.libraryVersions();
    expect(versions.liblzma).toBeGreaterThanOrEqual(50000002);
    expect(versions.libzstd).toBeGreaterThanOrEqual(10400);
  });

  it('keeps the system libraries to their own functions, not those of a zstd that this Node exports (22 and later)', () => {
    // the dynamic linker's record of where each symbol of the two libraries went, in a child that
    // decodes one file of each kind through the addon
    const script = `const d = require(${JSON.stringify(path.join(repoRoot, 'dist/file/native-decode.js'))}).nativeDecoder();
      for (const f of ${JSON.stringify([put('bind.xz', xz), put('bind.zst', zst)])}) if (d.decodeImage(require('fs').readFileSync(f), null).status !== 0) process.exit(3);`;
    const r = spawnSync(process.execPath, ['-e', script], { env: { ...process.env, LD_DEBUG: 'bindings' }, encoding: 'utf8', maxBuffer: 1 << 28 });
    expect(r.status, r.stderr.slice(-2000)).toBe(0);
    const bindings = r.stderr.split('\n').filter((l) => /binding file \S*lib(zstd|lzma)\.so/.test(l));
    expect(bindings.length, 'LD_DEBUG=bindings showed no binding of libzstd or liblzma').toBeGreaterThan(0);
    // bound into the program itself (not a shared object), whatever path it was started by
    const intoNode = bindings.filter((l) => /`(ZSTD|ZDICT|HUF|FSE|lzma)_/.test(l) && !/ to \S+\.so[.\d]* \[/.test(l));
    expect(intoNode, 'the system library called functions of the zstd bundled into node').toEqual([]);
  });

  it('writes into the caller\'s buffer when the image fits, into one of its own when not', () => {
    for (const data of [xz, zst]) {
      const big = Buffer.alloc(original.length + 100);
      const image = decompress(data, 'm.ko', big);
      expect(image.buffer).toBe(big.buffer);
      expect(image.equals(original)).toBe(true);
      const small = Buffer.alloc(1000);
      const own = decompress(data, 'm.ko', small);
      expect(own.buffer).not.toBe(small.buffer);
      expect(own.equals(original)).toBe(true);
    }
  });

  it('damaged files: the exact image or one of libkmod\'s messages, never a crash', () => {
    const native = nativeDecoder()!;
    const seen = new Set<string>();
    for (const [good, kind] of [[xz, 1], [zst, 2]] as const) {
      for (const d of damaged(good)) {
        const into = Buffer.alloc(4096);
        const r = native.decodeImage(d, into);
        if (r.status === NativeStatus.notCompressed) {
          // the magic bytes themselves were damaged or cut
          expect(d.subarray(0, 6).equals(good.subarray(0, 6))).toBe(false);
          continue;
        }
        expect(r.kind).toBe(kind);
        if (r.status === NativeStatus.ok) {
          expect((r.image ?? into.subarray(0, r.length)).equals(original)).toBe(true);
          continue;
        }
        expect(r.status).toBe(NativeStatus.failed);
        expect(r.err).toBe(22);
        if (kind === 1) expect(XZ_WORDS).toContain(r.detail);
        else expect(r.detail).toMatch(ZSTD_WORD);
        seen.add(r.detail);
      }
    }
    // the damage reaches the decoders' different verdicts
    for (const word of ['xz: Unexpected end of input', 'xz: File is corrupt', 'zstd: Src size is incorrect', 'zstd: Failed to determine decompression size']) expect(seen).toContain(word);
  });

  it('gzip: a clean single member decoded by Node\'s own zlib; every other gzip file left to node:zlib, with the same outcome', () => {
    const native = nativeDecoder()!;
    const clean = native.decodeImage(gz, null);
    expect(clean.kind).toBe(3);
    expect(clean.status, 'the zlib Node links in was not found (inflate, inflateInit2_ ... in its dynamic symbols)').toBe(NativeStatus.ok);
    expect(clean.image!.equals(original)).toBe(true);
    // into the caller's buffer when the image fits, as for xz and zstd
    const big = Buffer.alloc(original.length + 1);
    expect(decompress(gz, 'm.ko.gz', big).buffer).toBe(big.buffer);
    // a header with a name and a comment (gzip(1) -N), a second member, bytes after the member, damage
    const named = tool('gzip', ['-c', '-N', input]);
    expect(native.decodeImage(named, null).status).toBe(NativeStatus.ok);
    const cases = [named, Buffer.concat([gz, gz]), Buffer.concat([gz, Buffer.from('junk')]), Buffer.concat([gz, Buffer.alloc(8)]), ...damaged(gz)];
    // the outcome without the addon, node:zlib's alone
    const outcome = (d: Buffer): string => {
      try {
        return `image ${decompress(d, 'x.ko.gz').toString('base64')}`;
      } catch (err) {
        if (!(err instanceof DecompressError)) throw err;
        return `error ${err.fn} ${err.errno} ${err.detail}`;
      }
    };
    const withAddon = cases.map(outcome);
    useNativeDecoder(false);
    const withoutAddon = cases.map(outcome);
    useNativeDecoder(true);
    expect(withAddon).toEqual(withoutAddon);
    const left: Buffer[] = [];
    for (const d of cases) {
      const r = native.decodeImage(d, Buffer.alloc(4096));
      expect([NativeStatus.ok, NativeStatus.notCompressed]).toContain(r.status);
      if (r.status === NativeStatus.ok) expect(r.image!.equals(zlib.gunzipSync(d))).toBe(true);
      else left.push(d);
    }
    // left to node:zlib: the two members, the bytes after one, and every damage its checks catch
    expect(left).toContain(cases[1]);
    expect(left).toContain(cases[2]);
    expect(left).toContain(cases[3]);
    expect(withoutAddon.filter((o) => o.startsWith('error')).length).toBeGreaterThan(200);
    expect(left.length).toBeGreaterThanOrEqual(withoutAddon.filter((o) => o.startsWith('error')).length);
  });

  it('random bytes behind the magic: never a crash, never an image', () => {
    const native = nativeDecoder()!;
    let seed = 12345;
    const rnd = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
    for (let i = 0; i < 400; i++) {
      const n = rnd() % 600;
      const body = Buffer.alloc(n);
      for (let k = 0; k < n; k++) body[k] = rnd() & 0xff;
      const magic = [xz.subarray(0, 12), zst.subarray(0, 6), gz.subarray(0, 10)][i % 3];
      const r = native.decodeImage(Buffer.concat([magic, body]), null);
      // (gzip the addon cannot decode is node:zlib's to judge)
      expect(r.status).toBe(i % 3 === 2 ? NativeStatus.notCompressed : NativeStatus.failed);
    }
  });

  it('a zstd frame stating a size no allocation can satisfy: ENOMEM without a message, as kmod\'s failed malloc', () => {
    // the frame header: single segment, 8-byte content size of 2^62
    const header = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0xe0, 0, 0, 0, 0, 0, 0, 0, 0x40, 1, 0, 0]);
    try {
      decompress(header, 'huge.ko.zst');
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(DecompressError);
      expect((err as DecompressError).errno).toBe(12);
      expect((err as DecompressError).detail).toBe('');
    }
  });
});

describe('readAndDecode (libuv\'s thread pool)', () => {
  const files = { xz: put('m.ko.xz', xz), zst: put('m.ko.zst', zst), gz: put('m.ko.gz', gz), ko: put('m.ko', original) };

  it('each kind: the file\'s bytes and its image', async () => {
    for (const [name, file] of Object.entries(files)) {
      const r = await readAndDecode(file);
      expect('image' in r, name).toBe(true);
      if (!('image' in r)) continue;
      expect(r.image.equals(original), name).toBe(true);
      expect(r.raw.equals(fs.readFileSync(file)), name).toBe(true);
      expect(r.compression).toBe({ xz: 'xz', zst: 'zstd', gz: 'gzip', ko: 'none' }[name]);
    }
  });

  it('reuses the caller\'s buffers when they are large enough', async () => {
    const buffers = { image: Buffer.alloc(1 << 20), raw: Buffer.alloc(1 << 20) };
    const r = await readAndDecode(files.zst, buffers);
    if (!('image' in r)) throw new Error('not decoded');
    expect(r.image.buffer).toBe(buffers.image.buffer);
    expect(r.raw.buffer).toBe(buffers.raw.buffer);
    expect(r.image.equals(original)).toBe(true);
    const tiny = { image: Buffer.alloc(16), raw: Buffer.alloc(16) };
    const s = await readAndDecode(files.xz, tiny);
    if (!('image' in s)) throw new Error('not decoded');
    expect(s.image.buffer).not.toBe(tiny.image.buffer);
    expect(s.image.equals(original)).toBe(true);
    expect(s.raw.equals(xz)).toBe(true);
  });

  it('many in flight: each result is its own file\'s', async () => {
    const list = Array.from({ length: 24 }, (_, i) => put(`many${i}.ko.${i % 2 ? 'xz' : 'zst'}`, Buffer.concat([i % 2 ? xz : zst])));
    const cut = put('cut.ko.xz', xz.subarray(0, xz.length >> 1));
    const results = await Promise.all([...list, cut].map((f) => readAndDecode(f, { image: Buffer.alloc(400_000) })));
    for (let i = 0; i < list.length; i++) {
      const r = results[i];
      expect('image' in r && r.image.equals(original), list[i]).toBe(true);
    }
    const bad = results[list.length];
    expect('error' in bad && bad.error.detail).toBe('xz: Unexpected end of input');
    if ('error' in bad) {
      expect(bad.error.file).toBe(cut);
      expect(bad.error.fn).toBe('xz_uncompress_belch');
    }
  });

  it('a file that cannot be read: its errno', async () => {
    expect(await readAndDecode(path.join(tmp, 'missing.ko.xz'))).toEqual({ readErrno: 2 });
    expect(await readAndDecode(tmp)).toEqual({ readErrno: 21 });
  });

  it('without the addon: the same outcomes, decoded on this thread', async () => {
    useNativeDecoder(false);
    expect(decodesOffThread()).toBe(false);
    for (const file of Object.values(files)) {
      const r = await readAndDecode(file);
      expect('image' in r && r.image.equals(original), file).toBe(true);
    }
    const bad = await readAndDecode(put('cut2.ko.zst', zst.subarray(0, 100)));
    expect('error' in bad && bad.error.detail).toBe('zstd: Src size is incorrect');
    expect(await readAndDecode(path.join(tmp, 'missing.ko'))).toEqual({ readErrno: 2 });
  });

  it('system libraries without the symbols kmod uses: zstd by the WebAssembly library, xz by node-liblzma\'s liblzma', () => {
    // a libzstd.so.1 and a liblzma.so.5 that exist but offer nothing, found first through LD_LIBRARY_PATH
    const libs = path.join(tmp, 'libs');
    fs.mkdirSync(libs, { recursive: true });
    const src = put('empty.c', 'int kmodts_nothing_here;\n');
    for (const soname of ['libzstd.so.1', 'liblzma.so.5']) execFileSync('gcc', ['-shared', '-fPIC', `-Wl,-soname,${soname}`, '-o', path.join(libs, soname), src]);
    const script = `
      const { decompress } = require(${JSON.stringify(path.join(repoRoot, 'dist/file/decompress.js'))});
      const { nativeDecoder } = require(${JSON.stringify(path.join(repoRoot, 'dist/file/native-decode.js'))});
      const fs = require('node:fs');
      const out = [];
      for (const f of process.argv.slice(1)) {
        const data = fs.readFileSync(f);
        out.push([nativeDecoder().decodeImage(data, null).status, decompress(data, f).equals(fs.readFileSync(${JSON.stringify(input)}))]);
      }
      out.push(nativeDecoder().libraryVersions());
      process.stdout.write(JSON.stringify(out));`;
    const out = execFileSync(process.execPath, ['-e', script, files.zst, files.xz], { env: { ...process.env, LD_LIBRARY_PATH: libs } });
    // (node-liblzma, an optional dependency, links liblzma 5.8 in and exports it: offered in place of the system's)
    expect(JSON.parse(out.toString())).toEqual([[NativeStatus.unavailable, true], [NativeStatus.ok, true], { liblzma: 50080022, libzstd: 0 }]);
  });
});
