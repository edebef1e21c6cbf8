// --json: every document validates against its schema in docs/json-schema/, and says the same as the text
// output (the plan of modprobe --show-depends rendered back to text is modprobe -D's output, for every
// module of the Debian tree with a configuration that has install commands, options, soft dependencies and
// a blacklist; modinfo's fields are modinfo's lines; lsmod's modules are lsmod's rows).
import Ajv2020 from 'ajv/dist/2020';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProbePlan } from '../src/resolution/plan';
import { moduleDir, reference, repoRoot } from './support/reference';

// the built CLI (npm test builds first), as the other in-process suites use it: the CLI loads tools with require()
const dist = path.join(repoRoot, 'dist');
const { main } = require(path.join(dist, 'cli/main.js')) as typeof import('../src/cli/main');
const { captureIo } = require(path.join(dist, 'cli/io.js')) as typeof import('../src/cli/io');
const { formatPlan } = require(path.join(dist, 'resolution/plan.js')) as typeof import('../src/resolution/plan');

const schemaDir = path.join(repoRoot, 'docs/json-schema');
const ajv = new Ajv2020({ strict: true, allErrors: true });
const validators = new Map<string, ReturnType<typeof ajv.compile>>();
for (const f of fs.readdirSync(schemaDir).filter((n) => n.endsWith('.json'))) {
  const schema = JSON.parse(fs.readFileSync(path.join(schemaDir, f), 'utf8'));
  validators.set(f.replace(/\.json$/, ''), ajv.compile(schema));
}

/** Runs kmodts in-process; returns stdout, stderr, status. */
async function kmodts(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ out: string; err: string; status: number }> {
  const io = captureIo(env);
  const status = await main('kmodts', args, io);
  return { out: io.out(), err: io.err(), status };
}

/** Parses a --json document and validates it against the schema its kind names. */
function validDoc(out: string): { kind: string; [k: string]: any } {
  const doc = JSON.parse(out);
  const validate = validators.get(doc.kind);
  expect(validate, `schema for ${doc.kind}`).toBeDefined();
  if (!validate!(doc)) throw new Error(`${doc.kind}: ${ajv.errorsText(validate!.errors)}`);
  return doc;
}

function planText(doc: { requests: { modules: ProbePlan[] }[] }): string {
  return doc.requests.map((r) => r.modules.map(formatPlan).join('')).join('');
}

const example = ['-d', path.join(repoRoot, 'examples/tree'), '-S', '6.12.0-example'];

describe('JSON schemas', () => {
  it('are valid draft 2020-12 schemas, one per kind', () => {
    expect([...validators.keys()].sort()).toEqual(['check', 'dmesg', 'lsmod', 'modinfo', 'modprobe-resolve-alias', 'modprobe-show-depends']);
    const readme = fs.readFileSync(path.join(schemaDir, 'README.md'), 'utf8');
    for (const kind of validators.keys()) expect(readme, kind).toContain(`| \`${kind}\` | [${kind}.json](${kind}.json) |`);
  });
});

