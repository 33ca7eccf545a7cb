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

import { ABSMAX_FLOOR, DYNAMIC_MAP_SIGNED_MIDPOINTS, FP4_MIDPOINTS_SORTED, FP4_SORTED_INDEX_TO_CODE, NF4_MIDPOINTS } from './codebooks.js';
import type { Quant4Type, Quant4Weight } from './types.js';

/** Largest block size the reference accepts (the scratch buffer of scaled values). */
export const MAX_BLOCK_SIZE = 4096;

const scaledScratch = new Float32Array(MAX_BLOCK_SIZE);

/**
 * Scale one block x[start .. start+len) (minus `zero`) into scaledScratch[0..len) with the
 * torch-path rule above and return the absmax to store. `complete` selects reciprocal vs division.
 */
function scaleBlock(x: ArrayLike<number>, start: number, len: number, zero: number, complete: boolean): number {
  const s = scaledScratch;
  let absmax = 0;
  if (zero === 0) {
    for (let i = 0; i < len; i++) {
      const a = Math.abs(x[start + i]);
      if (a > absmax) absmax = a;
    }
  } else {
    for (let i = 0; i < len; i++) {
      const d = Math.fround(x[start + i] - zero);
      s[i] = d;
      const a = Math.abs(d);
      if (a > absmax) absmax = a;
    }
  }
  const src = zero === 0 ? x : s;
  const off = zero === 0 ? start : 0;
  if (complete) {
    // The f64 product of two f32 values is exact, so the Float32Array store rounds once, as f32
    // does; clamping after rounding equals torch's clamp of the rounded product.
    const r = Math.fround(1 / Math.max(absmax, ABSMAX_FLOOR));
    for (let i = 0; i < len; i++) {
      const v = src[off + i] * r;
      s[i] = v > 1 ? 1 : v < -1 ? -1 : v;
    }
    return absmax;
  }
  const am = Math.max(absmax, ABSMAX_FLOOR);
  for (let i = 0; i < len; i++) {
    // f64 division rounded to f32 equals the f32 division (53 >= 2*24+2 bits: no double rounding).
    const v = Math.fround(src[off + i] / am);
    s[i] = v > 1 ? 1 : v < -1 ? -1 : v;
  }
  return am;
}

/** Number of NF4 midpoints strictly below s: a 4-level binary search over the 15 sorted thresholds. */
function nf4Code(s: number, t: Float32Array): number {
  let k = s > t[7] ? 8 : 0;
  if (s > t[k + 3]) k += 4;
  if (s > t[k + 1]) k += 2;
  if (s > t[k]) k += 1;
  return k;
}

function writeNibble(packed: Uint8Array, i: number, code: number): void {
  const j = i >> 1;
  packed[j] = (i & 1) === 0 ? (code << 4) | (packed[j] & 0x0f) : (packed[j] & 0xf0) | code;
}

/** Codes of the len scaled values in scaledScratch, written at flat element positions at.. . */
function emitCodes4(packed: Uint8Array, at: number, len: number, type: Quant4Type): void {
  const s = scaledScratch;
  let i = 0;
  // Odd start: the first code goes in a low nibble.
  if ((at & 1) === 1 && len > 0) {
    const c = type === 'nf4' ? nf4Code(s[0], NF4_MIDPOINTS) : FP4_SORTED_INDEX_TO_CODE[nf4Code(s[0], FP4_MIDPOINTS_SORTED)];
    writeNibble(packed, at, c);
    i = 1;
  }
  if (type === 'nf4') {
    for (; i + 1 < len; i += 2) packed[(at + i) >> 1] = (nf4Code(s[i], NF4_MIDPOINTS) << 4) | nf4Code(s[i + 1], NF4_MIDPOINTS);
    if (i < len) writeNibble(packed, at + i, nf4Code(s[i], NF4_MIDPOINTS));
  } else {
    const m = FP4_SORTED_INDEX_TO_CODE;
    const t = FP4_MIDPOINTS_SORTED;
    for (; i + 1 < len; i += 2) packed[(at + i) >> 1] = (m[nf4Code(s[i], t)] << 4) | m[nf4Code(s[i + 1], t)];
    if (i < len) writeNibble(packed, at + i, m[nf4Code(s[i], t)]);
  }
}

