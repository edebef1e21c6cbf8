import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { aliasPieces, buildAliasFiles, type AliasSource } from '../../src/depmod/alias-files';
import { kernelMatches, loadDepmodConfig, wrappedLines } from '../../src/depmod/config';
import { hashOrder, superFastHash } from '../../src/depmod/hash';
import { symbolKey } from './support';
import { isVersionNumber } from '../../src/depmod/depmod';
import { scanModuleImage, ScanStore, type ModuleScan } from '../../src/depmod/module-scan';
import { decompress } from '../../src/file/decompress';
import { KmodError } from '../../src/errors';
import { openModuleFile } from '../../src/file/module-file';
import { dependencySymbols, exportedSymbols } from '../../src/file/module-elf';
import { buildModule } from '../support/elf-writer';
import { moduleFiles } from '../support/reference';
import { loadNativeAddon } from '../../src/native-addon';

describe('kmod hash iteration order', () => {
  it('orders a 4-module tree as kmod does without modules.order (KMOD.md §7.5)', () => {
    const names = ['vsock', 'vmw_vsock_virtio_transport_common', 'vsock_loopback', 'vmw_vsock_virtio_transport'];
    expect(hashOrder(names, (n) => n, 512)).toEqual(['vmw_vsock_virtio_transport', 'vsock_loopback', 'vmw_vsock_virtio_transport_common', 'vsock']);
  });
  it('is deterministic for every tail length', () => {
    for (const k of ['', 'a', 'ab', 'abc', 'abcd', 'abcde', '\xff\x80x']) expect(superFastHash(k)).toBe(superFastHash(k));
    expect(superFastHash('abc')).not.toBe(superFastHash('abd'));
  });
  it('gives hash_superfast\'s uint32 for every tail length and byte, as the uint32 arithmetic of C does', () => {
    // values of the earlier uint32 implementation, whose order the depmod differentials checked against kmod
    const known: [string, number][] = [['', 0], ['a', 291415938], ['ab', 1366002500], ['abc', 3535673738], ['abcd', 3671636187], ['abcde', 1374488366],
      ['\xff\x80x', 2380929294], ['\xff', 0], ['\x80\x81', 4212886800], ['usb_register_driver', 37726582], ['symbol:__x86_return_thunk', 125622419]];
    for (const [k, h] of known) expect(superFastHash(k), JSON.stringify(k)).toBe(h);
    // C's uint32_t steps over BigInts, x86's signed char for the tail
    const M = 0xffffffffn;
    const reference = (key: string): number => {
      const c = (i: number): bigint => BigInt(key.charCodeAt(i));
      const s8 = (i: number): bigint => (c(i) >= 128n ? c(i) - 256n : c(i));
      const get16 = (i: number): bigint => c(i) | (c(i + 1) << 8n);
      let hash = BigInt(key.length);
      let i = 0;
      for (let n = key.length >> 2; n > 0; n--, i += 4) {
        hash = (hash + get16(i)) & M;
        const tmp = ((get16(i + 2) << 11n) ^ hash) & M;
        hash = ((hash << 16n) ^ tmp) & M;
        hash = (hash + (hash >> 11n)) & M;
      }
      switch (key.length & 3) {
        case 3:
          hash = (hash + get16(i)) & M;
          hash = (hash ^ (hash << 16n)) & M;
          hash = (hash ^ ((s8(i + 2) << 18n) & M)) & M;
          hash = (hash + (hash >> 11n)) & M;
          break;
        case 2:
          hash = (hash + get16(i)) & M;
          hash = (hash ^ (hash << 11n)) & M;
          hash = (hash + (hash >> 17n)) & M;
          break;
        case 1:
          hash = (hash + s8(i)) & M;
          hash = (hash ^ (hash << 10n)) & M;
          hash = (hash + (hash >> 1n)) & M;
          break;
      }
      for (const [shift, left] of [[3n, true], [5n, false], [4n, true], [17n, false], [25n, true], [6n, false]] as const) {
        hash = left ? (hash ^ (hash << shift)) & M : (hash + (hash >> shift)) & M;
      }
      return Number(hash);
    };
    let seed = 12345;
    const rnd = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed >>> 8) % n;
    };
    for (let t = 0; t < 3000; t++) {
      let k = '';
      const len = rnd(48);
      // every byte value, and runs of high bytes (sums and shifts that reach bit 31)
      for (let j = 0; j < len; j++) k += String.fromCharCode(t % 3 === 0 ? 128 + rnd(128) : 1 + rnd(255));
      expect(superFastHash(k), JSON.stringify(k)).toBe(reference(k));
    }
  });
});

