import * as os from 'node:os';
import type { Backend } from './backend';

/** libkmod log priorities (syslog levels) */
export const LOG_CRIT = 2;
export const LOG_ERR = 3;
export const LOG_WARNING = 4;
export const LOG_NOTICE = 5;
export const LOG_INFO = 6;
export const LOG_DEBUG = 7;

/**
 * A diagnostic the library reports instead of printing: libkmod's log call with its priority and the
 * C function name kmod would show (the CLI formats it as kmod does).
 */
export type LogFn = (priority: number, fn: string, message: string) => void;

/** kmod's compiled-in module directory */
export const MODULE_DIRECTORY = '/lib/modules';

export interface ContextOptions {
  /** -d/-b: a root prefixed to /lib/modules (kmod: "%s/lib/modules/%s") */
  root?: string;
  /** -S: kernel version; default uname -r */
  kernelVersion?: string;
  /** the whole module directory, overriding root + kernelVersion (depmod -m/-o style users) */
  moduleDir?: string;
  /** -C: configuration files or directories replacing the default search paths */
  configPaths?: string[];
  /** where /proc is (tests point this at a fake one) */
  procDir?: string;
  /** where /sys is (tests point this at a fake one) */
  sysDir?: string;
  /** receives libkmod-style diagnostics; none are printed by the library */
  log?: LogFn;
  /** the kernel to query and load into; default: the native backend */
  backend?: Backend;
}

/** uname -r of the running kernel */
export function runningKernelVersion(): string {
  return os.release();
}

/** kmod's rule: with -d or -S, "<root>/lib/modules/<version>"; else /lib/modules/`uname -r`. */
export function moduleDirectory(opts: Pick<ContextOptions, 'root' | 'kernelVersion' | 'moduleDir'>): string {
  if (opts.moduleDir !== undefined) return opts.moduleDir;
  const kver = opts.kernelVersion ?? runningKernelVersion();
  return `${opts.root ?? ''}${MODULE_DIRECTORY}/${kver}`;
}
