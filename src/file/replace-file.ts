// A new file renamed over an old one, without the calling thread paying for the old one's deletion.
// When rename() drops the last name of the old file, the kernel frees its page cache and its blocks
// there and then, and waits for any writeback of it still running: ~0.2 ms for a small file and
// ~1 ms a megabyte on ext4, and several milliseconds for files written by a run a moment before.
// Holding the old file open across the rename leaves that work to the last close, which is done on
// libuv's thread pool while the caller goes on. The new file and its rename are unchanged (ext4 still
// starts writing the new file's data at the rename, which is what keeps a replaced file whole after
// a crash), and so is every name a reader sees.
//
// Only on local file systems that free an unlinked file at its last close and say nothing of it. An NFS
// client keeps an open file that loses its name as a ".nfsXXXX" file in the directory until it is
// closed, and FUSE's library as ".fuse_hiddenXXXX", at the cost of more round trips: there the rename
// frees the old file itself, as before.
import * as fs from './binary-os';

/** statfs f_type of the file systems where an old file is held across its replacement (linux/magic.h) */
const LOCAL_FILE_SYSTEMS = new Set([
  0xef53, // ext2, ext3, ext4
  0x58465342, // xfs
  0x9123683e, // btrfs
  0x01021994, // tmpfs
  0x858458f6, // ramfs
  0xf2f52010, // f2fs
  0x2fc12fc1, // zfs
  0xca451a4e, // bcachefs
  0x794c7630, // overlayfs (container image builds)
]);

/** directories already asked about: whether old files in them are held */
const holdsIn = new Map<string, boolean>();

function directoryOf(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash < 0 ? '.' : slash === 0 ? '/' : path.slice(0, slash);
}

function holdsOldFilesIn(dir: string): boolean {
  let holds = holdsIn.get(dir);
  if (holds === undefined) {
    try {
      holds = LOCAL_FILE_SYSTEMS.has(fs.statfsSync(dir).type);
    } catch {
      holds = false;
    }
    holdsIn.set(dir, holds);
  }
  return holds;
}

/** old files whose closing on the thread pool has not finished, and who waits for them */
let releasing = 0;
let waiting: (() => void)[] = [];

/**
 * renameSync(from, to), throwing what it throws; a regular file at `to` on a local file system is let go
 * on the thread pool. Anything else there (a symbolic link, a FIFO, a device, a directory) is left to
 * the rename.
 */
export function renameReplacing(from: string, to: string): void {
  const old = holdsOldFilesIn(directoryOf(to)) ? holdRegularFile(to) : undefined;
  try {
    fs.renameSync(from, to);
  } catch (err) {
    if (old !== undefined) fs.closeSync(old);
    throw err;
  }
  if (old === undefined) return;
  releasing++;
  fs.close(old, () => {
    // (a close that fails has still released the descriptor: nothing to report)
    if (--releasing > 0) return;
    const done = waiting;
    waiting = [];
    for (const resolve of done) resolve();
  });
}

/** how many replaced files are still being let go */
export function replacedFilesReleasing(): number {
  return releasing;
}

/** resolves once every replaced file is let go (their blocks free again) */
export function replacedFilesReleased(): Promise<void> {
  return releasing === 0 ? Promise.resolve() : new Promise((resolve) => waiting.push(resolve));
}

/** whether a failed write or create of a file found its file system full (blocks or inodes, or a quota) */
export function noRoom(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

/** a descriptor of the regular file at `path`, opened without side effects, or undefined */
function holdRegularFile(path: string): number | undefined {
  try {
    if (fs.lstatSync(path, { throwIfNoEntry: false })?.isFile() !== true) return undefined;
    // (O_NONBLOCK and O_NOFOLLOW: should something else take the name meanwhile, the open neither
    // waits for a FIFO's writer nor follows a link)
    return fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch {
    // unreadable (mode 000 as another user): the rename frees it, as before
    return undefined;
  }
}
