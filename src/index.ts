// kmodts' public library API. The CLI (src/cli/) uses nothing that is not exported from here.
export * from './errors';
export * from './errno';
export * from './resolution/context';
export * from './loading/backend';
export * from './resolution/config';
export { modnameNormalize, modnameFromPath, pathEndsWithKmodExt, aliasNormalize, underscores, underscoresInPlace } from './names/modname';
export { parseKernelCmdline, readKernelCmdline, type KernelCmdlineConfig } from './resolution/kcmdline';
// module files: decompression, ELF, module views, signatures (issue 3)
export { detectCompression, decompress, DecompressError, type Compression } from './file/decompress';
export * from './file/elf';
export * from './file/module-elf';
export { moduleSignature, hexString, SIG_MAGIC, type SignatureInfo } from './file/signature';
export { readStrLong } from './file/read-str-long';
export { openModuleFile, moduleFileFromBytes, type ModuleFile, type OpenModuleOptions, type Decoded } from './file/module-file';
export { PartsPrefetcher } from './file/parts-prefetch';
export { regularFileSizes } from './file/regular-files';
export { binaryString, childText, childEnv, processArgs, processEnv, currentDirectory, PATH_MAX } from './file/binary-os';
export { fileInfo, builtinInfo, moduleInfo, moduleParams, type InfoList, type ModuleParam } from './resolution/modinfo';
// indexes, resolution, probing and removal (issue 2: modprobe)
export { fnmatch } from './names/fnmatch';
export * from './indexes/format';
export { BinaryIndex, IndexHeaderError, addValue, type IndexValue, type ModuleIndex } from './indexes/binary';
export { TextIndex, openTextIndex } from './indexes/text';
export * from './resolution/module';
export * from './resolution/probe';
export { removeModule, type RemoveOptions } from './resolution/remove';
// loading into and removing from a kernel: libkmod's insert/remove logic over a Backend (issue 5)
export * from './loading/insert';
export { NativeBackend, NativeHelperMissing, parseProcModules, rawDirEntries, type NativeBackendOptions } from './backends/native';
// dependency plans and "would it load?" checks (issue 7)
export { probePlan, formatPlan, type ProbePlan, type PlanStep, type PlanReason, type PlanOptions } from './resolution/plan';
export {
  openCheckSession, defaultKernelVersion, isModuleFileTarget,
  type CheckKernel, type CheckSession, type CheckResult, type CheckFailure, type CheckProblem, type CheckReason,
} from './backends/sim/check';
// kernels to load into: the simulated one (src/backends/sim); the native one is the default of Context
export { createSimBackend, SimBackend, type SimBackendOptions, type KernelLogRecord } from './backends/sim';
export { simOptionsFromEnv, resolveKernelSpec, defaultStateDir, type KernelSpec, type SimKernelOptions, type ModuleRecord } from './backends/sim';
// depmod: writing the module indexes (issue 4)
export { depmod, DepmodFatal, DepmodFailed, isVersionNumber, DEFAULT_DEPMOD_CONFIG_PATHS, type DepmodOptions, type DepmodConfig, type DepmodLog } from './depmod/depmod';
export { IndexBuilder, IndexCharacterError } from './indexes/writer';
export * from './indexes/static-nodes';
