// A bounds-checked ELF reader (ELF32/ELF64, little- and big-endian). Every read is checked against the
// image; malformed input gives a FormatError naming the file and what is wrong. The validity rules of
// the header follow libkmod-elf.c (kmod_elf_new), so that kmod-compatible tools reject the same files.
import { FormatError } from '../errors';
import { ENOEXEC } from '../errno';

export const SHN_UNDEF = 0;
export const SHN_ABS = 0xfff1;
export const SHN_COMMON = 0xfff2;
export const SHT_PROGBITS = 1;
export const SHT_SYMTAB = 2;
export const SHT_STRTAB = 3;
export const SHT_RELA = 4;
export const SHT_NOBITS = 8;
export const SHT_REL = 9;
export const SHF_WRITE = 0x1;
export const SHF_ALLOC = 0x2;
export const SHF_EXECINSTR = 0x4;
export const STB_LOCAL = 0;
export const STB_GLOBAL = 1;
export const STB_WEAK = 2;
export const EM_SPARC = 2;
export const EM_SPARCV9 = 43;

export interface SectionHeader {
  index: number;
  /** the name from the section-name string table; undefined when sh_name points outside it */
  name: string | undefined;
  nameOffset: number;
  type: number;
  flags: bigint;
  addr: bigint;
  /** sh_offset (numbers above 2^53 are not exact, but are then out of any image anyway) */
  offset: number;
  size: number;
  link: number;
  info: number;
  addralign: bigint;
  entsize: number;
  /** byte offset of this header in the image */
  headerOffset: number;
  /** sh_offset..+sh_size lies inside the image and the name is readable (libkmod's elf_get_section_info) */
  valid: boolean;
}

export interface ElfSymbol {
  index: number;
  name: string;
  nameOffset: number;
  value: bigint;
  size: bigint;
  info: number;
  bind: number;
  type: number;
  other: number;
  shndx: number;
}

export interface ElfRelocation {
  offset: bigint;
  symbol: number;
  type: number;
  /** undefined for SHT_REL */
  addend?: bigint;
}

export interface RelocationSection {
  section: SectionHeader;
  /** index of the section the relocations apply to (sh_info) */
  target: number;
  /** index of the symbol table they refer to (sh_link) */
  symtab: number;
  entries: ElfRelocation[];
}

/**
 * Does the section name at d[start..] (ending at its NUL or at strEnd, the end of the name table) equal
 * `name`? Compared in place: no string is made for the names that do not match.
 */
function nameAt(d: Buffer, start: number, strEnd: number, name: string): boolean {
  const len = name.length;
  if (start + len > strEnd) return false;
  for (let k = 0; k < len; k++) if (d[start + k] !== name.charCodeAt(k)) return false;
  return start + len === strEnd || d[start + len] === 0;
}

export class Elf {
  readonly is64: boolean;
  readonly msb: boolean;
  readonly type: number;
  readonly machine: number;
  readonly shoff: number;
  readonly shnum: number;
  readonly shentsize: number;
  readonly shstrndx: number;
  private readonly view: DataView;
  private readonly shstrtab: { offset: number; size: number };
  private headers?: SectionHeader[];

