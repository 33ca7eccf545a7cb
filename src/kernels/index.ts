// The single dispatch point of the compute layer: createKernels picks the backend once, at
// start-up, and everything above kernels/ receives the resulting Kernels object.
//   'wasm' (default): AssemblyScript SIMD (relaxed SIMD when the runtime validates it) on a pool of
//                     `threads` threads (default: os.availableParallelism()).
//   'ref':            plain TypeScript, single thread: the oracle, for debugging (--kernels ref).
// When the wasm backend cannot run here (no WebAssembly SIMD, module not built), the default falls
// back to 'ref' and says why in `fallbackReason`; asking for 'wasm' explicitly throws instead.

import { availableParallelism } from 'node:os';
import { ConfigError, UnsupportedError } from '../errors.js';
import type { KernelBackendName, Kernels } from './kernels.js';
import { RefKernels } from './ref/index.js';
import { WasmKernels } from './wasm/backend.js';
import { loadKernelModule, type WasmPreference } from './wasm/module.js';

export type { Kernels, KernelBackendName, AttentionDims } from './kernels.js';

export interface CreateKernelsOptions {
  /** Backend; default 'wasm' (falling back to 'ref' when WebAssembly SIMD is unavailable). */
  readonly backend?: KernelBackendName;
  /** Threads of the wasm backend, including the calling thread; default os.availableParallelism(). */
  readonly threads?: number;
  /**
   * Wasm build: 'auto' (default: the fastest one exact here, by the start-up probe), or one by name:
   * 'relaxed-fused' (fused int8 dot, where exact), 'relaxed' (two-step int8 dot), 'simd' (SIMD128).
   */
  readonly wasmVariant?: WasmPreference;
  /** Byte budget of 4-bit weights kept resident in wasm memory (default 2 GiB); more streams. */
  readonly residentWeightBytes?: number;
  /**
   * Prompt processing (4-bit X·Wᵀ at M > 8) with int8 activations: faster, not exact (error in
   * src/kernels/ref/matmul-int8.ts). Every forward with M > 8 takes it, training included: it is
   * meant for generation. Default false. Both backends implement it.
   */
  readonly int8Activations?: boolean;
  /**
   * The frozen matmuls of training (4-bit weights at 16 rows and more; an f32 head through
   * packInt16), forward X·Wᵀ and input gradient dY·W, with both operands quantized to 13-bit
   * integers per 64-long block (src/kernels/ref/matmul-int16.ts): ~1.3-1.5x the exact f32 GEMM,
   * error below bf16 compute's. The default of `qlora train` and `train()`. Default false here;
   * exclusive with int8Activations. Both backends implement it.
   */
  readonly int16Activations?: boolean;
}

export interface CreatedKernels extends Kernels {
  /** Why the default wasm backend was not used, when it was not. */
  readonly fallbackReason?: string;
}

export async function createKernels(opts: CreateKernelsOptions = {}): Promise<CreatedKernels> {
  const backend = opts.backend ?? 'wasm';
  if (backend !== 'wasm' && backend !== 'ref') {
    throw new ConfigError('unknown kernel backend', { field: 'backend', expected: "'wasm' | 'ref'", got: String(backend) });
  }
  const threads = opts.threads ?? availableParallelism();
  if (!Number.isInteger(threads) || threads < 1) {
    throw new ConfigError('threads must be a positive integer', { field: 'threads', expected: 'integer >= 1', got: String(threads) });
  }
  if (opts.int8Activations === true && opts.int16Activations === true) {
    throw new ConfigError('int8Activations and int16Activations exclude each other', { field: 'int16Activations', expected: 'at most one of the two', got: 'both true' });
  }
  const arithmetic = { int8Activations: opts.int8Activations, int16Activations: opts.int16Activations };
  if (backend === 'ref') return new RefKernels(arithmetic);
  const mod = loadKernelModule(opts.wasmVariant ?? 'auto');
  if (!('variant' in mod)) {
    if (opts.backend === 'wasm') {
      throw new UnsupportedError('the wasm kernel backend cannot run here', { got: mod.reason, hint: 'use the ref backend (--kernels ref)' });
    }
    return Object.assign(new RefKernels(arithmetic), { fallbackReason: mod.reason });
  }
  const wasmOpts = { threads, residentWeightBytes: opts.residentWeightBytes, ...arithmetic };
  try {
    return await WasmKernels.create(mod, wasmOpts);
  } catch (err) {
    // The relaxed build validated here but a worker could not run it: use plain SIMD128.
    const simd = mod.variant !== 'simd' ? loadKernelModule('simd') : null;
    if (simd === null || !('variant' in simd)) throw err;
    return WasmKernels.create(simd, wasmOpts);
  }
}
