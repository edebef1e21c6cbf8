// The fuzz targets: each names its real seed inputs, how they are mutated, and how one input is run.
// `run` returns a fault description, or undefined; a thrown error is a fault unless it is one of the
// library's typed errors (KmodError and its kinds, SimStateError). Loaded by worker.ts only.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { plainScan } from '../support/plain-scan';
import { moduleDir, repoRoot } from '../support/reference';
import { buildTinyElf, strings } from '../support/tiny-elf';
import { damageDerElement, damageModuleName, damageRecord, retargetChild } from './damage';
import { mutateBytes, mutateText, type Rng } from './mutate';

// the library as built (npm run build), as the CLI runs it: no TypeScript to transpile in each worker
const dist = (m: string): unknown => require(path.join(repoRoot, 'dist', m));
const { emptyConfig, formatConfig, parseConfigText } = dist('resolution/config') as typeof import('../../src/resolution/config');
const { loadDepmodConfig } = dist('depmod/config') as typeof import('../../src/depmod/config');
const { decompress } = dist('file/decompress') as typeof import('../../src/file/decompress');
const { moduleFileFromBytes, openModuleFile } = dist('file/module-file') as typeof import('../../src/file/module-file');
const { fileInfo } = dist('resolution/modinfo') as typeof import('../../src/resolution/modinfo');
const { moduleSignature } = dist('file/signature') as typeof import('../../src/file/signature');
const { BinaryIndex } = dist('indexes/binary') as typeof import('../../src/indexes/binary');
const { openTextIndex } = dist('indexes/text') as typeof import('../../src/indexes/text');
const { parseKernelCmdline } = dist('resolution/kcmdline') as typeof import('../../src/resolution/kcmdline');
const { SimStore } = dist('backends/sim/state') as typeof import('../../src/backends/sim/state');
const { SimBackend } = dist('backends/sim/index') as typeof import('../../src/backends/sim/index');
const { StateLock } = dist('backends/sim/state-lock') as typeof import('../../src/backends/sim/state-lock');
const { openCheckSession } = dist('backends/sim/check') as typeof import('../../src/backends/sim/check');
const { SimStateError } = dist('errors') as typeof import('../../src/errors');
/** the sim-load target's session, opened at its first input (one per worker) */
let simCheck: ReturnType<typeof openCheckSession> | undefined;
const { ScanCache, ScanCacheWriter, SCAN_CACHE_FILE } = dist('depmod/scan-cache') as typeof import('../../src/depmod/scan-cache');
const { scanModuleImage, ScanStore } = dist('depmod/module-scan') as typeof import('../../src/depmod/module-scan');
const { scanImageInC } = dist('depmod/native-scan') as typeof import('../../src/depmod/native-scan');
const { aliasPieces } = dist('depmod/alias-files') as typeof import('../../src/depmod/alias-files');
const { WalkRecord, setWalkRecordClock } = dist('depmod/walk-record') as typeof import('../../src/depmod/walk-record');
const { loadNativeTreeWalk } = dist('native-addon') as typeof import('../../src/native-addon');

export interface Seed {
  name: string;
  data: Buffer;
}

export interface FuzzTarget {
  name: string;
  /** 'bytes' for binary formats, 'text' for line-based ones */
  mutation: 'bytes' | 'text';
  /** how long one input may take before it counts as a hang */
  perInputMs: number;
  /** inputs of the bounded slice the normal test run does */
  ciCount: number;
  seeds(work: string): Seed[];
  /** a format-aware mutation, used for half of the inputs when present */
  mutateInput?: (data: Buffer, rng: Rng) => Buffer;
  run(input: Buffer, seed: Seed, work: string): string | undefined;
}

export const EXAMPLE_TREE = path.join(repoRoot, 'examples/tree');
export const EXAMPLE_KVER = '6.12.0-example';
const exampleModDir = path.join(EXAMPLE_TREE, 'lib/modules', EXAMPLE_KVER);
const KMODTS = path.join(repoRoot, 'bin/kmodts.js');

function exampleModules(): Seed[] {
  const out: Seed[] = [];
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ko')) out.push({ name: path.relative(exampleModDir, p), data: fs.readFileSync(p) });
    }
  };
  walk(path.join(exampleModDir, 'kernel'));
  return out;
}

