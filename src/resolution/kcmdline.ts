// The kernel command line as libkmod reads it (kmod_config_parse_kcmdline): `mod.param[=value]` words
// become options, `modprobe.blacklist=a,b` becomes blacklist entries; everything else is ignored.
import { errnoOf, strerror } from '../errno';
import { readBinaryString } from '../file/read-text';
import { LOG_ERR, type LogFn } from '../log';
import { underscoresInPlace } from '../names/modname';

/** What the command line adds to the configuration, in command-line order. */
export interface KernelCmdlineConfig {
  options: { modname: string; options: string }[];
  blacklists: string[];
}

/** libkmod reads at most this many bytes of /proc/cmdline (a 4096-byte buffer with its NUL). */
export const KCMDLINE_MAX_BYTES = 4095;

const enum State {
  Ignore,
  Modname,
  Param,
  Value,
  Complete,
}

function isCmdlineSpace(c: string): boolean {
  return c === ' ' || c === '\n' || c === '\t' || c === '\v' || c === '\f' || c === '\r';
}

/** The C string starting at `at` in a NUL-terminated char array. */
function cString(buf: string[], at: number): string {
  let end = at;
  while (buf[end] !== '\0') end++;
  return buf.slice(at, end).join('');
}

/**
 * Parses command-line text as libkmod does: a character state machine (module name, '.', parameter,
 * '=', value) where a word that opens with '"' (a bootloader quoting the whole `mod.param=value`) is
 * re-quoted as `param="value"`, quotes elsewhere outside a value spoil the word, and words with '='
 * before any '.' (BOOT_IMAGE=..., root=...) or without '.' (quiet) are skipped.
 */
export function parseKernelCmdline(text: string, log?: LogFn): KernelCmdlineConfig {
  const nul = text.indexOf('\0');
  const line = nul >= 0 ? text.slice(0, nul) : text;
  return line.includes('"') ? parseCmdlineChars(line, log) : parseUnquoted(line, { options: [], blacklists: [] }, log);
}

/**
 * libkmod's state machine itself, character by character, for a line without NUL. parseKernelCmdline
 * takes it for lines with quotes; exported so that tests hold parseUnquoted to it.
 */
export function parseCmdlineChars(line: string, log?: LogFn): KernelCmdlineConfig {
  const result: KernelCmdlineConfig = { options: [], blacklists: [] };
  // the buffer libkmod walks, mutated in place as it does (terminators, re-quoting)
  const buf = line.split('');
  buf.push('\0');

  let state = State.Modname;
  let quoted = false;
  let quoteStart = -1;
  let modname = 0;
  let param = -1;
  let value = -1;
  let more = true;
  for (let p = 0; more; p++) {
    const c = buf[p];
    if (c === '"') {
      quoted = !quoted;
      // a quote may only open a word; anywhere else outside a value it makes the word ill-formed
      if (quoted && state === State.Modname && p === modname) {
        quoteStart = p;
        modname = p + 1;
      } else if (state !== State.Value) {
        state = State.Ignore;
      }
    } else if (c === '\0' || isCmdlineSpace(c)) {
      if (c === '\0') more = false;
      if (quoted && state === State.Value) {
        // a space inside a quoted value
      } else if (quoted) {
        state = State.Ignore;
      } else if (state === State.Value || state === State.Param) {
        buf[p] = '\0';
        state = State.Complete;
      } else {
        modname = p + 1;
        state = State.Modname;
        quoteStart = -1;
      }
    } else if (c === '.') {
      if (state === State.Modname) {
        buf[p] = '\0';
        param = p + 1;
        state = State.Param;
      } else if (state === State.Param) {
        state = State.Ignore;
      }
    } else if (c === '=') {
      if (state === State.Param) {
        value = p + 1;
        state = State.Value;
      } else if (state === State.Modname) {
        state = State.Ignore;
      }
    }

    if (state === State.Complete) {
      if (quoteStart >= 0 && quoteStart < modname) {
        // "mod.param=a b" → mod param="a b": shift name and param left over the opening quote and
        // put the quote after the '='
        for (let i = modname; i < value; i++) buf[i - 1] = buf[i];
        value--;
        modname--;
        param--;
        buf[value] = '"';
      }
      addResult(result, cString(buf, modname), cString(buf, param), value >= 0 ? cString(buf, value) : '', log);
      modname = p + 1;
      state = State.Modname;
      quoteStart = -1;
    }
  }
  return result;
}

/**
 * The state machine above for a line without quotes (the usual case, and cheaper at start-up): each
 * word is `mod.param[=value]` when it has a '.' before any '=' and no second '.' before the '='.
 */
function parseUnquoted(line: string, result: KernelCmdlineConfig, log?: LogFn): KernelCmdlineConfig {
  // a regular expression split, not a loop over characters: cold code runs interpreted, a split natively
  for (const word of line.split(/[ \n\t\v\f\r]+/)) {
    const dot = word.indexOf('.');
    if (dot < 0) continue;
    const eq = word.indexOf('=');
    if (eq >= 0 && eq < dot) continue;
    const dot2 = word.indexOf('.', dot + 1);
    if (dot2 >= 0 && (eq < 0 || dot2 < eq)) continue;
    addResult(result, word.slice(0, dot), word.slice(dot + 1), eq >= 0 ? word.slice(eq + 1) : '', log);
  }
  return result;
}

function addResult(result: KernelCmdlineConfig, modname: string, param: string, value: string, log?: LogFn): void {
  if (modname === 'modprobe' && param.startsWith('blacklist=')) {
    // names are taken as written: modprobe.blacklist=snd-pcsp never matches snd_pcsp (as kmod)
    for (const name of value.split(',')) result.blacklists.push(name);
    return;
  }
  const name = underscoresInPlace(modname);
  if (!name.valid) {
    // kmod prints the name as its in-place normalization left it
    log?.(
      LOG_ERR,
      'kcmdline_parse_result',
      `Ignoring bad option on kernel command line while parsing module name: '${name.text}'\n`,
    );
    return;
  }
  result.options.push({ modname: name.text, options: param.replaceAll('\t', ' ') });
}

/**
 * Reads `<procDir>/cmdline` (the first 4095 bytes, as libkmod). A missing file contributes nothing,
 * silently; a file that opens but cannot be read is reported as kmod does, naming /proc/cmdline.
 */
export function readKernelCmdline(procDir = '/proc', log?: LogFn): KernelCmdlineConfig {
  let text: string;
  try {
    text = readBinaryString(`${procDir}/cmdline`, KCMDLINE_MAX_BYTES);
  } catch (err) {
    // a file that cannot be opened is silently no command line; one that cannot be read is reported
    if ((err as NodeJS.ErrnoException).syscall !== 'open') {
      log?.(LOG_ERR, 'kmod_config_parse_kcmdline', `could not read from '/proc/cmdline': ${strerror(errnoOf(err))}\n`);
    }
    return { options: [], blacklists: [] };
  }
  return parseKernelCmdline(text, log);
}