describe('depmod.d parsing', () => {
  it('joins backslash-newline, drops other backslashes, counts physical lines', () => {
    expect([...wrappedLines('a \\\nb\nc\\d\n\\\n\ne')]).toEqual([['a b', 2], ['cd', 3], ['', 5], ['e', 6]]);
    expect([...wrappedLines('')]).toEqual([]);
    expect([...wrappedLines('x\\')]).toEqual([['x', 1]]);
  });
  it('matches kernel versions as unanchored extended regexes; "*" and bad patterns', () => {
    expect(kernelMatches('*', '6.1')).toBe(true);
    expect(kernelMatches('^6\\.1', '6.12')).toBe(true);
    expect(kernelMatches('5\\.', '6.12')).toBe(false);
    expect(kernelMatches('(', '6.12')).toBe(false);
  });
  it('reports bad lines and keeps kmod list order (last parsed first)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-cfg-'));
    fs.writeFileSync(path.join(dir, 'a.conf'), 'search a b\nexternal * /x\nexternal * /y\noverride m * sub\nfrobnicate\noverride m\n');
    fs.writeFileSync(path.join(dir, 'b.conf'), 'search c\nexclude e1 e2\n');
    const msgs: string[] = [];
    const cfg = loadDepmodConfig([dir, path.join(dir, 'missing')], '6.1', (_p, m) => msgs.push(m));
    expect(cfg.searches).toEqual([{ type: 'path', path: 'c' }, { type: 'path', path: 'b' }, { type: 'path', path: 'a' }]);
    expect(cfg.externals).toEqual(['/y', '/x']);
    expect(cfg.overrides).toEqual(['sub/m']);
    expect([...cfg.excludes]).toEqual(['e1', 'e2']);
    expect(msgs).toEqual([`${dir}/a.conf:5: ignoring bad line starting with 'frobnicate'\n`, `${dir}/a.conf:6: ignoring bad line starting with 'override'\n`]);
    expect(loadDepmodConfig([path.join(dir, 'missing')], '6.1', () => {}).searches).toEqual([{ type: 'path', path: 'updates' }]);
  });
  it('merges thousands of files by name, bytewise, the first path keeping a name', () => {
    const [one, two] = ['one', 'two'].map((d) => fs.mkdtempSync(path.join(os.tmpdir(), `kmodts-cfg-${d}-`)));
    const names = Array.from({ length: 3000 }, (_, i) => `f${((i * 7919) % 3000).toString(36)}.conf`);
    for (const n of names) fs.writeFileSync(path.join(one, n), `search ${n}\n`);
    for (const n of names.slice(0, 500)) fs.writeFileSync(path.join(two, n), 'search hidden\n');
    fs.writeFileSync(path.join(two, 'z.conf'), 'search z\n');
    const cfg = loadDepmodConfig([one, two], '6.1', () => {});
    // every search is prepended: the last file parsed comes first
    const expected = [...names].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    expect(cfg.searches.map((s) => (s.type === 'path' ? s.path : s.type))).toEqual(['z', ...expected.reverse()]);
  });
  it('refuses a configuration file that never ends (-C /dev/zero), naming it, where kmod reads for ever', () => {
    const msgs: string[] = [];
    expect(loadDepmodConfig(['/dev/zero'], '6.1', (_p, m) => msgs.push(m)).searches).toEqual([{ type: 'path', path: 'updates' }]);
    expect(msgs).toEqual(['file parse /dev/zero: File too large\n']);
  });
  it('recognises version arguments like sscanf("%u.%u")', () => {
    expect(isVersionNumber('6.12.0-1-amd64')).toBe(true);
    expect(isVersionNumber(' 4.4')).toBe(true);
    expect(isVersionNumber('4')).toBe(false);
    expect(isVersionNumber('x4.4')).toBe(false);
  });
});

