// Double quantization of the first-level absmax (bitsandbytes `compress_statistics`,
// FORMATS.md §3.4): offset = torch's float32 mean of absmax, then 8-bit blockwise quantization of
// absmax - offset with the signed dynamic map in blocks of 256. Also the f32 mean exactly as
// torch's CPU cascade sum computes it, so `nested_offset` (and the JSON) is byte-identical.
// Not here: the 4-bit codes (blockwise.ts).
//
// Sources: bitsandbytes/functional.py quantize_4bit (compress_statistics branch);
// pytorch aten/src/ATen/native/cpu/SumKernel.cpp (cascade sum) as transcribed in
// fixtures/bnb/README.md "How torch computes the float32 mean".

import { DYNAMIC_MAP_SIGNED, NESTED_BLOCK_SIZE } from './codebooks.js';
import { doubleQuantScale, quantizeBlockwise8Ref } from './blockwise.js';
import type { DoubleQuantScales } from './types.js';

/** Vectorized<float> lanes of the AVX2 build that made the fixtures (16 on AVX512 builds). */
export const TORCH_SUM_LANES = 8;

/**
 * Above this many values torch splits the sum across threads and the last bits of the mean depend
 * on the thread count; the cascade below is then the single-thread result (within 1 ulp).
 */
export const TORCH_SUM_SINGLE_THREAD_LIMIT = 32768;

const f = Math.fround;

/** ceil(log2(x)) for x >= 1. */
function ceilLog2(x: number): number {
  let p = 0;
  while (2 ** p < x) p++;
  return p;
}

/**
 * multiRowSum over `size` rows of 4 items each; an item is a vector of `width` f32 lanes, and row r
 * is the 4 * width contiguous values at a[base + 4 * r * width]. Returns the 4 item vectors of
 * acc[0], flat. Accumulators are Float32Arrays: each store rounds the (exact or once-rounded) f64
 * sum to f32, which is the f32 addition torch performs.
 */
function multiRowSum(a: Float32Array, base: number, size: number, width: number): Float32Array {
  const P = Math.max(4, Math.floor(ceilLog2(size) / 4));
  const step = 1 << P;
  const rowLen = 4 * width;
  const acc = [0, 1, 2, 3].map(() => new Float32Array(rowLen)); // acc[j][k * width + l]
  const acc0 = acc[0];
  let i = 0;
  while (i + step <= size) {
    for (let s = 0; s < step; s++, i++) {
      const src = base + i * rowLen;
      for (let t = 0; t < rowLen; t++) acc0[t] += a[src + t];
    }
    for (let j = 1; j < 4; j++) {
      const lo = acc[j - 1];
      const hi = acc[j];
      for (let t = 0; t < rowLen; t++) {
        hi[t] += lo[t];
        lo[t] = 0;
      }
      if ((i & ((step - 1) << (j * P))) !== 0) break;
    }
  }
  for (; i < size; i++) {
    const src = base + i * rowLen;
    for (let t = 0; t < rowLen; t++) acc0[t] += a[src + t];
  }
  for (let j = 1; j < 4; j++) for (let t = 0; t < rowLen; t++) acc0[t] += acc[j][t];
  return acc0;
}

/** rowSum over `len` items of `width` lanes starting at a[base]: one item vector. */
function rowSum(a: Float32Array, base: number, len: number, width: number): Float32Array {
  const m = Math.floor(len / 4);
  const p = m > 0 ? multiRowSum(a, base, m, width) : new Float32Array(4 * width); // p[k * width + l]
  for (let i = 4 * m; i < len; i++) {
    for (let l = 0; l < width; l++) p[l] += a[base + i * width + l];
  }
  const out = new Float32Array(width);
  for (let l = 0; l < width; l++) out[l] = f(f(f(p[l] + p[width + l]) + p[2 * width + l]) + p[3 * width + l]);
  return out;
}

/** torch's single-thread CPU float32 sum of a[0..n) (cascade sum, `lanes` vector lanes). */
export function torchCascadeSumF32(a: Float32Array, lanes = TORCH_SUM_LANES): number {
  const n = a.length;
  if (n < lanes) return rowSum(a, 0, n, 1)[0];
  const nv = Math.floor(n / lanes);
  const acc = rowSum(a, 0, nv, lanes);
  let t = 0;
  for (let k = nv * lanes; k < n; k++) t = f(t + a[k]);
  for (let l = 0; l < lanes; l++) t = f(t + acc[l]);
  return t;
}

/** torch.mean of a float32 CPU tensor: f32(cascade sum / n). */
export function torchMeanF32(a: Float32Array, lanes = TORCH_SUM_LANES): number {
  return f(torchCascadeSumF32(a, lanes) / a.length);
}

/**
 * Double-quantize f32 absmax[nblocks] (bitsandbytes quantize_4bit with compress_statistics):
 * offset = torchMeanF32(absmax); a = f32(absmax - offset); 8-bit codes of a with the signed dynamic
 * map in blocks of 256 (complete blocks: reciprocal; the last partial one divides).
 */
export function doubleQuantize(absmax: Float32Array): DoubleQuantScales {
  const n = absmax.length;
  const offset = torchMeanF32(absmax);
  const centred = new Float32Array(n);
  for (let j = 0; j < n; j++) centred[j] = absmax[j] - offset;
  const codes = new Uint8Array(n);
  const nestedAbsmax = new Float32Array(Math.ceil(n / NESTED_BLOCK_SIZE));
  quantizeBlockwise8Ref(codes, nestedAbsmax, centred, n, NESTED_BLOCK_SIZE);
  return { codes, nestedAbsmax, nestedMap: DYNAMIC_MAP_SIGNED, offset, nestedBlockSize: NESTED_BLOCK_SIZE };
}

/** The f32 scales a double-quantized absmax decodes to (the fixtures' `absmax_dq`). */
export function decodeDoubleQuantScales(dq: DoubleQuantScales): Float32Array {
  const out = new Float32Array(dq.codes.length);
  for (let b = 0; b < out.length; b++) out[b] = doubleQuantScale(dq, b);
  return out;
}
