// The tools' stdout buffering (src/cli/io.ts): a fully buffered glibc stream writes whole buffers only,
// once more comes in than its buffer holds, so where stdout's bytes fall among stderr's on one file
// (`> log 2>&1`) is at multiples of the buffer size, as kmod's do.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildModule } from '../support/elf-writer';
import { repoRoot, runKmod, runKmodts } from '../support/reference';

const { stdioBytesWritten, stdioBufferSize } = require(path.join(repoRoot, 'dist/cli/io.js')) as typeof import('../../src/cli/io');

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-io-test-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** module files named <prefix>0.ko, ... of about 400 bytes of modinfo output each */
function someModules(prefix: string, count: number): string[] {
  const paths: string[] = [];
  for (let i = 0; i < count; i++) {
    const p = path.join(tmp, `${prefix}${i}.ko`);
    const modinfo: [string, string][] = [['description', `module ${i} `.padEnd(300, 'x')], ['alias', `pci:v0000${i}d*`]];
    fs.writeFileSync(p, buildModule({ name: `${prefix}${i}`, vermagic: '6.1.0 SMP mod_unload ', modinfo }));
    paths.push(p);
  }
  return paths;
}

describe('glibc full buffering', () => {
  it('writes nothing while the bytes fit (a full buffer waits), then whole buffers', () => {
    expect(stdioBytesWritten(0, 4096)).toBe(0);
    expect(stdioBytesWritten(4095, 4096)).toBe(0);
    expect(stdioBytesWritten(4096, 4096)).toBe(0);
    expect(stdioBytesWritten(4097, 4096)).toBe(4096);
    expect(stdioBytesWritten(8191, 4096)).toBe(4096);
    expect(stdioBytesWritten(8192, 4096)).toBe(8192);
    expect(stdioBytesWritten(12289, 4096)).toBe(12288);
  });

  it("the buffer is the file's st_blksize below BUFSIZ (8192), else BUFSIZ", () => {
    const f = path.join(tmp, 'blk');
    fs.writeFileSync(f, '');
    const fd = fs.openSync(f, 'r');
    try {
      const blksize = Number(fs.fstatSync(fd).blksize);
      expect(stdioBufferSize(fs.fstatSync(fd))).toBe(blksize > 0 && blksize < 8192 ? blksize : 8192);
    } finally {
      fs.closeSync(fd);
    }
  });
});

describe('stdout and stderr on one file', () => {
  it("modinfo: an error lands after the whole 4096-byte blocks of what was printed before it, as kmod's", () => {
    const paths = someModules('m', 24);
    const tool = [path.join(repoRoot, 'bin/kmodts.js'), 'modinfo'];
    const alone = spawnSync(process.execPath, [...tool, ...paths], { encoding: 'latin1', env: { PATH: process.env.PATH, LANG: 'C' } });
    const before = alone.stdout;
    expect(before.length).toBeGreaterThan(2 * 4096);
    const missing = path.join(tmp, 'nosuch.ko');
    // stdout and stderr both on the pipe
    const both = spawnSync('sh', ['-c', '"$@" 2>&1', 'sh', process.execPath, ...tool, ...paths, missing, paths[0]], {
      encoding: 'latin1',
      env: { PATH: process.env.PATH, LANG: 'C' },
    });
    const err = `modinfo: ERROR: Module ${missing} not found.\n`;
    const last = spawnSync(process.execPath, [...tool, paths[0]], { encoding: 'latin1' }).stdout;
    const cut = before.length - (before.length % 4096);
    expect(both.stdout).toBe(before.slice(0, cut) + err + before.slice(cut) + last);
    expect(both.status).toBe(1);
  });
});

describe('stdout that cannot take the output', () => {
  const modules = someModules('w', 8);
  // ~400 KB of output: more than a pipe holds, so the tool is still writing when its reader goes
  const many = Array.from({ length: 120 }, () => modules).flat();

  it('a full disk or /dev/full: nothing reported and the status unchanged, as kmod', () => {
    const wrap = ['sh', '-c', '"$@" > /dev/full', 'sh'];
    for (const args of [modules, [...modules, path.join(tmp, 'nosuch.ko')], ['-V']]) {
      const kmod = runKmod('modinfo', args, { wrap });
      const ours = runKmodts('modinfo', args, { wrap });
      expect(ours.stderr).toBe(kmod.stderr);
      expect(ours.status).toBe(kmod.status);
    }
    expect(runKmodts('modinfo', modules, { wrap }).status).toBe(0);
  });

  it('a reader that goes away (`| head -c 1`): killed by SIGPIPE at the next write, as kmod (status 141)', () => {
    const wrap = ['bash', '--norc', '-c', '"$@" | head -c 1 > /dev/null; echo "${PIPESTATUS[0]}"', 'bash'];
    const kmod = runKmod('modinfo', many, { wrap });
    const ours = runKmodts('modinfo', many, { wrap });
    expect(kmod.stdout).toBe('141\n');
    expect(ours.stdout).toBe(kmod.stdout);
    expect(ours.stderr).toBe('');
  });

  it('a full non-blocking pipe: the tool waits for its reader without spinning, and everything arrives', () => {
    // the child's stdout: the write end of a pipe set O_NONBLOCK, not read for a second
    const script = `
import os, subprocess, sys, time
r, w = os.pipe()
os.set_blocking(w, False)
p = subprocess.Popen(sys.argv[1:], stdout=w)
os.close(w)
def cpu():
    f = open('/proc/%d/stat' % p.pid).read().rsplit(')', 1)[1].split()
    return int(f[11]) + int(f[12])
time.sleep(0.5)
start = cpu()
time.sleep(1.0)
spent = cpu() - start
n = 0
while True:
    b = os.read(r, 65536)
    if not b: break
    n += len(b)
print(n, spent / os.sysconf('SC_CLK_TCK'), p.wait())
`;
    const expected = runKmodts('modinfo', many).stdout.length;
    expect(expected).toBeGreaterThan(4 * 65536);
    const r = spawnSync('python3', ['-c', script, process.execPath, path.join(repoRoot, 'bin/kmodts.js'), 'modinfo', ...many], {
      encoding: 'latin1',
      env: { PATH: process.env.PATH, LANG: 'C' },
    });
    expect(r.stderr).toBe('');
    const [bytes, cpuSeconds, status] = r.stdout.trim().split(' ');
    expect(Number(bytes)).toBe(expected);
    expect(Number(status)).toBe(0);
    // a busy loop would take the whole second of CPU; waiting takes a few milliseconds of it
    expect(Number(cpuSeconds)).toBeLessThan(0.3);
  });
});

