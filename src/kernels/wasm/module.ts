// Finds, compiles and validates the kernel module (dist/wasm/kernels-{relaxed-fused,relaxed,simd}.wasm,
// built by scripts/build-wasm.mjs) once per process, and picks the variant: relaxed SIMD with the
// fused int8 dot (i32x4.relaxed_dot_i8x16_i7x16_add_s) where the start-up probe (dot-probe.ts)
// finds that instruction exact and faster than the split form, else relaxed SIMD with the two-step
// dot, else plain SIMD128, else none (the caller falls back to the ref backend and says why).
// Not here: the probes themselves (dot-probe.ts), memory, threads, kernels.

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fusedDotProbe, relaxedSimdAvailable, type FusedDotProbe } from './dot-probe.js';
import { wasmApi, type WasmModule } from './wasm-api.js';

export type WasmVariant = 'relaxed-fused' | 'relaxed' | 'simd';
/** What a caller asks for: 'auto' = the probe's choice; a variant = that build or the next one down where it cannot run. */
export type WasmPreference = 'auto' | WasmVariant;

/** One line per build and the probe's findings, for Kernels.description. */
export function variantSummary(variant: WasmVariant): string {
  if (variant === 'simd') return 'SIMD128';
  const p = fusedDotHere();
  const found = !p.exact ? 'fused int8 dot inexact here' : p.speedup === null ? 'fused int8 dot not timed' : `fused int8 dot ${p.speedup.toFixed(2)}x the split form here`;
  return `relaxed SIMD, ${variant === 'relaxed-fused' ? 'fused' : 'two-step'} int8 dot; ${found}`;
}

/** The fused-dot probe over this package's dist/wasm (once per process). */
export function fusedDotHere(): FusedDotProbe {
  return fusedDotProbe(wasmDir());
}

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

const cache = new Map<string, ModuleResult>();

/**
 * The compiled kernel module. prefer: 'auto' (default) takes the fastest build this runtime runs
 * exactly (the fused build only where the probe says use); 'relaxed-fused' takes the fused build
 * wherever it is exact, 'relaxed' the two-step dot, 'simd' the SIMD128 build (benchmarks and tests
 * compare them).
 */
export function loadKernelModule(prefer: WasmPreference = 'auto'): ModuleResult {
  const hit = cache.get(prefer);
  if (hit !== undefined) return hit;
  const result = load(prefer);
  cache.set(prefer, result);
  return result;
}

function load(prefer: WasmPreference): ModuleResult {
  if (wasmApi === null) return { module: null, reason: 'WebAssembly is not available in this runtime' };
  const dir = wasmDir();
  if (dir === null) return { module: null, reason: 'dist/wasm not found above the kernels module (run `npm run build:wasm`)' };
  const all: WasmVariant[] = ['relaxed-fused', 'relaxed', 'simd'];
  const order = all.slice(all.indexOf(prefer === 'auto' ? 'relaxed-fused' : prefer));
  const reasons: string[] = [];
  for (const variant of order) {
    const path = join(dir, `kernels-${variant}.wasm`);
    if (!existsSync(path)) {
      reasons.push(`${path} missing`);
      continue;
    }
    // Asked for by name (benchmarks, tests), the fused build needs only to be exact.
    const probe = variant === 'relaxed-fused' ? fusedDotHere() : null;
    if (probe !== null && (!probe.exact || (prefer === 'auto' && !probe.use))) {
      reasons.push(probe.exact ? 'fused int8 dot not faster than the split form here' : 'fused int8 dot not exact in this runtime');
      continue;
    }
    if (variant !== 'simd' && !relaxedSimdAvailable()) {
      reasons.push(`${variant} build not supported by this runtime`);
      continue;
    }
    const bytes = readFileSync(path);
    if (!wasmApi.validate(bytes)) {
      reasons.push(`${variant} build not supported by this runtime`);
      continue;
    }
    return { module: new wasmApi.Module(bytes), variant, path };
  }
  return { module: null, reason: reasons.join('; ') };
}
