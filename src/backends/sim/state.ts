// Persistent state of the simulated kernel, shared by every kmodts invocation that names the same state
// directory. Layout:
//   state.jsonl  a journal: a snapshot line, then one line per change (module loaded or removed, taint);
//                appended with one write under the lock, so a reader sees whole lines only, and rewritten
//                (temp file + rename) when it grows, so a reader sees the old or the new file, never a mix
//   kmsg         the kernel log, one record a line as /dev/kmsg shows it: "level,seq,usec,-;text"
//   lock         held (O_EXCL create, holder's pid inside) by whoever changes the state
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { KmodError, fromSystemError } from '../../errors';
import { EAGAIN } from '../../errno';
import type { KernelSpec } from './kernel-model';
import { readBinaryString } from '../../file/read-text';

/** One exported symbol of a loaded module (short keys: the journal holds thousands of them). */
export interface ModuleExport {
  n: string;
  /** CRC from __kcrctab; absent when the module has none */
  c?: number;
  /** 1 for EXPORT_SYMBOL_GPL */
  g?: 1;
  /** namespace, absent when none */
  ns?: string;
  /** address */
  v: number;
}

export interface ModuleParamState {
  perm: number;
  value?: string;
}

export type ModuleStateName = 'live' | 'coming' | 'going';

/** A module in the simulated kernel (struct module, as far as userspace can see it). */
export interface ModuleRecord {
  name: string;
  state: ModuleStateName;
  /** modules using this one (source_list), newest first */
  users: string[];
  /** modules this one uses (target_list) */
  uses: string[];
  /** /proc/modules size, coresize and initsize */
  size: number;
  coresize: number;
  initsize: number;
  /** module taint bits (TAINT_* numbers) */
  taints: number;
  /** base of MOD_TEXT (0 when the module has no text) */
  text: number;
  /** allocations [base, size], page-aligned */
  mem: [number, number][];
  /** per-cpu area [base, size], when the module has one */
  percpu?: [number, number];
  init: boolean;
  exit: boolean;
  exports: ModuleExport[];
  version?: string;
  srcversion?: string;
  params?: Record<string, ModuleParamState>;
  /** sections/<name> addresses */
  sections?: Record<string, number>;
  file?: string;
}

/** Kernel-wide facts that change with loads: taints, once-per-boot messages, log sequence. */
export interface KernelGlobals {
  taint: number;
  once: string[];
  /** debug_locks still on (the first "lockdep unreliable" taint turns it off, with a message) */
  debugLocks: boolean;
  lastUnloaded?: string;
  /** next kernel log sequence number */
  seq: number;
}

export interface KernelStateData {
  v: 1;
  spec: KernelSpec;
  /** boot time, ms since the epoch */
  boot: number;
  g: KernelGlobals;
  /** the modules list, newest first */
  modules: ModuleRecord[];
}

type Op =
  | { op: 'snap'; gen?: string; s: KernelStateData }
  | { op: 'load'; m: ModuleRecord; g: KernelGlobals }
  | { op: 'unload'; name: string; g: KernelGlobals }
  | { op: 'globals'; g: KernelGlobals }
  | { op: 'spec'; spec: KernelSpec };

/** An exported symbol of a loaded module with its owner. */
export interface ModuleSymbolRef {
  owner: ModuleRecord;
  sym: ModuleExport;
}

/** The in-memory view of the state, with indexes. */
export class KernelState {
  data: KernelStateData;
  byName = new Map<string, ModuleRecord>();
  /** exports of loaded modules (the kernel refuses duplicates, so one owner per name) */
  symbols = new Map<string, ModuleSymbolRef>();

  constructor(data: KernelStateData) {
    this.data = data;
    for (const m of data.modules) this.index(m);
  }

  private index(m: ModuleRecord): void {
    this.byName.set(m.name, m);
    for (const e of m.exports) if (!this.symbols.has(e.n)) this.symbols.set(e.n, { owner: m, sym: e });
  }

