// The wasm backend's inference attention forward (probs = null, Tq >= 8: the blocked kernel of
// src/kernels/wasm/assembly/attention-infer.ts) against the f64 oracle at shapes that stress its
// blocking: Tq not a multiple of the 8-position block or of 4, a KV cache (qOffset > 0, a row
// stride wider than the heads, capacity beyond Tk), left padding (keyStart > 0, rows that see no
// key), GQA ratios 1/3/4, head sizes 32/33/64/80/128, several key tiles (online-softmax rescale),
// 1-3 threads (same bits for every split), both builds. And NaN containment: a NaN in a cache row
// a query row cannot see (beyond Tk, before keyStart, later in its own block) never reaches it.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Kernels } from '../../src/kernels/kernels.js';
import { createKernels } from '../../src/kernels/index.js';
import { Arena, assertClose, attentionF64, randF32, rng, type AttnCase } from './spec-oracle.js';
import { TOL_F64 } from './spec-context.js';
import { dims, kvLen } from './spec-layers.js';

interface Case extends AttnCase {
  label: string;
  /** Rows allocated in the cache (>= Tk; rows past Tk are NaN and must not be read). */
  capacity?: number;
  /** Input range of q and k (wider: sharper softmax, larger score gaps). */
  span?: number;
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

/** q, k, v for a case; cache rows [Tk, capacity) are NaN. */
function inputs(c: Case, seed: number): { q: Float32Array; k: Float32Array; v: Float32Array } {
  const r = rng(seed);
  const span = c.span ?? 2;
  const stride = c.kvStride ?? c.Hkv * c.D;
  const rows = c.capacity ?? c.Tk;
  const q = randF32(r, c.Tq * c.H * c.D, -span, span);
  const k = randF32(r, rows * stride, -span, span);
  const v = randF32(r, rows * stride);
  k.fill(NaN, kvLen(c));
  v.fill(NaN, kvLen(c));
  return { q, k, v };
}

/** out of a forward with probs = null; inputs in the backend's memory (so the NaN rows past Tk sit right after the rows the call may read). */
function forward(kern: Kernels, c: Case, x: { q: Float32Array; k: Float32Array; v: Float32Array }): Float32Array {
  const a = new Arena(kern);
  const out = a.f32(new Float32Array(c.Tq * c.H * c.D).fill(7));
  kern.attentionForward(out, null, a.f32(x.q), a.f32(x.k), a.f32(x.v), dims(c));
  const result = out.slice();
  a.freeAll();
  return result;
}

describe('wasm inference attention forward (blocked kernel)', () => {
  const backends: [string, Kernels][] = [];

  before(async () => {
    for (const threads of [1, 2, 3]) backends.push([`relaxed ${threads}t`, await createKernels({ backend: 'wasm', threads })]);
    backends.push(['simd128 1t', await createKernels({ backend: 'wasm', threads: 1, wasmVariant: 'simd' })]);
  });
  after(async () => {
    for (const [, k] of backends) await k.dispose();
  });

  it('matches the f64 oracle at odd shapes; every thread split gives the same bits', () => {
    for (const [i, c] of CASES.entries()) {
      const x = inputs(c, 100 + i);
      const want = attentionF64(x.q, x.k, x.v, c).out;
      let first: Float32Array | null = null;
      for (const [name, kern] of backends) {
        const out = forward(kern, c, x);
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
    const stride = c.Hkv * c.D;
    for (const bad of [2, 14, 17, 25]) {
      for (const which of ['k', 'v'] as const) {
        const x = inputs(c, 7);
        x.k.fill(NaN, 0, 4 * stride); // before keyStart
        x.v.fill(NaN, 0, 4 * stride);
        // Row `bad` of kv head 1 (query heads 3-5): the whole key row, or one value column.
        if (which === 'k') x.k.fill(NaN, bad * stride + c.D, bad * stride + 2 * c.D);
        else x.v[bad * stride + c.D + 5] = NaN;
        for (const [name, kern] of backends) {
          const out = forward(kern, c, x);
          for (let i = 0; i < c.Tq; i++) {
            for (let h = 0; h < c.H; h++) {
              const sees = h >= 3 && bad >= 4 && bad <= i + c.qOffset;
              for (let d = 0; d < c.D; d++) {
                const nan = sees && (which === 'k' || d === 5);
                assert.equal(Number.isNaN(out[(i * c.H + h) * c.D + d]), nan, `${name} ${which} row ${bad}: out[${i}, head ${h}, ${d}]`);
              }
            }
          }
        }
      }
    }
  });

  it('a NaN query poisons only its own row and head', () => {
    const c: Case = { label: 'nan q', Tq: 12, Tk: 12, H: 4, Hkv: 2, D: 8, qOffset: 0 };
    const x = inputs(c, 9);
    x.q[(5 * c.H + 2) * c.D + 3] = NaN;
    for (const [name, kern] of backends) {
      const out = forward(kern, c, x);
      for (let i = 0; i < c.Tq; i++) for (let h = 0; h < c.H; h++) for (let d = 0; d < c.D; d++) {
        assert.equal(Number.isNaN(out[(i * c.H + h) * c.D + d]), i === 5 && h === 2, `${name}: out[${i}, head ${h}, ${d}]`);
      }
    }
  });
});
