// What a kmod 34.2 run can depend on, as a key for the per-machine cache of kmod's results
// (test/support/kmod-cache.ts): the tool, argv, environment, fake or real /proc/cmdline and /sys/module,
// the working directory, the content of every path the arguments name, and the host files kmod reads
// by default (modprobe.d and depmod.d directories, /lib/modules, /proc/modules, uname -r).
import { createHash, type Hash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ToolCase } from './kmod-pool';
import { cleanEnv } from './reference';

/** modprobe's options taking an argument (short string "arw:RibfDcnC:d:S:sqvVh" and long ones) */
const MODPROBE_ARG_SHORT = new Set(['w', 'C', 'd', 'S']);
const MODPROBE_ARG_LONG = new Set(['--wait', '--config', '--dirname', '--set-version']);
/** options after which modprobe only prints: it loads, removes and runs nothing */
const MODPROBE_DRY_SHORT = new Set(['D', 'R', 'c', 'n']);
const MODPROBE_DRY_LONG = new Set(['--show-depends', '--resolve-alias', '--showconfig', '--show-config', '--dry-run',
  '--show-exports', '--show-modversions', '--dump-modversions']);

/**
 * Whether kmod's result for this case can be cached: modinfo only reads; modprobe only when its own argv
 * (parsed like getopt, without abbreviations) holds an option that makes it print instead of act, so
 * it never touches the kernel or runs an install/remove command (whose PATH would then matter).
 * Anything else (insmod, rmmod, lsmod, depmod, modprobe loading or removing) always runs live.
 */
