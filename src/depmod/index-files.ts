// The eleven files depmod writes, in kmod 34.2's order and bytes: modules.dep(.bin) from the dependency
// graph, modules.symbols(.bin) from the symbol table, the modinfo files (alias-files.ts) and the two
// builtin indexes. With -n the text files go to the output function instead. Each file is written to a
// temporary name and renamed, one after the other, as kmod does.
import * as fs from '../file/binary-os';
import { PATH_MAX } from '../file/binary-os';
import { mkdirP } from '../file/mkdir-p';
import { LOG_ERR, LOG_WARNING } from '../log';
import { EINVAL, EISDIR, ENOENT, ENOSPC, errnoOf, strerror } from '../errno';
import { IndexBatch, IndexBuilder, IndexCharacterError, type IndexWriter } from '../indexes/writer';
import { nativeFunction, type DepLinesFn } from '../native-addon';
import { joinedBytes, modnameBytes } from './joined-bytes';
import { aliasNormalize, modnameFromPath } from '../names/modname';
import { buildAliasFiles, type AliasFileName, type AliasSource, type BuiltFile } from './alias-files';
import { DepmodFailed, DepmodFatal, nodePathError, type Mod, type RunContext } from './run-context';
import { fgetsPieces, readFileBytes } from '../file/read-text';
import type { SymbolTable } from './symbols';
import type { OwnedSymbols } from './owned-symbols';
import type { DependencyGraph } from './dep-graph';


type FileData = string | Uint8Array | null;

/** modules.symbols' entries as modules.symbols.bin takes them: keys one after another, values as bytes */
interface SymbolPairs {
  keys: string | Uint8Array;
  keyLengths: Uint32Array;
  values: Uint8Array;
  valueLengths: Uint32Array;
}
/** a file's contents, or the promise of an index built on the thread pool */
type MadeFile = FileData | Promise<Uint8Array>;

export class IndexFiles {
  /** modules.builtin.bin and modules.builtin.alias.bin, made during the scan (madeNow) */
  private builtinFiles: (() => MadeFile)[] | undefined;
  private builtAliasFiles: Record<AliasFileName, BuiltFile> | undefined;
  /** modules.symbols.bin, started by startIndexes (madeNow) */
  private symbolsBinStarted: (() => MadeFile) | undefined;

  constructor(private readonly ctx: RunContext, private readonly modules: Mod[], private readonly symbols: SymbolTable, private readonly graph: DependencyGraph) {}

  private log(priority: number, message: string): void {
    this.ctx.log(priority, message);
  }

  /**
   * The builtin indexes need nothing from the modules: made while the scan threads decompress (which
   * also readies the index writer's code for the files made after the scan).
   */
  makeBuiltinFilesNow(): void {
    this.builtinFiles = [this.madeNow(() => this.builtinBin()), this.madeNow(() => this.builtinAliasBin())];
  }

  private depLinesMade: ReturnType<DepLinesFn> | null | undefined;

  /**
   * modules.dep's text, its lines without newlines and their lengths, made by the addon
   * (native/dep_lines.c); null without it (or for a name with a char above 0xff, which has no byte)
   */
  private nativeDepLines(): ReturnType<DepLinesFn> | null {
    if (this.depLinesMade !== undefined) return this.depLinesMade;
    const depLines = nativeFunction('depLines');
    const mods = this.modules;
    if (depLines === null) return (this.depLinesMade = null);
    const names = joinedBytes(this.depNames());
    if (names.bytes === null) return (this.depLinesMade = null);
    const sortIdx = new Int32Array(mods.length);
    const ends = new Uint32Array(mods.length);
    let total = 0;
    for (let k = 0; k < mods.length; k++) {
      sortIdx[k] = mods[k].depSortIdx;
      total += mods[k].deps.length;
      ends[k] = total;
    }
    const deps = new Int32Array(total);
    for (let k = 0, at = 0; k < mods.length; k++) {
      const d = mods[k].deps;
      for (let j = 0; j < d.length; j++) deps[at++] = d[j].idx;
    }
    return (this.depLinesMade = depLines(deps, ends, sortIdx, names.bytes, names.lengths));
  }

