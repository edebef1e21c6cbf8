// The lock of the simulated kernel's state directory. Node has no flock(), and the native addon may be
// absent, so the lock is a file created atomically with its whole content already in it (written to a
// private temp file, then link()ed into place: link fails if the lock exists and never leaves an empty
// lock). The content identifies the holder beyond its pid: "<pid> <start time> <comm> <boot id>", the
// start time being field 22 of /proc/<pid>/stat and the boot id /proc/sys/kernel/random/boot_id. Pid,
// start time and boot id name one process for good, whatever Node binary or program runs kmodts. A lock
// whose holder is not that same process, still running (pid reused, process gone, another boot, empty
// or foreign content), is taken over at once; a live holder is waited for, within a bound. Locks of
// the older three-field form (no boot id) are judged as before: the command must be one that runs kmodts.
import * as fs from '../../file/binary-os';
import * as path from 'node:path';
import { SimStateError } from '../../errors';
import { errnoOf, strerror } from '../../errno';

/** How long a lock held by a live kmodts process is waited for, by default. */
export const LOCK_WAIT_MS = 30_000;

/** The holder a lock file names. */
export interface LockHolder {
  pid: number;
  /** process start time in clock ticks since boot (/proc/<pid>/stat field 22) */
  start: string;
  comm: string;
  /** /proc/sys/kernel/random/boot_id when the holder wrote it (older locks have none) */
  boot?: string;
}

let bootId: string | null | undefined;
/** This boot's id, null where the kernel does not offer one. */
export function currentBootId(): string | null {
  if (bootId === undefined) {
    try {
      const id = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'latin1').trim();
      bootId = /^[0-9a-f-]{1,64}$/.test(id) ? id : null;
    } catch {
      bootId = null;
    }
  }
  return bootId;
}

/** pid, start time and command name of a process from /proc, undefined when it does not exist. */
export function processIdentity(pid: number | 'self'): LockHolder | undefined {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split at the last ')'
  const open = stat.indexOf('(');
  const close = stat.lastIndexOf(')');
  if (open < 0 || close < open) return undefined;
  const rest = stat.slice(close + 2).split(' ');
  // rest[0] is field 3 (state): field 22 is rest[19]
  const start = rest[19];
  if (start === undefined || !/^\d+$/.test(start)) return undefined;
  return { pid: Number.parseInt(stat, 10), start, comm: stat.slice(open + 1, close) };
}

export function formatHolder(h: LockHolder): string {
  return `${h.pid} ${h.start} ${h.comm.replace(/\s/g, '_')}${h.boot === undefined ? '' : ` ${h.boot}`}\n`;
}

/** The holder named by a lock file's text, undefined when the text names none (empty, damaged). */
export function parseHolder(text: string): LockHolder | undefined {
  const m = /^([1-9]\d{0,9}) (\d{1,20}) (\S{1,64})(?: ([0-9a-f-]{1,64}))?\n$/.exec(text);
  if (!m) return undefined;
  const holder: LockHolder = { pid: Number(m[1]), start: m[2], comm: m[3] };
  if (m[4] !== undefined) holder.boot = m[4];
  return holder;
}

/** command names of processes that take the lock: Node.js under its usual names, or kmodts itself */
const LOCKER_COMM = /^(node|nodejs|node\d+|kmodts|modprobe|insmod|rmmod|lsmod|modinfo|depmod)$/;

/**
 * Whether the process a lock names still runs and may hold it: same pid, same start time, same command,
 * and either the same boot (a lock written by that very process) or, for an older lock without a boot
 * id, a command that runs kmodts (a lock naming, say, init is nobody's).
 */
export function holderAlive(h: LockHolder): boolean {
  const now = processIdentity(h.pid);
  if (now) {
    const comm = now.comm.replace(/\s/g, '_');
    if (now.start !== h.start || comm !== h.comm) return false;
    if (h.boot !== undefined) return h.boot === currentBootId();
    return LOCKER_COMM.test(comm) || comm === ownComm();
  }
  if (fs.existsSync('/proc/self/stat')) return false;
  // no /proc: the pid is all there is to go on
  return pidAlive(h.pid);
}

/** Whether a process with this pid exists. */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

let own: string | undefined;
function ownComm(): string {
  own ??= processIdentity('self')?.comm.replace(/\s/g, '_') ?? 'node';
  return own;
}

function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Options of acquire(): the bound on waiting, and a hook told once when a wait lasts noticeMs. */
export interface LockWaitOptions {
  /** default LOCK_WAIT_MS */
  waitMs?: number;
  /** default 1000: a wait shorter than this (another command finishing its change) goes untold */
  noticeMs?: number;
  onWait?: (holder: LockHolder) => void;
}

/** An error about a path of the state directory, with the system's reason. */
export function pathError(file: string, doing: string, err: unknown): SimStateError {
  if (err instanceof SimStateError) return err;
  return new SimStateError(file, `cannot ${doing}: ${strerror(errnoOf(err))}`, undefined, { cause: err });
}

/**
 * mkdir -p that always ends: fs.mkdirSync(..., { recursive: true }) spins forever on paths such as
 * /proc/x (mkdir says ENOENT although the parent exists). One attempt per path component.
 */
export function makeDirs(dir: string): void {
  const abs = path.resolve(dir);
  const missing: string[] = [];
  for (let p = abs; ; p = path.dirname(p)) {
    let st: fs.Stats | undefined;
    try {
      st = fs.statSync(p);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') throw pathError(dir, 'use the state directory', err);
    }
    if (st) {
      if (!st.isDirectory()) throw new SimStateError(dir, `cannot use the state directory: ${p} is not a directory`);
      break;
    }
    missing.push(p);
    if (path.dirname(p) === p) break;
  }
  for (let i = missing.length - 1; i >= 0; i--) {
    try {
      fs.mkdirSync(missing[i]);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST' && fs.statSync(missing[i], { throwIfNoEntry: false })?.isDirectory()) continue;
      throw pathError(dir, 'create the state directory', err);
    }
  }
}

