// AssemblyScript kernel entry: every exported kernel of the wasm backend is re-exported here.
// Compiled twice by scripts/build-wasm.mjs (SIMD128, and SIMD128 + relaxed SIMD); code that
// differs between the two branches on the compile-time constant ASC_FEATURE_RELAXED_SIMD.

/** Dot product of two f32 vectors at byte offsets a, b with n elements (build self-check). */
export function dotF32(a: usize, b: usize, n: i32): f32 {
  let acc = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const va = v128.load(a + (<usize>i << 2));
    const vb = v128.load(b + (<usize>i << 2));
    if (ASC_FEATURE_RELAXED_SIMD) acc = f32x4.relaxed_madd(va, vb, acc);
    else acc = f32x4.add(acc, f32x4.mul(va, vb));
  }
  let s = f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1) + f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3);
  for (; i < n; i++) s += load<f32>(a + (<usize>i << 2)) * load<f32>(b + (<usize>i << 2));
  return s;
}
