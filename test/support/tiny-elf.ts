// A minimal ELF relocatable-object writer for parser tests: any class (32/64) and byte order, sections
// given as raw bytes, plus helpers for the tables module parsers read (.symtab entries, __versions).
// test/support/elf-writer.ts builds realistic x86_64 modules; this one exists for the other three kinds.

export interface TinySection {
  name: string;
  type: number;
  data: Buffer;
  flags?: number;
  link?: number;
  info?: number;
  entsize?: number;
}

export interface TinyElf {
  is64: boolean;
  msb: boolean;
  machine?: number;
  sections: TinySection[];
}

export interface TinyLayout {
  image: Buffer;
  shoff: number;
  /** file offset of each section's data (index 0 = the null section) */
  offsets: number[];
}

class Writer {
  constructor(readonly is64: boolean, readonly msb: boolean) {}
  u16(b: Buffer, off: number, v: number): void {
    if (this.msb) b.writeUInt16BE(v, off);
    else b.writeUInt16LE(v, off);
  }
  u32(b: Buffer, off: number, v: number): void {
    if (this.msb) b.writeUInt32BE(v >>> 0, off);
    else b.writeUInt32LE(v >>> 0, off);
  }
  u64(b: Buffer, off: number, v: bigint | number): void {
    if (this.msb) b.writeBigUInt64BE(BigInt(v), off);
    else b.writeBigUInt64LE(BigInt(v), off);
  }
  word(b: Buffer, off: number, v: bigint | number): void {
    if (this.is64) this.u64(b, off, v);
    else this.u32(b, off, Number(v));
  }
}

/** Lays out: ELF header, section data (8-aligned), section header table, .shstrtab last. */
export function buildTinyElf(spec: TinyElf): TinyLayout {
  const w = new Writer(spec.is64, spec.msb);
  const ehsize = spec.is64 ? 64 : 52;
  const shentsize = spec.is64 ? 64 : 40;
  const all: TinySection[] = [...spec.sections];
  // .shstrtab
  let names = '\0';
  const nameOff: number[] = [];
  for (const s of [...all, { name: '.shstrtab' } as TinySection]) {
    nameOff.push(names.length);
    names += s.name + '\0';
  }
  all.push({ name: '.shstrtab', type: 3, data: Buffer.from(names, 'latin1') });
  const offsets = [0];
  let pos = ehsize;
  for (const s of all) {
    pos = (pos + 7) & ~7;
    offsets.push(pos);
    pos += s.data.length;
  }
  const shoff = (pos + 7) & ~7;
  const shnum = all.length + 1;
  const image = Buffer.alloc(shoff + shnum * shentsize);
  image.write('\x7fELF', 0, 'latin1');
  image[4] = spec.is64 ? 2 : 1;
  image[5] = spec.msb ? 2 : 1;
  image[6] = 1;
  w.u16(image, 16, 1); // ET_REL
  w.u16(image, 18, spec.machine ?? (spec.is64 ? 62 : 3));
  w.u32(image, 20, 1);
  if (spec.is64) {
    w.u64(image, 40, shoff);
    w.u16(image, 52, ehsize);
    w.u16(image, 58, shentsize);
    w.u16(image, 60, shnum);
    w.u16(image, 62, shnum - 1);
  } else {
    w.u32(image, 32, shoff);
    w.u16(image, 40, ehsize);
    w.u16(image, 46, shentsize);
    w.u16(image, 48, shnum);
    w.u16(image, 50, shnum - 1);
  }
  all.forEach((s, i) => {
    s.data.copy(image, offsets[i + 1]);
    const h = shoff + (i + 1) * shentsize;
    w.u32(image, h, nameOff[i]);
    w.u32(image, h + 4, s.type);
    if (spec.is64) {
      w.u64(image, h + 8, s.flags ?? 0);
      w.u64(image, h + 24, offsets[i + 1]);
      w.u64(image, h + 32, s.data.length);
      w.u32(image, h + 40, s.link ?? 0);
      w.u32(image, h + 44, s.info ?? 0);
      w.u64(image, h + 48, 1);
      w.u64(image, h + 56, s.entsize ?? 0);
    } else {
      w.u32(image, h + 8, s.flags ?? 0);
      w.u32(image, h + 16, offsets[i + 1]);
      w.u32(image, h + 20, s.data.length);
      w.u32(image, h + 24, s.link ?? 0);
      w.u32(image, h + 28, s.info ?? 0);
      w.u32(image, h + 32, 1);
      w.u32(image, h + 36, s.entsize ?? 0);
    }
  });
  return { image, shoff, offsets };
}

export interface TinySymbol {
  name: string;
  value?: bigint | number;
  shndx?: number;
  bind?: number;
  type?: number;
}

/** .strtab and .symtab bytes (entry 0 is the null symbol) */
export function symtab(is64: boolean, msb: boolean, syms: TinySymbol[]): { strtab: Buffer; symtab: Buffer } {
  const w = new Writer(is64, msb);
  let str = '\0';
  const size = is64 ? 24 : 16;
  const tab = Buffer.alloc(size * (syms.length + 1));
  syms.forEach((s, i) => {
    const nameOff = s.name === '' ? 0 : str.length;
    if (s.name !== '') str += s.name + '\0';
    const o = (i + 1) * size;
    const info = ((s.bind ?? 1) << 4) | (s.type ?? 0);
    w.u32(tab, o, nameOff);
    if (is64) {
      tab[o + 4] = info;
      w.u16(tab, o + 6, s.shndx ?? 0);
      w.u64(tab, o + 8, s.value ?? 0);
    } else {
      w.u32(tab, o + 4, Number(s.value ?? 0));
      tab[o + 12] = info;
      w.u16(tab, o + 14, s.shndx ?? 0);
    }
  });
  return { strtab: Buffer.from(str, 'latin1'), symtab: tab };
}

/** __versions entries: {crc, name} in 64-byte records (u64 crc in ELF64, u32 in ELF32) */
export function versions(is64: boolean, msb: boolean, entries: { name: string; crc: number }[]): Buffer {
  const w = new Writer(is64, msb);
  const b = Buffer.alloc(64 * entries.length);
  entries.forEach((e, i) => {
    if (is64) w.u64(b, i * 64, e.crc);
    else w.u32(b, i * 64, e.crc);
    b.write(e.name, i * 64 + (is64 ? 8 : 4), 'latin1');
  });
  return b;
}

/** NUL-terminated strings back to back */
export function strings(list: string[]): Buffer {
  return Buffer.from(list.map((s) => s + '\0').join(''), 'latin1');
}
