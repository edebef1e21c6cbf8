// Synchronous instantiation of the two Emscripten-built decoders (libzstd.ts, liblzma.ts): their
// packaged JavaScript glue only loads asynchronously, which neither a synchronous API nor a CLI start
// can afford, and they need nothing from it but a heap that can grow.

// (the project's TypeScript lib has no WebAssembly types: the little used here, declared)
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
}
const Wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

/**
 * emscripten_resize_heap for `memory()`: grows to at least `requested` bytes (by 20% at least, as
 * Emscripten does), never past `max`; 1 on success, 0 when the allocation must fail.
 */
export function heapResizer(memory: () => WasmMemory, max: number): (requested: number) => number {
  return (requested: number) => {
    const want = requested >>> 0;
    const have = memory().buffer.byteLength;
    if (want > max) return 0;
    try {
      memory().grow(Math.ceil((Math.min(max, Math.max(want, Math.floor(have * 1.2))) - have) / 65536));
      return 1;
    } catch {
      return 0;
    }
  };
}

/** The exports of the wasm file `bytes`, its imports being `imports` (module "a", by minified name). */
export function instantiate<T>(bytes: Uint8Array, imports: Record<string, (...args: number[]) => number | undefined>): T {
  return new Wasm.Instance(new Wasm.Module(bytes), { a: imports }).exports as T;
}
