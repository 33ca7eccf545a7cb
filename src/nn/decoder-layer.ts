// One Llama decoder layer, forward and backward (FORMATS.md §5.3):
//   h = x + attention(rmsnorm₁(x));   y = h + mlp(rmsnorm₂(h))
// over rows x [N = B·T, C]. The same forward serves decoding (with a KV-cache slice) and training
// (without one, keeping the attention probabilities). Backward is written for gradient
// checkpointing: the model keeps only each layer's input, re-runs this forward into a cache, then
// calls backward (ARCHITECTURE.md §3).
// Not here: the stack of layers, embeddings and the lm head (model/llama.ts).
import type { Kernels } from '../kernels/kernels.js';
import type { Arena } from './arena.js';
import {
  attentionBackward, attentionForward, attentionForwardLastRows, createAttentionCache, createAttentionGradScratch,
  type AttentionCache, type AttentionGradScratch, type AttentionWeights, type LayerKv, type SequenceContext,
} from './attention.js';
import type { Linear } from './linear.js';
import { createMlpCache, createMlpGradScratch, mlpBackward, mlpForward, type MlpCache, type MlpGradScratch, type MlpWeights } from './mlp.js';
import { rmsnormBackward, rmsnormForward, type RmsNorm, type RmsNormCache } from './rmsnorm.js';

export interface DecoderLayerWeights {
  readonly index: number;
  readonly inputNorm: RmsNorm;
  readonly attn: AttentionWeights;
  readonly postNorm: RmsNorm;
  readonly mlp: MlpWeights;
}

/** The seven projections of a layer, in checkpoint order. */
export function layerLinears(w: DecoderLayerWeights): Linear[] {
  return [w.attn.q, w.attn.k, w.attn.v, w.attn.o, w.mlp.gate, w.mlp.up, w.mlp.down];
}

/** Everything one layer's forward produces, sized for N rows; one instance is reused per layer. */
export interface DecoderLayerCache {
  readonly n1: RmsNormCache;
  /** [N, C] rmsnorm₁(x) */
  readonly xn1: Float32Array;
  readonly attn: AttentionCache;
  /** [N, C] attention output, then reused for the mlp output */
  readonly branch: Float32Array;
  /** [N, C] h = x + attention */
  readonly h: Float32Array;
  readonly n2: RmsNormCache;
  /** [N, C] rmsnorm₂(h) */
  readonly xn2: Float32Array;
  readonly mlp: MlpCache;
}

export interface LayerDims {
  readonly B: number;
  readonly T: number;
  readonly C: number;
  /** Largest LoRA rank in the model (0: none). */
  readonly loraRank: number;
  /** Keep the attention probabilities (training). */
  readonly keepProbs: boolean;
  /** LoRA dropout may run (a training pass with dropout keys): allocate its scratch. */
  readonly dropout?: boolean;
}

export function createDecoderLayerCache(arena: Arena, w: DecoderLayerWeights, d: LayerDims): DecoderLayerCache {
  const N = d.B * d.T;
  // One dropout scratch serves all seven projections: each regenerates its mask when it needs it.
  const dropBuf = d.dropout === true ? arena.f32(N * Math.max(d.C, w.attn.o.inFeatures, w.mlp.F)) : null;
  return {
    n1: { x: null, rstd: arena.f32(N) }, xn1: arena.f32(N * d.C), attn: createAttentionCache(arena, w.attn, d.B, d.T, d.loraRank, d.keepProbs, dropBuf),
    branch: arena.f32(N * d.C), h: arena.f32(N * d.C), n2: { x: null, rstd: arena.f32(N) }, xn2: arena.f32(N * d.C),
    mlp: createMlpCache(arena, w.mlp.F, N, d.loraRank, dropBuf),
  };
}

export interface DecoderLayerGradScratch {
  readonly dh: Float32Array;
  readonly dxn: Float32Array;
  readonly attn: AttentionGradScratch;
  readonly mlp: MlpGradScratch;
}

