// The two integer operands of the int8-activation X·Wᵀ (arithmetic defined in
// src/kernels/ref/matmul-int8.ts), shared by the large-M GEMM (gemm-i8.ts) and the small-M GEMV
// (gemv-i8.ts):
//   activations per (row, K-block): sa = f32(absmax / 127), qa = nearest(f32(x · f32(127 / absmax)))
//   codebook: qw[q] = nearest(f32(codebook[q] · f32(63 / max|codebook|))) + I8_OFFSET in [1, 127],
//             the non-negative "i7" operand of the relaxed dot product; the offset's share of a
//             block sum, I8_OFFSET·Σqa, is stored beside each activation block and subtracted.
// Also the integer dot product both use (dotI8Add). Not here: their layouts (gemm-i8.ts, gemv-i8.ts).

import { Q4D_CODEBOOK } from './q4desc';

/** Added to every 7-bit weight code so it is the non-negative operand of the relaxed dot. */
export const I8_OFFSET: i32 = 64;
/** 1.5·2^23: f32(v + ROUND_MAGIC) has round-half-even(v) in its low mantissa bits for |v| < 2^22. */
export const ROUND_MAGIC: f32 = 12582912;
export const ROUND_MAGIC_BITS: i32 = 0x4b400000;
/** Activation blocks at or below this absmax quantize to zeros (127 / absmax must not overflow). */
export const MIN_ABSMAX: f32 = 1e-30;

/**
 * c + the exact i32 lane sums of a·b (a signed i8, b in 0..127): four lanes of four products each,
 * 16 multiply-adds. FUSED_I8_DOT (an asc --use constant, 1 only in kernels-relaxed-fused.wasm)
 * takes the fused i32x4.relaxed_dot_i8x16_i7x16_add_s; that build is loaded only where the
 * start-up probe (src/kernels/wasm/module.ts) finds it exact and faster: Node 20's baseline tier
 * (Liftoff) computes it wrongly (2·dot, the accumulator dropped; measured, V8 11.3), and V8 lowers it
 * to one VNNI instruction only where the CPU reports AVX-VNNI (elsewhere to the split form with the
 * constant rebuilt at each use). The split form is exact in both tiers everywhere: pmaddubsw, then
 * pmaddwd against `ones` (vconst.ts onesI16, kept in a register by the caller; extadd_pairwise would reload a
 * constant from memory at every use).
 */
@inline export function dotI8Add(a: v128, b: v128, c: v128, ones: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD && FUSED_I8_DOT) return i32x4.relaxed_dot_i8x16_i7x16_add_s(a, b, c);
  if (ASC_FEATURE_RELAXED_SIMD) return i32x4.add(c, i32x4.dot_i16x8_s(i16x8.relaxed_dot_i8x16_i7x16_s(a, b), ones));
  // SIMD128: the same exact integer sum through i16 products (b is 0..127, so no lane overflows).
  const lo = i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(a), i16x8.extend_low_i8x16_s(b));
  const hi = i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(a), i16x8.extend_high_i8x16_s(b));
  return i32x4.add(c, i32x4.add(v128.shuffle<i32>(lo, hi, 0, 2, 4, 6), v128.shuffle<i32>(lo, hi, 1, 3, 5, 7)));
}

/** round-half-even(f32(x · inv)) as i32 lanes: one add of the magic constant, no conversion. */
@inline export function roundScaled(x: v128, inv: v128, magic: v128, magicBits: v128): v128 {
  return i32x4.sub(f32x4.add(f32x4.mul(x, inv), magic), magicBits);
}

/**
 * Rows m0..m1-1 of x[M, K] (f32) to int8: q[i·K + k], and per (row, block) sa[i·nb + kb] (f32) and
 * I8_OFFSET·Σ qa (i32, same index) with nb = K / bs. K % bs == 0, bs % 4 == 0 (bs % 32 == 0 when
 * `chunked`: then each 32-column chunk is stored as its 16 even columns, then its 16 odd ones, the
 * order of the high and low nibbles of 16 packed bytes).
 * |x·inv| <= 127 needs no clamp. Blocks with absmax <= MIN_ABSMAX (and NaN/Inf blocks) get inv = 0:
 * a tiny block's codes are 0 (it contributes < 1e-28), a NaN/Inf block's codes are unspecified
 * but its scale is NaN/Inf, which reaches the output (never a silent value).
 */
