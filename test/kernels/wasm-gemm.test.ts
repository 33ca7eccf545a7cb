// The wasm backend's f32 matmuls (GEMM with packed panels, and the GEMV path for M <= 4) against
// the reference backend: random shapes that are not multiples of the 4x8 tile, the K block (256)
// or the N block (512), zero sizes, single rows, shapes big enough to be split across threads by
// columns and by rows, accumulate vs overwrite, arrays inside and outside wasm memory, NaN.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { randomF32 } from '../helpers/random.js';
import { createKernels } from '../../src/kernels/index.js';
import type { Kernels } from '../../src/kernels/kernels.js';
import { RefKernels } from '../../src/kernels/ref/index.js';

/**
 * |fast - ref| <= GEMM_REL_TOL · Σ_k |a_k·b_k| + GEMM_ABS_TOL per element: f32 accumulation in a
 * different order (SIMD lanes, K blocks, FMA) against the reference's f64 accumulation.
 */
const GEMM_REL_TOL = 2e-6;
const GEMM_ABS_TOL = 1e-30;

type Layout = 'XWt' | 'DyW' | 'DytX';

const rand = randomF32;

/** Inputs and the |.|-weighted magnitude bound of each output element, per layout. */
function problem(layout: Layout, M: number, K: number, N: number, seed: number) {
  const x = rand(M * K, seed), w = rand(N * K, seed + 1), dy = rand(M * N, seed + 2);
  const absMatmul = (k: RefKernels) => {
    const ab = (a: Float32Array) => a.map(Math.abs);
    if (layout === 'XWt') { const o = new Float32Array(M * N); k.matmulXWt(o, ab(x), ab(w), M, K, N, false); return o; }
    if (layout === 'DyW') { const o = new Float32Array(M * K); k.matmulDyW(o, ab(dy), ab(w), M, N, K, false); return o; }
    const o = new Float32Array(N * K); k.matmulDytX(o, ab(dy), ab(x), M, N, K, false); return o;
  };
  const outLen = layout === 'XWt' ? M * N : layout === 'DyW' ? M * K : N * K;
  return { x, w, dy, outLen, absMatmul };
}

function run(k: Kernels, layout: Layout, out: Float32Array, p: ReturnType<typeof problem>, M: number, K: number, N: number, acc: boolean): void {
  if (layout === 'XWt') k.matmulXWt(out, p.x, p.w, M, K, N, acc);
  else if (layout === 'DyW') k.matmulDyW(out, p.dy, p.w, M, N, K, acc);
  else k.matmulDytX(out, p.dy, p.x, M, N, K, acc);
}

function assertClose(got: Float32Array, want: Float32Array, bound: Float32Array, what: string): void {
  assert.equal(got.length, want.length);
  for (let i = 0; i < got.length; i++) {
    const err = Math.abs(got[i] - want[i]);
    const tol = GEMM_REL_TOL * (bound[i] + 1) + GEMM_ABS_TOL;
    if (!(err <= tol)) assert.fail(`${what}: element ${i}: got ${got[i]}, want ${want[i]} (tol ${tol})`);
  }
}

/** Copies a foreign array into the backend's memory (so both argument paths are exercised). */
function resident(k: Kernels, a: Float32Array): Float32Array {
  const b = k.allocF32(a.length);
  b.set(a);
  return b;
}

const SHAPES: [number, number, number][] = [
  [1, 1, 1], [1, 5, 3], [2, 7, 9], [3, 33, 17], [5, 64, 8], [4, 1, 8], [7, 257, 13], [13, 300, 31],
  [6, 40, 20], [10, 9, 30], [33, 65, 100], [64, 70, 513], [0, 5, 7], [5, 0, 7], [5, 7, 0], [0, 0, 0],
];
// Big enough (>= 2 · 4e6 flops) for the pool to split: by columns, and (N narrow) by rows.
const SPLIT_SHAPES: [number, number, number][] = [[70, 300, 257], [3001, 170, 9], [2, 1500, 3000]];

