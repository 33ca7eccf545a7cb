// GEMV for small M (decoding): y[m, n] (+)= Σ_k x[m, k]·W[n, k] for m < M, n in [n0, n1), with W
// f32 or a 4-bit weight (decoded one row at a time into an L1-resident scratch row, then dotted
// against every x row). 8 independent v128 accumulators hide the FMA latency.
// Not here: the packed-panel GEMM for larger M (gemm.ts), the 4-bit decoding itself (q4.ts).

import { q4DecodeRow, q4DotRow } from './q4';

@inline function fma(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(c, f32x4.mul(a, b));
}

/** Σ_k a[k]·b[k] over n f32 values. */
export function dotF32(a: usize, b: usize, n: i32): f32 {
  let s0 = f32x4.splat(0), s1 = f32x4.splat(0), s2 = f32x4.splat(0), s3 = f32x4.splat(0);
  let s4 = f32x4.splat(0), s5 = f32x4.splat(0), s6 = f32x4.splat(0), s7 = f32x4.splat(0);
  let i = 0;
  for (; i + 32 <= n; i += 32) {
    const o = <usize>i << 2;
    s0 = fma(v128.load(a + o), v128.load(b + o), s0);
    s1 = fma(v128.load(a + o, 16), v128.load(b + o, 16), s1);
    s2 = fma(v128.load(a + o, 32), v128.load(b + o, 32), s2);
    s3 = fma(v128.load(a + o, 48), v128.load(b + o, 48), s3);
    s4 = fma(v128.load(a + o, 64), v128.load(b + o, 64), s4);
    s5 = fma(v128.load(a + o, 80), v128.load(b + o, 80), s5);
    s6 = fma(v128.load(a + o, 96), v128.load(b + o, 96), s6);
    s7 = fma(v128.load(a + o, 112), v128.load(b + o, 112), s7);
  }
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    s0 = fma(v128.load(a + o), v128.load(b + o), s0);
  }
  s0 = f32x4.add(f32x4.add(f32x4.add(s0, s1), f32x4.add(s2, s3)), f32x4.add(f32x4.add(s4, s5), f32x4.add(s6, s7)));
  let s = (f32x4.extract_lane(s0, 0) + f32x4.extract_lane(s0, 1)) + (f32x4.extract_lane(s0, 2) + f32x4.extract_lane(s0, 3));
  for (; i < n; i++) s += load<f32>(a + (<usize>i << 2)) * load<f32>(b + (<usize>i << 2));
  return s;
}

@inline function storeY(y: usize, v: f32, accumulate: i32): void {
  store<f32>(y, accumulate != 0 ? load<f32>(y) + v : v);
}

/** y[m·ldy + n] (+)= x[m, :]·w[n, :] for m < M, n in [n0, n1); x is [M, K], w is [N, K]. */
export function gemvF32(y: usize, ldy: i32, x: usize, w: usize, M: i32, K: i32, n0: i32, n1: i32, accumulate: i32): void {
  const rowB = <usize>K * 4;
  for (let n = n0; n < n1; n++) {
    const wn = w + <usize>n * rowB;
    for (let m = 0; m < M; m++) storeY(y + (<usize>m * <usize>ldy + <usize>n) * 4, dotF32(x + <usize>m * rowB, wn, K), accumulate);
  }
}

/**
 * As gemvF32 with w = dequant(4-bit weight at descriptor d). M = 1 decodes and dots in registers;
 * M > 1 decodes each row once into `row` (K f32 of thread scratch) and dots it with every x row.
 */
export function gemvQ4(y: usize, ldy: i32, x: usize, d: usize, M: i32, n0: i32, n1: i32, accumulate: i32, row: usize): void {
  const K = load<i32>(d, 12);
  const rowB = <usize>K * 4;
  if (M == 1) {
    for (let n = n0; n < n1; n++) storeY(y + (<usize>n << 2), q4DotRow(d, n, 0, K, x), accumulate);
    return;
  }
  for (let n = n0; n < n1; n++) {
    q4DecodeRow(d, n, 0, K, row);
    for (let m = 0; m < M; m++) storeY(y + (<usize>m * <usize>ldy + <usize>n) * 4, dotF32(x + <usize>m * rowB, row, K), accumulate);
  }
}
