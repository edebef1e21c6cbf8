// Putting one module file into the kernel, and taking one out, as libkmod's
// kmod_module_insert_module / kmod_module_remove_module do (kmod 34.2):
//  - finit_module on the file when it is uncompressed or compressed the way the kernel decompresses
//    (/sys/module/compression), adding MODULE_INIT_COMPRESSED_FILE for the latter;
//  - otherwise, or when the kernel has no finit_module (ENOSYS), the image is decompressed here and
//    handed to init_module; the force flags then strip __versions/vermagic from a copy of the image.
// Errors come back as negative errno values, libkmod-style; diagnostics go through the context's log.
import { MODULE_INIT_COMPRESSED_FILE, MODULE_INIT_IGNORE_MODVERSIONS, MODULE_INIT_IGNORE_VERMAGIC, O_NONBLOCK, O_TRUNC } from './backend';
import { LOG_ERR, LOG_INFO, type Context } from '../resolution/context';
import { ENODATA, ENOENT, ENOSYS, strerror } from '../errno';
import { KmodError } from '../errors';
import type { Elf } from '../file/elf';
import { SHF_ALLOC } from '../file/elf';
import type { ModuleFile } from '../file/module-file';
import type { Module } from '../resolution/module';

/** kmod_insert flags (the same values as modprobe's PROBE_FORCE_*) */
export const INSERT_FORCE_VERMAGIC = 0x1;
export const INSERT_FORCE_MODVERSION = 0x2;

/** kmod_remove flags */
export const REMOVE_FORCE = O_TRUNC;
/** do not log "could not remove" (modprobe logs its own message) */
export const REMOVE_NOLOG = 0x1;

function errnoOf(err: unknown): number {
  if (err instanceof KmodError) return err.errno;
  throw err;
}

/** backends/native's error when its compiled helper is not there: worth saying plainly, once */
function helperMissing(err: unknown): err is KmodError {
  return err instanceof KmodError && err.name === 'NativeHelperMissing';
}

function kernelCall(ctx: Context, call: () => void): number {
  try {
    call();
    return 0;
  } catch (err) {
    if (helperMissing(err)) ctx.log(LOG_ERR, 'kmod_module_insert_module', `${err.message}\n`);
    return -errnoOf(err);
  }
}

/** finit_module, or -ENOSYS to ask for the user-space path (compression the kernel does not do) */
function finitModule(ctx: Context, file: ModuleFile, flags: number, args: string): number {
  const kernelCompression = ctx.backend.compression();
  if (file.compression !== 'none' && file.compression !== kernelCompression) return -ENOSYS;
  let kflags = file.compression !== 'none' ? MODULE_INIT_COMPRESSED_FILE : 0;
  if (flags & INSERT_FORCE_VERMAGIC) kflags |= MODULE_INIT_IGNORE_VERMAGIC;
  if (flags & INSERT_FORCE_MODVERSION) kflags |= MODULE_INIT_IGNORE_MODVERSIONS;
  return kernelCall(ctx, () => ctx.backend.finitModule(file.path, args, kflags));
}

/** kmod's elf_strip_versions_section: the __versions section loses SHF_ALLOC, so the kernel ignores it */
function stripVersions(elf: Elf, image: Buffer): void {
  const sec = elf.findSection('__versions');
  if (sec === undefined) return;
  // sh_flags follows sh_name and sh_type (4 bytes each) in both ELF classes
  const off = sec.headerOffset + 8;
  if (elf.is64) {
    const v = sec.flags & ~BigInt(SHF_ALLOC);
    if (elf.msb) image.writeBigUInt64BE(v, off);
    else image.writeBigUInt64LE(v, off);
  } else {
    const v = Number(sec.flags & ~BigInt(SHF_ALLOC)) >>> 0;
    if (elf.msb) image.writeUInt32BE(v, off);
    else image.writeUInt32LE(v, off);
  }
}

