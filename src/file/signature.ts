// The module signature trailer ("~Module signature appended~\n") and the PKCS#7 message inside it, read
// the way kmod 34.2 built with OpenSSL reports them (libkmod-signature.c): signer = the issuer's
// commonName, key = the issuer serial number's magnitude bytes, hash = the digest algorithm's OpenSSL
// long name (or dotted OID), signature = the encrypted digest.

import { nativeFunction } from '../native-addon';

export const SIG_MAGIC = '~Module signature appended~\n';
const SIG_MAGIC_BYTES = Buffer.from(SIG_MAGIC, 'latin1');

const PKEY_ALGO = ['DSA', 'RSA'];
const PKEY_HASH = ['md4', 'md5', 'sha1', 'rmd160', 'sha256', 'sha384', 'sha512', 'sha224', 'sm3'];
const PKEY_ID_TYPE = ['PGP', 'X509', 'PKCS#7'];

export interface SignatureInfo {
  /** 'PGP' | 'X509' | 'PKCS#7' */
  idType: string;
  /** signer name (raw bytes as latin1); empty when PKCS#7 has no issuer name entries */
  signer: string;
  keyId: Buffer;
  hashAlgo: string;
  signature: Buffer;
  /** 'DSA' | 'RSA' from the trailer (not set for PKCS#7, as in kmod) */
  algo?: string;
}

/** struct module_signature: algo, hash, id_type, signer_len, key_id_len, pad[3], be32 sig_len */
export const MODSIG_SIZE = 12;

/**
 * The signature of a module image, or undefined when there is none or the trailer/PKCS#7 message is not
 * valid (kmod then shows no signature keys at all).
 */
export function moduleSignature(image: Uint8Array): SignatureInfo | undefined {
  const mem = Buffer.isBuffer(image) ? image : Buffer.from(image.buffer, image.byteOffset, image.byteLength);
  const magicLen = SIG_MAGIC.length;
  let size = mem.length;
  if (size < magicLen) return undefined;
  size -= magicLen;
  for (let i = 0; i < magicLen; i++) if (mem[size + i] !== SIG_MAGIC_BYTES[i]) return undefined;
  if (size < MODSIG_SIZE) return undefined;
  size -= MODSIG_SIZE;
  const algo = mem[size];
  const hash = mem[size + 1];
  const idType = mem[size + 2];
  const signerLen = mem[size + 3];
  const keyIdLen = mem[size + 4];
  const sigLen = mem.readUInt32BE(size + 8);
  if (algo >= PKEY_ALGO.length || hash >= PKEY_HASH.length || idType >= PKEY_ID_TYPE.length) return undefined;
  if (sigLen === 0 || size < sigLen + signerLen + keyIdLen) return undefined;
  if (idType === 2) return pkcs7Info(mem.subarray(size - sigLen, size));
  const sigStart = size - sigLen;
  const keyStart = sigStart - keyIdLen;
  const signerStart = keyStart - signerLen;
  return {
    idType: PKEY_ID_TYPE[idType],
    // printed with %s: stops at a NUL
    signer: cString(mem.toString('latin1', signerStart, keyStart)),
    keyId: Buffer.from(mem.subarray(keyStart, sigStart)),
    hashAlgo: PKEY_HASH[hash],
    signature: Buffer.from(mem.subarray(sigStart, size)),
    algo: PKEY_ALGO[algo],
  };
}

function cString(s: string): string {
  const z = s.indexOf('\0');
  return z < 0 ? s : s.slice(0, z);
}

/** "00".."FF", by byte value */
const HEX_PAIRS = Array.from({ length: 256 }, (_, b) => (b < 16 ? '0' : '') + b.toString(16).toUpperCase());

/** the addon's hexColumns (native/modinfo_parts.c), null without it; looked up at the first use */
let nativeHex: ((data: Uint8Array) => string) | null | undefined;

/** Whether hexString uses the addon from now on (false: JavaScript; tests compare the two). Returns whether it does. */
export function useNativeHex(on: boolean): boolean {
  nativeHex = on ? nativeFunction('hexColumns') : null;
  return nativeHex !== null;
}

