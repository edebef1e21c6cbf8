// The module signature trailer and its PKCS#7 contents, as kmod 34.2 (with OpenSSL) reports them, and
// damaged trailers: a bad trailer or message means "no signature", never an exception.
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hexString, moduleSignature, SIG_MAGIC, useNativeHex } from '../../src/file/signature';
import { nativeFunction } from '../../src/native-addon';
import { moduleDir } from '../support/reference';

/** appends a trailer: signer, key id, signature, struct module_signature, magic */
function signed(body: Buffer, o: { algo?: number; hash?: number; idType: number; signer?: Buffer; keyId?: Buffer; sig: Buffer }): Buffer {
  const signer = o.signer ?? Buffer.alloc(0);
  const keyId = o.keyId ?? Buffer.alloc(0);
  const ms = Buffer.alloc(12);
  ms[0] = o.algo ?? 1;
  ms[1] = o.hash ?? 4;
  ms[2] = o.idType;
  ms[3] = signer.length;
  ms[4] = keyId.length;
  ms.writeUInt32BE(o.sig.length, 8);
  return Buffer.concat([body, signer, keyId, o.sig, ms, Buffer.from(SIG_MAGIC)]);
}

// DER helpers
function der(tag: number, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  const len = body.length < 128 ? Buffer.from([body.length]) : body.length < 256 ? Buffer.from([0x81, body.length]) : Buffer.from([0x82, body.length >> 8, body.length & 255]);
  return Buffer.concat([Buffer.from([tag]), len, body]);
}
const seq = (...p: Buffer[]): Buffer => der(0x30, ...p);
const set = (...p: Buffer[]): Buffer => der(0x31, ...p);
function oid(text: string): Buffer {
  const n = text.split('.').map(Number);
  const out = [n[0] * 40 + n[1]];
  for (const v of n.slice(2)) {
    const bytes = [v & 0x7f];
    for (let x = v >> 7; x > 0; x >>= 7) bytes.unshift((x & 0x7f) | 0x80);
    out.push(...bytes);
  }
  return der(0x06, Buffer.from(out));
}
const utf8 = (s: string): Buffer => der(0x0c, Buffer.from(s));

/** A PKCS#7 SignedData; `edit` may change the parts (by name) before they are put together. */
interface Pkcs7Parts {
  version: Buffer; digestAlgorithms: Buffer; content: Buffer; beforeSignerInfos: Buffer[]; signerInfosTag: number;
  siVersion: Buffer; issuerAndSerial: Buffer; digestAlgorithm: Buffer; authAttrs: Buffer[]; encryptionAlgorithm: Buffer;
  encryptedDigest: Buffer; afterDigest: Buffer[]; outerExtra: Buffer[];
}
function pkcs7(o: { names: [string, string][]; serial: Buffer; digest: string | Buffer; sig: Buffer; authAttrs?: boolean; name?: Buffer; edit?: (p: Pkcs7Parts) => void }): Buffer {
  // (a Buffer: the digest OID's element as it is to be encoded)
  const digest = typeof o.digest === 'string' ? oid(o.digest) : o.digest;
  const name = o.name ?? seq(...o.names.map(([t, v]) => set(seq(oid(t), utf8(v)))));
  const p: Pkcs7Parts = {
    version: der(0x02, Buffer.from([1])),
    digestAlgorithms: set(seq(digest)),
    content: seq(oid('1.2.840.113549.1.7.1')),
    beforeSignerInfos: [],
    signerInfosTag: 0x31,
    siVersion: der(0x02, Buffer.from([1])),
    issuerAndSerial: seq(name, der(0x02, o.serial)),
    digestAlgorithm: seq(digest, der(0x05, Buffer.alloc(0))),
    authAttrs: o.authAttrs ? [der(0xa0, seq(oid('1.2.840.113549.1.9.3'), set(oid('1.2.840.113549.1.7.1'))))] : [],
    encryptionAlgorithm: seq(oid('1.2.840.113549.1.1.1'), der(0x05, Buffer.alloc(0))),
    encryptedDigest: der(0x04, o.sig),
    afterDigest: [],
    outerExtra: [],
  };
  o.edit?.(p);
  const signerInfo = seq(p.siVersion, p.issuerAndSerial, p.digestAlgorithm, ...p.authAttrs, p.encryptionAlgorithm, p.encryptedDigest, ...p.afterDigest);
  const signedData = seq(p.version, p.digestAlgorithms, p.content, ...p.beforeSignerInfos, der(p.signerInfosTag, signerInfo));
  return seq(oid('1.2.840.113549.1.7.2'), der(0xa0, signedData), ...p.outerExtra);
}