/** a stat key on the work directory's device with a ctime long past (the writer stores it) */
function scanCacheKey(work: string): Uint32Array {
  const dev = fs.statSync(work, { bigint: true }).dev;
  const key = new Uint32Array(12);
  key[0] = Number(dev & 0xffffffffn);
  key[1] = Number(dev >> 32n);
  return key;
}

/** a small module tree in the work directory, for the scan cache's walk record (made once) */
function walkTree(work: string): string {
  const dir = path.join(work, 'walk-tree');
  if (!fs.existsSync(dir)) {
    for (const rel of ['kernel/a/x.ko', 'kernel/b/y.ko.xz', 'kernel/b/c/z.ko', 'kernel/b/README', 'extra/w.ko']) {
      fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
      fs.writeFileSync(path.join(dir, rel), '');
    }
  }
  return dir;
}

/** a clock far ahead, for the walk record's seed: the tree just made is old enough to be recorded */
const WALK_SEED_CLOCK = 4e9;

/** a scan cache of the example tree's modules (as /fuzz/<relative path>), with a walk record of walkTree */
function scanCacheSeed(work: string): Buffer {
  const dir = path.join(work, 'scan-cache-seed');
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  setWalkRecordClock(WALK_SEED_CLOCK);
  const record = WalkRecord.open(undefined);
  if (record === undefined) throw new Error('scan-cache seed: the native helper is not built (npm run build)');
  loadNativeTreeWalk()!(walkTree(work), [], record.memo);
  const w = new ScanCacheWriter(true, record);
  for (const m of exampleModules()) w.add(`/fuzz/${m.name}`, scanCacheKey(work), scanModuleImage(m.data, m.name, new ScanStore()));
  const written = w.write(dir);
  setWalkRecordClock(undefined);
  if (!written) throw new Error('scan-cache seed: the cache was not written');
  return fs.readFileSync(path.join(dir, SCAN_CACHE_FILE));
}

/** a scan cache file with its header's CRC made right for its body (when its second line still parses) */
function withCrcFixed(data: Buffer): Buffer {
  const first = data.indexOf(0x0a);
  const second = first < 0 ? -1 : data.indexOf(0x0a, first + 1);
  if (second < 0) return data;
  const m = / ([0-9a-f]{8})( *)$/.exec(data.toString('latin1', first + 1, second));
  if (m === null) return data;
  const crc = require('node:zlib').crc32(data.subarray(second + 1)) as number;
  const out = Buffer.from(data);
  out.write(crc.toString(16).padStart(8, '0'), second - m[2].length - 8, 'latin1');
  return out;
}

/** the bytes of a scan cache file's walk record (at its end) as its second line gives them, or 0 */
function walkRecordBytes(data: Buffer): number {
  const first = data.indexOf(0x0a);
  const second = first < 0 ? -1 : data.indexOf(0x0a, first + 1);
  const m = second < 0 ? null : / (\d+) [0-9a-f]{8} *$/.exec(data.toString('latin1', first + 1, second));
  const bytes = m === null ? 0 : Number(m[1]);
  return bytes <= data.length - second - 1 ? bytes : 0;
}

/** byte-level changes to the walk record alone (where the file has one), its second line set to its new length */
function mutateWalkRecord(data: Buffer, rng: Rng): Buffer {
  const bytes = walkRecordBytes(data);
  if (bytes === 0) return mutateBytes(data, rng);
  const record = mutateBytes(data.subarray(data.length - bytes), rng);
  const text = data.toString('latin1', 0, data.length - bytes).replace(/^([^\n]*\n[^\n]*) \d+ ([0-9a-f]{8})/, `$1 ${record.length} $2`);
  return Buffer.concat([Buffer.from(text, 'latin1'), record]);
}

/** a scan cache file whose walk record (at its end) has its own payload length and CRC made right, where it has one */
function withWalkRecordResealed(data: Buffer): Buffer {
  const bytes = walkRecordBytes(data);
  if (bytes < 16) return data;
  const out = Buffer.from(data);
  const at = out.length - bytes;
  out.writeUInt32LE(bytes - 16, at + 8);
  out.writeUInt32LE(require('node:zlib').crc32(out.subarray(at + 16)) as number, at + 12);
  return out;
}

