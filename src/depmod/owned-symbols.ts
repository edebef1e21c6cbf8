// The symbols that modules own, in kmod's hash order (modules.symbols' entries): their names, their
// owners' names and idx. The JavaScript table (symbols.ts) gives them as strings; the addon's table
// (native/symbol_table.c), for a run that reports nothing about imports, gives them as bytes. Each form
// is made from the other only where something asks for it (the addon's text makers take bytes; -w's
// one-by-one index and the JavaScript text take strings).
import { nativeFunction } from '../native-addon';
import { aboveLatin1, joinedBytes, splitJoined, type JoinedBytes } from './joined-bytes';
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
 * JavaScript one: each module's names joined by NULs, with its count and its module.
 */
export class ExportBatch {
  private readonly parts: string[] = [];
  private readonly counts: number[] = [];
  private readonly mods: Mod[] = [];

  /** whether the addon has the table (and the lookups that go with it: dep-graph.ts) */
  static available(): boolean {
    return nativeFunction('ownedSymbols') !== null && nativeFunction('importOwners') !== null && nativeFunction('importDeps') !== null;
  }

  add(names: string[], mod: Mod): void {
    if (names.length === 0) return;
    this.parts.push(names.length === 1 ? names[0] : names.join('\0'));
    this.counts.push(names.length);
    this.mods.push(mod);
  }

  /**
   * The owned symbols by the addon (`prefix`: -P's byte, -1 for none; `modules`: every module, by idx),
   * or null where a name has a char above 0xff (which has no byte): then `replay` gives each export.
   */
  owned(prefix: number, modules: Mod[]): OwnedSymbols | null {
    const joined = this.parts.join('\0');
    const modnames = joinedBytes(modules.map((m) => m.modname));
    if (aboveLatin1(joined) || modnames.bytes === null) return null;
    const owners = new Uint32Array(this.mods.length);
    for (let k = 0; k < this.mods.length; k++) owners[k] = this.mods[k].idx;
    const [names, nameLengths, priorities, values, valueLengths] = nativeFunction('ownedSymbols')!(
      Buffer.from(joined, 'latin1'),
      Uint32Array.from(this.counts),
      owners,
      prefix,
      2048,
      modnames.bytes,
      modnames.lengths,
    );
    return OwnedSymbols.ofBytes({ bytes: names, lengths: nameLengths }, { bytes: values, lengths: valueLengths }, priorities);
  }

  /** each export gathered, with its module, in the order gathered */
  replay(add: (name: string, mod: Mod) => void): void {
    for (let k = 0; k < this.parts.length; k++) {
      const names = this.counts[k] === 1 ? [this.parts[k]] : this.parts[k].split('\0');
      for (let j = 0; j < names.length; j++) add(names[j], this.mods[k]);
    }
  }
}
