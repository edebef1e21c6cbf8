// Module parameters as the kernel parses them at load time (kernel/params.c, lib/cmdline.c,
// lib/kstrtox.c): tokenising with quotes, '-'/'_' equivalent names, the standard setters with their
// range rules, arrays, unknown names warned about and ignored, and the last setter error returned.
// Also the module's own parameter table (__param, struct kernel_param) as load_module() finds it.
import type { KernelSymbols } from './kernel-model';
import { fail, type LoadContext, type LoadInfo, type ModuleMemory } from './load-info';
import { addTaint, TAINT_USER } from './taint';
import { EINVAL, ENOSPC, ERANGE, EROFS } from '../../errno';

/** A parameter's type, from the kernel_param_ops it points at. 'custom' = the module's own ops. */
export type ParamKind =
  | 'byte'
  | 'short'
  | 'ushort'
  | 'int'
  | 'uint'
  | 'long'
  | 'ulong'
  | 'ullong'
  | 'hexint'
  | 'charp'
  | 'bool'
  | 'bool_enable_only'
  | 'invbool'
  | 'bint'
  | 'string'
  | 'array'
  | 'custom';

export interface ParamDesc {
  name: string;
  kind: ParamKind;
  perm: number;
  flags: number;
  /** custom ops: whether they accept a bare name (KERNEL_PARAM_OPS_FL_NOARG) */
  noarg?: boolean;
  /** string: buffer size (kparam_string.maxlen) */
  maxlen?: number;
  /** array: most elements, and the element type */
  max?: number;
  elem?: ParamKind;
  elemMaxlen?: number;
  /** current value as sysfs shows it (without the newline), when known */
  value?: string;
}

export const KERNEL_PARAM_FL_UNSAFE = 1;
export const KERNEL_PARAM_FL_HWPARAM = 2;

/** kernel_param_ops symbols of vmlinux and the type each one sets */
export const PARAM_OPS: Record<string, ParamKind> = {
  param_ops_byte: 'byte',
  param_ops_short: 'short',
  param_ops_ushort: 'ushort',
  param_ops_int: 'int',
  param_ops_uint: 'uint',
  param_ops_long: 'long',
  param_ops_ulong: 'ulong',
  param_ops_ullong: 'ullong',
  param_ops_hexint: 'hexint',
  param_ops_charp: 'charp',
  param_ops_bool: 'bool',
  param_ops_bool_enable_only: 'bool_enable_only',
  param_ops_invbool: 'invbool',
  param_ops_bint: 'bint',
  param_ops_string: 'string',
  param_array_ops: 'array',
};

const isSpace = (c: string | undefined): boolean => c === ' ' || c === '\t' || c === '\n' || c === '\v' || c === '\f' || c === '\r';

function skipSpaces(s: string, i: number): number {
  while (i < s.length && isSpace(s[i])) i++;
  return i;
}

/** One step of the kernel's next_arg(): the parameter, its value (null = none) and where to go on. */
export function nextArg(s: string, pos: number): { param: string; val: string | null; next: number } {
  let start = pos;
  let inQuote = false;
  let quoted = false;
  if (s[start] === '"') {
    start++;
    inQuote = true;
    quoted = true;
  }
  let i = 0;
  let equals = 0;
  for (; start + i < s.length && s[start + i] !== '\0'; i++) {
    const c = s[start + i];
    if (isSpace(c) && !inQuote) break;
    if (equals === 0 && c === '=') equals = i;
    if (c === '"') inQuote = !inQuote;
  }
  // the token as a mutable array, cut with NULs the way the C code does
  const tok = s.slice(start, start + i).split('');
  let valStart = -1;
  if (equals !== 0) {
    tok[equals] = '\0';
    valStart = equals + 1;
    if (tok[valStart] === '"') {
      valStart++;
      if (tok[i - 1] === '"') tok[i - 1] = '\0';
    }
  }
  if (quoted && i > 0 && tok[i - 1] === '"') tok[i - 1] = '\0';
  const cut = (from: number): string => {
    const e = tok.indexOf('\0', from);
    return tok.slice(from, e < 0 ? tok.length : e).join('');
  };
  const param = cut(0);
  const val = valStart >= 0 ? (valStart <= tok.length ? cut(valStart) : '') : null;
  let next = start + i;
  if (next < s.length) next++;
  return { param, val, next: skipSpaces(s, next) };
}

/** parameq(): names equal with '-' and '_' interchangeable */
export function parameq(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] === '-' ? '_' : a[i];
    const y = b[i] === '-' ? '_' : b[i];
    if (x !== y) return false;
  }
  return true;
}