/** kmod's hex form: "%02X" joined by ':', a ":\n\t\t" line break after every 20th byte when more follow. */
export function hexString(data: Uint8Array): string {
  // modinfo of a whole tree formats a signature per module, in unoptimized JavaScript (bin/kmodts.js)
  if (nativeHex === undefined) nativeHex = nativeFunction('hexColumns');
  return nativeHex !== null ? nativeHex(data) : hexStringInJs(data);
}

function hexStringInJs(data: Uint8Array): string {
  const n = data.length;
  // rows of 20 joined natively: in a cold process (modinfo runs its code unoptimized) a loop writing
  // three bytes per byte cost ~30 µs for a 512-byte signature, this ~19
  const rows = new Array<string>(Math.ceil(n / 20));
  const row = new Array<string>(20);
  for (let i = 0, r = 0; i < n; i += 20, r++) {
    const end = Math.min(n, i + 20);
    if (end - i !== row.length) row.length = end - i;
    for (let j = i; j < end; j++) row[j - i] = HEX_PAIRS[data[j]];
    rows[r] = row.join(':');
  }
  return rows.join(':\n\t\t');
}

// ---- a small DER reader, enough for PKCS#7 SignedData ----
// Elements are offsets into the one message buffer (no Buffer per element): a module signature has a
// few dozen of them, and modinfo reads one signature per module.

interface Der {
  tag: number;
  constructed: boolean;
  /** where its header starts */
  at: number;
  /** content bytes: buf[start..end) */
  start: number;
  end: number;
}

class DerError extends Error {}

/** the element at buf[off..], which must end by `limit` (its parent's content end) */
function readDer(buf: Buffer, off: number, limit: number): Der {
  if (off + 2 > limit) throw new DerError('truncated');
  const tag = buf[off];
  if ((tag & 0x1f) === 0x1f) throw new DerError('high tag numbers are not used here');
  let len = buf[off + 1];
  let hdr = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new DerError('unsupported length');
    if (off + 2 + n > limit) throw new DerError('truncated');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[off + 2 + i];
    hdr += n;
  }
  if (off + hdr + len > limit) throw new DerError('truncated');
  return { tag, constructed: (tag & 0x20) !== 0, at: off, start: off + hdr, end: off + hdr + len };
}

/** the elements one after another in d's content */
function contentElements(buf: Buffer, d: Der): Der[] {
  const out: Der[] = [];
  for (let off = d.start; off < d.end; ) {
    const c = readDer(buf, off, d.end);
    out.push(c);
    off = c.end;
  }
  return out;
}

function children(buf: Buffer, d: Der): Der[] {
  if (!d.constructed) throw new DerError('not constructed');
  return contentElements(buf, d);
}

/** whether d has the class and tag number of identifier octet `tag`, in either form (primitive or constructed) */
function inEitherForm(d: Der | undefined, tag: number): d is Der {
  return d !== undefined && (d.tag & ~0x20) === (tag & ~0x20);
}

/**
 * The elements of a SET OF or SEQUENCE OF with tag number `tag & 0x1f` in class `tag & 0xc0`: OpenSSL's
 * template decoder checks only the tag number and class of these, so their primitive form is taken
 * too, its content read as elements.
 */
function elementsOf(buf: Buffer, d: Der | undefined, tag: number): Der[] {
  if (!inEitherForm(d, tag)) throw new DerError(`expected tag ${tag}`);
  return contentElements(buf, d);
}

/** An INTEGER as c2i_ASN1_INTEGER takes it: not empty, no padding byte where none is needed. */
function checkedInteger(buf: Buffer, d: Der | undefined): Der {
  const n = expect(d, INTEGER);
  const len = n.end - n.start;
  if (len === 0) throw new DerError('empty INTEGER');
  if (len > 1) {
    const first = buf[n.start];
    const negative = first & 0x80;
    let pad = first === 0;
    if (first === 0xff) {
      // "one less than the minimal negative" of its length is not padded
      pad = false;
      for (let i = n.start + 1; i < n.end; i++) if (buf[i] !== 0) pad = true;
    }
    if (pad && negative === (buf[n.start + 1] & 0x80)) throw new DerError('INTEGER with illegal padding');
  }
  return n;
}

