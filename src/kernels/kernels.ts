// The compute interface every layer above kernels/ uses. One implementation is chosen once at
// start-up and passed down (ARCHITECTURE.md §2): `ref` (plain TypeScript loops, the oracle) or
// `wasm` (AssemblyScript SIMD on a worker-thread pool over one shared WebAssembly.Memory).
//
// Conventions (dimension names as in STYLE.md: B, T, C, H, Hkv, D, V, R; M/K/N for matmuls):
// - Matrices are row-major Float32Arrays. Output arguments come first, then inputs, then dims.
// - "accumulate" = true adds into the output (+=), false overwrites it. Backward kernels that
//   produce gradients of inputs always ACCUMULATE into caller-zeroed buffers unless noted.
// - Buffers from allocF32 live in the backend's memory (wasm: the shared WebAssembly.Memory), so
//   the fast backend passes them by offset with no copy. Any other Float32Array is also accepted
//   and gives the same result (the wasm backend stages it through its memory: slower).
// - Everything is synchronous: the wasm backend blocks the calling thread with Atomics.wait
//   while the pool works (allowed on Node's main thread).

import type { Quant4Weight } from '../quant/types.js';

export type KernelBackendName = 'ref' | 'wasm';

export interface AttentionDims {
  /** Query rows in this call. */
  readonly Tq: number;
  /** Key/value rows available (the KV cache length including this call's rows). */
  readonly Tk: number;
  /** Query heads. */
  readonly H: number;
  /** Key/value heads; H % Hkv == 0, query head h uses kv head floor(h / (H / Hkv)). */
  readonly Hkv: number;
  /** Head dimension. */
  readonly D: number;
  /**
   * Causal offset: query row i may attend to key rows j <= i + qOffset (training: 0;
   * decoding with a cache of Tk rows of which the last Tq are new: Tk - Tq).
   */
  readonly qOffset: number;
  /** First key row a query may attend to (left padding in batched decoding); default 0. */
  readonly keyStart?: number;
  /** Row stride of k and v in elements (a KV cache may be wider than Hkv * D); default Hkv * D. */
  readonly kvStride?: number;
}

/** A frozen f32 weight packed by Kernels.packInt16 (opaque to callers). */
export interface Int16Weight {
  readonly rows: number;
  readonly cols: number;
}

export interface Kernels {
  readonly name: KernelBackendName;
  /** Worker threads the backend computes with (1 for ref). */
  readonly threads: number;
  /**
   * What runs, for --verbose and bench records: backend, the wasm build the runtime probe chose
   * (relaxed-fused, relaxed or simd), threads and the 4-bit matmuls' arithmetic.
   */
  readonly description: string;
  /**
   * Whether the frozen matmuls of training take the int16 arithmetic (ref/matmul-int16.ts): the
   * 4-bit ones inside matmulXWtQ4 / matmulDyWQ4, and an f32 head through packInt16.
   */
  readonly int16Activations: boolean;
  /** Byte budget of 4-bit weights the backend keeps resident (wasm: uploaded copies under LRU; ref: 0). */
  readonly residentWeightBytes: number;
  /**
   * Sets that budget. model/build.ts lowers it to a streaming window for a model whose 4-bit
   * weights exceed it: layer-order access cycles through the whole model, so an LRU cache smaller
   * than the model never hits, and its resident copies would only add to the process's memory.
   */
  setResidentWeightBytes(bytes: number): void;

  // ---- memory ---------------------------------------------------------------------------------
  /** Zero-filled f32 buffer resident in the backend's memory. */
  allocF32(n: number): Float32Array;
  /** Return a buffer from allocF32 for reuse. Passing any other array is an error. */
  free(buf: Float32Array): void;
  /** Release workers and memory; the process can exit afterwards. Idempotent. */
  dispose(): Promise<void>;

