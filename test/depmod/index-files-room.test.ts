// index-files.ts on a full disk. The files a run replaces are let go on the thread pool
// (src/file/replace-file.ts), so their room comes back a moment after kmod's would: a file that finds
// the disk full while they are still held is written again once they are let go, and a disk that
// stays full gets kmod's message and status, once. binary-os is wrapped: the old files' closes come
// back only once released (after a failed write, or between tests), and a chosen file's temporary file
// finds the disk full.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeEach, describe, expect, it, vi } from 'vitest';

const disk = vi.hoisted(() => ({
  /** a file name (modules.alias) whose temporary file's writes fail; when: always, or while old files are held */
  full: undefined as string | undefined,
  whileHeld: true,
  /** which call finds it full: the temporary file's writes (no blocks), or its creation (no inodes) */
  at: 'write' as 'write' | 'open',
  /** write failures given */
  failures: 0,
  /** descriptors opened by depmod, by path */
  paths: new Map<number, string>(),
  /** replace-file.ts' count of old files held (set once it is loaded: it imports the mocked module) */
  held: (): number => 0,
  /** the callbacks of the old files' closes, held back until `releasing` (a write has failed; between tests) */
  closed: [] as (() => void)[],
  releasing: false,
  /** gives the held-back callbacks, on a later turn, and the later ones as they come */
  release(): void {
    disk.releasing = true;
    const done = disk.closed.splice(0);
    setTimeout(() => done.forEach((f) => f()), 5);
  },
}));

/** whether `p`, a temporary file of disk.full, finds the disk full now (counted) */
function isFull(p: string): boolean {
  const tmp = path.basename(p);
  const full = tmp.replace(/\.\d+\.\d+\.\d+$/, '') === disk.full && tmp !== disk.full && (!disk.whileHeld || disk.held() > 0);
  if (full) {
    disk.failures++;
    disk.release();
  }
  return full;
}

vi.mock('../../src/file/binary-os', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/file/binary-os')>();
  return {
    ...real,
    openSync: (p: string, ...rest: Parameters<typeof real.openSync> extends [unknown, ...infer R] ? R : never) => {
      if (disk.at === 'open' && isFull(String(p))) throw Object.assign(new Error('ENOSPC: no space left on device, open'), { code: 'ENOSPC', errno: -28, syscall: 'open' });
      const fd = real.openSync(p, ...rest);
      disk.paths.set(fd, String(p));
      return fd;
    },
    writeSync: (fd: number, ...rest: unknown[]) => {
      if (disk.at === 'write' && isFull(disk.paths.get(fd) ?? '')) {
        throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' });
      }
      return (real.writeSync as (...a: unknown[]) => number)(fd, ...rest);
    },
    // the old files' closes come back only when released: held while the next files are written
    close: (fd: number, done: (err: NodeJS.ErrnoException | null) => void) => real.close(fd, (err) => (disk.releasing ? done(err) : disk.closed.push(() => done(err)))),
  };
});

const { depmod, DepmodFailed } = await import('../../src/depmod/depmod');
const { replacedFilesReleasing, replacedFilesReleased } = await import('../../src/file/replace-file');
disk.held = replacedFilesReleasing;
const { buildTree, snapshot, differingFiles, temporaryFiles, SYN_KVER } = await import('./support');

const tree = buildTree('room', [
  { rel: 'kernel/lib/core.ko', exports: ['core_a'], modinfo: [['alias', 'core-alias']] },
  { rel: 'kernel/fs/blk.ko', imports: ['core_a'], modinfo: [['alias', 'devname:blk0'], ['alias', 'block-major-8-0']] },
]);

async function run(outdir: string): Promise<{ messages: string[]; error?: unknown }> {
  const messages: string[] = [];
  try {
    await depmod({ kernelVersion: SYN_KVER, basedir: tree.root, outdir, configPaths: ['/dev/null'], log: (_p, m) => messages.push(m), threads: 0, scanCache: false });
    return { messages };
  } catch (error) {
    return { messages, error };
  }
}

const outputOf = (outdir: string): string => path.join(outdir, 'lib/modules', SYN_KVER);

beforeEach(async () => {
  disk.release();
  await replacedFilesReleased();
  disk.releasing = false;
  disk.full = undefined;
  disk.at = 'write';
  disk.failures = 0;
});

describe('a full disk while replaced files are let go', () => {
  // the files of a run with room everywhere
  const good = path.join(tree.root, 'good');
  it('makes the reference files', async () => {
    expect(await run(good)).toEqual({ messages: [] });
  });

  it('writes the file again once the old files are let go: the same files, nothing said', async () => {
    const out = path.join(tree.root, 'retried');
    expect(await run(out)).toEqual({ messages: [] });
    disk.full = 'modules.alias';
    disk.whileHeld = true;
    expect(await run(out)).toEqual({ messages: [] });
    expect(disk.failures).toBe(1);
    expect(differingFiles(snapshot(outputOf(good)), snapshot(outputOf(out)))).toEqual([]);
    expect(temporaryFiles(outputOf(out))).toEqual([]);
  });

  it('the same where no inode is left for the temporary file', async () => {
    const out = path.join(tree.root, 'no-inode');
    expect(await run(out)).toEqual({ messages: [] });
    disk.full = 'modules.symbols';
    disk.at = 'open';
    disk.whileHeld = true;
    expect(await run(out)).toEqual({ messages: [] });
    expect(disk.failures).toBe(1);
    expect(differingFiles(snapshot(outputOf(good)), snapshot(outputOf(out)))).toEqual([]);
  });

  it('a disk that stays full: kmod message, once, and the run fails', async () => {
    const out = path.join(tree.root, 'full');
    expect(await run(out)).toEqual({ messages: [] });
    disk.full = 'modules.alias';
    disk.whileHeld = false;
    const r = await run(out);
    expect(disk.failures).toBe(2);
    expect(r.messages).toEqual(["Could not create index 'modules.alias'. Output is truncated: No space left on device\n"]);
    expect(r.error).toBeInstanceOf(DepmodFailed);
    expect(temporaryFiles(outputOf(out))).toEqual([]);
  });

  it('with nothing replaced, the first failure is final', async () => {
    const out = path.join(tree.root, 'fresh');
    disk.full = 'modules.alias';
    disk.whileHeld = false;
    const r = await run(out);
    expect(disk.failures).toBe(1);
    expect(r.messages).toEqual(["Could not create index 'modules.alias'. Output is truncated: No space left on device\n"]);
    expect(r.error).toBeInstanceOf(DepmodFailed);
    expect(fs.existsSync(path.join(outputOf(out), 'modules.dep'))).toBe(true);
  });
});