export function cacheable(tool: string, c: ToolCase): boolean {
  if (tool === 'modinfo') return true;
  if (tool !== 'modprobe') return false;
  const opts = c.env?.MODPROBE_OPTIONS;
  // MODPROBE_OPTIONS' words come first: one ending with an option that takes an argument would swallow argv[1]
  if (opts !== undefined && /(^|\s)(-[^-\s]*[wCdS]|--(wait|config|dirname|set-version))['"]?\s*$/.test(opts)) return false;
  const posix = c.env?.POSIXLY_CORRECT !== undefined;
  for (let i = 0; i < c.args.length; i++) {
    const a = c.args[i];
    if (a === '--') return false;
    if (a.startsWith('--')) {
      const name = a.includes('=') ? a.slice(0, a.indexOf('=')) : a;
      if (MODPROBE_DRY_LONG.has(name) && !a.includes('=')) return true;
      if (MODPROBE_ARG_LONG.has(name) && !a.includes('=')) i++;
    } else if (a.startsWith('-') && a.length > 1) {
      for (let j = 1; j < a.length; j++) {
        if (MODPROBE_DRY_SHORT.has(a[j])) return true;
        if (MODPROBE_ARG_SHORT.has(a[j])) {
          if (j === a.length - 1) i++;
          break;
        }
      }
    } else if (posix) return false;
  }
  return false;
}

// ---- content descriptions ------------------------------------------------------------------------

/** content hashes of regular files, by identity: a write changes ctime, which user space cannot set back */
const fileHashes = new Map<string, string>();

function fileHash(p: string, st: fs.Stats, volatile: boolean): string {
  const id = `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
  // sysfs and procfs files change content without changing their times: always read
  const known = volatile ? undefined : fileHashes.get(id);
  if (known !== undefined) return known;
  let h: string;
  try {
    h = createHash('sha256').update(fs.readFileSync(p)).digest('hex');
  } catch (e) {
    h = `error ${(e as NodeJS.ErrnoException).code}`;
  }
  // a file changed within the timestamp granularity of its last change may change again unseen ("racy git")
  if (!volatile && Date.now() - st.ctimeMs > 2000) fileHashes.set(id, h);
  return h;
}

/**
 * Feeds `p`'s description into `h`: absent, a file's content, a directory's names and their contents
 * (recursively), a symbolic link's text and what it points to. Links are followed except where they
 * leave `confine` (used for /sys/module, whose driver links lead all over sysfs; kmod reads only module
 * directories there). `stack` holds the real paths being described (link cycles).
 */
export function describePath(h: Hash, p: string, confine?: string, stack: string[] = []): void {
  const volatile = /^\/(sys|proc)\//.test(p) || (confine !== undefined && /^\/(sys|proc)\//.test(confine));
  let lst: fs.Stats | undefined;
  try {
    lst = fs.lstatSync(p, { throwIfNoEntry: false });
  } catch (e) {
    // ENAMETOOLONG, ENOTDIR, EACCES, ELOOP: kmod meets the same error
    h.update(`error ${(e as NodeJS.ErrnoException).code}\0`);
    return;
  }
  if (lst === undefined) {
    h.update('absent\0');
    return;
  }
  if (lst.isSymbolicLink()) {
    // a link into a scratch directory: which run's directory does not matter, what it holds is described next
    h.update(`link ${fs.readlinkSync(p).replace(scratchPattern(), (d) => `${d.slice(0, -6)}<tmp>`)}\0`);
    let real: string;
    try {
      real = fs.realpathSync(p);
    } catch (e) {
      h.update(`dangling ${(e as NodeJS.ErrnoException).code}\0`);
      return;
    }
    if (confine !== undefined && real !== confine && !real.startsWith(confine + '/')) return;
    if (stack.includes(real)) {
      h.update('cycle\0');
      return;
    }
    describePath(h, real, confine, stack);
    return;
  }
  if (lst.isDirectory()) {
    const real = stack.length === 0 ? fs.realpathSync(p) : p;
    let names: string[];
    try {
      names = fs.readdirSync(p).sort();
    } catch (e) {
      h.update(`dir error ${(e as NodeJS.ErrnoException).code}\0`);
      return;
    }
    h.update(`dir ${lst.mode} ${names.length}\0`);
    stack.push(real);
    for (const n of names) {
      h.update(`name ${n}\0`);
      describePath(h, path.join(p, n), confine, stack);
    }
    stack.pop();
  } else if (lst.isFile()) {
    // libkmod never reads module parameters (no API does), and some are counters that keep changing
    const unread = confine !== undefined && p.startsWith(`${confine}/`) && p.slice(confine.length + 1).split('/')[1] === 'parameters';
    h.update(`file ${lst.mode} ${lst.size} ${unread ? 'parameter' : fileHash(p, lst, volatile)}\0`);
  } else {
    h.update(`other ${lst.mode} ${lst.rdev}\0`);
  }
}

export function pathDigest(p: string, confine?: string): string {
  const h = createHash('sha256');
  describePath(h, p, confine);
  return h.digest('hex');
}

// ---- scratch directories -------------------------------------------------------------------------

/** the suites' mkdtemp scratch directories (os.tmpdir()/kmodts-<what>-XXXXXX): different in every run */
function scratchPattern(): RegExp {
  const tmp = os.tmpdir().replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`${tmp}/kmodts-[a-z0-9-]*?-[A-Za-z0-9]{6}(?![A-Za-z0-9])`, 'g');
}

/** the scratch directories a case names, in order of first mention */
export function scratchDirs(texts: string[]): string[] {
  const found: string[] = [];
  const re = scratchPattern();
  for (const t of texts) for (const m of t.matchAll(re)) if (!found.includes(m[0])) found.push(m[0]);
  return found;
}

/** each scratch directory replaced by a placeholder keeping its prefix (`.../kmodts-modinfo-diff-<1>`) */
export function normalise(text: string, dirs: string[]): string {
  let out = text;
  dirs.forEach((d, i) => {
    out = out.split(d).join(`${d.slice(0, -6)}<${i}>`);
  });
  return out;
}

/** the inverse of normalise() for this run's directories */
export function restore(text: string, dirs: string[]): string {
  let out = text;
  dirs.forEach((d, i) => {
    out = out.split(`${d.slice(0, -6)}<${i}>`).join(d);
  });
  return out;
}

// ---- the keys -------------------------------------------------------------------------------------

/** the host files kmod reads when the arguments do not say otherwise */
export const HOST_INPUTS = ['/etc/modprobe.d', '/run/modprobe.d', '/usr/local/lib/modprobe.d', '/usr/lib/modprobe.d',
  '/lib/modprobe.d', '/etc/depmod.d', '/run/depmod.d', '/usr/local/lib/depmod.d', '/usr/lib/depmod.d', '/lib/depmod.d',
  '/etc/modprobe.conf', '/lib/modules', '/usr/lib/modules', '/proc/modules'];

/** what every case shares: the host's defaults (/proc/cmdline and /sys/module are per case: they may be faked) */
export function hostDigest(): string {
  const h = createHash('sha256');
  h.update(`uname -r ${os.release()}\0`);
  for (const p of HOST_INPUTS) {
    h.update(`${p}\0`);
    describePath(h, p);
  }
  return h.digest('hex');
}

/** words of the arguments and environment that may name a file: whole, after '=', an attached short option's value */
function pathCandidates(c: ToolCase): string[] {
  const words = [...c.args];
  for (const v of Object.values(c.env ?? {})) words.push(...v.split(/[\s'"]+/));
  const out = new Set<string>();
  for (const w of words) {
    if (w === '') continue;
    out.add(w);
    if (w.includes('=')) out.add(w.slice(w.indexOf('=') + 1));
    if (/^-[^-]/.test(w)) for (let k = 2; k < w.length; k++) out.add(w.slice(k));
  }
  return [...out];
}

/**
 * Digests for one runKmodMany call, each path described once: nothing changes them between the keys
 * being computed and kmod running, since the suites prepare their inputs before calling.
 */
export class BatchInputs {
  private readonly memo = new Map<string, string>();
  digest(name: string, compute: () => string = () => pathDigest(name)): string {
    let d = this.memo.get(name);
    if (d === undefined) {
      d = compute();
      this.memo.set(name, d);
    }
    return d;
  }
}

export interface CaseKey {
  key: string;
  /** the scratch directories the key replaced by placeholders, to restore in cached output */
  dirs: string[];
}

/**
 * The key of one case: everything kmod's result can depend on besides kmod itself, with the host defaults
 * (hostDigest). The real /proc/cmdline and /sys/module stand in when the case does not fake them.
 */
export function caseKey(tool: string, c: ToolCase, batch: BatchInputs): CaseKey {
  const cwd = c.cwd ?? process.cwd();
  // the environment kmod gets, but PATH: the cacheable cases run no program (see cacheable())
  const { PATH: _path, ...kmodEnv } = cleanEnv(c.env);
  const env = Object.entries(kmodEnv).map(([k, v]) => [k, v ?? ''] as const).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const dirs = scratchDirs([cwd, ...c.args, ...env.map(([k, v]) => `${k}=${v}`), c.sysModule ?? '']);
  const n = (s: string): string => normalise(s, dirs);
  const h = createHash('sha256');
  h.update(JSON.stringify({ tool, args: c.args.map(n), env: env.map(([k, v]) => [k, n(v)]), cwd: n(cwd) }));
  h.update(`shared ${batch.digest('<host>', hostDigest)}\0`);
  h.update(c.cmdline === undefined ? `cmdline real ${batch.digest('/proc/cmdline')}\0` : `cmdline fake ${JSON.stringify(c.cmdline)}\0`);
  const sys = c.sysModule === undefined ? '/sys/module' : c.sysModule;
  h.update(`sys ${c.sysModule === undefined ? 'real' : 'fake'} ${batch.digest(`<sys>${sys}`, () => pathDigest(sys, fs.existsSync(sys) ? fs.realpathSync(sys) : sys))}\0`);
  for (const w of pathCandidates(c)) {
    const p = path.resolve(cwd, w);
    h.update(`path ${n(w)} -> ${n(p)} ${batch.digest(p)}\0`);
  }
  return { key: h.digest('hex'), dirs };
}
