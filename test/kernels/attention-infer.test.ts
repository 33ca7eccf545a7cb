// The wasm backend's inference attention forward (probs = null, Tq >= 8: the blocked kernel of
// src/kernels/wasm/assembly/attention-infer.ts) against the f64 oracle at shapes that stress its
// blocking: Tq not a multiple of the 8-position block or of 4, a KV cache (qOffset > 0, a row
// stride wider than the heads, capacity beyond Tk), left padding (keyStart > 0, rows that see no
// key), GQA ratios 1/3/4, head sizes 32/33/64/80/128, several key tiles (online-softmax rescale),
// 1-3 threads (same bits for every split), both builds. And NaN containment: a NaN in a cache row
// a query row cannot see (beyond Tk, before keyStart, later in its own block) never reaches it.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assertClose, attentionF64 } from './spec-oracle.js';
import { TOL_F64 } from './spec-context.js';
import { assertNanRowsContained, cacheInputs, forwardNoProbs, wasmBackendsForSuite, type CacheCase } from './attention-cache-cases.js';

interface Case extends CacheCase {
  label: string;
}

const CASES: Case[] = [
  { label: 'prompt T37 GQA 9/3 D64', Tq: 37, Tk: 37, H: 9, Hkv: 3, D: 64, qOffset: 0 },
  { label: 'MHA T21 H4 D32', Tq: 21, Tk: 21, H: 4, Hkv: 4, D: 32, qOffset: 0 },
  { label: 'keyStart5 T19 GQA 6/2 D80', Tq: 19, Tk: 19, H: 6, Hkv: 2, D: 80, qOffset: 0, keyStart: 5 },
  { label: 'cache chunk Tq13 at 29, kvStride wide, GQA 8/2 D128, keyStart3', Tq: 13, Tk: 42, H: 8, Hkv: 2, D: 128, qOffset: 29, keyStart: 3, kvStride: 2 * 128 + 8, capacity: 50 },
  { label: 'odd D33 T11 GQA 3/1 keyStart2', Tq: 11, Tk: 11, H: 3, Hkv: 1, D: 33, qOffset: 0, keyStart: 2 },
  { label: 'keyStart6: rows 0-5 see no key', Tq: 10, Tk: 10, H: 2, Hkv: 1, D: 8, qOffset: 0, keyStart: 6 },
  { label: 'cache keyStart beyond a whole block', Tq: 17, Tk: 20, H: 3, Hkv: 3, D: 16, qOffset: 3, keyStart: 13, capacity: 24 },
  { label: 'T150 three key tiles, sharp scores', Tq: 150, Tk: 150, H: 3, Hkv: 1, D: 64, qOffset: 0, span: 4 },
  { label: 'cache chunk Tq8 at 100 (one block, long keys)', Tq: 8, Tk: 108, H: 9, Hkv: 3, D: 64, qOffset: 100, kvStride: 3 * 64, capacity: 120 },
  // ~3e7 flop-equivalents: the backend splits it over 3 threads (> 4e6 per thread), cutting inside a kv head.
  { label: 'T181 GQA 6/2 D64 keyStart3 (split over the threads)', Tq: 181, Tk: 181, H: 6, Hkv: 2, D: 64, qOffset: 0, keyStart: 3 },
];

describe('wasm inference attention forward (blocked kernel)', () => {
  const backends = wasmBackendsForSuite();

  it('matches the f64 oracle at odd shapes; every thread split gives the same bits', () => {
    for (const [i, c] of CASES.entries()) {
      const x = cacheInputs(c, 100 + i);
      const want = attentionF64(x.q, x.k, x.v, c).out;
      let first: Float32Array | null = null;
      for (const [name, kern] of backends) {
        const out = forwardNoProbs(kern, c, x);
        assertClose(`${c.label} (${name})`, out, want, TOL_F64.attention);
        if (name.startsWith('relaxed')) {
          if (first === null) first = out;
          else assert.deepEqual(out, first, `${c.label}: ${name} differs from 1 thread`);
        }
      }
    }
  });

  it('a NaN key or value row reaches exactly the query rows that see it', () => {
    // Cache rows [0, 40) of which the call sees [keyStart = 4, Tk = 30); query rows are the last
    // 19 positions (qOffset 11), in blocks of 8 from row 0 (position 11).
    const c: Case = { label: 'nan', Tq: 19, Tk: 30, H: 6, Hkv: 2, D: 16, qOffset: 11, keyStart: 4, capacity: 40 };
    assertNanRowsContained(backends, c, [2, 14, 17, 25]);
  });

  it('a NaN query poisons only its own row and head', () => {
    const c: Case = { label: 'nan q', Tq: 12, Tk: 12, H: 4, Hkv: 2, D: 8, qOffset: 0 };
    const x = cacheInputs(c, 9);
    x.q[(5 * c.H + 2) * c.D + 3] = NaN;
    for (const [name, kern] of backends) {
      const out = forwardNoProbs(kern, c, x);
      for (let i = 0; i < c.Tq; i++) for (let h = 0; h < c.H; h++) for (let d = 0; d < c.D; d++) {
        assert.equal(Number.isNaN(out[(i * c.H + h) * c.D + d]), i === 5 && h === 2, `${name}: out[${i}, head ${h}, ${d}]`);
      }
    }
  });
});
