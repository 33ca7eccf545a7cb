// Token embedding lookup, forward and backward: out[N,C] = table[ids[n], :]. The table is
// [V, C] f32 (`model.embed_tokens.weight`), also the lm head's weight when embeddings are tied.
// Not here: ids validation against V (the model checks ids once per forward, with a typed error).
import type { Kernels } from '../kernels/kernels.js';

export function embeddingForward(k: Kernels, out: Float32Array, table: Float32Array, ids: Int32Array, N: number, C: number): void {
  k.embeddingForward(out, table, ids, N, C);
}

/** dtable[ids[n], :] += dout[n, :] (full-parameter training only; QLoRA freezes the table). */
export function embeddingBackward(k: Kernels, dtable: Float32Array, dout: Float32Array, ids: Int32Array, N: number, C: number): void {
  k.embeddingBackward(dtable, dout, ids, N, C);
}
