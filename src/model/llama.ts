// LlamaModel: the one Llama-family decoder (Llama 2/3, Mistral, Qwen2, SmolLM...) over resolved
// weights, parameterised by the model config (FORMATS.md §5). Inference forward (optionally with
// a KV cache, padding masks, all or last logits) and the training forward/backward (loss → LoRA
// gradients, gradient checkpointing per decoder layer) share the same layer code in nn/.
//
// API (used by generation, evaluation and training):
//   model.config                           resolved model config (dims, rope, token ids)
//   model.tokenizer                        TextTokenizer | null (set by loadModel)
//   model.generationConfig                 generation_config.json defaults, or null (set by loadModel)
//   model.createKvCache(B, maxTokens)      KvCache for decoding (dispose it when done)
//   model.forward(ids, B, T, opts)         Float32Array logits: [B·T, V] ('all') or [B, V] ('last')
//        opts: { cache?, startPos? (default cache.length), positions? [B·T],
//                attentionMask? [B, startPos+T] (1 = token, 0 = left padding), logits: 'all'|'last' }
//        With a cache, this call's k/v rows are appended at startPos and cache.length advances.
//   model.loss(ids, B, T, labels?)         mean causal-LM loss (HF label shift; labels -100 = ignored)
//   model.forwardBackward(ids, B, T, labels?, opts?)  the same loss, accumulating lossScale · d loss /
//                                          d(LoRA A, B) into each slot's dA / dB (the caller zeroes
//                                          them); opts.dropoutSeed turns LoRA dropout on for this pass
//   model.linear(name), model.linears()    the projections by checkpoint name (LoRA attaches here)
//   model.attachLora(name, A, B, r, scale, {dropout}?)  put an adapter (PEFT A [r,in], B [out,r]) into a slot
//   model.enableFullTraining()             every weight, norm and the embedding trained (f32 models):
//                                          returns the parameters with their gradient buffers
//   model.dispose()                        free kernel buffers
// Training batches need no attention mask: pad on the right and give those labels -100 (causal
// attention never lets real tokens see later padding). Memory of the training path: the input of
// every layer ([B·T, C] each), one layer's intermediates (re-run per layer in backward) including
// its attention probabilities [B, H, T, T], and the lm head in row chunks of at most 16 MiB.
// Not here: reading files (model/load.ts), sampling (generation), optimisers (train/).
import { ShapeError, UnsupportedError } from '../errors.js';
import type { ModelConfig } from '../formats/hf-config.js';
import type { GenerationConfig } from '../formats/hf-folder.js';
import type { TextTokenizer } from '../formats/tokenizer.js';
import type { Kernels } from '../kernels/kernels.js';
import { Arena } from '../nn/arena.js';
import type { SequenceContext } from '../nn/attention.js';
import {
  createDecoderLayerCache, createDecoderLayerGradScratch, decoderLayerBackward, decoderLayerForward, decoderLayerForwardLastRows, layerLinears,
  type DecoderLayerCache, type DecoderLayerWeights, type LayerDims,
} from '../nn/decoder-layer.js';
import { dropoutKey } from '../nn/dropout.js';
import { embeddingBackward, embeddingForward } from '../nn/embedding.js';
import { createLinearCache, linearBackward, linearForward, maxLoraRank, packFrozenInt16, type Linear, type LoraSlot } from '../nn/linear.js';
import { crossEntropyBackward, crossEntropyForward, IGNORE_INDEX, shiftLabels, type LossResult } from '../nn/loss.js';
import { buildRopeTables, type RopeParams, type RopeTables } from '../nn/rope.js';
import { rmsnormBackward, rmsnormForward, type RmsNorm } from '../nn/rmsnorm.js';
import { KvCache } from './kv-cache.js';

/** The fields of the resolved model config that the forward pass reads. */
export type LlamaDims = Pick<
  ModelConfig,
  | 'vocabSize'
  | 'hiddenSize'
  | 'intermediateSize'
  | 'numLayers'
  | 'numHeads'
  | 'numKvHeads'
  | 'headDim'
  | 'rmsNormEps'
  | 'maxPositionEmbeddings'
  | 'tieWordEmbeddings'