function expect(d: Der | undefined, tag: number): Der {
  if (!d || d.tag !== tag) throw new DerError(`expected tag ${tag}`);
  return d;
}

// identifier octets, whole (class, constructed bit and tag number), as a DER element starts
const SEQUENCE = 0x30;
const SET = 0x31;
const INTEGER = 0x02;
const OCTET_STRING = 0x04;
const OID = 0x06;

/**
 * An OID's content as OpenSSL decodes it (c2i_ASN1_OBJECT): at least one byte, the last one ending a
 * subidentifier, and no subidentifier padded with a leading 0x80. Anything else fails d2i_PKCS7, and
 * kmod then shows no signature.
 */
function checkOid(buf: Buffer, d: Der): void {
  if (d.end === d.start) throw new DerError('empty OID');
  if (buf[d.end - 1] & 0x80) throw new DerError('OID cut inside a subidentifier');
  for (let i = d.start; i < d.end; i++) {
    if (buf[i] === 0x80 && (i === d.start || (buf[i - 1] & 0x80) === 0)) throw new DerError('OID subidentifier padded with 0x80');
  }
}

/**
 * Each element a SEQUENCE that starts with a valid OID (an AlgorithmIdentifier, a ContentInfo, an
 * Attribute): the OIDs that d2i_PKCS7 decodes where this reader passes by. Each has one more element
 * at most (the algorithm's parameters, the content, the attribute's values): a longer SEQUENCE is
 * OpenSSL's SEQUENCE_LENGTH_MISMATCH.
 */
function leadingOids(buf: Buffer, elements: (Der | undefined)[]): void {
  for (let k = 0; k < elements.length; k++) {
    const parts = children(buf, expect(elements[k], SEQUENCE));
    if (parts.length > 2) throw new DerError('SEQUENCE longer than its type');
    checkOid(buf, expect(parts[0], OID));
  }
}

/** Attributes (SEQUENCE { type OID, values SET OF ANY }): their types, and the values that are OIDs */
function attributeOids(buf: Buffer, attributes: Der[]): void {
  leadingOids(buf, attributes);
  for (let k = 0; k < attributes.length; k++) {
    const values = elementsOf(buf, children(buf, attributes[k])[1], SET); // (leadingOids: no third element)
    for (let j = 0; j < values.length; j++) if (values[j].tag === OID) checkOid(buf, values[j]);
  }
}

/** the dotted form of a valid OID (OBJ_obj2txt) */
function oidText(buf: Buffer, d: Der): string {
  checkOid(buf, d);
  const parts: bigint[] = [];
  let v = 0n;
  for (let i = d.start; i < d.end; i++) {
    const b = buf[i];
    v = (v << 7n) | BigInt(b & 0x7f);
    if (!(b & 0x80)) {
      parts.push(v);
      v = 0n;
    }
  }
  const first = parts[0];
  const a = first < 40n ? 0n : first < 80n ? 1n : 2n;
  return [a, first - a * 40n, ...parts.slice(1)].join('.');
}

/**
 * Whether the OID element d is the one whose encoding is `encoded`: a valid OID has one encoding
 * (checkOid), so its bytes decide.
 */
function oidIs(buf: Buffer, d: Der, encoded: Buffer): boolean {
  checkOid(buf, d);
  const n = d.end - d.start;
  if (n !== encoded.length) return false;
  for (let i = 0; i < n; i++) if (buf[d.start + i] !== encoded[i]) return false;
  return true;
}

