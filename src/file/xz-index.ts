// What an .xz file's own index says, read from its last bytes without decoding: whether it is xz at
// all, and the uncompressed size of a single-stream file. Only for sizing output buffers: the decoder
// (liblzma, as libkmod) decides what the file holds.
function varint(d: Buffer, pos: { p: number }, end: number): number | null {
  let v = 0;
  let mul = 1;
  for (let i = 0; i < 9 && pos.p < end; i++) {
    const b = d[pos.p++];
    v += (b & 0x7f) * mul;
    if ((b & 0x80) === 0) return v;
    mul *= 128;
  }
  return null;
}

/** Is this an xz stream (its magic bytes)? */
export function isXz(d: Uint8Array): boolean {
  return d.length >= 6 && d[0] === 0xfd && d[1] === 0x37 && d[2] === 0x7a && d[3] === 0x58 && d[4] === 0x5a && d[5] === 0;
}

/** The uncompressed size recorded in the index of a single-stream .xz file, or null. */
export function xzUncompressedSize(d: Buffer): number | null {
  const n = d.length;
  if (n < 32 || d[n - 2] !== 0x59 || d[n - 1] !== 0x5a) return null;
  const backward = (d.readUInt32LE(n - 8) + 1) * 4;
  const start = n - 12 - backward;
  if (start < 12 || d[start] !== 0) return null;
  const pos = { p: start + 1 };
  const records = varint(d, pos, n - 12);
  if (records === null || records > 1 << 20) return null;
  let total = 0;
  for (let i = 0; i < records; i++) {
    if (varint(d, pos, n - 12) === null) return null;
    const u = varint(d, pos, n - 12);
    if (u === null) return null;
    total += u;
  }
  return total;
}