/**
 * The walk of walkTree with the file's walk record: it must not fail, and where it took nothing from
 * the record (any damage the record's CRC does not hide) it must find what a walk without one finds
 */
function walkRecordFault(file: string, work: string): string | undefined {
  const tree = walkTree(work);
  const record = WalkRecord.open(ScanCache.readHead(file)?.walkRecord);
  const walk = loadNativeTreeWalk()!;
  const found = walk(tree, [], record!.memo);
  if (record!.stats().recalled === 0 && found !== walk(tree, [])) return 'a walk with a damaged record differs from one without';
  record!.recordFor(fs.statSync(work, { bigint: true }).dev, 0n);
  return undefined;
}

/** A prerequisite program, or a failure naming its Debian package. */
function tool(cmd: string, args: string[], input: Buffer, pkg: string): Buffer {
  try {
    return execFileSync(cmd, args, { input, maxBuffer: 1 << 28 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`fuzz seeds need ${cmd} (Debian package ${pkg})`);
    throw err;
  }
}

/** Two signed modules of the Debian reference tree, decompressed. */
function debianSigned(): Seed[] {
  const dir = process.env.KMODTS_FUZZ_MODDIR || moduleDir();
  return ['kernel/drivers/net/dummy.ko.xz', 'kernel/drivers/net/ifb.ko.xz'].map((f) => ({ name: f, data: tool('xz', ['-dc'], fs.readFileSync(path.join(dir, f)), 'xz-utils') }));
}

/** modinfo's parts targets: Debian's signed modules, and the example modules of a page or more (smaller ones are read whole) */
function modinfoPartsSeeds(): Seed[] {
  return [...debianSigned(), ...exampleModules().filter((s) => s.data.length >= 4096)];
}

/** Small modules of the three other ELF kinds (32-bit, big-endian) that parsers must also survive. */
function tinyModules(): Seed[] {
  const kinds: [string, boolean, boolean, number][] = [
    ['elf32-lsb', false, false, 40],
    ['elf64-msb', true, true, 22],
    ['elf32-msb', false, true, 8],
  ];
  return kinds.map(([name, is64, msb, machine]) => ({
    name,
    data: buildTinyElf({
      is64,
      msb,
      machine,
      sections: [
        { name: '.modinfo', type: 1, data: strings(['license=GPL', 'name=tiny', 'depends=', 'vermagic=6.12.0 SMP mod_unload ']) },
        { name: '.gnu.linkonce.this_module', type: 1, data: Buffer.concat([Buffer.alloc(24), Buffer.from('tiny\0'), Buffer.alloc(64)]) },
      ],
    }).image,
  }));
}

/** Every query a module file answers; errors of the library's kinds are fine. */
function readModule(file: string, raw: Buffer): void {
  const m = moduleFileFromBytes(file, raw);
  m.modinfo();
  m.versions();
  m.exportedSymbols();
  m.dependencySymbols();
  m.thisModuleName();
  m.signature();
}

function compressed(name: string, ext: string, cmd: string, args: string[], pkg: string): FuzzTarget {
  return {
    name,
    mutation: 'bytes',
    perInputMs: 5000,
    ciCount: 250,
    seeds: () => exampleModules().slice(0, 3).map((s) => ({ name: s.name + ext, data: tool(cmd, args, s.data, pkg) })),
    run(input, seed) {
      decompress(input, seed.name);
      readModule(seed.name, input);
      return undefined;
    },
  };
}

/** Spawns kmodts; a fault is exit status 70, an internal error, a stack trace, a signal or a hang. */
export function cliFault(args: string[], timeoutMs: number, env: NodeJS.ProcessEnv = {}): string | undefined {
  return cliRun(args, timeoutMs, env).fault;
}

/** cliFault's run, with what the tool wrote and its exit status */
function cliRun(args: string[], timeoutMs: number, env: NodeJS.ProcessEnv = {}): { fault?: string; stdout: string; stderr: string; status: number | null } {
  const r = spawnSync(process.execPath, [KMODTS, ...args], { env: { PATH: process.env.PATH, LANG: 'C', ...env }, encoding: 'latin1', timeout: timeoutMs, killSignal: 'SIGKILL' });
  const out = { stdout: r.stdout ?? '', stderr: r.stderr ?? '', status: r.status };
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ETIMEDOUT') return { ...out, fault: `hang: no exit within ${timeoutMs} ms: kmodts ${args.join(' ')}` };
  if (r.signal) return { ...out, fault: `killed by ${r.signal}: kmodts ${args.join(' ')}` };
  const err = out.stderr;
  if (r.status === 70 || /internal error/.test(err) || /^\s+at .*:\d+:\d+\)?$/m.test(err)) return { ...out, fault: `exit ${r.status}: ${err.slice(0, 2000)}` };
  return out;
}

