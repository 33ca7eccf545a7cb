// The int16 path of the frozen 4-bit matmuls (createKernels({ int16Activations: true }), the
// training default): the wasm kernel (assembly/gemm-i16.ts; SIMD128 and relaxed builds, 1 and 2
// threads) equals its reference twin (src/kernels/ref/matmul-int16.ts) bit for bit, forward
// (matmulXWtQ4, matmulXWtQ4Many) and input gradient (matmulDyWQ4), overwrite and accumulate,
// row / column / block tails and zero-point weights; the twin stays within a named bound of the
// exact product; the arithmetic's own definition (rounding, zero and non-finite blocks); and the
// option's exclusivity with int8 activations.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ConfigError } from '../../src/errors.js';
import { createKernels } from '../../src/kernels/index.js';
import type { Kernels } from '../../src/kernels/kernels.js';
import { RefKernels } from '../../src/kernels/ref/index.js';
import { INT16_MAX_WEIGHT_ELEMENTS, INT16_MIN_ROWS, int16Apply, int16ProductRef, matmulDyWQ4Int16Ref, matmulXWtQ4Int16Ref } from '../../src/kernels/ref/matmul-int16.js';
import type { Quant4Settings } from '../../src/quant/config.js';
import { quantizeTensor } from '../../src/quant/quantized-tensor.js';
import type { Quant4Weight } from '../../src/quant/types.js';
import { q4s, randUniform } from '../helpers/quant-settings.js';

/**
 * Twin vs the exact product, per element, relative to Σ_t |a_t·b_t| (the size of the sum's
 * terms). Measured max ~1.3e-4 over these shapes (13-bit operands per 64-block: each product term
 * is off by at most ~2·2^-13 of its block's largest); bf16 operands would give up to ~2·2^-9 = 3.9e-3.
 */
const INT16_VS_EXACT_REL_BOUND = 5e-4;

const rand = randUniform;

const s = q4s;

// [N, K, settings]: panel tails (N % 8, K % 8 as dY·W's output), contraction tails (K, N % 64),
// the Llama shapes' blocks, zero points, per-channel.
const WEIGHTS: [number, number, Quant4Settings][] = [
  [37, 128, s('nf4', 64, true, 'blockwise')],
  [172, 64, s('nf4', 64, true, 'blockwise')],
  [64, 172, s('nf4', 64, true, 'blockwise')],
  [300, 576, s('nf4', 64, true, 'blockwise')],
  [24, 1536, s('nf4', 64, false, 'blockwise')],
  [19, 96, s('fp4', 32, true, 'blockwise', true)],
  [10, 100, s('nf4', 4, false, 'perChannel')],
];

function dequantized(w: Quant4Weight): Float32Array {
  const F = new Float32Array(w.rows * w.cols);
  new RefKernels().dequantizeQ4Rows(F, w, 0, w.rows);
  return F;
}

/** Σ_t |a[i, t]·B(j, t)| per output. */
function termBound(a: Float32Array, M: number, Kc: number, F: Float32Array, sj: number, st: number, Nout: number): Float64Array {
  const out = new Float64Array(M * Nout);
  for (let i = 0; i < M; i++) for (let j = 0; j < Nout; j++) {
    let sum = 0;
    for (let t = 0; t < Kc; t++) sum += Math.abs(a[i * Kc + t] * F[j * sj + t * st]);
    out[i * Nout + j] = sum;
  }
  return out;
}

