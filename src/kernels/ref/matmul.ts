// Reference matmuls: the three f32 layouts training needs (Linear forward, backward to the input,
// backward to the weight) and the two with a 4-bit weight. Plain loops accumulating in f64 (JS
// numbers), rounded to f32 once on store: the oracle the wasm GEMMs are measured against.
// Not fast (~1-3 GFLOPS); the 4-bit paths decode one weight row at a time into a scratch row with
// the quant layer's reference decoder (src/quant/blockwise.ts), so the decode logic exists once.
//
//   matmulXWt   y[M,N]  (+)= x[M,K] · w[N,K]ᵀ        forward of y = x Wᵀ
//   matmulDyW   dx[M,K] (+)= dy[M,N] · w[N,K]        its backward to x
//   matmulDytX  dw[N,K] (+)= dy[M,N]ᵀ · x[M,K]       its backward to W

import type { Quant4Weight } from '../../quant/types.js';
import { dequantizeRangeRef } from '../../quant/blockwise.js';

/** y[M,N] (+)= x[M,K] · w[N,K]ᵀ. */
export function matmulXWtRef(y: Float32Array, x: Float32Array, w: Float32Array, M: number, K: number, N: number, accumulate: boolean): void {
  for (let m = 0; m < M; m++) {
    const xo = m * K;
    for (let n = 0; n < N; n++) {
      const wo = n * K;
      let s = 0;
      for (let k = 0; k < K; k++) s += x[xo + k] * w[wo + k];
      y[m * N + n] = accumulate ? y[m * N + n] + s : s;
    }
  }
}

/** dx[M,K] (+)= dy[M,N] · w[N,K]; an f64 accumulator row keeps the inner loop contiguous. */
export function matmulDyWRef(dx: Float32Array, dy: Float32Array, w: Float32Array, M: number, N: number, K: number, accumulate: boolean): void {
  const acc = new Float64Array(K);
  for (let m = 0; m < M; m++) {
    acc.fill(0);
    for (let n = 0; n < N; n++) {
      const g = dy[m * N + n];
      const wo = n * K;
      for (let k = 0; k < K; k++) acc[k] += g * w[wo + k];
    }
    storeRow(dx, m * K, acc, K, accumulate);
  }
}

/** dw[N,K] (+)= dy[M,N]ᵀ · x[M,K]. */
export function matmulDytXRef(dw: Float32Array, dy: Float32Array, x: Float32Array, M: number, N: number, K: number, accumulate: boolean): void {
  const acc = new Float64Array(K);
  for (let n = 0; n < N; n++) {
    acc.fill(0);
    for (let m = 0; m < M; m++) {
      const g = dy[m * N + n];
      const xo = m * K;
      for (let k = 0; k < K; k++) acc[k] += g * x[xo + k];
    }
    storeRow(dw, n * K, acc, K, accumulate);
  }
}

/** y[M,N] (+)= x[M,K] · dequant(w)[N,K]ᵀ, one decoded weight row at a time. */
export function matmulXWtQ4Ref(y: Float32Array, x: Float32Array, w: Quant4Weight, M: number, accumulate: boolean): void {
  const N = w.rows;
  const K = w.cols;
  const row = new Float32Array(K);
  for (let n = 0; n < N; n++) {
    dequantizeRangeRef(row, w, n * K, (n + 1) * K);
    for (let m = 0; m < M; m++) {
      const xo = m * K;
      let s = 0;
      for (let k = 0; k < K; k++) s += x[xo + k] * row[k];
      y[m * N + n] = accumulate ? y[m * N + n] + s : s;
    }
  }
}

/** dx[M,K] (+)= dy[M,N] · dequant(w)[N,K]; f64 accumulators for all of dx (M·K), rows decoded once. */
export function matmulDyWQ4Ref(dx: Float32Array, dy: Float32Array, w: Quant4Weight, M: number, accumulate: boolean): void {
  const N = w.rows;
  const K = w.cols;
  const row = new Float32Array(K);
  const acc = new Float64Array(M * K);
  for (let n = 0; n < N; n++) {
    dequantizeRangeRef(row, w, n * K, (n + 1) * K);
    for (let m = 0; m < M; m++) {
      const g = dy[m * N + n];
      const ao = m * K;
      for (let k = 0; k < K; k++) acc[ao + k] += g * row[k];
    }
  }
  storeRow(dx, 0, acc, M * K, accumulate);
}

function storeRow(dst: Float32Array, offset: number, acc: Float64Array, n: number, accumulate: boolean): void {
  for (let i = 0; i < n; i++) dst[offset + i] = accumulate ? dst[offset + i] + acc[i] : acc[i];
}
