// Self-attention block (FORMATS.md §5.3): q/k/v projections, RoPE on q and k, causal GQA
// attention (query head h reads kv head floor(h / (H/Hkv))), o projection; forward and backward.
// Activations are rows n = b·T + t: x [N=B·T, C], q [N, H·D], k/v [N, Hkv·D].
//
// Two uses share this code: training / scoring (no KV cache: keys are the T rows of the same
// call, the probabilities are kept for backward) and decoding (new k/v rows are written into a
// KV cache at startPos and queries attend to rows 0..startPos+T-1 of it).
// Not here: owning the KV cache (model/kv-cache.ts), the compute (kernels).
import type { Kernels } from '../kernels/kernels.js';
import type { Arena } from './arena.js';
import { createLinearCache, linearBackward, linearForward, linearForwardShared, type Linear, type LinearCache } from './linear.js';
import { ropeBackward, ropeForward, type RopeTables } from './rope.js';

export interface AttentionWeights {
  readonly q: Linear;
  readonly k: Linear;
  readonly v: Linear;
  readonly o: Linear;
  /** Query heads. */
  readonly H: number;
  /** Key/value heads. */
  readonly Hkv: number;
  /** Head dimension. */
  readonly D: number;
}

/** One layer's slice of a KV cache: rows [B, maxTokens, Hkv·D]. */
export interface LayerKv {
  readonly k: Float32Array;
  readonly v: Float32Array;
  readonly maxTokens: number;
}

/** Where the rows of one forward call sit in their sequences. */
export interface SequenceContext {
  readonly B: number;
  readonly T: number;
  /** [B·T] position of each row (RoPE table row). */
  readonly positions: Int32Array;
  readonly rope: RopeTables;
  /** Tokens already in the KV cache before this call (0 without a cache). */
  readonly startPos: number;
  /** [B] first key row each sequence may attend to (left padding), or null for 0. */
  readonly keyStart: Int32Array | null;
}

/** Intermediates of one attention forward, sized for N = B·T rows (reused across layers). */
export interface AttentionCache {
  readonly qc: LinearCache;
  readonly kc: LinearCache;
  readonly vc: LinearCache;
  readonly oc: LinearCache;
  /** [N, H·D] after RoPE */
  readonly q: Float32Array;
  /** [N, Hkv·D] after RoPE */
  readonly k: Float32Array;
  /** [N, Hkv·D] */
  readonly v: Float32Array;
  /** [N, H·D] attention output before o_proj */
  readonly att: Float32Array;
  /** [B][H, T, T] softmax probabilities (training only; null when decoding). */
  readonly probs: Float32Array[] | null;
  /** [N, r] scaled LoRA hiddens, one per projection (empty views when r = 0). */
  readonly xa: { q: Float32Array; k: Float32Array; v: Float32Array; o: Float32Array };
}

/** `dropBuf`: scratch of at least N·max(C, H·D) values when LoRA dropout may run, else null. */
export function createAttentionCache(arena: Arena, w: AttentionWeights, B: number, T: number, loraRank: number, keepProbs: boolean, dropBuf: Float32Array | null = null): AttentionCache {
  const N = B * T;
  const { H, Hkv, D } = w;
  const probs = keepProbs ? Array.from({ length: B }, () => arena.f32(H * T * T)) : null;
  return {
    qc: createLinearCache(dropBuf), kc: createLinearCache(dropBuf), vc: createLinearCache(dropBuf), oc: createLinearCache(dropBuf),
    q: arena.f32(N * H * D), k: arena.f32(N * Hkv * D), v: arena.f32(N * Hkv * D), att: arena.f32(N * H * D), probs,
    xa: { q: arena.f32(N * loraRank), k: arena.f32(N * loraRank), v: arena.f32(N * loraRank), o: arena.f32(N * loraRank) },
  };
}

/** Scratch for attention backward, sized for N rows. */
export interface AttentionGradScratch {
  readonly datt: Float32Array;
  readonly dq: Float32Array;
  readonly dk: Float32Array;
  readonly dv: Float32Array;
  readonly dxa: Float32Array;
}

export function createAttentionGradScratch(arena: Arena, w: AttentionWeights, N: number, loraRank: number): AttentionGradScratch {
  const { H, Hkv, D } = w;
  return { datt: arena.f32(N * H * D), dq: arena.f32(N * H * D), dk: arena.f32(N * Hkv * D), dv: arena.f32(N * Hkv * D), dxa: arena.f32(N * loraRank) };
}

/**
 * out[N, C] = attention(x[N, C]) (x is already normalised). With `kv`, this call's k/v rows are
 * stored at rows startPos.. of each sequence's cache and attention reads the cache.
 */
export function attentionForward(k: Kernels, out: Float32Array, cache: AttentionCache, w: AttentionWeights, x: Float32Array, ctx: SequenceContext, kv: LayerKv | null): void {
  const { B, T } = ctx;
  const N = B * T;
  const { H, D } = w;
  const qd = H * D;
  linearForwardShared(k, [cache.q, cache.k, cache.v], [cache.qc, cache.kc, cache.vc], [w.q, w.k, w.v], x, N, [cache.xa.q, cache.xa.k, cache.xa.v]);
  ropeForward(k, cache.q, ctx.positions, ctx.rope, N, H, qd);
  ropeKeysAndCache(k, cache, w, ctx, kv);
  for (let b = 0; b < B; b++) {
    const keys = keysOf(cache, w, ctx, kv, b);
    k.attentionForward(cache.att.subarray(b * T * qd, (b + 1) * T * qd), cache.probs === null ? null : cache.probs[b], cache.q.subarray(b * T * qd, (b + 1) * T * qd),
      keys.k, keys.v, { Tq: T, Tk: keys.Tk, H, Hkv: w.Hkv, D, qOffset: keys.Tk - T, keyStart: keys.keyStart });
  }
  linearForward(k, out, cache.oc, w.o, cache.att, N, cache.xa.o);
}

