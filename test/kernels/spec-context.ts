// Shared state of one backend's run of the kernel spec suite: the backend under test (created in
// `before`, disposed in `after`), the reference backend it is compared with, and the named
// tolerances every spec file uses.

import type { Kernels } from '../../src/kernels/kernels.js';
import { RefKernels } from '../../src/kernels/ref/index.js';
import type { Tol } from './spec-oracle.js';

export interface SpecContext {
  /** Backend name as given to defineKernelSpecs ('ref', 'wasm', 'wasm-1thread', ...). */
  readonly name: string;
  /** The backend under test; valid inside tests (set in `before`). */
  k: Kernels;
  /** The reference backend (the oracle of the fast-vs-reference specs). */
  readonly ref: RefKernels;
  /** True when the backend under test is the reference itself (fast-vs-ref specs are skipped). */
  readonly isRef: boolean;
}

export function newContext(name: string): SpecContext {
  return { name, k: undefined as unknown as Kernels, ref: new RefKernels(), isRef: name === 'ref' };
}

/**
 * Forward kernels (f32) against the f64 formulas of spec-oracle.ts, inputs in [-1, 1]. The f32
 * rounding of a length-K dot product is ~K·6e-8 in the worst case; these leave ~5x headroom.
 */
export const TOL_F64 = {
  matmul: { abs: 3e-5, rel: 1e-5 },
  rmsnorm: { abs: 1e-6, rel: 1e-5 },
  rope: { abs: 1e-6, rel: 1e-6 },
  siluMul: { abs: 1e-7, rel: 1e-6 },
  softmax: { abs: 1e-7, rel: 1e-5 },
  attention: { abs: 2e-6, rel: 1e-5 },
  crossEntropy: { abs: 2e-5, rel: 1e-6 },
  adamw: { abs: 1e-7, rel: 1e-6 },
  sumSquares: { abs: 0, rel: 1e-12 },
} satisfies Record<string, Tol>;

/**
 * Backward kernels (f32) against central finite differences of the f64 formulas, as a fraction
 * of the largest |gradient| (FD in f64 with h = FD_STEP has truncation error ~h², far below).
 */
export const TOL_FD = {
  matmul: 2e-5,
  rmsnorm: 2e-5,
  rope: 1e-6,
  siluMul: 1e-5,
  attention: 5e-5,
  embedding: 1e-6,
  crossEntropy: 2e-5,
} as const;

/** Finite-difference step (f64). */
export const FD_STEP = 1e-4;

/**
 * Fast backend against the reference backend on the same f32 inputs: ~1e-5 relative for f32 ops
 * (different summation orders and SIMD lanes), exact where the arithmetic is fully specified.
 */
export const TOL_FAST = {
  matmul: { abs: 2e-5, rel: 1e-5 },
  q4: { abs: 2e-5, rel: 1e-5 },
  rmsnorm: { abs: 1e-6, rel: 1e-5 },
  rope: { abs: 5e-7, rel: 1e-6 }, // products of |x| <= 2 are rounded at their scale before cancelling
  siluMul: { abs: 1e-7, rel: 1e-5 },
  softmax: { abs: 1e-7, rel: 1e-5 },
  attention: { abs: 2e-6, rel: 1e-5 },
  crossEntropy: { abs: 1e-5, rel: 1e-5 },
  adamw: { abs: 1e-7, rel: 1e-5 },
  sumSquares: { abs: 0, rel: 1e-9 },
} satisfies Record<string, Tol>;