/** the import names of a scan, split at their lengths */
function importNames(s: ModuleScan): string[] {
  const names: string[] = [];
  let start = 0;
  for (const len of s.importLengths) {
    names.push(Buffer.from(s.importNames.subarray(start, start + len)).toString('latin1'));
    start += len + 1;
  }
  expect(start).toBe(s.importNames.length + (names.length > 0 ? 1 : 0));
  return names;
}

describe('module scan', () => {
  const mod = buildModule({
    name: 'm',
    vermagic: '6.1 SMP ',
    modinfo: [['alias', 'a-1'], ['softdep', 'pre: x'], ['weakdep', 'y'], ['alias', 'a2']],
    exports: [{ name: 'e1', crc: 0x11 }, { name: 'e2', crc: 0x22, gpl: true }],
    imports: [{ name: 'i1', crc: 0x33 }, { name: 'w1', crc: null, weak: true }],
    moduleLayoutCrc: 0x44,
  });
  it('reads aliases, softdeps, weakdeps, exports with CRCs, imports with CRCs and weakness', () => {
    const s = scanModuleImage(mod, 'm.ko');
    expect(s.aliases).toEqual(['a-1', 'a2']);
    expect(s.softdeps).toEqual(['pre: x']);
    expect(s.weakdeps).toEqual(['y']);
    expect([...s.exports].sort()).toEqual(['e1', 'e2']);
    const imports = importNames(s);
    expect(imports).toContain('i1');
    expect(imports[imports.length - 1]).toBe('module_layout');
    expect(s.importCrcs[imports.indexOf('i1')]).toBe(0x33);
    expect(s.importWeak[imports.indexOf('w1')]).toBe(1);
  });
  it('takes modinfo keys exactly: the text before the first "=", or a bare key with an empty value', () => {
    const m = buildModule({
      name: 'k',
      vermagic: '6.1 SMP ',
      modinfo: [['aliasx', 'v1'], ['alias', 'x=y'], ['alias', ''], ['softdeps', 'no'], ['weakdep', 'w=1'], ['alias', 'Q']],
    });
    const s = scanModuleImage(m, 'k.ko');
    expect([s.aliases, s.softdeps, s.weakdeps]).toEqual([['x=y', '', 'Q'], [], ['w=1']]);
    // "alias=Q" cut to a bare "alias": kmod's key is the whole string, its value empty
    const at = m.indexOf('alias=Q\0');
    const bare = Buffer.from(m);
    bare.write('alias\0\0', at, 'latin1');
    expect(scanModuleImage(bare, 'k.ko').aliases).toEqual(['x=y', '', '']);
  });
  it('keys every import by symbolKey of its name without one leading "."', () => {
    const m = buildModule({ name: 'd', vermagic: '6.1 SMP ', imports: [{ name: '.dotted', crc: 1 }, { name: 'plain', crc: 2 }, { name: '..two', crc: 3 }] });
    const s = scanModuleImage(m, 'd.ko');
    const names = importNames(s);
    expect([...s.importKeys]).toEqual(names.map((n) => symbolKey(n.startsWith('.') ? n.slice(1) : n)));
    expect(names).toContain('.dotted');
    expect(symbolKey('dotted')).not.toBe(symbolKey('.dotted'));
  });
  it('never throws on truncated or corrupt images', () => {
    for (let len = 0; len < mod.length; len += 97) {
      const s = scanModuleImage(mod.subarray(0, len), 'm.ko');
      expect(Array.isArray(s.exports)).toBe(true);
    }
    const corrupt = Buffer.from(mod);
    for (let i = 64; i < corrupt.length; i += 13) corrupt[i] ^= 0xa5;
    expect(() => scanModuleImage(corrupt, 'm.ko')).not.toThrow();
  });
});

