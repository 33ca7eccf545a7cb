// Shared test helpers for model tests: fixture token ids, array comparisons and a minimal greedy
// loop (argmax over the last logits with the KV cache; the real generator lives elsewhere).
import type { LlamaModel } from '../../src/model/llama.js';

/** FORMATS.md §14.2: "One day, a clever fox found a shiny key under the old oak tree." with BOS. */
export const SENTENCE_IDS = Int32Array.from([
  1, 385, 328, 432, 261, 280, 305, 330, 272, 414, 444, 272, 277, 264, 261, 262, 415, 271, 422, 410, 354, 422, 318, 264, 285, 265, 334, 341, 334, 412, 433,
  259, 276, 411, 426,
]);

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = d; // NaN propagates as a failure
  }
  return m;
}

export function argmax(x: ArrayLike<number>, offset: number, n: number): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (x[offset + i] > x[offset + best]) best = i;
  return best;
}

/** `count` greedy tokens after `bos`, one forward per token through the KV cache. */
export function greedyIds(model: LlamaModel, bos: number, count: number): number[] {
  const V = model.config.vocabSize;
  const cache = model.createKvCache(1, count + 1);
  const out: number[] = [];
  let next = bos;
  try {
    for (let i = 0; i < count; i++) {
      const logits = model.forward(Int32Array.of(next), 1, 1, { cache, logits: 'last' });
      next = argmax(logits, 0, V);
      out.push(next);
    }
  } finally {
    cache.dispose();
  }
  return out;
}
