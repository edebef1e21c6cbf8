// The addon's decoder (native/decompress.c, decode_napi.c): xz and zstd through the system's own
// liblzma.so.5 and libzstd.so.1, opened at first use as kmod 34.2 opens them and called as libkmod
// calls them, so that verdicts and messages are those of the library kmod itself uses on the machine;
// gzip through the zlib Node links in (node:zlib's own) where the outcome is certain (one clean
// member; the rest, with status notCompressed, is node:zlib's to decode and judge).
// This file is the typed binding only; decompress.ts decodes with it first and falls back to the
// WebAssembly libraries where the addon or a library is missing; read-decode.ts offers the
// asynchronous read-and-decode on libuv's thread pool.
import { loadNativeAddon } from '../native-addon';
import { nodeLiblzmaBinaries } from './node-liblzma';

/** what decodeImage and readDecodeImage give back (decode_napi.c's result object) */
export interface NativeDecodeResult {
  /** NativeKind: what the file's magic bytes say */
  kind: number;
  /** NativeStatus */
  status: number;
  /** errno: libkmod's for a refused file, the file system's for a file that could not be read */
  err: number;
  /** the libkmod function that logs the failure */
  fn: string;
  /** libkmod's message (e.g. "xz: File is corrupt"), empty where libkmod logs none */
  detail: string;
  /** the image's length: its first bytes of the caller's `into`, unless `image` is set */
  length: number;
  /** the image, where it did not fit the caller's buffer */
  image?: Buffer;
  /** the file's length (readDecodeImage): its first bytes of the caller's `rawInto`, unless `raw` is set */
  rawLength: number;
  raw?: Buffer;
}

export const NativeKind = { none: 0, xz: 1, zstd: 2, gzip: 3 } as const;
/**
 * scanned: the batch reader scanned the module (native/module_scan.c); `length` / `image` are the scan's
 * block. parts: it read modinfo's parts of the file (native/modinfo_parts.c), packed in `image`.
 */
export const NativeStatus = { ok: 0, failed: 1, unavailable: 2, notCompressed: 3, readFailed: 4, scanned: 5, parts: 6 } as const;

export interface NativeDecoder {
  decodeImage(data: Uint8Array, into: Uint8Array | null): NativeDecodeResult;
  readDecodeImage(path: string, into: Uint8Array | null, rawInto: Uint8Array | null, done: (r: NativeDecodeResult) => void): void;
  /** the version numbers of the libraries in use (LZMA_VERSION, ZSTD_VERSION_NUMBER), 0 for one that cannot be opened */
  libraryVersions(): { liblzma: number; libzstd: number };
  /** a file holding another liblzma, used instead of the system's when it is a newer release */
  offerLiblzma(file: string): void;
}

/**
 * node-liblzma's prebuilt binary (an optional dependency), which links liblzma 5.8 in and exports its
 * functions: decoding ~1.5x as fast as the 5.4 of Debian 12 (docs/decisions.md). Undefined when absent.
 */
function nodeLiblzmaFile(): string | undefined {
  const fs = require('node:fs') as typeof import('node:fs');
  const file = nodeLiblzmaBinaries()?.prebuilt;
  return file !== undefined && fs.existsSync(file) ? file : undefined;
}

let decoder: NativeDecoder | null | undefined;
/** the system's libraries only, as kmod (tests that compare with kmod on its own libraries) */
let systemOnly = false;

/** The addon's decoder, or null without the addon (or with one built before it had it). */
export function nativeDecoder(): NativeDecoder | null {
  if (decoder !== undefined) return decoder;
  const a = loadNativeAddon() as unknown as Partial<NativeDecoder> | Error;
  decoder = a instanceof Error || typeof a.decodeImage !== 'function' || typeof a.readDecodeImage !== 'function' ? null : (a as NativeDecoder);
  const newer = decoder === null || systemOnly ? undefined : nodeLiblzmaFile();
  if (newer !== undefined) decoder!.offerLiblzma(newer);
  return decoder;
}

/**
 * Tests: the decoder as if the addon were missing (false), or found again (true); `systemLibrariesOnly`
 * (before the first decode) leaves node-liblzma's liblzma aside, as kmod does.
 */
export function useNativeDecoder(on: boolean, systemLibrariesOnly = false): void {
  decoder = on ? undefined : null;
  systemOnly = systemLibrariesOnly;
}

/**
 * The first `length` bytes of `u` (at most all of them) as a Buffer over its memory, as
 * Buffer.subarray gives them: made from the memory itself, as subarray costs ~1.5-2x as much unoptimized
 * (a depmod run takes one per module)
 */
function leadingBytes(u: Uint8Array, length: number): Buffer {
  return Buffer.from(u.buffer, u.byteOffset, Math.min(length, u.length));
}

/** the image of a result with status ok: in `into`, or a buffer of its own */
export function resultImage(r: NativeDecodeResult, into: Uint8Array | null | undefined): Buffer {
  if (r.image !== undefined) return r.image;
  return leadingBytes(into!, r.length);
}

/** the bytes readDecodeImage read: in `rawInto`, or a buffer of their own */
export function resultRaw(r: NativeDecodeResult, rawInto: Uint8Array | null | undefined): Buffer {
  if (r.raw !== undefined) return r.raw;
  return rawInto ? leadingBytes(rawInto, r.rawLength) : Buffer.alloc(0);
}