  apply(op: Op): void {
    switch (op.op) {
      case 'snap':
        this.data = op.s;
        this.byName.clear();
        this.symbols.clear();
        for (const m of op.s.modules) this.index(m);
        return;
      case 'load': {
        const m = op.m;
        this.data.modules.unshift(m);
        this.index(m);
        for (const t of m.uses) this.byName.get(t)?.users.unshift(m.name);
        this.data.g = op.g;
        return;
      }
      case 'unload': {
        const m = this.byName.get(op.name);
        if (m) {
          this.data.modules = this.data.modules.filter((x) => x !== m);
          this.byName.delete(m.name);
          for (const e of m.exports) if (this.symbols.get(e.n)?.owner === m) this.symbols.delete(e.n);
          for (const t of m.uses) {
            const target = this.byName.get(t);
            if (target) target.users = target.users.filter((u) => u !== m.name);
          }
        }
        this.data.g = op.g;
        return;
      }
      case 'globals':
        this.data.g = op.g;
        return;
      case 'spec':
        this.data.spec = op.spec;
        return;
    }
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isRecord(m: unknown): m is ModuleRecord {
  return isObject(m) && typeof m.name === 'string' && Array.isArray(m.users) && Array.isArray(m.uses) && Array.isArray(m.exports) && Array.isArray(m.mem);
}

function isGlobals(g: unknown): g is KernelGlobals {
  return isObject(g) && typeof g.taint === 'number' && Array.isArray(g.once) && typeof g.seq === 'number';
}

function isStateData(s: unknown): s is KernelStateData {
  return isObject(s) && isObject(s.spec) && isGlobals(s.g) && Array.isArray(s.modules) && s.modules.every(isRecord);
}

function isOp(op: Op): boolean {
  switch (op.op) {
    case 'load':
      return isRecord(op.m) && isGlobals(op.g);
    case 'unload':
      return typeof op.name === 'string' && isGlobals(op.g);
    case 'globals':
      return isGlobals(op.g);
    case 'spec':
      return isObject(op.spec);
    default:
      return false;
  }
}

/** Where the state lives when nothing says: $XDG_STATE_HOME/kmodts/sim, else ~/.local/state/kmodts/sim. */
export function defaultStateDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_STATE_HOME && path.isAbsolute(env.XDG_STATE_HOME) ? env.XDG_STATE_HOME : path.join(env.HOME || os.homedir(), '.local/state');
  return path.join(base, 'kmodts', 'sim');
}

function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const COMPACT_AFTER = 512;
/** the snapshot line starts {"op":"snap","gen":"<16 hex digits>" */
const HEAD_BYTES = 40;
const KMSG_LIMIT = 4 << 20;

/** The state directory: journal reading (incremental), locking, atomic changes and the kernel log. */
export class SimStore {
  readonly dir: string;
  private readonly journal: string;
  private readonly kmsgFile: string;
  private readonly lockFile: string;
  private state: KernelState | undefined;
  private ino = -1;
  private offset = 0;
  private head = '';
  private opsSinceSnap = 0;
  private locked = false;

  constructor(dir: string) {
    this.dir = dir;
    this.journal = path.join(dir, 'state.jsonl');
    this.kmsgFile = path.join(dir, 'kmsg');
    this.lockFile = path.join(dir, 'lock');
  }

  /** The current state (re-read if another process changed it), or undefined before the first boot. */
  current(): KernelState | undefined {
    this.refresh();
    return this.state;
  }

  private refresh(): void {
    let fd: number;
    try {
      fd = fs.openSync(this.journal, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        this.state = undefined;
        this.ino = -1;
        this.offset = 0;
        return;
      }
      throw fromSystemError(err, this.journal);
    }
    try {
      const st = fs.fstatSync(fd);
      // a compaction replaces the file: a new inode, or (inode numbers being reused) a new generation
      // id at the start of its snapshot line
      const head = Buffer.alloc(HEAD_BYTES);
      const headLen = fs.readSync(fd, head, 0, HEAD_BYTES, 0);
      const headText = head.toString('latin1', 0, headLen);
      if (st.ino !== this.ino || st.size < this.offset || headText !== this.head) {
        this.head = headText;
        this.state = undefined;
        this.offset = 0;
        this.opsSinceSnap = 0;
        this.ino = st.ino;
      }
      if (st.size === this.offset) return;
      const buf = Buffer.allocUnsafe(st.size - this.offset);
      let got = 0;
      while (got < buf.length) {
        const n = fs.readSync(fd, buf, got, buf.length - got, this.offset + got);
        if (n === 0) break;
        got += n;
      }
      const end = buf.lastIndexOf(10, got - 1);
      if (end < 0) return;
      const text = buf.toString('utf8', 0, end);
      for (const line of text.split('\n')) {
        if (line === '') continue;
        let op: Op;
        try {
          op = JSON.parse(line) as Op;
        } catch {
          // a line torn by a crash: the change it carried never happened
          continue;
        }
        try {
          if (op.op === 'snap') {
            if (!isStateData(op.s)) continue;
            this.state = new KernelState(op.s);
            this.opsSinceSnap = 0;
          } else if (this.state && isOp(op)) {
            this.state.apply(op);
            this.opsSinceSnap++;
          }
        } catch {
          // a line that does not describe a change (edited or damaged by hand): skipped
        }
      }
      this.offset += end + 1;
    } finally {
      fs.closeSync(fd);
    }
  }

