// The wasm backend's decoding attention forward (probs = null, Tq < 8: the kernel of
// src/kernels/wasm/assembly/attention-decode.ts) against the reference backend (RefKernels, f64
// inside) at shapes that stress its structure: one to four query rows against a KV cache, key
// counts around its 64-key tiles (1, 2, 63, 64, 65, 300, 1000), GQA ratios 1/3/4 (query vectors in
// sets of three: full sets, short sets, single vectors), head sizes 32/64/80/128 and 36/33 (column
// and score tails), keyStart > 0 (rows that see no key), a row stride wider than the heads, 1-3
// threads (several key chunks merged by their log-sum-exp weights) and both builds. And NaN
// containment: a NaN in a cache row a query row cannot see never reaches it.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RefKernels } from '../../src/kernels/ref/index.js';
import { assertClose } from './spec-oracle.js';
import { TOL_F64 } from './spec-context.js';
import { assertNanRowsContained, cacheInputs, forwardNoProbs, wasmBackendsForSuite, type CacheCase } from './attention-cache-cases.js';

type Case = CacheCase;

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

function label(c: Case): string {
  return `Tq${c.Tq} Tk${c.Tk} H${c.H}/${c.Hkv} D${c.D} qOffset${c.qOffset} keyStart${c.keyStart ?? 0} stride${c.kvStride ?? c.Hkv * c.D}`;
}

describe('wasm decoding attention forward', () => {
  const ref = new RefKernels();
  const backends = wasmBackendsForSuite();

  it('matches the reference backend at decoding shapes, for every thread count', () => {
    for (const [i, c] of CASES.entries()) {
      const x = cacheInputs(c, 200 + i);
      const want = forwardNoProbs(ref, c, x);
      for (const [name, kern] of backends) assertClose(`${label(c)} (${name})`, forwardNoProbs(kern, c, x), want, TOL_F64.attention);
    }
  });

  it('a NaN key or value row reaches exactly the query rows that see it', () => {
    // Cache rows [0, 1030) of which the call sees [keyStart = 4, Tk = 1000): the 3 query rows are
    // positions 997..999, so key 998 is seen by rows 1 and 2 only, key 999 by row 2 only. With
    // 2-3 threads the keys go in several chunks (see the split check), the NaN in one of them.
    const c: Case = SPLIT_NAN;
    assertNanRowsContained(backends, c, [2, 500, 998, 999]);
  });

  it('the long cases really split their keys over 2 and 3 threads (merged chunks round differently)', () => {
    for (const c of [SPLIT_GQA3, SPLIT_NAN]) {
      const x = cacheInputs(c, 11);
      const one = forwardNoProbs(backends[0][1], c, x);
      for (const [name, kern] of backends.slice(1, 3)) {
        assert.notDeepEqual(forwardNoProbs(kern, c, x), one, `${label(c)}: ${name} gives the 1-thread bits; if the split threshold moved, lengthen this case`);
      }
    }
  });

  it('a NaN query poisons only its own row and head', () => {
    const c: Case = decode(2, 300, 9, 3, 64);
    const x = cacheInputs(c, 9);
    x.q[(1 * c.H + 4) * c.D + 3] = NaN;
    for (const [name, kern] of backends) {
      const out = forwardNoProbs(kern, c, x);
      for (let i = 0; i < c.Tq; i++) for (let h = 0; h < c.H; h++) for (let d = 0; d < c.D; d++) {
        assert.equal(Number.isNaN(out[(i * c.H + h) * c.D + d]), i === 1 && h === 4, `${name}: out[${i}, head ${h}, ${d}]`);
      }
    }
  });
});
