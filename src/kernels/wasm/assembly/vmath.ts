// Vector math shared by the activation, loss and attention kernels (not exported from the
// module: v128 values do not cross the JS boundary): FMA, a vectorised e^x, row max, and the
// exp-and-sum of a shifted row. Not kernels themselves.

@inline export function fmaF32x4(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(c, f32x4.mul(a, b));
}

// e^x for 4 lanes (Cephes expf): x = n·ln2 + r, |r| <= ln2/2, e^r by a degree-6 polynomial,
// 2^n by building the exponent bits. ~1 ulp on [-87.3, 88.37]; +inf above (including the last
// sliver (88.37, 88.72] where e^x is still finite), 0 below -87.3 (the f32 subnormal range is
// flushed: < 1.2e-38 absolute), NaN stays NaN.
const EXP_HI: f32 = 88.3762626647949;
const EXP_LO: f32 = -87.3365478515625;
const LOG2E: f32 = 1.44269504088896341;
const LN2_HI: f32 = 0.693359375;
const LN2_LO: f32 = -2.12194440e-4;
const ROUND_MAGIC: f32 = 12582912; // 1.5 · 2^23

@inline export function expF32x4(x: v128): v128 {
  // No clamp of x (two NaN-exact min/max cost ~14 instructions): out-of-range lanes produce junk
  // that the two selects at the end replace; NaN lanes stay NaN throughout.
  const xc = x;
  // Round x·log2e to an integer with the 1.5·2^23 trick: the sum's low mantissa bits are the
  // integer (cheaper than f32x4.nearest + i32x4.trunc_sat, which V8 expands to ~8 instructions).
  const shifted = f32x4.add(f32x4.mul(xc, f32x4.splat(LOG2E)), f32x4.splat(ROUND_MAGIC));
  const n = f32x4.sub(shifted, f32x4.splat(ROUND_MAGIC));
  let r = f32x4.sub(xc, f32x4.mul(n, f32x4.splat(LN2_HI)));
  r = f32x4.sub(r, f32x4.mul(n, f32x4.splat(LN2_LO)));
  let p = f32x4.splat(1.9875691500e-4);
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.3981999507e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(8.3334519073e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(4.1665795894e-2));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.6666665459e-1));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(5.0000001201e-1));
  p = f32x4.add(f32x4.add(f32x4.mul(f32x4.mul(p, r), r), r), f32x4.splat(1));
  const pow2n = i32x4.shl(i32x4.add(i32x4.sub(shifted, f32x4.splat(ROUND_MAGIC)), i32x4.splat(127)), 23);
  let y = f32x4.mul(p, pow2n);
  y = v128.bitselect(f32x4.splat(Infinity), y, f32x4.gt(x, f32x4.splat(EXP_HI)));
  y = v128.bitselect(f32x4.splat(0), y, f32x4.lt(x, f32x4.splat(EXP_LO)));
  return y;
}

/**
 * e^x for lanes x <= 0 or NaN (softmax terms x = s − max): expF32x4's reduction and polynomial in
 * FMA form (relaxed build), without the overflow select. Below EXP_LO the input is clamped by a
 * NaN-preserving pmax, so e^x for x < −87.34 (and for −inf) is 2^−126 ≈ 1.2e-38, not 0: callers
 * must not rely on exact zeros (attention-infer.ts never multiplies a masked term into a row).
 */
@inline export function expNonPositiveF32x4(x: v128): v128 {
  const xc = f32x4.pmax(x, f32x4.splat(EXP_LO));
  const shifted = fmaF32x4(xc, f32x4.splat(LOG2E), f32x4.splat(ROUND_MAGIC));
  const n = f32x4.sub(shifted, f32x4.splat(ROUND_MAGIC));
  let r = fmaF32x4(n, f32x4.splat(-LN2_HI), xc);
  r = fmaF32x4(n, f32x4.splat(-LN2_LO), r);
  let p = fmaF32x4(f32x4.splat(1.9875691500e-4), r, f32x4.splat(1.3981999507e-3));
  p = fmaF32x4(p, r, f32x4.splat(8.3334519073e-3));
  p = fmaF32x4(p, r, f32x4.splat(4.1665795894e-2));
  p = fmaF32x4(p, r, f32x4.splat(1.6666665459e-1));
  p = fmaF32x4(p, r, f32x4.splat(5.0000001201e-1));
  const y = f32x4.add(fmaF32x4(p, f32x4.mul(r, r), r), f32x4.splat(1));
  // 2^n: bits(shifted) − bits(ROUND_MAGIC) = n (the rounded integer sits in the low mantissa bits).
  const pow2n = i32x4.shl(i32x4.add(shifted, i32x4.splat(127 - 0x4B400000)), 23);
  return f32x4.mul(y, pow2n);
}

@inline export function expF32(x: f32): f32 {
  return f32x4.extract_lane(expF32x4(f32x4.splat(x)), 0);
}

/** max over x[0..n) (NaN if any element is NaN; −inf for n = 0). */
export function rowMax(x: usize, n: i32): f32 {
  let m = f32x4.splat(-Infinity);
  let j = 0;
  for (; j + 4 <= n; j += 4) m = f32x4.max(m, v128.load(x + (<usize>j << 2)));
  let s = max(max(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1)), max(f32x4.extract_lane(m, 2), f32x4.extract_lane(m, 3)));
  for (; j < n; j++) s = max(s, load<f32>(x + (<usize>j << 2)));
  return s;
}

/**
 * Σ_j e^(x[j] − shift) over x[0..n), summed in f64 across blocks of 256 f32 partial sums
 * (vocabularies of 150k values); when dst != 0 also stores dst[j] = e^(x[j] − shift) · mul
 * (dst may equal x).
 */
export function expShiftSum(dst: usize, x: usize, n: i32, shift: f32, mul: f32): f64 {
  const sh = f32x4.splat(shift);
  const mv = f32x4.splat(mul);
  let total: f64 = 0;
  let j = 0;
  while (j + 8 <= n) {
    const end = min(n, j + 256);
    // Two vectors per step: independent exp chains overlap (the polynomial is latency-bound).
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0);
    for (; j + 8 <= end; j += 8) {
      const o = <usize>j << 2;
      const e0 = expF32x4(f32x4.sub(v128.load(x + o), sh));
      const e1 = expF32x4(f32x4.sub(v128.load(x + o, 16), sh));
      a0 = f32x4.add(a0, e0);
      a1 = f32x4.add(a1, e1);
      if (dst != 0) {
        v128.store(dst + o, f32x4.mul(e0, mv));
        v128.store(dst + o, f32x4.mul(e1, mv), 16);
      }
    }
    a0 = f32x4.add(a0, a1);
    total += <f64>f32x4.extract_lane(a0, 0) + <f64>f32x4.extract_lane(a0, 1) + <f64>f32x4.extract_lane(a0, 2) + <f64>f32x4.extract_lane(a0, 3);
  }
  for (; j < n; j++) {
    const o = <usize>j << 2;
    const e = expF32(load<f32>(x + o) - shift);
    total += <f64>e;
    if (dst != 0) store<f32>(dst + o, e * mul);
  }
  return total;
}

/** x[0..n) *= s. */
export function scaleRow(x: usize, n: i32, s: f32): void {
  const sv = f32x4.splat(s);
  let j = 0;
  for (; j + 4 <= n; j += 4) v128.store(x + (<usize>j << 2), f32x4.mul(v128.load(x + (<usize>j << 2)), sv));
  for (; j < n; j++) store<f32>(x + (<usize>j << 2), load<f32>(x + (<usize>j << 2)) * s);
}

