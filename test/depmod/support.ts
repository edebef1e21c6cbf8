// Helpers for the depmod suites: running kmod 34.2's depmod and kmodts' depmod (in-process, from dist/)
// on the same tree, snapshotting the files they write, and building small synthetic module trees from
// the ELF writer in test/support/elf-writer.ts.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildModule, symbolCrc, type ModuleSpec } from '../support/elf-writer';
import { builtCli } from '../support/kmod-pool';
import { runKmod, type RunResult } from '../support/reference';
import type { AliasPieces } from '../../src/depmod/alias-files';
import { symbolKeyOfBytes } from '../../src/depmod/hash';

/** hash.ts's key of an import's name, given as a string */
export function symbolKey(name: string): number {
  const bytes = Buffer.from(name, 'latin1');
  return symbolKeyOfBytes(bytes, 0, bytes.length);
}

/** alias pieces as plain data (null for none), to compare with alias-files.ts aliasPieces' */
export function plainPieces(p: AliasPieces | null | undefined): unknown {
  return p === null || p === undefined ? null : { lines: Buffer.from(p.lines).toString('latin1'), keys: Buffer.from(p.keys).toString('latin1'), keyLengths: [...p.keyLengths] };
}

export { plainScan } from '../support/plain-scan';

/** every file depmod writes, in its order */
export const DEPMOD_FILES = [
  'modules.dep',
  'modules.dep.bin',
  'modules.alias',
  'modules.alias.bin',
  'modules.softdep',
  'modules.weakdep',
  'modules.symbols',
  'modules.symbols.bin',
  'modules.builtin.bin',
  'modules.builtin.alias.bin',
  'modules.devname',
];

/** kmodts depmod in this process (the whole CLI path, worker threads included) */
export async function kmodtsDepmod(args: string[], cwd?: string, env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
  const { main, captureIo } = builtCli();
  const io = captureIo({ LANG: 'C', LC_ALL: 'C', ...env });
  const old = process.cwd();
  if (cwd !== undefined) process.chdir(cwd);
  try {
    const status = await main('depmod', args, io);
    return { stdout: io.out(), stderr: io.err(), status };
  } finally {
    if (cwd !== undefined) process.chdir(old);
  }
}

export function kmodDepmod(args: string[], cwd?: string): RunResult {
  return runKmod('depmod', args, { cwd });
}

export type Snapshot = Map<string, Buffer | null>;

/** The depmod output files of a module directory (null: absent) */
export function snapshot(dir: string): Snapshot {
  const s: Snapshot = new Map();
  for (const f of DEPMOD_FILES) {
    const p = path.join(dir, f);
    s.set(f, fs.existsSync(p) ? fs.readFileSync(p) : null);
  }
  return s;
}

export function removeOutputs(dir: string): void {
  for (const f of DEPMOD_FILES) fs.rmSync(path.join(dir, f), { force: true });
}

/** names of files that differ between two snapshots */
export function differingFiles(a: Snapshot, b: Snapshot): string[] {
  const out: string[] = [];
  for (const f of DEPMOD_FILES) {
    const x = a.get(f) ?? null;
    const y = b.get(f) ?? null;
    if (x === null || y === null ? x !== y : !x.equals(y)) out.push(f);
  }
  return out;
}

/** leftover temporary files (name.pid.usec.sec) in a directory */
export function temporaryFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).filter((n) => /^modules\..*\.\d+\.\d+\.\d+$/.test(n));
}

export interface BothResult {
  kmod: RunResult;
  kmodts: RunResult;
  kmodFiles: Snapshot;
  kmodtsFiles: Snapshot;
}

/**
 * Runs kmod's depmod, snapshots `outDir`, removes the outputs, runs kmodts' depmod with the same
 * arguments, snapshots again. Both see the same tree and paths, so messages compare as they are.
 */
/**
 * A modules.dep that kmodts must replace: the tree looks indexed before (depmod keeps its scan cache only
 * when re-indexing), and a run that failed to rewrite the file would show in the comparison.
 */
export const STALE_MODULES_DEP = '# stale: left for kmodts to rewrite\n';

export async function runBoth(args: string[], outDir: string, opts: { cwd?: string; before?: () => void; reindex?: boolean } = {}): Promise<BothResult> {
  opts.before?.();
  removeOutputs(outDir);
  const kmod = kmodDepmod(args, opts.cwd);
  const kmodFiles = snapshot(outDir);
  opts.before?.();
  removeOutputs(outDir);
  if (opts.reindex === true) fs.writeFileSync(path.join(outDir, 'modules.dep'), STALE_MODULES_DEP);
  const kmodts = await kmodtsDepmod(args, opts.cwd);
  const kmodtsFiles = snapshot(outDir);
  return { kmod: normalizePointers(kmod), kmodts: normalizePointers(kmodts), kmodFiles, kmodtsFiles };
}

/** libkmod's -vv lines carry pointers (kmod_set_log_fn, kmod_unref): compare their shape only */
export function normalizePointers(r: RunResult): RunResult {
  const stderr = r.stderr.replace(/^(depmod: INFO: (?:custom logging function|context)) 0x[0-9a-f]+ (registered|released)$/gm, '$1 0xADDR $2');
  return { ...r, stderr };
}

/**
 * A scratch root whose module directory has a real tree's modules and kbuild files: hard links (cheap),
 * or real copies where a test needs the files' ctimes to stay put (a hard link's ctime moves whenever
 * anyone links or unlinks the reference tree's files, as other suites do).
 */
