// The module directory modprobe and modinfo build from -d/-b and -S/-k, checked as kmod 34.2's tools
// check it: snprintf into a PATH_MAX buffer, `bad directory <dir>: path too long` when it does not fit.
import { MODULE_DIRECTORY, runningKernelVersion } from '../resolution/context';

const PATH_MAX = 4096;

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
