// Seeded mutation of real inputs: input i of a run is a function of (seed, i) alone, so any input a run
// reports can be made again from its numbers. Byte-level changes for binary formats, line-level ones
// for text formats, and "interesting" values (0, all ones, sizes and offsets near the file's length)
// where parsers read counts and offsets.
import { prng } from '../support/prng';

export type Rng = () => number;

/** The generator of input `index` of a run with `seed`. */
export function inputRng(seed: number, index: number): Rng {
  // mix the two numbers (Murmur3 finaliser) so neighbouring indexes give unrelated streams
  let h = (seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return prng((h ^ (h >>> 16)) >>> 0 || 1);
}

const int = (rng: Rng, n: number): number => Math.floor(rng() * n);

function interestingU32(rng: Rng, len: number): number {
  const choices = [0, 1, 0xffffffff, 0x7fffffff, 0x80000000, len, len - 1, len + 1, 12, 0x40, int(rng, len + 16)];
  return choices[int(rng, choices.length)] >>> 0;
}

/** One to four byte-level changes of `data`. */
export function mutateBytes(data: Buffer, rng: Rng): Buffer {
  let b = Buffer.from(data);
  const edits = 1 + int(rng, 4);
  for (let e = 0; e < edits; e++) {
    const at = b.length > 0 ? int(rng, b.length) : 0;
    switch (int(rng, 11)) {
      case 0: // flip a bit
        if (b.length > 0) b[at] ^= 1 << int(rng, 8);
        break;
      case 1: // an interesting byte
        if (b.length > 0) b[at] = [0, 0xff, 0x7f, 0x80, 0x0a, 0x20, 0x2a][int(rng, 7)];
        break;
      case 2: // a random byte
        if (b.length > 0) b[at] = int(rng, 256);
        break;
      case 3: // an interesting 32-bit value, either byte order
        if (b.length >= 4) {
          const p = int(rng, b.length - 3);
          const v = interestingU32(rng, b.length);
          if (rng() < 0.5) b.writeUInt32LE(v, p);
          else b.writeUInt32BE(v, p);
        }
        break;
      case 4: // an interesting 64-bit value (ELF64 offsets and sizes)
        if (b.length >= 8) b.writeBigUInt64LE(rng() < 0.5 ? 0xffffffffffffffffn : BigInt(interestingU32(rng, b.length)), int(rng, b.length - 7));
        break;
      case 5: // cut the end off
        b = b.subarray(0, int(rng, b.length + 1));
        break;
      case 6: // remove a range
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1 + int(rng, 64))]);
        break;
      case 7: // repeat a range
        b = Buffer.concat([b.subarray(0, at), b.subarray(at, at + 1 + int(rng, 64)), b.subarray(at)]);
        break;
      case 8: // copy a 32-bit word to another place: offsets and node references pointing elsewhere
        if (b.length >= 8) b.writeUInt32BE(b.readUInt32BE(int(rng, b.length - 3)), int(rng, b.length - 3));
        break;
      case 10: // a short run of one interesting byte: varints and OID groups that never end (0x80, 0x81, 0xff)
        b.fill([0x80, 0x81, 0xff, 0][int(rng, 4)], at, Math.min(b.length, at + 2 + int(rng, 15)));
        break;
      default: // copy a range over another place
        if (b.length > 1) {
          const from = int(rng, b.length);
          b.copy(b, at, from, Math.min(b.length, from + 1 + int(rng, 32)));
        }
    }
  }
  return b;
}

const SPECIAL = ['', ' ', '\t', '\\', '\\\n', '#', '"', "'", '=', ',', '*', '?', '[', ']', '-', '_', '.', '\0', '\u00e9', '\ufffd', 'x'.repeat(300), '{', '}', ':', '0', '-1', '4294967296', 'null'];

/** One to three line-level or character-level changes of a text. */
export function mutateText(data: Buffer, rng: Rng): Buffer {
  const lines = data.toString('latin1').split('\n');
  const edits = 1 + int(rng, 3);
  for (let e = 0; e < edits; e++) {
    const i = int(rng, lines.length);
    const line = lines[i] ?? '';
    switch (int(rng, 6)) {
      case 0:
        lines.splice(i, 1);
        break;
      case 1:
        lines.splice(i, 0, lines[int(rng, lines.length)] ?? '');
        break;
      case 2: {
        const j = int(rng, lines.length);
        [lines[i], lines[j]] = [lines[j], line];
        break;
      }
      case 3: {
        const at = int(rng, line.length + 1);
        lines[i] = line.slice(0, at) + SPECIAL[int(rng, SPECIAL.length)] + line.slice(at);
        break;
      }
      case 4: {
        const at = int(rng, line.length + 1);
        lines[i] = line.slice(0, at) + line.slice(at + 1 + int(rng, 8));
        break;
      }
      default:
        return mutateBytes(Buffer.from(lines.join('\n'), 'latin1'), rng);
    }
  }
  return Buffer.from(lines.join('\n'), 'latin1');
}
