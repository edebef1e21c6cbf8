// Module information as kmod_module_get_info() gives it: the .modinfo key/value list of a module file
// (or of a builtin module, from modules.builtin.modinfo), followed by the signature keys. The modinfo
// tool formats these; depmod and modprobe read the same lists.
import * as fs from '../file/binary-os';
import { readFileBytes } from '../file/read-text';
import type { Context } from './context';
import { LOG_ERR, type LogFn } from '../log';
import { ENOENT, EINVAL, strerror } from '../errno';
import { KmodError, fromSystemError } from '../errors';
import { openModuleFile, ReadBuffer, type ModuleFile } from '../file/module-file';
import { hexString } from '../file/signature';
import type { Module } from './module';

export type InfoList = [key: string, value: string][];

/** The key/value list of a module file: .modinfo strings split at the first '=', then the signature keys. */
export function fileInfo(mf: ModuleFile): InfoList {
  const list = mf.modinfo();
  const sig = mf.signature();
  if (sig !== undefined) {
    list.push(['sig_id', sig.idType]);
    list.push(['signer', sig.signer]);
    list.push(['sig_key', hexString(sig.keyId)]);
    list.push(['sig_hashalgo', sig.hashAlgo]);
    list.push(['signature', hexString(sig.signature)]);
  }
  return list;
}

/**
 * The modinfo strings of a builtin module from <moduledir>/modules.builtin.modinfo ("name.key=value\0"
 * records, one module's records together). Throws KmodError ENOENT when the file is missing (old
 * kernels), EINVAL for a record without a "name." prefix.
 */
export function builtinInfo(moduleDir: string, name: string, log?: LogFn): InfoList {
  const file = `${moduleDir}/modules.builtin.modinfo`;
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (err) {
    throw fromSystemError(err, file);
  }
  let data: Buffer;
  try {
    data = readFileBytes(fd);
  } catch (err) {
    // libkmod opens the file quietly, but logs a failed read (a directory in its place: EISDIR)
    const e = fromSystemError(err, file);
    log?.(LOG_ERR, 'get_strings', `get_string: ${strerror(e.errno)}\n`);
    throw e;
  } finally {
    fs.closeSync(fd);
  }
  const prefix = name + '.';
  const out: InfoList = [];
  let pos = 0;
  while (pos < data.length) {
    let end = data.indexOf(0, pos);
    if (end < 0) end = data.length;
    const line = data.toString('latin1', pos, end);
    pos = end + 1;
    const dot = line.indexOf('.');
    if (dot < 0) {
      log?.(LOG_ERR, 'get_strings', 'get_strings: unexpected string without modname prefix\n');
      throw new KmodError(EINVAL, `${file}: a record without module name prefix`, { file });
    }
    if (!line.startsWith(prefix)) {
      if (out.length === 0) continue;
      break;
    }
    out.push(splitInfo(line.slice(dot + 1)));
  }
  return out;
}

function splitInfo(s: string): [string, string] {
  const eq = s.indexOf('=');
  return eq < 0 ? [s, ''] : [s.slice(0, eq), s.slice(eq + 1)];
}

/**
 * kmod_module_get_info: the info list of a module found by path, name or alias. Builtin modules read
 * modules.builtin.modinfo; others open their file (KmodError ENOENT when the module has no path,
 * FormatError for a bad file, ENODATA when there is no .modinfo section). `file` is the module's file
 * when the caller has opened it already.
 */
export function moduleInfo(mod: Module, ctx: Context, file?: ModuleFile): InfoList {
  if (mod.isBuiltin()) return builtinInfo(ctx.dirname, mod.name, ctx.log);
  const path = mod.path;
  if (path === undefined) throw new KmodError(ENOENT, `module ${mod.name} has no file`);
  // the file opened here is dropped once its strings are taken (fileInfo copies everything out of
  // it), so one buffer serves every call
  return fileInfo(file ?? openModuleFile(path, { log: ctx.log, readBuffer: infoReadBuffer, modinfoOnly: true }));
}

const infoReadBuffer = new ReadBuffer();

export interface ModuleParam {
  name: string;
  /** from `parm=name:description` */
  description?: string;
  /** from `parmtype=name:type` */
  type?: string;
}

/**
 * The parameters described by parm/parmtype entries, in kmod's order (most recently first seen first:
 * modinfo builds its list by prepending). Entries without ':' are reported through `invalid`.
 */
export function moduleParams(list: InfoList, invalid?: (key: string, value: string) => void): ModuleParam[] {
  const params: ModuleParam[] = [];
  const byName = new Map<string, ModuleParam>();
  // (indexed, no destructuring: unoptimized, those allocate iterators (decisions.md))
  for (let k = 0; k < list.length; k++) {
    const key = list[k][0];
    if (key !== 'parm' && key !== 'parmtype') continue;
    const value = list[k][1];
    const colon = value.indexOf(':');
    if (colon < 0) {
      invalid?.(key, value);
      continue;
    }
    const name = value.slice(0, colon);
    let p = byName.get(name);
    if (p === undefined) {
      p = { name };
      byName.set(name, p);
      params.unshift(p);
    }
    if (key === 'parm') p.description = value.slice(colon + 1);
    else p.type = value.slice(colon + 1);
  }
  return params;
}