/** A booted simulated kernel with the example modules loaded, made once per worker. */
function exampleState(work: string): string {
  const dir = path.join(work, 'state-seed');
  if (!fs.existsSync(path.join(dir, 'state.jsonl'))) {
    const f = cliFault(['--backend=sim', `--sim-state=${dir}`, 'modprobe', '-d', EXAMPLE_TREE, '-S', EXAMPLE_KVER, 'greet_fancy'], 60_000);
    if (f) throw new Error(`cannot make the state seed: ${f}`);
    const g = cliFault(['--backend=sim', `--sim-state=${dir}`, 'modprobe', '-d', EXAMPLE_TREE, '-S', EXAMPLE_KVER, 'greet_bonjour', 'times=x'], 60_000);
    if (g) throw new Error(`cannot make the state seed: ${g}`);
  }
  return dir;
}

let stateRuns = 0;


export const targets: FuzzTarget[] = [
  {
    name: 'elf',
    mutation: 'bytes',
    perInputMs: 5000,
    ciCount: 300,
    seeds: () => [...exampleModules(), ...debianSigned(), ...tinyModules()],
    run(input, seed) {
      readModule(seed.name, input);
      return undefined;
    },
  },
  {
    // depmod's scan in C (native/module_scan.c) against module-scan.ts: the same scan, or none (left to
    // it); and the alias pieces made in C (native/alias_pieces.c) against alias-files.ts'
    name: 'module-scan',
    mutation: 'bytes',
    perInputMs: 5000,
    ciCount: 300,
    seeds: () => [...exampleModules(), ...debianSigned(), ...tinyModules()],
    run(input) {
      const inC = scanImageInC(input, new ScanStore(), '/k/fuzz-mod.ko');
      if (inC === undefined) return undefined;
      const js = scanModuleImage(input, 'm.ko', new ScanStore());
      const piecesInC = inC.aliasPieces;
      // (a C scan keeps its exports joined until they are asked for: what the symbol table and the cache take)
      const joined = inC.exportsJoined;
      if (joined !== undefined && joined !== js.exports.join('\0')) return `the C scan's joined exports differ: ${JSON.stringify(joined).slice(0, 500)} against ${JSON.stringify(js.exports).slice(0, 500)}`;
      if (!isDeepStrictEqual(plainScan(inC), plainScan(js))) return `the C scan differs from module-scan.ts's: ${JSON.stringify(plainScan(inC)).slice(0, 500)} against ${JSON.stringify(plainScan(js)).slice(0, 500)}`;
      const pieces = aliasPieces({ modname: 'fuzz_mod', aliases: js.aliases });
      const plain = (p: typeof pieces | undefined): unknown => p && [Buffer.from(p.lines).toString('latin1'), Buffer.from(p.keys).toString('latin1'), [...p.keyLengths]];
      return isDeepStrictEqual(plain(piecesInC) ?? null, plain(pieces) ?? null) ? undefined : `the C alias pieces differ from alias-files.ts': ${JSON.stringify(plain(piecesInC)).slice(0, 500)} against ${JSON.stringify(plain(pieces)).slice(0, 500)}`;
    },
  },
  {
    // modinfo's read of only the parts it needs (native/modinfo_parts.c packs and places them, as the
    // pool's batches do) against the whole file: the same strings and signature, or the same error
    name: 'modinfo-parts',
    mutation: 'bytes',
    perInputMs: 5000,
    ciCount: 200,
    seeds: modinfoPartsSeeds,
    run(input, _seed, work) {
      const file = path.join(work, 'parts.ko');
      fs.writeFileSync(file, input);
      const info = (modinfoOnly: boolean): unknown => {
        try {
          return fileInfo(openModuleFile(file, { modinfoOnly }));
        } catch (err) {
          return { error: (err as Error).message };
        }
      };
      const parts = info(true);
      const whole = info(false);
      return isDeepStrictEqual(parts, whole) ? undefined : `the parts read differs from the whole read: ${JSON.stringify(parts).slice(0, 300)} against ${JSON.stringify(whole).slice(0, 300)}`;
    },
  },
  {
    // the same damaged modules compressed (zstd, from a file so that the frame states its size): modinfo
    // of the file twice decompresses it and packs its parts on the thread pool (PartsPrefetcher,
    // native/modinfo_parts.c), modinfo of it once reads it on the main thread; the output must be the
    // second's twice over
    name: 'modinfo-parts-decoded',
    mutation: 'bytes',
    perInputMs: 15000,
    ciCount: 40,
    seeds: modinfoPartsSeeds,
    run(input, _seed, work) {
      const plain = path.join(work, 'decoded.ko');
      fs.writeFileSync(plain, input);
      const file = path.join(work, 'decoded.ko.zst');
      fs.writeFileSync(file, tool('zstd', ['-q', '-c', plain], Buffer.alloc(0), 'zstd'));
      const once = cliRun(['modinfo', file], 10_000);
      const twice = cliRun(['modinfo', file, file], 10_000);
      if (once.fault !== undefined || twice.fault !== undefined) return once.fault ?? twice.fault;
      if (twice.stdout !== once.stdout.repeat(2) || twice.stderr !== once.stderr.repeat(2) || twice.status !== once.status) {
        return `modinfo on the pool differs: ${JSON.stringify(twice.stdout.slice(0, 300))} against ${JSON.stringify(once.stdout.slice(0, 300))}`;
      }
      return undefined;
    },
  },
  compressed('xz', '.xz', 'xz', ['-c', '--check=crc32'], 'xz-utils'),
  compressed('zst', '.zst', 'zstd', ['-q', '-c'], 'zstd'),
  compressed('gz', '.gz', 'gzip', ['-c', '-n'], 'gzip'),
  {
    name: 'signature',
    mutation: 'bytes',
    perInputMs: 5000,
    ciCount: 400,
    // the signature and its trailer are at the end: the seeds are the modules' last 2 KiB
    seeds: () => debianSigned().map((s) => ({ name: s.name, data: s.data.subarray(s.data.length - 2048) })),
    mutateInput: damageDerElement,
    run(input) {
      moduleSignature(input);
      return undefined;
    },
  },
  {
    name: 'binary-index',
    mutation: 'bytes',
    perInputMs: 5000,
    ciCount: 600,
    seeds: () =>
      fs
        .readdirSync(exampleModDir)
        .filter((f) => f.endsWith('.bin'))
        .sort()
        .map((f) => ({ name: f, data: fs.readFileSync(path.join(exampleModDir, f)) })),
    mutateInput: retargetChild,
    run(input, seed, work) {
      const idx = new BinaryIndex(input, seed.name);
      const keys = ['greet_core', 'greet_hello', 'pci:v00001234d*', 'greet', '', 'symbol:greet_log_line', 'a*b'];
      for (const k of keys) {
        idx.search(k);
        idx.searchWild(k);
      }
      idx.dump('alias ');
      idx.entries();
      // the same bytes read from a file as searches touch them (paged-file.ts): the same answers and errors
      const file = path.join(work, seed.name);
      fs.writeFileSync(file, input);
      const outcome = (f: () => unknown): unknown => {
        try {
          return f();
        } catch (err) {
          return `${(err as Error).name}: ${(err as Error).message.replace(file, seed.name)}`;
        }
      };
      const ops = (open: () => BinaryIndex): unknown[] => {
        const i = open();
        return [...keys.flatMap((k) => [outcome(() => i.search(k)), outcome(() => i.searchWild(k))]), outcome(() => i.dump('alias ')), outcome(() => i.entries())];
      };
      const paged = ops(() => BinaryIndex.open(file)!);
      const whole = ops(() => new BinaryIndex(input, seed.name));
      if (JSON.stringify(paged) !== JSON.stringify(whole)) throw new Error(`paged reads differ from the whole buffer's: ${JSON.stringify(paged).slice(0, 300)}`);
      return undefined;
    },
  },
  {
    name: 'text-index',
    mutation: 'text',
    perInputMs: 5000,
    ciCount: 300,
    seeds: () => ['modules.dep', 'modules.alias', 'modules.symbols', 'modules.builtin'].map((f) => ({ name: f, data: fs.readFileSync(path.join(exampleModDir, f)) })),
    run(input, seed, work) {
      const dir = path.join(work, 'text-index');
      fs.rmSync(dir, { recursive: true, force: true });
      fs.mkdirSync(dir);
      for (const f of ['modules.dep', 'modules.alias', 'modules.symbols', 'modules.builtin']) fs.copyFileSync(path.join(exampleModDir, f), path.join(dir, f));
      fs.writeFileSync(path.join(dir, seed.name), input);
      for (const name of ['dep', 'alias', 'symbols', 'builtin'] as const) {
        const idx = openTextIndex(dir, name);
        idx?.search('greet_core');
        idx?.searchWild('greet*');
        idx?.dump('x ');
      }
      return undefined;
    },
  },
  {
    name: 'modprobe.d',
    mutation: 'text',
    perInputMs: 5000,
    ciCount: 600,
    seeds: () => {
      const out: Seed[] = [];
      for (const sub of ['etc', 'cases']) {
        const d = path.join(repoRoot, 'test/fixtures/modprobe.d', sub);
        for (const f of fs.readdirSync(d).sort()) if (fs.statSync(path.join(d, f), { throwIfNoEntry: false })?.isFile()) out.push({ name: `${sub}/${f}`, data: fs.readFileSync(path.join(d, f)) });
      }
      return out;
    },
    run(input, seed) {
      const cfg = emptyConfig();
      parseConfigText(cfg, input.toString('latin1'), seed.name, () => undefined);
      formatConfig(cfg);
      return undefined;
    },
  },
  {
    name: 'depmod.d',
    mutation: 'text',
    perInputMs: 5000,
    ciCount: 400,
    seeds: () => [
      {
        name: 'depmod.conf',
        data: Buffer.from(
          '# example\nsearch updates extra built-in\noverride greet_core 6.12.0-example extra\noverride greet_log * updates\n' +
            'external 6.12.* /opt/mods\nexclude .debug\nexclude build\nsearch \\\n  weak-updates\n',
        ),
      },
    ],
    run(input, _seed, work) {
      const file = path.join(work, 'depmod.conf');
      fs.writeFileSync(file, input);
      loadDepmodConfig([file], EXAMPLE_KVER, () => undefined);
      return undefined;
    },
  },
  {
    name: 'kcmdline',
    mutation: 'text',
    perInputMs: 5000,
    ciCount: 600,
    seeds: () => [
      { name: 'debian', data: Buffer.from('BOOT_IMAGE=/vmlinuz-6.12.0 root=UUID=1234 ro quiet greet_core.verbose=1 modprobe.blacklist=greet_log,greet_hello\n') },
      { name: 'quoted', data: Buffer.from('dummy.param="a b c" "ifb.numifbs=3" modprobe.options=x initcall_blacklist=foo greet_fancy.x="1,2"\n') },
    ],
    run(input) {
      parseKernelCmdline(input.toString('latin1'), () => undefined);
      return undefined;
    },
  },
  {
    name: 'scan-cache',
    mutation: 'bytes',
    perInputMs: 5000,
    ciCount: 400,
    seeds: (work) => [{ name: SCAN_CACHE_FILE, data: scanCacheSeed(work) }],
    // half of the inputs with the CRCs (the file's and its walk record's) made right again, so that the
    // checks behind them are reached
    mutateInput: (data, rng) => withCrcFixed(withWalkRecordResealed(rng() < 0.5 ? mutateWalkRecord(data, rng) : mutateBytes(data, rng))),
    run(input, _seed, work) {
      const file = path.join(work, 'scan-cache-input');
      fs.writeFileSync(file, input);
      const walkFault = walkRecordFault(file, work);
      if (walkFault !== undefined) return walkFault;
      const cache = ScanCache.load(file);
      if (cache === undefined) return undefined;
      const key = scanCacheKey(work);
      // (false: the one added scan rewrites the cache, so that the kept entries are always carried into a new file)
      const writer = new ScanCacheWriter(false);
      for (const m of exampleModules()) {
        const p = `/fuzz/${m.name}`;
        const scan = cache.get(p, key);
        if (scan !== undefined) {
          // every part a run reads (the import arrays are made from the dictionary on demand)
          void [scan.exportCrcs, scan.importNames, scan.importKeys, scan.importLengths, scan.importCrcs, scan.importWeak];
          void [scan.aliasPieces?.lines, scan.aliasPieces?.keys, scan.aliasPieces?.keyLengths];
          writer.keep(p, key, cache);
        }
      }
      // the kept entries carried into a new cache with one new scan: it must read back
      const first = exampleModules()[0];
      writer.add('/fuzz/new.ko', key, scanModuleImage(first.data, first.name, new ScanStore()));
      const out = path.join(work, 'scan-cache-out');
      fs.rmSync(out, { recursive: true, force: true });
      fs.mkdirSync(out);
      if (!writer.write(out)) return 'the new cache was not written';
      if (ScanCache.load(path.join(out, SCAN_CACHE_FILE)) === undefined) return 'the cache written from a loaded one does not load';
      return undefined;
    },
  },
  {
    name: 'depmod-tree',
    mutation: 'bytes',
    perInputMs: 30_000,
    ciCount: 8,
    seeds: () => [
      ...exampleModules(),
      ...['modules.builtin', 'modules.order', 'modules.builtin.modinfo'].map((f) => ({ name: f, data: fs.readFileSync(path.join(exampleModDir, f)) })),
    ],
    run(input, seed, work) {
      const root = path.join(work, 'depmod-root');
      fs.rmSync(root, { recursive: true, force: true });
      fs.cpSync(EXAMPLE_TREE, root, { recursive: true });
      fs.writeFileSync(path.join(root, 'lib/modules', EXAMPLE_KVER, seed.name), input);
      return cliFault(['depmod', '-b', root, EXAMPLE_KVER], 30_000);
    },
  },
  {
    name: 'sim-load',
    mutation: 'bytes',
    perInputMs: 10_000,
    ciCount: 300,
    seeds: () => exampleModules(),
    mutateInput: damageModuleName,
    run(input, seed, work) {
      // the simulated kernel's load_module over a damaged module (and its dependencies from the tree):
      // a verdict, never a crash, and never a state it cannot read back
      if (simCheck === undefined) {
        const session = openCheckSession({ root: EXAMPLE_TREE, kernelVersion: EXAMPLE_KVER });
        process.once('exit', () => session.close());
        simCheck = session;
      }
      const file = path.join(work, `fuzz-${path.basename(seed.name)}`);
      fs.writeFileSync(file, input);
      try {
        simCheck.check(file);
        const after = simCheck.check(path.join(exampleModDir, 'kernel/lib/greet_log.ko'));
        if (after.failure !== undefined) return `greet_log does not load after ${seed.name}: ${JSON.stringify(after.failure)}`;
      } catch (err) {
        if (err instanceof SimStateError) return `the simulated kernel wrote a state it cannot read: ${err.message}`;
        throw err;
      }
      return undefined;
    },
  },
  {
    name: 'state',
    mutation: 'text',
    perInputMs: 30_000,
    ciCount: 100,
    seeds: (work) => {
      const dir = exampleState(work);
      return ['state.jsonl', 'kmsg'].map((f) => ({ name: f, data: fs.readFileSync(path.join(dir, f)) }));
    },
    mutateInput: (data, rng) => (data.subarray(0, 8).toString() === '{"op":"s' ? damageRecord(data, rng) : mutateText(data, rng)),
    run(input, seed, work) {
      const dir = path.join(work, 'state');
      fs.rmSync(dir, { recursive: true, force: true });
      fs.cpSync(exampleState(work), dir, { recursive: true });
      const file = path.join(dir, seed.name);
      fs.writeFileSync(file, input);
      const store = new SimStore(dir);
      store.current();
      store.readKmsg();
      // what lsmod, modinfo and dmesg read of it
      const b = new SimBackend(dir);
      b.procModulesText();
      for (const m of ['greet_core', 'greet_fancy', 'greet_bonjour']) {
        b.holders(m);
        b.readModuleAttr(m, 'refcnt');
        b.readModuleAttr(m, 'parameters/times');
      }
      b.kernelLog();
      // one input in ten also through the CLI: a reader and a writer; a failing writer changes nothing
      if (stateRuns++ % 10 !== 0) return undefined;
      const sim = ['--backend=sim', `--sim-state=${dir}`];
      const f = cliFault([...sim, 'lsmod'], 20_000) ?? cliFault([...sim, 'dmesg'], 20_000);
      if (f) return f;
      const before = fs.readFileSync(file);
      const r = spawnSync(process.execPath, [KMODTS, ...sim, 'modprobe', '-d', EXAMPLE_TREE, '-S', EXAMPLE_KVER, '-r', 'greet_fancy'], { encoding: 'latin1', timeout: 20_000 });
      if (r.status === 70 || r.signal || /internal error|^\s+at /m.test(r.stderr)) return `modprobe -r: ${r.status} ${r.signal} ${r.stderr}`;
      if (r.status !== 0 && seed.name === 'state.jsonl' && !fs.readFileSync(file).equals(before)) return `a failed modprobe -r changed ${seed.name}: ${r.stderr}`;
      return undefined;
    },
  },
  {
    name: 'lock',
    mutation: 'bytes',
    perInputMs: 10_000,
    ciCount: 300,
    seeds: () => [
      { name: 'dead', data: Buffer.from('999999999 12345 node\n') },
      { name: 'init', data: Buffer.from(`1 ${fs.readFileSync('/proc/1/stat', 'latin1').slice(fs.readFileSync('/proc/1/stat', 'latin1').lastIndexOf(')') + 2).split(' ')[19]} systemd\n`) },
      { name: 'old-format', data: Buffer.from('1\n') },
    ],
    run(input, _seed, work) {
      const dir = path.join(work, 'lockdir');
      fs.mkdirSync(dir, { recursive: true });
      const file = path.join(dir, 'lock');
      fs.rmSync(file, { recursive: true, force: true });
      fs.writeFileSync(file, input);
      // nobody alive holds it: taken at once (well under the wait bound), and given back
      const lock = new StateLock(file);
      const t0 = Date.now();
      lock.acquire({ waitMs: 5000, noticeMs: 0, onWait: (h) => { throw new Error(`waited for a lock naming ${JSON.stringify(h)}`); } });
      lock.release();
      if (fs.existsSync(file)) return 'the lock is still there after release';
      if (Date.now() - t0 > 2000) return `took ${Date.now() - t0} ms`;
      return undefined;
    },
  },
];

export function mutate(target: FuzzTarget, data: Buffer, rng: Rng): Buffer {
  if (target.mutateInput && rng() < 0.5) return target.mutateInput(data, rng);
  return target.mutation === 'text' && rng() < 0.8 ? mutateText(data, rng) : mutateBytes(data, rng);
}

/** Targets that fault on purpose, to show the harness sees each kind of fault (fuzz.test.ts). */
export const selfTestTargets: FuzzTarget[] = [
  ['selftest-throw', (): void => void (null as unknown as { x: number }).x],
  [
    'selftest-hang',
    (): void => {
      for (;;);
    },
  ],
  ['selftest-crash', (): void => void process.kill(process.pid, 'SIGKILL')],
].map(([name, fail]) => ({
  name: name as string,
  mutation: 'bytes' as const,
  perInputMs: 3000,
  ciCount: 4,
  seeds: () => [{ name: 'one', data: Buffer.from([1, 2, 3, 4]) }],
  // the odd inputs fault, the even ones pass
  run: (_input: Buffer, _seed: Seed, work: string): undefined => {
    const n = Number(fs.readFileSync(path.join(work, 'index'), 'utf8'));
    if (n % 2 === 1) (fail as () => void)();
    return undefined;
  },
}));
