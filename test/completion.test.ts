// bash completion (completion/kmodts.bash): sourced in a real bash, asked for completions as bash would ask
// (COMP_LINE/COMP_POINT), against the example tree.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from './support/reference';

/** The completions bash would offer at the end of `line`. */
function completeBash(lines: string[], env: NodeJS.ProcessEnv = {}): string[][] {
  const script = [
    'set -u',
    'source completion/kmodts.bash',
    'complete -p kmodts >/dev/null || exit 3',
    ...lines.map(
      (l) => `COMP_LINE=${JSON.stringify(l).replace(/\$/g, '\\$')}; COMP_POINT=\${#COMP_LINE}; COMPREPLY=(); _kmodts; printf '%s\\t' "\${COMPREPLY[@]}"; echo`,
    ),
  ].join('\n');
  const r = spawnSync('bash', ['--norc', '--noprofile', '-c', script], {
    cwd: repoRoot,
    encoding: 'utf8',
    env: { PATH: process.env.PATH, LANG: 'C', ...env },
  });
  if (r.error) throw r.error;
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  const out = r.stdout.split('\n').slice(0, -1);
  expect(out.length).toBe(lines.length);
  return out.map((l) => l.split('\t').filter((x) => x !== ''));
}

const tree = '-d examples/tree -S 6.12.0-example';

/** Runs `body` with a PATH whose `kmodts` stands for the simulated kernel's lsmod (state /tmp/s). */
function withFakeSimLsmod<T>(body: (env: NodeJS.ProcessEnv) => T): T {
  const bin = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-comp-'));
  fs.writeFileSync(
    path.join(bin, 'kmodts'),
    '#!/bin/sh\n[ "$1 $2 $3" = "--backend=sim --sim-state=/tmp/s lsmod" ] || exit 1\n' +
      'printf "Module                  Size  Used by\\ngreet_hello            12288  0\\ngreet_core             12288  1 greet_hello\\n"\n',
    { mode: 0o755 },
  );
  try {
    return body({ PATH: `${bin}:${process.env.PATH}` });
  } finally {
    fs.rmSync(bin, { recursive: true });
  }
}
const cases: [string, string[]][] = [
  ['kmodts ', ['modprobe', 'insmod', 'rmmod', 'lsmod', 'modinfo', 'depmod', 'kmod', 'check', 'dmesg', 'help']],
  ['kmodts help mod', ['modprobe', 'modinfo']],
  ['kmodts help modinfo ', []],
  ['kmodts check --js', ['--json']],
  ['kmodts mod', ['modprobe', 'modinfo']],
  ['kmodts --back', ['--backend=']],
  ['kmodts --backend=', ['native', 'sim']],
  ['kmodts --backend=s', ['sim']],
  ['kmodts --json mo', ['modprobe', 'modinfo']],
  ['kmodts modprobe --show-d', ['--show-depends']],
  ['kmodts modprobe --force-', ['--force-modversion', '--force-vermagic']],
  ['kmodts insmod -', ['--force', '--syslog', '--verbose', '--version', '--help', '-f', '-s', '-v', '-V', '-h']],
  ['kmodts modprobe -d examples/tree -S ', ['6.12.0-example']],
  [`kmodts modprobe ${tree} greet_`, ['greet_core', 'greet_log', 'greet_hello', 'greet_bonjour', 'greet_fancy']],
  [`kmodts modprobe ${tree} -D greet_f`, ['greet_fancy']],
  ['kmodts modprobe --dirname=examples/tree --set-version=6.12.0-example greet_h', ['greet_hello']],
  ['kmodts modprobe -dexamples/tree -S6.12.0-example greet_l', ['greet_log']],
  ['kmodts modprobe --dirname=examples/tree --set-version=6', ['6.12.0-example']],
  [`modprobe ${tree} greet_c`, ['greet_core']],
  ['kmodts modinfo -b examples/tree -k 6.12.0-example greet_b', ['greet_bonjour']],
  ['kmodts modinfo -F al', ['alias']],
  ['kmodts modinfo --field=des', ['description']],
  [`kmodts check ${tree} examples/out-of-tree/greet_c`, ['examples/out-of-tree/greet_closed.ko']],
  [`kmodts check ${tree} --color=a`, ['auto', 'always']],
  ['kmodts insmod examples/out-of-tree/greet_e', ['examples/out-of-tree/greet_extra.ko']],
  ['kmodts insmod examples/out-of-tree/greet_extra.ko ', []],
  ['kmodts depmod -b examples/tree 6', ['6.12.0-example']],
  [`kmodts modprobe ${tree} -w `, []],
  ['kmodts --backend=sim dmesg --',  ['--raw', '--notime', '--read-clear', '--clear', '--json', '--help']],
  ['kmodts check --colour=n', ['never']],
  ['kmod ', ['help', 'list', 'static-nodes']],
  ['kmod -', ['--version', '--help', '-V', '-h']],
  ['kmod -V s', ['static-nodes']],
  ['kmodts kmod st', ['static-nodes']],
  ['kmod list -', ['--syslog', '--verbose', '--version', '--help', '-s', '-v', '-V', '-h']],
  ['kmod static-nodes --', ['--format=', '--output=', '--help']],
  ['kmod static-nodes --format=', ['human', 'tmpfiles', 'devname']],
  ['kmod static-nodes -f t', ['tmpfiles']],
  ['kmod static-nodes -o examples/tr', ['examples/tree']],
  ['kmod help ', []],
];

