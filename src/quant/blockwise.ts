// Reference (plain TypeScript) blockwise quantization and dequantization, bit-exact with
// bitsandbytes' default (torch/CPU) backend: the 4-bit NF4/FP4 codes and the 8-bit dynamic-map
// codes of double quantization share one scaling rule. These functions are the oracle of the
// wasm kernels (src/kernels) and the fallback; keep them plain and exact, not clever.
// Not here: the mean/offset of double quantization (double-quant.ts), configs, files.
//
// Source: bitsandbytes-foundation/bitsandbytes bitsandbytes/backends/default/ops.py
// (quantize_4bit, quantize_blockwise, _dequantize_4bit_compute); FORMATS.md §3.3-§3.6 and
// fixtures/bnb/README.md "Formulas". All arithmetic is float32: every product, sum and quotient
// is rounded to f32 (by Math.fround or by the store into a Float32Array) before it is used.
//
// The scaling rule (per block of `len` elements, d = x, or x - zero in the zero-point variant):
//   complete block: absmax = max|d| (stored as is); r = f32(1 / max(absmax, f32(1e-38)));
//                   s = clamp(f32(d * r), -1, 1)
//   partial last block of a segment: am = max(max|d|, f32(1e-38)) (stored CLAMPED);
//                   s = clamp(f32(d / am), -1, 1)          (true division, not the reciprocal)
// Code choice: the number of sorted-codebook midpoints strictly below s (ties go DOWN).

import { ABSMAX_FLOOR, DYNAMIC_MAP_SIGNED_MIDPOINTS, FP4_MIDPOINTS_SORTED, FP4_SORTED_INDEX_TO_CODE, NF4_MIDPOINTS, zeroCodeFor } from './codebooks.js';
import type { DoubleQuantScales, Quant4Type, Quant4Weight } from './types.js';

/** max |f32(x[i] - zero)| over x[start .. start+len): the block's absmax before any clamping. */
function blockAbsmax(x: Float32Array, start: number, len: number, zero: number): number {
  let absmax = 0;
  if (zero === 0) {
    for (let i = start; i < start + len; i++) {
      const a = Math.abs(x[i]);
      if (a > absmax) absmax = a;
    }
  } else {
    for (let i = start; i < start + len; i++) {
      const a = Math.abs(Math.fround(x[i] - zero));
      if (a > absmax) absmax = a;
    }
  }
  return absmax;
}

/**
 * The torch-path scaled value of v in a block: complete blocks multiply by recip =
 * f32(1 / max(absmax, 1e-38)), a partial last block divides by the clamped absmax `am`.
 * Both give one correctly rounded f32 (the f64 product of two f32 values is exact; f64 division
 * rounded to f32 has no double-rounding error since 53 >= 2*24 + 2), then clamp to [-1, 1].
 */
function scaled(v: number, complete: boolean, recip: number, am: number): number {
  const s = complete ? Math.fround(v * recip) : Math.fround(v / am);
  return s > 1 ? 1 : s < -1 ? -1 : s;
}

/**
 * Number of midpoints of a sorted 15-entry table strictly below s, as a sum of 15 comparisons:
 * branch-free, ~3x faster here than a 4-level binary search whose branches data make
 * unpredictable. The thresholds are unpacked into locals once (f32 values held exactly as doubles).
 */
function makeCode4(t: Float32Array, codeOfPosition: Uint8Array | null): (s: number) => number {
  const [t0, t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12, t13, t14] = Array.from(t);
  const position = (s: number): number => +(s > t0) + +(s > t1) + +(s > t2) + +(s > t3) + +(s > t4) + +(s > t5) + +(s > t6) + +(s > t7)
    + +(s > t8) + +(s > t9) + +(s > t10) + +(s > t11) + +(s > t12) + +(s > t13) + +(s > t14);
  if (codeOfPosition === null) return position;
  return (s) => codeOfPosition[position(s)];
}

const nf4CodeOf = makeCode4(NF4_MIDPOINTS, null);
const fp4CodeOf = makeCode4(FP4_MIDPOINTS_SORTED, FP4_SORTED_INDEX_TO_CODE);

/** The 4-bit code of scaled value s: NF4 directly, FP4 through its sorted-position map. */
function code4(s: number, fp4: boolean): number {
  return fp4 ? fp4CodeOf(s) : nf4CodeOf(s);
}