export function createDecoderLayerGradScratch(arena: Arena, w: DecoderLayerWeights, d: LayerDims): DecoderLayerGradScratch {
  const N = d.B * d.T;
  return {
    dh: arena.f32(N * d.C), dxn: arena.f32(N * d.C),
    attn: createAttentionGradScratch(arena, w.attn, N, d.loraRank), mlp: createMlpGradScratch(arena, w.mlp.F, N, d.loraRank),
  };
}

/** y[N, C] = layer(x[N, C]); y may not alias x. */
export function decoderLayerForward(k: Kernels, y: Float32Array, cache: DecoderLayerCache, w: DecoderLayerWeights, x: Float32Array, ctx: SequenceContext, kv: LayerKv | null, C: number): void {
  const N = ctx.B * ctx.T;
  const n = N * C;
  rmsnormForward(k, cache.xn1, cache.n1, w.inputNorm, x, N, C);
  attentionForward(k, cache.branch, cache.attn, w.attn, cache.xn1, ctx, kv);
  const h = cache.h;
  const branch = cache.branch;
  k.add(h, x, branch, n);
  rmsnormForward(k, cache.xn2, cache.n2, w.postNorm, h, N, C);
  mlpForward(k, branch, cache.mlp, w.mlp, cache.xn2, N);
  k.add(y, h, branch, n);
}

/**
 * y[B, C] = the layer's output at the last row of each sequence only (x [N = B·T, C]): every
 * row still gets its keys and values (and cache rows), the rest runs on B rows. For the last
 * layer of a forward that wants the logits of the last rows (prompt processing).
 */
export function decoderLayerForwardLastRows(k: Kernels, y: Float32Array, cache: DecoderLayerCache, w: DecoderLayerWeights, x: Float32Array, ctx: SequenceContext, kv: LayerKv | null, C: number): void {
  const { B, T } = ctx;
  rmsnormForward(k, cache.xn1, cache.n1, w.inputNorm, x, B * T, C);
  // The residual input and the normalised input of the last rows, gathered.
  const h = cache.h.subarray(0, B * C);
  const xnLast = cache.xn2.subarray(0, B * C);
  for (let b = 0; b < B; b++) {
    const row = (b * T + T - 1) * C;
    h.set(x.subarray(row, row + C), b * C);
    xnLast.set(cache.xn1.subarray(row, row + C), b * C);
  }
  const branch = cache.branch.subarray(0, B * C);
  attentionForwardLastRows(k, branch, cache.attn, w.attn, cache.xn1, xnLast, ctx, kv);
  k.add(h, h, branch, B * C);
  rmsnormForward(k, cache.xn2, cache.n2, w.postNorm, h, B, C);
  mlpForward(k, branch, cache.mlp, w.mlp, cache.xn2, B);
  k.add(y, h, branch, B * C);
}

/**
 * dx[N, C] += d layer / dx · dy, accumulating LoRA gradients into the slots (and weight gradients
 * into the norms' and Linears' grad buffers in full-parameter training). `cache` must hold
 * the forward of this very layer and input (re-run it first when checkpointing).
 */
export function decoderLayerBackward(k: Kernels, dx: Float32Array, dy: Float32Array, cache: DecoderLayerCache, w: DecoderLayerWeights, ctx: SequenceContext, C: number, s: DecoderLayerGradScratch): void {
  const N = ctx.B * ctx.T;
  const n = N * C;
  // y = h + mlp(norm₂(h))  →  dh = dy + norm₂ᵀ(mlpᵀ(dy))
  const dh = s.dh.subarray(0, n);
  dh.set(dy.subarray(0, n));
  const dxn = s.dxn.subarray(0, n).fill(0);
  mlpBackward(k, dxn, dy, cache.mlp, w.mlp, N, s.mlp);
  rmsnormBackward(k, dh, w.postNorm.grad ?? null, dxn, cache.n2, w.postNorm, N, C);
  // h = x + attn(norm₁(x))  →  dx += dh + norm₁ᵀ(attnᵀ(dh))
  for (let i = 0; i < n; i++) dx[i] += dh[i];
  dxn.fill(0);
  attentionBackward(k, dxn, dh, cache.attn, w.attn, ctx, s.attn);
  rmsnormBackward(k, dx, w.inputNorm.grad ?? null, dxn, cache.n1, w.inputNorm, N, C);
}