/** OpenSSL long names of the digest OIDs a module signature can use (what OBJ_obj2txt prints) */
const DIGEST_NAMES: Record<string, string> = {
  '1.2.840.113549.2.2': 'md2',
  '1.2.840.113549.2.4': 'md4',
  '1.2.840.113549.2.5': 'md5',
  '1.3.14.3.2.26': 'sha1',
  '1.3.36.3.2.1': 'ripemd160',
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
  '2.16.840.1.101.3.4.2.4': 'sha224',
  '2.16.840.1.101.3.4.2.5': 'sha512-224',
  '2.16.840.1.101.3.4.2.6': 'sha512-256',
  '2.16.840.1.101.3.4.2.7': 'sha3-224',
  '2.16.840.1.101.3.4.2.8': 'sha3-256',
  '2.16.840.1.101.3.4.2.9': 'sha3-384',
  '2.16.840.1.101.3.4.2.10': 'sha3-512',
  '2.16.840.1.101.3.4.2.11': 'shake128',
  '2.16.840.1.101.3.4.2.12': 'shake256',
  '1.2.156.10197.1.401': 'sm3',
  '1.2.643.7.1.1.2.2': 'md_gost12_256',
  '1.2.643.7.1.1.2.3': 'md_gost12_512',
};

/** an OID's canonical DER content bytes, as a latin1 string (the inverse of oidText on those) */
function oidBytes(text: string): string {
  const parts = text.split('.').map(BigInt);
  const arcs = [parts[0] * 40n + parts[1], ...parts.slice(2)];
  let out = '';
  for (const arc of arcs) {
    let groups = String.fromCharCode(Number(arc & 0x7fn));
    for (let v = arc >> 7n; v > 0n; v >>= 7n) groups = String.fromCharCode(Number(v & 0x7fn) | 0x80) + groups;
    out += groups;
  }
  return out;
}

/**
 * DIGEST_NAMES by the canonical encodings of their OIDs: the OID of a signature is looked up by its
 * bytes (oidText, with BigInts, cost ~4 µs a module); any other encoding goes through oidText
 */
const DIGEST_NAMES_BY_BYTES = new Map(Object.entries(DIGEST_NAMES).map(([oid, name]) => [oidBytes(oid), name]));

/** the digest algorithm's name (OpenSSL's long name, else the dotted OID) */
function digestName(buf: Buffer, d: Der): string {
  // (a table key is a valid encoding; any other bytes go through oidText, which checks them)
  const known = d.end - d.start <= 16 ? DIGEST_NAMES_BY_BYTES.get(buf.toString('latin1', d.start, d.end)) : undefined;
  if (known !== undefined) return known;
  const text = oidText(buf, d);
  return DIGEST_NAMES[text] ?? text;
}

/** the content bytes of 2.5.4.3 (commonName) and 1.2.840.113549.1.7.2 (pkcs7-signedData) */
const COMMON_NAME = Buffer.from([0x55, 0x04, 0x03]);
const PKCS7_SIGNED = Buffer.from([0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02]);

/**
 * The value of the issuer's first CN (or, as kmod's loop over the entries leaves it, of the last entry
 * when none is a CN). Every entry is checked (its type, its value: nameEntryValue), as d2i_PKCS7
 * decodes the whole name first.
 */
function issuerName(buf: Buffer, name: Der): string | undefined {
  let last: string | undefined;
  let found: string | undefined;
  // (indexed, no destructuring: unoptimized, those allocate iterators (decisions.md))
  const rdns = elementsOf(buf, name, SEQUENCE);
  for (let r = 0; r < rdns.length; r++) {
    const atvs = elementsOf(buf, rdns[r], SET);
    for (let a = 0; a < atvs.length; a++) {
      const pair = children(buf, expect(atvs[a], SEQUENCE));
      if (pair.length !== 2) throw new DerError('attribute without value, or with more than one');
      const isCommonName = oidIs(buf, expect(pair[0], OID), COMMON_NAME);
      const value = nameEntryValue(buf, pair[1]);
      if (found !== undefined) continue;
      last = value;
      if (isCommonName) found = value;
    }
  }
  const v = found ?? last;
  return v === undefined ? undefined : cString(v);
}

/**
 * The universal tags OpenSSL takes as a name entry's value (ASN1_PRINTABLE: ASN1_tag2bit(tag) &
 * B_ASN1_PRINTABLE): BIT STRING, UTF8String, SEQUENCE, the string types but VideotexString,
 * VisibleString, GraphicString, GeneralString, and the tags it counts as unknown.
 */
