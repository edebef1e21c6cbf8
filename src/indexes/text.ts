// Fallback when a binary index is missing: the same lookups over the text files depmod writes next to
// it (modules.dep, modules.alias, modules.symbols, modules.builtin, modules.builtin.modinfo). kmod 34.2
// itself finds nothing without the .bin files; kmodts reads the text instead (docs/compat.md).
// named imports: `import * as` makes tsc copy every export of node:fs at load (start-up)
import { fnmatch } from '../names/fnmatch';
import { aliasNormalize, modnameFromPath } from '../names/modname';
import { addValue, type IndexValue, type ModuleIndex } from './binary';
import type { IndexName } from './format';
import { readBinaryString } from '../file/read-text';

export class TextIndex implements ModuleIndex {
  private readonly keys = new Map<string, IndexValue[]>();
  private sortedKeys?: string[];

  constructor(readonly file: string) {}

  add(key: string, value: string, priority: number): void {
    let list = this.keys.get(key);
    if (list === undefined) {
      list = [];
      this.keys.set(key, list);
    }
    addValue(list, { value, priority });
    this.sortedKeys = undefined;
  }

  private sorted(): string[] {
    if (this.sortedKeys === undefined) this.sortedKeys = [...this.keys.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    return this.sortedKeys;
  }

  search(key: string): string | undefined {
    return this.keys.get(key)?.[0]?.value;
  }

  searchWild(key: string): IndexValue[] {
    const out: IndexValue[] = [];
    for (const k of this.sorted()) {
      if (k === key || fnmatch(k, key)) for (const v of this.keys.get(k)!) addValue(out, v);
    }
    return out;
  }

  dump(prefix: string): string {
    let s = '';
    for (const k of this.sorted()) for (const v of this.keys.get(k)!) s += `${prefix}${k} ${v.value}\n`;
    return s;
  }
}

function readLines(file: string): string[] | undefined {
  try {
    return readBinaryString(file).split('\n');
  } catch {
    return undefined;
  }
}

/** module name -> line index in modules.dep (depmod's priority for alias and symbol entries) */
function moduleOrder(dirname: string): Map<string, number> {
  const order = new Map<string, number>();
  const lines = readLines(`${dirname}/modules.dep`) ?? [];
  lines.forEach((line, i) => {
    const colon = line.indexOf(':');
    if (colon <= 0) return;
    const name = modnameFromPath(line.slice(0, colon));
    if (name !== null && !order.has(name)) order.set(name, i);
  });
  return order;
}

/** The text counterpart of index `name` in `dirname`, or undefined when that file is missing too. */
export function openTextIndex(dirname: string, name: IndexName): TextIndex | undefined {
  switch (name) {
    case 'dep': {
      const file = `${dirname}/modules.dep`;
      const lines = readLines(file);
      if (lines === undefined) return undefined;
      const idx = new TextIndex(file);
      lines.forEach((line, i) => {
        const colon = line.indexOf(':');
        if (colon <= 0) return;
        const mod = modnameFromPath(line.slice(0, colon));
        if (mod !== null) idx.add(mod, line, i);
      });
      return idx;
    }
    case 'alias':
    case 'symbols': {
      const file = `${dirname}/${name === 'alias' ? 'modules.alias' : 'modules.symbols'}`;
      const lines = readLines(file);
      if (lines === undefined) return undefined;
      const order = moduleOrder(dirname);
      const idx = new TextIndex(file);
      lines.forEach((line, i) => {
        const f = line.split(' ');
        if (f[0] !== 'alias' || f.length < 3) return;
        const key = aliasNormalize(f[1]);
        if (key === null) return;
        idx.add(key, f[2], order.get(f[2]) ?? i);
      });
      return idx;
    }
    case 'builtin': {
      const file = `${dirname}/modules.builtin`;
      const lines = readLines(file);
      if (lines === undefined) return undefined;
      const idx = new TextIndex(file);
      for (const line of lines) {
        if (line === '') continue;
        const mod = modnameFromPath(line);
        if (mod !== null) idx.add(mod, '', 0);
      }
      return idx;
    }
    case 'builtinAlias': {
      const file = `${dirname}/modules.builtin.modinfo`;
      let text: string;
      try {
        text = readBinaryString(file);
      } catch {
        return undefined;
      }
      const idx = new TextIndex(file);
      for (const s of text.split('\0')) {
        const dot = s.indexOf('.');
        if (dot <= 0 || !s.startsWith('alias=', dot + 1)) continue;
        const value = s.slice(dot + 7);
        if (value === '') continue;
        const key = aliasNormalize(value);
        if (key !== null) idx.add(key, s.slice(0, dot), 0);
      }
      return idx;
    }
  }
}
