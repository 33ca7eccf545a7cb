// The int8-activation X·Wᵀ with a 4-bit weight for the smallest M (decoding: M = 1, or two
// sequences; from M = 3 the packed GEMM of gemm-i8.ts is faster, backend.ts GEMV_MAX_M_INT8): the
// arithmetic of src/kernels/ref/matmul-int8.ts (activations int8 per (row, weight block), the
// 7-bit integer codebook with the +64 offset, an exact integer dot per block, then
// f32(dot) · f32(sa · f32(scale · unscale)) summed block after block), in the GEMV shape: each
// weight row is read once and dotted with every activation row; at M = 1 four rows at a time.
//
// Fast layout (no zero points, block size a multiple of 32): 16 packed bytes hold 32 codes, the
// high nibbles being the even columns and the low nibbles the odd ones. Instead of re-interleaving
// the codes, the activations are quantized once per call into the same order (per 32-column chunk:
// the 16 even columns, then the 16 odd ones), so a chunk costs one load, two nibble masks, two
// swizzles through the 7-bit code table and two integer dot products (16 multiply-adds per
// pmaddubsw + pmaddwd pair). Block sums stay integer per lane; each block's lanes are converted
// and scaled once. Other block sizes (multiples of 4, not of 32) take a plain scalar loop: the same
// integers in natural order.
// Not here: the large-M packed GEMM of the same arithmetic (gemm-i8.ts), threading (backend.ts
// splits the rows), the exact f32 GEMV (gemv.ts).

import { Q4D_ABSMAX, Q4D_BLOCKS_PER_ROW, Q4D_BLOCK_SIZE, Q4D_COLS, Q4D_PACKED, Q4D_ROWS, q4BlockScale } from './q4desc';
import { dotI8Add, i8CodeTable, quantizeRowsI8 } from './act-i8';
import { nibbleMask, onesI16 } from './vconst';
import { fmaF32x4 } from './vmath';

/** Scratch bytes gemvI8Q4Many needs for M activation rows of K columns (see the layout in the function). */
export function gemvI8ScratchBytes(M: i32, K: i32, bs: i32): i32 {
  const nb = K / bs;
  return ((M * K + 15) & ~15) + 8 * M * nb + 16 + K;
}

@inline function lookup(t: v128, e: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return i8x16.relaxed_swizzle(t, e);
  return i8x16.swizzle(t, e);
}

@inline function hsum(v: v128): f32 {
  return (f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1)) + (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
}

@inline function storeY(y: usize, v: f32, accumulate: i32): void {
  store<f32>(y, accumulate != 0 ? load<f32>(y) + v : v);
}

/** First block of row r (per-row blocks, or blocks over the flat tensor: cols % bs == 0). */
@inline function firstBlock(d: usize, r: i32, K: i32, bs: i32): u32 {
  const bpr = load<u32>(d, Q4D_BLOCKS_PER_ROW);
  return bpr > 0 ? <u32>r * bpr : <u32>(r * (K / bs));
}

/**
 * Row r of the weight against ONE activation row in chunk order (M = 1, bs % 32 == 0): q codes,
 * sa scales and sums (64·Σqa) per block of that row.
 */
function rowDotI8Chunked(d: usize, r: i32, K: i32, bs: i32, unscale: f32, table: v128, q: usize, sa: usize, sums: usize): f32 {
  const src = <usize>load<u32>(d, Q4D_PACKED) + (<usize>(r * K) >> 1);
  const b0 = firstBlock(d, r, K, bs);
  const mask = nibbleMask();
  const ones = onesI16();
  const nb = K / bs;
  let total = f32x4.splat(0);
  for (let kb = 0; kb < nb; kb++) {
    // The accumulator starts at −64·Σqa (the offset correction) in one lane.
    let acc = i32x4.replace_lane(i32x4.splat(0), 0, -load<i32>(sums + (<usize>kb << 2)));
    const c0 = kb * bs;
    for (let c = c0; c < c0 + bs; c += 32) {
      const v = v128.load(src + (<usize>c >> 1));
      const qc = q + <usize>c;
      acc = dotI8Add(v128.load(qc), lookup(table, v128.and(i16x8.shr_u(v, 4), mask)), acc, ones);
      acc = dotI8Add(v128.load(qc, 16), lookup(table, v128.and(v, mask)), acc, ones);
    }
    const s = load<f32>(sa + (<usize>kb << 2)) * (q4BlockScale(d, b0 + <u32>kb) * unscale);
    total = fmaF32x4(f32x4.convert_i32x4_s(acc), f32x4.splat(s), total);
  }
  return hsum(total);
}

/**
 * Rows r..r+3 against ONE activation row in chunk order (M = 1, bs % 32 == 0), as rowDotI8Chunked
 * computes each: the activation loads are shared, and each block's four integer sums are reduced
 * into the lanes of one vector, so the correction, conversion and scaling run once for four rows.
 */