const body = Buffer.from('\x7fELF module body');

describe.each([
  ['the addon', true],
  ['JavaScript', false],
] as const)('hexString, in %s', (_engine, useAddon) => {
  beforeAll(() => {
    // the addon is built in every test run (scripts/build-native.js): without its hexColumns this fails
    expect(useNativeHex(useAddon)).toBe(useAddon);
  });
  afterAll(() => {
    useNativeHex(true);
  });

  it('is %02X joined by ":", with ":\\n\\t\\t" after every 20th byte when more follow', () => {
    expect(hexString(Buffer.alloc(0))).toBe('');
    expect(hexString(Buffer.from([0xab]))).toBe('AB');
    const b20 = Buffer.from(Array.from({ length: 20 }, (_, i) => i));
    expect(hexString(b20)).toBe('00:01:02:03:04:05:06:07:08:09:0A:0B:0C:0D:0E:0F:10:11:12:13');
    const b21 = Buffer.from(Array.from({ length: 21 }, (_, i) => 0xf0 + (i % 16)));
    expect(hexString(b21)).toBe('F0:F1:F2:F3:F4:F5:F6:F7:F8:F9:FA:FB:FC:FD:FE:FF:F0:F1:F2:F3:\n\t\tF4');
    expect(hexString(Buffer.alloc(40)).split('\n')).toHaveLength(2);
    // every length to 100 and a 512-byte signature against the format written out byte by byte
    const printf = (b: Uint8Array): string =>
      Array.from(b, (x, i) => x.toString(16).toUpperCase().padStart(2, '0') + (i === b.length - 1 ? '' : (i + 1) % 20 === 0 ? ':\n\t\t' : ':')).join('');
    for (const n of [...Array.from({ length: 101 }, (_, n) => n), 512]) {
      const b = Buffer.from(Array.from({ length: n }, (_, i) => (i * 167 + n) & 0xff));
      expect(hexString(b)).toBe(printf(b));
      expect(hexString(new Uint8Array(b))).toBe(printf(b));
    }
    // a view into a larger buffer: only its own bytes
    const big = Buffer.from(Array.from({ length: 64 }, (_, i) => i));
    expect(hexString(big.subarray(30, 33))).toBe('1E:1F:20');
  });
});

describe('hexColumns (the addon)', () => {
  it('refuses what is not a Uint8Array with a TypeError', () => {
    const hex = nativeFunction('hexColumns')!;
    for (const bad of [undefined, 'AB', 12, [1, 2], new Uint16Array(2), {}]) expect(() => hex(bad as never)).toThrow(TypeError);
  });
});

