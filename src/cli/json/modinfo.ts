// modinfo --json: for every module an argument names, all its fields in kmod's order, its parameters and
// its signature. Arguments are resolved by the modinfo CLI's own methods (same lookups, same messages);
// only the per-module output changes. Field selection (-F, -a, -d, -l, -p, -n) and -0 do not apply.
import type { Context } from '../../resolution/context';
import { KmodError } from '../../errors';
import { ENOENT, strerror } from '../../errno';
import { moduleInfo, moduleParams, type InfoList } from '../../resolution/modinfo';
import type { Module } from '../../resolution/module';
import type { ToolIo } from '../io';
import type { ToolLog } from '../log';
import { printJson } from './output';

/** What the modinfo CLI offers: resolution of an argument to modules, each passed to show(). */
export interface ModinfoResolver {
  show(mod: Module): boolean;
  byName(name: string): boolean;
  byPath(path: string): boolean | Promise<boolean>;
  byAlias(alias: string): boolean;
}

const SIGNATURE_KEYS: Record<string, string> = {
  sig_id: 'id',
  signer: 'signer',
  sig_key: 'keyId',
  sig_hashalgo: 'hashAlgorithm',
  signature: 'signature',
};

/** The JSON description of one module (null when its information cannot be read: reported on stderr). */
export function moduleJson(mod: Module, ctx: Context, log: ToolLog): Record<string, unknown> | null {
  const builtin = mod.path === undefined;
  let list: InfoList;
  try {
    list = moduleInfo(mod, ctx);
  } catch (err) {
    if (!(err instanceof KmodError)) throw err;
    if (builtin && err.errno === ENOENT) list = [];
    else {
      log.error(`could not get modinfo from '${mod.name}': ${strerror(err.errno)}\n`);
      return null;
    }
  }
  const signature: Record<string, string> = {};
  // hex values without modinfo's line wrapping ("\n\t\t" after every 20 bytes)
  for (const [key, value] of list) if (SIGNATURE_KEYS[key] !== undefined) signature[SIGNATURE_KEYS[key]] = value.replace(/\n\t\t/g, '');
  return {
    name: mod.name,
    filename: mod.path ?? null,
    builtin,
    fields: list.map(([key, value]) => ({ key, value })),
    parameters: moduleParams(list, (key, value) => log.error(`Found invalid "${key}=${value}": missing ':'\n`)),
    signature: signature.id !== undefined ? signature : null,
  };
}

export async function modinfoJson(
  modinfo: ModinfoResolver,
  ctx: Context,
  args: string[],
  byModname: boolean,
  isModuleFilename: (name: string) => boolean,
  log: ToolLog,
  io: ToolIo,
): Promise<number> {
  const modules: unknown[] = [];
  let query = '';
  modinfo.show = (mod: Module): boolean => {
    const m = moduleJson(mod, ctx, log);
    if (m === null) return false;
    modules.push({ query, ...m });
    return true;
  };
  let ok = true;
  for (const name of args) {
    query = name;
    let done: boolean;
    if (byModname) done = modinfo.byName(name);
    else if (isModuleFilename(name)) done = await modinfo.byPath(name);
    else done = modinfo.byAlias(name);
    if (!done) ok = false;
    // (each argument's modules freed before the next, as modinfo.ts does)
    ctx.releaseModules();
  }
  printJson(io, { kind: 'modinfo', version: 1, modules });
  return ok ? 0 : 1;
}
