// Which of many paths are regular files, and their sizes: modinfo's is_module_filename for each of its
// arguments (a whole tree's modules in one call, as scripts give them). The addon stat()s them all in
// one call (native/stat_keys.c regularFileSizes); without it, fs.statSync each, which builds a Stats
// object (with its dates) per file.
import * as fs from './binary-os';
import { nativeFunction, type RegularFileSizesFn } from '../native-addon';

let native: RegularFileSizesFn | null | undefined;

/** Whether the addon answers (false: fs.statSync; tests compare the two). Returns whether it does. */
export function useNativeRegularFileSizes(on: boolean): boolean {
  native = on ? loadRegularFileSizes() : null;
  return native !== null;
}

function loadRegularFileSizes(): RegularFileSizesFn | null {
  return nativeFunction('regularFileSizes');
}

/** one path by fs.statSync (links followed): its size when a regular file, else undefined */
function regularFileSize(path: string): number | undefined {
  try {
    const st = fs.statSync(path);
    return st.isFile() ? st.size : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Per path (binary strings, see binary-os.ts), its size when stat() (links followed) finds a regular
 * file, else undefined: missing, unreadable on the way, a directory, a device, ...
 */
export function regularFileSizes(paths: readonly string[]): (number | undefined)[] {
  if (native === undefined) native = loadRegularFileSizes();
  if (native === null) return paths.map(regularFileSize);
  const sizes = native(paths.map(fs.binaryString));
  return Array.from(sizes, (size) => (size >= 0 ? size : undefined));
}
