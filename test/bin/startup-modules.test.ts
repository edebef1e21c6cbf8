// Start-up stays lean: a command loads the Node built-ins its work needs and no others. Each Node
// module costs start-up time (node:zlib ~1.5 ms, node:worker_threads ~0.5 ms: docs/decisions.md), so
// the common commands are run through bin/kmodts.js with a preload that lists every built-in loaded
// after it, and the heavy ones they do not need must not be among them.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanEnv, repoRoot } from '../support/reference';

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-startup-'));
afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));

const KVER = '6.12.0-example';
const exampleTree = path.join(repoRoot, 'examples/tree');
const exampleModule = path.join(exampleTree, 'lib/modules', KVER, 'kernel/lib/greet_core.ko');

// the preload: Node's own list of loaded modules, before the tool and at exit; and V8's cache version
// tag at exit, which V8 derives from its flags among other things (after the list: node:v8 is loaded for it)
const preload = path.join(scratch, 'loaded.js');
fs.writeFileSync(
  preload,
  `const before = new Set(process.moduleLoadList);
process.on('exit', () => {
  const loaded = process.moduleLoadList.filter((m) => !before.has(m) && m.startsWith('NativeModule ')).map((m) => m.slice(13));
  const flagTag = require('node:v8').cachedDataVersionTag();
  require('node:fs').writeFileSync(process.env.KMODTS_TEST_LOADED, JSON.stringify({ loaded, flagTag }));
});
`,
);

/** the built-ins the command loaded, and V8's flag-dependent tag at its exit (its exit status and stderr checked) */
function runOf(args: string[], env: Record<string, string> = {}, nodeOptions: string[] = []): { loaded: string[]; flagTag: number } {
  const out = path.join(scratch, `loaded-${Math.random().toString(16).slice(2)}`);
  const r = spawnSync(process.execPath, [...nodeOptions, '-r', preload, path.join(repoRoot, 'bin/kmodts.js'), ...args], { env: cleanEnv({ KMODTS_TEST_LOADED: out, ...env }), encoding: 'utf8' });
  expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(0);
  expect(r.stderr, args.join(' ')).toBe('');
  return JSON.parse(fs.readFileSync(out, 'utf8'));
}

/** the built-ins the command loaded (its exit status checked) */
function loadedBy(args: string[], env: Record<string, string> = {}): string[] {
  return runOf(args, env).loaded;
}

/** V8's tag in a Node with `flags` set at run time, as bin/kmodts.js sets them */
function flagTagWith(flags: string): number {
  const r = spawnSync(process.execPath, ['-e', `const v8 = require('node:v8'); v8.setFlagsFromString(${JSON.stringify(flags)}); process.stdout.write(String(v8.cachedDataVersionTag()))`], { encoding: 'utf8' });
  return Number(r.stdout);
}

/** built-ins none of these commands needs: compression, threads, processes, crypto, the network */
const HEAVY = ['zlib', 'worker_threads', 'child_process', 'crypto', 'net', 'http', 'https', 'readline'];

function heavyIn(loaded: string[]): string[] {
  return loaded.filter((m) => HEAVY.includes(m));
}

/** a copy of the example tree without its indexes: what a first depmod sees */
function freshTree(): string {
  const root = path.join(scratch, 'tree');
  const moddir = path.join(root, 'lib/modules', KVER);
  fs.mkdirSync(path.dirname(moddir), { recursive: true });
  fs.cpSync(path.join(exampleTree, 'lib/modules', KVER), moddir, { recursive: true });
  for (const name of fs.readdirSync(moddir)) {
    if (/^modules\.(dep|alias|symbols|softdep|weakdep|devname)/.test(name)) fs.rmSync(path.join(moddir, name));
  }
  return root;
}

describe('start-up', () => {
  it('modprobe --show-depends loads none of the heavy built-ins', () => {
    const loaded = loadedBy(['modprobe', '-d', exampleTree, '-S', KVER, '-D', 'greet_fancy']);
    expect(loaded).toContain('vm');
    expect(heavyIn(loaded)).toEqual([]);
    // fs.opendirSync's getter loads it (0.1 ms on Node 20, ~1 ms on Node 26): only a directory read in
    // readdir's raw order needs it
    expect(loaded).not.toContain('internal/fs/dir');
  });

  it('modinfo of an uncompressed module loads none of them', () => {
    expect(heavyIn(loadedBy(['modinfo', exampleModule]))).toEqual([]);
  });

  it('depmod: a fresh tree\'s first indexing and the run after it load no decompressor and no checksum library', () => {
    const root = freshTree();
    for (const run of ['first', 'second']) {
      const loaded = loadedBy(['depmod', '-b', root, KVER]);
      // (worker_threads: the scans' memory given back at once, release.ts)
      expect(heavyIn(loaded).filter((m) => m !== 'worker_threads'), run).toEqual([]);
    }
    expect(fs.existsSync(path.join(root, 'lib/modules', KVER, 'modules.dep.bin'))).toBe(true);
  });

  // bin/kmodts.js turns V8's background baseline compiles off (through node:v8) on Node 23+, where they
  // can hang a process at exit once its heap reaches V8's limit; the native backend's short tools skip it
  const backgroundCompilesOff = Number(process.versions.node.split('.')[0]) >= 23;
  it(`node:v8 (background compiles off) ${backgroundCompilesOff ? 'only where a heap can grow' : 'not needed on this Node'}`, () => {
    const showDepends = ['-d', exampleTree, '-S', KVER, '-D', 'greet_fancy'];
    const sim = { KMODTS_SIM_STATE: path.join(scratch, 'sim') };
    expect(loadedBy(['modprobe', ...showDepends])).not.toContain('v8');
    expect(loadedBy(['insmod', '--help'])).not.toContain('v8');
    const simRuns = [
      loadedBy(['--backend=sim', 'modprobe', ...showDepends], sim),
      loadedBy(['--backend', 'sim', 'modprobe', ...showDepends], sim),
      loadedBy(['modprobe', ...showDepends], { ...sim, KMODTS_BACKEND: 'sim' }),
      loadedBy(['check', '--help'], sim),
    ];
    for (const loaded of simRuns) expect(loaded.includes('v8')).toBe(backgroundCompilesOff);
  });

  // depmod and modinfo run without V8's optimizing compilers: set through node:v8, or on Node 20 through
  // its internal binding, which spares the ~40 modules node:v8 loads; its deprecation warning silenced
  const bindingFlags = Number(process.versions.node.split('.')[0]) < 22;
  it(`depmod and modinfo set their compiler flags ${bindingFlags ? "through Node's binding, silently" : 'through node:v8'}`, () => {
    const plain = flagTagWith('');
    const compilersOff = flagTagWith('--no-turbofan --no-maglev');
    expect(compilersOff).not.toBe(plain);
    const root = freshTree();
    for (const args of [['modinfo', exampleModule], ['depmod', '-b', root, KVER]]) {
      // (process.binding('v8') warns unless silenced, the more so with these: runOf checks that stderr is empty)
      for (const options of [[], ['--pending-deprecation'], ['--throw-deprecation', '--pending-deprecation']]) {
        const run = runOf(args, {}, options);
        expect(run.flagTag, `${args[0]} ${options.join(' ')}`).toBe(compilersOff);
        expect(run.loaded.includes('v8'), args[0]).toBe(!bindingFlags);
      }
    }
    expect(runOf(['modprobe', '-d', exampleTree, '-S', KVER, '-D', 'greet_fancy']).flagTag).toBe(plain);
  });
});