/**
 * Quantize the segment x[start .. start+len) as consecutive blocks of blockSize (the last may be
 * partial), codes at flat positions start.., absmax[absmaxAt..]. With `zeros` (zero-point
 * variant), each block is first shifted by zero = f32(f32(max + min) / 2), stored in zeros[].
 */
export function quantizeSegment4Ref(
  packed: Uint8Array, absmax: Float32Array, absmaxAt: number, zeros: Float32Array | null,
  x: ArrayLike<number>, start: number, len: number, blockSize: number, type: Quant4Type,
): void {
  let b = absmaxAt;
  for (let off = 0; off < len; off += blockSize, b++) {
    const bl = Math.min(blockSize, len - off);
    let zero = 0;
    if (zeros !== null) {
      let lo = Infinity;
      let hi = -Infinity;
      for (let i = 0; i < bl; i++) {
        const v = x[start + off + i];
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      zero = Math.fround(Math.fround(hi + lo) / 2);
      zeros[b] = zero;
    }
    absmax[b] = scaleBlock(x, start + off, bl, zero, bl === blockSize);
    emitCodes4(packed, start + off, bl, type);
  }
}

/** Code of 0.0 in the low nibble of the last byte when n is odd (bnb pads one 0.0 element). */
function padOddTail(packed: Uint8Array, n: number, type: Quant4Type): void {
  if ((n & 1) === 1) packed[n >> 1] = (packed[n >> 1] & 0xf0) | (type === 'nf4' ? 7 : 0);
}

/**
 * bitsandbytes quantize_4bit over the flat x[0..n): packed[ceil(n/2)] (first element in the HIGH
 * nibble) and absmax[ceil(n/blockSize)]. Same signature as Kernels.quantizeBlockwise4.
 */
export function quantizeBlockwise4Ref(
  packed: Uint8Array, absmax: Float32Array, x: ArrayLike<number>, n: number, blockSize: number, type: Quant4Type,
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
  x: ArrayLike<number>, rows: number, cols: number, blockSize: number, type: Quant4Type, perChannel: boolean,
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
 * double quantization): codes[n], blockAbsmax[ceil(n/blockSize)], same scaling rule.
 */
export function quantizeBlockwise8Ref(codes: Uint8Array, blockAbsmax: Float32Array, a: ArrayLike<number>, n: number, blockSize: number): void {
  const s = scaledScratch;
  const mid = DYNAMIC_MAP_SIGNED_MIDPOINTS;
  for (let off = 0, b = 0; off < n; off += blockSize, b++) {
    const bl = Math.min(blockSize, n - off);
    blockAbsmax[b] = scaleBlock(a, off, bl, 0, bl === blockSize);
    for (let i = 0; i < bl; i++) {
      const v = s[i];
      let k = 0;
      for (let step = 128; step >= 1; step >>= 1) if (v > mid[k + step - 1]) k += step;
      codes[off + i] = k;
    }
  }
}

/** The f32 scale of block b (FORMATS.md §3.6): plain absmax, or the double-quantized decode. */
export function blockScale(w: Quant4Weight, b: number): number {
  if (w.absmax !== null) return w.absmax[b];
  const dq = w.dq!;
  return Math.fround(Math.fround(dq.nestedMap[dq.codes[b]] * dq.nestedAbsmax[Math.floor(b / dq.nestedBlockSize)]) + dq.offset);
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
      for (; i < end; i++, o++) out[o] = codebook[(i & 1) === 0 ? packed[i >> 1] >> 4 : packed[i >> 1] & 0x0f] * scale;
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
