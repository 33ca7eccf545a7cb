// Reference twin of the int16 path of the frozen 4-bit matmuls (wasm: assembly/gemm-i16.ts),
// selected with createKernels({ int16Activations: true }): the training default of `qlora train`.
// This file DEFINES the arithmetic (the wasm kernel follows it bit for bit; tests compare the two):
//
//   Both the forward y = x·Wᵀ and the input gradient dx = dy·W are C[M, Nout] (+)= A[M, Kc]·Bᵀ with
//   B = dequant(W) (forward: B(j, t) = W[j, t]) or its transpose (dx: B(j, t) = W[t, j]), dequant
//   the exact path's f32 weight (quant/blockwise.ts dequantizeQ4RowsRef).
//   The contraction t is cut into blocks of INT16_BLOCK (the last one shorter); for a row of A or a
//   column of B and a block, with absmax its largest |value|:
//     s = f32(absmax / 4095),  q = nearest(f32(v · f32(4095 / absmax)))  (|q| <= 4095; "nearest" =
//     round half to even). absmax <= 1e-30 quantizes to zeros; a NaN/Inf block has a NaN/Inf s,
//     so its outputs are non-finite (never a silent value).
//   block sum:  dot = Σ_t qa·qb  (exact in i32: 64·4095² < 2^31)
//   C[i, j] = (accumulate ? C[i, j] : first block alone) + f32(f32(dot) · f32(sa · sb)), block after
//             block, each operation rounded to f32 (no fused multiply-add).
//
// Why: the frozen matmuls are ~80% of a QLoRA step's arithmetic; i32x4.dot_i16x8_s does 8
// multiply-adds per instruction (f32: 4), exactly, on every runtime. Error (13-bit operands, per
// block): per product term <= 2^-13 of the block's largest term relative, below bf16's 2^-9 per
// operand; measured against the golden gradients in test/train/int16-gradients.test.ts and in
// ../../../docs/ARCHITECTURE.md.
// Applies to every 4-bit weight (zero points included) whose contraction length is even and whose
// f32 copy fits INT16_MAX_WEIGHT_ELEMENTS, at M >= INT16_MIN_ROWS (int16Apply); others take the
// exact path.
// Not here: the exact 4-bit matmuls (matmul.ts), the int8 generation path (matmul-int8.ts).

import { dequantizeQ4RowsRef } from '../../quant/blockwise.js';
import type { Quant4Weight } from '../../quant/types.js';

/** Contraction indices per quantization block. */
export const INT16_BLOCK = 64;
/** Largest |integer| of either operand. */
export const INT16_LEVELS = 4095;
/** Largest weight (rows x cols) the path takes: its f32 copy is made per call (128 MiB at this size). */
export const INT16_MAX_WEIGHT_ELEMENTS = 2 ** 25;
/**
 * Fewest rows of A the path takes: below it (decoding, small evaluation batches) the weight's
 * per-call f32 copy would cost as much as the product, and the exact path runs.
 */
export const INT16_MIN_ROWS = 16;
const MIN_ABSMAX = Math.fround(1e-30);
const LEVELS_F32 = Math.fround(INT16_LEVELS);