/**
 * Quantize the segment x[start .. start+len) as consecutive blocks of blockSize (the last may be
 * partial), codes at flat positions start.., absmax[absmaxAt..]. With `zeros` (zero-point
 * variant), each block is first shifted by zero = f32(f32(max + min) / 2), stored in zeros[].
 */
export function quantizeSegment4Ref(
  packed: Uint8Array, absmax: Float32Array, absmaxAt: number, zeros: Float32Array | null,
  x: Float32Array, start: number, len: number, blockSize: number, type: Quant4Type,
): void {
  const fp4 = type === 'fp4';
  let b = absmaxAt;
  for (let off = 0; off < len; off += blockSize, b++) {
    const b0 = start + off;
    const b1 = b0 + Math.min(blockSize, len - off);
    let zero = 0;
    if (zeros !== null) {
      let lo = Infinity;
      let hi = -Infinity;
      for (let i = b0; i < b1; i++) {
        const v = x[i];
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      zero = Math.fround(Math.fround(hi + lo) / 2);
      zeros[b] = zero;
    }
    const complete = b1 - b0 === blockSize;
    const am = complete ? blockAbsmax(x, b0, b1 - b0, zero) : Math.max(blockAbsmax(x, b0, b1 - b0, zero), ABSMAX_FLOOR);
    const recip = Math.fround(1 / Math.max(am, ABSMAX_FLOOR));
    absmax[b] = am;
    let i = b0;
    if ((i & 1) === 1 && i < b1) { // a block starting at an odd index begins in a low nibble
      packed[i >> 1] = (packed[i >> 1] & 0xf0) | code4(scaled(Math.fround(x[i] - zero), complete, recip, am), fp4);
      i++;
    }
    if (zero === 0) {
      for (; i + 1 < b1; i += 2) {
        packed[i >> 1] = (code4(scaled(x[i], complete, recip, am), fp4) << 4) | code4(scaled(x[i + 1], complete, recip, am), fp4);
      }
    } else {
      for (; i + 1 < b1; i += 2) {
        const hi = code4(scaled(Math.fround(x[i] - zero), complete, recip, am), fp4);
        packed[i >> 1] = (hi << 4) | code4(scaled(Math.fround(x[i + 1] - zero), complete, recip, am), fp4);
      }
    }
    if (i < b1) packed[i >> 1] = (code4(scaled(Math.fround(x[i] - zero), complete, recip, am), fp4) << 4) | (packed[i >> 1] & 0x0f);
  }
}

/** Code of 0.0 in the low nibble of the last byte when n is odd (bnb pads one 0.0 element). */
function padOddTail(packed: Uint8Array, n: number, type: Quant4Type): void {
  if ((n & 1) === 1) packed[n >> 1] = (packed[n >> 1] & 0xf0) | zeroCodeFor(type);
}

/**
 * bitsandbytes quantize_4bit over the flat x[0..n): packed[ceil(n/2)] (first element in the HIGH
 * nibble) and absmax[ceil(n/blockSize)]. Same signature as Kernels.quantizeBlockwise4.
 */
export function quantizeBlockwise4Ref(
  packed: Uint8Array, absmax: Float32Array, x: Float32Array, n: number, blockSize: number, type: Quant4Type,
): void {
  quantizeSegment4Ref(packed, absmax, 0, null, x, 0, n, blockSize, type);
  padOddTail(packed, n, type);
}

/**
 * Per-channel (and zero-point) layouts: every row of `cols` elements is its own run of blocks
 * (blocks never cross rows), packing stays dense over the flat index (types.ts). With
 * perChannel = false the whole tensor is one run (bitsandbytes' layout).
 */
export function quantizeRows4Ref(
  packed: Uint8Array, absmax: Float32Array, zeros: Float32Array | null,
  x: Float32Array, rows: number, cols: number, blockSize: number, type: Quant4Type, perChannel: boolean,
): void {
  const n = rows * cols;
  if (!perChannel) {
    quantizeSegment4Ref(packed, absmax, 0, zeros, x, 0, n, blockSize, type);
  } else {
    const bpr = Math.ceil(cols / blockSize);
    for (let r = 0; r < rows; r++) quantizeSegment4Ref(packed, absmax, r * bpr, zeros, x, r * cols, cols, blockSize, type);
  }
  padOddTail(packed, n, type);
}

/**
 * bitsandbytes quantize_blockwise with the 256-entry signed dynamic map (the nested stage of
 * double quantization): codes[n], nestedAbsmax[ceil(n/blockSize)], same scaling rule.
 */
export function quantizeBlockwise8Ref(codes: Uint8Array, nestedAbsmax: Float32Array, a: Float32Array, n: number, blockSize: number): void {
  const mid = DYNAMIC_MAP_SIGNED_MIDPOINTS;
  for (let off = 0, b = 0; off < n; off += blockSize, b++) {
    const len = Math.min(blockSize, n - off);
    const complete = len === blockSize;
    const am = complete ? blockAbsmax(a, off, len, 0) : Math.max(blockAbsmax(a, off, len, 0), ABSMAX_FLOOR);
    const recip = Math.fround(1 / Math.max(am, ABSMAX_FLOOR));
    nestedAbsmax[b] = am;
    for (let i = off; i < off + len; i++) {
      const v = scaled(a[i], complete, recip, am);
      // Branch-free binary search over the 255 sorted midpoints: k = #{m : v > mid[m]}.
      let k = 0;
      for (let step = 128; step >= 1; step >>= 1) k += step & -(v > mid[k + step - 1]);
      codes[i] = k;
    }
  }
}

/** Decoded double-quantized scale of block b: f32(f32(nestedMap[code] * nestedAbsmax[b / 256]) + offset). */
export function doubleQuantScale(dq: DoubleQuantScales, b: number): number {
  return Math.fround(Math.fround(dq.nestedMap[dq.codes[b]] * dq.nestedAbsmax[Math.floor(b / dq.nestedBlockSize)]) + dq.offset);
}

/** The f32 scale of block b (FORMATS.md §3.6): plain absmax, or the double-quantized decode. */
export function blockScale(w: Quant4Weight, b: number): number {
  return w.absmax !== null ? w.absmax[b] : doubleQuantScale(w.dq!, b);
}

/**
 * Dequantize flat elements [i0, i1) of w into out[0 .. i1-i0): w = f32(codebook[q] * scale[b])
 * (+ zeros[b], rounded to f32, in the zero-point variant). Works for both block layouts.
 */
export function dequantizeRangeRef(out: Float32Array, w: Quant4Weight, i0: number, i1: number): void {
  const { packed, codebook, blockSize, blocksPerRow, cols, zeros } = w;
  let i = i0;
  while (i < i1) {
    let b: number;
    let end: number;
    if (blocksPerRow === 0) {
      b = Math.floor(i / blockSize);
      end = Math.min(i1, (b + 1) * blockSize);
    } else {
      const r = Math.floor(i / cols);
      const cb = Math.floor((i - r * cols) / blockSize);
      b = r * blocksPerRow + cb;
      end = Math.min(i1, r * cols + Math.min(cols, (cb + 1) * blockSize));
    }
    const scale = blockScale(w, b);
    let o = i - i0;
    if (zeros === null) {
      // The Float32Array store rounds the exact f64 product once: f32(codebook[q] * scale).
      if ((i & 1) === 1) out[o++] = codebook[packed[i++ >> 1] & 0x0f] * scale;
      for (; i + 1 < end; i += 2, o += 2) {
        const byte = packed[i >> 1];
        out[o] = codebook[byte >> 4] * scale;
        out[o + 1] = codebook[byte & 0x0f] * scale;
      }
      if (i < end) out[o] = codebook[packed[i++ >> 1] >> 4] * scale;
    } else {
      const zero = zeros[b];
      for (; i < end; i++, o++) {
        out[o] = Math.fround(codebook[(i & 1) === 0 ? packed[i >> 1] >> 4 : packed[i >> 1] & 0x0f] * scale) + zero;
      }
    }
  }
}

/** out[(r1-r0)*cols] = rows r0..r1-1 of w in f32. Same signature as Kernels.dequantizeQ4Rows. */
export function dequantizeQ4RowsRef(out: Float32Array, w: Quant4Weight, r0: number, r1: number): void {
  dequantizeRangeRef(out, w, r0 * w.cols, r1 * w.cols);
}
