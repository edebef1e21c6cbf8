import { strerror, errnoOf } from './errno';

/**
 * Every failure the library reports is a KmodError: the errno kmod would see (positive, as in errno.h),
 * the file concerned when there is one, and a message that names both. The CLI maps these to kmod's
 * message texts and exit codes; the library itself never prints and never exits.
 */
export class KmodError extends Error {
  readonly errno: number;
  readonly file?: string;
  constructor(errno: number, message?: string, options?: { file?: string; cause?: unknown }) {
    super(message ?? strerror(errno), options?.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = 'KmodError';
    this.errno = errno;
    this.file = options?.file;
  }
  /** strerror() of the errno: what kmod prints through %m. */
  get reason(): string {
    return strerror(this.errno);
  }
}

/** A file whose contents are malformed (ELF, index, compressed stream, state file, ...). */
export class FormatError extends KmodError {
  constructor(file: string, what: string, errno = 22 /* EINVAL */) {
    super(errno, `${file}: ${what}`, { file });
    this.name = 'FormatError';
  }
}

/**
 * A file the simulated kernel is described by (its Module.symvers, configuration, kernel image, signing
 * keys or module directory), named explicitly, cannot be read. Not a KmodError: no module failed to
 * load, the simulated kernel itself cannot be built, so the command fails as a whole.
 */
export class SimKernelModelError extends Error {
  readonly file: string;
  /** the option that named the file (symvers, config, vmlinuz, keys, moduleDir) */
  readonly option: string;
  constructor(option: string, what: string, file: string, reason: string, options?: { cause?: unknown }) {
    super(`the simulated kernel's ${what} ${file}: ${reason}`, options?.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = 'SimKernelModelError';
    this.file = file;
    this.option = option;
  }
}

/** A name kmod cannot look up (alias_normalize's -EINVAL: unbalanced brackets). */
export class InvalidAliasError extends KmodError {
  constructor(readonly alias: string) {
    super(22 /* EINVAL */, `invalid alias: ${alias}`);
    this.name = 'InvalidAliasError';
  }
}

/** Wraps a Node.js system error (fs) into a KmodError with the same errno. */
export function fromSystemError(err: unknown, file?: string): KmodError {
  if (err instanceof KmodError) return err;
  const errno = errnoOf(err);
  return new KmodError(errno, file ? `${file}: ${strerror(errno)}` : strerror(errno), { file, cause: err });
}

/**
 * The simulated kernel's state directory is damaged (a journal line that is not a valid record) or
 * unusable (cannot be created, read or written). Deliberately not a KmodError: it is no failure of the
 * operation asked for (a tool must not report it as "could not insert"), and the command fails as a
 * whole, leaving the state as it was.
 */
export class SimStateError extends Error {
  readonly file: string;
  /** 1-based line of the damaged record, when the damage is in a line */
  readonly line?: number;
  constructor(file: string, what: string, line?: number, options?: { cause?: unknown }) {
    super(line !== undefined ? `${file}:${line}: ${what}` : `${file}: ${what}`, options?.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = 'SimStateError';
    this.file = file;
    this.line = line;
  }
}