describe('int16 reference twin', () => {
  test('quantizes per block with round-half-even, a zero block to zeros, and sums exactly', () => {
    // One row, one column, Kc = 4. a's absmax 4095 makes its scale 1 and its codes a rounded:
    // 2.5 -> 2, 3.5 -> 4, -0.5 -> 0 (half to even); B = 1s: scale 1/4095, codes 4095.
    const c = new Float32Array(1);
    int16ProductRef(c, Float32Array.from([4095, 2.5, 3.5, -0.5]), 1, 4, Float32Array.from([1, 1, 1, 1]), 4, 1, 1, false);
    assert.equal(c[0], Math.fround(Math.fround((4095 + 2 + 4) * 4095) * Math.fround(1 / 4095)));
    const zero = new Float32Array(2);
    int16ProductRef(zero, new Float32Array(8), 2, 4, rand(8, 1), 4, 1, 2, false);
    assert.deepEqual(Array.from(zero), [0, 0]);
  });

  test(`stays within ${INT16_VS_EXACT_REL_BOUND} of the exact product (relative to Σ|a·b|), forward and input gradient`, () => {
    const ref = new RefKernels();
    let seed = 7;
    let worst = 0;
    for (const [N, K, st] of WEIGHTS) {
      const w = quantizeTensor(rand(N * K, seed++), [N, K], st);
      const F = dequantized(w);
      const M = 5;
      const x = rand(M * K, seed++);
      const dy = rand(M * N, seed++);
      const cases: [string, Float32Array, Float32Array, Float64Array][] = [];
      const y = new Float32Array(M * N);
      const yExact = new Float32Array(M * N);
      matmulXWtQ4Int16Ref(y, x, w, M, false);
      ref.matmulXWtQ4(yExact, x, w, M, false);
      cases.push(['forward', y, yExact, termBound(x, M, K, F, K, 1, N)]);
      const dx = new Float32Array(M * K);
      const dxExact = new Float32Array(M * K);
      matmulDyWQ4Int16Ref(dx, dy, w, M, false);
      ref.matmulDyWQ4(dxExact, dy, w, M, false);
      cases.push(['input gradient', dx, dxExact, termBound(dy, M, N, F, 1, K, K)]);
      for (const [what, got, exact, bound] of cases) {
        for (let i = 0; i < got.length; i++) {
          const rel = Math.abs(got[i] - exact[i]) / bound[i];
          worst = Math.max(worst, rel);
          assert.ok(rel <= INT16_VS_EXACT_REL_BOUND, `${N}x${K} ${what} element ${i}: ${got[i]} vs exact ${exact[i]}`);
        }
      }
    }
    assert.ok(worst > 0, 'the int16 path is not the exact one');
  });

  test('non-finite inputs reach the output', () => {
    const w = quantizeTensor(rand(16 * 64, 3), [16, 64], s('nf4', 64, true, 'blockwise'));
    const x = rand(2 * 64, 4);
    x[5] = Number.NaN;
    x[64 + 7] = Number.POSITIVE_INFINITY;
    const y = new Float32Array(2 * 16);
    matmulXWtQ4Int16Ref(y, x, w, 2, false);
    assert.ok(y.every((v) => !Number.isFinite(v)));
  });

  test('applies to even contractions, weights up to the size limit and M from INT16_MIN_ROWS', () => {
    const w = quantizeTensor(rand(9 * 64, 5), [9, 64], s('nf4', 64, true, 'blockwise'));
    assert.equal(int16Apply(w, 'forward', INT16_MIN_ROWS), true);
    assert.equal(int16Apply(w, 'forward', INT16_MIN_ROWS - 1), false);
    assert.equal(int16Apply(w, 'input-grad', 64), false); // 9 rows: odd contraction of dY·W
    assert.equal(int16Apply({ rows: 2 ** 13, cols: 2 ** 13 }, 'forward', 64), 2 ** 26 <= INT16_MAX_WEIGHT_ELEMENTS);
  });

  test('int8 and int16 activations exclude each other', async () => {
    await assert.rejects(createKernels({ backend: 'ref', int8Activations: true, int16Activations: true }), ConfigError);
  });
});