/**
 * attentionForward for the last row of each sequence only: out[B, C] from xLast[B, C] (those
 * rows of x). Keys and values are still made (and cached) for every row of x[N, C]; the query,
 * the attention and the o projection run on B rows. Serves the last layer of a forward whose
 * logits are wanted at the last rows only (prompt processing).
 */
export function attentionForwardLastRows(k: Kernels, out: Float32Array, cache: AttentionCache, w: AttentionWeights, x: Float32Array, xLast: Float32Array, ctx: SequenceContext, kv: LayerKv | null): void {
  const { B, T } = ctx;
  const { H, D } = w;
  const qd = H * D;
  linearForwardShared(k, [cache.k, cache.v], [cache.kc, cache.vc], [w.k, w.v], x, B * T, [cache.xa.k, cache.xa.v]);
  linearForward(k, cache.q, cache.qc, w.q, xLast, B, cache.xa.q);
  const lastPositions = Int32Array.from({ length: B }, (_, b) => ctx.positions[b * T + T - 1]);
  ropeForward(k, cache.q, lastPositions, ctx.rope, B, H, qd);
  ropeKeysAndCache(k, cache, w, ctx, kv);
  for (let b = 0; b < B; b++) {
    const keys = keysOf(cache, w, ctx, kv, b);
    k.attentionForward(cache.att.subarray(b * qd, (b + 1) * qd), null, cache.q.subarray(b * qd, (b + 1) * qd), keys.k, keys.v,
      { Tq: 1, Tk: keys.Tk, H, Hkv: w.Hkv, D, qOffset: keys.Tk - 1, keyStart: keys.keyStart });
  }
  linearForward(k, out, cache.oc, w.o, cache.att, B, cache.xa.o);
}

/** RoPE on this call's key rows, then (decoding) their k/v rows into the cache at startPos. */
function ropeKeysAndCache(k: Kernels, cache: AttentionCache, w: AttentionWeights, ctx: SequenceContext, kv: LayerKv | null): void {
  const { B, T } = ctx;
  const kd = w.Hkv * w.D;
  ropeForward(k, cache.k, ctx.positions, ctx.rope, B * T, w.Hkv, kd);
  if (kv === null) return;
  for (let b = 0; b < B; b++) {
    const at = b * kv.maxTokens * kd + ctx.startPos * kd;
    kv.k.set(cache.k.subarray(b * T * kd, (b + 1) * T * kd), at);
    kv.v.set(cache.v.subarray(b * T * kd, (b + 1) * T * kd), at);
  }
}

/** The key/value rows sequence b attends to: this call's rows, or its cache rows 0..startPos+T-1. */
function keysOf(cache: AttentionCache, w: AttentionWeights, ctx: SequenceContext, kv: LayerKv | null, b: number): { k: Float32Array; v: Float32Array; Tk: number; keyStart: number } {
  const { T } = ctx;
  const kd = w.Hkv * w.D;
  const keyStart = ctx.keyStart === null ? 0 : ctx.keyStart[b];
  if (kv === null) return { k: cache.k.subarray(b * T * kd, (b + 1) * T * kd), v: cache.v.subarray(b * T * kd, (b + 1) * T * kd), Tk: T, keyStart };
  const base = b * kv.maxTokens * kd;
  const Tk = ctx.startPos + T;
  return { k: kv.k.subarray(base, base + Tk * kd), v: kv.v.subarray(base, base + Tk * kd), Tk, keyStart };
}

/** dx[N, C] += d attention / dx · dout (training path only: needs the probabilities). */
export function attentionBackward(k: Kernels, dx: Float32Array, dout: Float32Array, cache: AttentionCache, w: AttentionWeights, ctx: SequenceContext, s: AttentionGradScratch): void {
  const { B, T } = ctx;
  const N = B * T;
  const { H, Hkv, D } = w;
  const qd = H * D;
  const kd = Hkv * D;
  if (cache.probs === null) throw new Error('attentionBackward: forward ran without keeping probabilities');
  const datt = s.datt.subarray(0, N * qd).fill(0);
  linearBackward(k, datt, dout, cache.oc, w.o, N, s.dxa);
  const dq = s.dq.subarray(0, N * qd).fill(0);
  const dk = s.dk.subarray(0, N * kd).fill(0);
  const dv = s.dv.subarray(0, N * kd).fill(0);
  for (let b = 0; b < B; b++) {
    const rows = (buf: Float32Array, width: number): Float32Array => buf.subarray(b * T * width, (b + 1) * T * width);
    const keyStart = ctx.keyStart === null ? 0 : ctx.keyStart[b];
    k.attentionBackward(rows(dq, qd), rows(dk, kd), rows(dv, kd), rows(datt, qd), cache.probs[b], rows(cache.q, qd), rows(cache.k, kd), rows(cache.v, kd),
      { Tq: T, Tk: T, H, Hkv, D, qOffset: 0, keyStart });
  }
  ropeBackward(k, dq, ctx.positions, ctx.rope, N, H, qd);
  ropeBackward(k, dk, ctx.positions, ctx.rope, N, Hkv, kd);
  linearBackward(k, dx, dq, cache.qc, w.q, N, s.dxa);
  linearBackward(k, dx, dk, cache.kc, w.k, N, s.dxa);
  linearBackward(k, dx, dv, cache.vc, w.v, N, s.dxa);
}