  /** Parses and validates the ELF header and section table (as kmod_elf_new does). */
  constructor(readonly data: Buffer, readonly file: string) {
    this.view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const size = data.length;
    if (size <= 16 || data[0] !== 0x7f || data[1] !== 0x45 || data[2] !== 0x4c || data[3] !== 0x46) {
      throw new FormatError(file, 'not an ELF file', ENOEXEC);
    }
    const cls = data[4];
    if (cls === 1) this.is64 = false;
    else if (cls === 2) this.is64 = true;
    else throw new FormatError(file, `invalid ELF class ${cls}`);
    const ehsize = this.is64 ? 64 : 52;
    if (size <= ehsize) throw new FormatError(file, `file too short for an ELF${this.is64 ? 64 : 32} header`);
    const enc = data[5];
    if (enc === 1) this.msb = false;
    else if (enc === 2) this.msb = true;
    else throw new FormatError(file, `invalid ELF data encoding ${enc}`);
    this.type = this.u16(16);
    this.machine = this.u16(18);
    if (this.is64) {
      this.shoff = this.uword(40);
      this.shentsize = this.u16(58);
      this.shnum = this.u16(60);
      this.shstrndx = this.u16(62);
    } else {
      this.shoff = this.u32(32);
      this.shentsize = this.u16(46);
      this.shnum = this.u16(48);
      this.shstrndx = this.u16(50);
    }
    const want = this.is64 ? 64 : 40;
    if (this.shentsize !== want) {
      throw new FormatError(file, `unexpected section header size ${this.shentsize} (expected ${want})`);
    }
    if (!this.rangeValid(this.shoff, want * this.shnum)) {
      throw new FormatError(file, `section header table (offset ${this.shoff}, ${this.shnum} entries) lies outside the file`);
    }
    if (this.shstrndx === SHN_UNDEF || this.shstrndx >= this.shnum) {
      throw new FormatError(file, `section name string table index ${this.shstrndx} out of range`);
    }
    // The name of the string table section itself is checked against its own size, as libkmod does.
    const h = this.readHeaderRaw(this.shstrndx);
    if (!this.rangeValid(h.offset, h.size)) {
      throw new FormatError(file, `section name string table (offset ${h.offset}, size ${h.size}) lies outside the file`);
    }
    if (h.nameOffset >= h.size) throw new FormatError(file, 'section name string table has an invalid name');
    if (h.size === 0 || data[h.offset + h.size - 1] !== 0) {
      throw new FormatError(file, 'section name string table does not end with a NUL byte');
    }
    this.shstrtab = { offset: h.offset, size: h.size };
  }

  get size(): number {
    return this.data.length;
  }

  /** the size of the section name string table (names at offsets beyond it are invalid) */
  get sectionNamesSize(): number {
    return this.shstrtab.size;
  }

  /** offset + len within the image (no overflow) */
  rangeValid(offset: number, len: number): boolean {
    return offset >= 0 && len >= 0 && offset <= this.data.length && len <= this.data.length - offset;
  }

  private check(offset: number, len: number, what: string): void {
    if (!this.rangeValid(offset, len)) {
      throw new FormatError(this.file, `${what} at offset ${offset} (+${len}) lies outside the file (${this.data.length} bytes)`);
    }
  }

  u8(off: number): number {
    this.check(off, 1, 'read');
    return this.data[off];
  }
  u16(off: number): number {
    this.check(off, 2, 'read');
    return this.view.getUint16(off, !this.msb);
  }
  u32(off: number): number {
    this.check(off, 4, 'read');
    return this.view.getUint32(off, !this.msb);
  }
  u64(off: number): bigint {
    this.check(off, 8, 'read');
    return this.view.getBigUint64(off, !this.msb);
  }
  i32(off: number): number {
    this.check(off, 4, 'read');
    return this.view.getInt32(off, !this.msb);
  }
  i64(off: number): bigint {
    this.check(off, 8, 'read');
    return this.view.getBigInt64(off, !this.msb);
  }
  /** an unsigned integer of `size` bytes (1, 2, 4 or 8) as a bigint */
  uint(off: number, size: number): bigint {
    switch (size) {
      case 1: return BigInt(this.u8(off));
      case 2: return BigInt(this.u16(off));
      case 4: return BigInt(this.u32(off));
      default: return this.u64(off);
    }
  }
  /** a u64 as a number (exact below 2^53; larger values exceed any image size anyway) */
  private uword(off: number): number {
    this.check(off, 8, 'read');
    const hi = this.view.getUint32(off + (this.msb ? 0 : 4), !this.msb);
    const lo = this.view.getUint32(off + (this.msb ? 4 : 0), !this.msb);
    return hi * 0x100000000 + lo;
  }

