// Differential suite for compressed module files: modinfo of kmodts vs kmod 34.2 on good, truncated,
// corrupted, padded, multi-stream/multi-frame, garbage-trailed and empty .ko.xz and .ko.zst files (one
// module of the Debian cloud tree, made here with xz(1) and zstd(1)). Whatever decoder the running Node
// offers, output, messages and status must be kmod's: this suite runs on every supported Node version.
// .ko.gz is checked against kmodts' documented behaviour (Debian's kmod 34.2 is built without zlib).
// Three decoders: the addon's with kmod's own libraries (trixie's liblzma 5.8.1 and libzstd 1.5.7, put
// first on LD_LIBRARY_PATH of a child process): byte-identical, nothing masked; the addon's with this
// host's libraries (in this process); and the WebAssembly fallback (no addon): for these two, an older
// libzstd may name a corruption with another of its words (docs/compat.md), the only thing masked.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { builtCli, describeMismatch, runKmodMany, runKmodtsInChild, runKmodtsInProcess, type ToolCase } from '../support/kmod-pool';
import { moduleDir, reference, repoRoot, type RunResult } from '../support/reference';

const ref = reference();
const MODDIR = moduleDir(ref);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-decompress-diff-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function tool(cmd: string, args: string[], input?: Buffer): Buffer {
  return execFileSync(cmd, args, { input, maxBuffer: 1 << 28 });
}

/** a directory holding only kmod 34.2's liblzma.so.5 and libzstd.so.1 (they need nothing newer than this host's glibc) */
function kmodLibraries(): string {
  const dir = path.join(tmp, 'kmod-libs');
  fs.mkdirSync(dir, { recursive: true });
  for (const lib of ['liblzma.so.5', 'libzstd.so.1']) fs.copyFileSync(path.join(ref.KMOD_ROOT, 'usr/lib/x86_64-linux-gnu', lib), path.join(dir, lib));
  return dir;
}

/** the built decoder's switch (runKmodtsInProcess runs dist/, whose modules are not src/'s) */
function useBuiltNativeDecoder(on: boolean): void {
  builtCli();
  (require(path.join(repoRoot, 'dist/file/native-decode.js')) as typeof import('../../src/file/native-decode')).useNativeDecoder(on);
}

async function both(toolName: string, cases: ToolCase[]): Promise<{ kmod: RunResult[]; ours: RunResult[] }> {
  const kmodP = runKmodMany(toolName, cases);
  const ours: RunResult[] = [];
  for (const c of cases) ours.push(await runKmodtsInProcess(toolName, c));
  return { kmod: await kmodP, ours };
}

/** cut points: the first bytes one by one (headers), then spread over the file, then the last bytes */
function cuts(n: number): number[] {
  const s = new Set<number>();
  for (let i = 0; i <= 20; i++) s.add(i);
  for (let i = 1; i < 16; i++) s.add(Math.floor((n * i) / 16));
  for (let i = 1; i <= 16; i++) s.add(n - i);
  return [...s].filter((c) => c >= 0 && c < n).sort((a, b) => a - b);
}

/** flip points: every header byte, then spread, then the trailer */
function flips(n: number): number[] {
  const s = new Set<number>();
  for (let i = 0; i < 24; i++) s.add(i);
  for (let i = 1; i < 24; i++) s.add(Math.floor((n * i) / 24));
  for (let i = 1; i <= 16; i++) s.add(n - i);
  return [...s].filter((c) => c >= 0 && c < n).sort((a, b) => a - b);
}

