// A damaged or unusable state directory: every record is validated, damage is reported with the file
// and the line (exit 1) and leaves the files as they were, nothing boots a fresh kernel over a damaged
// one, a torn last line is still recovered, locks that nobody alive holds are taken over at once, and a
// directory that cannot be created ends in one clear line (issue 15's reproducers 2 to 5, issue 13).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cli, expectNoFault, loaded, modprobe, sim, SimStateError, SimStore, snapshot } from './state-support';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-simdamage-'));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

let n = 0;
/** A state directory with greet_fancy and its dependencies loaded (core, hello, log, fancy). */
function loadedState(): string {
  const dir = path.join(work, `s${n++}`);
  const r = cli(modprobe(dir, 'greet_fancy'));
  expect({ status: r.status, err: r.stderr }).toEqual({ status: 0, err: '' });
  return dir;
}

const journalLines = (dir: string): string[] => fs.readFileSync(path.join(dir, 'state.jsonl'), 'utf8').split('\n');
const writeJournal = (dir: string, lines: string[]): void => fs.writeFileSync(path.join(dir, 'state.jsonl'), lines.join('\n'));

/** Runs a reader and a writer on a damaged state: both fail with the line, and nothing changes. */
function expectRefused(dir: string, where: RegExp): void {
  const before = snapshot(dir);
  for (const args of [[...sim(dir), 'lsmod'], modprobe(dir, 'greet_bonjour'), modprobe(dir, '-r', 'greet_fancy')]) {
    const r = cli(args);
    expectNoFault(r);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(where);
    expect(r.stderr.split('\n').length).toBe(2); // one line
  }
  expect(snapshot(dir)).toEqual(before);
}

describe('damaged state', () => {
  it('a record lacking a field (reproducer 2: no "text") is reported with its line, exit 1, state untouched', () => {
    const dir = loadedState();
    const lines = journalLines(dir);
    const rec = JSON.parse(lines[2]) as { m: Record<string, unknown> };
    delete rec.m.text;
    lines[2] = JSON.stringify(rec);
    writeJournal(dir, lines);
    expectRefused(dir, /^kmodts: .*\/state\.jsonl:3: damaged state: m\.text: missing\n$/);
  });

  it('fields of the wrong type, unknown operations and broken cross-references are damage too', () => {
    const cases: [string, (lines: string[]) => void, RegExp][] = [
      ['text as a string', (l) => (l[1] = l[1].replace(/"text":[^,]+/, '"text":"0x10"')), /:2: damaged state: m\.text: expected an integer, found string/],
      ['unknown op', (l) => (l[2] = '{"op":"reboot"}'), /:3: damaged state: unknown operation "reboot"/],
      ['a JSON array', (l) => (l[2] = '[1,2]'), /:3: damaged state: not a record \(array\)/],
      ['unload of a module in use', (l) => l.splice(l.length - 1, 0, JSON.stringify({ op: 'unload', name: 'greet_core', g: { taint: 0, once: [], debugLocks: true, seq: 9 } })), /damaged state: unload of greet_core, which is used by/],
      ['load of a module twice', (l) => l.splice(l.length - 1, 0, l[1]), /:6: damaged state: load of greet_core, which is already loaded/],
      ['a snapshot after the first line', (l) => l.splice(2, 0, l[0]), /:3: damaged state: a snapshot after the first line/],
      ['not JSON', (l) => (l[3] = l[3] + 'x'), /:4: damaged state: not JSON/],
      ['an empty line', (l) => l.splice(2, 0, ''), /:3: damaged state: not JSON/],
    ];
    for (const [what, edit, where] of cases) {
      const dir = loadedState();
      const lines = journalLines(dir);
      edit(lines);
      writeJournal(dir, lines);
      expect(() => new SimStore(dir).current(), what).toThrow(SimStateError);
      expectRefused(dir, where);
    }
  });

  it('a snapshot whose holders disagree with the users is refused', () => {
    const dir = loadedState();
    // fold the journal into one snapshot line, then break one link
    const state = new SimStore(dir).current()!;
    const core = state.data.modules.find((m) => m.name === 'greet_core')!;
    core.users = core.users.filter((u) => u !== 'greet_hello');
    fs.writeFileSync(path.join(dir, 'state.jsonl'), JSON.stringify({ op: 'snap', gen: '0123456789abcdef', s: state.data }) + '\n');
    expectRefused(dir, /:1: damaged state: module greet_hello: uses greet_core, which does not list it as a user/);
  });

  it('one bad byte in a middle record (reproducer 4): the module does not vanish, the command fails', () => {
    const dir = loadedState();
    const file = path.join(dir, 'state.jsonl');
    const b = fs.readFileSync(file);
    const third = b.indexOf(10, b.indexOf(10) + 1) + 1;
    b[third + 3] = 0x7b; // {"op" -> {"o{
    fs.writeFileSync(file, b);
    expectRefused(dir, /state\.jsonl:3: damaged state: (not JSON|unknown operation \(none\))/);
  });

  it('one bad byte in the snapshot line (reproducer 4): no empty kernel, no fresh boot over the old one', () => {
    const dir = loadedState();
    const file = path.join(dir, 'state.jsonl');
    const b = fs.readFileSync(file);
    b[100] = 0xff;
    fs.writeFileSync(file, b);
    expectRefused(dir, /state\.jsonl:1: damaged state: bytes that are not UTF-8/);
    b[100] = 0x01;
    fs.writeFileSync(file, b);
    expectRefused(dir, /state\.jsonl:1: damaged state: not JSON/);
  });

  it('a journal cut inside its snapshot line, or emptied, is damage; a damaged kernel log is reported', () => {
    const dir = loadedState();
    const file = path.join(dir, 'state.jsonl');
    const whole = fs.readFileSync(file);
    fs.writeFileSync(file, whole.subarray(0, 50));
    expectRefused(dir, /state\.jsonl:1: damaged state: no complete snapshot line/);
    fs.writeFileSync(file, whole);
    fs.appendFileSync(path.join(dir, 'kmsg'), 'garbage\n');
    const r = cli([...sim(dir), 'dmesg']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^kmodts: .*\/kmsg:\d+: damaged kernel log/);
  });

  it('removing the directory, or SimStore.reset(), is the way to start afresh', () => {
    const dir = loadedState();
    fs.appendFileSync(path.join(dir, 'state.jsonl'), 'junk\n');
    expect(cli([...sim(dir), 'lsmod']).status).toBe(1);
    new SimStore(dir).reset();
    expect(loaded(dir)).toEqual([]);
    expect(cli(modprobe(dir, 'greet_bonjour')).status).toBe(0);
    expect(loaded(dir)).toEqual(['greet_bonjour', 'greet_core']);
  });

  it('a torn last line (a writer killed mid-append) is ignored by readers and cut by the next writer', () => {
    const dir = loadedState();
    const file = path.join(dir, 'state.jsonl');
    const good = fs.readFileSync(file, 'latin1');
    fs.appendFileSync(file, '{"op":"unload","name":"greet_fa');
    expect(loaded(dir)).toEqual(['greet_core', 'greet_fancy', 'greet_hello', 'greet_log']);
    expect(cli([...sim(dir), 'lsmod']).status).toBe(0);
    expect(cli(modprobe(dir, 'greet_bonjour')).status).toBe(0);
    const now = fs.readFileSync(file, 'latin1');
    expect(now.startsWith(good)).toBe(true);
    expect(now.endsWith('\n')).toBe(true);
    expect(now).not.toContain('greet_fa\n');
    expect(loaded(dir)).toContain('greet_bonjour');
  });
});

