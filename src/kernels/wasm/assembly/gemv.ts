// GEMV for small M (decoding): y[m, n] (+)= Σ_k x[m, k]·W[n, k] for m < M, n in [n0, n1), with W
// f32 or a 4-bit weight: at M = 1 decoded and dotted in registers (a permuted-order fast path for
// the usual layouts, below), at M > 1 decoded one row at a time into an L1-resident scratch row,
// then dotted against every x row. Independent v128 accumulators hide the FMA latency.
// Not here: the packed-panel GEMM for larger M (gemm.ts), the 4-bit decoding itself (q4.ts).

import { nibbleMask } from './vconst';
import { Q4D_ABSMAX, Q4D_BLOCKS_PER_ROW, Q4D_BLOCK_SIZE, Q4D_COLS, Q4D_PACKED, Q4D_PLANES, Q4D_ROWS, Q4D_ZEROS } from './q4desc';
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

// ---- M = 1 fast path: decode in x's permuted order -------------------------------------------
//
// A dot product does not care about element order, so instead of re-interleaving the decoded
// weights into column order (shuffles, the scarce unit: ~13 of them per 16 weights in q4.ts) x is
// permuted once per call into the order the decoder produces naturally, and the block scale is
// applied once per block to the block's partial sum instead of to every weight:
//   16 packed bytes = 32 codes; high nibbles (even columns) and low nibbles (odd columns) are each
//   one swizzle index vector; 4 byte-plane lookups give p0..p3; two byte interleaves per plane pair
//   make 16-bit halves; 32-bit lanes are then joined with shifts and 16-bit blends (not shuffles).
// Produced order of one 32-column chunk, in four-column groups g = 0..7 (half = g >> 2 is 0 for
// high nibbles, 1 for low; h = g & 3): columns (h & 1)·2 + (h >> 1)·16 + half + 4j, j = 0..3.
// Used when the weight has no zero points and cols and block size are multiples of 32 (so every
// block is whole chunks and every row starts on a byte); other weights take q4DotRow.

/** xp[c + 4g + j] = x[c + column of group g, lane j] for every whole 32-column chunk c. */
function permuteChunks(xp: usize, x: usize, K: i32): void {
  for (let c = 0; c + 32 <= K; c += 32) {
    for (let g = 0; g < 8; g++) {
      const first = c + (g & 3) * 8 + (g >> 2);
      for (let j = 0; j < 4; j++) store<f32>(xp + (<usize>(c + 4 * g + j) << 2), load<f32>(x + (<usize>(first + 2 * j) << 2)));
    }
  }
}

@inline function lookup(t: v128, e: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return i8x16.relaxed_swizzle(t, e);
  return i8x16.swizzle(t, e);
}

/**
 * Σ_c dequant(w)[r, c]·x[c] for row r, xp = x permuted by permuteChunks. Each block's codes are
 * dotted as f32(codebook[q])·xp in 4 accumulators and the sum is scaled once: the same terms as
 * the reference, rounded in a different order (tolerance, not bits).
 */