> & {
  readonly architecture: string;
  readonly rope: RopeParams;
  /** Mistral-style attention window; sequences longer than it are refused (no windowed kernel). */
  readonly slidingWindow?: number | null;
};

/** Largest [rows, V] logits block of the training/scoring path (f32 elements; 16 MiB). */
const HEAD_CHUNK_ELEMENTS = 1 << 22;

/** Architectures this implementation runs (config `model_type` / GGUF `general.architecture`). */
export const SUPPORTED_ARCHITECTURES = ['llama', 'mistral', 'qwen2'] as const;

export interface LlamaWeights {
  /** [V, C] model.embed_tokens.weight */
  readonly embed: Float32Array;
  readonly layers: readonly DecoderLayerWeights[];
  /** model.norm */
  readonly norm: RmsNorm;
  /** lm_head (its weight is `embed` when embeddings are tied) */
  readonly lmHead: Linear;
}


/** A trained tensor and its gradient buffer (same layout), by Hugging Face checkpoint name. */
export interface ModelParam {
  readonly name: string;
  readonly data: Float32Array;
  readonly grad: Float32Array;
  /** Weight decay applies (false for norms and biases, as the HF Trainer groups them). */
  readonly decay: boolean;
}

export interface BackwardOptions {
  /** d loss is multiplied by this (gradient accumulation weights micro-batches); default 1. */
  readonly lossScale?: number;
  /** Seed of this pass's LoRA dropout masks; without it no dropout runs. */
  readonly dropoutSeed?: number;
  /**
   * Bytes the backward may spend on keeping layers' forward caches instead of recomputing them
   * (gradient checkpointing only as far as memory requires); default 0: every layer but the last
   * is recomputed. The gradients are the same bits either way. The trainer sets it.
   */
  readonly activationBudgetBytes?: number;
}

export interface LoraOptions {
  /** Dropout probability on the LoRA input during training, in [0, 1); default 0. */
  readonly dropout?: number;
}

export interface ForwardOptions {
  readonly cache?: KvCache;
  /** Rows already in the cache before this call; default cache.length (0 without a cache). */
  readonly startPos?: number;
  /** [B·T] RoPE positions; default derived from startPos and the attention mask. */
  readonly positions?: Int32Array;
  /** [B, startPos + T], 1 = real token, 0 = padding; only left padding is supported. */
  readonly attentionMask?: Uint8Array | Int32Array;
  readonly logits: 'all' | 'last';
}

/** Scratch of one inference forward, kept between calls while the row count fits. */
interface ForwardWorkspace {
  readonly arena: Arena;
  readonly N: number;
  readonly loraRank: number;
  readonly x: Float32Array;
  readonly y: Float32Array;
  readonly layer: DecoderLayerCache;
}

export class LlamaModel<C extends LlamaDims = ModelConfig, Tok = TextTokenizer> {
  private rope: RopeTables | null = null;
  private workspace: ForwardWorkspace | null = null;
  private readonly byName = new Map<string, Linear>();
  /** d loss / d embed in full-parameter training (also the tied lm head's dW), else null. */
  private embedGrad: Float32Array | null = null;
  private disposed = false;

  /** The folder's generation_config.json (sampling defaults, EOS ids); null for a GGUF file or none. */
  generationConfig: GenerationConfig | null = null;

  /**
   * @param ownedBuffers kernel buffers holding the weights, freed by dispose()
   */
  constructor(
    readonly kernels: Kernels,
    readonly config: C,
    readonly weights: LlamaWeights,
    readonly tokenizer: Tok | null,
    private readonly ownedBuffers: Float32Array[] = [],
  ) {
    if (!(SUPPORTED_ARCHITECTURES as readonly string[]).includes(config.architecture)) {
      throw new UnsupportedError(`architecture "${config.architecture}" is not supported`, { field: 'architecture', expected: SUPPORTED_ARCHITECTURES.join(', '), got: config.architecture });
    }
    for (const layer of weights.layers) for (const lin of layerLinears(layer)) this.byName.set(lin.name, lin);
    this.byName.set(weights.lmHead.name, weights.lmHead);
  }

