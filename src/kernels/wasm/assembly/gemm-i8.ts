// The OPTIONAL int8-activation path of X·Wᵀ for 4-bit weights (off by default; chosen with
// createKernels({ int8Activations: true })): activations quantized to int8 per (row, weight block),
// 4-bit codes mapped through a 7-bit integer version of the codebook, integer dot products per
// block (relaxed i8 dot products: 16 multiply-adds per pmaddubsw/pmaddwd/paddd triple, ~1.8x the
// f32 FMA rate measured here), then each block's i32 sum scaled into the f32 output. It changes numerics:
// the error is measured and documented in src/kernels/ref/matmul-int8.ts (the reference twin,
// which defines the arithmetic this file follows).
//
//   activations: per row i and K-block kb (the weight's blockSize along K):
//     sa = f32(absmax / 127), qa = nearest(f32(x · f32(127 / absmax))) in [-127, 127]
//     (0 if absmax <= 1e-30)
//   codebook:    cs = f32(63 / max|codebook|), qw[q] = nearest(f32(codebook[q] · cs)) + 64 in [1, 127]
//                (the +64 offset makes the weight operand the non-negative "i7" one; its effect,
//                64·Σ qa over the block, is subtracted from the integer sum)
//   y[i, j] (+)= Σ_kb f32(dot_kb − 64·Σqa) · f32(sa · f32(scale(j, kb) / cs))   (block by block)
//
// Layout: like gemm.ts, packed B blocks of KC x NC (per thread, in its GEMM scratch) in 8-column
// panels, a 4x8 register tile of i32 accumulators per K-block. Panel p, 4-k group g: 32 bytes,
// [col 0..3 x k 4g..4g+3] then [col 4..7 x k 4g..4g+3], so one relaxed dot multiplies a row's 4
// activations (a splat of 4 bytes) with 4 columns at once. Per-block column scales: 8 f32 per
// (panel, block). Columns past the matrix have code value 64 (= 0) and scale 0.
// Requirements (checked by the caller, backend.ts): no zero points, cols % blockSize == 0,
// blockSize % 4 == 0, blockSize <= MAX_BLOCK.
// Not here: the exact f32 path (gemm.ts), threading (backend.ts splits rows / columns).

import { Q4D_BLOCKS_PER_ROW, Q4D_BLOCK_SIZE, Q4D_CODEBOOK, Q4D_COLS, Q4D_PACKED, q4BlockScale } from './q4desc';
/** Largest weight block size the kernel takes (one block fits a KC block; ref/matmul-int8.ts INT8_MAX_BLOCK). */
const I8_MAX_BLOCK: i32 = 512;
const KC_MAX: i32 = I8_MAX_BLOCK;
const NC: i32 = 512;
const OFFSET: i32 = 64;

/** Thread scratch: packed codes, per-block column scales, 8 decoded rows, one spill tile, the code table. */
export function gemmI8ScratchBytes(): i32 {
  return KC_MAX * NC + NC * (KC_MAX / 4) * 4 + 8 * KC_MAX + 4 * 8 * 4 + 16 + 64;
}

@inline function dot4(a: v128, b: v128, c: v128): v128 {
  // Not the fused i32x4.relaxed_dot_i8x16_i7x16_add_s: Node 20's baseline tier (Liftoff) computes
  // it wrongly (2·dot, the accumulator dropped; measured, V8 11.3), so a kernel not yet tiered up
  // returned wrong sums. The split form is exact in both tiers and lowers to the same x64 code
  // (pmaddubsw, pmaddwd with ones, paddd).
  if (ASC_FEATURE_RELAXED_SIMD) return i32x4.add(c, i32x4.extadd_pairwise_i16x8_s(i16x8.relaxed_dot_i8x16_i7x16_s(a, b)));
  // SIMD128: the same exact integer sum through i16 products (b is 0..127, so no lane overflows).
  const lo = i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(a), i16x8.extend_low_i8x16_s(b));
  const hi = i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(a), i16x8.extend_high_i8x16_s(b));
  return i32x4.add(c, i32x4.add(v128.shuffle<i32>(lo, hi, 0, 2, 4, 6), v128.shuffle<i32>(lo, hi, 1, 3, 5, 7)));
}