describe('module scan over the Debian 6.12 tree', () => {
  it("agrees with the general module views (src/file/module-elf.ts) on every module's exports, imports, CRCs and aliases", () => {
    const files = moduleFiles();
    expect(files.length).toBe(1138);
    let imports = 0;
    for (const f of files) {
      const m = openModuleFile(f);
      const s = scanModuleImage(m.image, f);
      // module-elf throws libkmod's errno where the scan records it
      const orErrno = <T>(f: () => T[]): T[] | number => {
        try {
          return f();
        } catch (err) {
          if (!(err instanceof KmodError)) throw err;
          return err.errno;
        }
      };
      const exp = orErrno(() => exportedSymbols(m.elf));
      if (typeof exp === 'number') {
        expect([s.symbolsErrno, s.exports]).toEqual([exp, []]);
      } else {
        expect(s.exports).toEqual(exp.map((e) => e.symbol));
        expect([...s.exportCrcs]).toEqual(exp.map((e) => Number(e.crc)));
      }
      const depOrErrno = orErrno(() => dependencySymbols(m.elf));
      const dep = typeof depOrErrno === 'number' ? [] : depOrErrno;
      expect(importNames(s)).toEqual(dep.map((d) => d.symbol));
      expect([...s.importCrcs]).toEqual(dep.map((d) => Number(d.crc)));
      expect([...s.importWeak]).toEqual(dep.map((d) => (d.bind === 'weak' ? 1 : 0)));
      expect([...s.importKeys]).toEqual(dep.map((d) => symbolKey(d.symbol.startsWith('.') ? d.symbol.slice(1) : d.symbol)));
      expect([...s.importLengths]).toEqual(dep.map((d) => d.symbol.length));
      expect(s.aliases).toEqual(m.modinfo().filter(([k]) => k === 'alias').map(([, v]) => v));
      imports += dep.length;
    }
    expect(imports).toBeGreaterThan(50_000);
  });
});

describe('the modinfo-only files (buildAliasFiles)', () => {
  // modules with shared alias prefixes, a module with the same alias twice, one with none
  const mods: AliasSource[] = [
    { modname: 'snd_a', aliases: ['pci:v00008086d*', 'pci:v00008086d00001234*', 'of:N*T*Csnd'], softdeps: [], weakdeps: [] },
    { modname: 'snd_b', aliases: ['pci:v00008086d*', 'usb:v1234p*'], softdeps: [], weakdeps: [] },
    { modname: 'empty', aliases: [], softdeps: [], weakdeps: [] },
    { modname: 'twice', aliases: ['usb:v1234p5678*', 'usb:v1234p5678*', 'pci:v00008086d*'], softdeps: [], weakdeps: [] },
    { modname: 'dash-name', aliases: ['platform:foo-bar', 'acpi*:PNP0A0[38]:*'], softdeps: [], weakdeps: [] },
    { modname: 'snd_seq', aliases: ['char-major-116-1', 'devname:snd/seq'], softdeps: ['pre: snd'], weakdeps: [] },
    { modname: 'nodev', aliases: ['devname:nothing'], softdeps: [], weakdeps: ['x'] },
  ];
  const opts = { dryRun: false, warnDuplicates: false };

  it('writes the alias lines, devnames, softdeps and weakdeps in module order, with their messages', () => {
    const built = buildAliasFiles(mods, opts);
    expect(Buffer.from(built['modules.alias'].data!).toString('latin1')).toBe(
      '# Aliases extracted from modules themselves.\n' +
        mods.flatMap((m) => m.aliases.map((a) => `alias ${a} ${m.modname}\n`)).join(''),
    );
    expect(built['modules.softdep'].data).toBe('# Soft dependencies extracted from modules themselves.\nsoftdep snd_seq pre: snd\n');
    expect(built['modules.weakdep'].data).toBe('# Weak dependencies extracted from modules themselves.\nweakdep nodev x\n');
    expect(built['modules.devname'].data).toBe('# Device nodes to trigger on-demand module loading.\nsnd_seq snd/seq c116:1\n');
    expect(built['modules.devname'].logs).toEqual([[3, "Module 'nodev' has devname (nothing) but lacks major and minor information. Ignoring.\n"]]);
    expect(built['modules.alias.bin'].data).toBeInstanceOf(Uint8Array);
    expect(buildAliasFiles(mods, { dryRun: true, warnDuplicates: false })['modules.alias.bin'].data).toBeNull();
  });
  it('reports a bracket left open, a byte above 0x7f (FATAL, no file) and, with -w, duplicates', () => {
    const open = buildAliasFiles([...mods, { modname: 'bad', aliases: ['pci:v[0-9'], softdeps: [], weakdeps: [] }], opts)['modules.alias.bin'];
    expect(open.logs).toEqual([[4, 'Unmatched bracket in pci:v[0-9\n']]);
    const eight = buildAliasFiles([...mods, { modname: 'bad', aliases: ['usb:\xe9t\xe9'], softdeps: [], weakdeps: [] }], opts)['modules.alias.bin'];
    expect([eight.data, eight.fatal?.startsWith("Module index: bad character '")]).toEqual([null, true]);
    const warned = buildAliasFiles(mods, { dryRun: false, warnDuplicates: true })['modules.alias.bin'];
    expect(warned.logs).toEqual([[4, 'duplicate module alias:\nusb:v1234p5678* twice\n']]);
  });
  it('gives the same bytes and messages from ready-made pieces (the scan cache) as from the aliases, mixed in any way', () => {
    const bad: AliasSource[] = [
      { modname: 'open', aliases: ['pci:v[0-9', 'usb:x-y'], softdeps: [], weakdeps: [] },
      { modname: 'eight', aliases: ['usb:\xe9t\xe9'], softdeps: [], weakdeps: [] },
    ];
    expect(bad.map((m) => aliasPieces(m))).toEqual([null, null]);
    const all = [...mods, bad[0]];
    // every other module with pieces (its aliases left out, but for devname:), then all, then none
    const withPieces = (pick: (k: number) => boolean): AliasSource[] =>
      all.map((m, k) => {
        const pieces = pick(k) ? aliasPieces(m) : null;
        if (pieces === null) return m;
        return { ...m, pieces, aliases: m.aliases.some((a) => a.startsWith('devname:')) ? m.aliases : [] };
      });
    for (const o of [opts, { dryRun: false, warnDuplicates: true }, { dryRun: true, warnDuplicates: false }]) {
      const expected = buildAliasFiles(all, o);
      for (const pick of [(k: number) => k % 2 === 0, (k: number) => k % 2 === 1, () => true]) {
        const got = buildAliasFiles(withPieces(pick), o);
        for (const name of Object.keys(expected) as (keyof typeof expected)[]) {
          expect(got[name], `${name} ${JSON.stringify(o)}`).toEqual(expected[name]);
        }
      }
    }
    // a byte above 0x7f in the module's name stops the index at the same entry, pieces or not
    const named = [{ modname: 'n\xe9', aliases: ['a'], softdeps: [], weakdeps: [] }];
    const fatal = buildAliasFiles(named, opts)['modules.alias.bin'];
    expect(fatal.fatal).toBeDefined();
    expect(buildAliasFiles([{ ...named[0], pieces: aliasPieces(named[0])! }], opts)['modules.alias.bin']).toEqual(fatal);
  });
});