for (const variant of ['relaxed', 'simd'] as const) {
  for (const threads of [1, 2]) {
    describe(`wasm int16 matmuls, ${variant} build, ${threads} thread(s)`, () => {
      let k: Kernels;
      let exactK: Kernels;
      before(async () => {
        k = await createKernels({ backend: 'wasm', threads, wasmVariant: variant, int16Activations: true });
        exactK = await createKernels({ backend: 'wasm', threads, wasmVariant: variant });
      });
      after(async () => {
        await k.dispose();
        await exactK.dispose();
      });

      test('equal the reference twin bit for bit (forward and input gradient, overwrite and accumulate, tails)', () => {
        let seed = 100;
        for (const [N, K, st] of WEIGHTS) {
          const w = quantizeTensor(rand(N * K, seed++), [N, K], st);
          for (const M of [16, 17, 18, 19, 34]) { // row tails of the 4-row tiles
            const x = rand(M * K, seed++);
            const dy = rand(M * N, seed++);
            for (const accumulate of [false, true]) {
              const want = rand(M * N, seed);
              const got = k.allocF32(M * N);
              got.set(want);
              matmulXWtQ4Int16Ref(want, x, w, M, accumulate);
              k.matmulXWtQ4(got, x, w, M, accumulate);
              assert.deepEqual(got, want, `forward ${N}x${K} M=${M} acc=${accumulate}`);
              k.free(got);
              if (!int16Apply(w, 'input-grad', M)) continue;
              const wantDx = rand(M * K, seed + 1);
              const gotDx = k.allocF32(M * K);
              gotDx.set(wantDx);
              matmulDyWQ4Int16Ref(wantDx, dy, w, M, accumulate);
              k.matmulDyWQ4(gotDx, dy, w, M, accumulate);
              assert.deepEqual(gotDx, wantDx, `input gradient ${N}x${K} M=${M} acc=${accumulate}`);
              k.free(gotDx);
            }
          }
        }
      });

      test('below INT16_MIN_ROWS rows the exact path runs, bit for bit', () => {
        const w = quantizeTensor(rand(40 * 192, 9), [40, 192], s('nf4', 64, true, 'blockwise'));
        for (const M of [1, 2, INT16_MIN_ROWS - 1]) {
          const x = rand(M * 192, M);
          const dy = rand(M * 40, M + 1);
          const [got, want] = [new Float32Array(M * 40), new Float32Array(M * 40)];
          k.matmulXWtQ4(got, x, w, M, false);
          exactK.matmulXWtQ4(want, x, w, M, false);
          assert.deepEqual(got, want, `forward M=${M}`);
          const [gotDx, wantDx] = [new Float32Array(M * 192), new Float32Array(M * 192)];
          k.matmulDyWQ4(gotDx, dy, w, M, false);
          exactK.matmulDyWQ4(wantDx, dy, w, M, false);
          assert.deepEqual(gotDx, wantDx, `input gradient M=${M}`);
          const ys = [new Float32Array(M * 40), new Float32Array(M * 40)];
          k.matmulXWtQ4Many(ys, x, [w, w], M, false);
          ys.forEach((y) => assert.deepEqual(y, want, `group M=${M}`));
        }
      });

      test('a packed frozen f32 weight (packInt16) equals the reference twin, both directions, until released', () => {
        const ref = new RefKernels({ int16Activations: true });
        for (const [N, K] of [[64, 172], [37 * 2, 96], [1000, 64]] as const) {
          const w = rand(N * K, N + K);
          const pw = k.packInt16(w, N, K);
          const pr = ref.packInt16(w, N, K);
          for (const M of [1, 5, 33]) {
            for (const accumulate of [false, true]) {
              const x = rand(M * K, M);
              const want = rand(M * N, M + 1);
              const got = Float32Array.from(want);
              ref.matmulXWtInt16(want, x, pr, M, accumulate);
              k.matmulXWtInt16(got, x, pw, M, accumulate);
              assert.deepEqual(got, want, `forward ${N}x${K} M=${M} acc=${accumulate}`);
              const dy = rand(M * N, M + 2);
              const wantDx = rand(M * K, M + 3);
              const gotDx = Float32Array.from(wantDx);
              ref.matmulDyWInt16(wantDx, dy, pr, M, accumulate);
              k.matmulDyWInt16(gotDx, dy, pw, M, accumulate);
              assert.deepEqual(gotDx, wantDx, `input gradient ${N}x${K} M=${M} acc=${accumulate}`);
            }
          }
          // The twin is the int16 product of the weight itself.
          const x = rand(3 * K, 1);
          const y = new Float32Array(3 * N);
          const direct = new Float32Array(3 * N);
          ref.matmulXWtInt16(y, x, pr, 3, false);
          int16ProductRef(direct, x, 3, K, w, K, 1, N, false);
          assert.deepEqual(y, direct);
          k.releaseInt16(pw);
          ref.releaseInt16(pr);
          assert.throws(() => k.matmulXWtInt16(new Float32Array(N), new Float32Array(K), pw, 1, false), /not a live packInt16 weight/);
          assert.throws(() => k.releaseInt16(pw), /not a live packInt16 weight/);
          assert.throws(() => ref.matmulDyWInt16(new Float32Array(K), new Float32Array(N), pr, 1, false), /not a live packInt16 weight/);
        }
        assert.throws(() => k.packInt16(new Float32Array(3 * 4), 3, 4), /even/);
      });

      test('q/k/v-style groups (matmulXWtQ4Many) equal one call per weight', () => {
        const K = 192;
        const group = [quantizeTensor(rand(40 * K, 1), [40, K], s('nf4', 64, true, 'blockwise')),
          quantizeTensor(rand(13 * K, 2), [13, K], s('nf4', 32, true, 'blockwise'))];
        const M = 20;
        const x = rand(M * K, 3);
        const got = group.map((w) => new Float32Array(M * w.rows));
        const want = group.map((w) => new Float32Array(M * w.rows));
        k.matmulXWtQ4Many(got, x, group, M, false);
        group.forEach((w, i) => matmulXWtQ4Int16Ref(want[i], x, w, M, false));
        got.forEach((y, i) => assert.deepEqual(y, want[i], `weight ${i}`));
      });
    });
  }
}
