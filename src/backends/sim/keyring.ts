// The simulated kernel's trusted keys for module signatures: the X.509 certificates built into the kernel
// image (CONFIG_SYSTEM_TRUSTED_KEYS and the build-time module signing key), found in the compressed
// payload of /boot/vmlinuz-<release>, or given as PEM/DER files. Extracting them means decompressing the
// whole kernel, so the result is cached in the state directory.
import * as crypto from 'node:crypto';
import * as fs from '../../file/binary-os';
import { binaryFromUtf8 } from '../../file/binary-os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { decompress, detectCompression } from '../../file/decompress';
import { moduleSignature } from '../../file/signature';
import { readBinaryString } from '../../file/read-text';
import { EBADMSG, EKEYREJECTED, ENOKEY } from '../../errno';

/** DER certificates inside a blob: X.509 v3 starts "30 82 len 30 82 len a0 03 02 01 02". */
export function findCertificates(data: Uint8Array): Buffer[] {
  const b = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const out: Buffer[] = [];
  const lead = Buffer.from([0x30, 0x82]);
  for (let i = b.indexOf(lead); i >= 0 && i + 12 < b.length; i = b.indexOf(lead, i + 1)) {
    if (b[i + 4] !== 0x30 || b[i + 5] !== 0x82 || b[i + 8] !== 0xa0 || b[i + 9] !== 3 || b[i + 10] !== 2 || b[i + 11] !== 1) continue;
    const len = ((b[i + 2] << 8) | b[i + 3]) + 4;
    if (i + len > b.length) continue;
    const der = Buffer.from(b.subarray(i, i + len));
    try {
      new crypto.X509Certificate(der);
      out.push(der);
      i += len - 1;
    } catch {
      /* not a certificate after all */
    }
  }
  return out;
}

/** The kernel proper inside a bzImage (or the file itself when it is not one). */
function kernelPayload(file: string): Uint8Array {
  const b = fs.readFileSync(file);
  if (b.length > 0x250 && b.toString('latin1', 0x202, 0x206) === 'HdrS') {
    const setupSects = b[0x1f1] || 4;
    const off = (setupSects + 1) * 512 + b.readUInt32LE(0x248);
    const len = b.readUInt32LE(0x24c);
    const payload = b.subarray(off, off + len);
    if (detectCompression(payload) === 'none') return payload;
    // the kernel's build appends the uncompressed size after the stream
    if (detectCompression(payload) === 'zstd') {
      // the zstd program is much faster than the JavaScript decoder on a 50 MB kernel
      const r = spawnSync('zstd', ['-dcq'], { input: payload.subarray(0, payload.length - 4), maxBuffer: 1 << 30 });
      if (r.status === 0 && r.stdout.length > 0) return r.stdout;
    }
    for (const cut of [0, 4]) {
      try {
        return decompress(payload.subarray(0, payload.length - cut), file);
      } catch {
        /* try the other length */
      }
    }
    return new Uint8Array(0);
  }
  return detectCompression(b) === 'none' ? b : decompress(b, file);
}

/** Certificates from PEM or DER files. */
function certificatesFromFiles(files: string[]): Buffer[] {
  const out: Buffer[] = [];
  for (const f of files) {
    const text = fs.readFileSync(f);
    const pem = text.toString('latin1').match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g);
    if (pem) for (const p of pem) out.push(Buffer.from(new crypto.X509Certificate(p).raw));
    else out.push(...findCertificates(text));
  }
  return out;
}

const memo = new Map<string, crypto.X509Certificate[]>();

/** Where extracted keyrings are cached: $XDG_CACHE_HOME/kmodts, else ~/.cache/kmodts. */
export function keyCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CACHE_HOME && path.isAbsolute(env.XDG_CACHE_HOME) ? env.XDG_CACHE_HOME : path.join(env.HOME || binaryFromUtf8(require('node:os').homedir()), '.cache');
  return path.join(base, 'kmodts');
}

/**
 * The trusted certificates for a kernel: explicit key files, else those built into its vmlinuz, cached
 * in cacheDir; undefined when there is no source (the simulator then trusts well-formed signatures).
 */
