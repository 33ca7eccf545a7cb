// Linear layer: y[M,out] = x[M,in] · Wᵀ + b + s · (x · Aᵀ) · Bᵀ, forward and backward.
//
// The frozen base weight W is a *weight type* (ARCHITECTURE.md §1): plain f32, a 4-bit
// Quant4Weight (NF4/FP4, consumed by the kernels without materialising f32), or int8 per-row
// (the `int8` per-module override), or a GGUF base's own ggml blocks (Q4_0, Q8_0, IQ4_NL...); those
// two are dequantized panel by panel into the f32 matmul. The optional LoRA
// slot follows PEFT semantics (FORMATS.md §10): A [r, in], B [out, r], scale s = α/r (or α/√r),
// dropout p on the LoRA input only (nn/dropout.ts), active while the slot has a dropout key (the
// model sets keys for a training forward/backward and clears them after).
//
// Not here: choosing the weight type (quant/ plans it, model/ loads it), optimiser state.
// Gradients: the base weight and bias are frozen in QLoRA, so backward produces dx, dA, dB; in
// full-parameter training (f32 weights) a Linear also carries dW / db buffers, accumulated here.
import type { Int16Weight, Kernels } from '../kernels/kernels.js';
import { INT16_MAX_WEIGHT_ELEMENTS } from '../kernels/ref/matmul-int16.js';
import { dropoutBackwardAdd, dropoutForward } from './dropout.js';
import { dequantizeGgml, type GgmlType } from '../quant/ggml/index.js';
import type { Quant4Weight } from '../quant/types.js';

/** Int8 per-row weights as quant/int8.ts stores them (no kernel consumes them directly). */
export interface Int8Weight {
  readonly rows: number;
  readonly cols: number;
  /** rows · cols codes, row-major. */
  readonly codes: Int8Array;
  /** One f32 scale per row: w = f32(code · scale). */
  readonly scales: Float32Array;
}

/** The frozen base weight of a Linear, [out, in] in torch order. */
export type LinearWeight =
  | { readonly kind: 'f32'; readonly data: Float32Array }
  | { readonly kind: 'q4'; readonly q: Quant4Weight }
  | { readonly kind: 'int8'; readonly q: Int8Weight }
  | { readonly kind: 'ggml'; readonly q: GgmlWeight };

/**
 * A GGUF base's own block-quantized weight (Q4_0, Q8_0, IQ4_NL, ...), rows in HF order: the frozen
 * weight is exactly what llama.cpp runs, dequantized panel by panel into the f32 matmul.
 */
export interface GgmlWeight {
  readonly type: GgmlType;
  readonly rows: number;
  readonly cols: number;
  /** rows × rowBytes block bytes. */
  readonly data: Uint8Array;
  readonly rowBytes: number;
}

/** Rows of an int8 weight dequantized per f32 matmul (a panel of at most this many values). */
const INT8_PANEL_ELEMENTS = 1 << 16;

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
  /** Dropout probability on the LoRA input, in [0, 1). */
  readonly dropout: number;
  /** Mask key of the current training pass; null outside training (no dropout). */
  dropoutKey: number | null;
}

/** Gradient buffers of a trained (unfrozen) f32 Linear: dW [out, in], db [out]; accumulated. */
export interface LinearGrad {
  readonly dW: Float32Array | null;
  readonly db: Float32Array | null;
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
  /** Full-parameter training: where d loss / d(weight, bias) accumulate; null when frozen. */
  grad?: LinearGrad | null;
}

/** What backward needs from forward: the input (a reference, not a copy) and s·(x·Aᵀ). */
export interface LinearCache {
  x: Float32Array | null;
  /** [M, r] = s · x · Aᵀ (the scaled LoRA hidden); only meaningful when the Linear has LoRA. */
  xaScaled: Float32Array | null;
  /**
   * [rows, in] scratch for the dropped-out LoRA input, or null (no dropout). Backward regenerates
   * the mask from the key instead of keeping the dropped input, so the caches of one layer can
   * share one buffer.
   */
  readonly dropBuf: Float32Array | null;
}

export function createLinearCache(dropBuf: Float32Array | null = null): LinearCache {
  return { x: null, xaScaled: null, dropBuf };
}

/** True when a training pass applies dropout to this Linear's LoRA input. */
function dropoutActive(lora: LoraSlot): boolean {
  return lora.dropout > 0 && lora.dropoutKey !== null;
}