  // ---- parameters -------------------------------------------------------------------------------

  linears(): IterableIterator<Linear> {
    return this.byName.values();
  }

  linear(name: string): Linear {
    const lin = this.byName.get(name);
    if (lin === undefined) throw new ShapeError(`no Linear named ${name}`, { field: name, expected: 'a projection name such as model.layers.0.self_attn.q_proj' });
    return lin;
  }

  /** Attach (or replace) a LoRA adapter: A [r, in], B [out, r], copied into kernel buffers. */
  attachLora(name: string, A: Float32Array, B: Float32Array, r: number, scale: number, opts: LoraOptions = {}): LoraSlot {
    const lin = this.linear(name);
    const dropout = opts.dropout ?? 0;
    if (!(dropout >= 0 && dropout < 1)) throw new ShapeError('LoRA dropout must be in [0, 1)', { field: `${name}.lora_dropout`, expected: '0 <= p < 1', got: String(dropout) });
    if (A.length !== r * lin.inFeatures) throw new ShapeError('lora_A has the wrong size', { field: `${name}.lora_A`, expected: `[${r}, ${lin.inFeatures}]`, got: `${A.length} values` });
    if (B.length !== lin.outFeatures * r) throw new ShapeError('lora_B has the wrong size', { field: `${name}.lora_B`, expected: `[${lin.outFeatures}, ${r}]`, got: `${B.length} values` });
    const alloc = (src: Float32Array | null, n: number): Float32Array => {
      const buf = this.kernels.allocF32(n);
      if (src !== null) buf.set(src);
      this.ownedBuffers.push(buf);
      return buf;
    };
    const slot: LoraSlot = { r, scale, A: alloc(A, A.length), B: alloc(B, B.length), dA: alloc(null, A.length), dB: alloc(null, B.length), dropout, dropoutKey: null };
    lin.lora = slot;
    this.dropWorkspace();
    return slot;
  }

  /**
   * Full-parameter training: gives every Linear, norm and the embedding a gradient buffer (zeroed)
   * and returns them all by checkpoint name. Only for f32 weights (4-bit or int8 weights are
   * frozen by construction). Idempotent: a second call returns the same buffers.
   */
  enableFullTraining(): ModelParam[] {
    const w = this.weights;
    const alloc = (n: number): Float32Array => {
      const buf = this.kernels.allocF32(n);
      this.ownedBuffers.push(buf);
      return buf;
    };
    const params: ModelParam[] = [];
    if (this.embedGrad === null) this.embedGrad = alloc(w.embed.length);
    params.push({ name: 'model.embed_tokens.weight', data: w.embed, grad: this.embedGrad, decay: true });
    const linearParams = (lin: Linear): void => {
      if (lin.weight.kind !== 'f32') {
        throw new UnsupportedError('full-parameter training needs f32 weights', { field: `${lin.name}.weight`, expected: 'an unquantized model (quant none)', got: lin.weight.kind });
      }
      const tied = lin.weight.data === w.embed;
      if (!lin.grad) lin.grad = { dW: tied ? this.embedGrad : alloc(lin.weight.data.length), db: lin.bias === null ? null : alloc(lin.bias.length) };
      if (!tied) params.push({ name: `${lin.name}.weight`, data: lin.weight.data, grad: lin.grad.dW as Float32Array, decay: true });
      if (lin.bias !== null) params.push({ name: `${lin.name}.bias`, data: lin.bias, grad: lin.grad.db as Float32Array, decay: false });
    };
    const normParam = (norm: RmsNorm): void => {
      if (!norm.grad) norm.grad = alloc(norm.weight.length);
      params.push({ name: `${norm.name}.weight`, data: norm.weight, grad: norm.grad, decay: false });
    };
    for (const layer of w.layers) {
      normParam(layer.inputNorm);
      for (const lin of layerLinears(layer)) linearParams(lin);
      normParam(layer.postNorm);
    }
    normParam(w.norm);
    linearParams(w.lmHead);
    return params;
  }

