// XXH64 (seed 0), the checksum of zstd frames, in 32-bit arithmetic: BigInt would be ~20x slower.
// Only the low 32 bits are returned, which is what a zstd frame stores.

// 64-bit values as [hi, lo] unsigned 32-bit halves, in module-level registers to avoid allocation
let rh = 0;
let rl = 0;

/** (ah:al) * (bh:bl) mod 2^64 → rh:rl */
function mul(ah: number, al: number, bh: number, bl: number): void {
  const a0 = al & 0xffff;
  const a1 = al >>> 16;
  const b0 = bl & 0xffff;
  const b1 = bl >>> 16;
  const p00 = a0 * b0;
  const p01 = a0 * b1;
  const p10 = a1 * b0;
  const mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  const hi = a1 * b1 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16);
  rl = ((mid << 16) | (p00 & 0xffff)) >>> 0;
  rh = (hi + Math.imul(ah, bl) + Math.imul(al, bh)) >>> 0;
}

/** (ah:al) + (bh:bl) → rh:rl */
function add(ah: number, al: number, bh: number, bl: number): void {
  const l = al + bl;
  rl = l >>> 0;
  rh = (ah + bh + (l > 0xffffffff ? 1 : 0)) >>> 0;
}

/** rotate (h:l) left by n (0 < n < 64) → rh:rl */
function rotl(h: number, l: number, n: number): void {
  if (n >= 32) {
    const t = h;
    h = l;
    l = t;
    n -= 32;
  }
  if (n === 0) {
    rh = h;
    rl = l;
    return;
  }
  rh = ((h << n) | (l >>> (32 - n))) >>> 0;
  rl = ((l << n) | (h >>> (32 - n))) >>> 0;
}

const P1H = 0x9e3779b1, P1L = 0x85ebca87;
const P2H = 0xc2b2ae3d, P2L = 0x27d4eb4f;
const P3H = 0x165667b1, P3L = 0x9e3779f9;
const P4H = 0x85ebca77, P4L = 0xc2b2ae63;
const P5H = 0x27d4eb2f, P5L = 0x165667c5;
const P1L0 = P1L & 0xffff, P1L1 = P1L >>> 16, P2L0 = P2L & 0xffff, P2L1 = P2L >>> 16;

/** acc = rotl(acc + input * P2, 31) * P1 */
function round(ah: number, al: number, ih: number, il: number): void {
  mul(ih, il, P2H, P2L);
  add(ah, al, rh, rl);
  rotl(rh, rl, 31);
  mul(rh, rl, P1H, P1L);
}

