// kmodts' public library API. The CLI (src/cli/) uses nothing that is not exported from here.
export * from './errors';
export { strerror } from './errno';
export * from './context';
export * from './backend';
export * from './config';
export { modnameNormalize, modnameFromPath, aliasNormalize, underscores } from './modname';
export { parseKernelCmdline, readKernelCmdline, type KernelCmdlineConfig } from './kcmdline';