const PRINTABLE_TAGS = new Set([3, 7, 8, 9, 11, 12, 13, 14, 15, 16, 18, 19, 20, 22, 28, 29, 30]);
// universal tag numbers alone (an identifier octet's low five bits)
const BIT_STRING_TAG = 3;
const UTF8STRING_TAG = 12;
const SEQUENCE_TAG = 16;
const UNIVERSALSTRING_TAG = 28;
const BMPSTRING_TAG = 30;

/**
 * A name entry's value as OpenSSL holds it (the bytes X509_NAME_ENTRY_get_data gives kmod, latin1), or
 * a DerError where decoding the name fails: a class or tag ASN1_PRINTABLE does not take, a primitive
 * SEQUENCE, a BIT STRING without its unused-bits byte or with more than 7, a BMPString or
 * UniversalString of a length that is not a whole number of characters, and (x509_name_canon, which
 * converts those types to UTF-8) a character that is not Unicode or UTF-8 that is not valid.
 */
function nameEntryValue(buf: Buffer, d: Der): string {
  const tag = d.tag & 0x1f;
  if ((d.tag & 0xc0) !== 0 || !PRINTABLE_TAGS.has(tag)) throw new DerError('name entry value of a type ASN1_PRINTABLE does not take');
  let s: string;
  if (tag === SEQUENCE_TAG) {
    if (!d.constructed) throw new DerError('primitive SEQUENCE');
    return buf.toString('latin1', d.at, d.end); // kept encoded, header and all
  }
  s = d.constructed ? collectedString(buf, d, 0) : buf.toString('latin1', d.start, d.end);
  if (tag === BIT_STRING_TAG) {
    // c2i_ASN1_BIT_STRING: the unused-bits count first, those bits cleared in the last byte
    if (s.length < 1 || s.charCodeAt(0) > 7) throw new DerError('bad BIT STRING');
    const unused = s.charCodeAt(0);
    s = s.slice(1);
    if (s.length > 0) s = s.slice(0, -1) + String.fromCharCode(s.charCodeAt(s.length - 1) & (0xff << unused) & 0xff);
  } else if (tag === BMPSTRING_TAG || tag === UNIVERSALSTRING_TAG) {
    const width = tag === BMPSTRING_TAG ? 2 : 4;
    if (s.length % width !== 0) throw new DerError('string cut inside a character');
    for (let i = 0; i < s.length; i += width) {
      let v = 0;
      for (let k = 0; k < width; k++) v = v * 256 + s.charCodeAt(i + k);
      if (!unicodeValid(v)) throw new DerError('not a Unicode character');
    }
  } else if (tag === UTF8STRING_TAG && !validUtf8(s)) throw new DerError('invalid UTF-8');
  return s;
}

/** The parts of a constructed string joined, as asn1_collect() does: any tag, nested at most 5 deep. */
function collectedString(buf: Buffer, d: Der, depth: number): string {
  let s = '';
  for (let off = d.start; off < d.end; ) {
    if (off + 2 <= d.end && buf[off] === 0 && buf[off + 1] === 0) throw new DerError('end-of-contents inside a definite length');
    const part = readDer(buf, off, d.end);
    if (!part.constructed) s += buf.toString('latin1', part.start, part.end);
    else if (depth >= 5) throw new DerError('string nested too deep');
    else s += collectedString(buf, part, depth + 1);
    off = part.end;
  }
  return s;
}

/** is_unicode_valid(): at most U+10FFFF, not a surrogate */
function unicodeValid(v: number): boolean {
  return v <= 0x10ffff && (v < 0xd800 || v > 0xdfff);
}

/** UTF-8 as OpenSSL's UTF8_getc() takes it (1 to 4 bytes, shortest form) with valid characters only. */
function validUtf8(s: string): boolean {
  for (let i = 0; i < s.length; ) {
    const b = s.charCodeAt(i);
    if (b < 0x80) {
      i++;
      continue;
    }
    const n = (b & 0xe0) === 0xc0 ? 2 : (b & 0xf0) === 0xe0 ? 3 : (b & 0xf8) === 0xf0 ? 4 : 0;
    if (n === 0 || i + n > s.length) return false;
    let v = b & (0xff >> (n + 1));
    for (let k = 1; k < n; k++) {
      const c = s.charCodeAt(i + k);
      if ((c & 0xc0) !== 0x80) return false;
      v = v * 64 + (c & 0x3f);
    }
    if (v < (n === 2 ? 0x80 : n === 3 ? 0x800 : 0x10000) || !unicodeValid(v)) return false;
    i += n;
  }
  return true;
}

