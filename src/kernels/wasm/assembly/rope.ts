// Rotary embedding (Hugging Face rotate_half pairing) in SIMD128, in place on rows [t0, t1) of
// x[T, stride]; four pairs (i, i + D/2) per vector. Twin of src/kernels/ref/rope.ts (math there).

/** inverse != 0 rotates by −φ (the backward pass). positions: i32[T]; cos/sin: f32[maxPos, D/2]. */
export function ropeRows(x: usize, positions: usize, cos: usize, sin: usize, t0: i32, t1: i32, nHeads: i32, D: i32, inverse: i32, stride: i32): void {
  const half = D >> 1;
  const halfB = <usize>half << 2;
  const sign: f32 = inverse != 0 ? -1 : 1;
  const sv = f32x4.splat(sign);
  for (let t = t0; t < t1; t++) {
    const tab = <usize>load<i32>(positions + (<usize>t << 2)) * halfB;
    for (let h = 0; h < nHeads; h++) {
      const a = x + ((<usize>t * <usize>stride + <usize>h * <usize>D) << 2);
      const b = a + halfB;
      let i = 0;
      for (; i + 4 <= half; i += 4) {
        const o = <usize>i << 2;
        const c = v128.load(cos + tab + o);
        const s = f32x4.mul(v128.load(sin + tab + o), sv);
        const va = v128.load(a + o);
        const vb = v128.load(b + o);
        v128.store(a + o, f32x4.sub(f32x4.mul(va, c), f32x4.mul(vb, s)));
        v128.store(b + o, f32x4.add(f32x4.mul(vb, c), f32x4.mul(va, s)));
      }
      for (; i < half; i++) {
        const o = <usize>i << 2;
        const c = load<f32>(cos + tab + o);
        const s = load<f32>(sin + tab + o) * sign;
        const va = load<f32>(a + o);
        const vb = load<f32>(b + o);
        store<f32>(a + o, va * c - vb * s);
        store<f32>(b + o, vb * c + va * s);
      }
    }
  }
}
