// The start-up speed probe of the fused int8 dot (src/kernels/wasm/module.ts): two loops with the
// shape of the int8 micro-kernels (gemm-i8.ts: two weight vectors loaded per step, broadcast
// activations, six independent accumulators), one with i32x4.relaxed_dot_i8x16_i7x16_add_s and one
// with the split form (relaxed i16 dot, then pmaddwd against a `ones` vector loaded from memory, as
// vconst.ts keeps it). V8 lowers the fused op to one VNNI instruction only where the CPU reports
// AVX-VNNI; elsewhere to the split form with its constant rebuilt at every use, slower than the
// split form itself (int8 GEMM 0.8x, measured on Node 24.22 on a CPU whose AVX-VNNI the VM hides).
// Both return the same sum of their accumulators, which the probe also compares (the optimized
// tier's exactness). Compiled by scripts/build-wasm.mjs into dist/wasm/probe-dot-speed.wasm with its
// own memory; not part of the kernels.

const W: usize = 0; // 16 weight vectors (256 bytes) the loops walk through
const X: usize = 256; // 16 activation words
const ONES: usize = 320;

/** Fills the operands from seed (codes 0..127, activations -128..127) and the ones vector. */
export function init(seed: u32): void {
  let s = seed;
  for (let i: usize = 0; i < 320; i++) {
    s = s * 1664525 + 1013904223;
    const byte = <u8>(s >> 24);
    store<u8>(i, i < X ? byte & 0x7f : byte);
  }
  for (let i: usize = 0; i < 8; i++) store<u16>(ONES + (i << 1), 1);
}

@inline function sum6(a: v128, b: v128, c: v128, d: v128, e: v128, f: v128): i32 {
  const t = i32x4.add(i32x4.add(i32x4.add(a, b), i32x4.add(c, d)), i32x4.add(e, f));
  return i32x4.extract_lane(t, 0) + i32x4.extract_lane(t, 1) + i32x4.extract_lane(t, 2) + i32x4.extract_lane(t, 3);
}

export function fused(steps: i32): i32 {
  let d0 = i32x4.splat(0), d1 = d0, d2 = d0, d3 = d0, d4 = d0, d5 = d0;
  for (let i = 0; i < steps; i++) {
    const o = <usize>(i & 7) << 5;
    const b0 = v128.load(W + o), b1 = v128.load(W + o, 16);
    const xo = X + (<usize>(i & 3) << 2);
    let x = v128.load32_splat(xo);
    d0 = i32x4.relaxed_dot_i8x16_i7x16_add_s(x, b0, d0); d1 = i32x4.relaxed_dot_i8x16_i7x16_add_s(x, b1, d1);
    x = v128.load32_splat(xo, 16);
    d2 = i32x4.relaxed_dot_i8x16_i7x16_add_s(x, b0, d2); d3 = i32x4.relaxed_dot_i8x16_i7x16_add_s(x, b1, d3);
    x = v128.load32_splat(xo, 32);
    d4 = i32x4.relaxed_dot_i8x16_i7x16_add_s(x, b0, d4); d5 = i32x4.relaxed_dot_i8x16_i7x16_add_s(x, b1, d5);
  }
  return sum6(d0, d1, d2, d3, d4, d5);
}

@inline function split(x: v128, b: v128, c: v128, ones: v128): v128 {
  return i32x4.add(c, i32x4.dot_i16x8_s(i16x8.relaxed_dot_i8x16_i7x16_s(x, b), ones));
}

export function twoStep(steps: i32): i32 {
  const ones = v128.load(ONES);
  let d0 = i32x4.splat(0), d1 = d0, d2 = d0, d3 = d0, d4 = d0, d5 = d0;
  for (let i = 0; i < steps; i++) {
    const o = <usize>(i & 7) << 5;
    const b0 = v128.load(W + o), b1 = v128.load(W + o, 16);
    const xo = X + (<usize>(i & 3) << 2);
    let x = v128.load32_splat(xo);
    d0 = split(x, b0, d0, ones); d1 = split(x, b1, d1, ones);
    x = v128.load32_splat(xo, 16);
    d2 = split(x, b0, d2, ones); d3 = split(x, b1, d3, ones);
    x = v128.load32_splat(xo, 32);
    d4 = split(x, b0, d4, ones); d5 = split(x, b1, d5, ones);
  }
  return sum6(d0, d1, d2, d3, d4, d5);
}
