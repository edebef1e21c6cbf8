// The module directory modprobe and modinfo build from -d/-b and -S/-k, checked as kmod 34.2's tools
// check it: snprintf into a PATH_MAX buffer, `bad directory <dir>: path too long` when it does not fit;
// then kmod_new(), which fails when a relative directory cannot be made absolute.
import { KmodError } from '../errors';
import { Context, MODULE_DIRECTORY, runningKernelVersion, type ContextOptions } from '../resolution/context';
import type { ToolLog } from './log';
import { PATH_MAX } from '../file/binary-os';

/**
 * The message kmod prints (after `ERROR: `) when "<root>/lib/modules/<version>" does not fit in PATH_MAX
 * bytes, else undefined. Only checked when a root or a version was given, as kmod does. Arguments are
 * binary strings (one char a byte), so the length is the byte count kmod sees.
 */
export function moduleDirectoryTooLong(root: string | undefined, kversion: string | undefined): string | undefined {
  if (root === undefined && kversion === undefined) return undefined;
  const dir = `${root ?? ''}${MODULE_DIRECTORY}/${kversion ?? runningKernelVersion()}`;
  return dir.length >= PATH_MAX ? `bad directory ${dir}: path too long\n` : undefined;
}

/**
 * kmod_new() as the tools call it: the context, or undefined once `ERROR: kmod_new() failed!` is
 * printed (after libkmod's `could not retrieve directory`: a relative directory and no current one).
 */
export function newContext(log: ToolLog, options: ContextOptions): Context | undefined {
  try {
    return new Context(options);
  } catch (err) {
    if (!(err instanceof KmodError)) throw err;
    log.error('kmod_new() failed!\n');
    return undefined;
  }
}
