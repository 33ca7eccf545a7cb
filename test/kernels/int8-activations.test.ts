// The optional int8-activation path of matmulXWtQ4 (createKernels({ int8Activations: true })):
// the wasm kernel (assembly/gemm-i8.ts, relaxed and SIMD128 builds, 1 and 2 threads) against its
// reference twin (src/kernels/ref/matmul-int8.ts); the twin's error against the exact product
// under a named bound; every M (the GEMV of assembly/gemv-i8.ts serves M <= 8) and q/k/v-style
// groups; the cases that must stay exact (weights the path does not take, the option off);
// non-finite activations reaching the output.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createKernels } from '../../src/kernels/index.js';
import type { Kernels } from '../../src/kernels/kernels.js';
import { RefKernels } from '../../src/kernels/ref/index.js';
import { int8ActivationsApply, matmulXWtQ4Int8Ref, quantizeActivationsInt8Ref } from '../../src/kernels/ref/matmul-int8.js';
import type { Quant4Settings } from '../../src/quant/config.js';
import { quantizeTensor } from '../../src/quant/quantized-tensor.js';
import { absBound, assertTwin } from './int8-twin.js';
import { q4s, randUniform } from '../helpers/quant-settings.js';

/**
 * Twin vs the exact product on uniform random x and NF4 weights, per element, relative to
 * Σ_k |x_k·w_k|. Measured max 0.0039 (mean 0.0004) over these shapes: the 7-bit codebook
 * (±63 levels) dominates, the 8-bit activations add less (see matmul-int8.ts).
 */
const INT8_VS_EXACT_REL_BOUND = 0.01;

const rand = randUniform;

const s = q4s;

// [N, K, settings]: panel tails (N % 8), K of many blocks, small blocks (K chunks, packed rounds and
// thread splits: int8-gemm-shapes.test.ts).
const WEIGHTS: [number, number, Quant4Settings][] = [
  [37, 128, s('nf4', 64, true, 'blockwise')],
  [300, 576, s('nf4', 64, true, 'blockwise')],
  [24, 1536, s('nf4', 64, false, 'blockwise')],
  [19, 96, s('fp4', 32, true, 'blockwise')],
  [9, 100, s('nf4', 4, false, 'perChannel')],
];

describe('int8-activation reference twin', () => {
  test('quantizes activations per (row, block) with round-half-even and a zero block to zeros', () => {
    const x = Float32Array.from([1, -0.5, 0.25, 127 / 254, 0, 0, 0, 0]);
    const { qa, sa } = quantizeActivationsInt8Ref(x, 2, 4, 4);
    assert.deepEqual(Array.from(qa), [127, -64, 32, 64, 0, 0, 0, 0]); // -63.5 -> -64, 63.5 -> 64
    assert.deepEqual(Array.from(sa), [Math.fround(1 / 127), 0]);
  });

  test(`stays within ${INT8_VS_EXACT_REL_BOUND} of the exact product (relative to Σ|x·w|)`, () => {
    const ref = new RefKernels();
    let seed = 7;
    for (const [N, K, st] of WEIGHTS) {
      const w = quantizeTensor(rand(N * K, seed++), [N, K], st);
      const M = 16;
      const x = rand(M * K, seed++);
      const exact = new Float32Array(M * N);
      ref.matmulXWtQ4(exact, x, w, M, false);
      const got = new Float32Array(M * N);
      matmulXWtQ4Int8Ref(got, x, w, M, false);
      const bound = absBound(x, w, M);
      for (let i = 0; i < got.length; i++) {
        assert.ok(Math.abs(got[i] - exact[i]) <= INT8_VS_EXACT_REL_BOUND * bound[i], `${N}x${K} element ${i}: ${got[i]} vs exact ${exact[i]}`);
      }
    }
  });

  test('takes every M (decoding too) and only weights it can represent', () => {
    const w = quantizeTensor(rand(8 * 128, 1), [8, 128], s('nf4', 64, true, 'blockwise'));
    assert.equal(int8ActivationsApply(w, 9), true);
    assert.equal(int8ActivationsApply(w, 1), true);
    assert.equal(int8ActivationsApply(quantizeTensor(rand(8 * 100, 1), [8, 100], s('nf4', 64, true, 'blockwise')), 16), false); // K % block
    assert.equal(int8ActivationsApply(quantizeTensor(rand(8 * 128, 1), [8, 128], s('nf4', 64, false, 'blockwise', true)), 16), false); // zero points
  });
});

