// Start-up probes of the runtime's relaxed SIMD, run once per process before a kernel module is
// chosen (module.ts):
// - relaxed SIMD itself: Node 20's V8 ships it behind --experimental-wasm-relaxed-simd, newer V8
//   ships it on and prints "unrecognized flag" for the old name, so the flag is set
//   (v8.setFlagsFromString) only when a tiny relaxed-SIMD module fails to validate without it. V8
//   flags are process-wide, so the pool's workers (which receive the compiled module) agree.
// - the fused int8 dot i32x4.relaxed_dot_i8x16_i7x16_add_s: exact? Node 20's baseline tier
//   (Liftoff) returns 2·dot with the accumulator dropped (measured, V8 11.3): a tiny module runs it
//   cold on known inputs. Faster? V8 lowers it to one VNNI instruction only where the CPU reports
//   AVX-VNNI, elsewhere to the split form with its constant rebuilt at every use, slower than the
//   split form the kernels use (dist/wasm/probe-dot-speed.wasm times both loops, after tier-up,
//   and checks that the optimized fused loop gives the split loop's sum).
// Not here: which module is loaded (module.ts).

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import v8 from 'node:v8';
import { wasmApi } from './wasm-api.js';

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
export function relaxedSimdAvailable(): boolean {
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

let fusedExactCold: boolean | null = null;

/** Whether i32x4.relaxed_dot_i8x16_i7x16_add_s gives the exact integer sums in the baseline tier (once). */
export function fusedDotExact(): boolean {
  if (fusedExactCold !== null) return fusedExactCold;
  fusedExactCold = false;
  if (wasmApi === null || !relaxedSimdAvailable()) return false;
  try {
    const dot = new wasmApi.Instance(new wasmApi.Module(FUSED_DOT_PROBE), {}).exports.d as (a: number, b: number, c: number) => number;
    fusedExactCold = PROBE_CASES.every(([a, b, c]) => {
      // 4 products per i32 lane of the splat: each lane sums a[i]·b[i] over the 4 bytes
      const want = a.reduce((sum, ai, i) => sum + ai * (b[i] as number), c) | 0;
      return dot(bytes4(a[0] as number, a[1] as number, a[2] as number, a[3] as number), bytes4(b[0] as number, b[1] as number, b[2] as number, b[3] as number), c) === want;
    });
  } catch {
    fusedExactCold = false;
  }
  return fusedExactCold;
}

export interface FusedDotProbe {
  /** Exact in the baseline tier and, after tier-up, equal to the split form's sums. */
  readonly exact: boolean;
  /** Split-form time / fused time in the speed loop (> 1: fused faster); null when not timed. */
  readonly speedup: number | null;
  /** Take the fused build: exact and at least MIN_SPEEDUP faster. */
  readonly use: boolean;
}

/**
 * The fused dot must beat the split form by this much to be taken: where V8 emits VNNI the loop
 * runs ~2x faster, where it does not ~0.77x (Node 22-26 here); timing noise stays well inside.
 */
export const MIN_SPEEDUP = 1.2;
/** Steps of one timed call (6 dots each: ~25 µs) and the time budget of the whole speed probe. */
const SPEED_STEPS = 4096;
const SPEED_BUDGET_MS = 25;
const SPEED_MAX_ROUNDS = 600;

interface SpeedExports {
  init(seed: number): void;
  fused(steps: number): number;
  twoStep(steps: number): number;
}

function timeOne(fn: (steps: number) => number): { ms: number; value: number } {
  const t0 = performance.now();
  const value = fn(SPEED_STEPS);
  return { ms: performance.now() - t0, value };
}

/** Best-of-rounds times of both loops, alternated, until the budget: V8 tiers each up on its own schedule. */
function timeDots(ex: SpeedExports): { speedup: number; same: boolean } {
  ex.init(20261206);
  let fused = Infinity, split = Infinity, same = true;
  const start = performance.now();
  for (let round = 0; round < SPEED_MAX_ROUNDS && performance.now() - start < SPEED_BUDGET_MS; round++) {
    const f = timeOne(ex.fused);
    const s = timeOne(ex.twoStep);
    fused = Math.min(fused, f.ms);
    split = Math.min(split, s.ms);
    if (f.value !== s.value) same = false;
  }
  return { speedup: split / fused, same };
}

let probed: FusedDotProbe | null = null;

/** The fused-dot probe (once per process); dir: the dist/wasm folder holding probe-dot-speed.wasm. */
export function fusedDotProbe(dir: string | null): FusedDotProbe {
  if (probed !== null) return probed;
  if (!fusedDotExact() || wasmApi === null) return (probed = { exact: false, speedup: null, use: false });
  const path = dir === null ? null : join(dir, 'probe-dot-speed.wasm');
  if (path === null || !existsSync(path)) return (probed = { exact: true, speedup: null, use: false });
  try {
    const ex = new wasmApi.Instance(new wasmApi.Module(readFileSync(path)), {}).exports as unknown as SpeedExports;
    const { speedup, same } = timeDots(ex);
    probed = { exact: same, speedup, use: same && speedup >= MIN_SPEEDUP };
  } catch {
    probed = { exact: true, speedup: null, use: false };
  }
  return probed;
}
