// libkmod's log priorities and the callback the library reports through. A module of its own so that
// code running on depmod's and modinfo's worker threads can use them without loading the context.

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

/**
 * The lowest descriptor kmod is given when it opens a file with only stdin, stdout and stderr open,
 * which some of its messages print (`mmap(..., 3, 0)`, `fstatat(3, name)`). kmodts cannot know what
 * other descriptors kmod would have inherited (Node marks inherited ones close-on-exec, as its own),
 * so messages assume none (docs/compat.md).
 */
export const KMOD_FIRST_FD = 3;