for (const variant of ['relaxed', 'simd'] as const) {
  for (const threads of [1, 2]) {
    describe(`wasm int8-activation matmulXWtQ4, ${variant} build, ${threads} thread(s)`, () => {
      let k: Kernels;
      let exactK: Kernels;
      before(async () => {
        k = await createKernels({ backend: 'wasm', threads, wasmVariant: variant, int8Activations: true });
        exactK = await createKernels({ backend: 'wasm', threads, wasmVariant: variant });
      });
      after(async () => {
        await k.dispose();
        await exactK.dispose();
      });

      test('equals the reference twin (overwrite and accumulate, row tails, panel tails, several K blocks)', () => {
        let seed = 100;
        for (const [N, K, st] of WEIGHTS) {
          const w = quantizeTensor(rand(N * K, seed++), [N, K], st);
          for (const M of [1, 2, 3, 8, 9, 13, 34]) { // GEMV (assembly/gemv-i8.ts) up to 2, GEMM above
            const x = rand(M * K, seed++);
            const bound = absBound(x, w, M);
            for (const accumulate of [false, true]) {
              const want = rand(M * N, seed);
              const got = k.allocF32(M * N);
              got.set(want);
              matmulXWtQ4Int8Ref(want, x, w, M, accumulate);
              k.matmulXWtQ4(got, x, w, M, accumulate);
              assertTwin(got, want, bound, `${N}x${K} M=${M} acc=${accumulate}`, accumulate ? 1e-6 : 0);
              k.free(got);
            }
          }
        }
      });

      test('q/k/v-style groups (matmulXWtQ4Many) equal one call per weight, GEMV and GEMM sizes', () => {
        let seed = 200;
        const K = 192;
        const group = [quantizeTensor(rand(40 * K, seed++), [40, K], s('nf4', 64, true, 'blockwise')),
          quantizeTensor(rand(13 * K, seed++), [13, K], s('nf4', 32, true, 'blockwise')),
          quantizeTensor(rand(24 * K, seed++), [24, K], s('fp4', 64, false, 'perChannel'))];
        // With a weight the int8 path does not take (zero points), the group splits into one call each.
        const mixed = [group[0], quantizeTensor(rand(16 * K, seed++), [16, K], s('nf4', 64, false, 'blockwise', true))];
        for (const M of [1, 2, 3, 12]) {
          const x = rand(M * K, seed++);
          for (const accumulate of [false, true]) {
            const start = group.map((w) => rand(M * w.rows, seed++));
            const got = start.map((y) => Float32Array.from(y));
            const want = start.map((y) => Float32Array.from(y));
            k.matmulXWtQ4Many(got, x, group, M, accumulate);
            group.forEach((w, i) => k.matmulXWtQ4(want[i], x, w, M, accumulate));
            got.forEach((y, i) => assert.deepEqual(y, want[i], `weight ${i} M=${M} acc=${accumulate}`));
            const gotMixed = mixed.map((w) => rand(M * w.rows, 7));
            const wantMixed = gotMixed.map((y) => Float32Array.from(y));
            k.matmulXWtQ4Many(gotMixed, x, mixed, M, accumulate);
            mixed.forEach((w, i) => k.matmulXWtQ4(wantMixed[i], x, w, M, accumulate));
            gotMixed.forEach((y, i) => assert.deepEqual(y, wantMixed[i], `mixed weight ${i} M=${M} acc=${accumulate}`));
          }
        }
      });

      test('weights the path does not take give the exact path bit for bit', () => {
        let seed = 300;
        const cases: [number, number, Quant4Settings, number][] = [
          [23, 100, s('nf4', 64, true, 'blockwise'), 1],
          [23, 100, s('nf4', 64, true, 'blockwise'), 20],
          [17, 128, s('nf4', 64, false, 'blockwise', true), 1],
          [17, 128, s('nf4', 64, false, 'blockwise', true), 20],
        ];
        for (const [N, K, st, M] of cases) {
          const w = quantizeTensor(rand(N * K, seed++), [N, K], st);
          const x = rand(M * K, seed++);
          const a = new Float32Array(M * N);
          const b = new Float32Array(M * N);
          k.matmulXWtQ4(a, x, w, M, false);
          exactK.matmulXWtQ4(b, x, w, M, false);
          assert.deepEqual(a, b, `${N}x${K} M=${M}`);
        }
      });

      // M = 1: the four-row GEMV; M = 4: the decoded-row GEMV; M = 12: the GEMM.
      for (const M of [12, 4, 1]) test(`a non-finite activation makes its output row non-finite (never a silent value), M=${M}`, () => {
        const N = 16, K = 128;
        const bad = Math.min(3, M - 1);
        const w = quantizeTensor(rand(N * K, 5), [N, K], s('nf4', 64, true, 'blockwise'));
        for (const value of [NaN, Infinity]) {
          const x = rand(M * K, 6);
          x[bad * K + 70] = value;
          const y = new Float32Array(M * N);
          k.matmulXWtQ4(y, x, w, M, false);
          for (let n = 0; n < N; n++) assert.ok(!Number.isFinite(y[bad * N + n]), `row ${bad} col ${n} with ${value}`);
          for (let i = 0; i < M * N; i++) if (Math.floor(i / N) !== bad) assert.ok(Number.isFinite(y[i]), `element ${i}`);
        }
      });

      for (const M of [12, 3, 1]) test(`a block of tiny activations (127 / absmax would overflow) quantizes to zeros, as the twin, M=${M}`, () => {
        const N = 16, K = 128;
        const w = quantizeTensor(rand(N * K, 5), [N, K], s('nf4', 64, true, 'blockwise'));
        const x = rand(M * K, 7);
        const tiny = Math.min(2, M - 1);
        for (let k = 0; k < 64; k++) x[tiny * K + k] = (k - 32) * 1e-38;
        const want = new Float32Array(M * N);
        matmulXWtQ4Int8Ref(want, x, w, M, false);
        const got = new Float32Array(M * N);
        k.matmulXWtQ4(got, x, w, M, false);
        for (let i = 0; i < got.length; i++) assert.ok(Number.isFinite(got[i]) && Math.abs(got[i] - want[i]) <= 1e-4, `element ${i}: ${got[i]} vs ${want[i]}`);
      });
    });
  }
}

test('the ref backend implements the option with the twin', async () => {
  const k = await createKernels({ backend: 'ref', int8Activations: true });
  const N = 16, K = 128, M = 12;
  const w = quantizeTensor(rand(N * K, 9), [N, K], s('nf4', 64, true, 'blockwise'));
  const x = rand(M * K, 10);
  const a = new Float32Array(M * N);
  const b = new Float32Array(M * N);
  k.matmulXWtQ4(a, x, w, M, false);
  matmulXWtQ4Int8Ref(b, x, w, M, false);
  assert.deepEqual(a, b);
});
