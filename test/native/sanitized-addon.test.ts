// The addon (native/) under AddressSanitizer and UndefinedBehaviorSanitizer: built from binding.gyp's
// sources with -fsanitize=address,undefined, then the suites that reach its C code (depmod's scans,
// cache, walk record, symbol table, lookups and text makers, the index writer, decompression) run in a
// child vitest with it preloaded. Any out-of-bounds access, use after free or undefined behaviour (a
// memcpy from NULL, an overflow) stops the child and fails here. The C is the same on every Node (it
// speaks Node-API only): .ci/run runs this suite in the Node 20 pass. Needs gcc's libasan and libubsan
// (test/support/prerequisites.ts).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { gccRuntimeFile, requirePrerequisites } from '../support/prerequisites';
import { repoRoot } from '../support/reference';

/** the suites run against the sanitized addon (each reaches C code of its own) */
const SUITES = [
  'test/depmod/dep-graph.test.ts',
  'test/depmod/owned-symbols.test.ts',
  'test/depmod/index-files.test.ts',
  'test/depmod/alias-files.test.ts',
  'test/depmod/walk-record.test.ts',
  'test/depmod/tree-walk.test.ts',
  'test/depmod/import-dictionary.test.ts',
  'test/depmod/hash.test.ts',
  'test/depmod/stat-keys.test.ts',
  'test/depmod/file-crc.test.ts',
  'test/depmod/native-scan.test.ts',
  'test/depmod/scan-cache.test.ts',
  'test/depmod/synthetic.test.ts',
  'test/indexes/writer.test.ts',
  'test/file/native-decode.test.ts',
  'test/file/modinfo-parts.test.ts',
  'test/file/parts-prefetch.test.ts',
  'test/file/batch-read.test.ts',
];

// binding.gyp's target and the Node-API headers, as the prebuilds are compiled
const { gypTarget, nodeApiIncludeDir } = require('../../scripts/prebuild-native.js') as {
  gypTarget(): { sources: string[]; defines: string[]; libraries?: string[] };
  nodeApiIncludeDir(): string;
};

/**
 * The sanitized addon, built once per machine for these sources (the user's cache directory, keyed by
 * the sources' and flags' hash)
 */
function sanitizedAddon(): string {
  const target = gypTarget();
  const flags = ['-shared', '-fPIC', '-O1', '-g', '-fsanitize=address,undefined', '-fno-omit-frame-pointer', ...target.defines.map((d) => `-D${d}`), `-I${nodeApiIncludeDir()}`];
  const hash = createHash('sha256').update(flags.join(' '));
  for (const f of fs.readdirSync(path.join(repoRoot, 'native')).sort()) hash.update(f).update(fs.readFileSync(path.join(repoRoot, 'native', f)));
  const dir = path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'kmodts', 'sanitized-addon');
  const file = path.join(dir, `kmodts_native-${hash.digest('hex').slice(0, 16)}.node`);
  if (fs.existsSync(file)) return file;
  fs.mkdirSync(dir, { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  const r = spawnSync('gcc', [...flags, ...target.sources.map((s) => path.join(repoRoot, s)), '-o', tmp, ...(target.libraries ?? [])], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`building the sanitized addon failed:\n${r.stderr}`);
  fs.renameSync(tmp, file);
  // builds of older sources are of no more use
  for (const old of fs.readdirSync(dir)) if (old !== path.basename(file) && /^kmodts_native-[0-9a-f]{16}\.node$/.test(old)) fs.rmSync(path.join(dir, old), { force: true });
  return file;
}

describe('the addon under AddressSanitizer and UndefinedBehaviorSanitizer', () => {
  it('the suites that reach its C code pass with nothing reported', () => {
    requirePrerequisites(['libasan8', 'libubsan1']);
    const asan = gccRuntimeFile('libasan.so')!;
    const ubsan = gccRuntimeFile('libubsan.so')!;
    const addon = sanitizedAddon();
    const env = {
      ...process.env,
      LD_PRELOAD: `${asan} ${ubsan}`,
      ASAN_OPTIONS: 'detect_leaks=0',
      UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1',
      KMODTS_NATIVE_ADDON: addon,
    };
    // the child really loads this addon, with the sanitizers' runtime in it
    const probe = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(path.join(repoRoot, 'dist/native-addon.js'))}).loadNativeAddon(); process.stdout.write(require('fs').readFileSync('/proc/self/maps', 'utf8'))`], { env, encoding: 'utf8' });
    expect(probe.status, probe.stderr).toBe(0);
    expect(probe.stdout).toContain(addon);
    expect(probe.stdout).toMatch(/libasan\.so/);
    const r = spawnSync(process.execPath, [path.join(repoRoot, 'node_modules/vitest/vitest.mjs'), 'run', '--pool=forks', ...SUITES], { cwd: repoRoot, env, encoding: 'utf8', maxBuffer: 1 << 28 });
    // (vitest colours its summary even into a pipe where its parent asked for colour)
    const out = `${r.stdout}\n${r.stderr}`.replace(/\x1b\[[0-9;]*m/g, '');
    const reports = out.split('\n').filter((l) => /runtime error:|ERROR: AddressSanitizer|ERROR: LeakSanitizer|SUMMARY: (Address|UndefinedBehavior)Sanitizer/.test(l));
    expect(reports).toEqual([]);
    expect(r.status, out.slice(-4000)).toBe(0);
    // every suite ran
    expect(out).toMatch(new RegExp(`Test Files\\s+\\S*${SUITES.length} passed`));
  }, 900_000);
});