  /** what modules.dep calls each module (by idx) */
  private depNames(): string[] {
    return this.modules.map((mod) => mod.relpath ?? mod.path);
  }

  private depLines(): string[] {
    const names = this.depNames();
    return this.modules.map((mod, k) => {
      if (mod.deps.length === 0) return `${names[k]}:`;
      // one join per line: a flat string at once instead of a chain of concatenations
      const deps = this.graph.allDeps(mod);
      const parts: string[] = new Array(deps.length + 1);
      parts[0] = `${names[k]}:`;
      for (let j = 0; j < deps.length; j++) parts[j + 1] = names[deps[j].idx];
      return parts.join(' ');
    });
  }

  private insert(idx: IndexWriter, key: string, value: string, prio: number): boolean {
    try {
      return idx.insert(key, value, prio);
    } catch (err) {
      if (err instanceof IndexCharacterError) throw new DepmodFatal(err.message);
      throw err;
    }
  }

  /** IndexBatch.insertRun, whose bad character is depmod's FATAL */
  private insertRun(idx: IndexBatch, keys: string, lengths: number[], values: string[], priorities: number[]): void {
    this.indexRun(() => idx.insertRun(keys, lengths, values, priorities));
  }

  /** an IndexBatch run inserted, its bad character made depmod's FATAL */
  private indexRun(insert: () => void): void {
    try {
      insert();
    } catch (err) {
      if (err instanceof IndexCharacterError) throw new DepmodFatal(err.message);
      throw err;
    }
  }

  /** A file from buildAliasFiles at its turn: its messages, then its FATAL or its contents. */
  private aliasFile(files: Record<AliasFileName, BuiltFile>, name: AliasFileName): MadeFile {
    const f = files[name];
    for (const [priority, message] of f.logs) this.log(priority, message);
    if (f.fatal !== undefined) throw new DepmodFatal(f.fatal);
    return f.data;
  }

  /** The modinfo-only files (alias-files.ts), in module order; modules.alias.bin built on the thread pool where it can be. */
  private aliasFiles(): Record<AliasFileName, BuiltFile> {
    if (this.builtAliasFiles !== undefined) return this.builtAliasFiles;
    const sources: AliasSource[] = this.modules.map((m) => ({ modname: m.modname, aliases: m.aliases, softdeps: m.softdeps, weakdeps: m.weakdeps, pieces: m.aliasPieces }));
    const files = buildAliasFiles(sources, { dryRun: this.ctx.opts.dryRun === true, warnDuplicates: this.ctx.opts.warnDuplicates === true, inBackground: true, moduleNames: () => modnameBytes(this.modules) });
    const bin = files['modules.alias.bin'].data;
    // its failure is reported at its turn (an earlier file's failure may end the run before it)
    if (bin instanceof Promise) bin.catch(() => {});
    return (this.builtAliasFiles = files);
  }

  private ownedSymbols(): OwnedSymbols {
    return this.symbols.owned(this.modules);
  }

  /**
   * Starts the indexes that need nothing but the scans (modules.alias.bin, modules.symbols.bin) on
   * libuv's thread pool, so that they are built while this thread resolves the dependencies and makes
   * the text files. Their messages and FATALs still come at their turn. Not with -n (no .bin files) or
   * -w (its duplicates are reported as each entry is inserted).
   */
  startIndexes(): void {
    const o = this.ctx.opts;
    if (o.dryRun === true || o.warnDuplicates === true) return;
    this.aliasFiles();
    this.symbolsBinStarted = this.madeNow(() => this.symbolsBin());
  }

  /** modules.symbols.bin through IndexBatch (no -w), on the thread pool where it can be */
  private symbolsBin(): Promise<Uint8Array> {
    const { keys, keyLengths, values, valueLengths } = this.symbolPairs();
    const idx = new IndexBatch();
    this.indexRun(() => idx.insertRunBytes(keys, keyLengths, values, valueLengths, this.ownedSymbols().priorities));
    return this.inBackground(idx);
  }

  private pairs: SymbolPairs | undefined;