describe('modprobe --json --show-depends', () => {
  let conf: string;
  beforeAll(() => {
    conf = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-json-conf-'));
    fs.writeFileSync(
      path.join(conf, 'test.conf'),
      [
        'options greet_hello name=json',
        'install greet_log /bin/echo logging $CMDLINE_OPTS',
        'softdep greet_fancy pre: greet_bonjour post: nothere',
        'blacklist greet_bonjour',
        'alias hi greet_hello',
        'alias ghost nothere',
        '',
      ].join('\n'),
    );
  });
  afterAll(() => fs.rmSync(conf, { recursive: true }));

  it('a module from a path, then by name: the name\'s steps load the tree\'s file (each argument its own modules)', async () => {
    const inTree = path.join(repoRoot, 'examples/tree/lib/modules/6.12.0-example/kernel/lib/greet_core.ko');
    const copy = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-json-')), 'greet_core.ko');
    fs.copyFileSync(inTree, copy);
    const r = await kmodts(['--json', 'modprobe', ...example, '-a', '-D', copy, 'greet_core']);
    expect(r.status).toBe(0);
    expect(validDoc(r.out).requests.map((q: any) => [q.query, q.modules[0].steps.at(-1).path])).toEqual([
      [copy, copy],
      ['greet_core', inTree],
    ]);
    fs.rmSync(path.dirname(copy), { recursive: true, force: true });
  });

  it('gives each step with its reason, in modprobe -D order (example tree)', async () => {
    const r = await kmodts(['--json', 'modprobe', ...example, '-D', 'greet:lang:fr-ca']);
    expect(r.status).toBe(0);
    const doc = validDoc(r.out);
    const steps = doc.requests[0].modules[0].steps.map((s: any) => [s.action, s.module, s.reason, s.requiredBy ?? '-', s.required]);
    expect(steps).toEqual([
      ['insmod', 'greet_core', 'dependency', 'greet_bonjour', true],
      ['insmod', 'greet_bonjour', 'requested', '-', true],
      ['builtin', 'greet_plain', 'softdep-post', 'greet_bonjour', false],
    ]);
    expect(doc.requests[0].modules[0].alias).toBe('greet:lang:fr_ca');
  });

  const cases: string[][] = [
    ['-D', 'greet_fancy'],
    ['-D', 'greet_fancy', 'times=3', 'x="a b"'],
    ['-D', '-i', 'greet_fancy'],
    ['-D', '-b', 'greet_bonjour'],
    ['-D', 'greet:bonjour'],
    ['-D', 'hi', 'times=1'],
    ['-D', 'ghost'],
    ['-D', '-a', 'greet_hello', 'nothere', 'greet_log', 'greet:plain'],
    ['-D', '-i', 'greet_log'],
  ];
  for (const c of cases) {
    it(`says what the text says: modprobe -C conf ${c.join(' ')}`, async () => {
      const args = ['modprobe', ...example, '-C', conf, ...c];
      const text = await kmodts(args);
      const json = await kmodts(['--json', ...args]);
      expect(json.status).toBe(text.status);
      expect(json.err).toBe(text.err);
      const doc = validDoc(json.out);
      expect(planText(doc)).toBe(text.out);
    });
  }

  it('marks install commands, options, soft dependencies and blacklisted aliases', async () => {
    const doc = validDoc((await kmodts(['--json', 'modprobe', ...example, '-C', conf, '-D', 'greet_fancy', 'times=3'])).out);
    const steps = doc.requests[0].modules[0].steps;
    expect(doc.requests[0].options).toBe('times=3');
    const hello = steps.find((s: any) => s.module === 'greet_hello');
    expect(hello).toMatchObject({ action: 'insmod', options: 'name=json ', reason: 'dependency', requiredBy: 'greet_fancy' });
    const log = steps.find((s: any) => s.module === 'greet_log' && s.action === 'install');
    expect(log).toMatchObject({ command: '/bin/echo logging $CMDLINE_OPTS', reason: 'softdep-pre', requiredBy: 'greet_hello', required: true });
    expect(steps.find((s: any) => s.reason === 'requested')).toMatchObject({ module: 'greet_fancy', options: 'times=3' });
    // a soft dependency is loaded even if blacklisted; it is not required
    expect(steps.find((s: any) => s.module === 'greet_bonjour')).toMatchObject({ reason: 'softdep-pre', required: false });
    const blk = validDoc((await kmodts(['--json', 'modprobe', ...example, '-C', conf, '-D', 'greet:bonjour'])).out);
    expect(blk.requests[0].modules[0]).toEqual({ module: 'greet_bonjour', alias: 'greet:bonjour', blacklisted: true, steps: [] });
    const ghost = validDoc((await kmodts(['--json', 'modprobe', ...example, '-C', conf, '-D', 'ghost'])).out);
    expect(ghost.requests[0].modules[0].steps).toEqual([
      { action: 'missing', module: 'nothere', options: '', reason: 'requested', required: true },
    ]);
  });

  it('reports a name that is not found with found: false, kmod\'s message and status 1', async () => {
    const r = await kmodts(['--json', 'modprobe', ...example, '-D', 'nothere']);
    expect(r.status).toBe(1);
    expect(r.err).toBe(`modprobe: FATAL: Module nothere not found in directory ${path.join(repoRoot, 'examples/tree/lib/modules/6.12.0-example')}\n`);
    expect(validDoc(r.out).requests).toEqual([{ query: 'nothere', found: false, modules: [] }]);
  });

  it('renders back to modprobe -D for every module of the Debian tree', async () => {
    const ref = reference();
    const names = fs
      .readFileSync(path.join(moduleDir(ref), 'modules.dep'), 'latin1')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => path.basename(l.slice(0, l.indexOf(':'))).replace(/\.ko.*$/, '').replace(/-/g, '_'));
    expect(names.length).toBeGreaterThan(1000);
    const args = ['modprobe', '-d', ref.KTREE, '-S', ref.KVER, '-C', conf, '-D', '-a', ...names, 'ext4', 'crypto-md5', 'net-pf-40'];
    const text = await kmodts(args);
    const json = await kmodts(['--json', ...args]);
    expect(text.status).toBe(0);
    expect(json.status).toBe(0);
    const doc = validDoc(json.out);
    expect(doc.requests.length).toBe(names.length + 3);
    expect(planText(doc)).toBe(text.out);
    const reasons = new Set(doc.requests.flatMap((r: any) => r.modules.flatMap((m: any) => m.steps.map((s: any) => s.reason))));
    expect([...reasons].sort()).toEqual(['dependency', 'requested', 'softdep-post', 'softdep-pre']);
  });
});

