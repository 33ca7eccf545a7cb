// Shared by the tests of the two no-probabilities attention forwards (attention-infer.test.ts,
// attention-decode.test.ts): a case whose KV cache has NaN rows past Tk, its inputs, the forward
// run in the backend's memory, the backends, and the NaN-containment check both kernels must pass.
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { createKernels } from '../../src/kernels/index.js';
import type { Kernels } from '../../src/kernels/kernels.js';
import { Arena, randF32, rng, type AttnCase } from './spec-oracle.js';
import { dims, kvLen } from './spec-layers.js';

export interface CacheCase extends AttnCase {
  /** Rows allocated in the cache (>= Tk; rows past Tk are NaN and must not be read). */
  capacity?: number;
  /** Input range of q and k (wider: sharper softmax, larger score gaps); default 2. */
  span?: number;
}

export interface AttentionInputs {
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
}

/**
 * The wasm backends both suites run on (relaxed build at 1, 2 and 3 threads, SIMD128 at 1),
 * created before and disposed after the calling describe block.
 */
export function wasmBackendsForSuite(): [string, Kernels][] {
  const backends: [string, Kernels][] = [];
  before(async () => {
    for (const threads of [1, 2, 3]) backends.push([`relaxed ${threads}t`, await createKernels({ backend: 'wasm', threads })]);
    backends.push(['simd128 1t', await createKernels({ backend: 'wasm', threads: 1, wasmVariant: 'simd' })]);
  });
  after(async () => {
    for (const [, k] of backends) await k.dispose();
  });
  return backends;
}

/** q, k, v for a case; cache rows [Tk, capacity) are NaN. */
export function cacheInputs(c: CacheCase, seed: number): AttentionInputs {
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
export function forwardNoProbs(kern: Kernels, c: CacheCase, x: AttentionInputs): Float32Array {
  const a = new Arena(kern);
  const out = a.f32(new Float32Array(c.Tq * c.H * c.D).fill(7));
  kern.attentionForward(out, null, a.f32(x.q), a.f32(x.k), a.f32(x.v), dims(c));
  const result = out.slice();
  a.freeAll();
  return result;
}

/**
 * A NaN key row, or one NaN value column, in cache row `bad` of kv head 1, and NaN rows before
 * keyStart: exactly the outputs of kv head 1's query heads whose row sees `bad` are NaN (the whole
 * row for a key, column 5 for a value). c.Hkv >= 2.
 */
export function assertNanRowsContained(backends: readonly [string, Kernels][], c: CacheCase, bads: readonly number[]): void {
  const stride = c.kvStride ?? c.Hkv * c.D;
  const keyStart = c.keyStart ?? 0;
  const group = c.H / c.Hkv;
  for (const bad of bads) {
    for (const which of ['k', 'v'] as const) {
      const x = cacheInputs(c, 7);
      x.k.fill(NaN, 0, keyStart * stride);
      x.v.fill(NaN, 0, keyStart * stride);
      if (which === 'k') x.k.fill(NaN, bad * stride + c.D, bad * stride + 2 * c.D);
      else x.v[bad * stride + c.D + 5] = NaN;
      for (const [name, kern] of backends) {
        const out = forwardNoProbs(kern, c, x);
        for (let i = 0; i < c.Tq; i++) {
          for (let h = 0; h < c.H; h++) {
            const sees = h >= group && h < 2 * group && bad >= keyStart && bad <= i + c.qOffset;
            for (let d = 0; d < c.D; d++) {
              const nan = sees && (which === 'k' || d === 5);
              assert.equal(Number.isNaN(out[(i * c.H + h) * c.D + d]), nan, `${name} ${which} row ${bad}: out[${i}, head ${h}, ${d}]`);
            }
          }
        }
      }
    }
  }
}
