// The package as npm users get it: packed from a copy of the checkout (so that `npm pack` builds, makes
// the prebuilt native helpers and cleans up there, not in the checkout the other suites read), and
// installed by npm 11 (the machine's) or npm 10 (the one that ships with Node 20 and 22), kept once per
// machine in the download cache.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cacheRoot, repoRoot } from '../support/reference';

export interface NpmCommand {
  /** npm's major version, as reported by `npm --version` */
  major: number;
  /** the argv that runs it */
  argv: string[];
}

export interface CommandResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** Runs a command and returns its outcome; failing to start it at all is an error naming it. */
export function run(argv: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): CommandResult {
  const r = spawnSync(argv[0], argv.slice(1), { cwd: opts.cwd, env: opts.env, encoding: 'utf8', maxBuffer: 1 << 28 });
  if (r.error) throw new Error(`${argv[0]} cannot run: ${r.error.message}`);
  return { status: r.status ?? 128, stdout: r.stdout, stderr: r.stderr };
}

/** the machine's npm, found beside this node or on PATH */
export function machineNpm(): NpmCommand {
  const beside = path.join(path.dirname(process.execPath), 'npm');
  const argv = [fs.existsSync(beside) ? beside : 'npm'];
  return { major: npmMajor(argv), argv };
}

function npmMajor(argv: string[]): number {
  const r = run([...argv, '--version']);
  if (r.status !== 0) throw new Error(`${argv.join(' ')} --version failed: ${r.stderr}`);
  return Number(r.stdout.trim().split('.')[0]);
}

/**
 * npm 10 from the npm registry, installed once per machine into <cache>/npm/10 (into a temporary
 * directory first, renamed when complete, so that a run stopped half-way leaves nothing half-made),
 * run with this node.
 */
export function npm10(): NpmCommand {
  const dir = path.join(cacheRoot, 'npm', '10');
  const cli = path.join(dir, 'node_modules', 'npm', 'bin', 'npm-cli.js');
  if (!fs.existsSync(cli)) {
    fs.mkdirSync(path.dirname(dir), { recursive: true });
    const tmp = fs.mkdtempSync(`${dir}.tmp-`);
    const r = run([...machineNpm().argv, 'install', '--prefix', tmp, '--no-audit', '--no-fund', '--loglevel=error', 'npm@10'], {
      env: { ...process.env, npm_config_update_notifier: 'false' },
    });
    if (r.status !== 0) throw new Error(`installing npm@10 from the npm registry into ${dir} failed: ${r.stderr}`);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(tmp, dir);
  }
  const npm = { major: 0, argv: [process.execPath, cli] };
  npm.major = npmMajor(npm.argv);
  return npm;
}

/** the files of the checkout that git knows of (tracked, or new and not ignored) */
function checkoutFiles(): string[] {
  const r = run(['git', 'ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: repoRoot });
  if (r.status !== 0) throw new Error(`the install test packs a copy of the git checkout; git ls-files failed: ${r.stderr}`);
  return r.stdout.split('\0').filter((f) => f !== '' && fs.lstatSync(path.join(repoRoot, f), { throwIfNoEntry: false }) !== undefined);
}

/**
 * `npm pack` of a copy of the checkout (its node_modules linked, for the build tools): the tarball's
 * path. The copy's own path is returned too: no installed file may carry it.
 */
export function packCopy(scratch: string): { tarball: string; packedFrom: string } {
  const packedFrom = path.join(scratch, 'packed-from');
  for (const file of checkoutFiles()) {
    fs.mkdirSync(path.dirname(path.join(packedFrom, file)), { recursive: true });
    // symbolic links (test fixtures, a dangling one among them) stay links: made here, since Node 24's
    // cpSync follows a link's target even with verbatimSymlinks
    const src = path.join(repoRoot, file);
    const dst = path.join(packedFrom, file);
    const st = fs.lstatSync(src);
    if (st.isSymbolicLink()) fs.symlinkSync(fs.readlinkSync(src), dst);
    else {
      fs.copyFileSync(src, dst);
      fs.chmodSync(dst, st.mode & 0o7777);
    }
  }
  fs.symlinkSync(path.join(repoRoot, 'node_modules'), path.join(packedFrom, 'node_modules'));
  const out = path.join(scratch, 'tarball');
  fs.mkdirSync(out);
  const r = run([...machineNpm().argv, 'pack', '--pack-destination', out, '--loglevel=error'], { cwd: packedFrom, env: process.env });
  if (r.status !== 0) throw new Error(`npm pack failed (exit ${r.status}):\n${r.stderr}`);
  const [tarball] = fs.readdirSync(out).filter((f) => f.endsWith('.tgz'));
  if (tarball === undefined) throw new Error(`npm pack made no tarball:\n${r.stdout}${r.stderr}`);
  return { tarball: path.join(out, tarball), packedFrom };
}

/** The files of a tarball, as `tar` lists them (package/...). */
export function tarballFiles(tarball: string): string[] {
  return execFileSync('tar', ['tzf', tarball], { encoding: 'utf8' }).trim().split('\n').sort();
}

/** npm's environment for installing with no C compiler: CC and CXX name compilers that do not exist */
export function noCompilerEnv(scratch: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    CC: path.join(scratch, 'no-such-compiler', 'cc'),
    CXX: path.join(scratch, 'no-such-compiler', 'c++'),
    npm_config_update_notifier: 'false',
  };
}

export interface Installation {
  /** the kmodts command */
  bin: string;
  /** the installed package's directory */
  packageDir: string;
  /** npm's outcome */
  result: CommandResult;
}

/** `npm install -g --prefix <dir> <tarball>` */
export function installGlobal(npm: NpmCommand, tarball: string, prefix: string, env: NodeJS.ProcessEnv): Installation {
  const result = run([...npm.argv, 'install', '-g', '--prefix', prefix, '--no-audit', '--no-fund', '--loglevel=error', tarball], { env });
  return { bin: path.join(prefix, 'bin', 'kmodts'), packageDir: path.join(prefix, 'lib', 'node_modules', 'kmodts'), result };
}

/** `npm install <tarball>` in a new project */
export function installDependency(npm: NpmCommand, tarball: string, project: string, env: NodeJS.ProcessEnv): Installation {
  fs.mkdirSync(project, { recursive: true });
  fs.writeFileSync(path.join(project, 'package.json'), '{ "name": "uses-kmodts", "version": "1.0.0", "private": true }\n');
  const result = run([...npm.argv, 'install', '--no-audit', '--no-fund', '--loglevel=error', tarball], { cwd: project, env });
  return { bin: path.join(project, 'node_modules', '.bin', 'kmodts'), packageDir: path.join(project, 'node_modules', 'kmodts'), result };
}

/** every regular file under dir whose contents include text (latin1: any byte string) */
export function filesContaining(dir: string, text: string): string[] {
  const found: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const file = path.join(entry.parentPath, entry.name);
    if (fs.readFileSync(file, 'latin1').includes(text)) found.push(file);
  }
  return found;
}
