// The library examples of README.md compile (tsc, strict, against the package's own type declarations, imported
// as 'kmodts') and print exactly the output shown after them.
// An example is a ```ts block after a `<!-- api-example -->` line; its output is the ```text block after the
// next `<!-- api-output -->` line. Examples run from the repository root.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cleanEnv, repoRoot } from './support/reference';

interface Example {
  code: string;
  output?: string;
  line: number;
}

export function apiExamples(markdown: string): Example[] {
  const lines = markdown.split('\n');
  const out: Example[] = [];
  const fenced = (from: number, lang: string): [string, number] => {
    let i = from;
    while (i < lines.length && lines[i].trim() === '') i++;
    if (lines[i] !== '```' + lang) throw new Error(`README.md:${i + 1}: expected a \`\`\`${lang} block`);
    const body: string[] = [];
    for (i++; i < lines.length && lines[i] !== '```'; i++) body.push(lines[i]);
    return [body.join('\n') + '\n', i + 1];
  };
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].trim() !== '<!-- api-example -->') continue;
    const [code, next] = fenced(i + 1, 'ts');
    const ex: Example = { code, line: i + 1 };
    let j = next;
    while (j < lines.length && lines[j].trim() === '') j++;
    if (lines[j]?.trim() === '<!-- api-output -->') [ex.output] = fenced(j + 1, 'text');
    out.push(ex);
  }
  return out;
}

describe('README library examples', () => {
  const examples = apiExamples(fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8'));

  it('are there, each with its output', () => {
    expect(examples.length).toBeGreaterThanOrEqual(4);
    for (const e of examples) expect(e.output, `README.md:${e.line}`).toBeDefined();
  });

  it('compile with strict type checking and print what the README shows', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-api-'));
    try {
      fs.mkdirSync(path.join(dir, 'node_modules'));
      fs.symlinkSync(repoRoot, path.join(dir, 'node_modules/kmodts'));
      examples.forEach((e, n) => fs.writeFileSync(path.join(dir, `example${n}.ts`), e.code));
      fs.writeFileSync(
        path.join(dir, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: {
            module: 'commonjs', target: 'ES2022', strict: true, esModuleInterop: true, skipLibCheck: true,
            noUnusedLocals: true, types: ['node'], typeRoots: [path.join(repoRoot, 'node_modules/@types')], outDir: 'out',
          },
          include: ['*.ts'],
        }),
      );
      const tsc = spawnSync(process.execPath, [path.join(repoRoot, 'node_modules/typescript/bin/tsc'), '-p', dir], { encoding: 'utf8' });
      expect(tsc.stdout + tsc.stderr).toBe('');
      expect(tsc.status).toBe(0);
      examples.forEach((e, n) => {
        const r = spawnSync(process.execPath, [path.join(dir, `out/example${n}.js`)], { cwd: repoRoot, encoding: 'utf8', env: cleanEnv({ HOME: dir }) });
        expect(r.stderr, `README.md:${e.line}`).toBe('');
        expect(r.status, `README.md:${e.line}`).toBe(0);
        expect(r.stdout, `README.md:${e.line}`).toBe(e.output);
      });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
