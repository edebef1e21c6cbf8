// modinfo's partial read of uncompressed module files (src/file/modinfo-parts.ts) gives what the whole
// file gives: the same .modinfo strings and signature, file after file through the one reused buffer
// (large and small files in turn, so that a file's unread bytes are another file's), and the whole read
// where the headers do not describe a readable section table.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Elf } from '../../src/file/elf';
import { openModuleFile } from '../../src/file/module-file';
import { useNativeModinfoParts } from '../../src/file/modinfo-parts';
import { loadNativeAddon } from '../../src/native-addon';
import { fileInfo } from '../../src/resolution/modinfo';
import { moduleDir, reference } from '../support/reference';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-modinfo-parts-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** every 15th module of the reference tree, decompressed, largest and smallest in turn */
function modules(): string[] {
  const xz = execFileSync('find', [moduleDir(reference()), '-name', '*.ko.xz'], { encoding: 'utf8' }).trim().split('\n').sort().filter((_, i) => i % 15 === 0);
  const kos = xz.map((f, i) => {
    const out = path.join(tmp, `${i}-${path.basename(f, '.xz')}`);
    fs.writeFileSync(out, execFileSync('xz', ['-dc', f], { maxBuffer: 1 << 28 }));
    return out;
  });
  const bySize = [...kos].sort((a, b) => fs.statSync(b).size - fs.statSync(a).size);
  const turns: string[] = [];
  while (bySize.length > 0) turns.push(bySize.shift()!, ...(bySize.length > 0 ? [bySize.pop()!] : []));
  return turns;
}

function infoOf(file: string, modinfoOnly: boolean): unknown {
  try {
    return fileInfo(openModuleFile(file, { modinfoOnly }));
  } catch (err) {
    return { error: (err as Error).message };
  }
}

// the addon's one-call read (native/modinfo_parts.c) and the fs calls of modinfo-parts.ts alike
describe.each([
  ['with the addon', true],
  ['without it', false],
])('modinfo-parts, %s', (_, native) => {
  beforeAll(() => {
    if (native) expect(typeof (loadNativeAddon() as { readModinfoParts?: unknown }).readModinfoParts, 'the addon (node scripts/build-native.js) has readModinfoParts').toBe('function');
    useNativeModinfoParts(native);
  });
  afterAll(() => useNativeModinfoParts(true));

  it('gives the whole file\'s .modinfo strings and signature, file after file', () => {
    const files = modules();
    expect(files.length).toBeGreaterThan(50);
    for (const f of files) expect(infoOf(f, true), f).toEqual(infoOf(f, false));
  });

  it('damaged headers and names: the same answers as the whole read', () => {
    const [sample] = modules();
    const good = fs.readFileSync(sample);
    const cases: Buffer[] = [];
    // the section table moved past the end, its count and entry size zeroed, the names' index out of range
    for (const [off, bytes] of [[40, [0xff, 0xff, 0xff, 0x7f]], [60, [0, 0]], [58, [0, 0]], [62, [0xff, 0xff]]] as const) {
      const b = Buffer.from(good);
      bytes.forEach((v, k) => (b[off + k] = v));
      cases.push(b);
    }
    // cut short at several points, and the signature's length made too large
    for (const len of [100, 4096, good.length >> 1, good.length - 10]) cases.push(good.subarray(0, len));
    // .modinfo's section header: its offset past the end; a second section named .modinfo; the
    // section names' size past the end
    const elf = new Elf(good, sample);
    const headers = elf.sections();
    const modinfo = headers.find((h) => h.name === '.modinfo')!;
    const other = headers.find((h) => h.index > 0 && h.name !== '.modinfo' && h.size > 0)!;
    const names = headers[elf.shstrndx];
    const far = Buffer.from(good);
    far.writeBigUInt64LE(BigInt(good.length + 8), modinfo.headerOffset + 24);
    const twice = Buffer.from(good);
    twice.writeUInt32LE(modinfo.nameOffset, other.headerOffset);
    const longNames = Buffer.from(good);
    longNames.writeBigUInt64LE(BigInt(good.length), names.headerOffset + 32);
    cases.push(far, twice, longNames);
    const sig = Buffer.from(good);
    sig.writeUInt32BE(0x7fffffff, sig.length - 28 - 4);
    cases.push(sig);
    cases.forEach((b, i) => {
      const f = path.join(tmp, `damaged-${i}.ko`);
      fs.writeFileSync(f, b);
      expect(infoOf(f, true), `case ${i}`).toEqual(infoOf(f, false));
    });
  });
});