@inline function fma(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(c, f32x4.mul(a, b));
}

// ---- activations --------------------------------------------------------------------------------

/** 1.5·2^23: f32(v + ROUND_MAGIC) has round-half-even(v) in its low mantissa bits for |v| < 2^22. */
const ROUND_MAGIC: f32 = 12582912;
const ROUND_MAGIC_BITS: i32 = 0x4b400000;
/** Activation blocks at or below this absmax quantize to zeros (127 / absmax must not overflow). */
const MIN_ABSMAX: f32 = 1e-30;

/** round-half-even(f32(x · inv)) as i32 lanes: one add of the magic constant, no conversion. */
@inline function roundScaled(x: v128, inv: v128, magic: v128, magicBits: v128): v128 {
  return i32x4.sub(f32x4.add(f32x4.mul(x, inv), magic), magicBits);
}

/**
 * Rows m0..m1-1 of x[M, K] (f32) to int8: q[i·K + k], and per (row, block) sa[i·nb + kb] (f32) and
 * 64·Σ qa (i32, same index) with nb = K / bs. K % bs == 0, bs % 4 == 0.
 * |x·inv| <= 127 needs no clamp. Blocks with absmax <= MIN_ABSMAX (and NaN/Inf blocks) get inv = 0:
 * a tiny block's codes are 0 (it contributes < 1e-28), a NaN/Inf block's codes are unspecified
 * but its scale is NaN/Inf, which reaches the output (never a silent value).
 */
function quantizeRowsI8(x: usize, K: i32, bs: i32, m0: i32, m1: i32, q: usize, sa: usize, sums: usize): void {
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
      const sum = i32x4.extract_lane(s, 0) + i32x4.extract_lane(s, 1) + i32x4.extract_lane(s, 2) + i32x4.extract_lane(s, 3);
      store<f32>(sa + (<usize>(i * nb + kb) << 2), absmax / <f32>127);
      store<i32>(sums + (<usize>(i * nb + kb) << 2), OFFSET * sum);
    }
  }
}

// ---- weights ------------------------------------------------------------------------------------


