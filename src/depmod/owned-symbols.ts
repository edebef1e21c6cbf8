// The symbols that modules own, in kmod's hash order (modules.symbols' entries): their names, their
// owners' names and idx. The JavaScript table (symbols.ts) gives them as strings; the addon's table
// (native/symbol_table.c), for a run that reports nothing about imports, gives them as bytes. Each form
// is made from the other only where something asks for it (the addon's text makers take bytes; -w's
// one-by-one index and the JavaScript text take strings).
import { nativeFunction } from '../native-addon';
import { aboveLatin1, joinedBytes, modnameBytes, splitJoined, type JoinedBytes } from './joined-bytes';
import type { Mod } from './run-context';

export class OwnedSymbols {
  private constructor(
    /** the owners' idx */
    readonly priorities: Uint32Array,
    private namesList: string[] | undefined,
    private modnamesList: string[] | undefined,
    private namesJoined: JoinedBytes | undefined,
    private modnamesJoined: JoinedBytes | undefined,
  ) {}

  static ofStrings(names: string[], modnames: string[], priorities: Uint32Array): OwnedSymbols {
    return new OwnedSymbols(priorities, names, modnames, undefined, undefined);
  }

  static ofBytes(names: JoinedBytes, modnames: JoinedBytes, priorities: Uint32Array): OwnedSymbols {
    return new OwnedSymbols(priorities, undefined, undefined, names, modnames);
  }

  get count(): number {
    return this.priorities.length;
  }

  get names(): string[] {
    return (this.namesList ??= splitJoined(this.namesJoined!));
  }

  get modnames(): string[] {
    return (this.modnamesList ??= splitJoined(this.modnamesJoined!));
  }

  get nameBytes(): JoinedBytes {
    return (this.namesJoined ??= joinedBytes(this.namesList!));
  }

  get modnameBytes(): JoinedBytes {
    return (this.modnamesJoined ??= joinedBytes(this.modnamesList!));
  }
}

/**
 * The modules' exports gathered for the addon's table instead of being added one by one to the
 * JavaScript one: each module's names joined by NULs (a string, or a scan cache's bytes), with its
 * count and its module.
 */
export class ExportBatch {
  /** each module's names joined by NULs: a string, or bytes[at, at + length) of a Buffer */
  private readonly parts: (string | Buffer)[] = [];
  private readonly partAt: number[] = [];
  private readonly partBytes: number[] = [];
  private readonly counts: number[] = [];
  private readonly mods: Mod[] = [];

  /** whether the addon has the table (and the lookups that go with it: dep-graph.ts) */
  static available(): boolean {
    return nativeFunction('ownedSymbols') !== null && nativeFunction('importOwners') !== null && nativeFunction('importDeps') !== null;
  }

  add(names: string[], mod: Mod): void {
    if (names.length === 0) return;
    const joined = names.length === 1 ? names[0] : names.join('\0');
    this.push(joined, 0, joined.length, names.length, mod);
  }

  /** `count` names joined by NULs (no NUL after the last) in one string */
  addJoined(joined: string, count: number, mod: Mod): void {
    if (count > 0) this.push(joined, 0, joined.length, count, mod);
  }

  /** `count` names joined by NULs (no NUL after the last) in bytes[at, at + length) */
  addBytes(bytes: Buffer, at: number, length: number, count: number, mod: Mod): void {
    if (count > 0) this.push(bytes, at, length, count, mod);
  }

  private push(part: string | Buffer, at: number, length: number, count: number, mod: Mod): void {
    this.parts.push(part);
    this.partAt.push(at);
    this.partBytes.push(length);
    this.counts.push(count);
    this.mods.push(mod);
  }

  /**
   * The owned symbols by the addon (`prefix`: -P's byte, -1 for none; `modules`: every module, by idx),
   * or null where a name has a char above 0xff (which has no byte): then `replay` gives each export.
   */
  owned(prefix: number, modules: Mod[]): OwnedSymbols | null {
    const names = this.joined();
    const modnames = modnameBytes(modules);
    if (names === null || modnames.bytes === null) return null;
    const owners = new Uint32Array(this.mods.length);
    for (let k = 0; k < this.mods.length; k++) owners[k] = this.mods[k].idx;
    const [sorted, nameLengths, priorities, values, valueLengths] = nativeFunction('ownedSymbols')!(names, Uint32Array.from(this.counts), owners, prefix, 2048, modnames.bytes, modnames.lengths);
    return OwnedSymbols.ofBytes({ bytes: sorted, lengths: nameLengths }, { bytes: values, lengths: valueLengths }, priorities);
  }

  /** every part joined by NULs, as bytes; null where a string part has a char above 0xff */
  private joined(): Buffer | null {
    const { parts, partAt, partBytes } = this;
    let total = Math.max(0, parts.length - 1);
    for (let k = 0; k < parts.length; k++) {
      const p = parts[k];
      if (typeof p === 'string' && aboveLatin1(p)) return null;
      total += partBytes[k];
    }
    const out = Buffer.allocUnsafe(total);
    for (let k = 0, at = 0; k < parts.length; k++) {
      const p = parts[k];
      if (k > 0) out[at++] = 0;
      if (typeof p === 'string') at += out.write(p, at, 'latin1');
      else {
        out.set(new Uint8Array(p.buffer, p.byteOffset + partAt[k], partBytes[k]), at);
        at += partBytes[k];
      }
    }
    return out;
  }

  /** each export gathered, with its module, in the order gathered */
  replay(add: (name: string, mod: Mod) => void): void {
    for (let k = 0; k < this.parts.length; k++) {
      const p = this.parts[k];
      const joined = typeof p === 'string' ? p : p.toString('latin1', this.partAt[k], this.partAt[k] + this.partBytes[k]);
      const names = this.counts[k] === 1 ? [joined] : joined.split('\0');
      for (let j = 0; j < names.length; j++) add(names[j], this.mods[k]);
    }
  }
}
