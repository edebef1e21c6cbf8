// libkmod's messages about module files depmod cannot load (src/depmod/load-failure.ts): kmod's depmod
// loads such a file three times and libkmod logs each decompression failure, the xz ones read on from
// where the load before left the descriptor. Compared with kmod 34.2 on damaged .ko.xz and .ko.zst
// files, and the messages checked one by one.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildTree, configDir, differingFiles, runBoth, SYN_KVER, type SynModule } from './support';
import { prng } from '../support/prng';
import { loadFailureMessages } from '../../src/depmod/load-failure';

/** a module whose .ko.xz spans several of libkmod's 8 KiB reads (a long, poorly compressible modinfo value) */
function bigModule(rel: string): SynModule {
  const random = prng(7);
  const noise = Array.from({ length: 60000 }, () => Math.floor(random() * 16).toString(16)).join('');
  return { rel, exports: ['big_a'], modinfo: [['description', noise], ['alias', 'big-alias']] };
}

function flipped(data: Buffer, at: number): Buffer {
  const copy = Buffer.from(data);
  copy[at] ^= 0x55;
  return copy;
}

describe('libkmod messages about module files that do not load', () => {
  const tree = buildTree('loadfail', [bigModule('kernel/big.ko.xz'), bigModule('kernel/bigz.ko.zst'), { rel: 'kernel/user.ko', imports: ['big_a'] }]);
  const xz = fs.readFileSync(path.join(tree.moddir, 'kernel/big.ko.xz'));
  const zst = fs.readFileSync(path.join(tree.moddir, 'kernel/bigz.ko.zst'));
  const bad = path.join(tree.moddir, 'kernel/bad');
  fs.mkdirSync(bad);
  const files: Record<string, Buffer> = {
    'trunc-10000.ko.xz': xz.subarray(0, 10000),
    'trunc-8192.ko.xz': xz.subarray(0, 8192),
    'flip-9000.ko.xz': flipped(xz, 9000),
    'flip-100.ko.xz': flipped(xz, 100),
    'flip-footer.ko.xz': flipped(xz, xz.length - 6),
    'trailing.ko.xz': Buffer.concat([xz, Buffer.from('junk')]),
    'trunc.ko.zst': zst.subarray(0, 9000),
    'flip.ko.zst': flipped(zst, zst.length - 2),
  };
  for (const [name, data] of Object.entries(files)) fs.writeFileSync(path.join(bad, name), data);

  it('kmod 34.2 and kmodts print the same messages, three loads each (differential)', async () => {
    expect(xz.length).toBeGreaterThan(3 * 8192);
    const r = await runBoth(['-C', configDir(tree.root, {}), '-b', tree.root, SYN_KVER], tree.moddir);
    expect(r.kmodts.stderr).toBe(r.kmod.stderr);
    expect(r.kmodts.status).toBe(r.kmod.status);
    expect(differingFiles(r.kmodFiles, r.kmodtsFiles)).toEqual([]);
    // the case shows what it is about
    expect(r.kmod.stderr.match(/xz: Unexpected end of input/g)?.length).toBeGreaterThan(6);
    expect(r.kmod.stderr).toMatch(/xz: File is corrupt\n.*failed to load symbols from .*flip-9000\.ko\.xz: Invalid argument\n.*xz: File format not recognized\n/);
    expect(r.kmod.stderr.match(/zstd: /g)?.length).toBe(6);
  });

  it('a truncated xz file: the end of input each time (the descriptor is left at the end)', () => {
    expect(loadFailureMessages(path.join(bad, 'trunc-10000.ko.xz'))).toEqual({
      first: ['xz: Unexpected end of input'],
      again: ['xz: Unexpected end of input', 'xz: Unexpected end of input'],
    });
  });

  it('xz damaged in its second read: the later loads start in the middle of the stream', () => {
    const said = loadFailureMessages(path.join(bad, 'flip-9000.ko.xz'));
    expect(said.first).toEqual(['xz: File is corrupt']);
    expect(said.again[0]).toBe('xz: File format not recognized');
  });

  it('zstd: the same message at each load; none for files that load or that libkmod never decodes', () => {
    const said = loadFailureMessages(path.join(bad, 'trunc.ko.zst'));
    expect(said.first).toHaveLength(1);
    expect(said.again).toEqual([said.first[0], said.first[0]]);
    expect(loadFailureMessages(path.join(tree.moddir, 'kernel/big.ko.xz'))).toEqual({ first: [], again: [] });
    expect(loadFailureMessages(path.join(tree.moddir, 'kernel/user.ko'))).toEqual({ first: [], again: [] });
    expect(loadFailureMessages(path.join(tree.moddir, 'nonexistent.ko.xz'))).toEqual({ first: [], again: [] });
  });

  it('the compressors used by the fixtures exist', () => {
    for (const tool of ['xz', 'zstd']) expect(spawnSync(tool, ['--version']).status).toBe(0);
  });
});