export function quantizeRowsI8(x: usize, K: i32, bs: i32, m0: i32, m1: i32, q: usize, sa: usize, sums: usize, chunked: bool): void {
  const nb = K / bs;
  const magic = f32x4.splat(ROUND_MAGIC);
  const magicBits = i32x4.splat(ROUND_MAGIC_BITS);
  const absMask = i32x4.splat(0x7fffffff);
  for (let i = m0; i < m1; i++) {
    for (let kb = 0; kb < nb; kb++) {
      const k0 = i * K + kb * bs;
      const xb = x + <usize>k0 * 4;
      // absmax on the bit patterns of |x| (integer order = float order; NaN above Inf).
      let m = i32x4.splat(0);
      for (let k = 0; k < bs; k += 4) m = i32x4.max_s(m, v128.and(v128.load(xb + <usize>k * 4), absMask));
      m = i32x4.max_s(m, v128.shuffle<i32>(m, m, 2, 3, 0, 1));
      m = i32x4.max_s(m, v128.shuffle<i32>(m, m, 1, 0, 3, 2));
      const absmax = f32x4.extract_lane(m, 0);
      const inv = f32x4.splat(absmax > MIN_ABSMAX && absmax < Infinity ? <f32>127 / absmax : 0);
      let s = i32x4.splat(0);
      const qb = q + <usize>k0;
      let k = 0;
      if (chunked) {
        for (; k < bs; k += 32) {
          const o = xb + <usize>k * 4;
          const n0 = roundScaled(v128.load(o), inv, magic, magicBits);
          const n1 = roundScaled(v128.load(o, 16), inv, magic, magicBits);
          const n2 = roundScaled(v128.load(o, 32), inv, magic, magicBits);
          const n3 = roundScaled(v128.load(o, 48), inv, magic, magicBits);
          const n4 = roundScaled(v128.load(o, 64), inv, magic, magicBits);
          const n5 = roundScaled(v128.load(o, 80), inv, magic, magicBits);
          const n6 = roundScaled(v128.load(o, 96), inv, magic, magicBits);
          const n7 = roundScaled(v128.load(o, 112), inv, magic, magicBits);
          s = i32x4.add(s, i32x4.add(i32x4.add(i32x4.add(n0, n1), i32x4.add(n2, n3)), i32x4.add(i32x4.add(n4, n5), i32x4.add(n6, n7))));
          const lo = i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(n0, n1), i16x8.narrow_i32x4_s(n2, n3));
          const hi = i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(n4, n5), i16x8.narrow_i32x4_s(n6, n7));
          v128.store(qb + <usize>k, i8x16.shuffle(lo, hi, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30));
          v128.store(qb + <usize>k, i8x16.shuffle(lo, hi, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31), 16);
        }
      } else {
        for (; k + 16 <= bs; k += 16) {
          const o = xb + <usize>k * 4;
          const n0 = roundScaled(v128.load(o), inv, magic, magicBits);
          const n1 = roundScaled(v128.load(o, 16), inv, magic, magicBits);
          const n2 = roundScaled(v128.load(o, 32), inv, magic, magicBits);
          const n3 = roundScaled(v128.load(o, 48), inv, magic, magicBits);
          s = i32x4.add(s, i32x4.add(i32x4.add(n0, n1), i32x4.add(n2, n3)));
          v128.store(qb + <usize>k, i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(n0, n1), i16x8.narrow_i32x4_s(n2, n3)));
        }
        for (; k < bs; k += 4) {
          const n = roundScaled(v128.load(xb + <usize>k * 4), inv, magic, magicBits);
          s = i32x4.add(s, n);
          const h = i16x8.narrow_i32x4_s(n, n);
          v128.store32_lane(qb + <usize>k, i8x16.narrow_i16x8_s(h, h), 0);
        }
      }
      const sum = i32x4.extract_lane(s, 0) + i32x4.extract_lane(s, 1) + i32x4.extract_lane(s, 2) + i32x4.extract_lane(s, 3);
      store<f32>(sa + (<usize>(i * nb + kb) << 2), absmax / <f32>127);
      store<i32>(sums + (<usize>(i * nb + kb) << 2), I8_OFFSET * sum);
    }
  }
}

/**
 * The 16-byte table of offset 7-bit codes of the weight at descriptor d into tab, and the f32
 * factor that returns the codebook's scale, f32(max|codebook| / 63).
 */
export function i8CodeTable(d: usize, tab: usize): f32 {
  const codebook = <usize>load<u32>(d, Q4D_CODEBOOK);
  let cbMax: f32 = 0;
  for (let i = 0; i < 16; i++) cbMax = max(cbMax, abs(load<f32>(codebook + (<usize>i << 2))));
  const cs: f32 = <f32>63 / cbMax;
  for (let i = 0; i < 16; i++) store<u8>(tab + <usize>i, <i32>nearest(load<f32>(codebook + (<usize>i << 2)) * cs) + I8_OFFSET);
  return cbMax / <f32>63;
}