  /**
   * modules.symbols' keys ("symbol:<name>") and values (module names), as modules.symbols.bin takes
   * them: the keys as bytes, made by the addon, where it can
   */
  private symbolPairs(): SymbolPairs {
    if (this.pairs !== undefined) return this.pairs;
    const owned = this.ownedSymbols();
    const n = owned.count;
    const names = owned.nameBytes;
    const values = owned.modnameBytes;
    const keyLengths = new Uint32Array(n);
    for (let k = 0; k < n; k++) keyLengths[k] = names.lengths[k] + 7;
    const pairLines = nativeFunction('pairLines');
    if (pairLines !== null && names.bytes !== null && values.bytes !== null) {
      const keys = pairLines(names.bytes, names.lengths, new Uint8Array(0), new Uint32Array(n), 'symbol:', '', '');
      return (this.pairs = { keys, keyLengths, values: values.bytes, valueLengths: values.lengths });
    }
    const keys = n === 0 ? '' : `symbol:${owned.names.join('symbol:')}`;
    return (this.pairs = { keys, keyLengths, values: Buffer.from(owned.modnames.join(''), 'latin1'), valueLengths: values.lengths });
  }

  /** modules.symbols: its lines made by the addon from modules.symbols.bin's pairs where it can */
  private symbolsText(): string | Uint8Array {
    const header = '# Aliases for symbols, used by symbol_request().\n';
    const owned = this.ownedSymbols();
    if (owned.count === 0) return header;
    const pairLines = nativeFunction('pairLines');
    const p = this.symbolPairs();
    if (pairLines !== null && typeof p.keys !== 'string') {
      const lines = pairLines(p.keys, p.keyLengths, p.values, p.valueLengths, 'alias ', ' ', '\n');
      return Buffer.concat([Buffer.from(header, 'latin1'), lines]);
    }
    const { names, modnames } = owned;
    // one join for all lines rather than a string for each
    return `${header}alias symbol:${names.map((name, k) => `${name} ${modnames[k]}`).join('\nalias symbol:')}\n`;
  }

  /** the files in kmod's order, each made when its turn comes */
  private files(): [string, () => MadeFile][] {
    const dry = this.ctx.opts.dryRun === true;
    const warnDups = this.ctx.opts.warnDuplicates === true;
    const mods = this.modules;
    let depLines: string[] | undefined;
    const lines = (): string[] => (depLines ??= this.depLines());
    const aliasFile = (name: AliasFileName): MadeFile => this.aliasFile(this.aliasFiles(), name);
    // modules.dep.bin is started before modules.dep is made, so that it is built meanwhile
    let depBin: (() => MadeFile) | undefined;
    const startDepBin = (): void => {
      if (dry || warnDups || depBin !== undefined) return;
      depBin = this.madeNow(() => {
        const idx = new IndexBatch();
        const native = this.nativeDepLines();
        // else the lines as bytes with one join and one conversion (insertRun would join them twice)
        const l = native === null ? lines() : [];
        const values = native !== null ? native[1] : Buffer.from(l.join(''), 'latin1');
        const valueLengths = native !== null ? native[2] : l.map((line) => line.length);
        // the keys: the modules' names as bytes (made once per run), or as a string where one has no byte
        const names = modnameBytes(mods);
        this.indexRun(() => idx.insertRunBytes(names.bytes ?? mods.map((m) => m.modname).join(''), names.lengths, values, valueLengths, mods.map((m) => m.idx)));
        return this.inBackground(idx);
      });
    };
    return [
      [
        'modules.dep',
        () => {
          startDepBin();
          const native = this.nativeDepLines();
          if (native !== null) return native[0];
          // one join: no string made for each line with its newline
          return mods.length === 0 ? '' : `${lines().join('\n')}\n`;
        },
      ],
      [
        'modules.dep.bin',
        () => {
          if (dry) return null;
          if (!warnDups) {
            startDepBin();
            return depBin!();
          }
          const l = lines();
          const idx = new IndexBuilder();
          for (let k = 0; k < mods.length; k++) {
            if (this.insert(idx, mods[k].modname, l[k], mods[k].idx)) this.log(LOG_WARNING, `duplicate module deps:\n${l[k]}\n`);
          }
          return idx.serialize();
        },
      ],
      ['modules.alias', () => aliasFile('modules.alias')],
      ['modules.alias.bin', () => aliasFile('modules.alias.bin')],
      ['modules.softdep', () => aliasFile('modules.softdep')],
      ['modules.weakdep', () => aliasFile('modules.weakdep')],
      [
        'modules.symbols',
        () => this.symbolsText(),
      ],
      [
        'modules.symbols.bin',
        () => {
          if (dry) return null;
          if (!warnDups) return (this.symbolsBinStarted ?? (() => this.symbolsBin()))();
          const idx = new IndexBuilder();
          const { names, modnames, priorities } = this.ownedSymbols();
          for (let k = 0; k < names.length; k++) {
            const key = `symbol:${names[k]}`;
            if (this.insert(idx, key, modnames[k], priorities[k])) this.log(LOG_WARNING, `duplicate module syms:\n${key} ${modnames[k]}\n`);
          }
          return idx.serialize();
        },
      ],
      ['modules.builtin.bin', () => (dry ? null : (this.builtinFiles?.[0] ?? (() => this.builtinBin()))())],
      ['modules.builtin.alias.bin', () => (dry ? null : (this.builtinFiles?.[1] ?? (() => this.builtinAliasBin()))())],
      ['modules.devname', () => aliasFile('modules.devname')],
    ];
  }