  /** A NUL-terminated string at `off` (latin1), ending at the first NUL or at `end` (default: end of image). */
  cstring(off: number, end = this.data.length): string {
    this.check(off, 0, 'string');
    const stop = Math.min(end, this.data.length);
    let i = off;
    while (i < stop && this.data[i] !== 0) i++;
    return this.data.toString('latin1', off, i);
  }

  /** strnlen over the image */
  strnlen(off: number, max: number): number {
    const stop = Math.min(off + max, this.data.length);
    let i = off;
    while (i < stop && this.data[i] !== 0) i++;
    return i - off;
  }

  private readHeaderRaw(index: number): { offset: number; size: number; nameOffset: number; headerOffset: number } {
    const ho = this.shoff + index * this.shentsize;
    if (this.is64) return { nameOffset: this.u32(ho), offset: this.uword(ho + 24), size: this.uword(ho + 32), headerOffset: ho };
    return { nameOffset: this.u32(ho), offset: this.u32(ho + 16), size: this.u32(ho + 20), headerOffset: ho };
  }

  /** All section headers (index 0 included), read once. */
  sections(): SectionHeader[] {
    if (this.headers) return this.headers;
    const list: SectionHeader[] = [];
    for (let i = 0; i < this.shnum; i++) list.push(this.buildSection(i));
    this.headers = list;
    return list;
  }

  /** The header at `index` (< shnum; the table lies inside the image, checked by the constructor). */
  private buildSection(i: number): SectionHeader {
    const ho = this.shoff + i * this.shentsize;
    const nameOffset = this.u32(ho);
    const strEnd = this.shstrtab.offset + this.shstrtab.size;
    const name = nameOffset < this.shstrtab.size ? this.cstring(this.shstrtab.offset + nameOffset, strEnd) : undefined;
    const w = this.is64;
    const offset = w ? this.uword(ho + 24) : this.u32(ho + 16);
    const size = w ? this.uword(ho + 32) : this.u32(ho + 20);
    return new Section(this, i, name, nameOffset, this.u32(ho + 4), offset, size, this.u32(ho + (w ? 40 : 24)), this.u32(ho + (w ? 44 : 28)),
      w ? this.uword(ho + 56) : this.u32(ho + 36), ho, i !== 0 && name !== undefined && this.rangeValid(offset, size));
  }

  /** The section at `index` if its header is valid (libkmod's elf_get_section_info), else undefined. */
  section(index: number): SectionHeader | undefined {
    if (index === SHN_UNDEF || index >= this.shnum) return undefined;
    const s = this.sections()[index];
    return s.valid ? s : undefined;
  }

  /**
   * Offset and size of the first valid section of each name (as findSection), found in one pass over
   * the section headers without building a SectionHeader per section: depmod asks this of thousands
   * of modules with dozens of sections each.
   */
  findSectionRanges(names: readonly string[]): ({ offset: number; size: number } | undefined)[] {
    const out = new Float64Array(2 * names.length);
    this.findSectionRangesInto(names, out);
    return names.map((_, k) => (out[2 * k] < 0 ? undefined : { offset: out[2 * k], size: out[2 * k + 1] }));
  }

