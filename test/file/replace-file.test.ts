// src/file/replace-file.ts: a file renamed over another, the other let go on the thread pool.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';

/** statfs f_type the wrapped binary-os reports for paths under a directory (else the real one) */
const fsTypes = vi.hoisted(() => new Map<string, number>());
vi.mock('../../src/file/binary-os', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/file/binary-os')>();
  return {
    ...real,
    statfsSync: (p: string) => {
      const forced = [...fsTypes].find(([dir]) => p === dir || p.startsWith(`${dir}/`));
      return forced === undefined ? real.statfsSync(p) : { ...real.statfsSync(p), type: forced[1] };
    },
  };
});
import { noRoom, renameReplacing, replacedFilesReleased, replacedFilesReleasing } from '../../src/file/replace-file';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-replace-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** this process' descriptors that name a deleted file under `dir` */
function heldDeleted(): string[] {
  const out: string[] = [];
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try {
      const target = fs.readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(dir) && target.endsWith(' (deleted)')) out.push(target);
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

const openDescriptors = (): number => fs.readdirSync('/proc/self/fd').length;

describe('renameReplacing', () => {
  it('replaces a regular file and lets the old one go on the thread pool', async () => {
    const to = path.join(dir, 'modules.dep');
    fs.writeFileSync(to, 'old\n'.repeat(1000));
    const from = path.join(dir, 'modules.dep.tmp');
    fs.writeFileSync(from, 'new\n');
    renameReplacing(from, to);
    expect(fs.readFileSync(to, 'latin1')).toBe('new\n');
    expect(fs.existsSync(from)).toBe(false);
    // the old file was held across the rename: its close is still to come back
    expect(replacedFilesReleasing()).toBe(1);
    await replacedFilesReleased();
    expect(replacedFilesReleasing()).toBe(0);
    expect(heldDeleted()).toEqual([]);
  });

  it('waits for every old file, and answers at once when there is none', async () => {
    const names = ['a', 'b', 'c'].map((n) => path.join(dir, `many-${n}`));
    for (const n of names) fs.writeFileSync(n, 'old');
    for (const n of names) {
      fs.writeFileSync(`${n}.tmp`, 'new');
      renameReplacing(`${n}.tmp`, n);
    }
    expect(replacedFilesReleasing()).toBe(3);
    await replacedFilesReleased();
    expect(replacedFilesReleasing()).toBe(0);
    expect(heldDeleted()).toEqual([]);
    await replacedFilesReleased();
  });

  it('holds nothing where no file was', async () => {
    const to = path.join(dir, 'fresh');
    fs.writeFileSync(`${to}.tmp`, 'x');
    renameReplacing(`${to}.tmp`, to);
    expect(replacedFilesReleasing()).toBe(0);
    expect(fs.readFileSync(to, 'latin1')).toBe('x');
  });

  it('replaces a symbolic link itself, never the file it points to', () => {
    const target = path.join(dir, 'link-target');
    const link = path.join(dir, 'link');
    fs.writeFileSync(target, 'kept');
    fs.symlinkSync(target, link);
    fs.writeFileSync(`${link}.tmp`, 'new');
    renameReplacing(`${link}.tmp`, link);
    expect(replacedFilesReleasing()).toBe(0);
    expect(fs.lstatSync(link).isFile()).toBe(true);
    expect(fs.readFileSync(target, 'latin1')).toBe('kept');
  });

  it('replaces a FIFO without waiting for a writer', () => {
    const fifo = path.join(dir, 'fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    fs.writeFileSync(`${fifo}.tmp`, 'new');
    renameReplacing(`${fifo}.tmp`, fifo);
    expect(replacedFilesReleasing()).toBe(0);
    expect(fs.readFileSync(fifo, 'latin1')).toBe('new');
  });

  it("throws the rename's own error, keeping no descriptor", () => {
    const before = openDescriptors();
    // over a directory
    const d = path.join(dir, 'a-directory');
    fs.mkdirSync(path.join(d, 'in-the-way'), { recursive: true });
    fs.writeFileSync(`${d}.tmp`, 'x');
    expect(() => renameReplacing(`${d}.tmp`, d)).toThrow(expect.objectContaining({ code: 'EISDIR' }));
    // from a file that is not there, over a regular file that is (held, then closed at once)
    const kept = path.join(dir, 'kept');
    fs.writeFileSync(kept, 'kept');
    expect(() => renameReplacing(path.join(dir, 'no-such-file'), kept)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    expect(fs.readFileSync(kept, 'latin1')).toBe('kept');
    expect(replacedFilesReleasing()).toBe(0);
    expect(openDescriptors()).toBe(before);
  });
});

describe('renameReplacing on file systems that keep a file open without its name', () => {
  // NFS (".nfsXXXX" files), SMB and FUSE (".fuse_hiddenXXXX"): the rename alone, as before
  for (const [fsName, type] of [['nfs', 0x6969], ['smb2', 0xfe534d42], ['fuse', 0x65735546]] as const) {
    it(fsName, () => {
      const sub = path.join(dir, `on-${fsName}`);
      fs.mkdirSync(sub);
      fsTypes.set(sub, type);
      const to = path.join(sub, 'modules.alias');
      fs.writeFileSync(to, 'old');
      fs.writeFileSync(`${to}.tmp`, 'new');
      renameReplacing(`${to}.tmp`, to);
      expect(replacedFilesReleasing()).toBe(0);
      expect(fs.readFileSync(to, 'latin1')).toBe('new');
      expect(heldDeleted()).toEqual([]);
    });
  }
  it('a relative name: its directory is the working one', async () => {
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      fs.writeFileSync('relative', 'old');
      fs.writeFileSync('relative.tmp', 'new');
      renameReplacing('relative.tmp', 'relative');
      expect(replacedFilesReleasing()).toBe(1);
      await replacedFilesReleased();
      expect(fs.readFileSync('relative', 'latin1')).toBe('new');
    } finally {
      process.chdir(cwd);
    }
  });
});

describe('noRoom', () => {
  it('is a full file system or quota, nothing else', () => {
    const err = (code: string): NodeJS.ErrnoException => Object.assign(new Error(code), { code });
    expect(noRoom(err('ENOSPC'))).toBe(true);
    expect(noRoom(err('EDQUOT'))).toBe(true);
    expect(noRoom(err('EIO'))).toBe(false);
    expect(noRoom(err('EACCES'))).toBe(false);
    expect(noRoom(undefined)).toBe(false);
    expect(noRoom(null)).toBe(false);
  });
});