export function copyTree(srcModdir: string, kver: string, tag: string, how: 'link' | 'copy' = 'link'): { root: string; moddir: string } {
  const root = tmpRoot(tag);
  const moddir = path.join(root, 'lib/modules', kver);
  fs.mkdirSync(moddir, { recursive: true });
  execFileSync('cp', [how === 'link' ? '-al' : '-a', path.join(srcModdir, 'kernel'), moddir]);
  for (const f of ['modules.order', 'modules.builtin', 'modules.builtin.modinfo']) {
    if (fs.existsSync(path.join(srcModdir, f))) fs.copyFileSync(path.join(srcModdir, f), path.join(moddir, f));
  }
  return { root, moddir };
}

/** the module files (.ko, .ko.xz, .ko.zst, .ko.gz) under dir, in walk order */
export function moduleFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.ko(\.xz|\.zst|\.gz)?$/.test(e.name)) out.push(p);
    }
  };
  walk(dir);
  return out;
}

export function tmpRoot(tag: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `kmodts-depmod-${tag}-`));
}

// ---- synthetic trees -------------------------------------------------------------------------------

export const SYN_KVER = '4.4.4-syn';
export const SYN_VERMAGIC = `${SYN_KVER} SMP mod_unload modversions `;

export interface SynModule {
  /** path under lib/modules/<kver>/ (or absolute, for external directories) */
  rel: string;
  exports?: string[];
  imports?: string[];
  weakImports?: string[];
  /** CRC overrides for imports (to provoke "disagrees about version") */
  importCrcs?: Record<string, number>;
  modinfo?: [string, string][];
  /** raw file contents instead of an ELF module */
  raw?: Buffer;
  /** name in the ELF (default: from the file name) */
  name?: string;
}

export const crcOf = (name: string): number => symbolCrc('syn:' + name);

export function moduleBytes(m: SynModule): Buffer {
  if (m.raw !== undefined) return m.raw;
  const base = path.basename(m.rel).replace(/\.ko.*$/, '').replace(/-/g, '_');
  const spec: ModuleSpec = {
    name: m.name ?? base,
    vermagic: SYN_VERMAGIC,
    modinfo: m.modinfo,
    moduleLayoutCrc: crcOf('module_layout'),
    exports: (m.exports ?? []).map((name) => ({ name, crc: crcOf(name) })),
    imports: [
      ...(m.imports ?? []).map((name) => ({ name, crc: m.importCrcs?.[name] ?? crcOf(name) })),
      ...(m.weakImports ?? []).map((name) => ({ name, crc: m.importCrcs?.[name] ?? crcOf(name), weak: true })),
    ],
  };
  return buildModule(spec);
}

function compress(file: string, data: Buffer): void {
  if (file.endsWith('.ko')) {
    fs.writeFileSync(file, data);
    return;
  }
  const tool = file.endsWith('.xz') ? ['xz', '-c', '--check=crc32', '--lzma2=dict=1MiB'] : file.endsWith('.zst') ? ['zstd', '-q', '-c', `--stream-size=${data.length}`] : ['gzip', '-c', '-n'];
  const r = spawnSync(tool[0], tool.slice(1), { input: data, maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`${tool[0]} failed: ${r.stderr}`);
  fs.writeFileSync(file, r.stdout);
}

export interface SynTree {
  root: string;
  moddir: string;
}

/**
 * Writes a tree under a new temporary root: modules (in the given order, which is also creation order),
 * plus optional modules.order / modules.builtin / modules.builtin.modinfo contents and extra files.
 */
export function buildTree(
  tag: string,
  modules: SynModule[],
  extra: { order?: string | null; builtin?: string | null; builtinModinfo?: Buffer | string | null; files?: Record<string, string> } = {},
): SynTree {
  const root = tmpRoot(tag);
  const moddir = path.join(root, 'lib/modules', SYN_KVER);
  fs.mkdirSync(moddir, { recursive: true });
  for (const m of modules) {
    const file = m.rel.startsWith('/') ? path.join(root, m.rel) : path.join(moddir, m.rel);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    compress(file, moduleBytes(m));
  }
  if (extra.order !== null) {
    const order = extra.order ?? modules.filter((m) => !m.rel.startsWith('/')).map((m) => m.rel.replace(/\.ko.*$/, '.ko') + '\n').join('');
    fs.writeFileSync(path.join(moddir, 'modules.order'), order);
  }
  if (extra.builtin !== null) fs.writeFileSync(path.join(moddir, 'modules.builtin'), extra.builtin ?? 'kernel/fs/ext4/ext4.ko\nkernel/net/unix/unix.ko\n');
  if (extra.builtinModinfo !== null) {
    fs.writeFileSync(
      path.join(moddir, 'modules.builtin.modinfo'),
      extra.builtinModinfo ?? 'ext4.license=GPL\0ext4.alias=fs-ext4\0ext4.alias=ext3\0unix.alias=net-pf-1\0unix.license=GPL\0',
    );
  }
  for (const [rel, text] of Object.entries(extra.files ?? {})) {
    const file = rel.startsWith('/') ? path.join(root, rel) : path.join(moddir, rel);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, text);
  }
  return { root, moddir };
}

/** A config directory with the given files (name -> contents) */
export function configDir(root: string, files: Record<string, string>): string {
  const dir = path.join(root, 'depmod.d');
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  for (const [name, text] of Object.entries(files)) {
    const p = path.join(dir, name);
    if (text === '<dir>') fs.mkdirSync(p);
    else fs.writeFileSync(p, text);
  }
  return dir;
}