describe('modprobe --json --resolve-alias', () => {
  it('lists what modprobe -R prints', async () => {
    const ref = reference();
    for (const q of ['net-pf-40', 'ext4', 'vsock', 'symbol:vsock_add_tap']) {
      const args = ['modprobe', '-d', ref.KTREE, '-S', ref.KVER, '-R', q];
      const text = await kmodts(args);
      const doc = validDoc((await kmodts(['--json', ...args])).out);
      expect(doc.requests[0].modules.map((m: any) => m.module + '\n').join('')).toBe(text.out);
    }
    const ext4 = validDoc((await kmodts(['--json', 'modprobe', '-d', ref.KTREE, '-S', ref.KVER, '-R', 'ext4'])).out);
    expect(ext4.requests[0].modules).toEqual([{ module: 'ext4', path: null, builtin: true }]);
  });
});

describe('modinfo --json', () => {
  /** modinfo's text, rebuilt from the JSON document */
  function asText(doc: any): string {
    const pad = (k: string): string => `${k}:${' '.repeat(Math.max(0, 15 - k.length))}`;
    let out = '';
    for (const m of doc.modules) {
      if (m.builtin) out += `${pad('name')}${m.name}\n`;
      out += `${pad('filename')}${m.filename ?? '(builtin)'}\n`;
      for (const f of m.fields) if (f.key !== 'parm' && f.key !== 'parmtype') out += `${pad(f.key)}${f.value}\n`;
      for (const p of m.parameters) {
        const text = p.description === undefined ? p.type : p.type === undefined ? p.description : `${p.description} (${p.type})`;
        out += `${pad('parm')}${p.name}:${text}\n`;
      }
    }
    return out;
  }

  it('gives every field, the parameters and the signature, as modinfo shows them', async () => {
    const ref = reference();
    for (const args of [
      ['-b', ref.KTREE, '-k', ref.KVER, 'vsock', 'virtio_net', 'ext4', 'net-pf-40'],
      ['-b', path.join(repoRoot, 'examples/tree'), '-k', '6.12.0-example', 'greet_hello', 'greet:plain'],
      [path.join(repoRoot, 'examples/out-of-tree/greet_closed.ko')],
    ]) {
      const text = await kmodts(['modinfo', ...args]);
      const json = await kmodts(['--json', 'modinfo', ...args]);
      expect(json.status).toBe(0);
      expect(json.err).toBe(text.err);
      expect(asText(validDoc(json.out))).toBe(text.out);
    }
    const vsock = validDoc((await kmodts(['--json', 'modinfo', '-b', ref.KTREE, '-k', ref.KVER, 'vsock'])).out).modules[0];
    expect(vsock.signature).toMatchObject({ id: 'PKCS#7', hashAlgorithm: 'sha256' });
    expect(vsock.signature.signature).toMatch(/^([0-9A-F]{2}:)+[0-9A-F]{2}$/);
    expect(vsock.filename).toBe(path.join(moduleDir(ref), 'kernel/net/vmw_vsock/vsock.ko.xz'));
    const ext4 = validDoc((await kmodts(['--json', 'modinfo', '-b', ref.KTREE, '-k', ref.KVER, 'ext4'])).out).modules[0];
    expect(ext4).toMatchObject({ query: 'ext4', name: 'ext4', filename: null, builtin: true, signature: null });
  });

  it('is UTF-8 whatever the module holds: its UTF-8 as it is, a byte that is not UTF-8 as U+FFFD (the text keeps the byte)', async () => {
    const src = fs.readFileSync(path.join(repoRoot, 'examples/tree/lib/modules/6.12.0-example/kernel/lib/greet_core.ko'));
    const at = src.indexOf('description=') + 'description='.length;
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-json-')), 'greet_core.ko');
    // "é" in UTF-8, then \xff and a lone continuation byte, in place of the description's first 4 bytes
    const img = Buffer.from(src);
    Buffer.from([0xc3, 0xa9, 0xff, 0x80]).copy(img, at);
    fs.writeFileSync(file, img);
    const text = await kmodts(['modinfo', '-F', 'description', file]);
    expect(Buffer.from(text.out, 'latin1').subarray(0, 4)).toEqual(Buffer.from([0xc3, 0xa9, 0xff, 0x80]));
    const io = captureIo({});
    expect(await main('kmodts', ['--json', 'modinfo', file], io)).toBe(0);
    const doc = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(io.outBytes()));
    expect(doc.modules[0].fields.find((f: { key: string }) => f.key === 'description').value.slice(0, 3)).toBe('é\ufffd\ufffd');
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
  });

  it('a module shown from a path, then by name: the name\'s entry is the tree\'s file (each argument a module of its own)', async () => {
    const tree = path.join(repoRoot, 'examples/tree');
    const inTree = path.join(tree, 'lib/modules/6.12.0-example/kernel/lib/greet_core.ko');
    const copy = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-json-')), 'greet_core.ko');
    fs.copyFileSync(inTree, copy);
    const r = await kmodts(['--json', 'modinfo', '-b', tree, '-k', '6.12.0-example', copy, 'greet_core', copy]);
    expect(r.status).toBe(0);
    expect(validDoc(r.out).modules.map((m: { query: string; filename: string }) => [m.query, m.filename])).toEqual([
      [copy, copy],
      ['greet_core', inTree],
      [copy, copy],
    ]);
    fs.rmSync(path.dirname(copy), { recursive: true, force: true });
  });

  it('keeps the found modules, reports the others with kmod\'s message and status 1', async () => {
    const r = await kmodts(['--json', 'modinfo', '-b', path.join(repoRoot, 'examples/tree'), '-k', '6.12.0-example', 'greet_log', 'nothere']);
    expect(r.status).toBe(1);
    expect(r.err).toBe('modinfo: ERROR: Module nothere not found.\n');
    expect(validDoc(r.out).modules.map((m: any) => m.name)).toEqual(['greet_log']);
  });
});

