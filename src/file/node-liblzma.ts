// Where node-liblzma (an optional dependency) keeps its native binaries: its prebuilt one (liblzma 5.8
// linked in) and, where npm compiled it, its own build. One place for the three users: decompress.ts
// (its binding as a decoder), depmod's fast-xz.ts, and the addon's decoder (native-decode.ts), which
// takes liblzma's functions from the prebuilt file.
import * as path from 'node:path';

/** The binaries node-liblzma may have; undefined where it is not installed. */
export function nodeLiblzmaBinaries(): { prebuilt: string; built: string } | undefined {
  const root = packageRoot();
  if (root === undefined) return undefined;
  return {
    prebuilt: path.join(root, 'prebuilds', `${process.platform}-${process.arch}`, 'node-liblzma.node'),
    built: path.join(root, 'build', 'Release', 'node_lzma.node'),
  };
}

/**
 * node-liblzma's directory: the first of require's lookup directories that has it. require.resolve()
 * would say the same, but it reads the package's exports through Node's ESM resolver, ~4 ms of every
 * depmod and modinfo start here; only something unusual there (no package.json) is left to it.
 */
function packageRoot(): string | undefined {
  const fs = require('node:fs') as typeof import('node:fs');
  for (const dir of require.resolve.paths('node-liblzma') ?? []) {
    const root = path.join(dir, 'node-liblzma');
    if (!fs.existsSync(root)) continue;
    if (fs.existsSync(path.join(root, 'package.json'))) return root;
    break;
  }
  try {
    return path.dirname(path.dirname(require.resolve('node-liblzma')));
  } catch {
    return undefined;
  }
}