const ZSTD_CORRUPTION = /^(libkmod: ERROR: kmod_file_load_zstd: |modprobe: ERROR: )zstd: (Data corruption detected|Destination buffer is too small|Restored data doesn't match checksum)\n/m;

/**
 * A zstd file with a flipped byte inside its compressed data: the wasm libzstd (an older release than
 * Debian's 1.5.7) may name the corruption with another of libzstd's three words for it (docs/compat.md).
 * Only that word is masked, only for flipped files, and only when both name a corruption.
 */
function zstdCorruptionWording(c: ToolCase, kmod: RunResult, ours: RunResult): [RunResult, RunResult] {
  if (!c.args.some((a) => /zst-flip/.test(a)) || !ZSTD_CORRUPTION.test(kmod.stderr) || !ZSTD_CORRUPTION.test(ours.stderr)) return [kmod, ours];
  const mask = (r: RunResult): RunResult => ({ ...r, stderr: r.stderr.replace(ZSTD_CORRUPTION, '$1zstd: <corruption>\n') });
  return [mask(kmod), mask(ours)];
}

describe('compressed module files: kmodts and kmod 34.2 side by side', () => {
  const files: string[] = [];
  let image: Buffer;

  /** the variants of one compressed file, written as NAME.ko.EXT */
  function variants(kind: string, ext: string, good: Buffer, second: Buffer, empty: Buffer): void {
    const put = (name: string, data: Buffer): void => {
      const f = path.join(tmp, `${kind}-${name}${ext}`);
      fs.writeFileSync(f, data);
      files.push(f);
    };
    put('good', good);
    put('empty-file', Buffer.alloc(0));
    put('empty-stream', empty);
    put('twice', Buffer.concat([good, good]));
    put('two-parts', second);
    put('empty-after', Buffer.concat([good, empty]));
    put('garbage', Buffer.concat([good, Buffer.from('garbage')]));
    put('garbage-long', Buffer.concat([good, Buffer.alloc(64, 0x41)]));
    for (const pad of [1, 3, 4, 8, 12]) put(`pad${pad}`, Buffer.concat([good, Buffer.alloc(pad)]));
    for (const n of cuts(good.length)) put(`cut${n}`, good.subarray(0, n));
    for (const at of flips(good.length)) {
      for (const mask of [0x01, 0x80]) {
        const d = Buffer.from(good);
        d[at] ^= mask;
        put(`flip${at}-${mask}`, d);
      }
    }
  }

  beforeAll(() => {
    image = tool('xz', ['-dc', path.join(MODDIR, 'kernel/net/key/af_key.ko.xz')]);
    const ko = path.join(tmp, 'af_key.image');
    fs.writeFileSync(ko, image);
    const half = image.length >> 1;
    fs.writeFileSync(path.join(tmp, 'a'), image.subarray(0, half));
    fs.writeFileSync(path.join(tmp, 'b'), image.subarray(half));
    fs.writeFileSync(path.join(tmp, 'empty'), '');
    const twoFiles = (args: string[]): Buffer => Buffer.concat([tool(args[0], [...args.slice(1), path.join(tmp, 'a')]), tool(args[0], [...args.slice(1), path.join(tmp, 'b')])]);
    // as the kernel's modules_install writes them: xz --check=crc32 --lzma2=dict=1MiB, zstd with its size
    const xzArgs = ['xz', '-c', '--check=crc32', '--lzma2=dict=1MiB'];
    variants('xz', '.ko.xz', tool(xzArgs[0], [...xzArgs.slice(1), ko]), twoFiles(xzArgs), tool(xzArgs[0], [...xzArgs.slice(1), path.join(tmp, 'empty')]));
    variants('zst', '.ko.zst', tool('zstd', ['-q', '-c', ko]), twoFiles(['zstd', '-q', '-c']), tool('zstd', ['-q', '-c', path.join(tmp, 'empty')]));
    // zstd without a stored content size (written through a pipe), and without checksum
    const put = (name: string, data: Buffer): void => {
      const f = path.join(tmp, `zst-${name}.ko.zst`);
      fs.writeFileSync(f, data);
      files.push(f);
    };
    put('unsized', tool('zstd', ['-q', '-c'], image));
    put('no-check', tool('zstd', ['-q', '-c', '--no-check', ko]));
    put('skippable-after', Buffer.concat([tool('zstd', ['-q', '-c', ko]), Buffer.from([0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 1, 2, 3])]));
  });

  /** the comparison of one decoder's results with kmod's; masked: libzstd's other words for a corruption allowed */
  function compare(label: string, cases: ToolCase[], kmod: RunResult[], ours: RunResult[], masked: boolean): void {
    const mask = (c: ToolCase, k: RunResult, o: RunResult): [RunResult, RunResult] => (masked ? zstdCorruptionWording(c, k, o) : [k, o]);
    const bad = cases.map((c, i) => describeMismatch(c, ...mask(c, kmod[i], ours[i]))).filter(Boolean);
    const reworded = cases.filter((c, i) => kmod[i].stderr !== ours[i].stderr && !describeMismatch(c, ...mask(c, kmod[i], ours[i]))).length;
    const failed = kmod.filter((r) => r.status !== 0).length;
    console.log(`compressed files, ${label}: ${cases.length - bad.length}/${cases.length} identical to kmod 34.2 (${failed} refused by kmod; ${reworded} flipped zstd files with libzstd's other word for the corruption) on Node ${process.versions.node}`);
    expect(bad).toEqual([]);
    expect(reworded).toBeLessThan(cases.length / 20);
    // the suite covers both outcomes, and kmod's own decoder messages
    expect(failed).toBeGreaterThan(cases.length / 2);
    expect(kmod.some((r) => r.stderr.includes('zstd: Src size is incorrect'))).toBe(true);
    expect(kmod.some((r) => r.stderr.includes('zstd: Destination buffer is too small'))).toBe(true);
    expect(kmod.some((r) => r.stderr.includes('zstd: Failed to determine decompression size'))).toBe(true);
    expect(kmod.some((r) => r.stderr.includes('xz: Unexpected end of input'))).toBe(true);
    expect(kmod.some((r) => r.stderr.includes('xz: File is corrupt'))).toBe(true);
  }

  let kmodResults: Promise<RunResult[]> | undefined;
  const modinfoCases = (): ToolCase[] => files.map((f) => ({ args: [f] }));
  const kmodModinfo = (): Promise<RunResult[]> => (kmodResults ??= runKmodMany('modinfo', modinfoCases()));

  it('modinfo, the addon with kmod\'s own liblzma and libzstd: byte-identical for every file, nothing masked', async () => {
    const cases = modinfoCases();
    const kmod = await kmodModinfo();
    // (the system's libraries only: node-liblzma's liblzma, otherwise preferred when newer, left aside)
    const onlySystem = "require(dist + '/file/native-decode.js').useNativeDecoder(true, true);";
    const env = { LD_LIBRARY_PATH: kmodLibraries() };
    const versions = `const dist = ${JSON.stringify(path.join(repoRoot, 'dist'))}; ${onlySystem} process.stdout.write(JSON.stringify(require(dist + '/file/native-decode.js').nativeDecoder().libraryVersions()));`;
    // trixie's liblzma 5.8.1 and libzstd 1.5.7
    expect(JSON.parse(execFileSync(process.execPath, ['-e', versions], { env: { ...process.env, ...env } }).toString())).toEqual({ liblzma: 50080012, libzstd: 10507 });
    const ours = runKmodtsInChild('modinfo', cases, env, onlySystem);
    compare('native decoder, kmod\'s libraries', cases, kmod, ours, false);
    // libzstd 1.5.7's own words for corruptions the older ones name otherwise (docs/compat.md): proof the child used it
    expect(ours.some((r, i) => /zst-flip/.test(cases[i].args[0]) && /zstd: (Destination buffer is too small|Restored data doesn't match checksum)/.test(r.stderr))).toBe(true);
  });

  it('modinfo, the addon as set up here (this host\'s libzstd, the newest liblzma at hand): same output, messages and status as kmod 34.2', async () => {
    const cases = modinfoCases();
    const kmod = await kmodModinfo();
    const ours: RunResult[] = [];
    for (const c of cases) ours.push(await runKmodtsInProcess('modinfo', c));
    compare('native decoder as set up here', cases, kmod, ours, true);
  });

  it('modinfo, the WebAssembly fallback (no addon): same output, messages and status as kmod 34.2', async () => {
    const cases = modinfoCases();
    const kmod = await kmodModinfo();
    const ours: RunResult[] = [];
    useBuiltNativeDecoder(false);
    try {
      for (const c of cases) ours.push(await runKmodtsInProcess('modinfo', c));
    } finally {
      useBuiltNativeDecoder(true);
    }
    compare('WebAssembly decoders', cases, kmod, ours, true);
  });

  it('modprobe --show-exports on every fourth file: identical', async () => {
    const cases: ToolCase[] = files.filter((_, i) => i % 4 === 0).map((f) => ({ args: ['--show-exports', f] }));
    const { kmod, ours } = await both('modprobe', cases);
    const bad = cases.map((c, i) => describeMismatch(c, ...zstdCorruptionWording(c, kmod[i], ours[i]))).filter(Boolean);
    expect(bad).toEqual([]);
  });

  it('.ko.gz (read like a +ZLIB kmod, docs/compat.md): the image or one libkmod error line, the same on every Node', async () => {
    const ko = path.join(tmp, 'af_key.image');
    const gz = tool('gzip', ['-c', '-n', ko]);
    const cases: [string, Buffer, string][] = [
      ['good', gz, 'ok'],
      ['two-members', Buffer.concat([gz, gz]), 'ok-twice'],
      // (zlib's gzread would stop at bytes that are no gzip header: a documented difference)
      ['garbage-after', Buffer.concat([gz, Buffer.from('garbage')]), 'gzip: incorrect header check'],
      ['cut', gz.subarray(0, gz.length >> 1), 'gzip: unexpected end of file'],
      ['cut-trailer', gz.subarray(0, gz.length - 4), 'gzip: unexpected end of file'],
      ['bad-crc', Buffer.concat([gz.subarray(0, gz.length - 8), Buffer.from([gz[gz.length - 8] ^ 1]), gz.subarray(gz.length - 7)]), 'gzip: incorrect data check'],
      ['bad-method', Buffer.concat([gz.subarray(0, 2), Buffer.from([7]), gz.subarray(3)]), 'gzip: unknown compression method'],
      ['empty-file', Buffer.alloc(0), 'einval'],
    ];
    const plain = path.join(tmp, 'plain.ko');
    fs.copyFileSync(ko, plain);
    const [kmodKo] = await runKmodMany('modinfo', [{ args: [plain] }]);
    expect(kmodKo.status).toBe(0);
    for (const [name, data, expected] of cases) {
      const f = path.join(tmp, `gz-${name}.ko.gz`);
      fs.writeFileSync(f, data);
      const r = await runKmodtsInProcess('modinfo', { args: [f] });
      if (expected === 'ok' || expected === 'ok-twice') {
        // (two members: the image twice; the ELF reader sees the first)
        expect(r.status, name).toBe(0);
        expect(r.stdout, name).toBe(kmodKo.stdout.replace(plain, f));
      } else if (expected === 'einval') {
        expect(r.status, name).toBe(1);
        expect(r.stderr, name).toBe(`modinfo: ERROR: could not get modinfo from 'gz_${name.replace(/-/g, '_')}': Invalid argument\n`);
      } else {
        expect(r.status, name).toBe(1);
        expect(r.stderr, name).toBe(`libkmod: ERROR: kmod_file_load_zlib: ${expected}\nmodinfo: ERROR: could not get modinfo from 'gz_${name.replace(/-/g, '_')}': Invalid argument\n`);
      }
    }
  });
});
