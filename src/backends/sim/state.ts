// Persistent state of the simulated kernel, shared by every kmodts invocation that names the same state
// directory. Layout:
//   state.jsonl  a journal: a snapshot line, then one line per change (module loaded or removed, taint);
//                appended with one write under the lock, and rewritten (temp file + rename) when it grows,
//                so a reader sees the old or the new file, never a mix
//   kmsg         the kernel log, one record a line as /dev/kmsg shows it: "level,seq,usec,-;text"
//   lock         held by whoever changes the state (state-lock.ts)
// Every line read back is validated (state-records.ts). Damage is reported with the file and line and
// the command fails, leaving the files as they are: nothing starts a fresh kernel over a damaged one.
// The one exception is a last line without its newline, which only a writer killed in the middle of an
// append leaves: that change never happened, and the next writer cuts it off. To start afresh, remove
// the directory (documented in kmodts(1)) or call SimStore.reset().
import * as fs from '../../file/binary-os';
import { binaryFromUtf8 } from '../../file/binary-os';
import * as os from 'node:os';
import * as path from 'node:path';
import { SimStateError } from '../../errors';
import type { KernelSpec } from './kernel-model';
import { journalOpProblem, moduleListProblem, type JournalOp, type KernelGlobals, type KernelStateData, type ModuleExport, type ModuleRecord } from './state-records';
import { makeDirs, pathError, pidAlive, StateLock, type LockWaitOptions } from './state-lock';

export type { ModuleExport, ModuleParamState, ModuleStateName, ModuleRecord, KernelGlobals, KernelStateData, JournalOp } from './state-records';

type Op = JournalOp;

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

  /** Why `op` cannot follow this state (a load of a module already there, ...), or undefined. */
  problem(op: Op): string | undefined {
    switch (op.op) {
      case 'snap':
        return 'a snapshot after the first line';
      case 'load': {
        const m = op.m;
        if (this.byName.has(m.name)) return `load of ${m.name}, which is already loaded`;
        if (m.users.length > 0) return `load of ${m.name} with users already`;
        if (new Set(m.uses).size !== m.uses.length) return `load of ${m.name}: a dependency listed twice`;
        const missing = m.uses.find((t) => !this.byName.has(t));
        return missing !== undefined ? `load of ${m.name}, which uses ${missing}, not loaded` : undefined;
      }
      case 'unload': {
        const m = this.byName.get(op.name);
        if (!m) return `unload of ${op.name}, which is not loaded`;
        return m.users.length > 0 ? `unload of ${op.name}, which is used by ${m.users.join(',')}` : undefined;
      }
      default:
        return undefined;
    }
  }

  /** Applies a change that problem() accepts. */
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

/** Where the state lives when nothing says: $XDG_STATE_HOME/kmodts/sim, else ~/.local/state/kmodts/sim. */
export function defaultStateDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_STATE_HOME && path.isAbsolute(env.XDG_STATE_HOME) ? env.XDG_STATE_HOME : path.join(env.HOME || binaryFromUtf8(os.homedir()), '.local/state');
  return path.join(base, 'kmodts', 'sim');
}

const COMPACT_AFTER = 512;
/** the snapshot line starts {"op":"snap","gen":"<16 hex digits>" */
const HEAD_BYTES = 40;
const KMSG_LIMIT = 4 << 20;
/** one kernel log record: "level,seq,usec,flags;text" */
const KMSG_LINE = /^\d+,\d+,\d+,[^;]*;/;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The lines of `bytes` (no trailing newline), refusing bytes that are not UTF-8 with damaged(line index). */
function decodeLines(bytes: Uint8Array, damaged: (lineIndex: number) => Error): string[] {
  try {
    return utf8.decode(bytes).split('\n');
  } catch {
    let line = 0;
    for (let from = 0; from <= bytes.length; line++) {
      let to = bytes.indexOf(10, from);
      if (to < 0) to = bytes.length;
      try {
        utf8.decode(bytes.subarray(from, to));
      } catch {
        throw damaged(line);
      }
      from = to + 1;
    }
    throw damaged(line);
  }
}

export interface SimStoreOptions {
  /** how long to wait for a lock held by another live kmodts process, and what to tell meanwhile */
  lock?: LockWaitOptions;
}

/** The state directory: journal reading (incremental, validated), locking, atomic changes, the kernel log. */
export class SimStore {
  readonly dir: string;
  private readonly journal: string;
  private readonly kmsgFile: string;
  private readonly lock: StateLock;
  private state: KernelState | undefined;
  private ino = -1;
  private offset = 0;
  /** journal lines consumed so far (for line numbers in messages) */
  private lines = 0;
  private head = '';
  private opsSinceSnap = 0;
  private locked = false;

