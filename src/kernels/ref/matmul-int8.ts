// Reference twin of the OPTIONAL int8-activation X·Wᵀ for 4-bit weights (wasm: assembly/gemm-i8.ts
// for large M, assembly/gemv-i8.ts for decoding sizes),
// selected with createKernels({ int8Activations: true }); the default path is the exact f32 one.
// This file DEFINES the arithmetic (the wasm kernel follows it; tests compare the two):
//
//   blocks along K are the weight's blocks (blockSize bs); for row i and block kb of x:
//     sa(i, kb) = f32(absmax / 127),  qa = nearest(f32(x · f32(127 / absmax)))  (|qa| <= 127;
//                 "nearest" = round half to even). A block with absmax <= MIN_ABSMAX quantizes to
//                 zeros (it contributes < 1e-28); a block holding NaN/Inf has a NaN/Inf scale,
//                 so its output is non-finite (its codes: 0 here, unspecified in the kernel).
//   codebook:   cs = f32(63 / max|codebook|),  qw[q] = nearest(f32(codebook[q] · cs))   (|qw| <= 63)
//   block sum:  dot = Σ_k qa·qw  (exact integer; the kernel adds 64 to qw, making it the 7-bit
//               non-negative operand of the relaxed dot product, and subtracts 64·Σqa again)
//   y[i, j] (+)= Σ_kb f32(dot) · f32(sa · f32(scale(j, kb) · f32(max|codebook| / 63)))
//               accumulated block after block in f32 (the wasm relaxed build fuses each
//               multiply-add: results agree to a few ulps, not bit for bit).
//
// Error against the exact path (bounds asserted in test/kernels/int8-activations.test.ts and
// test/model/int8-activations.test.ts): per output, <= 0.39% of Σ_k|x_k·w_k| (mean 0.04%) on
// random data; stories260K NF4: logits max |Δ| 1.0, mean 0.11, NLL +0.010 nats (perplexity
// x1.010, where NF4 itself costs x1.137). The 7-bit codebook causes ~80% of it, the 8-bit
// activations the rest. Speed (1 thread, M = 512, SmolLM2-135M shapes): ~88-96 GFLOPS (44-48 G
// multiply-adds/s, within ~7% of the kernel's dot loop alone) vs 45-47 exact.
// Applies at every M (decoding included) when the weight has no zero points, cols % blockSize == 0,
// blockSize % 4 == 0 and blockSize <= INT8_MAX_BLOCK; everything else takes the exact path
// (int8ActivationsApply). Every forward takes it, training and eval forwards included (their
// backward, matmulDyWQ4, stays exact): the option is meant for generation (`qlora generate
// --fast-int8`).
// Not here: the exact 4-bit matmul (matmul.ts), argument checks (check.ts).

import { blockScale } from '../../quant/blockwise.js';
import type { Quant4Weight } from '../../quant/types.js';

/**
 * Fewest rows of x the int8 path takes: every size, decoding (M = 1) included, so a model with the
 * option on computes every 4-bit X·Wᵀ of its forward in one arithmetic (the wasm backend's GEMV
 * for small M, assembly/gemv-i8.ts, and its GEMM for large M follow this same definition).
 */
export const INT8_MIN_ROWS = 1;
/** Largest weight block size of the int8 path (the wasm kernels themselves need only blockSize % 4 == 0). */
export const INT8_MAX_BLOCK = 512;
/** Activation blocks at or below this absmax quantize to zeros (assembly/act-i8.ts MIN_ABSMAX). */
const MIN_ABSMAX = Math.fround(1e-30);
/** Levels of the activation (±127) and codebook (±63) integers. */
const ACT_LEVELS = 127;
const CODE_LEVELS = 63;

/** f32.nearest: round half to even. */
function nearestEven(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Whether the int8 path serves this weight (else the exact path runs). */
export function int8ActivationsApply(w: Quant4Weight, M: number): boolean {
  const bs = w.blockSize;
  let cbMax = 0;
  for (let i = 0; i < 16; i++) cbMax = Math.max(cbMax, Math.abs(w.codebook[i]));
  return M >= INT8_MIN_ROWS && w.zeros === null && bs >= 4 && bs % 4 === 0 && bs <= INT8_MAX_BLOCK && w.cols % bs === 0 && cbMax > 0 && Number.isFinite(cbMax);
}

/** Integer codebook and the f32 factor that returns its scale: qw[q] and f32(max|codebook| / 63). */
export function int8Codebook(codebook: Float32Array): { qw: Int32Array; unscale: number } {
  let cbMax = 0;
  for (let i = 0; i < 16; i++) cbMax = Math.max(cbMax, Math.abs(codebook[i]));
  const cs = Math.fround(CODE_LEVELS / cbMax);
  const qw = Int32Array.from({ length: 16 }, (_, i) => nearestEven(Math.fround(codebook[i] * cs)));
  return { qw, unscale: Math.fround(cbMax / CODE_LEVELS) };
}

/** x[M, K] quantized per (row, block of bs): codes qa [M·K], scales sa [M·K/bs]. */
export function quantizeActivationsInt8Ref(x: Float32Array, M: number, K: number, bs: number): { qa: Int8Array; sa: Float32Array } {
  const nb = K / bs;
  const qa = new Int8Array(M * K);
  const sa = new Float32Array(M * nb);
  for (let i = 0; i < M; i++) {
    for (let kb = 0; kb < nb; kb++) {
      const o = i * K + kb * bs;
      let absmax = 0;
      for (let k = 0; k < bs; k++) absmax = Math.max(absmax, Math.abs(x[o + k])); // NaN sticks
      const finite = absmax > MIN_ABSMAX && absmax < Infinity;
      const inv = finite ? Math.fround(ACT_LEVELS / absmax) : 0;
      for (let k = 0; k < bs; k++) qa[o + k] = finite ? nearestEven(Math.fround(x[o + k] * inv)) : 0;
      sa[i * nb + kb] = Math.fround(absmax / ACT_LEVELS);
    }
  }
  return { qa, sa };
}

/** y[M, N] (+)= the int8-activation product of x[M, K] and dequant(w)[N, K]ᵀ (arithmetic above). */
export function matmulXWtQ4Int8Ref(y: Float32Array, x: Float32Array, w: Quant4Weight, M: number, accumulate: boolean): void {
  const N = w.rows;
  const K = w.cols;
  const bs = w.blockSize;
  const nb = K / bs;
  const blocksPerRow = w.blocksPerRow > 0 ? w.blocksPerRow : nb;
  const { qa, sa } = quantizeActivationsInt8Ref(x, M, K, bs);
  const { qw, unscale } = int8Codebook(w.codebook);
  const codes = new Int32Array(K);
  const ws = new Float32Array(nb);
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) {
      const e = n * K + k;
      const byte = w.packed[e >> 1];
      codes[k] = qw[(e & 1) === 0 ? byte >> 4 : byte & 15];
    }
    for (let kb = 0; kb < nb; kb++) ws[kb] = Math.fround(blockScale(w, n * blocksPerRow + kb) * unscale);
    for (let m = 0; m < M; m++) {
      let acc = accumulate ? y[m * N + n] : 0;
      for (let kb = 0; kb < nb; kb++) {
        const o = m * K + kb * bs;
        let dot = 0;
        for (let k = 0; k < bs; k++) dot += qa[o + k] * codes[kb * bs + k];
        const t = Math.fround(dot * Math.fround(sa[m * nb + kb] * ws[kb]));
        acc = !accumulate && kb === 0 ? t : Math.fround(acc + t);
      }
      y[m * N + n] = acc;
    }
  }
}
