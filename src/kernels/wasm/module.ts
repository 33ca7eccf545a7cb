// Finds, compiles and validates the kernel module (dist/wasm/kernels-{relaxed-fused,relaxed,simd}.wasm,
// built by scripts/build-wasm.mjs) once per process, and picks the variant: relaxed SIMD with the
// fused int8 dot (i32x4.relaxed_dot_i8x16_i7x16_add_s) where a start-up probe finds that
// instruction exact, else relaxed SIMD with the two-step dot, else plain SIMD128, else none (the
// caller falls back to the ref backend and says why).
// Node 20's V8 ships relaxed SIMD behind --experimental-wasm-relaxed-simd; newer V8 ships it on and
// prints "unrecognized flag" for the old name, so the flag is set (v8.setFlagsFromString) only when
// a tiny relaxed-SIMD module fails to validate without it. V8 flags are process-wide, so the pool's
// workers (which receive the compiled WebAssembly.Module) run the same code.
// The fused dot: Node 20's baseline tier (Liftoff) returns 2·dot with the accumulator dropped,
// measured on V8 11.3; the probe runs it (in the baseline tier, where a fresh module starts) on
// known inputs and takes the fused build only when every result is exact.
// Not here: memory, threads, kernels.

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import { wasmApi, type WasmModule } from './wasm-api.js';

export type WasmVariant = 'relaxed-fused' | 'relaxed' | 'simd';

/** One line per build, for Kernels.description. */
export const VARIANT_SUMMARY: Readonly<Record<WasmVariant, string>> = {
  'relaxed-fused': 'relaxed SIMD, fused int8 dot: probe exact',
  relaxed: 'relaxed SIMD, two-step int8 dot',
  simd: 'SIMD128',
};

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

/**
 * (func (param i32 i32 i32) (result i32)) exported as "d": lane 0 of
 * i32x4.relaxed_dot_i8x16_i7x16_add_s(splat a, splat b, splat c). Validates only where relaxed
 * SIMD is on; run, it is the fused-dot probe.
 */
const FUSED_DOT_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  0x01, 0x08, 0x01, 0x60, 0x03, 0x7f, 0x7f, 0x7f, 0x01, 0x7f, // type section
  0x03, 0x02, 0x01, 0x00, // function section
  0x07, 0x05, 0x01, 0x01, 0x64, 0x00, 0x00, // export "d"
  0x0a, 0x16, 0x01, 0x14, 0x00,
  0x20, 0x00, 0xfd, 0x11, // local.get 0, i32x4.splat
  0x20, 0x01, 0xfd, 0x11,
  0x20, 0x02, 0xfd, 0x11,
  0xfd, 0x93, 0x02, // i32x4.relaxed_dot_i8x16_i7x16_add_s (0x113)
  0xfd, 0x1b, 0x00, // i32x4.extract_lane 0
  0x0b,
]);

let relaxedChecked: boolean | null = null;

/** Whether relaxed SIMD validates, turning on the V8 flag first only when it is needed. */
function relaxedSimdAvailable(): boolean {
  if (relaxedChecked !== null) return relaxedChecked;
  if (wasmApi === null) return (relaxedChecked = false);
  if (!wasmApi.validate(FUSED_DOT_PROBE)) {
    try {
      v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
    } catch {
      // validation below decides
    }
  }
  return (relaxedChecked = wasmApi.validate(FUSED_DOT_PROBE));
}

/** Packs four i8 lanes (low byte first) into an i32 splat operand. */
function bytes4(b0: number, b1: number, b2: number, b3: number): number {
  return (b0 & 0xff) | ((b1 & 0xff) << 8) | ((b2 & 0xff) << 16) | ((b3 & 0xff) << 24);
}

/** [a lanes (i8), b lanes (0..127), accumulator]: extremes, mixed signs, zero and negative sums. */
const PROBE_CASES: readonly (readonly [readonly number[], readonly number[], number])[] = [
  [[-3, 5, -7, 127], [1, 2, 3, 4], 1000],
  [[-128, -128, -128, -128], [127, 127, 127, 127], 7],
  [[127, 127, 127, 127], [127, 127, 127, 127], -123456],
  [[1, -1, 2, -2], [64, 64, 1, 1], 0],
  [[0, 0, 0, 0], [0, 0, 0, 0], -1],
];

let fusedExact: boolean | null = null;

/** Whether i32x4.relaxed_dot_i8x16_i7x16_add_s gives the exact integer sums here (probe, once). */
export function fusedDotExact(): boolean {
  if (fusedExact !== null) return fusedExact;
  fusedExact = false;
  if (wasmApi === null || !relaxedSimdAvailable()) return false;
  try {
    const dot = new wasmApi.Instance(new wasmApi.Module(FUSED_DOT_PROBE), {}).exports.d as (a: number, b: number, c: number) => number;
    fusedExact = PROBE_CASES.every(([a, b, c]) => {
      // 4 products per i32 lane of the splat: each lane sums a[i]·b[i] over the 4 bytes
      const want = a.reduce((sum, ai, i) => sum + ai * (b[i] as number), c) | 0;
      return dot(bytes4(a[0] as number, a[1] as number, a[2] as number, a[3] as number), bytes4(b[0] as number, b[1] as number, b[2] as number, b[3] as number), c) === want;
    });
  } catch {
    fusedExact = false;
  }
  return fusedExact;
}

const cache = new Map<string, ModuleResult>();

/**
 * The compiled kernel module. prefer: 'relaxed-fused' (default) takes the best variant this
 * runtime runs exactly; 'relaxed' excludes the fused dot, 'simd' forces the SIMD128 build
 * (benchmarks and tests compare them).
 */
export function loadKernelModule(prefer: WasmVariant = 'relaxed-fused'): ModuleResult {
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
  const all: WasmVariant[] = ['relaxed-fused', 'relaxed', 'simd'];
  const order = all.slice(all.indexOf(prefer));
  const reasons: string[] = [];
  for (const variant of order) {
    const path = join(dir, `kernels-${variant}.wasm`);
    if (!existsSync(path)) {
      reasons.push(`${path} missing`);
      continue;
    }
    if (variant === 'relaxed-fused' && !fusedDotExact()) {
      reasons.push('fused int8 dot not exact in this runtime');
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
