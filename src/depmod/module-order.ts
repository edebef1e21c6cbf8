// The order of depmod's module array, which is the order of modules.dep and of every per-module index:
// kmod's hash table order, overridden by modules.order for the modules it lists.
import * as fs from '../file/binary-os';
import { LOG_ERR, LOG_WARNING } from '../log';
import { EISDIR, errnoOf, strerror } from '../errno';
import { hashOrder } from './hash';
import { DepmodFatal, nodePathError, type Mod, type RunContext } from './run-context';
import { fgetsPieces, readFileBytes } from '../file/read-text';
import type { ModuleTable } from './tree-walk';

/**
 * kmod's module array: the modules in its hash table's order, which modules.order then overrides,
 * positions numbered (idx). The hash order is only computed where it shows: a tree whose modules.order
 * lists every module does not need it.
 */
export function moduleArray(ctx: RunContext, table: ModuleTable): Mod[] {
  let modules = [...table.byName.values()];
  if (modules.length >= 0xffff) throw new DepmodFatal(`could not build module array: ${strerror(34)}\n`, 34);
  if (!readOrderFile(ctx, table, modules.length)) {
    modules = hashOrder(modules, (m) => m.modname, 512);
  } else {
    // the modules it lists come first, in its order (sortIdx -n, -n+1, ...), then the others in hash
    // order (kmod: hash order, then glibc's stable qsort by sortIdx, where all the others have 1). The
    // hash order of a few is theirs in the order of all (bucket, then name), so only they are hashed:
    // after one module is added, one hash instead of thousands, and no sort of the listed ones.
    const count = modules.length;
    const listed = new Array<Mod>(count);
    let others: Mod[] = [];
    for (let k = 0; k < count; k++) {
      const m = modules[k];
      if (m.sortIdx < 0) listed[m.sortIdx + count] = m;
      else others.push(m);
    }
    listed.length = count - others.length;
    if (others.length > 1) others = hashOrder(others, (m) => m.modname, 512);
    modules = others.length === 0 ? listed : listed.concat(others);
  }
  for (let k = 0; k < modules.length; k++) modules[k].idx = k;
  return modules;
}

/**
 * Numbers the modules that modules.order lists (sortIdx from -n up, in its order); false when the
 * array is to stay in hash order (no file, or a line kmod stops at).
 */
function readOrderFile(ctx: RunContext, table: ModuleTable, count: number): boolean {
  const dirname = ctx.dirname;
  const file = 'modules.order';
  let text: Buffer;
  try {
    fs.accessSync(dirname, fs.constants.R_OK);
  } catch (err) {
    ctx.log(LOG_WARNING, `could not open directory ${dirname}: ${nodePathError(err)}\n`);
    return false;
  }
  try {
    text = readFileBytes(`${dirname}/${file}`);
  } catch (err) {
    // a directory opens, and kmod's first fgets fails: no lines, the modules sorted all the same
    if (errnoOf(err) === EISDIR) return true;
    ctx.log(LOG_WARNING, `could not open ${file} at ${dirname}: ${nodePathError(err)}\n`);
    return false;
  }
  let i = -count;
  let lineno = 0;
  for (const line of fgetsPieces(text.toString('latin1', 0, text.length))) {
    lineno++;
    if (line.length === 0) continue;
    if (line[line.length - 1] !== '\n') {
      ctx.log(LOG_ERR, `${dirname}/${file}:${lineno} corrupted line misses '\\n'\n`);
      return false;
    }
    const mod = table.byUncrelpath.get(line.slice(0, -1));
    if (mod === undefined || mod.sortIdx < 0) continue;
    mod.sortIdx = i++;
  }
  return true;
}
