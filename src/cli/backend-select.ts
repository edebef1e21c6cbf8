// Which kernel a tool talks to: the running one (native backend; KMODTS_SYS_DIR / KMODTS_PROC_DIR
// relocate /sys and /proc for tests) or the simulated one (`kmodts --backend=sim`), loaded only
// when selected so the native path does not pay for it.
import type { Backend } from '../loading/backend';
import type { ToolEnv } from './io';

/** /sys and /proc as the tools should read them */
export function stateDirs(env: ToolEnv): { sysDir?: string; procDir?: string } {
  return { sysDir: env.io.env.KMODTS_SYS_DIR || undefined, procDir: env.io.env.KMODTS_PROC_DIR || undefined };
}

/** Creates the backend the settings ask for. */
export function selectBackend(env: ToolEnv): Backend {
  if (env.settings.backend === 'sim') {
    const sim = require('../backends/sim') as typeof import('../backends/sim');
    // the tool's own environment (not process.env) carries KMODTS_SIM_*, so in-process runs work too
    return sim.createSimBackend(env.settings, {
      env: env.io.env,
      comm: env.prog,
      onLockWait: (h: { pid: number; comm: string }): void =>
        env.io.stderr(`kmodts: waiting for process ${h.pid} (${h.comm}), which holds the simulated kernel's state lock\n`),
      // what the simulator must add to kmod's own messages (once per command): a kmodts line, on stderr
      onNote: (text) => env.io.stderr(`kmodts: ${text}\n`),
    });
  }
  const { NativeBackend } = require('../backends/native') as typeof import('../backends/native');
  return new NativeBackend(stateDirs(env));
}
