// The compiled helper (native/, built at install time when a C compiler is there): where it is and
// what it offers. The native backend needs it for the module system calls; depmod uses its symbol
// extraction when it is there and its JavaScript twin (depmod/module-scan.ts) when it is not.
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

export interface NativeAddon {
  finitModule(fd: number, params: string, flags: number): number;
  initModule(image: Uint8Array, params: string): number;
  deleteModule(name: string, flags: number): number;
  scanSymbols?: ScanSymbolsFn;
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
