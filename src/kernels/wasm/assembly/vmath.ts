// Vector math shared by the activation, loss and attention kernels (not exported from the
// module: v128 values do not cross the JS boundary): FMA, a vectorised e^x (and 2^t for softmax
// terms), row max, and the exp-and-sum of a shifted row. Not kernels themselves.

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

// 2^f on [−0.5, 0.5]: degree-6 polynomial fitted to relative error (Chebyshev nodes, f32
// coefficients): 1.6e-8 relative before the f32 rounding of Horner's steps.
const EXP2_C1: f32 = 0.6931471824645996;
const EXP2_C2: f32 = 0.24022646248340607;
const EXP2_C3: f32 = 0.05550329014658928;
const EXP2_C4: f32 = 0.009618519805371761;
const EXP2_C5: f32 = 0.0013399859890341759;
const EXP2_C6: f32 = 0.00015337577497120947;

/**
 * 2^t for lanes t <= 0 or NaN (softmax terms in base 2: t = (s − max)·log2e). t = n + f with n an
 * integer, |f| <= 1/2; 2^f by the polynomial above, 2^n from exponent bits: seven multiplier
 * operations (expF32x4 needs eleven and its range selects). Below −125 the input is clamped (a
 * NaN-preserving pmax), so 2^t for t < −125 (and −inf) is 2^−125 ≈ 2.4e-38, not 0: callers must
 * not rely on exact zeros.
 */
@inline export function exp2NonPositiveF32x4(t: v128): v128 {
  const tc = f32x4.pmax(t, f32x4.splat(-125));
  const tm = f32x4.add(tc, f32x4.splat(ROUND_MAGIC));
  const f = f32x4.sub(tc, f32x4.sub(tm, f32x4.splat(ROUND_MAGIC)));
  let p = fmaF32x4(f32x4.splat(EXP2_C6), f, f32x4.splat(EXP2_C5));
  p = fmaF32x4(p, f, f32x4.splat(EXP2_C4));
  p = fmaF32x4(p, f, f32x4.splat(EXP2_C3));
  p = fmaF32x4(p, f, f32x4.splat(EXP2_C2));
  p = fmaF32x4(p, f, f32x4.splat(EXP2_C1));
  p = fmaF32x4(p, f, f32x4.splat(1));
  // 2^n: bits(tm) − bits(ROUND_MAGIC) = n; a multiply (not an exponent add) keeps NaN lanes NaN.
  const pow2n = i32x4.shl(i32x4.add(tm, i32x4.splat(127 - 0x4B400000)), 23);
  return f32x4.mul(p, pow2n);
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