  /**
   * findSectionRanges() into `out`: offset and size of the k-th name's section at 2k and 2k+1, -1 for
   * a name not found. Allocates nothing.
   */
  findSectionRangesInto(names: readonly string[], out: Float64Array): void {
    out.fill(-1, 0, 2 * names.length);
    let left = names.length;
    const d = this.data;
    const strSize = this.shstrtab.size;
    const strOff = this.shstrtab.offset;
    const strEnd = strOff + strSize;
    // the headers lie inside the image (checked by the constructor): read without a check per field
    const view = this.view;
    const le = !this.msb;
    const is64 = this.is64;
    for (let i = 1, ho = this.shoff + this.shentsize; i < this.shnum && left > 0; i++, ho += this.shentsize) {
      const nameOffset = view.getUint32(ho, le);
      if (nameOffset >= strSize) continue;
      const start = strOff + nameOffset;
      // a name's first two bytes (a one-letter name's second is its NUL) pass over most sections; the
      // table ends in a NUL, so the second byte of a name that is not empty is always inside it
      const lead = d[start] | (d[start + 1] << 8);
      for (let k = 0; k < names.length; k++) {
        const name = names[k];
        const len = name.length;
        const match = len === 0 ? d[start] === 0 : (name.charCodeAt(0) | (len > 1 ? name.charCodeAt(1) << 8 : 0)) === lead;
        if (!match || out[2 * k] >= 0 || !nameAt(d, start, strEnd, name)) continue;
        const offset = is64 ? this.uword(ho + 24) : view.getUint32(ho + 16, le);
        const size = is64 ? this.uword(ho + 32) : view.getUint32(ho + 20, le);
        // an invalid header (data outside the file) does not count: a later section of the name may
        if (!this.rangeValid(offset, size)) break;
        out[2 * k] = offset;
        out[2 * k + 1] = size;
        left--;
      }
    }
  }

  /** Offset and size of the section at `index` when its header is valid (as section()), without building the header list. */
  sectionRange(index: number): { offset: number; size: number } | undefined {
    if (index === SHN_UNDEF || index >= this.shnum) return undefined;
    const h = this.readHeaderRaw(index);
    if (h.nameOffset >= this.shstrtab.size || !this.rangeValid(h.offset, h.size)) return undefined;
    return { offset: h.offset, size: h.size };
  }

  /** The first valid section called `name` (libkmod's lookup), else undefined. */
  findSection(name: string): SectionHeader | undefined {
    if (this.headers) {
      const headers = this.headers;
      for (let k = 0; k < headers.length; k++) if (headers[k].valid && headers[k].name === name) return headers[k];
      return undefined;
    }
    // before (or without) the whole list: names compared in place, one header built for the match
    // (modinfo and modprobe look up one or two sections of each of many modules)
    const d = this.data;
    const strSize = this.shstrtab.size;
    const strOff = this.shstrtab.offset;
    for (let i = 1, ho = this.shoff + this.shentsize; i < this.shnum; i++, ho += this.shentsize) {
      const nameOffset = this.view.getUint32(ho, !this.msb);
      if (nameOffset >= strSize || !nameAt(d, strOff + nameOffset, strOff + strSize, name)) continue;
      const s = this.buildSection(i);
      if (s.valid) return s;
    }
    return undefined;
  }

  /** The bytes of a section (empty for SHT_NOBITS). */
  sectionData(s: SectionHeader): Buffer {
    if (s.type === SHT_NOBITS) return this.data.subarray(0, 0);
    this.check(s.offset, s.size, `section ${s.name ?? s.index}`);
    return this.data.subarray(s.offset, s.offset + s.size);
  }

  get symbolSize(): number {
    return this.is64 ? 24 : 16;
  }

  /** Reads one symbol entry at byte offset `off`; its name from the string table at strOff/strSize. */
  readSymbol(off: number, index: number, strOff: number, strSize: number): ElfSymbol {
    let nameOffset: number, value: bigint, size: bigint, info: number, other: number, shndx: number;
    if (this.is64) {
      nameOffset = this.u32(off);
      info = this.u8(off + 4);
      other = this.u8(off + 5);
      shndx = this.u16(off + 6);
      value = this.u64(off + 8);
      size = this.u64(off + 16);
    } else {
      nameOffset = this.u32(off);
      value = BigInt(this.u32(off + 4));
      size = BigInt(this.u32(off + 8));
      info = this.u8(off + 12);
      other = this.u8(off + 13);
      shndx = this.u16(off + 14);
    }
    if (nameOffset >= strSize) {
      throw new FormatError(this.file, `symbol ${index} has a name offset ${nameOffset} outside its string table (${strSize} bytes)`);
    }
    const name = this.cstring(strOff + nameOffset, strOff + strSize);
    return { index, name, nameOffset, value, size, info, bind: info >> 4, type: info & 0xf, other, shndx };
  }

