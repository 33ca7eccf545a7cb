// Finds, compiles and validates the kernel module (dist/wasm/kernels-{relaxed,simd}.wasm, built by
// scripts/build-wasm.mjs) once per process, and picks the variant: relaxed SIMD (FMA, relaxed
// swizzle) when the runtime validates it, else plain SIMD128, else none (the caller falls back to
// the ref backend and says why).
// Node 20's V8 ships relaxed SIMD behind --experimental-wasm-relaxed-simd; the flag is turned on
// here with v8.setFlagsFromString before anything is compiled. V8 flags are process-wide, so the
// pool's workers (which receive the compiled WebAssembly.Module) run the same code.
// Not here: memory, threads, kernels.

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import { wasmApi, type WasmModule } from './wasm-api.js';

export type WasmVariant = 'relaxed' | 'simd';

export interface KernelModule {
  readonly module: WasmModule;
  readonly variant: WasmVariant;
  readonly path: string;
}

export type ModuleResult = KernelModule | { readonly module: null; readonly reason: string };

/** Walks up from this file to the package root (the folder with package.json) and into dist/wasm. */
function wasmDir(): string | null {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) {
      const d = join(dir, 'dist', 'wasm');
      return existsSync(d) ? d : null;
    }
    const up = dirname(dir);
    if (up === dir) return null;
    dir = up;
  }
}

let relaxedFlagTried = false;

function enableRelaxedSimd(): void {
  if (relaxedFlagTried) return;
  relaxedFlagTried = true;
  try {
    v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
  } catch {
    // Newer V8 may drop the flag once the feature ships; validation below decides.
  }
}

const cache = new Map<string, ModuleResult>();

/**
 * The compiled kernel module. prefer: 'relaxed' (default) takes relaxed SIMD when valid, 'simd'
 * forces the SIMD128 build (benchmarks compare the two).
 */
export function loadKernelModule(prefer: WasmVariant = 'relaxed'): ModuleResult {
  const hit = cache.get(prefer);
  if (hit !== undefined) return hit;
  const result = load(prefer);
  cache.set(prefer, result);
  return result;
}

function load(prefer: WasmVariant): ModuleResult {
  if (wasmApi === null) return { module: null, reason: 'WebAssembly is not available in this runtime' };
  const dir = wasmDir();
  if (dir === null) return { module: null, reason: 'dist/wasm not found above the kernels module (run `npm run build:wasm`)' };
  const order: WasmVariant[] = prefer === 'relaxed' ? ['relaxed', 'simd'] : ['simd'];
  const reasons: string[] = [];
  for (const variant of order) {
    const path = join(dir, `kernels-${variant}.wasm`);
    if (!existsSync(path)) {
      reasons.push(`${path} missing`);
      continue;
    }
    if (variant === 'relaxed') enableRelaxedSimd();
    const bytes = readFileSync(path);
    if (!wasmApi.validate(bytes)) {
      reasons.push(`${variant} build not supported by this runtime`);
      continue;
    }
    return { module: new wasmApi.Module(bytes), variant, path };
  }
  return { module: null, reason: reasons.join('; ') };
}
