// Elementwise and row kernels in SIMD128: SiLU·mul (SwiGLU) forward/backward and row softmax.
// Twins of src/kernels/ref/act.ts; the math is stated there. All addresses are byte offsets in
// the shared memory; ranges [i0, i1) are one thread's share.
// Not here: the vector math they use (vmath.ts).

import { exp2NonPositiveF32x4, expF32, expF32x4, expShiftSum, rowMax, scaleRow } from './vmath';

const LOG2E: f32 = 1.4426950408889634;

/** σ(g) = 1 / (1 + e^−g) for 4 lanes. */
@inline function sigmoidF32x4(g: v128): v128 {
  return f32x4.div(f32x4.splat(1), f32x4.add(f32x4.splat(1), expF32x4(f32x4.neg(g))));
}

@inline function sigmoidF32(g: f32): f32 {
  return 1 / (1 + expF32(-g));
}

/**
 * silu(g) = g·σ(g) for 4 lanes with one exponential, e = e^−|g| <= 1 (the base-2 polynomial of
 * vmath.ts): σ(g) = 1 / (1 + e) for g >= 0 and e / (1 + e) below. e is set to exact 0 where
 * |g| > 86.6 (the polynomial's floor is 2^−125), so silu(−inf) = −inf·0 = NaN as in the reference.
 */
@inline function siluF32x4(g: v128): v128 {
  const t = f32x4.mul(f32x4.abs(g), f32x4.splat(-LOG2E));
  const e = v128.andnot(exp2NonPositiveF32x4(t), f32x4.lt(t, f32x4.splat(-125)));
  const num = v128.bitselect(f32x4.mul(g, e), g, f32x4.lt(g, f32x4.splat(0)));
  return f32x4.div(num, f32x4.add(f32x4.splat(1), e));
}

/** out = silu(gate) ⊙ up over elements [i0, i1). */
export function siluMulForward(out: usize, gate: usize, up: usize, i0: i32, i1: i32): void {
  let i = i0;
  for (; i + 8 <= i1; i += 8) {
    const o = <usize>i << 2;
    v128.store(out + o, f32x4.mul(siluF32x4(v128.load(gate + o)), v128.load(up + o)));
    v128.store(out + o, f32x4.mul(siluF32x4(v128.load(gate + o, 16)), v128.load(up + o, 16)), 16);
  }
  for (; i + 4 <= i1; i += 4) {
    const o = <usize>i << 2;
    v128.store(out + o, f32x4.mul(siluF32x4(v128.load(gate + o)), v128.load(up + o)));
  }
  for (; i < i1; i++) {
    const o = <usize>i << 2;
    const g = load<f32>(gate + o);
    store<f32>(out + o, g * sigmoidF32(g) * load<f32>(up + o));
  }
}

/** dgate += dout·up·σ(g)(1 + g(1 − σ(g))); dup += dout·g·σ(g), over [i0, i1). */
export function siluMulBackward(dgate: usize, dup: usize, dout: usize, gate: usize, up: usize, i0: i32, i1: i32): void {
  let i = i0;
  const one = f32x4.splat(1);
  for (; i + 4 <= i1; i += 4) {
    const o = <usize>i << 2;
    const g = v128.load(gate + o);
    const d = v128.load(dout + o);
    const s = sigmoidF32x4(g);
    const dsilu = f32x4.mul(s, f32x4.add(one, f32x4.mul(g, f32x4.sub(one, s))));
    v128.store(dgate + o, f32x4.add(v128.load(dgate + o), f32x4.mul(f32x4.mul(d, v128.load(up + o)), dsilu)));
    v128.store(dup + o, f32x4.add(v128.load(dup + o), f32x4.mul(d, f32x4.mul(g, s))));
  }
  for (; i < i1; i++) {
    const o = <usize>i << 2;
    const g = load<f32>(gate + o);
    const d = load<f32>(dout + o);
    const s = sigmoidF32(g);
    store<f32>(dgate + o, load<f32>(dgate + o) + d * load<f32>(up + o) * s * (1 + g * (1 - s)));
    store<f32>(dup + o, load<f32>(dup + o) + d * g * s);
  }
}

/** In-place softmax of rows [r0, r1) of x[rows, cols]: max subtracted, f64 sum. */
export function softmaxRows(x: usize, r0: i32, r1: i32, cols: i32): void {
  for (let r = r0; r < r1; r++) {
    const row = x + (<usize>r * <usize>cols << 2);
    const m = rowMax(row, cols);
    const sum = expShiftSum(row, row, cols, m, 1);
    scaleRow(row, cols, <f32>(1 / sum));
  }
}