describe('locks', () => {
  it('a lock naming a live process that is not kmodts (reproducer 3: pid 1), empty or foreign, is taken over at once', () => {
    for (const text of ['1\n', '', 'garbage', `1 ${fs.readFileSync('/proc/1/stat', 'latin1').split(') ')[1].split(' ')[19]} init\n`, `${process.pid}\n`]) {
      const dir = loadedState();
      fs.writeFileSync(path.join(dir, 'lock'), text);
      // the store tells when it starts waiting: it must not
      const store = new SimStore(dir, { lock: { waitMs: 60_000, noticeMs: 0, onWait: (h) => { throw new Error(`waited for ${JSON.stringify(h)}`); } } });
      expect(store.withLock(() => 'taken')).toBe('taken');
      expect(fs.existsSync(path.join(dir, 'lock'))).toBe(false);
      fs.writeFileSync(path.join(dir, 'lock'), text);
      const r = cli(modprobe(dir, '-r', 'greet_fancy'), { timeoutMs: 20_000 });
      expect({ status: r.status, err: r.stderr, text }).toEqual({ status: 0, err: '', text });
    }
  });

  it('a lock held by a live kmodts process is waited for, within the bound, with a message', () => {
    const dir = loadedState();
    const holder = new SimStore(dir);
    let told = '';
    const waiter = new SimStore(dir, { lock: { waitMs: 300, noticeMs: 0, onWait: (h) => (told = `${h.pid} ${h.comm}`) } });
    holder.withLock(() => {
      // this very process holds it: a second store of ours must wait, then give up with a message
      expect(() => waiter.withLock(() => 0)).toThrow(new RegExp(`lock: the simulated kernel's state is locked by process ${process.pid} \\(\\S+\\); gave up after 0 s`));
    });
    expect(told).toMatch(new RegExp(`^${process.pid} `));
    expect(waiter.withLock(() => 1)).toBe(1);
  });
});

