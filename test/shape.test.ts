// The code's shape limits (the developers' brief): no source file over 600 lines, no function over 150.
// The xxhash kernel stays one unrolled function, on purpose (src/file/xxhash.ts says why).
import * as fs from 'node:fs';
import * as path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { repoRoot } from './support/reference';

const maxFileLines = 600;
const maxFunctionLines = 150;
const longFunctionsAllowed = new Set(['src/file/xxhash.ts xxh64Low32']);

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return /\.(ts|c|h)$/.test(e.name) ? [p] : [];
  });
}

const files = [...sourceFiles(path.join(repoRoot, 'src')), ...sourceFiles(path.join(repoRoot, 'native'))];

describe('code shape', () => {
  it('finds the sources it measures', () => {
    expect(files.length).toBeGreaterThan(50);
  });

  it(`has no source file over ${maxFileLines} lines`, () => {
    const long = files
      .map((f) => [path.relative(repoRoot, f), fs.readFileSync(f, 'utf8').split('\n').length - 1] as const)
      .filter(([, n]) => n > maxFileLines);
    expect(long).toEqual([]);
  });

  it(`has no TypeScript function over ${maxFunctionLines} lines`, () => {
    const long: string[] = [];
    for (const f of files.filter((x) => x.endsWith('.ts'))) {
      const rel = path.relative(repoRoot, f);
      const src = ts.createSourceFile(f, fs.readFileSync(f, 'utf8'), ts.ScriptTarget.Latest, true);
      const visit = (node: ts.Node): void => {
        if (ts.isFunctionLike(node) && 'body' in node && node.body) {
          const first = src.getLineAndCharacterOfPosition(node.getStart()).line;
          const last = src.getLineAndCharacterOfPosition(node.end).line;
          const name = node.name ? node.name.getText(src) : `(anonymous at line ${first + 1})`;
          if (last - first + 1 > maxFunctionLines && !longFunctionsAllowed.has(`${rel} ${name}`)) long.push(`${rel}:${first + 1} ${name} (${last - first + 1} lines)`);
        }
        ts.forEachChild(node, visit);
      };
      visit(src);
    }
    expect(long).toEqual([]);
  });
});
