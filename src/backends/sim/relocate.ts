// Relocation of a module image as the kernel's apply_relocate_add() does it, for x86_64
// (arch/x86/kernel/module.c) and arm64 (arch/arm64/kernel/module.c): the same formulas, the same overflow
// rules, the same refusal of unknown types, and the same log lines. Addresses are signed 64-bit values
// held in JS numbers (kernel and module addresses sit in the top 2 GiB, so they are exact).
// apply_relocations() (kernel/module/main.c) drives them over a module's RELA sections.
import { hex64, SHF_ALLOC, SHF_RELA_LIVEPATCH, SHT_NOBITS, SHT_REL, SHT_RELA } from './elf-image';
import { fail, relocationOutOfBounds, type LoadContext, type LoadInfo } from './load-info';
import { ENOEXEC, ERANGE } from '../../errno';

const TWO32 = 4294967296;

export type RelocLog = (level: number, text: string) => void;

/** Low 32 bits of an integer-valued number, unsigned */
function low32(v: number): number {
  return v - Math.floor(v / TWO32) * TWO32;
}

function write64(view: DataView, off: number, v: number): void {
  const lo = low32(v);
  view.setUint32(off, lo, true);
  view.setInt32(off + 4, (v - lo) / TWO32, true);
}

/** A stand-in for the kernel's hashed %p: stable for an address, never the address itself. */
export function hashedPointer(addr: number): string {
  let h = 0x811c9dc5;
  const s = hex64(addr);
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(16).padStart(16, '0');
}

export const R_X86_64_NONE = 0;
export const R_X86_64_64 = 1;
export const R_X86_64_PC32 = 2;
export const R_X86_64_PLT32 = 4;
export const R_X86_64_32 = 10;
export const R_X86_64_32S = 11;
export const R_X86_64_PC64 = 24;

/**
 * One x86_64 RELA entry: val = S + A at P (loc = view offset). Returns 0 or -ENOEXEC after logging
 * what the kernel logs ("module: " is the pr_fmt of arch/x86/kernel/module.c).
 */
export function relocateX86(view: DataView, loc: number, P: number, type: number, val: number, modName: string, log: RelocLog): number {
  let size: number;
  switch (type) {
    case R_X86_64_NONE:
      return 0;
    case R_X86_64_64:
      size = 8;
      break;
    case R_X86_64_32:
      if (val < 0 || val >= TWO32) return overflowX86(type, val, modName, log);
      size = 4;
      break;
    case R_X86_64_32S:
      if (val < -2147483648 || val > 2147483647) return overflowX86(type, val, modName, log);
      size = 4;
      break;
    case R_X86_64_PC32:
    case R_X86_64_PLT32:
      val -= P;
      size = 4;
      break;
    case R_X86_64_PC64:
      val -= P;
      size = 8;
      break;
    default:
      log(3, `module: ${modName}: Unknown rela relocation: ${type}`);
      return -ENOEXEC;
  }
  // the target must still be zero: a second relocation of the same bytes is refused
  const nonzero = size === 8 ? view.getUint32(loc, true) !== 0 || view.getUint32(loc + 4, true) !== 0 : view.getUint32(loc, true) !== 0;
  if (nonzero) {
    log(3, `module: x86/modules: Invalid relocation target, existing value is nonzero for type ${type}, loc ${hashedPointer(P)}, val ${hex64(val)}`);
    return -ENOEXEC;
  }
  if (size === 8) write64(view, loc, val);
  else view.setUint32(loc, low32(val), true);
  return 0;
}

function overflowX86(type: number, val: number, modName: string, log: RelocLog): number {
  log(3, `module: overflow in relocation type ${type} val ${hex64(val)}`);
  log(3, `module: \`${modName}' likely not compiled with -mcmodel=kernel`);
  return -ENOEXEC;
}

