import type { ToolIo } from './io';

/** The kmod release kmodts is compatible with. */
export const KMOD_VERSION = '34.2';

/**
 * kmod's feature line. kmodts reads zstd, xz and gzip modules and checks PKCS#7 signatures itself, so
 * every feature is on (Debian's kmod 34.2 build says -ZLIB; see docs/compat.md).
 */
export const KMOD_FEATURES = '+ZSTD +XZ +ZLIB +OPENSSL';

/** `-V/--version` of every tool: kmod_version() */
export function printVersion(io: ToolIo): void {
  io.stdout(`kmod version ${KMOD_VERSION}\n${KMOD_FEATURES}\n`);
}
