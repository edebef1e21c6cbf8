import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  configLines,
  DEFAULT_CONFIG_PATHS,
  depWords,
  emptyConfig,
  formatConfig,
  loadConfig,
  parseConfigText,
  softdepValue,
  sortedInsertIndex,
  type ModprobeConfig,
} from '../../src/resolution/config';

type Logged = [number, string, string][];
function parse(text: string, filename = 'f.conf'): { cfg: ModprobeConfig; logged: Logged } {
  const cfg = emptyConfig();
  const logged: Logged = [];
  parseConfigText(cfg, text, filename, (p, fn, m) => logged.push([p, fn, m]));
  return { cfg, logged };
}
const badLine = (file: string, n: number, cmd: string): [number, string, string] => [
  3,
  'kmod_config_parse',
  `${file} line ${n}: ignoring bad line starting with '${cmd}'\n`,
];

describe('sortedInsertIndex (cfg_files_insert_sorted)', () => {
  it('finds the place kmod\'s walk from the start finds, or -1 for a name already there', () => {
    const sorted: { nameBytes: Buffer }[] = [];
    const linearIndex = (key: Buffer): number => {
      let i = 0;
      for (; i < sorted.length; i++) {
        const c = Buffer.compare(key, sorted[i].nameBytes);
        if (c === 0) return -1;
        if (c < 0) break;
      }
      return i;
    };
    for (let i = 0; i < 2000; i++) {
      const key = Buffer.from(((i * 2654435761) % 997).toString(16) + (i % 5 === 0 ? '\u00e9' : ''));
      const at = sortedInsertIndex(sorted, key);
      expect(at).toBe(linearIndex(key));
      if (at >= 0) sorted.splice(at, 0, { nameBytes: key });
    }
  });
});

describe('configLines (freadline_wrapped)', () => {
  const lines = (t: string): [string, number][] => [...configLines(t)].map((l) => [l.line, l.lineNumber]);
  it('joins backslash-newline and numbers lines by their last physical line', () => {
    expect(lines('a \\\nb\nc\n')).toEqual([['a b', 2], ['c', 3]]);
  });
  it('keeps the character after any other backslash', () => {
    expect(lines('a\\\\b \\x\\#\n')).toEqual([['a\\b x#', 1]]);
  });
  it('handles a last line without newline, a backslash at EOF, and empty input', () => {
    expect(lines('a\nb')).toEqual([['a', 1], ['b', 2]]);
    expect(lines('a\\')).toEqual([['a', 1]]);
    expect(lines('a\n\\')).toEqual([['a', 1]]);
    expect(lines('a\n\\\n')).toEqual([['a', 1]]); // a continued empty line at EOF is no line
    expect(lines('')).toEqual([]);
    expect(lines('\n\n')).toEqual([['', 1], ['', 2]]);
  });
});

describe('depWords', () => {
  it('splits on whitespace runs, gluing a single leading blank to the first word (as kmod)', () => {
    expect(depWords('a  b\tc ')).toEqual(['a', 'b', 'c']);
    expect(depWords(' pre: a')).toEqual([' pre:', 'a']);
    expect(depWords('  pre: a')).toEqual(['pre:', 'a']);
    expect(depWords(' ')).toEqual([]);
    expect(depWords('\t\r\v\f')).toEqual([]);
  });
});