/** The lock file of a state directory. */
export class StateLock {
  private readonly me: LockHolder;
  private readonly text: string;

  /** the inode of the lock file this process linked into place, while it holds the lock */
  private heldIno: number | undefined;

  constructor(readonly file: string) {
    this.me = processIdentity('self') ?? { pid: process.pid, start: '0', comm: 'node' };
    this.me.pid = process.pid;
    const boot = currentBootId();
    if (boot !== null) this.me.boot = boot;
    this.text = formatHolder(this.me);
  }

  /** Takes the lock: at once when free or stale, after waiting (bounded) for a live holder. */
  acquire(options: LockWaitOptions = {}): void {
    const waitMs = options.waitMs ?? LOCK_WAIT_MS;
    const tmp = `${this.file}.${process.pid}.tmp`;
    try {
      fs.writeFileSync(tmp, this.text);
    } catch (err) {
      throw pathError(this.file, 'create the lock', err);
    }
    try {
      let deadline: number | undefined;
      let noticeAt: number | undefined;
      for (let attempt = 0; ; attempt++) {
        try {
          fs.linkSync(tmp, this.file);
          this.heldIno = fs.statSync(tmp).ino;
          return;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw pathError(this.file, 'create the lock', err);
        }
        const seen = this.look(this.file);
        if (seen === null) continue; // gone meanwhile: try again at once
        const holder = seen.holder;
        if (holder === undefined || !holderAlive(holder)) {
          this.breakStale(seen);
          if (attempt > 1000) throw new SimStateError(this.file, 'cannot take over the lock (it keeps changing)');
          continue;
        }
        const now = Date.now();
        if (deadline === undefined) {
          deadline = now + waitMs;
          noticeAt = now + (options.noticeMs ?? 1000);
        }
        if (noticeAt !== undefined && now >= noticeAt) {
          noticeAt = undefined;
          options.onWait?.(holder);
        }
        if (Date.now() >= deadline) {
          throw new SimStateError(this.file, `the simulated kernel's state is locked by process ${holder.pid} (${holder.comm}); gave up after ${Math.round(waitMs / 1000)} s`);
        }
        sleepMs(Math.min(2 + attempt, 25));
      }
    } finally {
      try {
        fs.unlinkSync(tmp);
      } catch {
        /* the directory went away: nothing to tidy */
      }
    }
  }

  /** Gives the lock back, if it is still ours (somebody may have judged us dead and taken it). */
  release(): void {
    this.heldIno = undefined;
    try {
      if (fs.readFileSync(this.file, 'latin1') === this.text) fs.unlinkSync(this.file);
    } catch {
      /* already gone */
    }
  }

  /**
   * Throws unless the lock file is still the one this process linked into place. Called before each
   * write of the state: a lock taken over (judged stale by a process that raced with its release and
   * a new holder) must stop the change rather than let two writers interleave and lose one's records.
   */
  assertHeld(): void {
    const seen = this.heldIno === undefined ? null : this.look(this.file);
    if (seen === null || seen.ino !== this.heldIno || seen.text !== this.text) {
      throw new SimStateError(this.file, 'the lock was taken over by another process: the change was not made');
    }
  }

  /**
   * A lock file's text, inode and holder: null when the file is gone; holder undefined when the text
   * names nobody valid.
   */
  private look(file: string): { text: string; ino: number; holder?: LockHolder } | null {
    let text: string;
    let ino: number;
    try {
      const fd = fs.openSync(file, 'r');
      try {
        const buf = Buffer.alloc(256);
        const n = fs.readSync(fd, buf, 0, buf.length, 0);
        text = buf.toString('latin1', 0, n);
        ino = fs.fstatSync(fd).ino;
      } finally {
        fs.closeSync(fd);
      }
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return null;
      // a lock that cannot be read (a directory, say) names no live holder; removing it may still fail
      if (code === 'EISDIR') throw new SimStateError(file, 'cannot take the lock: it is a directory');
      throw pathError(file, 'read the lock', err);
    }
    return { text, ino, holder: parseHolder(text) };
  }

  /** whether `file` is the very lock file `seen` was (same inode, same text) */
  private isStill(file: string, seen: { text: string; ino: number }): boolean {
    const now = this.look(file);
    return now !== null && now.ino === seen.ino && now.text === seen.text;
  }

  /**
   * Removes a stale lock. It must still be the file judged stale (its holder may have released it and
   * another process taken the lock since the look); it is then moved aside under a name of our own, so
   * that of two processes breaking it at once only one removes it. If what was moved is not the file
   * judged stale after all (replaced between the check and the move), it is put back; should a third
   * process have taken the lock in that instant, the moved holder's next write finds the lock not its
   * own (assertHeld) and stops.
   */
  private breakStale(seen: { text: string; ino: number }): void {
    if (!this.isStill(this.file, seen)) return;
    const aside = `${this.file}.stale.${process.pid}`;
    try {
      fs.renameSync(this.file, aside);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw pathError(this.file, 'take over the stale lock', err);
    }
    if (!this.isStill(aside, seen)) {
      try {
        fs.linkSync(aside, this.file);
      } catch {
        /* a third process took it meanwhile: see assertHeld */
      }
    }
    try {
      fs.rmSync(aside, { force: true });
    } catch {
      /* nothing more to do */
    }
  }
}
