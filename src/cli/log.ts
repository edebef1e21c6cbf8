import { LOG_CRIT, LOG_DEBUG, LOG_ERR, LOG_INFO, LOG_NOTICE, LOG_WARNING, NO_DIRECTORY_MESSAGE, type LogFn } from '../resolution/context';
import { ToolExit, type ToolIo } from './io';
import { childText } from '../file/binary-os';

export { LOG_CRIT, LOG_DEBUG, LOG_ERR, LOG_INFO, LOG_NOTICE, LOG_WARNING };
export const LOG_EMERG = 0;

/** kmod's tools/log.c names for priorities */
export function priorityName(prio: number): string {
  switch (prio) {
    case LOG_CRIT: return 'FATAL';
    case LOG_ERR: return 'ERROR';
    case LOG_WARNING: return 'WARNING';
    case LOG_NOTICE: return 'NOTICE';
    case LOG_INFO: return 'INFO';
    case LOG_DEBUG: return 'DEBUG';
    default: return `LOG-${String(prio).padStart(3, '0')}`;
  }
}

/** libkmod's default logger (before a tool installs its own): "libkmod: ERROR: fn: msg" (kmod 34). */
export function libkmodDefaultPriority(env: NodeJS.ProcessEnv): number {
  const v = env.KMOD_LOG;
  if (v === undefined) return LOG_ERR;
  // libkmod's log_priority(): strtol, accepted when it stops at the end or at a space (so "" is 0),
  // else the err/info/debug prefixes, else 0
  const m = /^[ \t\n\v\f\r]*[+-]?\d+/.exec(v);
  const rest = m ? v.slice(m[0].length) : v;
  if (rest === '' || /^[ \t\n\v\f\r]/.test(rest)) return m ? Number.parseInt(m[0], 10) : 0;
  if (v.startsWith('err')) return LOG_ERR;
  if (v.startsWith('info')) return LOG_INFO;
  if (v.startsWith('debug')) return LOG_DEBUG;
  return 0;
}

/**
 * A tool's log, as tools/log.c: "<prog>: <PRIO>: <msg>" on stderr when prio <= the current priority.
 * FATAL exits with status 1 once printed; suppressed (by -q) it returns and the tool continues, as kmod.
 */
export class ToolLog {
  priority = LOG_WARNING;
  /** true once the tool has installed its log function into libkmod (log_setup_kmod_log) */
  private routed = false;
  private libkmodPriority: number;

  /**
   * `libkmodIo`: where libkmod's default logger writes until routeLibkmod (its messages from kmod_new(),
   * such as the configuration's): stderr, also when the tool's own messages go to syslog (-s).
   */
  constructor(
    private readonly io: ToolIo,
    private readonly prog: string,
    private readonly libkmodIo: ToolIo = io,
  ) {
    this.libkmodPriority = libkmodDefaultPriority(io.env);
  }

  log(prio: number, msg: string): void {
    if (prio > this.priority) return;
    this.io.stderr(`${this.prog}: ${priorityName(prio)}: ${msg}`);
    if (prio <= LOG_CRIT) {
      this.io.flush();
      throw new ToolExit(1);
    }
  }
  fatal(msg: string): void { this.log(LOG_CRIT, msg); }
  error(msg: string): void { this.log(LOG_ERR, msg); }
  warn(msg: string): void { this.log(LOG_WARNING, msg); }
  notice(msg: string): void { this.log(LOG_NOTICE, msg); }
  info(msg: string): void { this.log(LOG_INFO, msg); }
  debug(msg: string): void { this.log(LOG_DEBUG, msg); }

  /** log_setup_kmod_log(ctx, verbose): from now on libkmod messages go through the tool's log */
  routeLibkmod(verbosity: number): void {
    this.priority = verbosity;
    this.routed = true;
  }

  /** The LogFn to hand to the library (messages must end with '\n', as libkmod's do). */
  readonly libkmod: LogFn = (prio, fn, msg) => {
    if (this.routed) {
      if (prio > this.priority) return;
      this.io.stderr(`${this.prog}: ${priorityName(prio)}: ${msg}`);
      return;
    }
    // (kmod_new() says it before it reads KMOD_LOG)
    const limit = fn === 'kmod_new' && msg === NO_DIRECTORY_MESSAGE ? LOG_ERR : this.libkmodPriority;
    if (prio > limit) return;
    this.libkmodIo.stderr(`libkmod: ${priorityName(prio)}: ${fn}: ${msg}`);
  };
}

const SYSLOG_LEVELS: Record<string, string> = { FATAL: 'crit', ERROR: 'err', WARNING: 'warning', NOTICE: 'notice', INFO: 'info', DEBUG: 'debug' };

/**
 * An io whose stderr goes to syslog (the tools' -s): "<PRIO>: <msg>" at that priority, facility daemon,
 * tagged with the program name, as kmod's syslog(3) calls; sent through logger(1) when it is there.
 */
export function syslogIo(io: ToolIo, prog: string): ToolIo {
  return {
    ...io,
    stderr(data: string) {
      const msg = (data.startsWith(`${prog}: `) ? data.slice(prog.length + 2) : data).replace(/\n$/, '');
      const level = SYSLOG_LEVELS[msg.slice(0, msg.indexOf(':'))] ?? 'notice';
      const { spawnSync } = require('node:child_process') as typeof import('node:child_process');
      spawnSync('logger', ['-t', childText(prog), '-p', `daemon.${level}`, '--', childText(msg)], { stdio: 'ignore' });
    },
  };
}