// arm64 relocation types (ELF for the Arm 64-bit Architecture)
export const R_ARM_NONE = 0;
export const R_AARCH64_NONE = 256;
export const R_AARCH64_ABS64 = 257;
export const R_AARCH64_ABS32 = 258;
export const R_AARCH64_ABS16 = 259;
export const R_AARCH64_PREL64 = 260;
export const R_AARCH64_PREL32 = 261;
export const R_AARCH64_PREL16 = 262;
export const R_AARCH64_MOVW_UABS_G0 = 263;
export const R_AARCH64_MOVW_UABS_G0_NC = 264;
export const R_AARCH64_MOVW_UABS_G1 = 265;
export const R_AARCH64_MOVW_UABS_G1_NC = 266;
export const R_AARCH64_MOVW_UABS_G2 = 267;
export const R_AARCH64_MOVW_UABS_G2_NC = 268;
export const R_AARCH64_MOVW_UABS_G3 = 269;
export const R_AARCH64_MOVW_SABS_G0 = 270;
export const R_AARCH64_MOVW_SABS_G1 = 271;
export const R_AARCH64_MOVW_SABS_G2 = 272;
export const R_AARCH64_LD_PREL_LO19 = 273;
export const R_AARCH64_ADR_PREL_LO21 = 274;
export const R_AARCH64_ADR_PREL_PG_HI21 = 275;
export const R_AARCH64_ADR_PREL_PG_HI21_NC = 276;
export const R_AARCH64_ADD_ABS_LO12_NC = 277;
export const R_AARCH64_LDST8_ABS_LO12_NC = 278;
export const R_AARCH64_TSTBR14 = 279;
export const R_AARCH64_CONDBR19 = 280;
export const R_AARCH64_JUMP26 = 282;
export const R_AARCH64_CALL26 = 283;
export const R_AARCH64_LDST16_ABS_LO12_NC = 284;
export const R_AARCH64_LDST32_ABS_LO12_NC = 285;
export const R_AARCH64_LDST64_ABS_LO12_NC = 286;
export const R_AARCH64_MOVW_PREL_G0 = 287;
export const R_AARCH64_MOVW_PREL_G0_NC = 288;
export const R_AARCH64_MOVW_PREL_G1 = 289;
export const R_AARCH64_MOVW_PREL_G1_NC = 290;
export const R_AARCH64_MOVW_PREL_G2 = 291;
export const R_AARCH64_MOVW_PREL_G2_NC = 292;
export const R_AARCH64_MOVW_PREL_G3 = 293;
export const R_AARCH64_LDST128_ABS_LO12_NC = 299;

type Op = 'abs' | 'prel' | 'page';
type ImmType = 'imm26' | 'imm19' | 'imm16' | 'imm14' | 'imm12' | 'adr';

function doReloc(op: Op, P: bigint, val: bigint): bigint {
  switch (op) {
    case 'abs':
      return BigInt.asIntN(64, val);
    case 'prel':
      return BigInt.asIntN(64, val - P);
    default:
      return BigInt.asIntN(64, (val & ~0xfffn) - (P & ~0xfffn));
  }
}

/** aarch64_insn_encode_immediate() */
function encodeImm(type: ImmType, insn: number, imm: bigint): number {
  let mask: number;
  let shift: number;
  switch (type) {
    case 'imm26':
      mask = 0x3ffffff;
      shift = 0;
      break;
    case 'imm19':
      mask = 0x7ffff;
      shift = 5;
      break;
    case 'imm16':
      mask = 0xffff;
      shift = 5;
      break;
    case 'imm14':
      mask = 0x3fff;
      shift = 5;
      break;
    case 'imm12':
      mask = 0xfff;
      shift = 10;
      break;
    default: {
      // ADR/ADRP: immlo in bits 29-30, immhi in bits 5-23
      const v = Number(BigInt.asUintN(21, imm));
      const immlo = v & 3;
      const immhi = (v >>> 2) & 0x7ffff;
      return ((insn & ~((3 << 29) | (0x7ffff << 5))) | (immlo << 29) | (immhi << 5)) >>> 0;
    }
  }
  const v = Number(BigInt.asUintN(32, imm)) & mask;
  return ((insn & ~(mask << shift)) | (v << shift)) >>> 0;
}