  /** Runs fn holding the state lock, with the state freshly read. */
  withLock<T>(fn: () => T): T {
    if (this.locked) return fn();
    fs.mkdirSync(this.dir, { recursive: true });
    const deadline = Date.now() + 60_000;
    for (let attempt = 0; ; attempt++) {
      try {
        const fd = fs.openSync(this.lockFile, 'wx');
        fs.writeSync(fd, `${process.pid}\n`);
        fs.closeSync(fd);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw fromSystemError(err, this.lockFile);
      }
      this.breakStaleLock();
      if (Date.now() > deadline) throw new KmodError(EAGAIN, `${this.lockFile}: the simulated kernel's state is locked by another process`, { file: this.lockFile });
      sleepMs(Math.min(1 + attempt, 20));
    }
    this.locked = true;
    try {
      this.refresh();
      this.repairTail();
      return fn();
    } finally {
      this.locked = false;
      try {
        fs.unlinkSync(this.lockFile);
      } catch {
        /* already gone */
      }
    }
  }

  /** A lock whose holder died (crash, kill -9) is removed; an empty one only after a while. */
  private breakStaleLock(): void {
    let text: string;
    let mtime: number;
    try {
      text = readBinaryString(this.lockFile);
      mtime = fs.statSync(this.lockFile).mtimeMs;
    } catch {
      return;
    }
    const pid = Number.parseInt(text, 10);
    const stale = Number.isFinite(pid) && pid > 0 ? !pidAlive(pid) : Date.now() - mtime > 10_000;
    if (!stale) return;
    // move it aside first, so that two processes breaking it at once do not remove a fresh lock
    const aside = `${this.lockFile}.stale.${process.pid}`;
    try {
      fs.renameSync(this.lockFile, aside);
      const again = Number.parseInt(readBinaryString(aside), 10);
      if (again !== pid) fs.renameSync(aside, this.lockFile);
      else fs.unlinkSync(aside);
    } catch {
      /* somebody else did it */
    }
  }

  /** Under the lock: drop a torn last line left by a crashed writer, so appends start on a line. */
  private repairTail(): void {
    try {
      const st = fs.statSync(this.journal);
      if (st.size > this.offset && st.ino === this.ino) fs.truncateSync(this.journal, this.offset);
    } catch {
      /* no journal yet */
    }
  }

  /** Writes a whole new state (boot): temp file + rename. Must hold the lock. */
  boot(data: KernelStateData, logLines: string[] = []): KernelState {
    this.writeSnapshot(data);
    fs.writeFileSync(this.kmsgFile + '.tmp', logLines.join(''));
    fs.renameSync(this.kmsgFile + '.tmp', this.kmsgFile);
    this.refresh();
    return this.state as KernelState;
  }

  private writeSnapshot(data: KernelStateData): void {
    const tmp = `${this.journal}.${process.pid}.tmp`;
    const gen = require('node:crypto').randomBytes(8).toString('hex') as string;
    fs.writeFileSync(tmp, JSON.stringify({ op: 'snap', gen, s: data }) + '\n');
    fs.renameSync(tmp, this.journal);
  }

  /** Records one change (must hold the lock): kernel log lines first, then the journal line. */
  commit(op: Exclude<Op, { op: 'snap' }>, logLines: string[]): void {
    if (logLines.length > 0) fs.appendFileSync(this.kmsgFile, logLines.join(''));
    fs.appendFileSync(this.journal, JSON.stringify(op) + '\n');
    this.refresh();
    if (this.opsSinceSnap > COMPACT_AFTER && this.state) {
      this.writeSnapshot(this.state.data);
      this.trimKmsg();
      this.refresh();
    }
  }

  private trimKmsg(): void {
    try {
      const st = fs.statSync(this.kmsgFile);
      if (st.size <= KMSG_LIMIT) return;
      const buf = fs.readFileSync(this.kmsgFile);
      let from = buf.length - (KMSG_LIMIT >> 1);
      from = buf.indexOf(10, from) + 1;
      fs.writeFileSync(this.kmsgFile + '.tmp', buf.subarray(from));
      fs.renameSync(this.kmsgFile + '.tmp', this.kmsgFile);
    } catch {
      /* the log is best effort */
    }
  }

  /** The kernel log text as stored ("level,seq,usec,-;text" lines). */
  readKmsg(): string {
    try {
      return fs.readFileSync(this.kmsgFile, 'utf8');
    } catch {
      return '';
    }
  }

  /** dmesg -C: empties the log. */
  clearKmsg(): void {
    this.withLock(() => {
      fs.writeFileSync(this.kmsgFile + '.tmp', '');
      fs.renameSync(this.kmsgFile + '.tmp', this.kmsgFile);
    });
  }
}