  // ---- matmuls ----------------------------------------------------------------------------------
  /** y[M,N] (+)= x[M,K] · w[N,K]ᵀ  (Linear forward; w in torch [out, in] layout). */
  matmulXWt(y: Float32Array, x: Float32Array, w: Float32Array, M: number, K: number, N: number, accumulate: boolean): void;
  /** dx[M,K] (+)= dy[M,N] · w[N,K]  (Linear backward to the input). */
  matmulDyW(dx: Float32Array, dy: Float32Array, w: Float32Array, M: number, N: number, K: number, accumulate: boolean): void;
  /** dw[N,K] (+)= dy[M,N]ᵀ · x[M,K]  (Linear backward to the weight, e.g. LoRA A and B). */
  matmulDytX(dw: Float32Array, dy: Float32Array, x: Float32Array, M: number, N: number, K: number, accumulate: boolean): void;
  /** y[M,N] (+)= x[M,K] · dequant(w)[N,K]ᵀ with w.rows = N, w.cols = K; never materialises w. */
  matmulXWtQ4(y: Float32Array, x: Float32Array, w: Quant4Weight, M: number, accumulate: boolean): void;
  /**
   * ys[i][M, ws[i].rows] (+)= x[M,K] · dequant(ws[i])ᵀ for every i, all ws[i].cols = K (projections
   * sharing one input: q/k/v, gate/up). Each ys[i] is bit for bit what matmulXWtQ4(ys[i], x, ws[i],
   * M, accumulate) gives; the fast backend runs the decoding sizes as one task.
   */
  matmulXWtQ4Many(ys: readonly Float32Array[], x: Float32Array, ws: readonly Quant4Weight[], M: number, accumulate: boolean): void;
  /** dx[M,K] (+)= dy[M,N] · dequant(w)[N,K]. */
  matmulDyWQ4(dx: Float32Array, dy: Float32Array, w: Quant4Weight, M: number, accumulate: boolean): void;
  /** out[(r1-r0)*cols] = dequant(w) rows r0..r1-1, f32 (FORMATS.md §3.6 arithmetic). */
  dequantizeQ4Rows(out: Float32Array, w: Quant4Weight, r0: number, r1: number): void;
  /**
   * A frozen f32 weight w[N, K] made ready for the int16 products below (ref/matmul-int16.ts with
   * B = w, and B = wᵀ for the input gradient); w must not change until releaseInt16. The lm head of
   * training uses it: packed once per step instead of once per row chunk.
   */
  packInt16(w: Float32Array, N: number, K: number): Int16Weight;
  /** y[M,N] (+)= x[M,K]·wᵀ in the int16 arithmetic. */
  matmulXWtInt16(y: Float32Array, x: Float32Array, w: Int16Weight, M: number, accumulate: boolean): void;
  /** dx[M,K] (+)= dy[M,N]·w in the int16 arithmetic. */
  matmulDyWInt16(dx: Float32Array, dy: Float32Array, w: Int16Weight, M: number, accumulate: boolean): void;
  /** Frees what packInt16 made (once). */
  releaseInt16(w: Int16Weight): void;

  // ---- bitsandbytes blockwise quantization (bit-exact with the torch/CPU path, FORMATS.md §3.3) --
  /**
   * Quantize x[n] (flat) into packed[ceil(n/2)] codes and absmax[ceil(n/blockSize)], codebook
   * 'nf4' or 'fp4', exactly as bitsandbytes' default backend: reciprocal scaling for full blocks,
   * true division (and the 1e-38 clamp stored) for a partial last block, ties to the lower code.
   */
  quantizeBlockwise4(packed: Uint8Array, absmax: Float32Array, x: Float32Array, n: number, blockSize: number, type: 'nf4' | 'fp4'): void;