describe('moduleSignature', () => {
  it('reads a Debian module\'s PKCS#7 signature', () => {
    const img = execFileSync('xz', ['-dc', path.join(moduleDir(), 'kernel/net/key/af_key.ko.xz')]);
    const s = moduleSignature(img)!;
    expect(s.idType).toBe('PKCS#7');
    expect(s.signer).toBe('Build time autogenerated kernel key');
    expect(s.hashAlgo).toBe('sha256');
    expect(s.keyId.length).toBe(20);
    expect(s.signature.length).toBeGreaterThan(64);
    expect(moduleSignature(img.subarray(0, img.length - 1))).toBeUndefined();
  });

  it('PKCS#7: signer is the issuer CN, key the serial magnitude, hash the OpenSSL name, signature the encrypted digest', () => {
    const p = pkcs7({ names: [['2.5.4.10', 'Org'], ['2.5.4.3', 'My CN'], ['2.5.4.6', 'XX']], serial: Buffer.from([0x00, 0x81, 0x02]), digest: '2.16.840.1.101.3.4.2.3', sig: Buffer.from([1, 2, 3]), authAttrs: true });
    const s = moduleSignature(signed(body, { idType: 2, sig: p }))!;
    expect(s).toMatchObject({ idType: 'PKCS#7', signer: 'My CN', hashAlgo: 'sha512' });
    expect(hexString(s.keyId)).toBe('81:02');
    expect(hexString(s.signature)).toBe('01:02:03');
    // no CN: OpenSSL's loop leaves the last entry; an unknown digest OID is printed dotted
    const q = pkcs7({ names: [['2.5.4.10', 'Org'], ['2.5.4.6', 'XX']], serial: Buffer.from([0xff]), digest: '1.2.3.4', sig: Buffer.from([9]) });
    expect(moduleSignature(signed(body, { idType: 2, sig: q }))).toMatchObject({ signer: 'XX', hashAlgo: '1.2.3.4' });
    expect(hexString(moduleSignature(signed(body, { idType: 2, sig: q }))!.keyId)).toBe('01');
    const r = pkcs7({ names: [], serial: Buffer.from([0]), digest: '1.3.14.3.2.26', sig: Buffer.from([9]) });
    expect(moduleSignature(signed(body, { idType: 2, sig: r }))).toMatchObject({ signer: '', hashAlgo: 'sha1', keyId: Buffer.alloc(0) });
  });

  it('PKCS#7 digest: each OpenSSL name by its OID, other OIDs dotted, an empty OID no signature', () => {
    const names: [string, string][] = [
      ['1.2.840.113549.2.2', 'md2'], ['1.2.840.113549.2.5', 'md5'], ['1.3.14.3.2.26', 'sha1'], ['1.3.36.3.2.1', 'ripemd160'],
      ['2.16.840.1.101.3.4.2.1', 'sha256'], ['2.16.840.1.101.3.4.2.4', 'sha224'], ['2.16.840.1.101.3.4.2.10', 'sha3-512'],
      ['2.16.840.1.101.3.4.2.12', 'shake256'], ['1.2.156.10197.1.401', 'sm3'], ['1.2.643.7.1.1.2.3', 'md_gost12_512'],
      ['2.16.840.1.101.3.4.2.13', '2.16.840.1.101.3.4.2.13'], ['1.2.156.10197.1.402', '1.2.156.10197.1.402'],
    ];
    for (const [text, name] of names) {
      const p = pkcs7({ names: [['2.5.4.3', 'CN']], serial: Buffer.from([1]), digest: text, sig: Buffer.from([1]) });
      expect(moduleSignature(signed(body, { idType: 2, sig: p }))?.hashAlgo).toBe(name);
    }
    // and an empty OID is a damaged message: no signature
    const e = pkcs7({ names: [['2.5.4.3', 'CN']], serial: Buffer.from([1]), digest: Buffer.from([0x06, 0x00]), sig: Buffer.from([1]) });
    expect(moduleSignature(signed(body, { idType: 2, sig: e }))).toBeUndefined();
  });

  it('PGP and X509 trailers take signer, key id and hash from the trailer', () => {
    const s = moduleSignature(signed(body, { idType: 1, hash: 2, signer: Buffer.from('Signer\0tail'), keyId: Buffer.from([0xde, 0xad]), sig: Buffer.from([7]) }))!;
    expect(s).toMatchObject({ idType: 'X509', signer: 'Signer', hashAlgo: 'sha1', algo: 'RSA' });
    expect(hexString(s.keyId)).toBe('DE:AD');
    expect(moduleSignature(signed(body, { idType: 0, hash: 8, algo: 0, sig: Buffer.from([7]) }))).toMatchObject({ idType: 'PGP', hashAlgo: 'sm3', algo: 'DSA', signer: '' });
  });

  it("an OID that OpenSSL's decoder refuses, wherever this reader passes one, means no signature (kmod shows none)", () => {
    const texts = ['1.2.840.113549.1.7.2', '1.2.840.113549.1.7.1', '2.16.840.1.101.3.4.2.1', '2.5.4.10', '2.5.4.3', '2.5.4.6', '1.2.840.113549.1.9.3', '1.2.840.113549.1.1.1'];
    const p = pkcs7({ names: [['2.5.4.10', 'Org'], ['2.5.4.3', 'My CN'], ['2.5.4.6', 'XX']], serial: Buffer.from([1]), digest: '2.16.840.1.101.3.4.2.1', sig: Buffer.from([1]), authAttrs: true });
    expect(moduleSignature(signed(body, { idType: 2, sig: p }))).toMatchObject({ signer: 'My CN', hashAlgo: 'sha256' });
    let damaged = 0;
    for (const text of texts) {
      const element = oid(text);
      for (let at = p.indexOf(element); at >= 0; at = p.indexOf(element, at + 1)) {
        const start = at + 2;
        const end = at + element.length;
        // every byte with its high bit set (no subidentifier ends), the last one only, the first padded
        const variants = [(d: Buffer) => d.fill(0x81, start, end), (d: Buffer) => (d[end - 1] |= 0x80), (d: Buffer) => (d[start] = 0x80)];
        for (const damage of variants) {
          const d = Buffer.from(p);
          damage(d);
          expect(moduleSignature(signed(body, { idType: 2, sig: d })), `${text} at ${at}`).toBeUndefined();
          damaged++;
        }
      }
    }
    // each OID once, two twice: the digest's (digestAlgorithms, the signer's) and pkcs7-data (the content's
    // type, the value of the contentType attribute)
    expect(damaged).toBe(3 * (texts.length + 2));
    // all of an OID's bytes with the high bit set once made oidText throw a TypeError (BigInt and undefined)
    const digest = oid('2.16.840.1.101.3.4.2.1');
    const allHigh = Buffer.from(p);
    allHigh.fill(0x81, p.indexOf(digest) + 2, p.indexOf(digest) + digest.length);
    expect(() => moduleSignature(signed(body, { idType: 2, sig: allHigh }))).not.toThrow();
  });

  it('issuer name values as OpenSSL decodes them: types ASN1_PRINTABLE takes, strings it converts to UTF-8 (kmod 34.2 verdicts)', () => {
    const cn = (value: Buffer, ...more: Buffer[]): Buffer => seq(set(seq(oid('2.5.4.3'), value, ...more)));
    const b = (...bytes: number[]): Buffer => Buffer.from(bytes);
    const abcd = Buffer.from('abcd');
    const parts = (tag: number, ...chunks: Buffer[]): Buffer => der(tag, ...chunks.map((c) => der(0x04, c)));
    let nested = der(0x04, Buffer.from('z'));
    const nest = (levels: number): Buffer => {
      nested = der(0x04, Buffer.from('z'));
      for (let i = 0; i < levels; i++) nested = der(0x24, nested);
      return der(0x2c, nested);
    };
    // [name, value element, signer kmod shows (latin1) or undefined for no signature]
    const cases: [string, Buffer, string | undefined][] = [
      ['BIT STRING "abcd" (0x61 unused bits)', der(0x03, abcd), undefined],
      ['ObjectDescriptor (an "unknown" tag)', der(0x07, abcd), 'abcd'],
      ['NumericString, not checked', der(0x12, abcd), 'abcd'],
      ['PrintableString', der(0x13, abcd), 'abcd'],
      ['T61String with 0xff', der(0x14, b(0xff)), '\xff'],
      ['VideotexString', der(0x15, abcd), undefined],
      ['IA5String', der(0x16, abcd), 'abcd'],
      ['VisibleString', der(0x1a, abcd), undefined],
      ['OCTET STRING', der(0x04, abcd), undefined],
      ['primitive SEQUENCE', der(0x10, abcd), undefined],
      ['application class', der(0x4c, abcd), undefined],
      ['UniversalString "abcd" (not a character)', der(0x1c, abcd), undefined],
      ['BMPString "abcd"', der(0x1e, abcd), 'abcd'],
      ['constructed UTF8String: its parts joined', parts(0x2c, Buffer.from('ab'), Buffer.from('cd')), 'abcd'],
      ['constructed UTF8String, a character across two parts', parts(0x2c, b(0xc3), b(0xa9)), '\xc3\xa9'],
      ['constructed UTF8String, any inner tag', der(0x2c, der(0x0c, Buffer.from('ab')), der(0x80, Buffer.from('cd')), der(0x45, Buffer.from('ef'))), 'abcdef'],
      ['constructed UTF8String, end-of-contents inside', der(0x2c, der(0x04, Buffer.from('ab')), b(0, 0)), undefined],
      ['constructed BIT STRING', parts(0x23, Buffer.from('ab'), Buffer.from('cd')), undefined],
      ['constructed SEQUENCE: kept encoded', parts(0x30, Buffer.from('ab'), Buffer.from('cd')), '0\x08\x04\x02ab\x04\x02cd'],
      ['string nested 5 deep', nest(5), 'z'],
      ['string nested 6 deep', nest(6), undefined],
      ['UTF-8, 4 bytes', der(0x0c, b(0xf0, 0x9f, 0x98, 0x80)), '\xf0\x9f\x98\x80'],
      ['UTF-8, U+10FFFF', der(0x0c, b(0xf4, 0x8f, 0xbf, 0xbf)), '\xf4\x8f\xbf\xbf'],
      ['UTF-8 overlong', der(0x0c, b(0xc0, 0xaf)), undefined],
      ['UTF-8 surrogate', der(0x0c, b(0xed, 0xa0, 0x80)), undefined],
      ['UTF-8 above U+10FFFF', der(0x0c, b(0xf4, 0x90, 0x80, 0x80)), undefined],
      ['UTF-8 cut', der(0x0c, b(0x61, 0x62, 0xe2, 0x82)), undefined],
      ['UTF-8 with NUL: shown up to it', der(0x0c, b(0x61, 0x62, 0, 0x63)), 'ab'],
      ['BMPString of odd length', der(0x1e, b(0, 0x61, 0)), undefined],
      ['BMPString surrogate', der(0x1e, b(0xd8, 0)), undefined],
      ['UniversalString of length 3', der(0x1c, b(0, 0, 0x61)), undefined],
      ['UniversalString above U+10FFFF', der(0x1c, b(0, 0x11, 0, 0)), undefined],
      ['BIT STRING, 3 unused bits cleared', der(0x03, b(3, 0x41, 0x42)), 'A@'],
      ['BIT STRING, 8 unused bits', der(0x03, b(8, 0xff)), undefined],
      ['BIT STRING without its first byte', der(0x03), undefined],
      ['BIT STRING of its first byte only', der(0x03, b(0)), ''],
    ];
    for (const [what, value, shown] of cases) {
      const p = pkcs7({ names: [], name: cn(value), serial: b(1), digest: '2.16.840.1.101.3.4.2.1', sig: b(1) });
      expect(moduleSignature(signed(body, { idType: 2, sig: p }))?.signer, what).toBe(shown);
    }
    const named = (name: Buffer): string | undefined => moduleSignature(signed(body, { idType: 2, sig: pkcs7({ names: [], name, serial: b(1), digest: '2.16.840.1.101.3.4.2.1', sig: b(1) }) }))?.signer;
    // an entry of three elements, or one, fails the whole name
    expect(named(cn(utf8('abc'), utf8('x')))).toBeUndefined();
    expect(named(seq(set(seq(oid('2.5.4.3')))))).toBeUndefined();
    // every entry is decoded: a bad value after the CN fails it too
    expect(named(seq(set(seq(oid('2.5.4.3'), utf8('Good'))), set(seq(oid('2.5.4.10'), der(0x0c, b(0xc3, 0x28))))))).toBeUndefined();
    // the last entry when there is no CN, kept encoded when a SEQUENCE
    expect(named(seq(set(seq(oid('2.5.4.10'), seq(der(0x02, b(1)))))))).toBe('0\x03\x02\x01\x01');
  });

  it('the SignedData as OpenSSL\'s template decoder takes it (kmod 34.2 verdicts)', () => {
    const b = (...bytes: number[]): Buffer => Buffer.from(bytes);
    const attr = seq(oid('1.2.840.113549.1.9.3'), set(oid('1.2.840.113549.1.7.1')));
    const shown = (edit: (p: Pkcs7Parts) => void) =>
      moduleSignature(signed(body, { idType: 2, sig: pkcs7({ names: [['2.5.4.3', 'CN']], serial: b(1), digest: '2.16.840.1.101.3.4.2.1', sig: b(1, 2, 3), edit }) }));
    expect(shown(() => {})).toMatchObject({ signer: 'CN', keyId: b(1), signature: b(1, 2, 3) });
    // SET OF / SEQUENCE OF: only the tag number is checked, a primitive one is read as well
    expect(shown((p) => (p.signerInfosTag = 0x11))?.signer).toBe('CN');
    expect(shown((p) => (p.digestAlgorithms[0] = 0x11))?.signer).toBe('CN');
    expect(shown((p) => (p.authAttrs = [der(0x80, attr)]))?.signer).toBe('CN');
    expect(shown((p) => (p.issuerAndSerial = seq(der(0x10, set(seq(oid('2.5.4.3'), utf8('P')))), der(0x02, b(1)))))?.signer).toBe('P');
    // but a SEQUENCE must be constructed
    expect(shown((p) => (p.issuerAndSerial[0] = 0x10))).toBeUndefined();
    // a constructed OCTET STRING: its parts joined, whatever their tags
    expect(shown((p) => (p.encryptedDigest = der(0x24, der(0x04, b(1)), der(0x24, der(0x0c, b(2, 3))))))?.signature).toEqual(b(1, 2, 3));
    // INTEGERs (versions, serial): not empty, no needless padding
    for (const [bytes, ok] of [[b(), false], [b(0, 0, 1), false], [b(0xff, 0x80), false], [b(0xff, 0xff), false], [b(0, 0x80), true], [b(0xff, 0), true], [b(0x80, 1), true], [b(0), true]] as [Buffer, boolean][]) {
      const hex = bytes.toString('hex');
      expect(shown((p) => (p.version = der(0x02, bytes))) !== undefined, `version ${hex}`).toBe(ok);
      expect(shown((p) => (p.siVersion = der(0x02, bytes))) !== undefined, `signer version ${hex}`).toBe(ok);
      expect(shown((p) => (p.issuerAndSerial = seq(seq(), der(0x02, bytes)))) !== undefined, `serial ${hex}`).toBe(ok);
    }
    // optional parts in their places, nothing more
    expect(shown((p) => (p.beforeSignerInfos = [der(0xa0), der(0xa1)]))?.signer).toBe('CN');
    expect(shown((p) => (p.beforeSignerInfos = [der(0xa1), der(0xa0)]))).toBeUndefined();
    expect(shown((p) => (p.afterDigest = [der(0xa1, attr)]))?.signer).toBe('CN');
    expect(shown((p) => (p.afterDigest = [der(0x81, attr)]))?.signer).toBe('CN');
    expect(shown((p) => (p.afterDigest = [der(0xa1, attr), der(0xa1, attr)]))).toBeUndefined();
    expect(shown((p) => (p.afterDigest = [der(0x05)]))).toBeUndefined();
    expect(shown((p) => (p.afterDigest = [der(0xa1, seq(Buffer.from([0x06, 0x01, 0x83]), set()))]))).toBeUndefined();
    expect(shown((p) => (p.issuerAndSerial = seq(seq(), der(0x02, b(1)), der(0x05))))).toBeUndefined();
    expect(shown((p) => (p.digestAlgorithm = seq(oid('2.16.840.1.101.3.4.2.1'), der(0x05), der(0x05))))).toBeUndefined();
    expect(shown((p) => (p.content = seq(oid('1.2.840.113549.1.7.1'), der(0xa0, der(0x04, b(1))), der(0x05))))).toBeUndefined();
    expect(shown((p) => (p.outerExtra = [der(0x05)]))).toBeUndefined();
  });

  it('invalid trailers mean no signature', () => {
    const p = pkcs7({ names: [['2.5.4.3', 'CN']], serial: Buffer.from([1]), digest: '2.16.840.1.101.3.4.2.1', sig: Buffer.from([1]) });
    expect(moduleSignature(body)).toBeUndefined();
    expect(moduleSignature(Buffer.from(SIG_MAGIC))).toBeUndefined();
    expect(moduleSignature(signed(body, { idType: 3, sig: p }))).toBeUndefined();
    expect(moduleSignature(signed(body, { idType: 2, algo: 2, sig: p }))).toBeUndefined();
    expect(moduleSignature(signed(body, { idType: 2, hash: 9, sig: p }))).toBeUndefined();
    expect(moduleSignature(signed(Buffer.alloc(0), { idType: 2, sig: Buffer.alloc(0) }))).toBeUndefined();
    // sig_len larger than what precedes the trailer
    const big = signed(body, { idType: 2, sig: p });
    big.writeUInt32BE(1_000_000, big.length - SIG_MAGIC.length - 4);
    expect(moduleSignature(big)).toBeUndefined();
    // every cut and every flipped byte of the PKCS#7 message: a result or undefined, never a throw
    for (let n = 0; n < p.length; n++) expect(() => moduleSignature(signed(body, { idType: 2, sig: p.subarray(0, n) }))).not.toThrow();
    for (let i = 0; i < p.length; i++) {
      const d = Buffer.from(p);
      d[i] ^= 0xff;
      expect(() => moduleSignature(signed(body, { idType: 2, sig: d }))).not.toThrow();
    }
  });
});
