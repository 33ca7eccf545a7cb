// The decoding KV cache: per layer, keys and values after RoPE for B sequences of up to maxTokens
// rows each, [B, maxTokens, Hkv·D] (row stride Hkv·D), in the kernel backend's memory.
// `length` is how many rows of every sequence are filled; `keyStart` remembers left padding
// (the first real token of each sequence) once a forward call has given an attention mask.
// Not here: what to decode next (generation), the attention itself (nn/attention.ts).
import type { Kernels } from '../kernels/kernels.js';
import { Arena } from '../nn/arena.js';
import type { LayerKv } from '../nn/attention.js';

export class KvCache {
  readonly layers: readonly LayerKv[];
  /** Rows filled in every sequence (the next forward starts at this position by default). */
  length = 0;
  /** [batch] first attendable row of each sequence (left padding), or null when unpadded. */
  keyStart: Int32Array | null = null;
  private readonly arena: Arena;

  constructor(kernels: Kernels, readonly batch: number, readonly maxTokens: number, numLayers: number, kvWidth: number) {
    this.arena = new Arena(kernels);
    const layers: LayerKv[] = [];
    for (let l = 0; l < numLayers; l++) {
      layers.push({ k: this.arena.f32(batch * maxTokens * kvWidth), v: this.arena.f32(batch * maxTokens * kvWidth), maxTokens });
    }
    this.layers = layers;
  }

  /** Forget every row (the buffers are kept for the next prompt). */
  reset(): void {
    this.length = 0;
    this.keyStart = null;
  }

  /** Drop rows from `length` on (e.g. to reuse a shared prompt prefix). */
  truncate(length: number): void {
    if (!Number.isInteger(length) || length < 0 || length > this.length) throw new RangeError(`KvCache.truncate: ${length} is not in 0..${this.length}`);
    this.length = length;
  }

  /** Free the buffers; the cache is unusable afterwards. */
  dispose(): void {
    this.arena.release();
    this.length = 0;
  }
}