  /** Makes the files and writes them (or, with -n, gives the text files to the output function). */
  async output(): Promise<void> {
    const files = this.files();
    if (this.ctx.opts.dryRun === true) {
      const out = this.ctx.opts.output ?? (() => {});
      for (const [, make] of files) {
        const data = await make();
        if (data !== null) out(typeof data === 'string' ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('latin1'));
      }
      return;
    }
    const dname = this.ctx.outdirname;
    const made = mkdirP(dname);
    if (made !== 0) throw new DepmodFatal(`could not create directory ${dname}: ${strerror(made)}\n`, made);
    const now = Date.now();
    const sec = Math.floor(now / 1000);
    const usec = (now % 1000) * 1000 + Math.floor(Math.random() * 1000);
    for (const [name, make] of files) {
      const made = make();
      // an index still being built on the thread pool is waited for only at its turn
      const data = made instanceof Promise ? await made : made;
      this.writeFile(dname, name, `${name}.${process.pid}.${usec}.${sec}`, data ?? '');
    }
  }

  /** one file, written to tmpName and renamed: kmod's messages when that fails */
  private writeFile(dname: string, name: string, tmpName: string, data: string | Uint8Array): void {
    const tmp = `${dname}/${tmpName}`;
    let fd: number;
    try {
      fd = fs.openSync(tmp, fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_WRONLY, 0o644);
    } catch (err) {
      this.log(LOG_ERR, `openat(${dname}, ${tmpName}, 301, 644): ${nodePathError(err)}\n`);
      return;
    }
    // a failed write (a full disk) is reported after the rename: kmod renames what it could write
    // into place all the same, then stops (its message always says ENOSPC)
    let failed = false;
    try {
      const buf = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
      let off = 0;
      while (off < buf.length) off += fs.writeSync(fd, buf, off, buf.length - off);
    } catch {
      failed = true;
    }
    try {
      fs.closeSync(fd);
    } catch {
      failed = true;
    }
    // renamed before the next file is made, as kmod does (a rename on the thread pool while the next
    // file was made cost more: each wait for it gave the event loop a turn, ~18 ms in all)
    try {
      fs.renameSync(tmp, `${dname}/${name}`);
    } catch (err) {
      throw new DepmodFatal(`renameat(${dname}, ${tmpName}, ${dname}, ${name}): ${nodePathError(err)}\n`, errnoOf(err));
    }
    if (failed) {
      this.log(LOG_ERR, `Could not create index '${name}'. Output is truncated: ${strerror(ENOSPC)}\n`);
      throw new DepmodFailed(`writing ${name} failed`, ENOSPC);
    }
  }