  // ---- inference ------------------------------------------------------------------------------

  createKvCache(batch: number, maxTokens: number): KvCache {
    const cfg = this.config;
    if (!Number.isInteger(batch) || batch < 1) throw new ShapeError('KV cache batch must be a positive integer', { field: 'batch', got: String(batch) });
    if (!Number.isInteger(maxTokens) || maxTokens < 1 || maxTokens > cfg.maxPositionEmbeddings) {
      throw new ShapeError('KV cache length is outside the model context', { field: 'maxTokens', expected: `1..${cfg.maxPositionEmbeddings} (max_position_embeddings)`, got: String(maxTokens) });
    }
    return new KvCache(this.kernels, batch, maxTokens, cfg.numLayers, cfg.numKvHeads * cfg.headDim);
  }

  forward(ids: Int32Array, B: number, T: number, opts: ForwardOptions): Float32Array {
    this.checkAlive();
    const cfg = this.config;
    const C = cfg.hiddenSize;
    const N = B * T;
    this.checkIds(ids, B, T);
    const cache = opts.cache ?? null;
    const startPos = opts.startPos ?? (cache === null ? 0 : cache.length);
    if (cache !== null) {
      if (cache.batch !== B) throw new ShapeError('KV cache batch does not match the input', { field: 'B', expected: String(cache.batch), got: String(B) });
      if (startPos + T > cache.maxTokens) {
        throw new ShapeError('input does not fit in the KV cache', { field: 'T', expected: `startPos + T <= ${cache.maxTokens}`, got: `${startPos} + ${T}`, hint: 'create a larger cache or shorten the prompt' });
      }
    } else if (startPos !== 0) {
      throw new ShapeError('startPos > 0 needs a KV cache', { field: 'startPos', expected: '0', got: String(startPos) });
    }
    this.checkWindow(startPos + T);
    const keyStart = this.resolveKeyStart(opts.attentionMask, B, startPos + T, cache);
    const positions = opts.positions ?? defaultPositions(B, T, startPos, keyStart);
    const ctx: SequenceContext = { B, T, positions, rope: this.ropeFor(positions, N), startPos, keyStart };

    const ws = this.workspaceFor(N);
    let x = ws.x;
    let y = ws.y;
    embeddingForward(this.kernels, x, this.weights.embed, ids, N, C);
    // With logits at the last rows only, the last layer runs those rows alone (its keys and
    // values still cover every row): x then holds B rows.
    const lastRowsOnly = opts.logits === 'last';
    for (let l = 0; l < cfg.numLayers; l++) {
      const kv = cache === null ? null : cache.layers[l];
      if (lastRowsOnly && l === cfg.numLayers - 1) decoderLayerForwardLastRows(this.kernels, y, ws.layer, this.weights.layers[l], x, ctx, kv, C);
      else decoderLayerForward(this.kernels, y, ws.layer, this.weights.layers[l], x, ctx, kv, C);
      [x, y] = [y, x];
    }
    if (cache !== null) cache.length = startPos + T;

    // Final norm and lm head on the rows whose logits are wanted (x holds the last layer's output).
    const rows = lastRowsOnly ? B : N;
    const normed = y;
    rmsnormForward(this.kernels, normed, { x: null, rstd: ws.layer.n1.rstd }, this.weights.norm, x, rows, C);
    const V = cfg.vocabSize;
    const logits = this.kernels.allocF32(rows * V);
    try {
      linearForward(this.kernels, logits, null, this.weights.lmHead, normed, rows, ws.layer.attn.xa.q);
      const out = new Float32Array(rows * V);
      out.set(logits);
      return out;
    } finally {
      this.kernels.free(logits);
    }
  }

  // ---- training -------------------------------------------------------------------------------

  /** Mean causal-LM loss over the batch (labels default to ids; -100 = ignored), no gradients. */
  loss(ids: Int32Array, B: number, T: number, labels?: Int32Array): LossResult {
    return this.runTraining(ids, B, T, labels, false);
  }

