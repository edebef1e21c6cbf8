// A tree of n modules c0..c(n-1) with no dependencies, chained by soft dependencies (c_i's pre or post
// softdep is c_{i+1}), for the walks kmod makes by recursion and kmodts on an explicit stack.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { IndexBuilder } from '../../src/indexes/writer';
import { emptyConfig } from '../../src/resolution/config';
import { Context } from '../../src/resolution/context';
import type { FakeBackend } from '../support/fake-backend';

export interface SoftdepChain {
  /** the module names in chain order, c0 first */
  chain: string[];
  /** a context whose configuration chains the modules by `kind` softdeps */
  context(kind: 'pre' | 'post', backend: FakeBackend): Context;
  /** removes the tree */
  remove(): void;
}

export function softdepChain(n: number): SoftdepChain {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kmodts-softdep-chain-'));
  const kdir = path.join(dir, 'lib/modules/1.0');
  fs.mkdirSync(kdir, { recursive: true });
  const dep = new IndexBuilder();
  for (let i = 0; i < n; i++) dep.insert(`c${i}`, `kernel/c${i}.ko:`, i);
  fs.writeFileSync(path.join(kdir, 'modules.dep.bin'), dep.serialize());
  return {
    chain: Array.from({ length: n }, (_, k) => `c${k}`),
    context(kind, backend) {
      const softdeps = Array.from({ length: n - 1 }, (_, i) => ({ name: `c${i}`, pre: kind === 'pre' ? [`c${i + 1}`] : [], post: kind === 'post' ? [`c${i + 1}`] : [] }));
      return new Context({ root: dir, kernelVersion: '1.0', config: { ...emptyConfig(), softdeps }, backend });
    },
    remove: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}
