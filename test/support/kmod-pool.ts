// Running many kmod 34.2 cases fast (a small pool of concurrent processes) and the same cases through
// kmodts in-process, with optional fake /proc/cmdline and /sys/module (bind mounts for kmod, needs root;
// KMODTS_PROC_DIR / KMODTS_SYS_DIR for kmodts).
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { cleanEnv, reference, repoRoot, type RunResult } from './reference';

// kmodts in-process runs use the build (dist/): the CLI loads its parts lazily with require(), which
// does not see TypeScript sources under vitest. `npm test` builds first.
type MainFn = typeof import('../../src/cli/main').main;
type CaptureIoFn = typeof import('../../src/cli/io').captureIo;
export function builtCli(): { main: MainFn; captureIo: CaptureIoFn } {
  const dist = path.join(repoRoot, 'dist/cli');
  if (!fs.existsSync(path.join(dist, 'main.js'))) throw new Error('dist/ is missing: run `npx tsc -p tsconfig.build.json` (npm test does)');
  return { main: require(path.join(dist, 'main.js')).main, captureIo: require(path.join(dist, 'io.js')).captureIo };
}

export interface ToolCase {
  args: string[];
  /** contents of a fake /proc/cmdline */
  cmdline?: string;
  /** a directory to stand in for /sys/module */
  sysModule?: string;
  /** extra environment (MODPROBE_OPTIONS, ...) */
  env?: Record<string, string>;
  cwd?: string;
}

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-pool-'));
// ~100 MB of batch outputs by the end of a run: not left behind in /tmp
process.once('exit', () => fs.rmSync(scratch, { recursive: true, force: true }));
let fileNo = 0;
const cmdlineFiles = new Map<string, string>();

/** a file holding `text`, reused for equal texts */
function cmdlineFile(text: string): string {
  let f = cmdlineFiles.get(text);
  if (f === undefined) {
    const dir = path.join(scratch, `proc${fileNo++}`);
    fs.mkdirSync(dir);
    f = path.join(dir, 'cmdline');
    fs.writeFileSync(f, text);
    cmdlineFiles.set(text, f);
  }
  return f;
}

// sh script run under `unshare -m`: bind the fakes over /proc/cmdline and /sys/module, then exec kmod
const BIND = 'c=$1; s=$2; shift 2; if [ -n "$c" ]; then mount --bind "$c" /proc/cmdline || exit 99; fi; ' +
  'if [ -n "$s" ]; then mount --bind "$s" /sys/module || exit 99; fi; exec "$@"';

function kmodArgv(tool: string, c: ToolCase): string[] {
  const k = reference().KMOD_ROOT;
  const argv = [`${k}/usr/lib64/ld-linux-x86-64.so.2`, '--library-path', `${k}/usr/lib/x86_64-linux-gnu`, '--argv0', tool, `${k}/usr/bin/kmod`, ...c.args];
  if (c.cmdline === undefined && c.sysModule === undefined) return argv;
  return ['unshare', '-m', 'sh', '-c', BIND, 'sh', c.cmdline === undefined ? '' : cmdlineFile(c.cmdline), c.sysModule ?? '', ...argv];
}

/** a word for bash, single-quoted */
function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function runScript(script: string, env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const file = path.join(scratch, `script${scriptNo++}.sh`);
    fs.writeFileSync(file, script + '\n');
    const p = spawn('bash', [file], { env, stdio: ['ignore', 'ignore', 'inherit'] });
    p.on('error', reject);
    p.on('close', (code) => resolve(code ?? 1));
  });
}

let batchNo = 0;
let scriptNo = 0;

/**
 * kmod 34.2's `tool` for every case; results in case order. Cases run from bash scripts (one per
 * core-ish), each case's stdout, stderr and status captured in files: far cheaper than a Node spawn per case.
 */
export async function runKmodMany(tool: string, cases: ToolCase[], concurrency = Math.max(2, os.cpus().length)): Promise<RunResult[]> {
  const dir = path.join(scratch, `batch${batchNo++}`);
  fs.mkdirSync(dir);
  const lines = cases.map((c, i) => {
    const env = Object.entries(c.env ?? {}).map(([k, v]) => `${k}=${shq(v)}`).join(' ');
    const argv = kmodArgv(tool, c).map(shq).join(' ');
    const run = c.cwd !== undefined ? `(cd ${shq(c.cwd)} && ${env} exec ${argv})` : `${env} ${argv}`;
    return `${run} >${dir}/${i}.out 2>${dir}/${i}.err; echo $? >${dir}/${i}.rc`;
  });
  const chunk = Math.ceil(lines.length / concurrency);
  const scripts: string[] = [];
  for (let i = 0; i < lines.length; i += chunk) scripts.push(lines.slice(i, i + chunk).join('\n'));
  await Promise.all(scripts.map((sc) => runScript(sc, cleanEnv())));
  return cases.map((c, i) => {
    const status = Number.parseInt(fs.readFileSync(path.join(dir, `${i}.rc`), 'latin1'), 10);
    if (status === 99) throw new Error(`could not set up the bind mounts for ${c.args.join(' ')}`);
    return {
      stdout: fs.readFileSync(path.join(dir, `${i}.out`), 'latin1'),
      stderr: fs.readFileSync(path.join(dir, `${i}.err`), 'latin1'),
      status,
    };
  });
}