function relocData(op: Op, view: DataView, loc: number, P: bigint, val: bigint, bits: 16 | 32 | 64): number {
  const sval = doReloc(op, P, val);
  if (bits === 64) {
    view.setBigInt64(loc, sval, true);
    return 0;
  }
  if (bits === 32) view.setUint32(loc, Number(BigInt.asUintN(32, sval)), true);
  else view.setUint16(loc, Number(BigInt.asUintN(16, sval)), true);
  const lim = bits === 32 ? 1n << 32n : 1n << 16n;
  if (op === 'abs') return sval < 0n || sval >= lim ? -ERANGE : 0;
  return sval < -(lim >> 1n) || sval >= lim >> 1n ? -ERANGE : 0;
}

function relocMovw(op: Op, view: DataView, loc: number, P: bigint, val: bigint, lsb: number, signed: boolean): number {
  let insn = view.getUint32(loc, true);
  const sval = doReloc(op, P, val);
  let imm = BigInt.asUintN(64, sval >> BigInt(lsb));
  if (signed) {
    insn = (insn & ~(3 << 29)) >>> 0;
    if (sval >= 0n) insn = (insn | (2 << 29)) >>> 0;
    else imm = BigInt.asUintN(64, ~imm);
  }
  view.setUint32(loc, encodeImm('imm16', insn, imm), true);
  return imm > 0xffffn ? -ERANGE : 0;
}

function relocImm(op: Op, view: DataView, loc: number, P: bigint, val: bigint, lsb: number, len: number, type: ImmType): number {
  const insn = view.getUint32(loc, true);
  let sval = doReloc(op, P, val) >> BigInt(lsb);
  const immMask = ((1n << BigInt(lsb + len)) - 1n) >> BigInt(lsb);
  const imm = BigInt.asUintN(64, sval) & immMask;
  view.setUint32(loc, encodeImm(type, insn, imm), true);
  // the bits above the field, sign bit included, must all equal the sign
  sval = BigInt.asIntN(64, BigInt.asUintN(64, sval) & ~(immMask >> 1n)) >> BigInt(len - 1);
  return BigInt.asUintN(64, sval + 1n) >= 2n ? -ERANGE : 0;
}

/** Allocates a PLT entry (in .plt or .init.plt) for a branch that cannot reach; returns its address. */
export type PltEmitter = (P: bigint, val: bigint) => bigint | undefined;

/** How each arm64 relocation type is applied: the operation, the field, and whether overflow counts. */
type Arm64Rule =
  | { kind: 'data'; op: Op; bits: 16 | 32 | 64; check: boolean }
  | { kind: 'movw'; op: Op; lsb: number; signed: boolean; check: boolean }
  | { kind: 'imm'; op: Op; lsb: number; len: number; imm: ImmType; check: boolean }
  | { kind: 'branch' };

const data = (op: Op, bits: 16 | 32 | 64, check = true): Arm64Rule => ({ kind: 'data', op, bits, check });
const movw = (op: Op, lsb: number, signed: boolean, check = true): Arm64Rule => ({ kind: 'movw', op, lsb, signed, check });
const imm = (op: Op, lsb: number, len: number, t: ImmType, check = true): Arm64Rule => ({ kind: 'imm', op, lsb, len, imm: t, check });

