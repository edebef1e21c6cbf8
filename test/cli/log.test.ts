// The tools' log (src/cli/log.ts): with -s the tool's own messages go to syslog, but libkmod's default
// logger, which prints what kmod_new() reports (the configuration's bad lines), still writes to stderr.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../support/reference';

const dist = path.join(repoRoot, 'dist');
const { main } = require(path.join(dist, 'cli/main.js')) as typeof import('../../src/cli/main');
const { captureIo } = require(path.join(dist, 'cli/io.js')) as typeof import('../../src/cli/io');
const { ToolLog, LOG_ERR, LOG_WARNING } = require(path.join(dist, 'cli/log.js')) as typeof import('../../src/cli/log');

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-log-test-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('libkmod messages before the tool routes them', () => {
  it('go to the io given for them; the tool\'s own to its io', () => {
    const tool = captureIo({});
    const early = captureIo({});
    const log = new ToolLog(tool, 'modprobe', early);
    log.libkmod(LOG_ERR, 'kmod_config_parse', 'bad\n');
    log.warn('mine\n');
    log.routeLibkmod(LOG_WARNING);
    log.libkmod(LOG_ERR, 'kmod_config_parse', 'after\n');
    expect(early.err()).toBe('libkmod: ERROR: kmod_config_parse: bad\n');
    expect(tool.err()).toBe('modprobe: WARNING: mine\nmodprobe: ERROR: after\n');
  });

  it('kmod_new()\'s "could not retrieve directory" at libkmod\'s default priority: KMOD_LOG is read after it', () => {
    for (const level of ['0', '2', 'info']) {
      const io = captureIo({ KMOD_LOG: level });
      const log = new ToolLog(io, 'modinfo');
      log.libkmod(LOG_ERR, 'kmod_new', 'could not retrieve directory\n');
      log.libkmod(LOG_ERR, 'kmod_config_parse', 'bad\n');
      const config = level === 'info' ? 'libkmod: ERROR: kmod_config_parse: bad\n' : '';
      expect(io.err()).toBe(`libkmod: ERROR: kmod_new: could not retrieve directory\n${config}`);
    }
  });

  it('modprobe -s prints the configuration\'s errors on stderr, as kmod_new()\'s default logger', async () => {
    const conf = path.join(tmp, 'bad.conf');
    fs.writeFileSync(conf, 'bogus\n');
    const io = captureIo({});
    const status = await main('kmodts', ['modprobe', '-s', '-d', tmp, '-S', '1', '-c', '-C', conf], io);
    expect(status).toBe(0);
    expect(io.err()).toBe(`libkmod: ERROR: kmod_config_parse: ${conf} line 1: ignoring bad line starting with 'bogus'\n`);
  });
});