const isDigitIn = (c: string, base: number): number => {
  const code = c.toLowerCase().charCodeAt(0);
  let v = -1;
  if (code >= 48 && code <= 57) v = code - 48;
  else if (code >= 97 && code <= 102) v = code - 87;
  return v >= 0 && v < base ? v : -1;
};

const U64_MAX = (1n << 64n) - 1n;

/** _kstrtoull(s, 0): the value, or a negative errno */
function kstrtoullNoSign(s: string): bigint | number {
  let base = 10;
  let i = 0;
  if (s[0] === '0') {
    if (s[1] !== undefined && s[1].toLowerCase() === 'x' && s[2] !== undefined && isDigitIn(s[2], 16) >= 0) {
      base = 16;
      i = 2;
    } else base = 8;
  }
  let v = 0n;
  let n = 0;
  let overflow = false;
  for (; i < s.length; i++, n++) {
    const d = isDigitIn(s[i], base);
    if (d < 0) break;
    v = v * BigInt(base) + BigInt(d);
    if (v > U64_MAX) overflow = true;
  }
  if (overflow) return -ERANGE;
  if (n === 0) return -EINVAL;
  if (s[i] === '\n') i++;
  if (i !== s.length) return -EINVAL;
  return v;
}

function kstrtoull(s: string): bigint | number {
  return kstrtoullNoSign(s[0] === '+' ? s.slice(1) : s);
}

function kstrtoll(s: string): bigint | number {
  if (s[0] === '-') {
    const t = kstrtoullNoSign(s.slice(1));
    if (typeof t === 'number') return t;
    if (t > 1n << 63n) return -ERANGE;
    return -t;
  }
  const t = kstrtoull(s);
  if (typeof t === 'number') return t;
  if (t >= 1n << 63n) return -ERANGE;
  return t;
}

/** kstrtobool(): first characters decide; anything else is EINVAL */
export function kstrtobool(s: string | null): boolean | number {
  if (s === null || s.length === 0) return -EINVAL;
  switch (s[0]) {
    case 'y':
    case 'Y':
    case 't':
    case 'T':
    case '1':
      return true;
    case 'n':
    case 'N':
    case 'f':
    case 'F':
    case '0':
      return false;
    case 'o':
    case 'O':
      if (s[1] === 'n' || s[1] === 'N') return true;
      if (s[1] === 'f' || s[1] === 'F') return false;
      return -EINVAL;
    default:
      return -EINVAL;
  }
}

const INT_RANGES: Partial<Record<ParamKind, [bigint, bigint, boolean]>> = {
  byte: [0n, 255n, false],
  short: [-32768n, 32767n, true],
  ushort: [0n, 65535n, false],
  int: [-(1n << 31n), (1n << 31n) - 1n, true],
  uint: [0n, (1n << 32n) - 1n, false],
  hexint: [0n, (1n << 32n) - 1n, false],
  long: [-(1n << 63n), (1n << 63n) - 1n, true],
  ulong: [0n, U64_MAX, false],
  ullong: [0n, U64_MAX, false],
};

/** Logs a kernel message from the parser */
export type ParamLog = (level: number, text: string) => void;

interface SetResult {
  err: number;
  value?: string;
}

function formatValue(kind: ParamKind, v: bigint | boolean | string): string {
  if (typeof v === 'boolean') return v ? 'Y' : 'N';
  if (typeof v === 'string') return v;
  // "%#08x": no 0x prefix for zero
  if (kind === 'hexint') return v === 0n ? '00000000' : '0x' + v.toString(16).padStart(6, '0');
  return v.toString();
}

/** One ops->set(): 0 on success, or a negative errno; the new sysfs value when it succeeds. */
function setOne(kind: ParamKind, val: string | null, p: { name: string; maxlen?: number; value?: string }, log: ParamLog): SetResult {
  const range = INT_RANGES[kind];
  if (range) {
    if (val === null) return { err: -EINVAL };
    const r = range[2] ? kstrtoll(val) : kstrtoull(val);
    if (typeof r === 'number') return { err: r };
    if (r < range[0] || r > range[1]) return { err: -ERANGE };
    return { err: 0, value: formatValue(kind, r) };
  }
  switch (kind) {
    case 'charp':
      if (val === null) return { err: -EINVAL };
      if (val.length > 1024) {
        log(3, `${p.name}: string parameter too long`);
        return { err: -ENOSPC };
      }
      return { err: 0, value: val };
    case 'bool':
    case 'bint': {
      const b = kstrtobool(val ?? '1');
      if (typeof b === 'number') return { err: b };
      return { err: 0, value: kind === 'bint' ? (b ? '1' : '0') : b ? 'Y' : 'N' };
    }
    case 'bool_enable_only': {
      const b = kstrtobool(val ?? '1');
      if (typeof b === 'number') return { err: b };
      if (!b && p.value === 'Y') return { err: -EROFS };
      return { err: 0, value: b ? 'Y' : p.value ?? 'N' };
    }
    case 'invbool': {
      const b = kstrtobool(val ?? '1');
      if (typeof b === 'number') return { err: b };
      return { err: 0, value: b ? 'N' : 'Y' };
    }
    case 'string': {
      if (val === null) return { err: -EINVAL };
      const maxlen = p.maxlen ?? 1;
      if (val.length + 1 > maxlen) {
        log(3, `${p.name}: string doesn't fit in ${maxlen - 1} chars.`);
        return { err: -ENOSPC };
      }
      return { err: 0, value: val };
    }
    default:
      // the module's own ops: their rules are code we cannot run; any value is taken, as given
      return val === null ? { err: 0 } : { err: 0, value: val };
  }
}

