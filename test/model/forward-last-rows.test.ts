// forward({ logits: 'last' }) runs the last layer on the last row of each sequence only (its keys
// and values still cover every row, and go into the KV cache): its logits must be the last rows of
// forward({ logits: 'all' }), with and without a cache, with left padding and after a prefix
// already in the cache; and the cache it leaves must serve the next step as the full forward's does.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createKernels } from '../../src/kernels/index.js';
import type { Kernels } from '../../src/kernels/kernels.js';
import { RefKernels } from '../../src/kernels/ref/index.js';
import type { LlamaModel } from '../../src/model/llama.js';
import { loadModel } from '../../src/model/load.js';
import { fixture } from '../helpers/shared.js';
import { SENTENCE_IDS, maxAbsDiff } from './helpers.js';

/** Rows T-1 of each sequence of [B·T, V] logits. */
function lastRows(logits: Float32Array, B: number, T: number, V: number): Float32Array {
  const out = new Float32Array(B * V);
  for (let b = 0; b < B; b++) out.set(logits.subarray((b * T + T - 1) * V, (b * T + T) * V), b * V);
  return out;
}

describe('forward with logits at the last rows only', () => {
  let wasmKernels: Kernels;
  const models: [string, LlamaModel, number][] = [];

  before(async () => {
    wasmKernels = await createKernels({ backend: 'wasm', threads: 2 });
    // ref f32: the same arithmetic row by row; wasm NF4: other summation orders (GEMV vs GEMM).
    models.push(['ref f32', await loadModel(fixture('models', 'stories260K'), { kernels: new RefKernels(), quant: 'none' }), 1e-5]);
    models.push(['wasm nf4', await loadModel(fixture('models', 'stories260K'), { kernels: wasmKernels }), 1e-3]);
  });
  after(async () => {
    for (const [, m] of models) m.dispose();
    await wasmKernels.dispose();
  });

  it('equal the last rows of the full logits: no cache, two sequences, left padding', () => {
    const T = 12;
    const ids = Int32Array.from([...SENTENCE_IDS.subarray(0, T), 0, 0, 0, ...SENTENCE_IDS.subarray(3, 3 + T - 3)]);
    const mask = Uint8Array.from([...new Array<number>(T).fill(1), 0, 0, 0, ...new Array<number>(T - 3).fill(1)]);
    for (const [name, m, tol] of models) {
      const V = m.config.vocabSize;
      const all = m.forward(ids, 2, T, { logits: 'all', attentionMask: mask });
      const last = m.forward(ids, 2, T, { logits: 'last', attentionMask: mask });
      assert.ok(maxAbsDiff(last, lastRows(all, 2, T, V)) <= tol, `${name}: ${maxAbsDiff(last, lastRows(all, 2, T, V))}`);
    }
  });

  it('equal the last rows with a cache after a cached prefix, and leave the same cache behind', () => {
    for (const [name, m, tol] of models) {
      const V = m.config.vocabSize;
      const [a, b] = [m.createKvCache(1, 32), m.createKvCache(1, 32)];
      try {
        for (const c of [a, b]) m.forward(SENTENCE_IDS.subarray(0, 5), 1, 5, { cache: c, logits: 'all' });
        const chunk = SENTENCE_IDS.subarray(5, 14);
        const all = m.forward(chunk, 1, 9, { cache: a, startPos: 5, logits: 'all' });
        const last = m.forward(chunk, 1, 9, { cache: b, startPos: 5, logits: 'last' });
        assert.ok(maxAbsDiff(last, lastRows(all, 1, 9, V)) <= tol, `${name}: ${maxAbsDiff(last, lastRows(all, 1, 9, V))}`);
        const next = SENTENCE_IDS.subarray(14, 15);
        const fromAll = m.forward(next, 1, 1, { cache: a, startPos: 14, logits: 'last' });
        const fromLast = m.forward(next, 1, 1, { cache: b, startPos: 14, logits: 'last' });
        assert.ok(maxAbsDiff(fromAll, fromLast) <= tol, `${name} next step: ${maxAbsDiff(fromAll, fromLast)}`);
      } finally {
        a.dispose();
        b.dispose();
      }
    }
  });
});