describe('parseConfigText (kmod_config_parse)', () => {
  it('parses every directive, normalizing names but not values', () => {
    const { cfg, logged } = parse(
      [
        'alias my-alias snd-hda-intel extra',
        'alias pci:v*[0-9a-f-]*-x e1000-e',
        'blacklist snd-pcsp',
        'options snd-hda-intel model=a-b\tother=1',
        'install my-mod /sbin/modprobe --ignore-install my-mod\tx',
        'remove my-mod /bin/true',
        'softdep my-mod pre: a-b post: c-d',
        'weakdep my-mod w-1 w-2',
      ].join('\n'),
    );
    expect(logged).toEqual([]);
    expect(cfg).toEqual({
      aliases: [
        { name: 'my_alias', modname: 'snd_hda_intel' },
        { name: 'pci:v*[0-9a-f-]*_x', modname: 'e1000_e' },
      ],
      blacklists: ['snd_pcsp'],
      options: [{ modname: 'snd_hda_intel', options: 'model=a-b other=1' }],
      installs: [{ modname: 'my_mod', command: '/sbin/modprobe --ignore-install my-mod\tx' }],
      removes: [{ modname: 'my_mod', command: '/bin/true' }],
      softdeps: [{ name: 'my_mod', pre: ['a-b'], post: ['c-d'], shownAs: 'pre: a-bpost: c-d' }],
      weakdeps: [{ name: 'my_mod', deps: ['w-1', 'w-2'] }],
    });
  });

  it('keeps the blanks after the first separator of a value', () => {
    expect(parse('options m   x=1  ').cfg.options).toEqual([{ modname: 'm', options: '  x=1  ' }]);
    expect(parse('options   m x=1').cfg.options).toEqual([{ modname: 'm', options: 'x=1' }]);
  });

  it('skips empty lines and lines starting with #, but reports an indented #', () => {
    const { cfg, logged } = parse('# c\n\n   \n  # indented\nblacklist b\n');
    expect(cfg.blacklists).toEqual(['b']);
    expect(logged).toEqual([badLine('f.conf', 4, '#')]);
  });

  it('reports bad lines with kmod\'s texts and line numbers, and goes on', () => {
    const { cfg, logged } = parse(
      'alias only-one\nblacklist\noptions m\ninstall m\nremove m\nsoftdep m\nweakdep m\nfrob x\n' +
        'include /x\nconfig /y\nalias a]b m\nblacklist c[\noptions \\\n  d]  x=1\nblacklist ok\n',
      '/etc/modprobe.d/t.conf',
    );
    const f = '/etc/modprobe.d/t.conf';
    expect(logged).toEqual([
      badLine(f, 1, 'alias'),
      badLine(f, 2, 'blacklist'),
      badLine(f, 3, 'options'),
      badLine(f, 4, 'install'),
      badLine(f, 5, 'remove'),
      badLine(f, 6, 'softdep'),
      badLine(f, 7, 'weakdep'),
      badLine(f, 8, 'frob'),
      [3, 'kmod_config_parse', `${f}: command include is deprecated and not parsed anymore\n`],
      [3, 'kmod_config_parse', `${f}: command config is deprecated and not parsed anymore\n`],
      badLine(f, 11, 'alias'),
      badLine(f, 12, 'blacklist'),
      badLine(f, 14, 'options'),
    ]);
    expect(cfg.blacklists).toEqual(['ok']);
  });

  it('truncates a line at a NUL byte, as C strings do', () => {
    expect(parse('options m a=1\0b=2\n\0blacklist x\n').cfg.options).toEqual([{ modname: 'm', options: 'a=1' }]);
  });

  it('handles CRLF files as kmod: the CR stays in the last word', () => {
    expect(parse('blacklist b\r\nsoftdep s pre: p\r\n').cfg).toMatchObject({ blacklists: ['b\r'], softdeps: [{ pre: ['p'] }] });
  });

  it('reads softdeps as kmod, quirks included', () => {
    const sd = (v: string) => parse(`softdep m ${v}`).cfg.softdeps[0];
    expect(sd('x y')).toEqual({ name: 'm', pre: [], post: [], shownAs: '' });
    expect(sd(' pre: lost first')).toEqual({ name: 'm', pre: [], post: [], shownAs: '' });
    expect(sd('pre: a post: b pre: c post: d')).toEqual({
      name: 'm',
      pre: ['a', 'c'],
      post: ['b', 'd'],
      shownAs: 'pre: a b cpost: b c d',
    });
    expect(sd('pre: post: p')).toEqual({ name: 'm', pre: [], post: ['p'], shownAs: 'post: p' });
  });
});

