// Linear layer: y[M,out] = x[M,in] · Wᵀ + b + s · (x · Aᵀ) · Bᵀ, forward and backward.
//
// The frozen base weight W is a *weight type* (ARCHITECTURE.md §1): plain f32 or a 4-bit
// Quant4Weight (NF4/FP4, consumed by the kernels without materialising f32). The optional LoRA
// slot follows PEFT semantics (FORMATS.md §10): A [r, in], B [out, r], scale s = α/r (or α/√r),
// dropout applies only to the LoRA input (not implemented here: dropout is a training concern and
// is passed in as an already-masked input by the trainer when it exists).
//
// Not here: choosing the weight type (quant/ plans it, model/ loads it), optimiser state.
// Gradients: the base weight and bias are frozen in QLoRA, so backward produces dx, dA, dB only
// (plus db / dW when a caller gives those buffers, for full-parameter training later).
import type { Kernels } from '../kernels/kernels.js';
import type { Quant4Weight } from '../quant/types.js';

/** The frozen base weight of a Linear, [out, in] in torch order. */
export type LinearWeight =
  | { readonly kind: 'f32'; readonly data: Float32Array }
  | { readonly kind: 'q4'; readonly q: Quant4Weight };

/** A LoRA adapter attached to one Linear, with its gradient buffers (accumulated by backward). */
export interface LoraSlot {
  readonly r: number;
  /** [r, in] */
  readonly A: Float32Array;
  /** [out, r] */
  readonly B: Float32Array;
  /** α / r, or α / √r with rsLoRA. */
  readonly scale: number;
  /** d loss / dA, [r, in]; the trainer zeroes it before each step. */
  readonly dA: Float32Array;
  /** d loss / dB, [out, r]. */
  readonly dB: Float32Array;
}

export interface Linear {
  /** Checkpoint name without `.weight`, e.g. `model.layers.0.self_attn.q_proj`. */
  readonly name: string;
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly weight: LinearWeight;
  /** [out] or null. */
  readonly bias: Float32Array | null;
  lora: LoraSlot | null;
}

/** What backward needs from forward: the input (a reference, not a copy) and s·(x·Aᵀ). */
export interface LinearCache {
  x: Float32Array | null;
  /** [M, r] = s · x · Aᵀ (the scaled LoRA hidden); only meaningful when the Linear has LoRA. */
  xaScaled: Float32Array | null;
}

export function createLinearCache(): LinearCache {
  return { x: null, xaScaled: null };
}

/** y[M,out] = x[M,in]·Wᵀ (+ b) (+ s·(x·Aᵀ)·Bᵀ). `xaScaled` is [M, r] scratch (kept as the cache). */
export function linearForward(k: Kernels, y: Float32Array, cache: LinearCache | null, lin: Linear, x: Float32Array, M: number, xaScaled: Float32Array | null): void {
  const { inFeatures: K, outFeatures: N } = lin;
  if (lin.weight.kind === 'f32') k.matmulXWt(y, x, lin.weight.data, M, K, N, false);
  else k.matmulXWtQ4(y, x, lin.weight.q, M, false);
  if (lin.bias !== null) addBiasRows(y, lin.bias, M, N);
  const lora = lin.lora;
  if (lora !== null) {
    if (xaScaled === null) throw new Error(`linearForward ${lin.name}: LoRA needs an [M, r] scratch buffer`);
    const xa = xaScaled.subarray(0, M * lora.r);
    k.matmulXWt(xa, x, lora.A, M, K, lora.r, false);
    k.scale(xa, M * lora.r, lora.scale);
    k.matmulXWt(y, xa, lora.B, M, lora.r, N, true);
  }
  if (cache !== null) {
    cache.x = x;
    cache.xaScaled = lora !== null ? xaScaled : null;
  }
}

/**
 * Backward of linearForward. dx[M,in] += dy·W (+ LoRA path) when dx is given; lora.dA/dB +=.
 * `dxa` is [M, r] scratch. Base weight and bias are frozen (no dW / db).
 */
export function linearBackward(k: Kernels, dx: Float32Array | null, dy: Float32Array, cache: LinearCache, lin: Linear, M: number, dxa: Float32Array | null): void {
  const { inFeatures: K, outFeatures: N } = lin;
  const x = cache.x;
  if (x === null) throw new Error(`linearBackward ${lin.name}: forward cache is empty`);
  if (dx !== null) {
    if (lin.weight.kind === 'f32') k.matmulDyW(dx, dy, lin.weight.data, M, N, K, true);
    else k.matmulDyWQ4(dx, dy, lin.weight.q, M, true);
  }
  const lora = lin.lora;
  if (lora === null) return;
  const xa = cache.xaScaled;
  if (xa === null || dxa === null) throw new Error(`linearBackward ${lin.name}: LoRA cache or scratch missing`);
  const r = lora.r;
  // dB[N,r] += dyᵀ · (s·xa)
  k.matmulDytX(lora.dB, dy, xa, M, N, r, true);
  // d(s·xa)[M,r] = dy · B, then d(xa) = s · that
  const g = dxa.subarray(0, M * r);
  k.matmulDyW(g, dy, lora.B, M, N, r, false);
  k.scale(g, M * r, lora.scale);
  // dA[r,K] += d(xa)ᵀ · x ;  dx += d(xa) · A
  k.matmulDytX(lora.dA, g, x, M, r, K, true);
  if (dx !== null) k.matmulDyW(dx, g, lora.A, M, r, K, true);
}

function addBiasRows(y: Float32Array, bias: Float32Array, M: number, N: number): void {
  for (let m = 0; m < M; m++) {
    const row = m * N;
    for (let n = 0; n < N; n++) y[row + n] += bias[n];
  }
}

/** Largest LoRA rank over some Linears (0 when none has an adapter): sizes the [M, r] scratch. */
export function maxLoraRank(linears: Iterable<Linear>): number {
  let r = 0;
  for (const lin of linears) if (lin.lora !== null && lin.lora.r > r) r = lin.lora.r;
  return r;
}