  /**
   * Loss plus backward: d(mean loss)/d(LoRA A, B) is ADDED into every slot's dA / dB.
   * Gradient checkpointing: each layer's input is kept and, beyond `activationBudgetBytes` of kept
   * layer caches, layers are re-run during backward.
   */
  forwardBackward(ids: Int32Array, B: number, T: number, labels?: Int32Array, opts: BackwardOptions = {}): LossResult {
    const slots = [...this.byName.values()].map((lin) => lin.lora);
    const seed = opts.dropoutSeed;
    if (seed !== undefined) slots.forEach((slot, i) => { if (slot !== null) slot.dropoutKey = dropoutKey(seed, i); });
    try {
      return this.runTraining(ids, B, T, labels, true, opts.lossScale ?? 1, seed !== undefined, opts.activationBudgetBytes ?? 0);
    } finally {
      for (const slot of slots) if (slot !== null) slot.dropoutKey = null;
    }
  }

  private runTraining(ids: Int32Array, B: number, T: number, labels: Int32Array | undefined, backward: boolean, lossScale = 1, dropout = false, activationBudget = 0): LossResult {
    this.checkAlive();
    const k = this.kernels;
    const cfg = this.config;
    const C = cfg.hiddenSize;
    const V = cfg.vocabSize;
    const N = B * T;
    const L = cfg.numLayers;
    this.checkIds(ids, B, T);
    if (labels !== undefined && labels.length !== N) throw new ShapeError('labels must have B·T entries', { field: 'labels', expected: String(N), got: String(labels.length) });
    this.checkWindow(T);
    const targets = shiftLabels(labels ?? ids, B, T);
    const positions = defaultPositions(B, T, 0, null);
    const ctx: SequenceContext = { B, T, positions, rope: this.ropeFor(positions, N), startPos: 0, keyStart: null };
    const dims = { B, T, C, loraRank: maxLoraRank(this.byName.values()), keepProbs: backward, dropout };
    const arena = new Arena(k);
    try {
      // Layer inputs: acts[l] is the input of layer l; acts[L] the final hidden state.
      const acts = Array.from({ length: L + 1 }, () => arena.f32(N * C));
      const caches = this.layerCaches(arena, dims, backward ? activationBudget : 0);
      const layerCache = caches.shared;
      embeddingForward(k, acts[0], this.weights.embed, ids, N, C);
      for (let l = 0; l < L; l++) decoderLayerForward(k, acts[l + 1], caches.of(l), this.weights.layers[l], acts[l], ctx, null, C);
      const normCache = { x: null, rstd: arena.f32(N) };
      const xn = arena.f32(N * C);
      rmsnormForward(k, xn, normCache, this.weights.norm, acts[L], N, C);
      // lm head + loss in row chunks: the [rows, V] logits never exist for all N rows at once
      // (a 128K vocabulary × 2048 tokens would be 1 GiB).
      const R = Math.max(1, Math.min(N, Math.floor(HEAD_CHUNK_ELEMENTS / V)));
      let count = 0;
      for (let i = 0; i < N; i++) if (targets[i] !== IGNORE_INDEX) count++;
      const headCache = createLinearCache(dropout ? arena.f32(R * C) : null);
      const headXa = arena.f32(R * dims.loraRank);
      const dxa = arena.f32(R * dims.loraRank);
      const logits = arena.f32(R * V);
      const dlogits = backward ? arena.f32(R * V) : logits;
      const losses = arena.f32(R);
      const grad = arena.f32(N * C);
      let sum = 0;
      // A frozen f32 head under int16 kernels is packed once for every chunk of this call.
      const headInt16 = packFrozenInt16(k, this.weights.lmHead);
      try {
        for (let r0 = 0; r0 < N; r0 += R) {
          const rows = Math.min(R, N - r0);
          const tg = targets.subarray(r0, r0 + rows);
          const xr = xn.subarray(r0 * C, (r0 + rows) * C);
          if (headInt16 !== null) k.matmulXWtInt16(logits, xr, headInt16, rows, false);
          else linearForward(k, logits, headCache, this.weights.lmHead, xr, rows, headXa);
          sum += crossEntropyForward(k, losses, logits, tg, rows, V).sum;
          if (!backward) continue;
          crossEntropyBackward(k, dlogits, logits, tg, rows, V, count, lossScale);
          const gr = grad.subarray(r0 * C, (r0 + rows) * C);
          if (headInt16 !== null) k.matmulDyWInt16(gr, dlogits, headInt16, rows, true);
          else linearBackward(k, gr, dlogits, headCache, this.weights.lmHead, rows, dxa);
        }
      } finally {
        if (headInt16 !== null) k.releaseInt16(headInt16);
      }
      const result: LossResult = { loss: count > 0 ? sum / count : Number.NaN, sum, count };
      if (!backward) return result;

      let dy = arena.f32(N * C);
      rmsnormBackward(k, dy, this.weights.norm.grad ?? null, grad, normCache, this.weights.norm, N, C);
      const scratch = createDecoderLayerGradScratch(arena, this.weights.layers[0], dims);
      let dx = grad;
      for (let l = L - 1; l >= 0; l--) {
        // Kept layers and the last one still hold their forward; the others are recomputed.
        if (l !== L - 1 && !caches.kept(l)) decoderLayerForward(k, acts[l + 1], layerCache, this.weights.layers[l], acts[l], ctx, null, C);
        dx.fill(0);
        decoderLayerBackward(k, dx, dy, caches.of(l), this.weights.layers[l], ctx, C, scratch);
        [dx, dy] = [dy, dx];
      }
      // dy now holds d loss / d acts[0], the embedding output.
      if (this.embedGrad !== null) embeddingBackward(k, this.embedGrad, dy, ids, N, C);
      return result;
    } finally {
      arena.release();
    }
  }