/** f32.nearest: round half to even. */
function nearestEven(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * Whether the int16 path serves this weight at M rows for the forward (contraction = cols) or the
 * input gradient (contraction = rows); else the exact path runs.
 */
export function int16Apply(w: Pick<Quant4Weight, 'rows' | 'cols'>, direction: 'forward' | 'input-grad', M: number): boolean {
  const contraction = direction === 'forward' ? w.cols : w.rows;
  return M >= INT16_MIN_ROWS && contraction % 2 === 0 && w.rows * w.cols <= INT16_MAX_WEIGHT_ELEMENTS;
}

/** One block's integers and scale (values v[0..n) read through `at`). */
function quantizeBlock(n: number, at: (t: number) => number, q: Int32Array): number {
  let absmax = 0;
  for (let t = 0; t < n; t++) {
    const a = Math.abs(at(t));
    if (Number.isNaN(a) || a > absmax) absmax = Number.isNaN(absmax) ? absmax : a;
  }
  const inv = absmax > MIN_ABSMAX && absmax < Infinity ? Math.fround(LEVELS_F32 / absmax) : 0;
  for (let t = 0; t < n; t++) q[t] = inv === 0 ? 0 : nearestEven(Math.fround(at(t) * inv));
  return Math.fround(absmax / LEVELS_F32);
}

/** C[M, Nout] (+)= A[M, Kc]·Bᵀ with B(j, t) = F[j·sj + t·st], in the arithmetic above. */
export function int16ProductRef(c: Float32Array, a: Float32Array, M: number, Kc: number, F: Float32Array, sj: number, st: number, Nout: number, accumulate: boolean): void {
  const nb = Math.ceil(Kc / INT16_BLOCK);
  const qa = new Int32Array(M * Kc);
  const sa = new Float32Array(M * nb);
  const qb = new Int32Array(Nout * Kc);
  const sb = new Float32Array(Nout * nb);
  const tmp = new Int32Array(INT16_BLOCK);
  for (let b = 0; b < nb; b++) {
    const t0 = b * INT16_BLOCK;
    const n = Math.min(INT16_BLOCK, Kc - t0);
    for (let i = 0; i < M; i++) {
      sa[i * nb + b] = quantizeBlock(n, (t) => a[i * Kc + t0 + t], tmp);
      qa.set(tmp.subarray(0, n), i * Kc + t0);
    }
    for (let j = 0; j < Nout; j++) {
      sb[j * nb + b] = quantizeBlock(n, (t) => F[j * sj + (t0 + t) * st], tmp);
      qb.set(tmp.subarray(0, n), j * Kc + t0);
    }
  }
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < Nout; j++) {
      let acc = accumulate ? c[i * Nout + j] : 0;
      for (let b = 0; b < nb; b++) {
        const t0 = b * INT16_BLOCK;
        const t1 = Math.min(Kc, t0 + INT16_BLOCK);
        let dot = 0;
        for (let t = t0; t < t1; t++) dot += qa[i * Kc + t] * qb[j * Kc + t];
        const v = Math.fround(Math.fround(dot) * Math.fround(sa[i * nb + b] * sb[j * nb + b]));
        acc = !accumulate && b === 0 ? v : Math.fround(acc + v);
      }
      c[i * Nout + j] = acc;
    }
  }
}

/** y[M, N] (+)= x[M, K]·Fᵀ, F[N, K] f32, in the int16 arithmetic. */
export function int16XWtRef(y: Float32Array, x: Float32Array, M: number, F: Float32Array, N: number, K: number, accumulate: boolean): void {
  int16ProductRef(y, x, M, K, F, K, 1, N, accumulate);
}

/** dx[M, K] (+)= dy[M, N]·F, F[N, K] f32, in the int16 arithmetic. */
export function int16DyWRef(dx: Float32Array, dy: Float32Array, M: number, F: Float32Array, N: number, K: number, accumulate: boolean): void {
  int16ProductRef(dx, dy, M, N, F, 1, K, K, accumulate);
}

function dequantized(w: Quant4Weight): Float32Array {
  const F = new Float32Array(w.rows * w.cols);
  dequantizeQ4RowsRef(F, w, 0, w.rows);
  return F;
}

/** y[M, rows] (+)= x[M, cols]·dequant(w)ᵀ in the int16 arithmetic (int16Apply(w, 'forward', M)). */
export function matmulXWtQ4Int16Ref(y: Float32Array, x: Float32Array, w: Quant4Weight, M: number, accumulate: boolean): void {
  int16XWtRef(y, x, M, dequantized(w), w.rows, w.cols, accumulate);
}

/** dx[M, cols] (+)= dy[M, rows]·dequant(w) in the int16 arithmetic (int16Apply(w, 'input-grad', M)). */
export function matmulDyWQ4Int16Ref(dx: Float32Array, dy: Float32Array, w: Quant4Weight, M: number, accumulate: boolean): void {
  int16DyWRef(dx, dy, M, dequantized(w), w.rows, w.cols, accumulate);
}
