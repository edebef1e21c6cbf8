import type { ToolEnv } from './io';

// Placeholder until its issue lands: says so plainly and fails.
export function run(_args: string[], env: ToolEnv): number {
  env.io.stderr('lsmod: not implemented yet\n');
  return 1;
}