describe('lock holders under any command name (a lock records pid, start time, command and boot id)', () => {
  const startOf = (pid: number): string => fs.readFileSync(`/proc/${pid}/stat`, 'latin1').split(') ')[1].split(' ')[19];
  const bootId = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'latin1').trim();

  it('a kmodts holder run by a Node binary of another name is waited for; its lock in another boot is not', async () => {
    const { spawn } = await import('node:child_process');
    const dir = loadedState();
    // comm is the name the binary was started by: a link named otherwise stands for a renamed Node
    const bin = path.join(work, 'js-runtime');
    fs.symlinkSync(process.execPath, bin);
    const lockModule = path.resolve(__dirname, '../../../dist/backends/sim/state-lock.js');
    const script = `const { StateLock } = require(${JSON.stringify(lockModule)});
      const lock = new StateLock(${JSON.stringify(path.join(dir, 'lock'))}); lock.acquire();
      process.stdout.write('held\\n'); setTimeout(() => { lock.release(); }, 20000);`;
    const child = spawn(bin, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout.once('data', () => resolve());
        child.once('exit', (code) => reject(new Error(`the holder exited with ${code}`)));
      });
      const text = fs.readFileSync(path.join(dir, 'lock'), 'latin1');
      // the command is the link's name, or the name Node gives its main thread (Node 24: MainThread;
      // Node 26: node-MainThread); none is one the older rule knew
      const comm = fs.readFileSync(`/proc/${child.pid}/stat`, 'latin1').split('(')[1].split(')')[0];
      expect(['js-runtime', 'MainThread', 'node-MainThread']).toContain(comm);
      expect(text).toBe(`${child.pid} ${startOf(child.pid!)} ${comm} ${bootId}\n`);
      const waiter = new SimStore(dir, { lock: { waitMs: 300, noticeMs: 0 } });
      expect(() => waiter.withLock(() => 0)).toThrow(new RegExp(`locked by process ${child.pid} \\(${comm}\\); gave up after 0 s`));
      // the same holder, as written in another boot: nobody's now
      fs.writeFileSync(path.join(dir, 'lock'), text.replace(bootId, '00000000-0000-4000-8000-000000000000'));
      expect(new SimStore(dir, { lock: { waitMs: 60_000, noticeMs: 0, onWait: () => { throw new Error('waited'); } } }).withLock(() => 'taken')).toBe('taken');
      // the older three-field form naming that process: the older rule, a command named as kmodts' (or as
      // this process, which Node 24 and 26 name after their main thread as they name every one)
      fs.writeFileSync(path.join(dir, 'lock'), text.replace(` ${bootId}`, ''));
      const ownComm = fs.readFileSync('/proc/self/stat', 'latin1').split('(')[1].split(')')[0];
      if (comm === ownComm) expect(() => new SimStore(dir, { lock: { waitMs: 300, noticeMs: 0 } }).withLock(() => 0)).toThrow(/locked by process/);
      else expect(new SimStore(dir, { lock: { waitMs: 60_000, noticeMs: 0, onWait: () => { throw new Error('waited'); } } }).withLock(() => 'taken')).toBe('taken');
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('malformed or foreign lock texts name nobody and are taken over at once', () => {
    const one = startOf(1);
    for (const text of [`1 ${one} init ${bootId}x\n`, `1 ${one} init ${bootId} extra\n`, `1 ${one} init ${'0'.repeat(65)}\n`, `1 ${one} init  ${bootId}\n`, `${process.pid} ${startOf(process.pid)} node ${bootId}`]) {
      const dir = loadedState();
      fs.writeFileSync(path.join(dir, 'lock'), text);
      const store = new SimStore(dir, { lock: { waitMs: 60_000, noticeMs: 0, onWait: (h) => { throw new Error(`waited for ${JSON.stringify(h)}`); } } });
      expect(store.withLock(() => 'taken')).toBe('taken');
    }
  });
});

describe('unusable state directories (issue 13, reproducer 5)', () => {
  it('end in one clear line and exit 1, never a hang, an internal error or a stack trace', () => {
    const file = path.join(work, 'a-file');
    fs.writeFileSync(file, 'x');
    const dirAsJournal = path.join(work, 'journal-is-dir');
    fs.mkdirSync(path.join(dirAsJournal, 'state.jsonl'), { recursive: true });
    const cases: [string, RegExp][] = [
      ['/proc/x', /^kmodts: \/proc\/x: cannot create the state directory: No such file or directory\n$/],
      ['/proc/x/y/z', /^kmodts: \/proc\/x\/y\/z: cannot create the state directory: No such file or directory\n$/],
      ['/proc/self', /^kmodts: \/proc\/self\/lock: cannot create the lock: /],
      [`${file}/sub`, /^kmodts: .*a-file\/sub.*: (cannot read the state|cannot use the state directory).*Not a directory/],
      [file, /^kmodts: .*a-file.*(Not a directory|is not a directory)/],
      [dirAsJournal, /^kmodts: .*journal-is-dir\/state\.jsonl: (cannot read the state: Is a directory|not a regular file)\n$/],
    ];
    for (const [state, message] of cases) {
      const r = cli(modprobe(state, 'greet_core'), { timeoutMs: 20_000 });
      expectNoFault(r);
      expect({ state, status: r.status, err: r.stderr }).toEqual({ state, status: 1, err: expect.stringMatching(message) });
    }
  });
});
