// The C locale's character classes (<ctype.h> with no setlocale), over byte values: what glibc's
// fnmatch and regcomp mean by [:alpha:] and the others in kmod, which never sets a locale.

const CLASSES: Readonly<Record<string, (c: number) => boolean>> = {
  alnum: (c) => isAlpha(c) || isDigit(c),
  alpha: (c) => isAlpha(c),
  blank: (c) => c === 0x20 || c === 0x09,
  cntrl: (c) => c < 0x20 || c === 0x7f,
  digit: (c) => isDigit(c),
  graph: (c) => c > 0x20 && c < 0x7f,
  lower: (c) => c >= 0x61 && c <= 0x7a,
  print: (c) => c >= 0x20 && c < 0x7f,
  punct: (c) => c > 0x20 && c < 0x7f && !isAlpha(c) && !isDigit(c),
  space: (c) => c === 0x20 || (c >= 0x09 && c <= 0x0d),
  upper: (c) => c >= 0x41 && c <= 0x5a,
  xdigit: (c) => isDigit(c) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66),
};

function isAlpha(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}
function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/** the test of a class named in `[:name:]`, or undefined for a name the C locale does not define */
export function cLocaleClass(name: string): ((c: number) => boolean) | undefined {
  return Object.hasOwn(CLASSES, name) ? CLASSES[name] : undefined;
}

/** a byte of a word for \w, \b, \< and \>: alphanumeric or '_' */
export function isWordByte(c: number): boolean {
  return isAlpha(c) || isDigit(c) || c === 0x5f;
}
