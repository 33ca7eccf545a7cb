// RMSNorm forward and backward in SIMD128, over rows [t0, t1) of x[T, C] (the backward's weight
// gradient over columns [c0, c1), so threads never write the same dweight element). Twin of
// src/kernels/ref/norm.ts, where the math is stated. Sums of squares and the row dot product of
// the backward accumulate in f64: the backward subtracts two nearly equal terms.

import { sumSquaresF64 } from './optim';

/** out = f32(x·r)·w, rstd[t] = r = 1/sqrt(mean(x²) + eps), rows [t0, t1). */
export function rmsnormForwardRows(out: usize, rstd: usize, x: usize, w: usize, t0: i32, t1: i32, C: i32, eps: f64): void {
  for (let t = t0; t < t1; t++) {
    const ro = <usize>t * <usize>C << 2;
    const ms = <f32>(sumSquaresF64(x + ro, C) / <f64>C);
    const r = <f32>(1 / Math.sqrt(<f64>ms + eps));
    store<f32>(rstd + (<usize>t << 2), r);
    const rv = f32x4.splat(r);
    let c = 0;
    for (; c + 4 <= C; c += 4) {
      const o = <usize>c << 2;
      v128.store(out + ro + o, f32x4.mul(f32x4.mul(v128.load(x + ro + o), rv), v128.load(w + o)));
    }
    for (; c < C; c++) {
      const o = <usize>c << 2;
      store<f32>(out + ro + o, (load<f32>(x + ro + o) * r) * load<f32>(w + o));
    }
  }
}

/** dx[t, :] += r·w·dy − r³·x·(Σ dy·w·x)/C, rows [t0, t1). */
export function rmsnormBackwardDx(dx: usize, dout: usize, x: usize, w: usize, rstd: usize, t0: i32, t1: i32, C: i32): void {
  for (let t = t0; t < t1; t++) {
    const ro = <usize>t * <usize>C << 2;
    let a = f64x2.splat(0), b = f64x2.splat(0);
    let c = 0;
    for (; c + 4 <= C; c += 4) {
      const o = <usize>c << 2;
      const p = f32x4.mul(f32x4.mul(v128.load(dout + ro + o), v128.load(w + o)), v128.load(x + ro + o));
      a = f64x2.add(a, f64x2.promote_low_f32x4(p));
      b = f64x2.add(b, f64x2.promote_low_f32x4(v128.shuffle<f32>(p, p, 2, 3, 0, 1)));
    }
    let dot = (f64x2.extract_lane(a, 0) + f64x2.extract_lane(a, 1)) + (f64x2.extract_lane(b, 0) + f64x2.extract_lane(b, 1));
    for (; c < C; c++) {
      const o = <usize>c << 2;
      dot += <f64>(load<f32>(dout + ro + o) * load<f32>(w + o) * load<f32>(x + ro + o));
    }
    const r = load<f32>(rstd + (<usize>t << 2));
    const r64 = <f64>r;
    const k = <f32>((r64 * r64 * r64 * dot) / <f64>C);
    const rv = f32x4.splat(r);
    const kv = f32x4.splat(k);
    c = 0;
    for (; c + 4 <= C; c += 4) {
      const o = <usize>c << 2;
      const g = f32x4.sub(f32x4.mul(f32x4.mul(rv, v128.load(w + o)), v128.load(dout + ro + o)), f32x4.mul(kv, v128.load(x + ro + o)));
      v128.store(dx + ro + o, f32x4.add(v128.load(dx + ro + o), g));
    }
    for (; c < C; c++) {
      const o = <usize>c << 2;
      store<f32>(dx + ro + o, load<f32>(dx + ro + o) + (r * load<f32>(w + o) * load<f32>(dout + ro + o) - k * load<f32>(x + ro + o)));
    }
  }
}

/** dw[c] += Σ_t dy[t, c]·x[t, c]·rstd[t] for columns [c0, c1), summed over t in f64. */
export function rmsnormBackwardDw(dw: usize, dout: usize, x: usize, rstd: usize, T: i32, C: i32, c0: i32, c1: i32): void {
  const rowB = <usize>C << 2;
  let c = c0;
  for (; c + 4 <= c1; c += 4) {
    let a = f64x2.splat(0), b = f64x2.splat(0);
    let o = <usize>c << 2;
    for (let t = 0; t < T; t++, o += rowB) {
      const p = f32x4.mul(f32x4.mul(v128.load(dout + o), v128.load(x + o)), f32x4.splat(load<f32>(rstd + (<usize>t << 2))));
      a = f64x2.add(a, f64x2.promote_low_f32x4(p));
      b = f64x2.add(b, f64x2.promote_low_f32x4(v128.shuffle<f32>(p, p, 2, 3, 0, 1)));
    }
    const w = dw + (<usize>c << 2);
    store<f32>(w, load<f32>(w) + <f32>f64x2.extract_lane(a, 0));
    store<f32>(w, load<f32>(w, 4) + <f32>f64x2.extract_lane(a, 1), 4);
    store<f32>(w, load<f32>(w, 8) + <f32>f64x2.extract_lane(b, 0), 8);
    store<f32>(w, load<f32>(w, 12) + <f32>f64x2.extract_lane(b, 1), 12);
  }
  for (; c < c1; c++) {
    let s: f64 = 0;
    for (let t = 0; t < T; t++) {
      const o = (<usize>t * <usize>C + <usize>c) << 2;
      s += <f64>(load<f32>(dout + o) * load<f32>(x + o) * load<f32>(rstd + (<usize>t << 2)));
    }
    store<f32>(dw + (<usize>c << 2), load<f32>(dw + (<usize>c << 2)) + <f32>s);
  }
}