export function xxh64Low32(d: Uint8Array): number {
  const dv = new DataView(d.buffer, d.byteOffset, d.byteLength);
  const len = d.length;
  let p = 0;
  let hh: number, hl: number;
  if (len >= 32) {
    // v1 = P1 + P2, v2 = P2, v3 = 0, v4 = -P1
    add(P1H, P1L, P2H, P2L);
    let v1h = rh, v1l = rl;
    let v2h = P2H, v2l = P2L;
    let v3h = 0, v3l = 0;
    // -P1 mod 2^64
    add(~P1H >>> 0, ~P1L >>> 0, 0, 1);
    let v4h = rh, v4l = rl;
    const limit = len - 32;
    // the stripe loop with round() written out for each lane on locals: ~4x faster than through helpers
    while (p <= limit) {
      {
        const il = dv.getUint32(p + 0, true);
        const ih = dv.getUint32(p + 4, true);
        let a0 = il & 0xffff;
        let a1 = il >>> 16;
        let p00 = a0 * P2L0, p01 = a0 * P2L1, p10 = a1 * P2L0;
        let mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
        let tl = ((mid << 16) | (p00 & 0xffff)) >>> 0;
        let th = (a1 * P2L1 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16) + Math.imul(ih, P2L) + Math.imul(il, P2H)) >>> 0;
        const sl = v1l + tl;
        const al = sl >>> 0;
        const ah = (v1h + th + (sl > 0xffffffff ? 1 : 0)) >>> 0;
        const xh = ((ah << 31) | (al >>> 1)) >>> 0;
        const xl = ((al << 31) | (ah >>> 1)) >>> 0;
        a0 = xl & 0xffff;
        a1 = xl >>> 16;
        p00 = a0 * P1L0;
        p01 = a0 * P1L1;
        p10 = a1 * P1L0;
        mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
        v1l = ((mid << 16) | (p00 & 0xffff)) >>> 0;
        v1h = (a1 * P1L1 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16) + Math.imul(xh, P1L) + Math.imul(xl, P1H)) >>> 0;
      }
      {
        const il = dv.getUint32(p + 8, true);
        const ih = dv.getUint32(p + 12, true);
        let a0 = il & 0xffff;
        let a1 = il >>> 16;
        let p00 = a0 * P2L0, p01 = a0 * P2L1, p10 = a1 * P2L0;
        let mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
        let tl = ((mid << 16) | (p00 & 0xffff)) >>> 0;
        let th = (a1 * P2L1 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16) + Math.imul(ih, P2L) + Math.imul(il, P2H)) >>> 0;
        const sl = v2l + tl;
        const al = sl >>> 0;
        const ah = (v2h + th + (sl > 0xffffffff ? 1 : 0)) >>> 0;
        const xh = ((ah << 31) | (al >>> 1)) >>> 0;
        const xl = ((al << 31) | (ah >>> 1)) >>> 0;
        a0 = xl & 0xffff;
        a1 = xl >>> 16;
        p00 = a0 * P1L0;
        p01 = a0 * P1L1;
        p10 = a1 * P1L0;
        mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
        v2l = ((mid << 16) | (p00 & 0xffff)) >>> 0;
        v2h = (a1 * P1L1 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16) + Math.imul(xh, P1L) + Math.imul(xl, P1H)) >>> 0;
      }
      {
        const il = dv.getUint32(p + 16, true);
        const ih = dv.getUint32(p + 20, true);
        let a0 = il & 0xffff;
        let a1 = il >>> 16;
        let p00 = a0 * P2L0, p01 = a0 * P2L1, p10 = a1 * P2L0;
        let mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
        let tl = ((mid << 16) | (p00 & 0xffff)) >>> 0;
        let th = (a1 * P2L1 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16) + Math.imul(ih, P2L) + Math.imul(il, P2H)) >>> 0;
        const sl = v3l + tl;
        const al = sl >>> 0;
        const ah = (v3h + th + (sl > 0xffffffff ? 1 : 0)) >>> 0;
        const xh = ((ah << 31) | (al >>> 1)) >>> 0;
        const xl = ((al << 31) | (ah >>> 1)) >>> 0;
        a0 = xl & 0xffff;
        a1 = xl >>> 16;
        p00 = a0 * P1L0;
        p01 = a0 * P1L1;
        p10 = a1 * P1L0;
        mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
        v3l = ((mid << 16) | (p00 & 0xffff)) >>> 0;
        v3h = (a1 * P1L1 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16) + Math.imul(xh, P1L) + Math.imul(xl, P1H)) >>> 0;
      }
      {
        const il = dv.getUint32(p + 24, true);
        const ih = dv.getUint32(p + 28, true);
        let a0 = il & 0xffff;
        let a1 = il >>> 16;
        let p00 = a0 * P2L0, p01 = a0 * P2L1, p10 = a1 * P2L0;
        let mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
        let tl = ((mid << 16) | (p00 & 0xffff)) >>> 0;
        let th = (a1 * P2L1 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16) + Math.imul(ih, P2L) + Math.imul(il, P2H)) >>> 0;
        const sl = v4l + tl;
        const al = sl >>> 0;
        const ah = (v4h + th + (sl > 0xffffffff ? 1 : 0)) >>> 0;
        const xh = ((ah << 31) | (al >>> 1)) >>> 0;
        const xl = ((al << 31) | (ah >>> 1)) >>> 0;
        a0 = xl & 0xffff;
        a1 = xl >>> 16;
        p00 = a0 * P1L0;
        p01 = a0 * P1L1;
        p10 = a1 * P1L0;
        mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
        v4l = ((mid << 16) | (p00 & 0xffff)) >>> 0;
        v4h = (a1 * P1L1 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16) + Math.imul(xh, P1L) + Math.imul(xl, P1H)) >>> 0;
      }
      p += 32;
    }
    rotl(v1h, v1l, 1);
    let sh = rh, sl = rl;
    rotl(v2h, v2l, 7);
    add(sh, sl, rh, rl); sh = rh; sl = rl;
    rotl(v3h, v3l, 12);
    add(sh, sl, rh, rl); sh = rh; sl = rl;
    rotl(v4h, v4l, 18);
    add(sh, sl, rh, rl); hh = rh; hl = rl;
    for (const [vh, vl] of [[v1h, v1l], [v2h, v2l], [v3h, v3l], [v4h, v4l]]) {
      round(0, 0, vh, vl);
      hh = (hh ^ rh) >>> 0;
      hl = (hl ^ rl) >>> 0;
      mul(hh, hl, P1H, P1L);
      add(rh, rl, P4H, P4L);
      hh = rh; hl = rl;
    }
  } else {
    hh = P5H;
    hl = P5L;
  }
  add(hh, hl, Math.floor(len / 0x100000000), len >>> 0);
  hh = rh; hl = rl;
  while (p + 8 <= len) {
    round(0, 0, dv.getUint32(p + 4, true), dv.getUint32(p, true));
    hh = (hh ^ rh) >>> 0;
    hl = (hl ^ rl) >>> 0;
    rotl(hh, hl, 27);
    mul(rh, rl, P1H, P1L);
    add(rh, rl, P4H, P4L);
    hh = rh; hl = rl;
    p += 8;
  }
  if (p + 4 <= len) {
    mul(0, dv.getUint32(p, true), P1H, P1L);
    hh = (hh ^ rh) >>> 0;
    hl = (hl ^ rl) >>> 0;
    rotl(hh, hl, 23);
    mul(rh, rl, P2H, P2L);
    add(rh, rl, P3H, P3L);
    hh = rh; hl = rl;
    p += 4;
  }
  while (p < len) {
    mul(0, d[p], P5H, P5L);
    hh = (hh ^ rh) >>> 0;
    hl = (hl ^ rl) >>> 0;
    rotl(hh, hl, 11);
    mul(rh, rl, P1H, P1L);
    hh = rh; hl = rl;
    p++;
  }
  // avalanche: h ^= h >> 33; h *= P2; h ^= h >> 29; h *= P3; h ^= h >> 32
  hl = (hl ^ (hh >>> 1)) >>> 0;
  mul(hh, hl, P2H, P2L);
  hh = rh;
  hl = rl;
  hl = (hl ^ ((hl >>> 29) | (hh << 3))) >>> 0;
  hh = (hh ^ (hh >>> 29)) >>> 0;
  mul(hh, hl, P3H, P3L);
  return (rl ^ rh) >>> 0;
}
