// kmodts' own command line (src/cli/main.ts and its commands check and dmesg): `help`, --json after a
// command's name, kmod tools' options left exactly kmod's, and one clear line when the simulated
// kernel cannot be built from the files named, or has no symbol table.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot, runKmod, runKmodts } from '../support/reference';

const dist = path.join(repoRoot, 'dist');
const { main } = require(path.join(dist, 'cli/main.js')) as typeof import('../../src/cli/main');
const { captureIo } = require(path.join(dist, 'cli/io.js')) as typeof import('../../src/cli/io');
const { createSimBackend } = require(path.join(dist, 'backends/sim/index.js')) as typeof import('../../src/backends/sim');

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-main-test-'));
afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));

async function kmodts(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ out: string; err: string; status: number }> {
  const io = captureIo({ HOME: scratch, ...env });
  const status = await main('kmodts', args, io);
  return { out: io.out(), err: io.err(), status };
}

const example = ['-d', path.join(repoRoot, 'examples/tree'), '-S', '6.12.0-example'];
const outOfTree = path.join(repoRoot, 'examples/out-of-tree/greet_extra.ko');
let states = 0;
const freshState = (): string => path.join(scratch, `state-${++states}`);

describe('kmodts help', () => {
  it('`kmodts help` and `kmodts --help` print the summary, exit 0', async () => {
    const help = await kmodts(['help']);
    expect(help).toMatchObject({ status: 0, err: '' });
    expect(help.out).toMatch(/^Usage: kmodts /);
    expect(help.out).toContain('kmodts help [TOOL]');
    expect(await kmodts(['--help'])).toEqual(help);
  });

  it('`kmodts help TOOL` is `kmodts TOOL --help`, for kmod tools and kmodts commands', async () => {
    for (const tool of ['modprobe', 'lsmod', 'check', 'dmesg']) {
      const viaHelp = await kmodts(['help', tool]);
      expect(viaHelp).toEqual(await kmodts([tool, '--help']));
      expect(viaHelp.status).toBe(0);
      expect(viaHelp.out).toMatch(/Usage:/);
    }
  });

  it('an unknown tool, or more than one, is one line and status 1', async () => {
    expect(await kmodts(['help', 'nope'])).toEqual({ out: '', err: "kmodts: unknown tool 'nope'; try 'kmodts --help'\n", status: 1 });
    expect(await kmodts(['help', 'lsmod', 'modinfo'])).toEqual({ out: '', err: "kmodts help: one tool at a time; try 'kmodts help lsmod'\n", status: 1 });
  });

  it('the names of Object methods are no tools', async () => {
    for (const name of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
      expect(await kmodts([name])).toEqual({ out: '', err: `kmodts: unknown tool '${name}'; try 'kmodts --help'\n`, status: 1 });
    }
  });
});

describe('--json after the command name', () => {
  it('check takes it after its name, as before it', async () => {
    const args = [...example, 'greet_fancy', outOfTree];
    const before = await kmodts(['--json', 'check', ...args]);
    const after = await kmodts(['check', '--json', ...args]);
    expect(before.status).toBe(0);
    expect(JSON.parse(after.out).kind).toBe('check');
    expect(after).toEqual(before);
    expect(await kmodts(['check', ...args, '--json'])).toEqual(before);
  });

  it('dmesg takes it after its name, as before it', async () => {
    const sim = ['--backend=sim', `--sim-state=${freshState()}`];
    expect((await kmodts([...sim, 'modprobe', ...example, 'greet_fancy'])).status).toBe(0);
    const before = await kmodts([...sim, '--json', 'dmesg']);
    expect(JSON.parse(before.out).kind).toBe('dmesg');
    expect(await kmodts([...sim, 'dmesg', '--json'])).toEqual(before);
  });

  it("kmod's tools keep kmod 34.2's own options: --json after their name is what kmod makes of it", () => {
    const cases: [string, string[]][] = [
      ['modprobe', ['--json', ...example, '-D', 'greet_fancy']],
      ['modinfo', ['--json', '-b', example[1], '-k', example[3], 'greet_fancy']],
      ['lsmod', ['--json']],
      ['insmod', ['--json', outOfTree]],
      ['rmmod', ['--json', 'greet_fancy']],
      ['depmod', ['--json', '-b', example[1], example[3]]],
    ];
    for (const [tool, args] of cases) {
      expect({ tool, ...runKmodts(tool, args) }).toEqual({ tool, ...runKmod(tool, args) });
    }
  });
});