  // ---- elementwise / normalisation ------------------------------------------------------------
  /** out[T,C] = x / sqrt(mean(x²) + eps) · weight; rstd[T] cache = 1/sqrt(mean(x²)+eps). */
  rmsnormForward(out: Float32Array, rstd: Float32Array, x: Float32Array, weight: Float32Array, T: number, C: number, eps: number): void;
  /** dx[T,C] += ...; dweight[C] += ... (dweight may be null when the weight is frozen). */
  rmsnormBackward(dx: Float32Array, dweight: Float32Array | null, dout: Float32Array, x: Float32Array, weight: Float32Array, rstd: Float32Array, T: number, C: number): void;
  /**
   * Rotary embedding in place, Hugging Face rotate_half pairing (i, i + D/2), on x[T, nHeads*D]
   * (row stride `stride`, default nHeads*D). Row t uses angle table row positions[t]:
   * cos/sin are [maxPos, D/2] tables (any scaling such as llama3 is already folded in).
   * inverse = true applies the transposed rotation (the backward pass).
   */
  rope(x: Float32Array, positions: Int32Array, cos: Float32Array, sin: Float32Array, T: number, nHeads: number, D: number, inverse: boolean, stride?: number): void;
  /** out = silu(gate) ⊙ up, elementwise over n. */
  siluMulForward(out: Float32Array, gate: Float32Array, up: Float32Array, n: number): void;
  /** dgate += dout ⊙ up ⊙ silu'(gate); dup += dout ⊙ silu(gate). */
  siluMulBackward(dgate: Float32Array, dup: Float32Array, dout: Float32Array, gate: Float32Array, up: Float32Array, n: number): void;
  /** Row-wise softmax in place over x[rows, cols]. */
  softmaxRows(x: Float32Array, rows: number, cols: number): void;

  // ---- attention ------------------------------------------------------------------------------
  /**
   * Causal multi-head attention with GQA. q[Tq, H*D], k/v[Tk, kvStride] (heads at h*D), out[Tq, H*D].
   * probs[H, Tq, Tk] receives the softmax probabilities (training cache); pass null when decoding.
   * Scale 1/sqrt(D); masked entries have probability exactly 0.
   */
  attentionForward(out: Float32Array, probs: Float32Array | null, q: Float32Array, k: Float32Array, v: Float32Array, dims: AttentionDims): void;
  /** dq/dk/dv (+)= gradients (accumulate), from dout[Tq, H*D] and the forward's probs. */
  attentionBackward(dq: Float32Array, dk: Float32Array, dv: Float32Array, dout: Float32Array, probs: Float32Array, q: Float32Array, k: Float32Array, v: Float32Array, dims: AttentionDims): void;

  // ---- embeddings and loss --------------------------------------------------------------------
  /** out[T,C] = table[ids[t], :]. */
  embeddingForward(out: Float32Array, table: Float32Array, ids: Int32Array, T: number, C: number): void;
  /** dtable[ids[t], :] += dout[t, :]. */
  embeddingBackward(dtable: Float32Array, dout: Float32Array, ids: Int32Array, T: number, C: number): void;
  /**
   * Cross-entropy over logits[T,V] against targets[T] (natural log). Rows whose target equals
   * ignoreIndex contribute nothing. losses[T] gets each row's loss (0 for ignored rows).
   * Returns the sum of losses and the number of counted rows.
   */
  crossEntropyForward(losses: Float32Array, logits: Float32Array, targets: Int32Array, T: number, V: number, ignoreIndex: number): { sum: number; count: number };
  /** dlogits[T,V] = scale · (softmax(logits) − onehot(target)); zero rows for ignored targets (overwrites). */
  crossEntropyBackward(dlogits: Float32Array, logits: Float32Array, targets: Int32Array, T: number, V: number, ignoreIndex: number, scale: number): void;

  // ---- optimiser ------------------------------------------------------------------------------
  /** Σ x² over n, accumulated in f64 (for global gradient-norm clipping). */
  sumSquares(x: Float32Array, n: number): number;
  /** x[i] *= s. */
  scale(x: Float32Array, n: number, s: number): void;
  /** out[i] = a[i] + b[i] over n (out may be a or b): residual connections. */
  add(out: Float32Array, a: Float32Array, b: Float32Array, n: number): void;
  /**
   * One torch.optim.AdamW step for one parameter tensor, t = step number (1-based):
   * p *= 1 - lr·wd; m = β1 m + (1-β1) g; v = β2 v + (1-β2) g²;
   * p -= (lr / (1-β1ᵗ)) · m / (sqrt(v) / sqrt(1-β2ᵗ) + eps).
   */
  adamwStep(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, n: number, lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, t: number): void;
}
