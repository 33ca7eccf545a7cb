// The slice of the WebAssembly JS API the wasm backend uses, typed locally: the project compiles
// with lib ES2022 and no DOM lib, which is where TypeScript declares WebAssembly. Node provides
// the global at run time; this file only gives it types (and does not declare a global).

/** A compiled module (cloneable to worker threads). */
export interface WasmModule {
  readonly __brand?: 'WebAssembly.Module';
}

export interface WasmMemory {
  readonly buffer: ArrayBufferLike;
  grow(pages: number): number;
}

export interface WasmInstance {
  readonly exports: Record<string, unknown>;
}

interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (module: WasmModule, imports: Record<string, Record<string, unknown>>) => WasmInstance;
  Memory: new (desc: { initial: number; maximum?: number; shared?: boolean }) => WasmMemory;
}

/** The runtime's WebAssembly object, or null when it has none. */
export const wasmApi: WasmApi | null = ((globalThis as Record<string, unknown>).WebAssembly as WasmApi | undefined) ?? null;
