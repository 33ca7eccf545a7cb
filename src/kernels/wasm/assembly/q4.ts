// 4-bit weight decoding inside wasm: the Quant4 descriptor, one decoded row range (used by GEMM
// panel packing, GEMV and dequantizeQ4Rows), and the 4-bit GEMV for small M (decoding).
// Arithmetic follows src/quant/types.ts / FORMATS.md §3.6 to the bit: w = f32(codebook[q]·scale[b])
// (+ zeros[b]), scale from plain f32 absmax or decoded on the fly from double-quantized codes.
// Not here: quantization (quant.ts), the f32 GEMM (gemm.ts), caching of weights (JS side, q4cache.ts).
//
// Descriptor (written by src/kernels/wasm/q4cache.ts; all u32 byte addresses or values):
//   0 packed  4 codebook(16 f32)  8 rows  12 cols  16 blockSize  20 blocksPerRow  24 absmax|0
//   28 dqCodes|0  32 dqNestedAbsmax  36 dqNestedMap  40 dqOffset(f32)  44 dqNestedBlockSize
//   48 zeros|0  52 planes (64 bytes: byte p of codebook[q] at planes + 16p + q)

export const Q4_DESC_BYTES: i32 = 56;

@inline function q4Scale(d: usize, b: u32): f32 {
  const absmax = <usize>load<u32>(d, 24);
  if (absmax != 0) return load<f32>(absmax + (<usize>b << 2));
  const codes = <usize>load<u32>(d, 28);
  const nestedAbsmax = <usize>load<u32>(d, 32);
  const nestedMap = <usize>load<u32>(d, 36);
  const nbs = load<u32>(d, 44);
  const nested: f32 = load<f32>(nestedMap + (<usize>load<u8>(codes + <usize>b) << 2)) * load<f32>(nestedAbsmax + (<usize>(b / nbs) << 2));
  return nested + load<f32>(d, 40);
}

/**
 * 32 codes from 16 packed bytes (element order: high nibble first) -> 32 f32 codebook values · s,
 * stored at out. Codebook lookup = 4 byte-plane swizzles per 16 codes, re-interleaved to f32.
 */
@inline function decode32(src: usize, out: usize, t0: v128, t1: v128, t2: v128, t3: v128, s: v128): void {
  const v = v128.load(src);
  const hi = i8x16.shr_u(v, 4);
  const lo = v128.and(v, i8x16.splat(0x0f));
  const e0 = i8x16.shuffle(hi, lo, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const e1 = i8x16.shuffle(hi, lo, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  decode16(e0, out, t0, t1, t2, t3, s);
  decode16(e1, out + 64, t0, t1, t2, t3, s);
}

@inline function lookup(t: v128, e: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return i8x16.relaxed_swizzle(t, e);
  return i8x16.swizzle(t, e);
}

@inline function decode16(e: v128, out: usize, t0: v128, t1: v128, t2: v128, t3: v128, s: v128): void {
  const p0 = lookup(t0, e);
  const p1 = lookup(t1, e);
  const p2 = lookup(t2, e);
  const p3 = lookup(t3, e);
  const a = i8x16.shuffle(p0, p1, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const b = i8x16.shuffle(p0, p1, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  const c = i8x16.shuffle(p2, p3, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const d = i8x16.shuffle(p2, p3, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  v128.store(out, f32x4.mul(i8x16.shuffle(a, c, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23), s));
  v128.store(out, f32x4.mul(i8x16.shuffle(a, c, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31), s), 16);
  v128.store(out, f32x4.mul(i8x16.shuffle(b, d, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23), s), 32);
  v128.store(out, f32x4.mul(i8x16.shuffle(b, d, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31), s), 48);
}

/** out[0 .. c1-c0) = dequant(w)[r, c0 .. c1) (f32), for the weight described at d. */
export function q4DecodeRow(d: usize, r: i32, c0: i32, c1: i32, out: usize): void {
  const packed = <usize>load<u32>(d, 0);
  const codebook = <usize>load<u32>(d, 4);
  const cols = load<u32>(d, 12);
  const bs = load<u32>(d, 16);
  const bpr = load<u32>(d, 20);
  const zeros = <usize>load<u32>(d, 48);
  const planes = <usize>load<u32>(d, 52);
  const t0 = v128.load(planes), t1 = v128.load(planes, 16), t2 = v128.load(planes, 32), t3 = v128.load(planes, 48);
  const rowBase = <u32>r * cols;
  let c = <u32>c0;
  const end = <u32>c1;
  while (c < end) {
    const i = rowBase + c;
    let b: u32, runEnd: u32;
    if (bpr > 0) {
      const cb = c / bs;
      b = <u32>r * bpr + cb;
      runEnd = min(end, (cb + 1) * bs);
    } else {
      b = i / bs;
      runEnd = min(end, (b + 1) * bs - rowBase);
    }
    const scale = q4Scale(d, b);
    const hasZero = zeros != 0;
    const zero: f32 = hasZero ? load<f32>(zeros + (<usize>b << 2)) : 0;
    // Odd start: one element from a low nibble to reach a byte boundary.
    let o = out + (<usize>(c - <u32>c0) << 2);
    if ((i & 1) != 0) {
      const v: f32 = load<f32>(codebook + (<usize>(load<u8>(packed + (i >> 1)) & 15) << 2)) * scale;
      store<f32>(o, hasZero ? v + zero : v);
      c++;
      o += 4;
    }
    if (!hasZero) {
      const sv = f32x4.splat(scale);
      while (c + 32 <= runEnd) {
        decode32(packed + ((rowBase + c) >> 1), o, t0, t1, t2, t3, sv);
        c += 32;
        o += 128;
      }
    }
    while (c < runEnd) {
      const j = rowBase + c;
      const byte = <u32>load<u8>(packed + (j >> 1));
      const q = (j & 1) == 0 ? byte >> 4 : byte & 15;
      const v: f32 = load<f32>(codebook + (<usize>q << 2)) * scale;
      store<f32>(o, hasZero ? v + zero : v);
      c++;
      o += 4;
    }
  }
}

/** out[(r1-r0)·cols] = rows r0..r1-1 of dequant(w). */
export function q4DequantizeRows(d: usize, r0: i32, r1: i32, out: usize): void {
  const cols = load<i32>(d, 12);
  for (let r = r0; r < r1; r++) q4DecodeRow(d, r, 0, cols, out + <usize>(r - r0) * <usize>cols * 4);
}
