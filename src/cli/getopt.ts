// A port of glibc's getopt_long semantics, which kmod's tools use: bundled short options, attached
// and separate values, unique-prefix long options with glibc's ambiguity rule, argument permutation,
// "--", POSIXLY_CORRECT / leading '+', and glibc's exact diagnostic texts. Libraries (yargs, commander,
// util.parseArgs) each miss some of these; see docs/decisions.md.

export const NO_ARGUMENT = 0;
export const REQUIRED_ARGUMENT = 1;
export const OPTIONAL_ARGUMENT = 2;

export interface LongOption {
  name: string;
  hasArg: 0 | 1 | 2;
  /** what the option returns: usually the matching short option letter, else any unique key */
  val: string;
}

export interface ParsedOption {
  /** the short letter or the long option's val */
  opt: string;
  /** the value, or undefined when the option takes none (or an optional one was not given) */
  arg?: string;
}

export interface GetoptResult {
  options: ParsedOption[];
  /** non-option arguments in order, those after "--" included */
  args: string[];
  /** glibc's diagnostic (without trailing newline) when parsing stopped at a bad option */
  error?: string;
}

/**
 * Parses argv (without the program name) as getopt_long(argc, argv, shortopts, longopts) would, stopping
 * at the first error as kmod's tools do (they exit on '?'). `argv0` is used in messages, as glibc does.
 */
export function getoptLong(
  argv0: string,
  argv: readonly string[],
  shortopts: string,
  longopts: readonly LongOption[],
  env: NodeJS.ProcessEnv = process.env,
): GetoptResult {
  let requireOrder = false;
  let optstring = shortopts;
  if (optstring.startsWith('+')) {
    requireOrder = true;
    optstring = optstring.slice(1);
  } else if (optstring.startsWith('-')) {
    optstring = optstring.slice(1); // RETURN_IN_ORDER is not used by kmod; treated as permute
  }
  if (env.POSIXLY_CORRECT !== undefined) requireOrder = true;
  if (optstring.startsWith(':')) optstring = optstring.slice(1);

  const options: ParsedOption[] = [];
  const args: string[] = [];
  let i = 0;
  const fail = (error: string): GetoptResult => ({ options, args: args.concat(argv.slice(i)), error });

  while (i < argv.length) {
    const a = argv[i];
    if (a === '--') {
      i++;
      break;
    }
    if (a.length < 2 || a[0] !== '-') {
      if (requireOrder) break;
      args.push(a);
      i++;
      continue;
    }
    if (a[1] === '-') {
      const body = a.slice(2);
      const eq = body.indexOf('=');
      const name = eq >= 0 ? body.slice(0, eq) : body;
      let found: LongOption | undefined = longopts.find((o) => o.name === name);
      if (!found) {
        let ambiguous: LongOption[] | undefined;
        for (const o of longopts) {
          if (!o.name.startsWith(name)) continue;
          if (!found) found = o;
          else if (found.hasArg !== o.hasArg || found.val !== o.val) {
            if (!ambiguous) ambiguous = [found];
            ambiguous.push(o);
          }
        }
        if (ambiguous) {
          // glibc lists the candidates in table order
          const listed = longopts.filter((o) => ambiguous!.includes(o)).map((o) => ` '--${o.name}'`);
          i++;
          return fail(`${argv0}: option '--${body}' is ambiguous; possibilities:${listed.join('')}`);
        }
      }
      if (!found) {
        i++;
        return fail(`${argv0}: unrecognized option '--${body}'`);
      }
      i++;
      if (eq >= 0) {
        if (found.hasArg === NO_ARGUMENT) return fail(`${argv0}: option '--${found.name}' doesn't allow an argument`);
        options.push({ opt: found.val, arg: body.slice(eq + 1) });
      } else if (found.hasArg === REQUIRED_ARGUMENT) {
        if (i >= argv.length) return fail(`${argv0}: option '--${found.name}' requires an argument`);
        options.push({ opt: found.val, arg: argv[i++] });
      } else {
        options.push({ opt: found.val });
      }
      continue;
    }
    // a cluster of short options
    let j = 1;
    i++;
    while (j < a.length) {
      const c = a[j++];
      const at = c === ':' || c === ';' ? -1 : optstring.indexOf(c);
      if (at < 0) return fail(`${argv0}: invalid option -- '${c}'`);
      if (optstring[at + 1] !== ':') {
        options.push({ opt: c });
        continue;
      }
      if (optstring[at + 2] === ':') {
        options.push({ opt: c, arg: j < a.length ? a.slice(j) : undefined });
      } else if (j < a.length) {
        options.push({ opt: c, arg: a.slice(j) });
      } else if (i < argv.length) {
        options.push({ opt: c, arg: argv[i++] });
      } else {
        return fail(`${argv0}: option requires an argument -- '${c}'`);
      }
      break;
    }
  }
  return { options, args: args.concat(argv.slice(i)) };
}
