// 4-bit weight decoding inside wasm: the Quant4 descriptor and one row range of a weight, either
// decoded to f32 (GEMM panel packing, dequantizeQ4Rows) or dotted with an f32 vector on the fly
// (the fused decode-and-dot of the 4-bit GEMV).
// Arithmetic follows src/quant/types.ts / FORMATS.md §3.6 to the bit: w = f32(codebook[q]·scale[b])
// (+ zeros[b]), scale from plain f32 absmax or decoded on the fly from double-quantized codes.
// Not here: quantization (quant.ts), the f32 GEMM (gemm.ts), caching of weights (JS side, q4cache.ts).
//
// Decoding: the 4-bit codes of 16 bytes are split into high/low nibbles and re-interleaved into
// element order, then looked up with 4 byte swizzles (one per byte plane of the f32 codebook) and
// re-assembled into f32 lanes with unpack shuffles: 32 values per 16 bytes, no scalar loads.
//
// Descriptor layout: q4desc.ts.
import { nibbleMask } from './vconst';
import { Q4D_ABSMAX, Q4D_BLOCKS_PER_ROW, Q4D_BLOCK_SIZE, Q4D_CODEBOOK, Q4D_COLS, Q4D_PACKED, Q4D_PLANES, Q4D_ZEROS } from './q4desc';
@inline function lookup(t: v128, e: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return i8x16.relaxed_swizzle(t, e);
  return i8x16.swizzle(t, e);
}

/** f32(v + zero) for the zero-point variant (the same two roundings as the reference). */
@inline function withZero(v: v128, zv: v128, hasZero: bool): v128 {
  return hasZero ? f32x4.add(v, zv) : v;
}

@inline function fma(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(c, f32x4.mul(a, b));
}

/**
 * Walks row r of the weight at descriptor d over columns [c0, c1), block run by block run.
 * DOT = false: writes dequant(w)[r, c] to out + (c - c0)·4 and returns 0.
 * DOT = true:  returns Σ_c x[c - c0]·dequant(w)[r, c] (x at byte address x), out unused.
 * Every value is f32(codebook[q]·scale[b]) (+ zeros[b]) exactly as the reference; the dot sums in
 * 8 v128 accumulators (order differs from the reference: tolerance, not bits).
 */