function rowsDotI8Chunked4(y: usize, accumulate: i32, d: usize, r: i32, K: i32, bs: i32, unscale: f32, table: v128, q: usize, sa: usize, sums: usize): void {
  const rowBytes = <usize>(K >> 1);
  const p0 = <usize>load<u32>(d, Q4D_PACKED) + (<usize>(r * K) >> 1);
  const p1 = p0 + rowBytes, p2 = p1 + rowBytes, p3 = p2 + rowBytes;
  const nb = K / bs;
  const s0 = <usize>load<u32>(d, Q4D_ABSMAX) + (<usize>firstBlock(d, r, K, bs) << 2);
  const sStride = <usize>(load<u32>(d, Q4D_BLOCKS_PER_ROW) > 0 ? load<u32>(d, Q4D_BLOCKS_PER_ROW) : <u32>nb) << 2;
  const mask = nibbleMask();
  const ones = onesI16();
  const unscaleV = f32x4.splat(unscale);
  let total = f32x4.splat(0);
  for (let kb = 0; kb < nb; kb++) {
    let a0 = i32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
    const c0 = kb * bs;
    for (let c = c0; c < c0 + bs; c += 32) {
      const qe = v128.load(q + <usize>c);
      const qo = v128.load(q + <usize>c, 16);
      const o = <usize>c >> 1;
      const v0 = v128.load(p0 + o);
      a0 = dotI8Add(qo, lookup(table, v128.and(v0, mask)), dotI8Add(qe, lookup(table, v128.and(i16x8.shr_u(v0, 4), mask)), a0, ones), ones);
      const v1 = v128.load(p1 + o);
      a1 = dotI8Add(qo, lookup(table, v128.and(v1, mask)), dotI8Add(qe, lookup(table, v128.and(i16x8.shr_u(v1, 4), mask)), a1, ones), ones);
      const v2 = v128.load(p2 + o);
      a2 = dotI8Add(qo, lookup(table, v128.and(v2, mask)), dotI8Add(qe, lookup(table, v128.and(i16x8.shr_u(v2, 4), mask)), a2, ones), ones);
      const v3 = v128.load(p3 + o);
      a3 = dotI8Add(qo, lookup(table, v128.and(v3, mask)), dotI8Add(qe, lookup(table, v128.and(i16x8.shr_u(v3, 4), mask)), a3, ones), ones);
    }
    // Lane i = the block sum of row r + i (a 4x4 transpose-add), minus the offset correction.
    const t01 = i32x4.add(v128.shuffle<i32>(a0, a1, 0, 4, 1, 5), v128.shuffle<i32>(a0, a1, 2, 6, 3, 7));
    const t23 = i32x4.add(v128.shuffle<i32>(a2, a3, 0, 4, 1, 5), v128.shuffle<i32>(a2, a3, 2, 6, 3, 7));
    const dots = i32x4.sub(i32x4.add(v128.shuffle<i32>(t01, t23, 0, 1, 4, 5), v128.shuffle<i32>(t01, t23, 2, 3, 6, 7)), i32x4.splat(load<i32>(sums + (<usize>kb << 2))));
    const so = s0 + (<usize>kb << 2);
    let ws = f32x4.splat(load<f32>(so));
    ws = f32x4.replace_lane(ws, 1, load<f32>(so + sStride));
    ws = f32x4.replace_lane(ws, 2, load<f32>(so + 2 * sStride));
    ws = f32x4.replace_lane(ws, 3, load<f32>(so + 3 * sStride));
    total = fmaF32x4(f32x4.convert_i32x4_s(dots), f32x4.mul(f32x4.splat(load<f32>(sa + (<usize>kb << 2))), f32x4.mul(ws, unscaleV)), total);
  }
  const yr = y + (<usize>r << 2);
  if (accumulate != 0) total = f32x4.add(total, v128.load(yr));
  v128.store(yr, total);
}

/**
 * Row r against M activation rows in chunk order (bs % 32 == 0): the row's codes are looked up once
 * into `codes` (K bytes, chunk order) and dotted with every row.
 */
function rowDotsI8Chunked(y: usize, ldy: usize, accumulate: i32, d: usize, r: i32, K: i32, bs: i32, unscale: f32, table: v128, M: i32, q: usize, sa: usize, sums: usize, codes: usize): void {
  const src = <usize>load<u32>(d, Q4D_PACKED) + (<usize>(r * K) >> 1);
  const b0 = firstBlock(d, r, K, bs);
  const mask = nibbleMask();
  const ones = onesI16();
  const nb = K / bs;
  for (let c = 0; c < K; c += 32) {
    const v = v128.load(src + (<usize>c >> 1));
    v128.store(codes + <usize>c, lookup(table, v128.and(i16x8.shr_u(v, 4), mask)));
    v128.store(codes + <usize>c, lookup(table, v128.and(v, mask)), 16);
  }
  for (let m = 0; m < M; m++) {
    const qm = q + <usize>(m * K);
    const bm = <usize>(m * nb) << 2;
    let total = f32x4.splat(0);
    for (let kb = 0; kb < nb; kb++) {
      let acc = i32x4.replace_lane(i32x4.splat(0), 0, -load<i32>(sums + bm + (<usize>kb << 2)));
      const c0 = kb * bs;
      for (let c = c0; c < c0 + bs; c += 32) {
        acc = dotI8Add(v128.load(qm + <usize>c), v128.load(codes + <usize>c), acc, ones);
        acc = dotI8Add(v128.load(qm + <usize>c, 16), v128.load(codes + <usize>c, 16), acc, ones);
      }
      const s = load<f32>(sa + bm + (<usize>kb << 2)) * (q4BlockScale(d, b0 + <u32>kb) * unscale);
      total = fmaF32x4(f32x4.convert_i32x4_s(acc), f32x4.splat(s), total);
    }
    storeY(y + <usize>m * ldy, hsum(total), accumulate);
  }
}

