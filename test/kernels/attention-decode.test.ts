// The wasm backend's decoding attention forward (probs = null, Tq < 8: the kernel of
// src/kernels/wasm/assembly/attention-decode.ts) against the reference backend (RefKernels, f64
// inside) at shapes that stress its structure: one to four query rows against a KV cache, key
// counts around its 64-key tiles (1, 2, 63, 64, 65, 300, 1000), GQA ratios 1/3/4 (query vectors in
// sets of three: full sets, short sets, single vectors), head sizes 32/64/80/128 and 36/33 (column
// and score tails), keyStart > 0 (rows that see no key), a row stride wider than the heads, 1-3
// threads (several key chunks merged by their log-sum-exp weights) and both builds. And NaN
// containment: a NaN in a cache row a query row cannot see never reaches it.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Kernels } from '../../src/kernels/kernels.js';
import { createKernels } from '../../src/kernels/index.js';
import { RefKernels } from '../../src/kernels/ref/index.js';
import { Arena, assertClose, randF32, rng, type AttnCase } from './spec-oracle.js';
import { TOL_F64 } from './spec-context.js';
import { dims, kvLen } from './spec-layers.js';

interface Case extends AttnCase {
  /** Rows allocated in the cache (>= Tk; rows past Tk are NaN and must not be read). */
  capacity?: number;
}

/** Decoding cases: the Tq query rows are the last positions of the cache (qOffset = Tk − Tq) unless stated. */
function decode(Tq: number, Tk: number, H: number, Hkv: number, D: number, extra: Partial<Case> = {}): Case {
  return { Tq, Tk, H, Hkv, D, qOffset: Tk - Tq, ...extra };
}

/** Cases long enough that 2 and 3 threads split the keys into chunks (checked below). */
const SPLIT_GQA3 = decode(4, 1000, 9, 3, 64);
const SPLIT_NAN = decode(3, 1000, 12, 2, 32, { keyStart: 4, capacity: 1030 });

const CASES: Case[] = [
  // SmolLM2-135M heads (9/3, D 64) around the key tiles; 1000 keys split over 2-3 threads.
  ...[1, 2, 63, 64, 65, 300, 1000].map((Tk) => decode(1, Tk, 9, 3, 64)),
  ...[2, 65, 300].map((Tk) => decode(Math.min(Tk, 3), Tk, 9, 3, 64, { capacity: Tk + 5 })),
  SPLIT_GQA3,
  // GQA 4 (sets of 2 + 2), MHA (single vectors), GQA 1 with 4 rows (sets 3 + 1).
  decode(1, 130, 8, 2, 128),
  decode(2, 65, 4, 1, 32),
  decode(1, 300, 4, 4, 80),
  decode(4, 63, 2, 2, 32),
  decode(3, 1000, 8, 2, 64),
  // Column tail (36 = 3 passes of 12 columns + none; 80 = 6 passes + 2 vectors), odd D (scalar paths).
  decode(2, 70, 6, 2, 36),
  decode(3, 40, 3, 1, 33),
  // A cache with a wider row stride, left padding, rows that see no key, a query chunk mid-cache.
  decode(1, 200, 9, 3, 64, { kvStride: 3 * 64 + 8, keyStart: 17, capacity: 210 }),
  decode(4, 20, 6, 2, 32, { qOffset: 0, keyStart: 2 }),
  decode(3, 50, 6, 3, 64, { qOffset: 10, keyStart: 12, kvStride: 3 * 64 + 4, capacity: 60 }),
  decode(2, 9, 4, 2, 64, { keyStart: 9 }),
  decode(1, 0, 3, 1, 64, { qOffset: 0 }),
];

/** q, k, v for a case; cache rows [Tk, capacity) are NaN. */
function inputs(c: Case, seed: number): { q: Float32Array; k: Float32Array; v: Float32Array } {
  const r = rng(seed);
  const stride = c.kvStride ?? c.Hkv * c.D;
  const rows = c.capacity ?? c.Tk;
  const q = randF32(r, c.Tq * c.H * c.D, -2, 2);
  const k = randF32(r, rows * stride, -2, 2);
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

function label(c: Case): string {
  return `Tq${c.Tq} Tk${c.Tk} H${c.H}/${c.Hkv} D${c.D} qOffset${c.qOffset} keyStart${c.keyStart ?? 0} stride${c.kvStride ?? c.Hkv * c.D}`;
}

describe('wasm decoding attention forward', () => {
  const ref = new RefKernels();
  const backends: [string, Kernels][] = [];

  before(async () => {
    for (const threads of [1, 2, 3]) backends.push([`relaxed ${threads}t`, await createKernels({ backend: 'wasm', threads })]);
    backends.push(['simd128 1t', await createKernels({ backend: 'wasm', threads: 1, wasmVariant: 'simd' })]);
  });
  after(async () => {
    for (const [, k] of backends) await k.dispose();
  });

  it('matches the reference backend at decoding shapes, for every thread count', () => {
    for (const [i, c] of CASES.entries()) {
      const x = inputs(c, 200 + i);
      const want = forward(ref, c, x);
      for (const [name, kern] of backends) assertClose(`${label(c)} (${name})`, forward(kern, c, x), want, TOL_F64.attention);
    }
  });

  it('a NaN key or value row reaches exactly the query rows that see it', () => {
    // Cache rows [0, 1030) of which the call sees [keyStart = 4, Tk = 1000): the 3 query rows are
    // positions 997..999, so key 998 is seen by rows 1 and 2 only, key 999 by row 2 only. With
    // 2-3 threads the keys go in several chunks (see the split check), the NaN in one of them.
    const c: Case = SPLIT_NAN;
    const stride = c.Hkv * c.D;
    for (const bad of [2, 500, 998, 999]) {
      for (const which of ['k', 'v'] as const) {
        const x = inputs(c, 7);
        x.k.fill(NaN, 0, 4 * stride); // before keyStart
        x.v.fill(NaN, 0, 4 * stride);
        // Row `bad` of kv head 1 (query heads 6-11): the whole key row, or one value column.
        if (which === 'k') x.k.fill(NaN, bad * stride + c.D, bad * stride + 2 * c.D);
        else x.v[bad * stride + c.D + 5] = NaN;
        for (const [name, kern] of backends) {
          const out = forward(kern, c, x);
          for (let i = 0; i < c.Tq; i++) {
            for (let h = 0; h < c.H; h++) {
              const sees = h >= 6 && bad >= 4 && bad <= i + c.qOffset;
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

  it('the long cases really split their keys over 2 and 3 threads (merged chunks round differently)', () => {
    for (const c of [SPLIT_GQA3, SPLIT_NAN]) {
      const x = inputs(c, 11);
      const one = forward(backends[0][1], c, x);
      for (const [name, kern] of backends.slice(1, 3)) {
        assert.notDeepEqual(forward(kern, c, x), one, `${label(c)}: ${name} gives the 1-thread bits; if the split threshold moved, lengthen this case`);
      }
    }
  });

  it('a NaN query poisons only its own row and head', () => {
    const c: Case = decode(2, 300, 9, 3, 64);
    const x = inputs(c, 9);
    x.q[(1 * c.H + 4) * c.D + 3] = NaN;
    for (const [name, kern] of backends) {
      const out = forward(kern, c, x);
      for (let i = 0; i < c.Tq; i++) for (let h = 0; h < c.H; h++) for (let d = 0; d < c.D; d++) {
        assert.equal(Number.isNaN(out[(i * c.H + h) * c.D + d]), i === 1 && h === 4, `${name}: out[${i}, head ${h}, ${d}]`);
      }
    }
  });
});