describe('formatConfig', () => {
  it('prints each kind in kmod\'s order, with its quirks', () => {
    const cfg: ModprobeConfig = {
      aliases: [{ name: 'a', modname: 'b' }],
      blacklists: ['bl'],
      options: [{ modname: 'o', options: 'x=1' }],
      installs: [{ modname: 'i', command: '/bin/true' }],
      removes: [{ modname: 'r', command: '/bin/false' }],
      softdeps: [
        { name: 's', pre: ['p1', 'p2'], post: ['q'] },
        { name: 'e', pre: [], post: [] },
      ],
      weakdeps: [
        { name: 'w', deps: ['d1', 'd2'] },
        { name: 'z', deps: [] },
      ],
    };
    expect(formatConfig(cfg)).toBe(
      'blacklist bl\ninstall i /bin/true\nremove r /bin/false\nalias a b\noptions o x=1\n' +
        'softdep s pre: p1 p2post: q\nsoftdep e \nweakdep w d1 d2\nweakdep z \n',
    );
    expect(formatConfig(emptyConfig())).toBe('');
  });

  it('shows a parsed softdep as kmod does', () => {
    const sd = parse('softdep m pre: a post: b pre: c').cfg.softdeps[0];
    expect(softdepValue(sd)).toBe('pre: a b cpost: b');
  });
});

