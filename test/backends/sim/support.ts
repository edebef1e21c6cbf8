// Shared by the simulated-kernel suites: the Debian 6.12 cloud-amd64 kernel as the simulator should see it.
import * as path from 'node:path';
import type { Reference } from '../../support/reference';

/** createSimBackend options for the reference tree: its release, modules, Module.symvers, config and image. */
export function debianKernel(ref: Reference): { env: NodeJS.ProcessEnv; kernelVersion: string; moduleDir: string; symvers: string; config: string; vmlinuz: string } {
  return {
    env: {},
    kernelVersion: ref.KVER,
    moduleDir: path.join(ref.KTREE, 'lib/modules', ref.KVER),
    symvers: ref.SYMVERS,
    config: path.join(ref.KTREE, 'boot', `config-${ref.KVER}`),
    vmlinuz: ref.VMLINUZ,
  };
}
