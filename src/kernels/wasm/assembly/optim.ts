// Optimiser kernels in SIMD128: sum of squares (f64 accumulation, for global-norm clipping),
// in-place scaling, and one torch.optim.AdamW step. Twins of src/kernels/ref/optim.ts, where the formulas are stated.
// Ranges [i0, i1) are one thread's share; addresses are byte offsets in the shared memory.

/** Σ x[j]² over x[0..n) in f64 (each square is formed in f64 from the f32 value: exact). */
export function sumSquaresF64(x: usize, n: i32): f64 {
  let a = f64x2.splat(0), b = f64x2.splat(0);
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    const v = v128.load(x + (<usize>j << 2));
    const lo = f64x2.promote_low_f32x4(v);
    const hi = f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 0, 1));
    a = f64x2.add(a, f64x2.mul(lo, lo));
    b = f64x2.add(b, f64x2.mul(hi, hi));
  }
  let s = (f64x2.extract_lane(a, 0) + f64x2.extract_lane(a, 1)) + (f64x2.extract_lane(b, 0) + f64x2.extract_lane(b, 1));
  for (; j < n; j++) {
    const v = <f64>load<f32>(x + (<usize>j << 2));
    s += v * v;
  }
  return s;
}

/** out64[0] = Σ x² over [i0, i1) (one thread's partial sum, combined by the caller). */
export function sumSquaresRange(x: usize, i0: i32, i1: i32, out64: usize): void {
  store<f64>(out64, sumSquaresF64(x + (<usize>i0 << 2), i1 - i0));
}

/** x[i] *= s over [i0, i1). */
export function scaleRange(x: usize, i0: i32, i1: i32, s: f32): void {
  const sv = f32x4.splat(s);
  let i = i0;
  for (; i + 4 <= i1; i += 4) v128.store(x + (<usize>i << 2), f32x4.mul(v128.load(x + (<usize>i << 2)), sv));
  for (; i < i1; i++) store<f32>(x + (<usize>i << 2), load<f32>(x + (<usize>i << 2)) * s);
}

/** out[i] = a[i] + b[i] over [i0, i1) (out may be a or b). */
export function addRange(out: usize, a: usize, b: usize, i0: i32, i1: i32): void {
  let i = i0;
  for (; i + 8 <= i1; i += 8) {
    const o = <usize>i << 2;
    v128.store(out + o, f32x4.add(v128.load(a + o), v128.load(b + o)));
    v128.store(out + o, f32x4.add(v128.load(a + o, 16), v128.load(b + o, 16)), 16);
  }
  for (; i < i1; i++) store<f32>(out + (<usize>i << 2), load<f32>(a + (<usize>i << 2)) + load<f32>(b + (<usize>i << 2)));
}

/**
 * AdamW over [i0, i1): p *= decay; m += (1−β1)(g − m); v = β2 v + (1−β2) g²;
 * p −= stepSize · m / (sqrt(v) / bc2Sqrt + eps), with oneMinusBeta1/2 = 1 − β1/2, decay = 1 − lr·wd,
 * stepSize = lr/(1−β1ᵗ), bc2Sqrt = sqrt(1−β2ᵗ) all computed by the caller in f64 (1 − f32(0.999)
 * would be off by 1.3e-5 relative).
 */
export function adamwRange(p: usize, g: usize, m: usize, v: usize, i0: i32, i1: i32, oneMinusBeta1: f32, beta2: f32, oneMinusBeta2: f32, eps: f32, decay: f32, stepSize: f32, bc2Sqrt: f32): void {
  const c1 = f32x4.splat(oneMinusBeta1);
  const b2 = f32x4.splat(beta2);
  const c2 = f32x4.splat(oneMinusBeta2);
  const ev = f32x4.splat(eps);
  const dv = f32x4.splat(decay);
  const sv = f32x4.splat(stepSize);
  const bv = f32x4.splat(bc2Sqrt);
  let i = i0;
  for (; i + 4 <= i1; i += 4) {
    const o = <usize>i << 2;
    const gi = v128.load(g + o);
    let mi = v128.load(m + o);
    mi = f32x4.add(mi, f32x4.mul(c1, f32x4.sub(gi, mi)));
    const vi = f32x4.add(f32x4.mul(b2, v128.load(v + o)), f32x4.mul(c2, f32x4.mul(gi, gi)));
    v128.store(m + o, mi);
    v128.store(v + o, vi);
    const denom = f32x4.add(f32x4.div(f32x4.sqrt(vi), bv), ev);
    const pi = f32x4.mul(v128.load(p + o), dv);
    v128.store(p + o, f32x4.sub(pi, f32x4.div(f32x4.mul(sv, mi), denom)));
  }
  for (; i < i1; i++) {
    const o = <usize>i << 2;
    const gi = load<f32>(g + o);
    let mi = load<f32>(m + o);
    mi += oneMinusBeta1 * (gi - mi);
    const vi = beta2 * load<f32>(v + o) + oneMinusBeta2 * gi * gi;
    store<f32>(m + o, mi);
    store<f32>(v + o, vi);
    const pi = load<f32>(p + o) * decay;
    store<f32>(p + o, pi - (stepSize * mi) / (Mathf.sqrt(vi) / bc2Sqrt + eps));
  }
}