  /**
   * Forward caches of a training pass: layers 0..K-1 keep their own (no recomputation in the
   * backward), the others share one. K is what `budget` bytes hold, fewer if the backend's memory
   * runs out first.
   */
  private layerCaches(arena: Arena, dims: LayerDims, budget: number): { shared: DecoderLayerCache; of: (l: number) => DecoderLayerCache; kept: (l: number) => boolean } {
    const L = this.config.numLayers;
    const before = arena.floats;
    const shared = createDecoderLayerCache(arena, this.weights.layers[0], dims);
    const bytes = (arena.floats - before) * 4;
    const own: DecoderLayerCache[] = [];
    const wanted = Math.min(L - 1, Math.floor(budget / bytes));
    try {
      while (own.length < wanted) own.push(createDecoderLayerCache(arena, this.weights.layers[own.length], dims));
    } catch (err) {
      if (!(err instanceof RangeError || err instanceof UnsupportedError)) throw err; // out of backend memory: recompute the rest
    }
    return { shared, of: (l) => own[l] ?? shared, kept: (l) => l < own.length };
  }

  // ---- lifetime -------------------------------------------------------------------------------

  /** Free the weights and scratch held in kernel memory. Idempotent. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.dropWorkspace();
    this.freeRope();
    for (const buf of this.ownedBuffers) this.kernels.free(buf);
    this.ownedBuffers.length = 0;
  }

  // ---- helpers --------------------------------------------------------------------------------

  private checkAlive(): void {
    if (this.disposed) throw new Error('LlamaModel: used after dispose()');
  }

  private checkIds(ids: Int32Array, B: number, T: number): void {
    if (!Number.isInteger(B) || !Number.isInteger(T) || B < 1 || T < 1) throw new ShapeError('batch and length must be positive integers', { field: 'B, T', got: `${B}, ${T}` });
    if (ids.length !== B * T) throw new ShapeError('ids must hold B·T token ids', { field: 'ids', expected: String(B * T), got: String(ids.length) });
    const V = this.config.vocabSize;
    for (let i = 0; i < ids.length; i++) {
      if (!(ids[i] >= 0 && ids[i] < V)) throw new ShapeError('token id outside the vocabulary', { field: `ids[${i}]`, expected: `0 <= id < ${V}`, got: String(ids[i]) });
    }
  }

  /** Sliding-window attention only differs from full attention beyond the window: refuse that. */
  private checkWindow(keys: number): void {
    const w = this.config.slidingWindow;
    if (w !== undefined && w !== null && keys > w) {
      throw new UnsupportedError('sequences longer than the sliding attention window are not supported', { field: 'sliding_window', expected: `at most ${w} tokens`, got: String(keys) });
    }
  }

