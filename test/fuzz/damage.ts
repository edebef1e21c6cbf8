// Format-aware damage for the fuzz targets (targets.ts): changes that byte-level mutation (mutate.ts)
// almost never makes, aimed at the fields a parser trusts (a trie's child references, a struct module's
// name, a PKCS#7 message's elements, a state journal's records). Each falls back to byte-level changes
// when its input does not have the expected shape.
import { mutateBytes, mutateText, type Rng } from './mutate';

/**
 * Index-aware damage: one child reference of the trie made to point at another node of the file (an
 * ancestor, itself, a sibling's child), which byte changes alone almost never hit.
 */
export function retargetChild(data: Buffer, rng: Rng): Buffer {
  const b = Buffer.from(data);
  const slots: number[] = [];
  const refs: number[] = [b.readUInt32BE(8)];
  const seen = new Set<number>();
  const todo = [b.readUInt32BE(8)];
  while (todo.length > 0 && slots.length < 4096) {
    const ref = todo.pop() as number;
    const off = ref & 0x0fffffff;
    if ((ref & 0xe0000000) === 0 || off < 12 || off >= b.length || seen.has(off)) continue;
    seen.add(off);
    let p = off;
    if (ref & 0x80000000) {
      p = b.indexOf(0, p) + 1;
      if (p === 0) continue;
    }
    if (ref & 0x20000000 && p + 2 <= b.length) {
      const first = b[p];
      const last = b[p + 1];
      for (let ch = first; ch <= last && p + 2 + 4 * (ch - first) + 4 <= b.length; ch++) {
        const at = p + 2 + 4 * (ch - first);
        const child = b.readUInt32BE(at);
        if (child === 0) continue;
        slots.push(at);
        refs.push(child);
        todo.push(child);
      }
    }
  }
  if (slots.length === 0) return mutateBytes(data, rng);
  b.writeUInt32BE(refs[Math.floor(rng() * refs.length)], slots[Math.floor(rng() * slots.length)]);
  return b;
}

/**
 * Damage to the name in a module's struct module (.gnu.linkonce.this_module at 0x18, 56 bytes; ELF64
 * little-endian, as the example modules are): empty, a byte of white space or '/' inside, or no NUL at
 * all, which byte changes alone almost never hit; otherwise two byte-level changes.
 */
export function damageModuleName(data: Buffer, rng: Rng): Buffer {
  const b = Buffer.from(data);
  let name = -1;
  if (b.length >= 64 && b.readUInt32BE(0) === 0x7f454c46) {
    const shoff = Number(b.readBigUInt64LE(0x28));
    const shnum = b.readUInt16LE(0x3c);
    const strHeader = shoff + 64 * b.readUInt16LE(0x3e);
    const strOff = strHeader + 64 <= b.length ? Number(b.readBigUInt64LE(strHeader + 24)) : b.length;
    for (let i = 1; i < shnum && shoff + 64 * (i + 1) <= b.length; i++) {
      const h = shoff + 64 * i;
      const at = strOff + b.readUInt32LE(h);
      if (at < b.length && b.toString('latin1', at, at + 26) === '.gnu.linkonce.this_module\0') name = Number(b.readBigUInt64LE(h + 24)) + 0x18;
    }
  }
  if (name < 0 || name + 56 > b.length) return mutateBytes(mutateBytes(data, rng), rng);
  const len = Math.max(1, b.indexOf(0, name) - name);
  switch (Math.floor(rng() * 4)) {
    case 0:
      b[name] = 0;
      break;
    case 1:
      b[name + Math.floor(rng() * len)] = [0x20, 0x09, 0x0a, 0x0c][Math.floor(rng() * 4)];
      break;
    case 2:
      b[name + Math.floor(rng() * len)] = 0x2f;
      break;
    default:
      b.fill(0x61 + Math.floor(rng() * 26), name, name + 56);
  }
  return b;
}

/**
 * DER-aware damage of a module's signature (its PKCS#7 message ends the input, before the 40-byte
 * trailer): one element's content filled with one byte (OID groups that never end, padding), its last
 * byte given the high bit, its first made 0x80, or its tag or length byte changed, which byte changes
 * alone almost never hit.
 */
export function damageDerElement(data: Buffer, rng: Rng): Buffer {
  const b = Buffer.from(data);
  const sigLen = b.length >= 40 ? b.readUInt32BE(b.length - 32) : 0;
  const sigStart = b.length - 40 - sigLen;
  if (sigLen === 0 || sigStart < 0) return mutateBytes(data, rng);
  // the elements' headers, walked where they nest (short and 1-2 byte long forms only)
  const elements: { at: number; start: number; end: number }[] = [];
  const walk = (from: number, to: number): void => {
    for (let at = from; at + 2 <= to && elements.length < 512; ) {
      let len = b[at + 1];
      let start = at + 2;
      if (len & 0x80) {
        const n = len & 0x7f;
        if (n < 1 || n > 2 || start + n > to) return;
        len = n === 1 ? b[start] : b.readUInt16BE(start);
        start += n;
      }
      const end = start + len;
      if (end > to) return;
      elements.push({ at, start, end });
      if (b[at] & 0x20) walk(start, end);
      at = end;
    }
  };
  walk(sigStart, b.length - 40);
  if (elements.length === 0) return mutateBytes(data, rng);
  const e = elements[Math.floor(rng() * elements.length)];
  const int = (n: number): number => Math.floor(rng() * n);
  switch (e.end > e.start ? int(5) : 3 + int(2)) {
    case 0:
      b.fill([0x80, 0x81, 0xff, 0][int(4)], e.start, e.end);
      break;
    case 1:
      b[e.end - 1] |= 0x80;
      break;
    case 2:
      b[e.start] = 0x80;
      break;
    case 3:
      b[e.at] = int(256);
      break;
    default:
      b[e.at + 1] = int(256);
  }
  return b;
}

/**
 * Journal-aware damage: in one record of the journal, one field (at any depth) removed or given a value
 * of another type, the line staying valid JSON, which byte changes alone rarely achieve.
 */
export function damageRecord(data: Buffer, rng: Rng): Buffer {
  const lines = data.toString('utf8').split('\n');
  const i = Math.floor(rng() * Math.max(1, lines.length - 1));
  let rec: unknown;
  try {
    rec = JSON.parse(lines[i]);
  } catch {
    return mutateText(data, rng);
  }
  const spots: [Record<string, unknown> | unknown[], string | number][] = [];
  const visit = (v: unknown): void => {
    if (spots.length > 20000 || typeof v !== 'object' || v === null) return;
    if (Array.isArray(v)) v.forEach((x, k) => (spots.push([v, k]), visit(x)));
    else for (const k of Object.keys(v)) spots.push([v as Record<string, unknown>, k]), visit((v as Record<string, unknown>)[k]);
  };
  visit(rec);
  if (spots.length === 0) return mutateText(data, rng);
  // half the time a field of a module record itself (the fields every command reads)
  const inModules = spots.filter(([h]) => !Array.isArray(h) && typeof h.name === 'string' && 'uses' in h);
  const pool = inModules.length > 0 && rng() < 0.5 ? inModules : spots;
  const [holder, key] = pool[Math.floor(rng() * pool.length)];
  const values = [undefined, null, '', 'x', 0, -1, 1.5, 1e300, true, [], {}, ['greet_core'], 'greet_core'];
  const v = values[Math.floor(rng() * values.length)];
  if (v === undefined && !Array.isArray(holder)) delete holder[key as string];
  else (holder as Record<string | number, unknown>)[key] = v;
  lines[i] = JSON.stringify(rec);
  return Buffer.from(lines.join('\n'));
}