function q4DotRowPermuted(d: usize, r: u32, xp: usize): f32 {
  const packed = <usize>load<u32>(d, Q4D_PACKED);
  const cols = load<u32>(d, Q4D_COLS);
  const bs = load<u32>(d, Q4D_BLOCK_SIZE);
  const bpr = load<u32>(d, Q4D_BLOCKS_PER_ROW);
  const absmax = <usize>load<u32>(d, Q4D_ABSMAX);
  const planes = <usize>load<u32>(d, Q4D_PLANES);
  const t0 = v128.load(planes), t1 = v128.load(planes, 16), t2 = v128.load(planes, 32), t3 = v128.load(planes, 48);
  const mask = nibbleMask();
  const rowBase = r * cols;
  // Blocks of this row: per-row layout, or flat blocks whose boundaries (multiples of bs, like the
  // row start, multiples of 32) fall on chunk boundaries.
  let b = bpr > 0 ? r * bpr : rowBase / bs;
  let c: u32 = 0;
  let boundary = bpr > 0 ? bs : (b + 1) * bs - rowBase;
  let total = f32x4.splat(0);
  while (c < cols) {
    const runEnd = min(cols, boundary);
    const scale = load<f32>(absmax + (<usize>b << 2));
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    // Two passes over the block, high nibbles then low ones: half the values live at a time
    // (V8 otherwise interleaves both halves and spills).
    for (let cc = c; cc < runEnd; cc += 32) {
      const e = v128.and(i16x8.shr_u(v128.load(packed + ((rowBase + cc) >> 1)), 4), mask);
      const o = xp + (<usize>cc << 2);
      const p0 = lookup(t0, e), p1 = lookup(t1, e), p2 = lookup(t2, e), p3 = lookup(t3, e);
      const l01 = i8x16.shuffle(p0, p1, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
      const l23 = i8x16.shuffle(p2, p3, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
      a0 = fma(i8x16.shuffle(l01, l23, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23), v128.load(o), a0);
      a1 = fma(i8x16.shuffle(l01, l23, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31), v128.load(o, 16), a1);
      const h01 = i8x16.shuffle(p0, p1, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
      const h23 = i8x16.shuffle(p2, p3, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
      a2 = fma(i8x16.shuffle(h01, h23, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23), v128.load(o, 32), a2);
      a3 = fma(i8x16.shuffle(h01, h23, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31), v128.load(o, 48), a3);
    }
    for (; c < runEnd; c += 32) {
      const e = v128.and(v128.load(packed + ((rowBase + c) >> 1)), mask);
      const o = xp + (<usize>c << 2);
      const p0 = lookup(t0, e), p1 = lookup(t1, e), p2 = lookup(t2, e), p3 = lookup(t3, e);
      const l01 = i8x16.shuffle(p0, p1, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
      const l23 = i8x16.shuffle(p2, p3, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
      a0 = fma(i8x16.shuffle(l01, l23, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23), v128.load(o, 64), a0);
      a1 = fma(i8x16.shuffle(l01, l23, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31), v128.load(o, 80), a1);
      const h01 = i8x16.shuffle(p0, p1, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
      const h23 = i8x16.shuffle(p2, p3, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
      a2 = fma(i8x16.shuffle(h01, h23, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23), v128.load(o, 96), a2);
      a3 = fma(i8x16.shuffle(h01, h23, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31), v128.load(o, 112), a3);
    }
    total = fma(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)), f32x4.splat(scale), total);
    b++;
    boundary += bs;
  }
  return (f32x4.extract_lane(total, 0) + f32x4.extract_lane(total, 1)) + (f32x4.extract_lane(total, 2) + f32x4.extract_lane(total, 3));
}

/**
 * As gemvF32 with w = dequant(4-bit weight at descriptor d). M = 1 decodes and dots in registers
 * (x permuted into `row` first when the weight allows the fast path); M > 1 decodes each row once
 * into `row` (K f32 of thread scratch) and dots it with every x row.
 */
export function gemvQ4(y: usize, ldy: i32, x: usize, d: usize, M: i32, n0: i32, n1: i32, accumulate: i32, row: usize): void {
  const K = load<i32>(d, Q4D_COLS);
  const rowB = <usize>K * 4;
  if (M == 1) {
    const bs = load<i32>(d, Q4D_BLOCK_SIZE);
    if (load<u32>(d, Q4D_ZEROS) == 0 && (K & 31) == 0 && (bs & 31) == 0) {
      permuteChunks(row, x, K);
      for (let n = n0; n < n1; n++) storeY(y + (<usize>n << 2), q4DotRowPermuted(d, <u32>n, row), accumulate);
      return;
    }
    for (let n = n0; n < n1; n++) storeY(y + (<usize>n << 2), q4DotRow(d, n, 0, K, x), accumulate);
    return;
  }
  for (let n = n0; n < n1; n++) {
    q4DecodeRow(d, n, 0, K, row);
    for (let m = 0; m < M; m++) storeY(y + (<usize>m * <usize>ldy + <usize>n) * 4, dotF32(x + <usize>m * rowB, row, K), accumulate);
  }
}

/**
 * gemvQ4 over several 4-bit weights with the same cols and one x (q/k/v or gate/up of a layer):
 * `table` holds `count` pairs {u32 descriptor, u32 y}; y_i is [M, rows_i]. Rows [r0, r1) of the
 * weights' concatenated rows are computed, each exactly as gemvQ4 computes it (same bits).
 */
export function gemvQ4Many(table: usize, count: i32, x: usize, M: i32, r0: i32, r1: i32, accumulate: i32, row: usize): void {
  let start = 0;
  for (let i = 0; i < count && start < r1; i++) {
    const d = <usize>load<u32>(table + (<usize>i << 3));
    const y = <usize>load<u32>(table + (<usize>i << 3), 4);
    const N = load<i32>(d, Q4D_ROWS);
    const a = max(r0 - start, 0);
    const b = min(r1 - start, N);
    if (a < b) gemvQ4(y, N, x, d, M, a, b, accumulate, row);
    start += N;
  }
}