/** kmodts' `tool` in this process (main() with captured stdio). */
export async function runKmodtsInProcess(tool: string, c: ToolCase): Promise<RunResult> {
  const env: NodeJS.ProcessEnv = { ...cleanEnv(c.env) };
  if (c.cmdline !== undefined) env.KMODTS_PROC_DIR = path.dirname(cmdlineFile(c.cmdline));
  if (c.sysModule !== undefined) {
    // KMODTS_SYS_DIR is the parent of module/: link a private one to the fake
    const sys = path.join(scratch, `sys-${Buffer.from(c.sysModule).toString('hex').slice(-40)}`);
    if (!fs.existsSync(sys)) {
      fs.mkdirSync(sys);
      fs.symlinkSync(c.sysModule, path.join(sys, 'module'));
    }
    env.KMODTS_SYS_DIR = sys;
  }
  const { main, captureIo } = builtCli();
  const io = captureIo(env);
  const cwd = process.cwd();
  const pwd = process.env.PWD;
  if (c.cwd) {
    process.chdir(c.cwd);
    process.env.PWD = c.cwd; // as a shell's cd sets it
  }
  try {
    const status = await main('kmodts', [tool, ...c.args], io);
    return { stdout: io.out(), stderr: io.err(), status };
  } finally {
    if (c.cwd) {
      process.chdir(cwd);
      if (pwd === undefined) delete process.env.PWD;
      else process.env.PWD = pwd;
    }
  }
}

/**
 * kmodts' `tool` for every case in one child Node process (main() with captured stdio, as in-process),
 * with `processEnv` added to the child's own environment: what must be set before the process starts
 * (LD_LIBRARY_PATH, KMODTS_NATIVE_ADDON). `setup`, JavaScript run first in the child (its `dist` is the
 * build's directory). Cases with cmdline, sysModule or cwd are not supported here.
 */
export function runKmodtsInChild(tool: string, cases: ToolCase[], processEnv: NodeJS.ProcessEnv, setup = ''): RunResult[] {
  const dir = path.join(scratch, `child${batchNo++}`);
  fs.mkdirSync(dir);
  const input = path.join(dir, 'cases.json');
  const output = path.join(dir, 'results.json');
  fs.writeFileSync(input, JSON.stringify(cases.map((c) => ({ args: c.args, env: cleanEnv(c.env) }))));
  const script = `
    const fs = require('node:fs');
    const dist = ${JSON.stringify(path.join(repoRoot, 'dist'))};
    ${setup}
    const { main } = require(${JSON.stringify(path.join(repoRoot, 'dist/cli/main.js'))});
    const { captureIo } = require(${JSON.stringify(path.join(repoRoot, 'dist/cli/io.js'))});
    (async () => {
      const results = [];
      for (const c of JSON.parse(fs.readFileSync(process.argv[1], 'utf8'))) {
        const io = captureIo(c.env);
        const status = await main('kmodts', [${JSON.stringify(tool)}, ...c.args], io);
        results.push({ stdout: io.out(), stderr: io.err(), status });
      }
      fs.writeFileSync(process.argv[2], JSON.stringify(results));
    })();`;
  execFileSync(process.execPath, ['-e', script, input, output], { env: { ...cleanEnv(), ...processEnv }, stdio: ['ignore', 'ignore', 'inherit'] });
  return JSON.parse(fs.readFileSync(output, 'utf8')) as RunResult[];
}

/**
 * libkmod's INFO messages show C pointers (context, log function); kmodts prints a stand-in address.
 * Those addresses are masked before comparing; everything else must be identical.
 */
export function maskPointers(s: string): string {
  return s
    .replace(/(ctx|context|custom logging function) 0x[0-9a-f]+ (created|released|registered)/g, '$1 0xPTR $2')
    .replace(/ctx=0x[0-9a-f]+ path=/g, 'ctx=0xPTR path=');
}

/** "args: what differs" for a mismatch, short enough for a test report */
export function describeMismatch(c: ToolCase, kmodRaw: RunResult, oursRaw: RunResult): string | undefined {
  const kmod = { ...kmodRaw, stderr: maskPointers(kmodRaw.stderr) };
  const ours = { ...oursRaw, stderr: maskPointers(oursRaw.stderr) };
  const parts: string[] = [];
  if (kmod.status !== ours.status) parts.push(`status kmod=${kmod.status} kmodts=${ours.status}`);
  if (kmod.stdout !== ours.stdout) parts.push(`stdout kmod=${JSON.stringify(kmod.stdout.slice(0, 300))} kmodts=${JSON.stringify(ours.stdout.slice(0, 300))}`);
  if (kmod.stderr !== ours.stderr) parts.push(`stderr kmod=${JSON.stringify(kmod.stderr.slice(0, 300))} kmodts=${JSON.stringify(ours.stderr.slice(0, 300))}`);
  if (parts.length === 0) return undefined;
  const extra = [c.cmdline !== undefined ? `cmdline=${JSON.stringify(c.cmdline)}` : '', c.env ? `env=${JSON.stringify(c.env)}` : '', c.sysModule ? `sys=${c.sysModule}` : ''].filter(Boolean).join(' ');
  return `[${c.args.join(' ')}]${extra ? ' ' + extra : ''}: ${parts.join('; ')}`;
}