for (const threads of [1, 2]) {
  describe(`wasm matmuls, ${threads} thread(s)`, () => {
    let k: Kernels;
    const ref = new RefKernels();
    before(async () => {
      k = await createKernels({ backend: 'wasm', threads });
      assert.equal(k.name, 'wasm');
      assert.equal(k.threads, threads);
    });
    after(async () => {
      await k.dispose();
    });

    for (const layout of ['XWt', 'DyW', 'DytX'] as Layout[]) {
      test(`${layout} matches the reference on odd, zero and split shapes`, () => {
        let seed = 11;
        for (const [M, K, N] of [...SHAPES, ...SPLIT_SHAPES]) {
          const p = problem(layout, M, K, N, seed++);
          const bound = p.absMatmul(ref);
          const want = new Float32Array(p.outLen);
          run(ref, layout, want, p, M, K, N, false);
          // Overwrite: a NaN-filled output must not leak through.
          const got = new Float32Array(p.outLen).fill(NaN);
          run(k, layout, got, p, M, K, N, false);
          assertClose(got, want, bound, `${layout} M=${M} K=${K} N=${N} overwrite`);
          // Accumulate into a resident output with resident inputs.
          const base = rand(p.outLen, seed++);
          const gotAcc = resident(k, base);
          const pr = { ...p, x: resident(k, p.x), w: resident(k, p.w), dy: resident(k, p.dy) };
          run(k, layout, gotAcc, pr, M, K, N, true);
          const wantAcc = Float32Array.from(base);
          run(ref, layout, wantAcc, p, M, K, N, true);
          assertClose(gotAcc, wantAcc, bound, `${layout} M=${M} K=${K} N=${N} accumulate`);
          for (const b of [gotAcc, pr.x, pr.w, pr.dy]) k.free(b);
        }
      });
    }

    test('K = 0 overwrites with zeros and leaves an accumulated output unchanged', () => {
      const y = new Float32Array(12).fill(NaN);
      k.matmulXWt(y, new Float32Array(0), new Float32Array(0), 3, 0, 4, false);
      assert.deepEqual([...y], new Array(12).fill(0));
      const z = new Float32Array(12).fill(2.5);
      k.matmulXWt(z, new Float32Array(0), new Float32Array(0), 3, 0, 4, true);
      assert.deepEqual([...z], new Array(12).fill(2.5));
    });

    test('NaN propagates to exactly the outputs it feeds (GEMM and GEMV paths)', () => {
      for (const M of [1, 3, 9]) {
        const K = 37, N = 21;
        const x = rand(M * K, 5), w = rand(N * K, 6);
        x[(M - 1) * K + 3] = NaN; // last row of x
        w[4 * K + 10] = NaN; // row 4 of w = output column 4
        const y = new Float32Array(M * N);
        k.matmulXWt(y, x, w, M, K, N, false);
        for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) {
          assert.equal(Number.isNaN(y[m * N + n]), m === M - 1 || n === 4, `M=${M} y[${m},${n}] = ${y[m * N + n]}`);
        }
      }
    });

    test('short buffers are a ShapeError, not a read past the end', () => {
      assert.throws(() => k.matmulXWt(new Float32Array(6), new Float32Array(5), new Float32Array(6), 2, 3, 3, false), /too short/);
      assert.throws(() => k.matmulDytX(new Float32Array(5), new Float32Array(6), new Float32Array(6), 2, 3, 3, false), /too short/);
    });
  });
}

describe('wasm matmuls: thread count does not change results', () => {
  test('1 and 2 threads give bit-identical outputs (shares start on tile boundaries)', async () => {
    const k1 = await createKernels({ backend: 'wasm', threads: 1 });
    const k2 = await createKernels({ backend: 'wasm', threads: 2 });
    try {
      let seed = 900;
      for (const layout of ['XWt', 'DyW', 'DytX'] as Layout[]) {
        for (const [M, K, N] of [...SPLIT_SHAPES, [3, 3000, 3001]] as [number, number, number][]) {
          const p = problem(layout, M, K, N, seed++);
          const a = new Float32Array(p.outLen), b = new Float32Array(p.outLen);
          run(k1, layout, a, p, M, K, N, false);
          run(k2, layout, b, p, M, K, N, false);
          assert.deepEqual(new Uint32Array(b.buffer), new Uint32Array(a.buffer), `${layout} M=${M} K=${K} N=${N}`);
        }
      }
    } finally {
      await k1.dispose();
      await k2.dispose();
    }
  });
});