describe('loadConfig', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-config-'));
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const noProc = path.join(tmp, 'no-proc');
  const write = (p: string, text: string): void => {
    fs.mkdirSync(path.dirname(path.join(tmp, p)), { recursive: true });
    fs.writeFileSync(path.join(tmp, p), text);
  };
  const load = (paths: string[], moduleDir = path.join(tmp, 'nomods'), procDir = noProc) => {
    const logged: Logged = [];
    const cfg = loadConfig({ configPaths: paths.map((p) => path.join(tmp, p)), moduleDir, procDir, log: (a, b, c) => logged.push([a, b, c]) });
    return { cfg, logged };
  };

  it('uses kmod 34.2\'s default directories', () => {
    expect(DEFAULT_CONFIG_PATHS).toEqual(['/etc/modprobe.d', '/run/modprobe.d', '/usr/local/lib/modprobe.d', '/usr/lib/modprobe.d', '/lib/modprobe.d']);
  });

  it('merges directories by file name, earlier directories winning, parsed in name order', () => {
    write('hi/b.conf', 'blacklist hi-b\n');
    write('lo/b.conf', 'blacklist lo-b\n');
    write('lo/a.conf', 'blacklist lo-a\n');
    write('hi/c.conf', 'blacklist hi-c\n');
    expect(load(['hi', 'lo']).cfg.blacklists).toEqual(['lo_a', 'hi_b', 'hi_c']);
    expect(load(['lo', 'hi']).cfg.blacklists).toEqual(['lo_a', 'lo_b', 'hi_c']);
  });

  it('sorts names bytewise', () => {
    write('sort/B.conf', 'blacklist upper\n');
    write('sort/a.conf', 'blacklist lower\n');
    write('sort/_.conf', 'blacklist underscore\n');
    expect(load(['sort']).cfg.blacklists).toEqual(['upper', 'underscore', 'lower']);
  });

  it('takes only visible *.conf regular files, reporting directories and dangling links', () => {
    write('filt/.hidden.conf', 'blacklist hidden\n');
    write('filt/readme', 'blacklist readme\n');
    write('filt/x.conf.bak', 'blacklist bak\n');
    write('filt/ok.conf', 'blacklist ok\n');
    write('filt/sub.conf/inner.conf', 'blacklist inner\n');
    fs.symlinkSync('nowhere', path.join(tmp, 'filt/dangling.conf'));
    const { cfg, logged } = load(['filt']);
    expect(cfg.blacklists).toEqual(['ok']);
    const d = path.join(tmp, 'filt');
    expect(logged.sort()).toEqual(
      [
        [3, 'conf_files_filter_out', `Cannot stat directory entry: ${d}/dangling.conf\n`],
        [3, 'conf_files_filter_out', `Directories inside directories are not supported: ${d}/sub.conf\n`],
      ].sort(),
    );
  });

  it('parses a path given as a file whatever its name, and names it as given in messages', () => {
    write('single/standalone', 'bogus\n');
    const { logged } = load(['single/standalone']);
    expect(logged).toEqual([badLine(path.join(tmp, 'single/standalone'), 1, 'bogus')]);
  });

  it('skips missing paths silently and unopenable files silently', async () => {
    write('sock/a.conf', 'blacklist a\n');
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(path.join(tmp, 'sock/s.conf'), resolve));
    try {
      const { cfg, logged } = load(['missing', 'sock']);
      expect(cfg.blacklists).toEqual(['a']);
      expect(logged).toEqual([]);
    } finally {
      server.close();
    }
  });

  it('merges thousands of files by name, bytewise, the first directory keeping a name (binary search, not kmod\'s quadratic walk)', () => {
    const names = Array.from({ length: 3000 }, (_, i) => `${((i * 7919) % 3000).toString(36)}\xe9${i % 3}.conf`);
    for (const [i, n] of names.entries()) write(`many1/${n}`, `alias one${i} m\n`);
    for (const [i, n] of names.slice(0, 1000).entries()) write(`many2/${n}`, `alias hidden${i} m\n`);
    write('many2/~last.conf', 'alias last m\n');
    const { cfg } = load(['many1', 'many2']);
    const expected = [...names].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    expect(cfg.aliases.map((a) => a.name)).toEqual([...expected.map((n) => `one${names.indexOf(n)}`), 'last']);
  });

  it('reads modules.softdep and modules.weakdep of the module directory, sorted among the files', () => {
    write('mods/modules.softdep', 'softdep m pre: x\n');
    write('mods/modules.weakdep', 'weakdep m w\nbad\n');
    write('conf/a.conf', 'softdep a pre: y\n');
    write('conf/z.conf', 'softdep z pre: y\n');
    write('conf/modules.softdep.conf', 'softdep n pre: y\n');
    const { cfg, logged } = load(['conf'], path.join(tmp, 'mods'));
    expect(cfg.softdeps.map((s) => s.name)).toEqual(['a', 'm', 'n', 'z']);
    expect(cfg.weakdeps).toEqual([{ name: 'm', deps: ['w'] }]);
    expect(logged).toEqual([badLine(`${path.join(tmp, 'mods')}/modules.weakdep`, 2, 'bad')]);
  });

  it('measures names against PATH_MAX in bytes: a binary string\'s bytes above 0x7f count once', () => {
    // 3000 bytes of 0xe9 under the temporary directory: within PATH_MAX, though twice that in UTF-8
    const moduleDir = `${tmp}/${'\xe9'.repeat(3000)}`;
    expect(load([], moduleDir).logged).toEqual([]);
    const over = `${tmp}/${'\xe9'.repeat(4096 - tmp.length - 'modules.softdep'.length - 2)}`;
    expect(load([], over).logged).toEqual(
      ['softdep', 'weakdep'].map((k) => [3, 'kmod_config_new', `Error parsing ${over}/modules.${k}: path too long\n`]),
    );
  });

  it('adds the kernel command line last', () => {
    write('proc/cmdline', 'quiet m.a=1 modprobe.blacklist=k-1\n');
    write('cl/a.conf', 'options m b=2\nblacklist f\n');
    const { cfg } = load(['cl'], path.join(tmp, 'nomods'), path.join(tmp, 'proc'));
    expect(cfg.options).toEqual([{ modname: 'm', options: 'b=2' }, { modname: 'm', options: 'a=1' }]);
    expect(cfg.blacklists).toEqual(['f', 'k-1']);
  });

  it('refuses a configuration file that never ends (-C /dev/zero) with an error naming it, where kmod reads for ever', () => {
    const logged: [number, string, string][] = [];
    const cfg = loadConfig({ configPaths: ['/dev/zero', path.join(tmp, 'cl')], moduleDir: path.join(tmp, 'nomods'), procDir: noProc, log: (a, b, c) => logged.push([a, b, c]) });
    expect(logged).toEqual([[3, 'kmod_config_new', 'Error parsing /dev/zero: File too large\n']]);
    // the other files are still read
    expect(cfg.blacklists).toEqual(['f']);
  });

  it('gives an empty configuration for /dev/null and empty files', () => {
    write('empty/e.conf', '');
    expect(formatConfig(load(['empty']).cfg)).toBe('');
    expect(formatConfig(loadConfig({ configPaths: ['/dev/null'], moduleDir: path.join(tmp, 'nomods'), procDir: noProc }))).toBe('');
  });
});