export function kernelKeys(opts: { keys?: string[]; vmlinuz?: string }, cacheDir: string): crypto.X509Certificate[] | undefined {
  let ders: Buffer[] | undefined;
  const id = JSON.stringify(opts);
  const hit = memo.get(id);
  if (hit) return hit;
  if (opts.keys && opts.keys.length > 0) ders = certificatesFromFiles(opts.keys);
  else if (opts.vmlinuz) {
    let st: fs.Stats;
    try {
      st = fs.statSync(opts.vmlinuz);
    } catch {
      return undefined;
    }
    const key = crypto.createHash('sha256').update(`${opts.vmlinuz}\0${st.size}\0${st.mtimeMs}`).digest('hex').slice(0, 16);
    const cache = path.join(cacheDir, `keyring-${key}.json`);
    try {
      ders = (JSON.parse(fs.readFileSync(cache, 'utf8')) as string[]).map((s) => Buffer.from(s, 'base64'));
    } catch {
      ders = findCertificates(kernelPayload(opts.vmlinuz));
      try {
        fs.mkdirSync(cacheDir, { recursive: true });
        fs.writeFileSync(cache + '.tmp', JSON.stringify(ders.map((d) => d.toString('base64'))));
        fs.renameSync(cache + '.tmp', cache);
      } catch {
        /* a cache only */
      }
    }
  }
  if (!ders || ders.length === 0) return undefined;
  const certs = ders.map((d) => new crypto.X509Certificate(d));
  memo.set(id, certs);
  return certs;
}

/**
 * verify_pkcs7_signature() of a module's signed content: 0, or -ENOKEY when no trusted key matches the
 * signer, -EKEYREJECTED when the matching key does not verify the content, -EBADMSG when the message
 * cannot be parsed.
 */
export function verifyModuleSignature(signedImage: Uint8Array, contentLength: number, certs: crypto.X509Certificate[], cacheDir?: string): number {
  const info = moduleSignature(signedImage);
  if (!info) return -EBADMSG;
  const content = signedImage.subarray(0, contentLength);
  // public-key verification costs ~1.4 ms a module; its verdict for these exact bytes and keys is kept
  const id = crypto.createHash('sha256');
  for (const c of certs) id.update(c.fingerprint256);
  id.update(signedImage);
  const key = id.digest('hex');
  const verdicts = cacheDir !== undefined ? verdictCache(cacheDir) : undefined;
  const known = verdicts?.map.get(key);
  if (known !== undefined) return known;
  const r = verifyWithKeys(info, content, certs);
  if (verdicts) {
    verdicts.map.set(key, r);
    try {
      fs.mkdirSync(cacheDir as string, { recursive: true });
      fs.appendFileSync(verdicts.file, `${key} ${r}\n`);
    } catch {
      /* a cache only */
    }
  }
  return r;
}

const verdictCaches = new Map<string, { file: string; map: Map<string, number> }>();

/** Verdicts of earlier verifications, one "sha256 result" line each (appended; torn lines skipped). */
function verdictCache(dir: string): { file: string; map: Map<string, number> } {
  let c = verdictCaches.get(dir);
  if (c) return c;
  c = { file: path.join(dir, 'signature-verdicts'), map: new Map() };
  try {
    for (const line of readBinaryString(c.file).split('\n')) {
      const m = /^([0-9a-f]{64}) (-?\d+)$/.exec(line);
      if (m) c.map.set(m[1], Number(m[2]));
    }
  } catch {
    /* none yet */
  }
  verdictCaches.set(dir, c);
  return c;
}

function verifyWithKeys(info: NonNullable<ReturnType<typeof moduleSignature>>, content: Uint8Array, certs: crypto.X509Certificate[]): number {
  const serial = info.keyId.toString('hex').toUpperCase().replace(/^0+/, '');
  let matched = false;
  for (const c of certs) {
    const mine = c.serialNumber.toUpperCase().replace(/^0+/, '');
    if (serial !== '' && mine !== serial) continue;
    matched = true;
    try {
      if (crypto.verify(info.hashAlgo, content, c.publicKey, info.signature)) return 0;
    } catch {
      /* unusable algorithm: no match */
    }
  }
  return matched ? -EKEYREJECTED : -ENOKEY;
}