/** kmod's elf_strip_vermagic: the "vermagic=..." string of .modinfo is overwritten with NULs */
function stripVermagic(elf: Elf, image: Buffer): void {
  const sec = elf.findSection('.modinfo');
  if (sec === undefined || sec.offset === 0) return;
  let start = sec.offset;
  let size = sec.size;
  while (size > 1 && image[start] === 0) {
    start++;
    size--;
  }
  if (size <= 1) return;
  const key = 'vermagic=';
  const strlen = (at: number): number => {
    let e = at;
    while (e < image.length && image[e] !== 0) e++;
    return e - at;
  };
  for (let i = 0; i < size; i++) {
    if (image[start + i] === 0) continue;
    if (i + 1 >= size) continue;
    if (i + key.length >= size) continue;
    if (image.toString('latin1', start + i, start + i + key.length) !== key) {
      i += strlen(start + i);
      continue;
    }
    image.fill(0, start + i, start + i + strlen(start + i));
    return;
  }
  throw new KmodError(ENODATA, `${elf.file}: no vermagic in .modinfo`);
}

/** init_module with the image decompressed here (and stripped, with the force flags) */
function initModule(ctx: Context, file: ModuleFile, flags: number, args: string): number {
  let image: Buffer;
  if (flags & (INSERT_FORCE_VERMAGIC | INSERT_FORCE_MODVERSION)) {
    let elf: Elf;
    try {
      elf = file.elf;
    } catch (err) {
      return -errnoOf(err);
    }
    image = Buffer.from(elf.data);
    try {
      if (flags & INSERT_FORCE_MODVERSION) stripVersions(elf, image);
      if (flags & INSERT_FORCE_VERMAGIC) stripVermagic(elf, image);
    } catch (err) {
      const errno = errnoOf(err);
      ctx.log(LOG_ERR, 'do_init_module', `Failed to strip version information: ${strerror(errno)}\n`);
      return -errno;
    }
  } else {
    try {
      image = file.image;
    } catch (err) {
      return -errnoOf(err);
    }
  }
  return kernelCall(ctx, () => ctx.backend.initModule(image, args));
}

/**
 * kmod_module_insert_module: loads `mod` (which must have a path) with `options` as its parameters.
 * Returns 0 or a negative errno (-EEXIST when a module of that name is already live).
 */
export function insertModule(ctx: Context, mod: Module, options: string | undefined, flags: number): number {
  const args = options ?? '';
  const path = mod.path;
  if (path === undefined) {
    ctx.log(LOG_ERR, 'kmod_module_insert_module', `could not find module by name='${mod.name}'\n`);
    return -ENOENT;
  }
  let file: ModuleFile;
  try {
    const { openModuleFile } = require('../file/module-file') as typeof import('../file/module-file');
    file = openModuleFile(path, { log: ctx.log });
  } catch (err) {
    return -errnoOf(err);
  }
  let err = finitModule(ctx, file, flags, args);
  if (err === -ENOSYS) err = initModule(ctx, file, flags, args);
  if (err < 0) ctx.log(LOG_INFO, 'kmod_module_insert_module', `Failed to insert module '${path}': ${strerror(-err)}\n`);
  return err;
}

/**
 * kmod_module_remove_module: delete_module(name, O_NONBLOCK [| O_TRUNC with REMOVE_FORCE]).
 * Returns 0 or a negative errno; logs "could not remove" unless REMOVE_NOLOG.
 */
export function removeModuleFromKernel(ctx: Context, mod: Module, flags: number): number {
  const kflags = (flags & REMOVE_FORCE) | O_NONBLOCK;
  try {
    ctx.backend.deleteModule(mod.name, kflags);
    return 0;
  } catch (err) {
    const errno = errnoOf(err);
    if (helperMissing(err)) ctx.log(LOG_ERR, 'kmod_module_remove_module', `${err.message}\n`);
    if (!(flags & REMOVE_NOLOG)) ctx.log(LOG_ERR, 'kmod_module_remove_module', `could not remove '${mod.name}': ${strerror(errno)}\n`);
    return -errno;
  }
}
