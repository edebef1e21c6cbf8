// The state lock (src/backends/sim/state-lock.ts) when another process judges it stale at the wrong
// moment: a stale lock replaced by a live one between the look and the take-over is left alone, and a
// holder whose lock was taken over anyway stops at its next write instead of interleaving with the
// new holder.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../../support/reference';
import { SimStore } from './state-support';

const dist = path.join(repoRoot, 'dist');
const { StateLock, formatHolder, processIdentity } = require(path.join(dist, 'backends/sim/state-lock.js')) as typeof import('../../../src/backends/sim/state-lock');

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-state-lock-'));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

/** a lock text naming this very process (alive) but not written by this StateLock (another inode) */
function liveText(): string {
  return formatHolder({ ...processIdentity('self')!, pid: process.pid });
}

describe('state lock', () => {
  it('a stale lock replaced by a live one after the look is not taken over', () => {
    const file = path.join(work, 'lock-a');
    const staleText = '999999 1 node\n';
    fs.writeFileSync(file, staleText);
    const seen = { text: staleText, ino: fs.statSync(file).ino };
    // released and taken meanwhile: a new file (new inode), a live holder
    fs.unlinkSync(file);
    fs.writeFileSync(`${file}.new`, liveText());
    fs.renameSync(`${file}.new`, file);
    const lock = new StateLock(file) as unknown as { breakStale(seen: { text: string; ino: number }): void };
    lock.breakStale(seen);
    expect(fs.readFileSync(file, 'latin1')).toBe(liveText());
    // the file judged stale is still the lock: it is taken over
    const still = { text: liveText(), ino: fs.statSync(file).ino };
    lock.breakStale(still);
    expect(fs.existsSync(file)).toBe(false);
    expect(fs.readdirSync(work).filter((n) => n.startsWith('lock-a'))).toEqual([]);
  });

  it('a holder whose lock was taken over stops at its next write, and writes nothing', () => {
    const dir = path.join(work, 'state');
    const store = new SimStore(dir);
    const kmsg = path.join(dir, 'kmsg');
    const lockFile = path.join(dir, 'lock');
    expect(() =>
      store.withLock(() => {
        fs.writeFileSync(kmsg, 'kept\n');
        // another process judged this one dead and took the lock
        fs.unlinkSync(lockFile);
        fs.writeFileSync(lockFile, liveText());
        store.clearKmsg();
      }),
    ).toThrow(/the lock was taken over by another process: the change was not made/);
    expect(fs.readFileSync(kmsg, 'latin1')).toBe('kept\n');
    // its release leaves the other holder's lock in place
    expect(fs.readFileSync(lockFile, 'latin1')).toBe(liveText());
    // once that holder is done, the store works again
    fs.unlinkSync(lockFile);
    store.clearKmsg();
    expect(fs.readFileSync(kmsg, 'latin1')).toBe('');
    expect(fs.existsSync(lockFile)).toBe(false);
  });
});