/** The magnitude bytes of a DER INTEGER without leading zeros (BN_bn2bin). */
function integerMagnitude(body: Buffer): Buffer {
  let b = body;
  if (b.length > 0 && b[0] & 0x80) {
    // negative: two's complement → magnitude
    const m = Buffer.from(b);
    let carry = 1;
    for (let i = m.length - 1; i >= 0; i--) {
      const x = (~m[i] & 0xff) + carry;
      m[i] = x & 0xff;
      carry = x >> 8;
    }
    b = m;
  }
  let i = 0;
  while (i < b.length && b[i] === 0) i++;
  return Buffer.from(b.subarray(i));
}

function pkcs7Info(raw: Buffer): SignatureInfo | undefined {
  try {
    const ci = children(raw, expect(readDer(raw, 0, raw.length), SEQUENCE));
    const contentType = expect(ci[0], OID);
    if (!oidIs(raw, contentType, PKCS7_SIGNED)) return undefined;
    const explicit = ci[1];
    if (!explicit || explicit.tag !== 0xa0 || ci.length > 2) return undefined;
    const sd = children(raw, expect(children(raw, explicit)[0], SEQUENCE));
    // version, digestAlgorithms, contentInfo, [0] certificates, [1] crls, signerInfos
    checkedInteger(raw, sd[0]);
    leadingOids(raw, elementsOf(raw, sd[1], SET));
    leadingOids(raw, [sd[2]]);
    let j = 3;
    if (inEitherForm(sd[j], 0x80)) j++;
    if (inEitherForm(sd[j], 0x81)) j++;
    if (sd.length !== j + 1) throw new DerError('SignedData of the wrong length');
    const infos = elementsOf(raw, sd[j], SET);
    if (infos.length === 0) return undefined;
    // version, issuerAndSerialNumber, digestAlgorithm, [0] authenticatedAttributes,
    // digestEncryptionAlgorithm, encryptedDigest, [1] unauthenticatedAttributes
    const si = children(raw, expect(infos[0], SEQUENCE));
    checkedInteger(raw, si[0]);
    const ias = children(raw, expect(si[1], SEQUENCE));
    if (ias.length !== 2) throw new DerError('IssuerAndSerialNumber of the wrong length');
    const issuer = ias[0];
    const serial = checkedInteger(raw, ias[1]);
    leadingOids(raw, [si[2]]);
    const hashAlgo = digestName(raw, children(raw, si[2])[0]);
    let k = 3;
    if (inEitherForm(si[k], 0x80)) attributeOids(raw, elementsOf(raw, si[k++], 0xa0));
    leadingOids(raw, [si[k]]);
    // (a constructed OCTET STRING is taken too, its parts joined)
    const encDigest = si[k + 1];
    if (!inEitherForm(encDigest, OCTET_STRING)) throw new DerError('expected the encrypted digest');
    const rest = si.length - (k + 2);
    if (rest > 1 || (rest === 1 && !inEitherForm(si[k + 2], 0x81))) throw new DerError('SignerInfo of the wrong length');
    if (rest === 1) attributeOids(raw, elementsOf(raw, si[k + 2], 0xa1));
    return {
      idType: 'PKCS#7',
      signer: issuerName(raw, issuer) ?? '',
      keyId: integerMagnitude(raw.subarray(serial.start, serial.end)),
      hashAlgo,
      signature: encDigest.constructed ? Buffer.from(collectedString(raw, encDigest, 0), 'latin1') : Buffer.from(raw.subarray(encDigest.start, encDigest.end)),
    };
  } catch (err) {
    if (err instanceof DerError) return undefined;
    throw err;
  }
}
