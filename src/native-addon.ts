// The compiled helper (native/, built at install time when a C compiler is there): where it is and
// what it offers. The native backend needs it for the module system calls; depmod uses its symbol
// extraction and index writer when it is there and their JavaScript twins (depmod/module-scan.ts,
// indexes/writer.ts) when it is not.
import * as path from 'node:path';

/** native/module_symbols.c scanSymbols: 0 done, 1 an array too small (io has the counts), -1 declined */
export type ScanSymbolsFn = (
  image: Uint8Array,
  io: Float64Array,
  exportRanges: Uint32Array,
  exportCrcs: Float64Array,
  importBytes: Uint8Array,
  importKeys: Int32Array,
  importLengths: Uint32Array,
  importCrcs: Float64Array,
  importWeak: Uint8Array,
) => number;

/** native/index_writer.c buildIndex: the entries' keys, values and priorities in insertion order -> the .bin */
export type BuildIndexFn = (keys: Uint8Array, keyLengths: Uint32Array, values: Uint8Array, valueLengths: Uint32Array, priorities: Uint32Array) => Buffer;

export interface NativeAddon {
  finitModule(fd: number, params: string, flags: number): number;
  initModule(image: Uint8Array, params: string): number;
  deleteModule(name: string, flags: number): number;
  scanSymbols?: ScanSymbolsFn;
  buildIndex?: BuildIndexFn;
}

/** where the addon is; KMODTS_NATIVE_ADDON overrides it (tests of the paths without it) */
export function nativeAddonPath(): string {
  return process.env.KMODTS_NATIVE_ADDON || path.join(__dirname, '../build/Release/kmodts_native.node');
}

let loaded: NativeAddon | Error | undefined;

/** The addon, loaded on first use, or the error of loading it. */
export function loadNativeAddon(): NativeAddon | Error {
  if (loaded !== undefined) return loaded;
  try {
    loaded = require(nativeAddonPath()) as NativeAddon;
  } catch (err) {
    loaded = err instanceof Error ? err : new Error(String(err));
  }
  return loaded;
}

/** The addon's symbol extraction, or null without the addon (or with one built before it had it). */
export function loadNativeSymbols(): ScanSymbolsFn | null {
  const a = loadNativeAddon();
  return a instanceof Error || typeof a.scanSymbols !== 'function' ? null : a.scanSymbols;
}

/** The addon's index writer, or null without the addon (or with one built before it had it). */
export function loadNativeIndexBuilder(): BuildIndexFn | null {
  const a = loadNativeAddon();
  return a instanceof Error || typeof a.buildIndex !== 'function' ? null : a.buildIndex;
}
