// The running kernel: state from /proc and /sys (relocatable for tests), system calls through the
// native addon (native/, loaded only when a module is really loaded or removed).
import { readStrLong } from '../file/read-str-long';
import { fgetsPieces } from '../file/read-text';
import * as fs from '../file/binary-os';
import { binaryString } from '../file/binary-os';
import * as path from 'node:path';
import type { Backend, InitState, ProcModule } from '../loading/backend';
import { KmodError, fromSystemError } from '../errors';
import { ENOSYS } from '../errno';
import { readBinaryString, readRegularBinaryString } from '../file/read-text';
import { loadNativeAddon, nativeAddonPath, type NativeAddon } from '../native-addon';

export interface NativeBackendOptions {
  sysDir?: string;
  procDir?: string;
}

function readText(file: string): string | undefined {
  try {
    // a file that is not there (a module not loaded: the usual case) without the two exceptions of
    // a failed read (~10 us each, for every module of a modprobe list)
    const st = fs.statSync(file, { throwIfNoEntry: false });
    if (st === undefined) return undefined;
    return st.isFile() ? readRegularBinaryString(file) : readBinaryString(file);
  } catch {
    return undefined;
  }
}

/** Directory entries in the order the kernel returns them (readdirSync sorts; kmod does not). */
export function rawDirEntries(dir: string): string[] {
  let d: fs.Dir;
  try {
    d = fs.opendirSync(dir);
  } catch {
    return [];
  }
  const names: string[] = [];
  try {
    for (let e = d.readSync(); e !== null; e = d.readSync()) names.push(e.name);
  } finally {
    d.closeSync();
  }
  return names;
}

/**
 * The names kmod_module_new_from_loaded() takes from /proc/modules text. It reads with fgets into a
 * 4096-byte buffer and takes the first token between spaces and tabs of what strlen() sees (up to a
 * NUL; a newline ending the token stays in it), null when there is none; then it skips the rest of a
 * line longer than the buffer, and, when a NUL hid the newline, the lines after it up to one whose
 * visible part ends with a newline.
 */
export function loadedModuleNames(text: string): (string | null)[] {
  const out: (string | null)[] = [];
  const pieces = fgetsPieces(text);
  for (let k = 0; k < pieces.length; k++) {
    const m = /^[ \t]*([^ \t]+)/.exec(pieces[k]);
    out.push(m ? m[1] : null);
    while (pieces[k].length > 0 && !pieces[k].endsWith('\n') && k + 1 < pieces.length) k++;
  }
  return out;
}

/** Parses /proc/modules text: "name size refcnt users state address [(taints)]" per line. */
export function parseProcModules(text: string): ProcModule[] {
  const out: ProcModule[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const f = line.split(' ');
    if (f.length < 6) continue;
    const users = f[3] === '-' ? [] : f[3].split(',').filter((u) => u !== '');
    const state = f[4] === 'Loading' || f[4] === 'Unloading' ? f[4] : 'Live';
    out.push({
      name: f[0],
      size: Number.parseInt(f[1], 10),
      refcnt: Number.parseInt(f[2], 10),
      users,
      state,
      address: f[5],
      taints: f[6] !== undefined ? f[6].replace(/^\(|\)$/g, '') : '',
    });
  }
  return out;
}

/** The compiled helper is not there (no compiler at install time): ENOSYS, with a message saying so. */
export class NativeHelperMissing extends KmodError {
  constructor(file: string, cause: unknown) {
    super(ENOSYS, `the native loader ${file} is not built, so modules cannot be loaded or removed; rebuild it with a C compiler: npm rebuild kmodts`, { file, cause });
    this.name = 'NativeHelperMissing';
  }
}

/** The compiled helper, loaded on first use. */
function nativeAddon(): NativeAddon {
  const addon = loadNativeAddon();
  if (addon instanceof Error) throw new NativeHelperMissing(nativeAddonPath(), addon);
  return addon;
}

export class NativeBackend implements Backend {
  readonly kind = 'native' as const;
  readonly sysDir: string;
  readonly procDir: string;

  constructor(opts: NativeBackendOptions = {}) {
    this.sysDir = opts.sysDir ?? '/sys';
    this.procDir = opts.procDir ?? '/proc';
  }

  private moduleDir(name: string): string {
    return path.join(this.sysDir, 'module', name);
  }

  finitModule(file: string, params: string, flags: number): void {
    const a = nativeAddon();
    let fd: number;
    try {
      fd = fs.openSync(file, 'r');
    } catch (err) {
      throw fromSystemError(err, file);
    }
    try {
      const r = a.finitModule(fd, binaryString(params), flags);
      if (r < 0) throw new KmodError(-r, undefined, { file });
    } finally {
      fs.closeSync(fd);
    }
  }

  initModule(image: Uint8Array, params: string): void {
    const r = nativeAddon().initModule(image, binaryString(params));
    if (r < 0) throw new KmodError(-r);
  }

  deleteModule(name: string, flags: number): void {
    const r = nativeAddon().deleteModule(binaryString(name), flags);
    if (r < 0) throw new KmodError(-r);
  }

  initstate(name: string): InitState | undefined {
    // A module that is not loaded, the usual answer (modprobe asks several times for each module of
    // its list): no /sys/module/<name>, found without the three exceptions the reads below would make
    // (~10 us each; `modprobe -n -a` of 5,000 modules spent more than a second on them).
    let dir: fs.Stats | undefined;
    try {
      dir = fs.statSync(this.moduleDir(name), { throwIfNoEntry: false });
    } catch {
      // (another error: no state either, as the reads below would end)
    }
    if (dir === undefined) return undefined;
    const s = readText(path.join(this.moduleDir(name), 'initstate'));
    if (s !== undefined) {
      const v = s.trim();
      if (v === 'live' || v === 'coming' || v === 'going') return v;
      return undefined;
    }
    return dir.isDirectory() ? 'builtin' : undefined;
  }

  refcnt(name: string): number | undefined {
    const s = readText(path.join(this.moduleDir(name), 'refcnt'));
    if (s === undefined) return undefined;
    // kmod_module_get_refcnt: read_str_long, returned as an int
    const v = readStrLong(s);
    return v === undefined ? undefined : Number(BigInt.asIntN(32, v));
  }

  holders(name: string): string[] | undefined {
    const dir = path.join(this.moduleDir(name), 'holders');
    try {
      if (!fs.statSync(dir).isDirectory()) return undefined;
    } catch {
      return undefined;
    }
    return rawDirEntries(dir);
  }

  procModules(): ProcModule[] | undefined {
    const text = readText(path.join(this.procDir, 'modules'));
    return text === undefined ? undefined : parseProcModules(text);
  }

  loadedNames(): (string | null)[] | undefined {
    const text = readText(path.join(this.procDir, 'modules'));
    return text === undefined ? undefined : loadedModuleNames(text);
  }

  compression(): string | undefined {
    return readText(path.join(this.sysDir, 'module', 'compression'))?.trim();
  }

  readModuleAttr(name: string, attr: string): string | undefined {
    return readText(path.join(this.moduleDir(name), attr));
  }
}
