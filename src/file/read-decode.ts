// A module file read and decompressed off the JavaScript thread: on libuv's thread pool by the addon
// (native/decode_napi.c readDecodeImage) when it is there, no worker thread involved; otherwise read
// asynchronously and decoded here by decompress() (its WebAssembly libraries). Either way the outcome
// is decompress()'s: the same images, the same DecompressErrors.
import * as fs from './binary-os';
import { binaryString } from './binary-os';
import { errnoOf } from '../errno';
import { decompress, detectCompression, DecompressError, sizelessUncompressed, type Compression } from './decompress';
import { nativeDecoder, NativeKind, NativeStatus, resultImage, resultRaw, type NativeDecodeResult } from './native-decode';

/** the file's bytes and its image (the bytes themselves when not compressed), or why it cannot be decoded */
export type ReadDecoded =
  | { raw: Buffer; compression: Compression; image: Buffer }
  | { raw: Buffer; compression: Compression; error: DecompressError }
  /** the file cannot be read: the file system's errno */
  | { readErrno: number };

/**
 * Buffers to reuse: the image and the file's bytes are written there when they fit (else into buffers
 * of their own). The caller leaves them alone until the promise settles, and the result's `raw` and
 * `image` may be views of them.
 */
export interface DecodeBuffers {
  image?: Uint8Array;
  raw?: Uint8Array;
}

const KINDS: Compression[] = ['none', 'xz', 'zstd', 'gzip'];

/** decompress()'s outcome for bytes the native decoder left to it (gzip, or a library missing) */
function decodeHere(raw: Buffer, file: string): ReadDecoded {
  const compression = detectCompression(raw);
  try {
    return { raw, compression, image: decompress(raw, file) };
  } catch (err) {
    if (err instanceof DecompressError) return { raw, compression, error: err };
    throw err;
  }
}

/** The bytes of `file`, as the addon's read_file (native/decompress.c) gives them (sizelessUncompressed's rule). */
async function readModuleBytes(file: string): Promise<Buffer> {
  const handle = await fs.promises.open(file, 'r');
  try {
    const size = (await handle.stat()).size;
    if (size > 0) return await handle.readFile();
    const chunks: Buffer[] = [];
    let used = 0;
    for (;;) {
      const { bytesRead, buffer } = await handle.read(Buffer.allocUnsafe(65536), 0, 65536, null);
      if (bytesRead === 0) return Buffer.concat(chunks, used);
      chunks.push(buffer.subarray(0, bytesRead));
      const before = used;
      used += bytesRead;
      // (the magic is looked at once, when its six bytes are first there)
      if (before < 6 && used >= 6 && sizelessUncompressed(size, Buffer.concat(chunks))) {
        throw Object.assign(new Error(`${file}: no size to map`), { code: 'EINVAL' });
      }
    }
  } finally {
    await handle.close();
  }
}

/** read-decode.ts' outcome of a native result (its buffers: those the file was read with) */
export function fromNative(r: NativeDecodeResult, file: string, buffers: DecodeBuffers): ReadDecoded {
  if (r.status === NativeStatus.readFailed) return { readErrno: r.err };
  const raw = resultRaw(r, buffers.raw);
  const compression = KINDS[r.kind];
  switch (r.status) {
    case NativeStatus.ok:
      return { raw, compression, image: resultImage(r, buffers.image) };
    case NativeStatus.failed:
      return { raw, compression, error: new DecompressError(file, compression as Exclude<Compression, 'none'>, r.detail, r.fn, r.err) };
    default:
      return r.kind === NativeKind.none ? { raw, compression, image: raw } : decodeHere(raw, file);
  }
}

/** Is readAndDecode done on libuv's thread pool (the addon's decoder is there)? */
export function decodesOffThread(): boolean {
  return nativeDecoder() !== null;
}

/**
 * Reads `file` and decodes it (decompress()'s rules): on libuv's thread pool with the addon, else
 * with an asynchronous read and a decode on this thread. Never rejects for a bad file.
 */
export function readAndDecode(file: string, buffers: DecodeBuffers = {}): Promise<ReadDecoded> {
  const native = nativeDecoder();
  if (native === null) {
    return readModuleBytes(file).then(
      (raw) => decodeHere(raw, file),
      (err: unknown) => ({ readErrno: errnoOf(err) }),
    );
  }
  return new Promise<ReadDecoded>((resolve, reject) => {
    native.readDecodeImage(binaryString(file), buffers.image ?? null, buffers.raw ?? null, (r) => {
      try {
        resolve(fromNative(r, file, buffers));
      } catch (err) {
        reject(err);
      }
    });
  });
}