/** param_array(): comma-separated elements, at most max */
function setArray(val: string | null, p: ParamDesc, log: ParamLog): SetResult {
  if (val === null) return { err: -EINVAL };
  const max = p.max ?? 0;
  const elem = p.elem ?? 'custom';
  const values: string[] = [];
  let rest = val;
  for (;;) {
    if (values.length === max) {
      log(3, `${p.name}: can only take ${max} arguments`);
      return { err: -EINVAL };
    }
    const comma = rest.indexOf(',');
    const piece = comma < 0 ? rest : rest.slice(0, comma);
    const r = setOne(elem, piece, { name: p.name, maxlen: p.elemMaxlen }, log);
    if (r.err !== 0) return r;
    values.push(r.value ?? piece);
    if (comma < 0) break;
    rest = rest.slice(comma + 1);
  }
  return { err: 0, value: values.join(',') };
}

export interface ParseArgsResult {
  /** 0, or the negative errno of the last failing parameter */
  err: number;
  /** taint U was set (an unsafe parameter was given) */
  taintUser: boolean;
}

/**
 * parse_args(mod->name, args, params, ..., unknown_module_param_cb): sets values in `params` (their
 * `value`), logs what the kernel logs, and returns the last error.
 */
export function parseModuleArgs(modName: string, args: string, params: ParamDesc[], log: ParamLog, opts: { lockdown: boolean }): ParseArgsResult {
  let err = 0;
  let taintUser = false;
  let pos = skipSpaces(args, 0);
  while (pos < args.length) {
    const { param, val, next } = nextArg(args, pos);
    pos = next;
    if (val === null && param === '--') {
      // load_module() reports what follows '--' only when parsing succeeded
      if (err === 0) log(4, `${modName}: parameters '${args.slice(pos)}' after \`--' ignored`);
      return { err, taintUser };
    }
    let ret = 0;
    const p = params.find((q) => parameq(param, q.name));
    if (p) {
      const noarg = p.kind === 'bool' || p.kind === 'bool_enable_only' || p.kind === 'bint' || (p.kind === 'custom' && p.noarg === true);
      if (val === null && !noarg) ret = -EINVAL;
      else if (p.flags & KERNEL_PARAM_FL_HWPARAM && opts.lockdown) ret = -1; /* EPERM */
      else {
        if (p.flags & KERNEL_PARAM_FL_UNSAFE) {
          log(5, `Setting dangerous option ${p.name} - tainting kernel`);
          taintUser = true;
        }
        const r = p.kind === 'array' ? setArray(val, p, log) : setOne(p.kind, val, p, log);
        ret = r.err;
        if (ret === 0 && r.value !== undefined) p.value = r.value;
      }
    } else {
      // unknown_module_param_cb: async_probe and dyndbg are taken, anything else is warned about
      if (param !== 'async_probe') {
        const dot = param.indexOf('.');
        const head = dot >= 0 ? param.slice(0, dot) : param;
        const tail = dot >= 0 ? param.slice(dot + 1) : param;
        if (tail !== 'dyndbg') log(4, `${modName}: unknown parameter '${head}' ignored`);
      }
    }
    if (ret === 0) continue;
    if (ret === -ENOSPC) log(3, `${modName}: \`${val ?? ''}' too large for parameter \`${param}'`);
    else log(3, `${modName}: \`${val ?? ''}' invalid for parameter \`${param}'`);
    err = ret;
  }
  return { err, taintUser };
}

export { formatValue as formatParamValue };

/**
 * load_module()'s parse_args() step: the arguments are applied to the module's parameters; an unsafe
 * parameter taints the kernel (TAINT_USER), and the last setter error fails the load.
 */