describe('memory given back without a collection', () => {
  it.each([true, false])('releaseBuffers detaches the buffers and resolves once they are freed (by the addon: %s)', async (native) => {
    const { releaseBuffers, useNativeRelease } = await import('../../src/depmod/release');
    // the addon's detachBuffers where it is built (build-native.test.ts checks that it is), else a transfer
    const used = useNativeRelease(native);
    expect(used).toBe(native && loadNativeAddon() instanceof Error === false);
    try {
      const a = new ArrayBuffer(1 << 20);
      const view = new Uint8Array(a, 16, 32);
      await releaseBuffers([a, new ArrayBuffer(8)]);
      expect(a.byteLength).toBe(0);
      expect(view.length).toBe(0);
      await releaseBuffers([]);
      if (used) {
        // by the addon, one given twice or already detached is no error, and no other value is touched
        const b = new ArrayBuffer(64);
        const list = [b, b, a, 5, null] as unknown as ArrayBuffer[];
        await releaseBuffers(list);
        expect(b.byteLength).toBe(0);
      }
    } finally {
      useNativeRelease(true);
    }
  });
  it('ScanStore.release empties the numbers of the scans kept in it, and only of those', () => {
    const [file] = moduleFiles();
    const image = decompress(fs.readFileSync(file), file);
    const kept = new ScanStore();
    const other = new ScanStore();
    const a = scanModuleImage(image, file, kept);
    const b = scanModuleImage(image, file, other);
    expect(a.importKeys.length).toBeGreaterThan(0);
    expect([...a.importKeys]).toEqual([...b.importKeys]);
    return kept.release().then(() => {
      expect(a.importKeys.length).toBe(0);
      expect(a.importNames.length).toBe(0);
      expect(b.importKeys.length).toBeGreaterThan(0);
      // a store can be used again after a release
      expect([...scanModuleImage(image, file, kept).importKeys]).toEqual([...b.importKeys]);
    });
  });
});