  /** RoPE tables covering every position in use, grown on demand up to the model context. */
  private ropeFor(positions: Int32Array, N: number): RopeTables {
    let maxPos = 0;
    for (let i = 0; i < N; i++) if (positions[i] > maxPos) maxPos = positions[i];
    const context = this.config.maxPositionEmbeddings;
    if (maxPos >= context) {
      throw new ShapeError('sequence is longer than the model context', { field: 'positions', expected: `positions < ${context} (max_position_embeddings)`, got: `position ${maxPos}`, hint: 'shorten the prompt or the evaluation window' });
    }
    if (this.rope === null || this.rope.maxPos <= maxPos) {
      let size = 256;
      while (size <= maxPos) size *= 2;
      const tables = buildRopeTables(this.config.rope, this.config.headDim, Math.min(size, context));
      // Resident in kernel memory: the wasm backend would otherwise copy them in on every call.
      this.freeRope();
      const cos = this.kernels.allocF32(tables.cos.length);
      const sin = this.kernels.allocF32(tables.sin.length);
      cos.set(tables.cos);
      sin.set(tables.sin);
      this.rope = { ...tables, cos, sin };
    }
    return this.rope;
  }

  private freeRope(): void {
    if (this.rope === null) return;
    this.kernels.free(this.rope.cos);
    this.kernels.free(this.rope.sin);
    this.rope = null;
  }

  private resolveKeyStart(mask: Uint8Array | Int32Array | undefined, B: number, Tk: number, cache: KvCache | null): Int32Array | null {
    if (mask === undefined) return cache === null ? null : cache.keyStart;
    if (mask.length !== B * Tk) throw new ShapeError('attention mask must be [B, startPos + T]', { field: 'attentionMask', expected: `${B * Tk} values`, got: String(mask.length) });
    const keyStart = new Int32Array(B);
    for (let b = 0; b < B; b++) {
      let j = 0;
      while (j < Tk && mask[b * Tk + j] === 0) j++;
      keyStart[b] = j;
      for (; j < Tk; j++) {
        if (mask[b * Tk + j] === 0) throw new UnsupportedError('only left padding is supported in attention masks', { field: `attentionMask[${b}]`, expected: '0…0 1…1', got: `a 0 at column ${j} after a 1` });
      }
    }
    if (cache !== null) cache.keyStart = keyStart;
    return keyStart;
  }

  private workspaceFor(N: number): ForwardWorkspace {
    const rank = maxLoraRank(this.byName.values());
    const ws = this.workspace;
    if (ws !== null && ws.N >= N && ws.loraRank >= rank) return ws;
    this.dropWorkspace();
    const C = this.config.hiddenSize;
    const cap = Math.max(N, ws === null ? 0 : ws.N);
    const arena = new Arena(this.kernels);
    // One row of B·T rows per "sequence" so the attention sub-views index by T; B = 1 here is
    // only a sizing choice: attention caches index rows as b·T + t within the N-row buffers.
    const layer = createDecoderLayerCache(arena, this.weights.layers[0], { B: 1, T: cap, C, loraRank: Math.max(rank, 1), keepProbs: false });
    this.workspace = { arena, N: cap, loraRank: rank, x: arena.f32(cap * C), y: arena.f32(cap * C), layer };
    return this.workspace;
  }

  private dropWorkspace(): void {
    this.workspace?.arena.release();
    this.workspace = null;
  }
}

/** positions[b·T + t] = startPos + t − keyStart[b], clamped at 0 (padding rows get 0). */
function defaultPositions(B: number, T: number, startPos: number, keyStart: Int32Array | null): Int32Array {
  const positions = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    const ks = keyStart === null ? 0 : keyStart[b];
    for (let t = 0; t < T; t++) positions[b * T + t] = Math.max(0, startPos + t - ks);
  }
  return positions;
}
