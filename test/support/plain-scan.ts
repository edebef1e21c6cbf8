// A module's scan as plain data, for the tests that compare scans made different ways (test/depmod,
// and the fuzz target of depmod's C scan, which runs outside vitest too: nothing here but a type import).
import type { ModuleScan } from '../../src/depmod/scan-store';

/**
 * everything a module's scan holds but its alias pieces (which only some ways of scanning make; see
 * test/depmod/support.ts plainPieces), as plain data to compare (typed arrays copied: scans share their stores)
 */
export function plainScan(s: ModuleScan): unknown {
  return {
    aliases: s.aliases,
    softdeps: s.softdeps,
    weakdeps: s.weakdeps,
    exports: s.exports,
    exportCrcs: [...s.exportCrcs],
    importNames: Buffer.from(s.importNames).toString('latin1'),
    importLengths: [...s.importLengths],
    importCrcs: [...s.importCrcs],
    importWeak: [...s.importWeak],
    importKeys: [...s.importKeys],
    symbolsErrno: s.symbolsErrno,
  };
}
