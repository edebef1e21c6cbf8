// lsmod --json: the modules in the kernel (running or simulated), in /proc/modules order, with the
// numbers lsmod shows (size, use count, holders in /sys order) and /proc/modules' state and taints.
import type { ProcModule } from '../../loading/backend';
import type { Context } from '../../resolution/context';
import type { ToolIo } from '../io';
import { releaseContext } from '../simple-tool';
import { printJson } from './output';

export function lsmodJson(ctx: Context, loaded: ProcModule[], io: ToolIo): number {
  const backend = ctx.backend;
  const modules = loaded.map((p) => {
    const mod = ctx.moduleFromName(p.name);
    // lsmod's size: /sys/module/<name>/coresize, else /proc/modules
    const core = backend.readModuleAttr(mod.name, 'coresize');
    const refcnt = mod.refcnt();
    return {
      name: mod.name,
      size: core !== undefined ? Number.parseInt(core, 10) : p.size,
      refcnt: refcnt >= 0 ? refcnt : null,
      usedBy: mod.holders().map((h) => h.name),
      state: p.state,
      taints: p.taints,
    };
  });
  releaseContext(ctx);
  printJson(io, { kind: 'lsmod', version: 1, modules });
  return 0;
}