export function loadModuleParseArgs(ctx: LoadContext, info: LoadInfo, params: ParamDesc[]): void {
  const r = parseModuleArgs(info.mod.name, info.uargs, params, ctx.log, { lockdown: ctx.spec.switches.lockdown });
  if (r.taintUser) addTaint(ctx, TAINT_USER, false);
  if (r.err < 0) fail(-r.err);
}

/** sizeof(struct kernel_param) on 64-bit */
const KERNEL_PARAM_SIZE = 40;

/**
 * The module's struct kernel_param entries (mod->kp, from __param) as relocated: name, type (from the
 * kernel_param_ops the entry points at), permissions, flags, and the initial value when it can be read.
 */
export function readModuleParams(ksyms: KernelSymbols, info: LoadInfo, memory: ModuleMemory): ParamDesc[] {
  const pidx = info.mod.param;
  if (!pidx) return [];
  const s = info.secs[pidx];
  const opsByAddr = new Map<number, ParamKind>();
  for (const [sym, kind] of Object.entries(PARAM_OPS)) {
    const k = ksyms.plain.get(sym) ?? ksyms.gpl.get(sym);
    if (k) opsByAddr.set(k.value, kind);
  }
  const out: ParamDesc[] = [];
  for (let k = 0; k < Math.floor(s.size / KERNEL_PARAM_SIZE); k++) {
    const base = s.final + k * KERNEL_PARAM_SIZE;
    const namePtr = memory.u64(base);
    const opsPtr = memory.u64(base + 16);
    const raw = memory.bytes(base + 24, 4);
    const argPtr = memory.u64(base + 32);
    if (namePtr === undefined || opsPtr === undefined || !raw) continue;
    const name = memory.cstr(namePtr);
    if (name === undefined) continue;
    const perm = raw[0] | (raw[1] << 8);
    const pflags = raw[3];
    const kind = opsByAddr.get(opsPtr) ?? 'custom';
    const d: ParamDesc = { name, kind, perm, flags: pflags };
    if (kind === 'custom') {
      const f = memory.bytes(opsPtr, 4);
      d.noarg = f !== undefined && (f[0] & 1) === 1;
    } else if (kind === 'string' && argPtr !== undefined) {
      const m = memory.bytes(argPtr, 4);
      if (m) d.maxlen = m[0] | (m[1] << 8) | (m[2] << 16) | (m[3] << 24);
    } else if (kind === 'array' && argPtr !== undefined) {
      const m = memory.bytes(argPtr, 24);
      if (m) {
        const dv = new DataView(m.buffer, m.byteOffset, 24);
        d.max = dv.getUint32(0, true);
        const elemOps = memory.u64(argPtr + 16);
        d.elem = elemOps !== undefined ? opsByAddr.get(elemOps) ?? 'custom' : 'custom';
      }
    } else if (argPtr !== undefined) {
      d.value = initialValue(memory, kind, argPtr);
    }
    if (pflags & KERNEL_PARAM_FL_HWPARAM) d.flags = pflags;
    out.push(d);
  }
  return out;
}

const PARAM_WIDTH: Partial<Record<ParamKind, number>> = { byte: 1, short: 2, ushort: 2, int: 4, uint: 4, hexint: 4, long: 8, ulong: 8, ullong: 8, bool: 1, invbool: 1, bint: 4, bool_enable_only: 1 };

/** A parameter's initial value as sysfs would show it, read from the module's data. */
function initialValue(memory: ModuleMemory, kind: ParamKind, addr: number): string | undefined {
  if (kind === 'charp') {
    const p = memory.u64(addr);
    if (p === undefined) return undefined;
    return p === 0 ? '(null)' : memory.cstr(p);
  }
  const w = PARAM_WIDTH[kind];
  if (w === undefined) return undefined;
  const b = memory.bytes(addr, w);
  if (!b) return undefined;
  const dv = new DataView(b.buffer, b.byteOffset, w);
  switch (kind) {
    case 'byte':
      return String(dv.getUint8(0));
    case 'short':
      return String(dv.getInt16(0, true));
    case 'ushort':
      return String(dv.getUint16(0, true));
    case 'int':
    case 'bint':
      return String(dv.getInt32(0, true));
    case 'uint':
      return String(dv.getUint32(0, true));
    case 'hexint': {
      const v = dv.getUint32(0, true);
      return v === 0 ? '00000000' : '0x' + v.toString(16).padStart(6, '0');
    }
    case 'long':
      return String(dv.getBigInt64(0, true));
    case 'ulong':
    case 'ullong':
      return String(dv.getBigUint64(0, true));
    case 'bool':
    case 'bool_enable_only':
      return dv.getUint8(0) ? 'Y' : 'N';
    case 'invbool':
      return dv.getUint8(0) ? 'N' : 'Y';
    default:
      return undefined;
  }
}