const ARM64_RULES = new Map<number, Arm64Rule>([
  [R_AARCH64_ABS64, data('abs', 64, false)],
  [R_AARCH64_ABS32, data('abs', 32)],
  [R_AARCH64_ABS16, data('abs', 16)],
  [R_AARCH64_PREL64, data('prel', 64, false)],
  [R_AARCH64_PREL32, data('prel', 32)],
  [R_AARCH64_PREL16, data('prel', 16)],
  [R_AARCH64_MOVW_UABS_G0_NC, movw('abs', 0, false, false)],
  [R_AARCH64_MOVW_UABS_G0, movw('abs', 0, false)],
  [R_AARCH64_MOVW_UABS_G1_NC, movw('abs', 16, false, false)],
  [R_AARCH64_MOVW_UABS_G1, movw('abs', 16, false)],
  [R_AARCH64_MOVW_UABS_G2_NC, movw('abs', 32, false, false)],
  [R_AARCH64_MOVW_UABS_G2, movw('abs', 32, false)],
  // the top bits cannot overflow
  [R_AARCH64_MOVW_UABS_G3, movw('abs', 48, false, false)],
  [R_AARCH64_MOVW_SABS_G0, movw('abs', 0, true)],
  [R_AARCH64_MOVW_SABS_G1, movw('abs', 16, true)],
  [R_AARCH64_MOVW_SABS_G2, movw('abs', 32, true)],
  [R_AARCH64_MOVW_PREL_G0_NC, movw('prel', 0, false, false)],
  [R_AARCH64_MOVW_PREL_G0, movw('prel', 0, true)],
  [R_AARCH64_MOVW_PREL_G1_NC, movw('prel', 16, false, false)],
  [R_AARCH64_MOVW_PREL_G1, movw('prel', 16, true)],
  [R_AARCH64_MOVW_PREL_G2_NC, movw('prel', 32, false, false)],
  [R_AARCH64_MOVW_PREL_G2, movw('prel', 32, true)],
  [R_AARCH64_MOVW_PREL_G3, movw('prel', 48, true, false)],
  [R_AARCH64_LD_PREL_LO19, imm('prel', 2, 19, 'imm19')],
  [R_AARCH64_ADR_PREL_LO21, imm('prel', 0, 21, 'adr')],
  // CPUs without erratum 843419: a plain ADRP
  [R_AARCH64_ADR_PREL_PG_HI21_NC, imm('page', 12, 21, 'adr', false)],
  [R_AARCH64_ADR_PREL_PG_HI21, imm('page', 12, 21, 'adr')],
  [R_AARCH64_ADD_ABS_LO12_NC, imm('abs', 0, 12, 'imm12', false)],
  [R_AARCH64_LDST8_ABS_LO12_NC, imm('abs', 0, 12, 'imm12', false)],
  [R_AARCH64_LDST16_ABS_LO12_NC, imm('abs', 1, 11, 'imm12', false)],
  [R_AARCH64_LDST32_ABS_LO12_NC, imm('abs', 2, 10, 'imm12', false)],
  [R_AARCH64_LDST64_ABS_LO12_NC, imm('abs', 3, 9, 'imm12', false)],
  [R_AARCH64_LDST128_ABS_LO12_NC, imm('abs', 4, 8, 'imm12', false)],
  [R_AARCH64_TSTBR14, imm('prel', 2, 14, 'imm14')],
  [R_AARCH64_CONDBR19, imm('prel', 2, 19, 'imm19')],
  [R_AARCH64_JUMP26, { kind: 'branch' }],
  [R_AARCH64_CALL26, { kind: 'branch' }],
]);

/**
 * One arm64 RELA entry. Returns 0 or -ENOEXEC after logging what the kernel logs ("Modules: " prefix).
 */
export function relocateArm64(view: DataView, loc: number, Pn: number, type: number, valn: number, modName: string, log: RelocLog, emitPlt: PltEmitter): number {
  if (type === R_ARM_NONE || type === R_AARCH64_NONE) return 0;
  const rule = ARM64_RULES.get(type);
  if (!rule) {
    log(3, `Modules: module ${modName}: unsupported RELA relocation: ${type}`);
    return -ENOEXEC;
  }
  const P = BigInt(Pn);
  let val = BigInt(valn);
  let ovf: number;
  let check = true;
  if (rule.kind === 'data') {
    ovf = relocData(rule.op, view, loc, P, val, rule.bits);
    check = rule.check;
  } else if (rule.kind === 'movw') {
    ovf = relocMovw(rule.op, view, loc, P, val, rule.lsb, rule.signed);
    check = rule.check;
  } else if (rule.kind === 'imm') {
    ovf = relocImm(rule.op, view, loc, P, val, rule.lsb, rule.len, rule.imm);
    check = rule.check;
  } else {
    // a branch out of reach goes through a PLT entry of the module
    const insn = view.getUint32(loc, true);
    ovf = relocImm('prel', view, loc, P, val, 2, 26, 'imm26');
    if (ovf === -ERANGE) {
      const plt = emitPlt(P, val);
      if (plt === undefined) return -ENOEXEC;
      view.setUint32(loc, insn, true);
      val = plt;
      ovf = relocImm('prel', view, loc, P, val, 2, 26, 'imm26');
    }
  }
  if (check && ovf === -ERANGE) {
    log(3, `Modules: module ${modName}: overflow in relocation type ${type} val ${hex64(val)}`);
    return -ENOEXEC;
  }
  return 0;
}