  /** Symbols of a SHT_SYMTAB section (default: the first one), entry 0 included. */
  symbols(symtab?: SectionHeader): ElfSymbol[] {
    const st = symtab ?? this.sections().find((s) => s.type === SHT_SYMTAB);
    if (!st) return [];
    if (!st.valid) throw new FormatError(this.file, `symbol table section ${st.index} lies outside the file`);
    const str = this.section(st.link);
    if (!str) throw new FormatError(this.file, `symbol table section ${st.index} links to an invalid string table ${st.link}`);
    const es = this.symbolSize;
    if (st.size % es !== 0) throw new FormatError(this.file, `symbol table size ${st.size} is not a multiple of ${es}`);
    const out: ElfSymbol[] = [];
    for (let i = 0, off = st.offset; off < st.offset + st.size; i++, off += es) out.push(this.readSymbol(off, i, str.offset, str.size));
    return out;
  }

  /** Every SHT_REL/SHT_RELA section with its entries. */
  relocations(): RelocationSection[] {
    const out: RelocationSection[] = [];
    for (const s of this.sections()) {
      if (s.type !== SHT_REL && s.type !== SHT_RELA) continue;
      if (!s.valid) throw new FormatError(this.file, `relocation section ${s.index} lies outside the file`);
      const rela = s.type === SHT_RELA;
      const es = (this.is64 ? 16 : 8) + (rela ? (this.is64 ? 8 : 4) : 0);
      if (s.size % es !== 0) throw new FormatError(this.file, `relocation section ${s.name ?? s.index} size ${s.size} is not a multiple of ${es}`);
      if (s.info >= this.shnum) throw new FormatError(this.file, `relocation section ${s.name ?? s.index} applies to section ${s.info}, out of range`);
      if (s.link >= this.shnum) throw new FormatError(this.file, `relocation section ${s.name ?? s.index} links to section ${s.link}, out of range`);
      const entries: ElfRelocation[] = [];
      for (let off = s.offset; off < s.offset + s.size; off += es) {
        if (this.is64) {
          const info = this.u64(off + 8);
          entries.push({ offset: this.u64(off), symbol: Number(info >> 32n), type: Number(info & 0xffffffffn), addend: rela ? this.i64(off + 16) : undefined });
        } else {
          const info = this.u32(off + 4);
          entries.push({ offset: BigInt(this.u32(off)), symbol: info >>> 8, type: info & 0xff, addend: rela ? BigInt(this.i32(off + 8)) : undefined });
        }
      }
      out.push({ section: s, target: s.info, symtab: s.link, entries });
    }
    return out;
  }
}

/** A section header; the 64-bit fields few users need (flags, addr, addralign) are read on demand. */
class Section implements SectionHeader {
  constructor(
    private readonly elf: Elf,
    readonly index: number,
    readonly name: string | undefined,
    readonly nameOffset: number,
    readonly type: number,
    readonly offset: number,
    readonly size: number,
    readonly link: number,
    readonly info: number,
    readonly entsize: number,
    readonly headerOffset: number,
    readonly valid: boolean,
  ) {}
  private field(off64: number, off32: number): bigint {
    return this.elf.is64 ? this.elf.u64(this.headerOffset + off64) : BigInt(this.elf.u32(this.headerOffset + off32));
  }
  get flags(): bigint {
    return this.field(8, 8);
  }
  get addr(): bigint {
    return this.field(16, 12);
  }
  get addralign(): bigint {
    return this.field(48, 32);
  }
}
