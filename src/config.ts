// modprobe.d configuration (libkmod-config.c's model): the lists kmod keeps, in parse order.
// The parser (loadConfig) and the `modprobe -c` formatter (formatConfig) live here too.
import type { LogFn } from './context';

export interface ConfigAlias { name: string; modname: string }
export interface ConfigOptions { modname: string; options: string }
export interface ConfigCommand { modname: string; command: string }
export interface ConfigSoftdep { name: string; pre: string[]; post: string[] }
export interface ConfigWeakdep { name: string; deps: string[] }

export interface ModprobeConfig {
  aliases: ConfigAlias[];
  blacklists: string[];
  options: ConfigOptions[];
  installs: ConfigCommand[];
  removes: ConfigCommand[];
  softdeps: ConfigSoftdep[];
  weakdeps: ConfigWeakdep[];
}

export interface ConfigLoadOptions {
  /** -C: files or directories replacing the default search paths */
  configPaths?: string[];
  /** the module directory, for modules.softdep / modules.weakdep */
  moduleDir: string;
  /** where /proc is, for /proc/cmdline */
  procDir?: string;
  log?: LogFn;
}