  constructor(
    dir: string,
    private readonly options: SimStoreOptions = {},
  ) {
    this.dir = dir;
    this.journal = path.join(dir, 'state.jsonl');
    this.kmsgFile = path.join(dir, 'kmsg');
    this.lock = new StateLock(path.join(dir, 'lock'));
  }

  /** The current state (re-read if another process changed it), or undefined before the first boot. */
  current(): KernelState | undefined {
    try {
      this.refresh();
    } catch (err) {
      // forget what was read: the next call reads again from the start, and fails again
      this.forget();
      throw err;
    }
    return this.state;
  }

  private forget(): void {
    this.state = undefined;
    this.ino = -1;
    this.offset = 0;
    this.lines = 0;
    this.head = '';
  }

  private refresh(): void {
    let fd: number;
    try {
      fd = fs.openSync(this.journal, 'r');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        this.forget();
        return;
      }
      throw pathError(this.journal, 'read the state', err);
    }
    try {
      this.readNew(fd);
    } catch (err) {
      throw pathError(this.journal, 'read the state', err);
    } finally {
      fs.closeSync(fd);
    }
  }

  /** Reads what was appended since the last read (all of it when the file was replaced). */
  private readNew(fd: number): void {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new SimStateError(this.journal, 'not a regular file');
    // a compaction replaces the file: a new inode, or (inode numbers being reused) a new generation id
    // at the start of its snapshot line
    const head = Buffer.alloc(HEAD_BYTES);
    const headText = head.toString('latin1', 0, fs.readSync(fd, head, 0, HEAD_BYTES, 0));
    if (st.ino !== this.ino || st.size < this.offset || headText !== this.head) {
      this.forget();
      this.head = headText;
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
    if (end < 0) {
      // no whole line yet: a torn append after the snapshot, or a journal without its snapshot line
      if (this.state === undefined) throw new SimStateError(this.journal, 'damaged state: no complete snapshot line (the journal is cut short)', this.lines + 1);
      return;
    }
    const lines = decodeLines(buf.subarray(0, end), (i) => new SimStateError(this.journal, 'damaged state: bytes that are not UTF-8', this.lines + i + 1));
    for (const line of lines) {
      this.replayLine(line, this.lines + 1);
      this.lines++;
    }
    this.offset += end + 1;
  }

  private replayLine(line: string, lineNo: number): void {
    const bad = (what: string): never => {
      throw new SimStateError(this.journal, `damaged state: ${what}`, lineNo);
    };
    let op: Op;
    try {
      op = JSON.parse(line) as Op;
    } catch (err) {
      return bad(`not JSON (${(err as Error).message})`);
    }
    const problem = journalOpProblem(op);
    if (problem) bad(problem);
    if (op.op === 'snap') {
      if (this.state !== undefined || lineNo !== 1) bad('a snapshot after the first line');
      const list = moduleListProblem(op.s.modules);
      if (list) bad(list);
      this.state = new KernelState(op.s);
      this.opsSinceSnap = 0;
      return;
    }
    if (!this.state) return bad(`a ${op.op} record before any snapshot`);
    const conflict = this.state.problem(op);
    if (conflict) bad(conflict);
    this.state.apply(op);
    this.opsSinceSnap++;
  }

  /** Runs fn holding the state lock, with the state freshly read (and valid). */
  withLock<T>(fn: () => T): T {
    if (this.locked) return fn();
    makeDirs(this.dir);
    this.lock.acquire(this.options.lock);
    this.locked = true;
    try {
      this.current();
      this.repairTail();
      this.sweepLeftovers();
      return fn();
    } finally {
      this.locked = false;
      this.lock.release();
    }
  }

  /** Under the lock: cut a torn last line left by a killed writer, so appends start on a line. */
  private repairTail(): void {
    let st: fs.Stats;
    try {
      st = fs.statSync(this.journal);
    } catch {
      return; // no journal yet
    }
    if (st.size > this.offset && st.ino === this.ino) {
      this.lock.assertHeld();
      try {
        fs.truncateSync(this.journal, this.offset);
      } catch (err) {
        throw pathError(this.journal, 'cut the torn last line', err);
      }
    }
  }

  /**
   * Under the lock: removes the temp files of writers killed before their rename. The state's own temp
   * files can only be the lock holder's, so any other is a dead writer's; a lock temp file belongs to a
   * process waiting for the lock, so it goes only when that process is gone.
   */
  private sweepLeftovers(): void {
    let names: string[];
    try {
      names = fs.readdirSync(this.dir);
    } catch {
      return;
    }
    for (const name of names) {
      const m = /^(state\.jsonl|kmsg|lock)\.(\d+)\.tmp$|^lock\.stale\.(\d+)$/.exec(name);
      if (!m) continue;
      const pid = Number(m[2] ?? m[3]);
      if (pid === process.pid || (m[1] === 'lock' || m[3] !== undefined ? pidAlive(pid) : false)) continue;
      fs.rmSync(path.join(this.dir, name), { force: true });
    }
  }

  /** Writes a whole new state (boot): temp file + rename. Must hold the lock. */
  boot(data: KernelStateData, logLines: string[] = []): KernelState {
    this.writeSnapshot(data);
    this.replaceFile(this.kmsgFile, logLines.join(''));
    this.current();
    return this.state as KernelState;
  }

  /** Writes `text` to a temp file, flushed to disk, and renames it over `file`. */
  private replaceFile(file: string, text: string): void {
    this.lock.assertHeld();
    const tmp = `${file}.${process.pid}.tmp`;
    try {
      const fd = fs.openSync(tmp, 'w');
      try {
        fs.writeFileSync(fd, text);
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      fs.renameSync(tmp, file);
    } catch (err) {
      fs.rmSync(tmp, { force: true });
      throw pathError(file, 'write the state', err);
    }
  }

  private writeSnapshot(data: KernelStateData): void {
    const gen = (require('node:crypto') as typeof import('node:crypto')).randomBytes(8).toString('hex');
    this.replaceFile(this.journal, JSON.stringify({ op: 'snap', gen, s: data }) + '\n');
  }

  private append(file: string, text: string): void {
    this.lock.assertHeld();
    try {
      fs.appendFileSync(file, text);
    } catch (err) {
      throw pathError(file, 'write the state', err);
    }
  }

  /** Records one change (must hold the lock): kernel log lines first, then the journal line. */
  commit(op: Exclude<Op, { op: 'snap' }>, logLines: string[]): void {
    if (logLines.length > 0) this.append(this.kmsgFile, logLines.join(''));
    this.append(this.journal, JSON.stringify(op) + '\n');
    this.current();
    if (this.opsSinceSnap > COMPACT_AFTER && this.state) {
      this.writeSnapshot(this.state.data);
      this.trimKmsg();
      this.current();
    }
  }

  private trimKmsg(): void {
    let buf: Buffer;
    try {
      if (fs.statSync(this.kmsgFile).size <= KMSG_LIMIT) return;
      buf = fs.readFileSync(this.kmsgFile);
    } catch (err) {
      throw pathError(this.kmsgFile, 'read the kernel log', err);
    }
    const from = buf.indexOf(10, buf.length - (KMSG_LIMIT >> 1)) + 1;
    this.replaceFile(this.kmsgFile, buf.subarray(from).toString('utf8'));
  }

  /** The kernel log text as stored ("level,seq,usec,-;text" lines), each line checked. */
  readKmsg(): string {
    let buf: Buffer;
    try {
      buf = fs.readFileSync(this.kmsgFile);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
      throw pathError(this.kmsgFile, 'read the kernel log', err);
    }
    // a last line without its newline is an append cut short: not part of the log yet
    const end = buf.lastIndexOf(10) + 1;
    const lines = decodeLines(buf.subarray(0, Math.max(0, end - 1)), (i) => new SimStateError(this.kmsgFile, 'damaged kernel log: bytes that are not UTF-8', i + 1));
    if (end === 0) return '';
    lines.forEach((line, i) => {
      if (!KMSG_LINE.test(line)) throw new SimStateError(this.kmsgFile, 'damaged kernel log: not a "level,seq,usec,flags;text" record', i + 1);
    });
    const whole = lines.join('\n') + '\n';
    return whole;
  }

  /** dmesg -C: empties the log. */
  clearKmsg(): void {
    this.withLock(() => this.replaceFile(this.kmsgFile, ''));
  }

  /**
   * Forgets the simulated kernel (as `rm -r` of the directory would), damaged or not: the next change
   * boots a new one. Takes the lock, but reads nothing.
   */
  reset(): void {
    makeDirs(this.dir);
    this.lock.acquire(this.options.lock);
    try {
      this.lock.assertHeld();
      for (const f of [this.journal, this.kmsgFile]) {
        try {
          fs.rmSync(f, { force: true });
        } catch (err) {
          throw pathError(f, 'remove the state', err);
        }
      }
      this.forget();
    } finally {
      this.lock.release();
    }
  }
}