describe('lsmod and dmesg --json', () => {
  it('list what lsmod and dmesg show, for the simulated kernel', async () => {
    const state = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-json-sim-'));
    try {
      const sim = ['--backend=sim', `--sim-state=${state}`];
      expect((await kmodts([...sim, 'modprobe', ...example, 'greet_fancy'])).status).toBe(0);
      const text = await kmodts([...sim, 'lsmod']);
      const doc = validDoc((await kmodts([...sim, '--json', 'lsmod'])).out);
      const rows = doc.modules.map(
        (m: any) => `${m.name.padEnd(19)} ${String(m.size).padStart(8)}  ${m.refcnt}${m.usedBy.length ? ' ' + m.usedBy.join(',') : ''}`,
      );
      expect(['Module                  Size  Used by', ...rows].join('\n') + '\n').toBe(text.out);
      expect(doc.modules.map((m: any) => m.name)).toEqual(['greet_fancy', 'greet_hello', 'greet_log', 'greet_core']);
      expect(doc.modules.every((m: any) => m.state === 'Live')).toBe(true);
      // the simulated kernel's log, as the records dmesg -t prints
      const log = validDoc((await kmodts([...sim, '--json', 'dmesg'])).out);
      expect(log.records.map((x: any) => x.text + '\n').join('')).toBe((await kmodts([...sim, 'dmesg', '-t'])).out);
      expect(log.records[0]).toMatchObject({ level: 6, seq: 0, usec: 0, text: 'Linux version 6.12.0-example (kmodts simulated kernel)' });
    } finally {
      fs.rmSync(state, { recursive: true, force: true });
    }
  });
});
