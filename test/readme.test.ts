// The README's shell sessions run exactly as written, and print what the README shows.
//
// Every ```sh block of README.md is preceded by a marker line: `<!-- test -->` (run it) or
// `<!-- not tested: reason -->`. In a tested block, lines starting with `$ ` are commands (a line ending with
// a backslash continues on the next one); the lines after a command, up to the next command, are its
// expected output: standard output and standard error together, as a terminal shows them. Lines are
// compared exactly, except for whitespace at line ends (invisible in the README); a line `...` stands for any
// number of lines. Every command must exit with status 0: a README command that fails on purpose shows it
// with `; echo "exit status $?"`. All tested blocks run in order in one bash session (aliases and
// variables carry over), from the repository root, with a clean environment.
import { spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cleanEnv, repoRoot } from './support/reference';

export interface ReadmeCommand {
  /** the command text, as written (continuation lines included) */
  command: string;
  /** expected output lines; undefined when the README shows none */
  output?: string[];
  /** README line number of the command */
  line: number;
}

/** The shell commands of README.md's tested blocks, and the marker of every sh block. */
export function readmeCommands(text: string): { commands: ReadmeCommand[]; unmarked: number[] } {
  const lines = text.split('\n');
  const commands: ReadmeCommand[] = [];
  const unmarked: number[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!/^```sh\s*$/.test(lines[i])) {
      if (/^```/.test(lines[i])) {
        // skip other fenced blocks whole
        for (i++; i < lines.length && !/^```\s*$/.test(lines[i]); i++);
      }
      continue;
    }
    let p = i - 1;
    while (p >= 0 && lines[p].trim() === '') p--;
    const marker = p >= 0 ? lines[p].trim() : '';
    const tested = marker === '<!-- test -->';
    if (!tested && !/^<!-- not tested: .+ -->$/.test(marker)) unmarked.push(i + 1);
    let j = i + 1;
    let current: ReadmeCommand | undefined;
    for (; j < lines.length && !/^```\s*$/.test(lines[j]); j++) {
      if (!tested) continue;
      const l = lines[j];
      if (l.startsWith('$ ')) {
        let cmd = l.slice(2);
        const at = j + 1;
        while (cmd.endsWith('\\') && j + 1 < lines.length) cmd += '\n' + lines[++j];
        current = { command: cmd, line: at };
        commands.push(current);
      } else if (current) {
        (current.output ??= []).push(l);
      } else {
        throw new Error(`README.md:${j + 1}: output before any command in a tested block`);
      }
    }
    i = j;
  }
  return { commands, unmarked };
}

/** Runs the commands in one bash session; returns each one's combined output and exit status. */
export function runSession(commands: ReadmeCommand[], cwd: string): { output: string; status: number }[] {
  const tag = crypto.randomBytes(6).toString('hex');
  const script = ['shopt -s expand_aliases', 'exec 2>&1', 'cd "$1" || exit 99'];
  commands.forEach((c, n) => {
    script.push(`printf '\\n@@${tag} begin ${n}\\n'`, c.command, `printf '\\n@@${tag} end ${n} %d\\n' $?`);
  });
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-readme-home-'));
  const r = spawnSync('bash', ['--norc', '--noprofile', '-c', script.join('\n'), 'readme', cwd], {
    encoding: 'utf8',
    env: cleanEnv({ HOME: home, TERM: 'dumb' }),
    maxBuffer: 64 << 20,
    timeout: 300_000,
  });
  fs.rmSync(home, { recursive: true, force: true });
  if (r.error) throw r.error;
  const out = r.stdout;
  return commands.map((_, n) => {
    const b = out.indexOf(`\n@@${tag} begin ${n}\n`);
    const e = out.indexOf(`\n@@${tag} end ${n} `);
    if (b < 0 || e < 0) return { output: `(session ended early: ${out.slice(-2000)})`, status: -1 };
    const status = Number(/^(\d+)/.exec(out.slice(e + `\n@@${tag} end ${n} `.length))![1]);
    return { output: out.slice(b + `\n@@${tag} begin ${n}\n`.length, e), status };
  });
}

/** Whether actual output lines match the expected ones (`...` = any number of lines). */
export function outputMatches(expected: string[], actual: string[]): boolean {
  const norm = (ls: string[]): string[] => {
    const x = ls.map((l) => l.replace(/\s+$/, ''));
    while (x.length > 0 && x[x.length - 1] === '') x.pop();
    return x;
  };
  const exp = norm(expected);
  const act = norm(actual);
  const match = (i: number, j: number): boolean => {
    if (i === exp.length) return j === act.length;
    if (exp[i] === '...') {
      for (let k = j; k <= act.length; k++) if (match(i + 1, k)) return true;
      return false;
    }
    return j < act.length && exp[i] === act[j] && match(i + 1, j + 1);
  };
  return match(0, 0);
}

describe('README.md', () => {
  const text = fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
  const { commands, unmarked } = readmeCommands(text);

  it('marks every sh block as tested or says why not', () => {
    expect(unmarked).toEqual([]);
    expect(commands.length).toBeGreaterThan(10);
  });

  it('shows the two set-up commands, npm ci then npm test', () => {
    expect(text).toMatch(/```sh\nnpm ci\nnpm test\n```/);
  });

  it('runs its shell sessions exactly as written, with the output it shows', () => {
    const results = runSession(commands, repoRoot);
    const failures: string[] = [];
    commands.forEach((c, n) => {
      const r = results[n];
      const actual = r.output.replace(/\n$/, '').split('\n');
      if (r.status !== 0) failures.push(`README.md:${c.line}: \`${c.command}\` exited with status ${r.status}:\n${r.output}`);
      else if (c.output !== undefined && !outputMatches(c.output, actual)) {
        failures.push(`README.md:${c.line}: \`${c.command}\` printed:\n${r.output}\nwhere the README shows:\n${c.output.join('\n')}\n`);
      }
    });
    expect(failures.join('\n')).toBe('');
  });
});

describe('README test harness', () => {
  it('matches output with ... and ignores trailing whitespace only', () => {
    expect(outputMatches(['a', '...', 'd'], ['a', 'b', 'c', 'd'])).toBe(true);
    expect(outputMatches(['a', '...', 'd'], ['a', 'd'])).toBe(true);
    expect(outputMatches(['a ', 'b'], ['a', 'b  ', ''])).toBe(true);
    expect(outputMatches(['a', 'b'], ['a', 'c'])).toBe(false);
    expect(outputMatches(['a'], ['a', 'b'])).toBe(false);
    expect(outputMatches([' a'], ['a'])).toBe(false);
  });

  it('parses commands, continuations, outputs and markers', () => {
    const md = [
      '<!-- test -->', '```sh', '$ echo a \\', '  b', 'a b', '$ true', '```', '',
      '```sh', 'rm -rf /', '```', '<!-- not tested: x -->', '```sh', 'reboot', '```',
    ].join('\n');
    const { commands, unmarked } = readmeCommands(md);
    expect(commands).toEqual([
      { command: 'echo a \\\n  b', output: ['a b'], line: 3 },
      { command: 'true', line: 6 },
    ]);
    expect(unmarked).toEqual([9]);
    const r = runSession(commands, repoRoot);
    expect(r).toEqual([{ output: 'a b\n', status: 0 }, { output: '', status: 0 }]);
  });
});