  /**
   * A file made ahead of its turn: its messages (and the FATAL that stopped it) are kept and given when
   * the returned function is called at the file's turn, which then returns its contents.
   */
  private madeNow<T extends MadeFile>(make: () => T): () => T | null {
    const logs: [number, string][] = [];
    const sink = this.ctx.sink;
    this.ctx.sink = (priority, message) => logs.push([priority, message]);
    let data: T | null = null;
    let failure: unknown;
    try {
      data = make();
    } catch (err) {
      failure = err;
    } finally {
      this.ctx.sink = sink;
    }
    return () => {
      for (const [priority, message] of logs) this.log(priority, message);
      if (failure !== undefined) throw failure;
      return data;
    };
  }

  /**
   * An input file (dfdopen): its bytes; null when it cannot be opened (warned about); 'unreadable' when
   * it opens but cannot be read (a directory: kmod's fgets/fgetc stop at once, with the stream's error set).
   */
  private openInput(name: string): Buffer | null | 'unreadable' {
    try {
      return readFileBytes(`${this.ctx.dirname}/${name}`);
    } catch (err) {
      if (errnoOf(err) === EISDIR) return 'unreadable';
      if (errnoOf(err) === ENOENT && !fs.existsSync(this.ctx.dirname)) {
        this.log(LOG_WARNING, `could not open directory ${this.ctx.dirname}: ${nodePathError(err)}\n`);
      } else this.log(LOG_WARNING, `could not open ${name} at ${this.ctx.dirname}: ${nodePathError(err)}\n`);
      return null;
    }
  }

  /** an index's trie built on the thread pool (where the addon is), its failure seen only at its file's turn */
  private inBackground(idx: IndexBatch): Promise<Uint8Array> {
    const made = idx.serializeInBackground();
    made.catch(() => {});
    return made;
  }

  private builtinBin(): Promise<Uint8Array> | string {
    const read = this.openInput('modules.builtin');
    if (read === null) return '';
    // unreadable: no lines, an empty index
    const data = read === 'unreadable' ? Buffer.alloc(0) : read;
    const idx = new IndexBatch();
    for (const line of fgetsPieces(data.toString('latin1', 0, data.length))) {
      if (!/^[A-Za-z]/.test(line)) {
        this.log(LOG_ERR, `Invalid modules.builtin line: ${line}\n`);
        continue;
      }
      const modname = modnameFromPath(line) ?? '';
      this.insert(idx, modname, '', 0);
    }
    return this.inBackground(idx);
  }

  private builtinAliasBin(): Promise<Uint8Array> | string {
    const data = this.openInput('modules.builtin.modinfo');
    if (data === null) return '';
    if (data === 'unreadable') {
      // the stream's error: kmod removes the temporary file, reports the index and stops there
      this.log(LOG_ERR, `Could not write index 'modules.builtin.alias.bin': ${strerror(EINVAL)}\n`);
      throw new DepmodFailed('reading modules.builtin.modinfo failed', EISDIR);
    }
    const idx = new IndexBatch();
    const n = data.length;
    let pos = 0;
    const EOF = -1;
    // flush_stream_to: read up to endchar/NUL/EOF (the stopping char is consumed) into a PATH_MAX
    // buffer; the length when stopped by endchar, else 0. A full buffer stops the read one character
    // later (that one consumed too), is reported, and its last character is dropped.
    const readTo = (endchar: number): string => {
      const start = pos;
      let len = 0;
      let c = EOF;
      for (;;) {
        c = pos < n ? data[pos++] : EOF;
        if (c === EOF || c === endchar || c === 0 || len >= PATH_MAX) break;
        len++;
      }
      if (len === PATH_MAX) {
        this.log(LOG_WARNING, `Could not flush stream: ${ENOSPC}. Partial content: ${data.toString('latin1', start, start + len)}\n`);
        len--;
      }
      return c === endchar ? data.toString('latin1', start, start + len) : '';
    };
    while (pos < n) {
      const modname = readTo(0x2e);
      if (modname.length === 0) continue;
      const key = readTo(0x3d);
      if (key !== 'alias') {
        while (pos < n && data[pos++] !== 0);
        continue;
      }
      const value = readTo(0);
      if (value.length === 0) continue;
      const alias = aliasNormalize(value);
      if (alias === null) {
        this.log(LOG_WARNING, `Unmatched bracket in ${value}\n`);
        continue;
      }
      this.insert(idx, alias, modname, 0);
    }
    return this.inBackground(idx);
  }
}