/** y[M,out] = x[M,in]·Wᵀ (+ b) (+ s·(x·Aᵀ)·Bᵀ). `xaScaled` is [M, r] scratch (kept as the cache). */
export function linearForward(k: Kernels, y: Float32Array, cache: LinearCache | null, lin: Linear, x: Float32Array, M: number, xaScaled: Float32Array | null): void {
  baseForward(k, y, lin, x, M);
  finishForward(k, y, cache, lin, x, M, xaScaled);
}

/**
 * linearForward of several Linears on the same input x (q/k/v, gate/up): ys[i], caches[i] and
 * xaScaled[i] belong to lins[i]. The 4-bit base weights go to the kernels in one call (one pool
 * task when decoding); every output equals linearForward's bit for bit.
 */
export function linearForwardShared(k: Kernels, ys: readonly Float32Array[], caches: readonly (LinearCache | null)[], lins: readonly Linear[], x: Float32Array, M: number, xaScaled: readonly (Float32Array | null)[]): void {
  const q4: number[] = [];
  for (let i = 0; i < lins.length; i++) {
    const w = lins[i].weight;
    if (w.kind === 'q4' && lins[i].inFeatures === lins[0].inFeatures) q4.push(i);
    else baseForward(k, ys[i], lins[i], x, M);
  }
  k.matmulXWtQ4Many(q4.map((i) => ys[i]), x, q4.map((i) => (lins[i].weight as { q: Quant4Weight }).q), M, false);
  for (let i = 0; i < lins.length; i++) finishForward(k, ys[i], caches[i], lins[i], x, M, xaScaled[i]);
}

/**
 * The Linear's f32 weight packed for the int16 products (Kernels.packInt16) when the kernels train
 * in int16 and the Linear is a plain frozen one (f32, no LoRA, bias or gradient; even dims; within
 * INT16_MAX_WEIGHT_ELEMENTS, so the packed copies stay under 128 MiB): the tied or untied lm head
 * of a LoRA run. Else null. The caller releases it.
 */
export function packFrozenInt16(k: Kernels, lin: Linear): Int16Weight | null {
  const w = lin.weight;
  const { inFeatures: K, outFeatures: N } = lin;
  if (!k.int16Activations || w.kind !== 'f32' || lin.lora !== null || lin.bias !== null || (lin.grad ?? null) !== null) return null;
  if (K % 2 !== 0 || N % 2 !== 0 || N * K > INT16_MAX_WEIGHT_ELEMENTS) return null;
  return k.packInt16(w.data, N, K);
}

/** y = x·Wᵀ with the frozen base weight only. */
function baseForward(k: Kernels, y: Float32Array, lin: Linear, x: Float32Array, M: number): void {
  const { inFeatures: K, outFeatures: N } = lin;
  const w = lin.weight;
  if (w.kind === 'f32') k.matmulXWt(y, x, w.data, M, K, N, false);
  else if (w.kind === 'q4') k.matmulXWtQ4(y, x, w.q, M, false);
  else weightPanels(k, w, M, (panel, n0, P, tmp) => {
    // tmp[M, P] = x · panelᵀ, then scattered into columns n0..n0+P of y
    k.matmulXWt(tmp, x, panel, M, K, P, false);
    for (let m = 0; m < M; m++) y.set(tmp.subarray(m * P, (m + 1) * P), m * N + n0);
  });
}

/** Bias, LoRA and the cache on top of the base output y. */
function finishForward(k: Kernels, y: Float32Array, cache: LinearCache | null, lin: Linear, x: Float32Array, M: number, xaScaled: Float32Array | null): void {
  const { inFeatures: K, outFeatures: N } = lin;
  if (lin.bias !== null) addBiasRows(y, lin.bias, M, N);
  const lora = lin.lora;
  if (lora !== null) {
    if (xaScaled === null) throw new Error(`linearForward ${lin.name}: LoRA needs an [M, r] scratch buffer`);
    const xLora = droppedInput(cache, lin, x, M);
    const xa = xaScaled.subarray(0, M * lora.r);
    k.matmulXWt(xa, xLora ?? x, lora.A, M, K, lora.r, false);
    k.scale(xa, M * lora.r, lora.scale);
    k.matmulXWt(y, xa, lora.B, M, lora.r, N, true);
  }
  if (cache !== null) {
    cache.x = x;
    cache.xaScaled = lora !== null ? xaScaled : null;
  }
}

/** dropout(x) into the cache's scratch when this pass drops the LoRA input, else null. */
function droppedInput(cache: LinearCache | null, lin: Linear, x: Float32Array, M: number): Float32Array | null {
  const lora = lin.lora;
  if (lora === null || !dropoutActive(lora)) return null;
  if (cache === null || cache.dropBuf === null) throw new Error(`linear ${lin.name}: LoRA dropout needs a cache with a dropout buffer`);
  const n = M * lin.inFeatures;
  const out = cache.dropBuf.subarray(0, n);
  dropoutForward(out, x, n, lora.dropout, lora.dropoutKey as number);
  return out;
}