/** Row r against M activation rows in natural order (bs % 4 == 0, not % 32): scalar. */
function rowDotsI8Plain(y: usize, ldy: usize, accumulate: i32, d: usize, r: i32, K: i32, bs: i32, unscale: f32, tab: usize, M: i32, q: usize, sa: usize, sums: usize): void {
  const src = <usize>load<u32>(d, Q4D_PACKED);
  const b0 = firstBlock(d, r, K, bs);
  const nb = K / bs;
  const e0 = <usize>r * <usize>K;
  for (let m = 0; m < M; m++) {
    const qm = q + <usize>(m * K);
    const bm = <usize>(m * nb) << 2;
    let total: f32 = 0;
    for (let kb = 0; kb < nb; kb++) {
      let dot: i32 = -load<i32>(sums + bm + (<usize>kb << 2));
      for (let k = kb * bs; k < (kb + 1) * bs; k++) {
        const e = e0 + <usize>k;
        const byte = <u32>load<u8>(src + (e >> 1));
        const code = (e & 1) == 0 ? byte >> 4 : byte & 15;
        dot += <i32>load<i8>(qm + <usize>k) * <i32>load<u8>(tab + <usize>code);
      }
      const s = load<f32>(sa + bm + (<usize>kb << 2)) * (q4BlockScale(d, b0 + <u32>kb) * unscale);
      total += <f32>dot * s;
    }
    storeY(y + <usize>m * ldy, total, accumulate);
  }
}

/**
 * y_i[m, n] (+)= the int8-activation product over several 4-bit weights sharing x (q/k/v,
 * gate/up, or one weight): `table` holds `count` pairs {u32 descriptor, u32 y} with y_i [M, rows_i];
 * rows [r0, r1) of the weights' concatenated rows are computed. x: f32 [M, K] (K = every weight's
 * cols). Requirements (checked by the caller, backend.ts, with ref/matmul-int8.ts
 * int8ActivationsApply): no zero points, cols % blockSize == 0, blockSize % 4 == 0.
 * scratch (gemvI8ScratchBytes, private to the thread): quantized x [M·K] bytes, then sa and sums
 * [M·nb] each, the 16-byte code table and one decoded row (K bytes). x is quantized again only
 * when the block size changes.
 */
export function gemvI8Q4Many(table: usize, count: i32, x: usize, M: i32, r0: i32, r1: i32, accumulate: i32, scratch: usize): void {
  let start = 0;
  let quantizedBs = 0;
  for (let i = 0; i < count && start < r1; i++) {
    const d = <usize>load<u32>(table + (<usize>i << 3));
    const y = <usize>load<u32>(table + (<usize>i << 3), 4);
    const N = load<i32>(d, Q4D_ROWS);
    const a = max(r0 - start, 0);
    const b = min(r1 - start, N);
    start += N;
    if (a >= b) continue;
    const K = load<i32>(d, Q4D_COLS);
    const bs = load<i32>(d, Q4D_BLOCK_SIZE);
    const nb = K / bs;
    const chunked = (bs & 31) == 0;
    const q = scratch;
    const sa = q + <usize>((M * K + 15) & ~15);
    const sums = sa + <usize>(M * nb * 4);
    const tab = sums + <usize>(M * nb * 4);
    if (bs != quantizedBs) {
      quantizeRowsI8(x, K, bs, 0, M, q, sa, sums, chunked);
      quantizedBs = bs;
    }
    const unscale = i8CodeTable(d, tab);
    const ldy = <usize>N << 2;
    if (!chunked) {
      for (let n = a; n < b; n++) rowDotsI8Plain(y + (<usize>n << 2), ldy, accumulate, d, n, K, bs, unscale, tab, M, q, sa, sums);
    } else if (M == 1) {
      const codeTable = v128.load(tab);
      let n = a;
      for (; n + 4 <= b; n += 4) rowsDotI8Chunked4(y, accumulate, d, n, K, bs, unscale, codeTable, q, sa, sums);
      for (; n < b; n++) storeY(y + (<usize>n << 2), rowDotI8Chunked(d, n, K, bs, unscale, codeTable, q, sa, sums), accumulate);
    } else {
      const codes = tab + 16;
      const codeTable = v128.load(tab);
      for (let n = a; n < b; n++) rowDotsI8Chunked(y + (<usize>n << 2), ldy, accumulate, d, n, K, bs, unscale, codeTable, M, q, sa, sums, codes);
    }
  }
}
