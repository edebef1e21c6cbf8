// kmodts' public library API. The CLI (src/cli/) uses nothing that is not exported from here.
export * from './errors';
export * from './errno';
export * from './context';
export * from './backend';
export * from './config';
export { modnameNormalize, modnameFromPath, aliasNormalize, underscores, underscoresInPlace } from './modname';
export { parseKernelCmdline, readKernelCmdline, type KernelCmdlineConfig } from './kcmdline';
// module files: decompression, ELF, module views, signatures (issue 3)
export { detectCompression, decompress, DecompressError, type Compression } from './file/decompress';
export * from './file/elf';
export * from './file/module-elf';
export { moduleSignature, hexString, SIG_MAGIC, type SignatureInfo } from './file/signature';
export { openModuleFile, moduleFileFromBytes, type ModuleFile, type OpenModuleOptions, type Decoded } from './file/module-file';
export { ImagePrefetcher } from './file/prefetch';
export { xxh64Low32 } from './file/xxhash';
export { fileInfo, builtinInfo, moduleInfo, moduleParams, type InfoList, type ModuleParam } from './modinfo';
// indexes, resolution, probing and removal (issue 2: modprobe)
export { fnmatch } from './fnmatch';
export * from './indexes/format';
export { BinaryIndex, IndexHeaderError, addValue, type IndexValue, type ModuleIndex } from './indexes/binary';
export { TextIndex, openTextIndex } from './indexes/text';
export * from './module';
export * from './probe';
export { removeModule, type RemoveOptions } from './remove';
// loading into and removing from a kernel: libkmod's insert/remove logic over a Backend (issue 5)
export * from './insert';
export { NativeBackend, NativeHelperMissing, parseProcModules, rawDirEntries, type NativeBackendOptions } from './backends/native';
// dependency plans and "would it load?" checks (issue 7)
export { probePlan, formatPlan, type ProbePlan, type PlanStep, type PlanReason, type PlanOptions } from './plan';
export {
  openCheckSession, defaultKernelVersion, isModuleFileTarget,
  type CheckKernel, type CheckSession, type CheckResult, type CheckFailure, type CheckProblem, type CheckReason,
} from './check';
// kernels to load into: the simulated one (src/backends/sim); the native one is the default of Context
export { createSimBackend, SimBackend, type SimBackendOptions, type KernelLogRecord } from './backends/sim';
export { simOptionsFromEnv, resolveKernelSpec, defaultStateDir, type KernelSpec, type SimKernelOptions, type ModuleRecord } from './backends/sim';
// depmod: writing the module indexes (issue 4)
export { depmod, DepmodFatal, DepmodFailed, isVersionNumber, DEFAULT_DEPMOD_CONFIG_PATHS, type DepmodOptions, type DepmodConfig, type DepmodLog } from './depmod/depmod';
export { IndexBuilder, IndexCharacterError } from './indexes/writer';
export * from './static-nodes';
