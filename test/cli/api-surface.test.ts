import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import * as api from '../../src/index';

// The CLI front ends use nothing the library's public API does not offer: every name they import from
// the library (statically, or through a lazy require) must be exported by src/index.ts.
const cliDir = path.resolve(__dirname, '../../src/cli');

function libraryImports(): { file: string; name: string; from: string }[] {
  const found: { file: string; name: string; from: string }[] = [];
  for (const file of fs.readdirSync(cliDir).filter((f) => f.endsWith('.ts'))) {
    const text = fs.readFileSync(path.join(cliDir, file), 'utf8');
    for (const m of text.matchAll(/import\s+(type\s+)?\{([^}]*)\}\s+from\s+'\.\.\/([^']+)'/g)) {
      if (m[1]) continue; // types only
      for (const raw of m[2].split(',')) {
        const name = raw.trim().split(/\s+as\s+/)[0].trim();
        if (name !== '' && !name.startsWith('type ')) found.push({ file, name, from: m[3] });
      }
    }
    // const { a, b } = require('../x') as ...
    for (const m of text.matchAll(/const\s+\{([^}]*)\}\s*=\s*require\('\.\.\/([^']+)'\)/g)) {
      for (const raw of m[1].split(',')) {
        const name = raw.trim().split(':')[0].trim();
        if (name !== '') found.push({ file, name, from: m[2] });
      }
    }
  }
  return found;
}

describe('public API surface', () => {
  it('exports every library name the CLI uses', () => {
    const imports = libraryImports();
    expect(imports.length).toBeGreaterThan(30);
    const missing = imports.filter((i) => !(i.name in api)).map((i) => `${i.file}: ${i.name} from ../${i.from}`);
    expect(missing).toEqual([]);
  });
});
