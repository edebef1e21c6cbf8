// Raw little-endian ELF64 access for the simulated kernel. The kernel validates a module image with its
// own checks, order and messages (kernel/module/main.c), so the loader reads headers itself instead of
// going through a parser that would reject bad input with different words.

// the ELF constants the shared reader defines, plus the few only the kernel's loader looks at
export { SHT_PROGBITS, SHT_SYMTAB, SHT_STRTAB, SHT_RELA, SHT_NOBITS, SHT_REL, SHF_WRITE, SHF_ALLOC, SHF_EXECINSTR, SHN_UNDEF, SHN_ABS, SHN_COMMON, STB_WEAK } from '../../file/elf';
export const SHT_NULL = 0;
export const SHF_RELA_LIVEPATCH = 0x00100000;
export const SHF_RO_AFTER_INIT = 0x00200000;
export const SHN_LIVEPATCH = 0xff20;

export const EHDR_SIZE = 64;
export const SHDR_SIZE = 64;
export const SYM_SIZE = 24;
export const RELA_SIZE = 24;

const TWO32 = 4294967296;

/** One section header, with sh_flags as a number (the flags used here all sit in the low 32 bits). */
export interface Shdr {
  name: number;
  type: number;
  flags: number;
  addr: number;
  offset: number;
  size: number;
  link: number;
  info: number;
  addralign: number;
  entsize: number;
}

/** A little-endian view over a module image. u64 fields are read as JS numbers (exact below 2^53). */
export class ElfImage {
  readonly bytes: Uint8Array;
  readonly view: DataView;
  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  get length(): number {
    return this.bytes.length;
  }
  u8(off: number): number {
    return this.bytes[off];
  }
  u16(off: number): number {
    return this.view.getUint16(off, true);
  }
  u32(off: number): number {
    return this.view.getUint32(off, true);
  }
  /** unsigned 64-bit as a number; values above 2^53 lose precision (only used for sizes and offsets) */
  u64(off: number): number {
    return this.view.getUint32(off + 4, true) * TWO32 + this.view.getUint32(off, true);
  }
  /** signed 64-bit as a number */
  s64(off: number): number {
    return this.view.getInt32(off + 4, true) * TWO32 + this.view.getUint32(off, true);
  }
  /** NUL-terminated latin1 string starting at off, never reading past end */
  cstr(off: number, end = this.bytes.length): string {
    let e = off;
    while (e < end && this.bytes[e] !== 0) e++;
    return latin1(this.bytes, off, e);
  }
  shdr(shoff: number, i: number): Shdr {
    const o = shoff + i * SHDR_SIZE;
    return {
      name: this.u32(o),
      type: this.u32(o + 4),
      flags: this.u64(o + 8),
      addr: this.u64(o + 16),
      offset: this.u64(o + 24),
      size: this.u64(o + 32),
      link: this.u32(o + 40),
      info: this.u32(o + 44),
      addralign: this.u64(o + 48),
      entsize: this.u64(o + 56),
    };
  }
}

export function latin1(b: Uint8Array, start: number, end: number): string {
  if (end - start > 64) return Buffer.from(b.buffer, b.byteOffset + start, end - start).toString('latin1');
  let s = '';
  for (let i = start; i < end; i++) s += String.fromCharCode(b[i]);
  return s;
}

/** u64 bit pattern of a signed 64-bit number, as the kernel's %Lx/%llx prints it */
export function hex64(v: number | bigint): string {
  return BigInt.asUintN(64, typeof v === 'bigint' ? v : BigInt(v)).toString(16);
}