/** 7-bit codes of row r over [c0, c1) (c0 and r·cols even) into out, through the 16-byte table at tab. */
function decodeCodesI8(d: usize, r: i32, c0: i32, c1: i32, tab: usize, out: usize): void {
  const table = v128.load(tab);
  const packed = <usize>load<u32>(d, Q4D_PACKED);
  const cols = load<i32>(d, Q4D_COLS);
  const src = packed + (<usize>(r * cols + c0) >> 1);
  const n = c1 - c0;
  const mask = i8x16.splat(0x0f);
  let c = 0;
  for (; c + 32 <= n; c += 32) {
    const v = v128.load(src + (<usize>c >> 1));
    const hi = i8x16.shr_u(v, 4);
    const lo = v128.and(v, mask);
    const e0 = i8x16.shuffle(hi, lo, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const e1 = i8x16.shuffle(hi, lo, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    if (ASC_FEATURE_RELAXED_SIMD) {
      v128.store(out + <usize>c, i8x16.relaxed_swizzle(table, e0));
      v128.store(out + <usize>c, i8x16.relaxed_swizzle(table, e1), 16);
    } else {
      v128.store(out + <usize>c, i8x16.swizzle(table, e0));
      v128.store(out + <usize>c, i8x16.swizzle(table, e1), 16);
    }
  }
  for (; c < n; c += 2) {
    const byte = <u32>load<u8>(src + (<usize>c >> 1));
    store<u8>(out + <usize>c, load<u8>(tab + <usize>(byte >> 4)));
    store<u8>(out + <usize>c + 1, load<u8>(tab + <usize>(byte & 15)));
  }
}

/**
 * Packs columns [n0, n0+nc) x k [k0, k0+kc) of the weight: codes into 8-column panels (layout in
 * the header) and column scales (scale(j, kb) · invCs, 0 past the matrix) per (panel, block).
 */
function packI8(dst: usize, scl: usize, d: usize, tab: usize, invCs: f32, n0: i32, nc: i32, k0: i32, kc: i32, bs: i32, row: usize): void {
  const cols = load<u32>(d, Q4D_COLS);
  const bpr = load<u32>(d, Q4D_BLOCKS_PER_ROW);
  const blocksPerRow: u32 = bpr > 0 ? bpr : cols / <u32>bs;
  const nkb = kc / bs;
  const kb0 = <u32>(k0 / bs);
  for (let p = 0; p < nc; p += 8) {
    const rows = min(8, nc - p);
    const sp = scl + <usize>((p >> 3) * nkb) * 32;
    for (let jj = 0; jj < 8; jj++) {
      const rj = row + <usize>(jj * kc);
      if (jj < rows) {
        const r = n0 + p + jj;
        decodeCodesI8(d, r, k0, k0 + kc, tab, rj);
        for (let kb = 0; kb < nkb; kb++) store<f32>(sp + <usize>(kb * 32 + jj * 4), q4BlockScale(d, <u32>r * blocksPerRow + kb0 + <u32>kb) * invCs);
      } else {
        memory.fill(rj, <u8>OFFSET, <usize>kc);
        for (let kb = 0; kb < nkb; kb++) store<f32>(sp + <usize>(kb * 32 + jj * 4), 0);
      }
    }
    // 4x4 transposes of 32-bit lanes (4 k each): rows 4h..4h+3, 16 k in, 4 groups out.
    const panel = dst + <usize>(p * kc);
    let k = 0;
    for (; k + 16 <= kc; k += 16) {
      for (let h = 0; h < 2; h++) {
        const base = row + <usize>(h * 4 * kc + k);
        const x0 = v128.load(base);
        const x1 = v128.load(base + <usize>kc);
        const x2 = v128.load(base + <usize>(2 * kc));
        const x3 = v128.load(base + <usize>(3 * kc));
        const t0 = v128.shuffle<i32>(x0, x1, 0, 4, 1, 5);
        const t1 = v128.shuffle<i32>(x2, x3, 0, 4, 1, 5);
        const t2 = v128.shuffle<i32>(x0, x1, 2, 6, 3, 7);
        const t3 = v128.shuffle<i32>(x2, x3, 2, 6, 3, 7);
        const o = panel + <usize>(k * 8 + h * 16);
        v128.store(o, v128.shuffle<i32>(t0, t1, 0, 1, 4, 5));
        v128.store(o, v128.shuffle<i32>(t0, t1, 2, 3, 6, 7), 32);
        v128.store(o, v128.shuffle<i32>(t2, t3, 0, 1, 4, 5), 64);
        v128.store(o, v128.shuffle<i32>(t2, t3, 2, 3, 6, 7), 96);
      }
    }
    for (; k < kc; k += 4) {
      for (let jj = 0; jj < 8; jj++) store<u32>(panel + <usize>(k * 8 + jj * 4), load<u32>(row + <usize>(jj * kc + k)));
    }
  }
}

// ---- micro-kernels ------------------------------------------------------------------------------

/**
 * 4x8 tile over nkb blocks: c(i, j) (+)= Σ_kb f32(dot − corr) · (sa(i, kb) · ws(j, kb)).
 * a: row i's codes at the first k, lda bytes apart; sa/su: row i's first block scale / correction,
 * ldsa bytes apart; bp/sp: the panel's codes and scales.
 */
function microI8x4x8(c: usize, ldc: usize, a: usize, lda: usize, sa: usize, su: usize, ldsa: usize, bp: usize, sp: usize, nkb: i32, bs: i32, acc: bool): void {
  let a0 = a, a1 = a + lda, a2 = a + 2 * lda, a3 = a + 3 * lda;
  for (let kb = 0; kb < nkb; kb++) {
    // The accumulators start at −64·Σqa (the offset correction): no subtraction at the end.
    const so = <usize>kb << 2;
    let c00 = i32x4.splat(-load<i32>(su + so)), c01 = c00;
    let c10 = i32x4.splat(-load<i32>(su + ldsa + so)), c11 = c10;
    let c20 = i32x4.splat(-load<i32>(su + 2 * ldsa + so)), c21 = c20;
    let c30 = i32x4.splat(-load<i32>(su + 3 * ldsa + so)), c31 = c30;
    for (let g = 0; g < bs; g += 4) {
      const b0 = v128.load(bp);
      const b1 = v128.load(bp, 16);
      let x = v128.load32_splat(a0);
      c00 = dot4(x, b0, c00); c01 = dot4(x, b1, c01);
      x = v128.load32_splat(a1);
      c10 = dot4(x, b0, c10); c11 = dot4(x, b1, c11);
      x = v128.load32_splat(a2);
      c20 = dot4(x, b0, c20); c21 = dot4(x, b1, c21);
      x = v128.load32_splat(a3);
      c30 = dot4(x, b0, c30); c31 = dot4(x, b1, c31);
      a0 += 4; a1 += 4; a2 += 4; a3 += 4;
      bp += 32;
    }
    const w0 = v128.load(sp), w1 = v128.load(sp, 16);
    sp += 32;
    const first = !acc && kb == 0;
    let cr = c;
    finishRow(cr, c00, c01, load<f32>(sa + so), w0, w1, first); cr += ldc;
    finishRow(cr, c10, c11, load<f32>(sa + ldsa + so), w0, w1, first); cr += ldc;
    finishRow(cr, c20, c21, load<f32>(sa + 2 * ldsa + so), w0, w1, first); cr += ldc;
    finishRow(cr, c30, c31, load<f32>(sa + 3 * ldsa + so), w0, w1, first);
  }
}

/** c[0..8) (+)= f32(acc) · (sa · w): one tile row at the end of a block (acc already corrected). */
@inline function finishRow(c: usize, l: v128, h: v128, sa: f32, w0: v128, w1: v128, first: bool): void {
  const s = f32x4.splat(sa);
  const t0 = f32x4.convert_i32x4_s(l);
  const t1 = f32x4.convert_i32x4_s(h);
  if (first) {
    v128.store(c, f32x4.mul(t0, f32x4.mul(s, w0)));
    v128.store(c, f32x4.mul(t1, f32x4.mul(s, w1)), 16);
  } else {
    v128.store(c, fma(t0, f32x4.mul(s, w0), v128.load(c)));
    v128.store(c, fma(t1, f32x4.mul(s, w1), v128.load(c, 16)), 16);
  }
}

/** 1x8 tile (row remainder). */
function microI8x1x8(c: usize, a: usize, sa: usize, su: usize, bp: usize, sp: usize, nkb: i32, bs: i32, acc: bool): void {
  for (let kb = 0; kb < nkb; kb++) {
    const so = <usize>kb << 2;
    let l = i32x4.splat(-load<i32>(su + so)), h = l;
    for (let g = 0; g < bs; g += 4) {
      const x = v128.load32_splat(a);
      l = dot4(x, v128.load(bp), l);
      h = dot4(x, v128.load(bp, 16), h);
      a += 4;
      bp += 32;
    }
    finishRow(c, l, h, load<f32>(sa + so), v128.load(sp), v128.load(sp, 16), !acc && kb == 0);
    sp += 32;
  }
}

// ---- driver -------------------------------------------------------------------------------------

/**
 * y[i, j] (+)= the int8-activation product for i in [m0, m1), j in [n0, n1), over K = weight cols.
 * x: f32 activations [M, K]; its rows m0..m1-1 are quantized first (quantizeRowsI8) into q/sa/sums
 * (laid out for all M rows; a thread writes only its own rows, so threads split by rows and need
 * no second task). d: 4-bit descriptor. scratch: gemmI8ScratchBytes() private to the calling thread.
 */
export function gemmI8Q4(y: usize, ldy: i32, x: usize, q: usize, sa: usize, sums: usize, d: usize, m0: i32, m1: i32, n0: i32, n1: i32, accumulate: i32, scratch: usize): void {
  if (m1 <= m0 || n1 <= n0) return;
  const K = load<i32>(d, Q4D_COLS);
  const bs = load<i32>(d, Q4D_BLOCK_SIZE);
  const nbAll = K / bs;
  quantizeRowsI8(x, K, bs, m0, m1, q, sa, sums);
  // Integer codebook (see the header): qw = nearest(codebook · 63/max|codebook|) + 64.
  const codebook = <usize>load<u32>(d, Q4D_CODEBOOK);
  let cbMax: f32 = 0;
  for (let i = 0; i < 16; i++) cbMax = max(cbMax, abs(load<f32>(codebook + (<usize>i << 2))));
  const cs: f32 = <f32>63 / cbMax;
  const invCs: f32 = cbMax / <f32>63;
  const KC = bs * max(1, KC_MAX / bs);
  const packed = scratch;
  const scl = packed + <usize>(KC_MAX * NC);
  const row = scl + <usize>(NC * (KC_MAX / 4) * 4);
  const tile = row + <usize>(8 * KC_MAX);
  const tab = tile + 128;
  for (let i = 0; i < 16; i++) store<u8>(tab + <usize>i, <i32>nearest(load<f32>(codebook + (<usize>i << 2)) * cs) + OFFSET);
  const ldyB = <usize>ldy * 4;
  const lda = <usize>K;
  const ldsa = <usize>nbAll * 4;
  for (let k0 = 0; k0 < K; k0 += KC) {
    const kc = min(KC, K - k0);
    const nkb = kc / bs;
    const acc = accumulate != 0 || k0 > 0;
    const kb0 = k0 / bs;
    for (let nb = n0; nb < n1; nb += NC) {
      const nc = min(NC, n1 - nb);
      packI8(packed, scl, d, tab, invCs, nb, nc, k0, kc, bs, row);
      let i = m0;
      for (; i + 4 <= m1; i += 4) {
        const ai = q + <usize>i * lda + <usize>k0;
        const si = <usize>(i * nbAll + kb0) << 2;
        for (let p = 0; p < nc; p += 8) {
          const bp = packed + <usize>(p * kc);
          const sp = scl + <usize>((p >> 3) * nkb) * 32;
          const cij = y + <usize>i * ldyB + <usize>(nb + p) * 4;
          if (p + 8 <= nc) {
            microI8x4x8(cij, ldyB, ai, lda, sa + si, sums + si, ldsa, bp, sp, nkb, bs, acc);
          } else {
            const cols = nc - p;
            for (let r = 0; r < 4; r++) for (let jj = 0; jj < cols; jj++) {
              store<f32>(tile + <usize>(r * 8 + jj) * 4, load<f32>(cij + <usize>r * ldyB + <usize>jj * 4));
            }
            microI8x4x8(tile, 32, ai, lda, sa + si, sums + si, ldsa, bp, sp, nkb, bs, acc);
            for (let r = 0; r < 4; r++) for (let jj = 0; jj < cols; jj++) {
              store<f32>(cij + <usize>r * ldyB + <usize>jj * 4, load<f32>(tile + <usize>(r * 8 + jj) * 4));
            }
          }
        }
      }
      for (; i < m1; i++) {
        const ai = q + <usize>i * lda + <usize>k0;
        const si = <usize>(i * nbAll + kb0) << 2;
        for (let p = 0; p < nc; p += 8) {
          const bp = packed + <usize>(p * kc);
          const sp = scl + <usize>((p >> 3) * nkb) * 32;
          const cij = y + <usize>i * ldyB + <usize>(nb + p) * 4;
          if (p + 8 <= nc) {
            microI8x1x8(cij, ai, sa + si, sums + si, bp, sp, nkb, bs, acc);
          } else {
            const cols = nc - p;
            for (let jj = 0; jj < cols; jj++) store<f32>(tile + <usize>jj * 4, load<f32>(cij + <usize>jj * 4));
            microI8x1x8(tile, ai, sa + si, sums + si, bp, sp, nkb, bs, acc);
            for (let jj = 0; jj < cols; jj++) store<f32>(cij + <usize>jj * 4, load<f32>(tile + <usize>jj * 4));
          }
        }
      }
    }
  }
}