/**
 * Backward of linearForward. dx[M,in] += dy·W (+ LoRA path) when dx is given; lora.dA/dB +=;
 * lin.grad.dW / db += when the Linear is trained. `dxa` is [M, r] scratch.
 */
export function linearBackward(k: Kernels, dx: Float32Array | null, dy: Float32Array, cache: LinearCache, lin: Linear, M: number, dxa: Float32Array | null): void {
  const { inFeatures: K, outFeatures: N } = lin;
  const x = cache.x;
  if (x === null) throw new Error(`linearBackward ${lin.name}: forward cache is empty`);
  if (dx !== null) {
    const w = lin.weight;
    if (w.kind === 'f32') k.matmulDyW(dx, dy, w.data, M, N, K, true);
    else if (w.kind === 'q4') k.matmulDyWQ4(dx, dy, w.q, M, true);
    else weightPanels(k, w, M, (panel, n0, P, tmp) => {
      // dx += dy[:, n0..n0+P] · panel
      for (let m = 0; m < M; m++) tmp.set(dy.subarray(m * N + n0, m * N + n0 + P), m * P);
      k.matmulDyW(dx, tmp, panel, M, P, K, true);
    });
  }
  if (lin.grad) weightGrads(k, lin.grad, dy, x, M, N, K);
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
  // dA[r,K] += d(xa)ᵀ · xLora ;  dx += dropoutᵀ(d(xa) · A)
  const xLora = droppedInput(cache, lin, x, M);
  k.matmulDytX(lora.dA, g, xLora ?? x, M, r, K, true);
  if (dx === null) return;
  if (xLora === null) {
    k.matmulDyW(dx, g, lora.A, M, r, K, true);
  } else {
    // The dropped input is no longer needed: its buffer takes d(xa) · A before the mask.
    k.matmulDyW(xLora, g, lora.A, M, r, K, false);
    dropoutBackwardAdd(dx, xLora, M * K, lora.dropout, lora.dropoutKey as number);
  }
}

/** dW[N,K] += dyᵀ · x;  db[N] += column sums of dy. */
function weightGrads(k: Kernels, g: LinearGrad, dy: Float32Array, x: Float32Array, M: number, N: number, K: number): void {
  if (g.dW !== null) k.matmulDytX(g.dW, dy, x, M, N, K, true);
  if (g.db !== null) {
    const db = g.db;
    for (let m = 0; m < M; m++) {
      const row = m * N;
      for (let n = 0; n < N; n++) db[n] += dy[row + n];
    }
  }
}

/**
 * Walk an int8 weight in row panels: each panel is dequantized (w = code · row scale, f32) into a
 * kernel buffer and handed to `use(panel [P, cols], firstRow, P, tmp [M, P])`, so the weight is
 * never materialised in f32 as a whole.
 */
/** The int8 or ggml weight dequantized into f32 panels of rows n0..n0+P, each handed to `use`. */
function weightPanels(k: Kernels, weight: { kind: 'int8'; q: Int8Weight } | { kind: 'ggml'; q: GgmlWeight }, M: number, use: (panel: Float32Array, n0: number, P: number, tmp: Float32Array) => void): void {
  const w = weight.q;
  const K = w.cols;
  const rowsPerPanel = Math.max(1, Math.min(w.rows, Math.floor(INT8_PANEL_ELEMENTS / K)));
  const panel = k.allocF32(rowsPerPanel * K);
  const tmp = k.allocF32(M * rowsPerPanel);
  try {
    for (let n0 = 0; n0 < w.rows; n0 += rowsPerPanel) {
      const P = Math.min(rowsPerPanel, w.rows - n0);
      if (weight.kind === 'ggml') {
        const g = weight.q;
        dequantizeGgml(g.type, g.data.subarray(n0 * g.rowBytes, (n0 + P) * g.rowBytes), P * K, panel.subarray(0, P * K));
      } else {
        const q = weight.q;
        for (let r = 0; r < P; r++) {
          const s = q.scales[n0 + r];
          const o = (n0 + r) * K;
          for (let c = 0; c < K; c++) panel[r * K + c] = Math.fround(q.codes[o + c] * s);
        }
      }
      use(panel.subarray(0, P * K), n0, P, tmp.subarray(0, M * P));
    }
  } finally {
    k.free(tmp);
    k.free(panel);
  }
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