describe('a simulated kernel that cannot be built', () => {
  const variables: [string, string][] = [
    ['KMODTS_SIM_SYMVERS', 'Module.symvers'],
    ['KMODTS_SIM_CONFIG', 'configuration'],
    ['KMODTS_SIM_VMLINUZ', 'image'],
    ['KMODTS_SIM_MODDIR', 'module directory'],
    ['KMODTS_SIM_KEYS', 'signing key'],
  ];
  for (const [variable, what] of variables) {
    it(`${variable} naming a missing file: one line naming it, status 1, no state changed`, async () => {
      const missing = path.join(scratch, 'no-such-file');
      const state = freshState();
      const r = await kmodts(['--backend=sim', `--sim-state=${state}`, 'insmod', outOfTree], { [variable]: missing });
      expect(r).toEqual({
        out: '',
        err: `kmodts: the simulated kernel's ${what} ${missing}: No such file or directory (from ${variable})\n`,
        status: 1,
      });
      const log = await kmodts(['--backend=sim', `--sim-state=${state}`, 'dmesg']);
      expect(log).toEqual({ out: '', err: '', status: 0 });
    });
  }

  it('check -E naming a missing Module.symvers: one line, status 2', async () => {
    const missing = path.join(scratch, 'no-such-symvers');
    expect(await kmodts(['check', ...example, '-E', missing, 'greet_fancy'])).toEqual({
      out: '',
      err: `kmodts check: the simulated kernel's Module.symvers ${missing}: No such file or directory\n`,
      status: 2,
    });
  });
});

describe('a simulated kernel without a symbol table', () => {
  // a release with no files anywhere: no Module.symvers, no module tree to derive exports from
  const release = '6.12.0-kmodts-nowhere';
  const root = path.join(scratch, 'empty-root');
  const note =
    `kmodts: the simulated kernel ${release} has no symbol table (no Module.symvers at ${root}/lib/modules/${release}/build/Module.symvers, ` +
    `${root}/boot/symvers-${release}.gz, ${root}/usr/src/linux-headers-${release}/Module.symvers), ` +
    "so it exports only the symbols its module tree's modules import; set KMODTS_SIM_SYMVERS to the kernel's Module.symvers\n";

  it("says so once, before kmod's own error, naming where it looked and the setting", async () => {
    fs.mkdirSync(root, { recursive: true });
    const r = await kmodts(['--backend=sim', `--sim-state=${freshState()}`, 'insmod', outOfTree], { KMODTS_SIM_ROOT: root, KMODTS_SIM_KVER: release });
    expect(r).toEqual({ out: '', err: `${note}insmod: ERROR: could not insert module ${outOfTree}: Unknown symbol in module\n`, status: 1 });
  });

  it('tells the API caller once per backend, however many loads fail', () => {
    const notes: string[] = [];
    const sim = createSimBackend({}, { stateDir: freshState(), env: {}, root, kernelVersion: release, onNote: (t) => notes.push(t) });
    for (let i = 0; i < 3; i++) expect(() => sim.finitModule(outOfTree, '', 0)).toThrow(/Unknown symbol/);
    expect(notes).toEqual([note.slice('kmodts: '.length, -1)]);
  });

  it('says nothing when the kernel has its Module.symvers', async () => {
    const state = freshState();
    const r = await kmodts(['--backend=sim', `--sim-state=${state}`, 'insmod', path.join(repoRoot, 'examples/out-of-tree/greet_stale.ko')], {
      KMODTS_SIM_ROOT: example[1],
      KMODTS_SIM_KVER: example[3],
    });
    expect(r.status).toBe(1);
    expect(r.err).not.toContain('symbol table');
  });
});
