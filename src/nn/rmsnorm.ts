// RMSNorm (FORMATS.md §5.3): out[T,C] = x / sqrt(mean(x²) + eps) · weight, forward and backward.
// Computed in f32 as Hugging Face's LlamaRMSNorm does for an f32 model. The cache keeps a
// reference to the input and the per-row 1/rms (rstd[T]); backward accumulates into dx.
// The weight is frozen in QLoRA (pass null for dweight); full-parameter training passes norm.grad.
// Not here: the compute itself (kernels).
import type { Kernels } from '../kernels/kernels.js';

export interface RmsNorm {
  /** Checkpoint name without `.weight`, e.g. `model.norm`. */
  readonly name: string;
  /** [C] */
  readonly weight: Float32Array;
  readonly eps: number;
  /** Full-parameter training: d loss / d weight [C], accumulated; null/absent when frozen. */
  grad?: Float32Array | null;
}

export interface RmsNormCache {
  x: Float32Array | null;
  /** [T] = 1 / sqrt(mean(x²) + eps) per row. */
  rstd: Float32Array;
}

/** out[T,C] = rmsnorm(x[T,C]); fills cache.rstd (which must hold T values). */
export function rmsnormForward(k: Kernels, out: Float32Array, cache: RmsNormCache, norm: RmsNorm, x: Float32Array, T: number, C: number): void {
  k.rmsnormForward(out, cache.rstd, x, norm.weight, T, C, norm.eps);
  cache.x = x;
}

/** dx[T,C] += d rmsnorm / dx · dout; dweight[C] += ... when given (null: frozen weight). */
export function rmsnormBackward(k: Kernels, dx: Float32Array, dweight: Float32Array | null, dout: Float32Array, cache: RmsNormCache, norm: RmsNorm, T: number, C: number): void {
  if (cache.x === null) throw new Error(`rmsnormBackward ${norm.name}: forward cache is empty`);
  k.rmsnormBackward(dx, dweight, dout, cache.x, norm.weight, cache.rstd, T, C);
}
