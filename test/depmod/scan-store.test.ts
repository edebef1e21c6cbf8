// Where depmod's scans keep their numbers (src/depmod/scan-store.ts): numbersView gives a scan's numbers
// as one view only where they lie as scanNumbers lays them out.
import { describe, expect, it } from 'vitest';
import { ScanStore, numbersView, scanNumbers, scanNumbersSize, type ScanNumbers } from '../../src/depmod/scan-store';

function placed(store: ScanStore, e: number, n: number, nameBytes: number): ScanNumbers {
  const [ab, at] = store.place(scanNumbersSize(e, n, nameBytes));
  const numbers = scanNumbers(ab, at, e, n, nameBytes);
  numbers.exportCrcs.fill(1.5);
  numbers.importCrcs.fill(2.5);
  numbers.importKeys.fill(-3);
  numbers.importLengths.fill(4);
  numbers.importWeak.fill(1);
  numbers.importNames.fill(0x61);
  return numbers;
}

describe('numbersView', () => {
  it('is the bytes scanNumbers laid out, for scans placed one after another in a store', () => {
    const store = new ScanStore();
    const first = placed(store, 3, 5, 29);
    const second = placed(store, 0, 2, 9);
    for (const [numbers, e, n, names] of [[first, 3, 5, 29], [second, 0, 2, 9]] as const) {
      const view = numbersView(numbers)!;
      expect(view.length).toBe(scanNumbersSize(e, n, names));
      expect(view.buffer).toBe(numbers.exportCrcs.buffer);
      expect(view.byteOffset).toBe(numbers.exportCrcs.byteOffset);
      const again = scanNumbers(view.buffer as ArrayBuffer, view.byteOffset, e, n, names);
      expect([...again.importKeys]).toEqual([...numbers.importKeys]);
      expect(Buffer.from(again.importNames).toString('latin1')).toBe('a'.repeat(names));
    }
    // a scan with no numbers at all
    expect(numbersView(placed(store, 0, 0, 0))!.length).toBe(0);
  });

  it('is undefined where the arrays lie elsewhere or disagree in length', () => {
    const store = new ScanStore();
    const base = placed(store, 2, 3, 11);
    expect(numbersView({ ...base, importNames: Uint8Array.from(base.importNames) })).toBeUndefined();
    expect(numbersView({ ...base, importCrcs: Float64Array.from(base.importCrcs) })).toBeUndefined();
    expect(numbersView({ ...base, importKeys: base.importKeys.subarray(1) })).toBeUndefined();
    expect(numbersView({ ...base, importWeak: base.importWeak.subarray(0, 2) })).toBeUndefined();
    expect(numbersView({ ...base, importLengths: new Uint32Array(3) })).toBeUndefined();
    expect(numbersView({ ...base, exportCrcs: new Float64Array(2) })).toBeUndefined();
  });
});