/**
 * apply_relocations() (kernel/module/main.c): every RELA section that targets an allocated section is
 * applied with the arch's apply_relocate_add(); REL sections are refused, livepatch ones left for later.
 * Writes go to the image (NOBITS targets get a zeroed buffer), so the module can be read afterwards.
 */
export function applyRelocations(ctx: LoadContext, info: LoadInfo): void {
  const { img, secs, symValue } = info;
  const { arch } = ctx.spec;
  const modName = info.mod.name;
  const view = img.view;
  const emitPlt = arm64PltEmitter(info);
  for (let i = 1; i < secs.length; i++) {
    const rs = secs[i];
    if (rs.info >= secs.length) continue;
    const target = secs[rs.info];
    if (!(target.flags & SHF_ALLOC)) continue;
    if (rs.type !== SHT_REL && rs.type !== SHT_RELA) continue;
    if (rs.flags & SHF_RELA_LIVEPATCH) continue;
    if (rs.type === SHT_REL) {
      ctx.log(3, `module ${modName}: REL relocation unsupported`);
      fail(ENOEXEC);
    }
    let tview = view;
    let tbase = target.offset;
    if (target.type === SHT_NOBITS) {
      target.zero ??= new Uint8Array(target.size + 8);
      tview = new DataView(target.zero.buffer);
      tbase = 0;
    }
    const init = target.nameStr.startsWith('.init');
    const n = Math.floor(rs.size / 24);
    for (let k = 0; k < n; k++) {
      const e = rs.offset + k * 24;
      const rOffset = img.u64(e);
      const type = view.getUint32(e + 8, true);
      const symI = view.getUint32(e + 12, true);
      const addend = img.s64(e + 16);
      if (symI >= symValue.length || rOffset + relocSize(arch, type) > target.size) relocationOutOfBounds(ctx, modName, k, rs);
      const P = target.final + rOffset;
      const val = symValue[symI] + addend;
      const r =
        arch === 'arm64'
          ? relocateArm64(tview, tbase + rOffset, P, type, val, modName, ctx.log, () => emitPlt(init, symI, type, addend))
          : relocateX86(tview, tbase + rOffset, P, type, val, modName, ctx.log);
      if (r < 0) fail(-r);
    }
  }
}

/**
 * arm64 module_emit_plt_entry(): one 12-byte entry per (type, symbol) for addend 0, in .plt or .init.plt
 * as module_frob_arch_sections() sized them; returns the entry's address, undefined when full.
 */
function arm64PltEmitter(info: LoadInfo): (init: boolean, symI: number, type: number, addend: number) => bigint | undefined {
  const used = { core: new Map<string, number>(), init: new Map<string, number>() };
  return (init, symI, type, addend) => {
    const sec = info.secs.find((s) => s.nameStr === (init ? '.init.plt' : '.plt'));
    if (!sec) return undefined;
    const entries = init ? used.init : used.core;
    const key = addend === 0 ? `${type}:${symI}` : `${type}:${symI}:${addend}:${entries.size}`;
    let idx = entries.get(key);
    if (idx === undefined) {
      idx = entries.size;
      if ((idx + 1) * 12 > sec.size) return undefined;
      entries.set(key, idx);
    }
    return BigInt(sec.final + idx * 12);
  };
}

/** Bytes a relocation type writes (for the simulator's own bounds check). */
function relocSize(arch: 'x86_64' | 'arm64', type: number): number {
  if (arch === 'x86_64') return type === 0 ? 0 : type === 1 || type === 24 ? 8 : 4;
  if (type === 0 || type === 256) return 0;
  if (type === 257 || type === 260) return 8;
  if (type === 259 || type === 262) return 2;
  return 4;
}
