// The code's shape limits (the developers' brief): no source file over 600 lines, no function over 150.
import * as fs from 'node:fs';
import * as path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { repoRoot } from './support/reference';

const maxFileLines = 600;
const maxFunctionLines = 150;

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
          if (last - first + 1 > maxFunctionLines) long.push(`${rel}:${first + 1} ${name} (${last - first + 1} lines)`);
        }
        ts.forEachChild(node, visit);
      };
      visit(src);
    }
    expect(long).toEqual([]);
  });
});

/**
 * The layers of src/ (docs/architecture.md), lowest first: what each folder may import from src/.
 * Basics (src/'s root files) sit under everything; resolution and loading use each other (a probe
 * inserts, an insert resolves its module), as libkmod's module and context code do.
 */
const layerMayImport: Record<string, string[]> = {
  names: [],
  file: ['names'],
  indexes: ['names', 'file'],
  resolution: ['names', 'file', 'indexes', 'loading'],
  loading: ['names', 'file', 'indexes', 'resolution'],
  depmod: ['names', 'file', 'indexes', 'resolution'],
  backends: ['names', 'file', 'indexes', 'resolution', 'loading'],
};

/** imports across layers that are there on purpose, with the reason */
const allowedAcross = new Set([
  // a Context made without a backend talks to the running kernel, as kmod_new's does (loaded on first use)
  'src/resolution/context.ts -> src/backends/native',
]);

describe('layers', () => {
  it('each folder of src/ imports only from the layers under it, and only cli imports cli', () => {
    const wrong: string[] = [];
    for (const f of files.filter((x) => x.endsWith('.ts'))) {
      const rel = path.relative(path.join(repoRoot, 'src'), f);
      const layer = rel.includes('/') ? rel.slice(0, rel.indexOf('/')) : '';
      const text = fs.readFileSync(f, 'utf8');
      for (const m of text.matchAll(/(?:from|require\()\s*'(\.{1,2}\/[^']+)'/g)) {
        const target = path.relative(path.join(repoRoot, 'src'), path.resolve(path.dirname(f), m[1]));
        const to = target.includes('/') ? target.slice(0, target.indexOf('/')) : '';
        // the root's basics, the same folder, and files outside src/ (package.json)
        if (to === '' || to === '..' || to === layer || layer === 'cli' || layer === '') continue;
        const edge = `src/${rel} -> src/${target}`;
        if ((to === 'cli' || !(layerMayImport[layer] ?? []).includes(to)) && !allowedAcross.has(edge)) wrong.push(edge);
      }
    }
    expect(wrong).toEqual([]);
  });
});

describe('the CLI and the library', () => {
  it('src/cli/ uses nothing of src/ that src/index.ts does not export', () => {
    const index = path.join(repoRoot, 'src/index.ts');
    const program = ts.createProgram([index], { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true, noEmit: true });
    const checker = program.getTypeChecker();
    const exported = new Set(checker.getExportsOfModule(checker.getSymbolAtLocation(program.getSourceFile(index)!)!).map((s) => s.name));
    expect(exported.size).toBeGreaterThan(100);
    const cliDir = path.join(repoRoot, 'src/cli');
    const unexported: string[] = [];
    for (const f of files.filter((x) => x.startsWith(cliDir + path.sep) && x.endsWith('.ts'))) {
      const text = fs.readFileSync(f, 'utf8');
      const fromLibrary = (spec: string): boolean => {
        const target = path.resolve(path.dirname(f), spec);
        return spec.startsWith('.') && target.startsWith(path.join(repoRoot, 'src') + path.sep) && !target.startsWith(cliDir + path.sep);
      };
      // import { a, type B } from '../x'; const { a } = require('../x')
      const uses = [
        ...[...text.matchAll(/import (?:type )?\{([^}]*)\} from '([^']+)'/g)].map((m) => [m[1], m[2]] as const),
        ...[...text.matchAll(/const \{([^}]*)\} = require\('([^']+)'\)/g)].map((m) => [m[1], m[2]] as const),
      ];
      for (const [names, spec] of uses) {
        if (!fromLibrary(spec)) continue;
        for (const n of names.split(',')) {
          const name = n.trim().replace(/^type /, '').split(/ as |:/)[0].trim();
          if (name !== '' && !exported.has(name)) unexported.push(`${path.relative(repoRoot, f)}: ${name} from ${spec}`);
        }
      }
    }
    expect(unexported).toEqual([]);
  });
});