describe('bash completion', () => {
  it('completes settings, tools, options, versions, fields and module names', () => {
    const got = completeBash(cases.map((c) => c[0]));
    cases.forEach(([line, want], i) => expect(got[i], line).toEqual(want));
  });

  it('takes loaded modules for rmmod from /proc/modules, or from the simulated kernel with --backend=sim', () => {
    const [sim, rm] = withFakeSimLsmod((env) =>
      completeBash(['kmodts --backend=sim --sim-state=/tmp/s rmmod greet_', 'kmodts --backend=sim --sim-state=/tmp/s modprobe -r greet_c'], env),
    );
    expect(sim).toEqual(['greet_hello', 'greet_core']);
    expect(rm).toEqual(['greet_core']);
  });
});

/** The matches zsh's completion system offers at the end of each line (set of words, sorted). */
function completeZsh(lines: string[], env: NodeJS.ProcessEnv = {}): string[][] {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-zsh-'));
  const out = path.join(dir, 'out');
  const r = spawnSync('zsh', ['-f', 'test/support/zsh-complete.zsh', out, ...lines], {
    cwd: repoRoot,
    encoding: 'utf8',
    env: { PATH: process.env.PATH, LANG: 'C', HOME: dir, ...env },
  });
  if (r.error) throw new Error(`zsh cannot run (package zsh is needed): ${r.error.message}`);
  expect(r.status).toBe(0);
  const text = fs.readFileSync(out, 'utf8');
  fs.rmSync(dir, { recursive: true });
  const blocks = text.split('>>> ').slice(1);
  expect(blocks.length).toBe(lines.length);
  return blocks.map((b, i) => {
    const [head, ...rest] = b.split('\n');
    expect(head).toBe(lines[i]);
    expect(rest).toContain('<<<');
    return [...new Set(rest.filter((l) => l !== '' && l !== '<<<'))].sort();
  });
}

describe('zsh completion', () => {
  it('completes settings, tools, options, versions, fields and module names', () => {
    const zcases: [string, string[]][] = [
      ['kmodts mod', ['modinfo', 'modprobe']],
      ['kmodts --backend=', ['native', 'sim']],
      [`kmodts modprobe ${tree} greet_`, ['greet_bonjour', 'greet_core', 'greet_fancy', 'greet_hello', 'greet_log']],
      [`kmodts --json modprobe ${tree} -D greet_f`, ['greet_fancy']],
      [`modprobe ${tree} greet_b`, ['greet_bonjour']],
      ['kmodts modinfo -b examples/tree -k 6.12.0-example greet_h', ['greet_hello']],
      ['kmodts check -d examples/tree -S ', ['6.12.0-example']],
      ['kmodts modinfo -F al', ['alias']],
      ['kmodts modprobe --show-dep', ['--show-depends']],
      ['kmodts --backend=sim dmesg --no', ['--notime']],
      ['kmod ', ['help', 'list', 'static-nodes']],
      ['kmodts kmod static-nodes --format=', ['devname', 'human', 'tmpfiles']],
      ['kmod static-nodes -f d', ['devname']],
      ['kmod list --sys', ['--syslog']],
      ['kmodts help dm', ['dmesg']],
      ['kmodts check --js', ['--json']],
      ['kmodts he', ['help']],
    ];
    const got = completeZsh(zcases.map((c) => c[0]));
    zcases.forEach(([line, want], i) => expect(got[i], line).toEqual(want));
  });

  it('offers module files to insmod and loaded modules of the simulated kernel to rmmod', () => {
    const [ins, rm] = withFakeSimLsmod((env) =>
      completeZsh(['kmodts insmod examples/out-of-tree/greet_e', 'kmodts --backend=sim --sim-state=/tmp/s rmmod greet_'], env),
    );
    expect(ins).toContain('greet_extra.ko');
    expect(ins).not.toContain('greet_closed.ko');
    expect(rm).toEqual(['greet_core', 'greet_hello']);
  });
});
