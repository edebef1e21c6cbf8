// The kernel's in-kernel decompression (finit_module with MODULE_INIT_COMPRESSED_FILE,
// kernel/module/decompress.c) on top of the shared decoders: the kernel's own magic checks and messages,
// and XZ Embedded's narrower limits (only the NONE and CRC32 integrity checks; first stream only).
import { decompress, DecompressError, detectCompression } from '../../file/decompress';
import { EINVAL } from '../../errno';

/** The ELF inside a module file, whatever its compression (throws a DecompressError when corrupt). */
export function unpackModuleFile(b: Uint8Array, file = 'module'): Uint8Array {
  return decompress(b, file);
}

// XZ Embedded's enum xz_ret values, which the kernel prints as "status %d"
const XZ_OK = 0;
const XZ_FORMAT_ERROR = 5;
const XZ_OPTIONS_ERROR = 6;
const XZ_DATA_ERROR = 7;

/** Result of module_decompress(): the image, or the kernel log line and errno it fails with. */
export type KernelDecompressResult = { image: Uint8Array } | { error: string; errno: number };

/** module_decompress() of a kernel built with the given algorithm. */
export function kernelDecompress(b: Uint8Array, algo: 'xz' | 'gzip' | 'zstd'): KernelDecompressResult {
  const kind = detectCompression(b);
  if (algo === 'xz') {
    if (kind !== 'xz') return { error: 'not an xz compressed module', errno: EINVAL };
    // stream flags: a zero byte, then the check type; the kernel's decoder knows NONE (0) and CRC32 (1)
    if (b.length >= 8 && (b[6] !== 0 || (b[7] !== 0 && b[7] !== 1))) return { error: `decompression failed with status ${XZ_OPTIONS_ERROR}`, errno: EINVAL };
    try {
      return { image: decompress(b, 'module') };
    } catch (err) {
      const detail = err instanceof DecompressError ? err.detail : '';
      // a stream cut short leaves the kernel's page loop with XZ_OK and no more output
      const status = /Unexpected end/.test(detail) ? XZ_OK : /format/i.test(detail) ? XZ_FORMAT_ERROR : /options/i.test(detail) ? XZ_OPTIONS_ERROR : XZ_DATA_ERROR;
      return { error: `decompression failed with status ${status}`, errno: EINVAL };
    }
  }
  if (algo === 'zstd') {
    if (kind !== 'zstd') return { error: 'not a zstd compressed module', errno: EINVAL };
    try {
      return { image: decompress(b, 'module') };
    } catch {
      return { error: 'ZSTD-decompression failed with status 20', errno: EINVAL };
    }
  }
  if (kind !== 'gzip') return { error: 'not a gzip compressed module', errno: EINVAL };
  try {
    return { image: decompress(b, 'module') };
  } catch {
    return { error: 'decompression failed with status -3', errno: EINVAL };
  }
}
