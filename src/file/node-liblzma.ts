// Where node-liblzma (an optional dependency) keeps its native binaries: its prebuilt one (liblzma 5.8
// linked in) and, where npm compiled it, its own build. One place for the three users: decompress.ts
// (its binding as a decoder), depmod's fast-xz.ts, and the addon's decoder (native-decode.ts), which
// takes liblzma's functions from the prebuilt file.
import * as path from 'node:path';

/** The binaries node-liblzma may have; undefined where it is not installed. */
export function nodeLiblzmaBinaries(): { prebuilt: string; built: string } | undefined {
  let root: string;
  try {
    root = path.dirname(path.dirname(require.resolve('node-liblzma')));
  } catch {
    return undefined;
  }
  return {
    prebuilt: path.join(root, 'prebuilds', `${process.platform}-${process.arch}`, 'node-liblzma.node'),
    built: path.join(root, 'build', 'Release', 'node_lzma.node'),
  };
}
