// An in-memory kernel for library tests: initstate/refcnt/holders per module, recorded system calls.
import type { Backend, InitState, ProcModule } from '../../src/loading/backend';
import { KmodError } from '../../src/errors';

export interface FakeModuleState {
  /** raw /sys/module/<name>/initstate contents; undefined: directory without initstate */
  initstate?: string;
  refcnt?: number;
  holders?: string[];
}

export class FakeBackend implements Backend {
  readonly kind = 'sim' as const;
  readonly calls: string[] = [];
  /** errno to fail finit_module with, per module path */
  failInsert = new Map<string, number>();

  constructor(readonly modules: Record<string, FakeModuleState> = {}) {}

  finitModule(path: string, params: string, flags: number): void {
    this.calls.push(`finit ${path} [${params}] ${flags}`);
    const e = this.failInsert.get(path);
    if (e !== undefined) throw new KmodError(e);
  }
  initModule(_image: Uint8Array, params: string): void {
    this.calls.push(`init [${params}]`);
  }
  deleteModule(name: string, flags: number): void {
    this.calls.push(`delete ${name} ${flags}`);
  }
  initstate(name: string): InitState | undefined {
    const m = this.modules[name];
    if (m === undefined) return undefined;
    const v = m.initstate?.trim();
    return v === 'live' || v === 'coming' || v === 'going' ? v : 'builtin';
  }
  refcnt(name: string): number | undefined {
    return this.modules[name]?.refcnt;
  }
  holders(name: string): string[] {
    return this.modules[name]?.holders ?? [];
  }
  procModules(): ProcModule[] | undefined {
    return [];
  }
  compression(): string | undefined {
    return undefined;
  }
  readModuleAttr(name: string, attr: string): string | undefined {
    if (attr === 'initstate') return this.modules[name]?.initstate;
    return undefined;
  }
}
