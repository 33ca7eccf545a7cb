// Shared by the int8-activation tests: the tolerance scale Σ|x·w| of an output and the check of
// the wasm kernels against the reference twin (src/kernels/ref/matmul-int8.ts).
import assert from 'node:assert/strict';
import { RefKernels } from '../../src/kernels/ref/index.js';
import type { QuantizedTensor } from '../../src/quant/quantized-tensor.js';

/** wasm vs twin, per element, relative to Σ|x·w| (+1): the same integers, f32 block sums in another order (fused in the relaxed build). */
export const TWIN_REL_TOL = 1e-6;

/** Σ_k |x_k·w_k| per output [M, rows] (the scale of the tolerances). */
export function absBound(x: Float32Array, w: QuantizedTensor, M: number): Float32Array {
  const ref = new RefKernels();
  const d = new Float32Array(w.rows * w.cols);
  ref.dequantizeQ4Rows(d, w, 0, w.rows);
  const bound = new Float32Array(M * w.rows);
  ref.matmulXWt(bound, x.map(Math.abs), d.map(Math.abs), M, w.cols, w.rows, false);
  return bound;
}

/** got within TWIN_REL_TOL·(bound + 1) + extraAbs of want, element by element. */
export function assertTwin(got: Float32Array, want: Float32Array, bound: Float32Array, what: string, extraAbs = 0): void {
  for (let i = 0; i < got.length; i++) {
    if (!(Math.abs(got[i] - want[i]) <= TWIN_REL_TOL * (bound[i] + 1) + extraAbs)) assert.fail(`${what}: element ${i}: got ${got[i]}, want ${want[i]}`);
  }
}