@inline function walkRow(d: usize, r: i32, c0: i32, c1: i32, out: usize, x: usize, DOT: bool): f32 {
  const packed = <usize>load<u32>(d, Q4D_PACKED);
  const codebook = <usize>load<u32>(d, Q4D_CODEBOOK);
  const cols = load<u32>(d, Q4D_COLS);
  const bs = load<u32>(d, Q4D_BLOCK_SIZE);
  const bpr = load<u32>(d, Q4D_BLOCKS_PER_ROW);
  const absmax = <usize>load<u32>(d, Q4D_ABSMAX);
  const zeros = <usize>load<u32>(d, Q4D_ZEROS);
  const planes = <usize>load<u32>(d, Q4D_PLANES);
  const t0 = v128.load(planes), t1 = v128.load(planes, 16), t2 = v128.load(planes, 32), t3 = v128.load(planes, 48);
  const rowBase = <u32>r * cols;
  const end = <u32>c1;
  let c = <u32>c0;
  if (c >= end) return 0;
  // First block and the column where the next one starts; later blocks follow by increments.
  let b: u32, boundary: u32;
  if (bpr > 0) {
    const cb = c / bs;
    b = <u32>r * bpr + cb;
    boundary = (cb + 1) * bs;
  } else {
    b = (rowBase + c) / bs;
    boundary = (b + 1) * bs - rowBase;
  }
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  let a4 = f32x4.splat(0), a5 = f32x4.splat(0), a6 = f32x4.splat(0), a7 = f32x4.splat(0);
  let tail: f32 = 0;
  const mask = nibbleMask();
  while (c < end) {
    const runEnd = min(end, boundary);
    const scale = load<f32>(absmax + (<usize>b << 2));
    const hasZero = zeros != 0;
    const zero: f32 = hasZero ? load<f32>(zeros + (<usize>b << 2)) : 0;
    // Odd flat index: one element from a low nibble to reach a byte boundary.
    if (((rowBase + c) & 1) != 0) {
      let v: f32 = load<f32>(codebook + (<usize>(load<u8>(packed + ((rowBase + c) >> 1)) & 15) << 2)) * scale;
      if (hasZero) v += zero;
      if (DOT) tail += load<f32>(x + (<usize>(c - <u32>c0) << 2)) * v;
      else store<f32>(out + (<usize>(c - <u32>c0) << 2), v);
      c++;
    }
    {
      const sv = f32x4.splat(scale);
      const zv = f32x4.splat(zero);
      while (c + 32 <= runEnd) {
        const v = v128.load(packed + ((rowBase + c) >> 1));
        const hi = i8x16.shr_u(v, 4);
        const lo = v128.and(v, mask);
        const o = <usize>(c - <u32>c0) << 2;
        // Elements 0..15 of the 32 come from bytes 0..7 (high nibble first), 16..31 from 8..15.
        {
          const e = i8x16.shuffle(hi, lo, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
          const p0 = lookup(t0, e), p1 = lookup(t1, e), p2 = lookup(t2, e), p3 = lookup(t3, e);
          const pa = i8x16.shuffle(p0, p1, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
          const pb = i8x16.shuffle(p0, p1, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
          const pc = i8x16.shuffle(p2, p3, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
          const pd = i8x16.shuffle(p2, p3, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
          const f0 = withZero(f32x4.mul(i8x16.shuffle(pa, pc, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23), sv), zv, hasZero);
          const f1 = withZero(f32x4.mul(i8x16.shuffle(pa, pc, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31), sv), zv, hasZero);
          const f2 = withZero(f32x4.mul(i8x16.shuffle(pb, pd, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23), sv), zv, hasZero);
          const f3 = withZero(f32x4.mul(i8x16.shuffle(pb, pd, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31), sv), zv, hasZero);
          const oh = o;
          if (DOT) {
            a0 = fma(f0, v128.load(x + oh), a0); a1 = fma(f1, v128.load(x + oh, 16), a1);
            a2 = fma(f2, v128.load(x + oh, 32), a2); a3 = fma(f3, v128.load(x + oh, 48), a3);
          } else {
            v128.store(out + oh, f0); v128.store(out + oh, f1, 16);
            v128.store(out + oh, f2, 32); v128.store(out + oh, f3, 48);
          }
        }
        {
          const e = i8x16.shuffle(hi, lo, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
          const p0 = lookup(t0, e), p1 = lookup(t1, e), p2 = lookup(t2, e), p3 = lookup(t3, e);
          const pa = i8x16.shuffle(p0, p1, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
          const pb = i8x16.shuffle(p0, p1, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
          const pc = i8x16.shuffle(p2, p3, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
          const pd = i8x16.shuffle(p2, p3, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
          const f0 = withZero(f32x4.mul(i8x16.shuffle(pa, pc, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23), sv), zv, hasZero);
          const f1 = withZero(f32x4.mul(i8x16.shuffle(pa, pc, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31), sv), zv, hasZero);
          const f2 = withZero(f32x4.mul(i8x16.shuffle(pb, pd, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23), sv), zv, hasZero);
          const f3 = withZero(f32x4.mul(i8x16.shuffle(pb, pd, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31), sv), zv, hasZero);
          const oh = o + 64;
          if (DOT) {
            a4 = fma(f0, v128.load(x + oh), a4); a5 = fma(f1, v128.load(x + oh, 16), a5);
            a6 = fma(f2, v128.load(x + oh, 32), a6); a7 = fma(f3, v128.load(x + oh, 48), a7);
          } else {
            v128.store(out + oh, f0); v128.store(out + oh, f1, 16);
            v128.store(out + oh, f2, 32); v128.store(out + oh, f3, 48);
          }
        }
        c += 32;
      }
    }
    while (c < runEnd) {
      const j = rowBase + c;
      const byte = <u32>load<u8>(packed + (j >> 1));
      const q = (j & 1) == 0 ? byte >> 4 : byte & 15;
      let v: f32 = load<f32>(codebook + (<usize>q << 2)) * scale;
      if (hasZero) v += zero;
      if (DOT) tail += load<f32>(x + (<usize>(c - <u32>c0) << 2)) * v;
      else store<f32>(out + (<usize>(c - <u32>c0) << 2), v);
      c++;
    }
    b++;
    boundary += bs;
  }
  if (!DOT) return 0;
  a0 = f32x4.add(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)), f32x4.add(f32x4.add(a4, a5), f32x4.add(a6, a7)));
  return (f32x4.extract_lane(a0, 0) + f32x4.extract_lane(a0, 1)) + (f32x4.extract_lane(a0, 2) + f32x4.extract_lane(a0, 3)) + tail;
}

/** out[0 .. c1-c0) = dequant(w)[r, c0 .. c1) (f32), for the weight described at d. */
export function q4DecodeRow(d: usize, r: i32, c0: i32, c1: i32, out: usize): void {
  walkRow(d, r, c0, c1, out, 0, false);
}

/** Σ_c x[c - c0]·dequant(w)[r, c] over [c0, c1): the fused decode-and-dot of the 4-bit GEMV. */
export function q4DotRow(d: usize, r: i32, c0: i32, c1: i32, x: usize): f32 {
  return walkRow(d, r, c0, c1, 0, x, true);
}

/** out[(r1-r0)·cols] = rows r0..r1-1 of dequant(w). */
export function q4DequantizeRows(d: usize, r0: i32, r1: i32, out: usize): void {
  const cols = load<i32>(d, Q4D_COLS);
  for (let r = r0; r < r1; r++) q4DecodeRow(d, r, 0, cols, out + <usize>(r - r0) * <usize>cols * 4);
}
