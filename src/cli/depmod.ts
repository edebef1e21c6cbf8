import type { ToolEnv } from './io';

// Placeholder until its issue lands: says so plainly and fails.
export function run(_args: string[], env: ToolEnv): number {
  env.io.stderr('depmod: not implemented yet\n');
  return 1;
}
