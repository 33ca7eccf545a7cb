// The int8-activation GEMM of the wasm backend (assembly/gemm-i8.ts: a prepare task that quantizes x
// and packs the weights' panels once, then the product split by panels or rows) on the shapes its
// tiling and splitting meet: M not a multiple of the 3-row tile, N not a multiple of the 8-column
// panel, K over several K chunks (K > 2048), a weight group larger than one packed round (4 MiB),
// shares by columns and by rows, 1, 2 and 3 threads; and matmulXWtQ4Many (q/k/v, gate/up: x
// quantized once) giving the same bits as one matmulXWtQ4 per weight.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createKernels } from '../../src/kernels/index.js';
import type { Kernels } from '../../src/kernels/kernels.js';
import { matmulXWtQ4Int8Ref } from '../../src/kernels/ref/matmul-int8.js';
import type { Quant4Settings } from '../../src/quant/config.js';
import { quantizeTensor, type QuantizedTensor } from '../../src/quant/quantized-tensor.js';
import { randomF32 } from '../helpers/random.js';
import { absBound, assertTwin } from './int8-twin.js';

const nf4 = (blockSize: number, doubleQuant = true): Quant4Settings => ({ quantType: 'nf4', blockSize, doubleQuant, strategy: 'blockwise', zeroPoint: false });
const fp4: Quant4Settings = { quantType: 'fp4', blockSize: 64, doubleQuant: true, strategy: 'blockwise', zeroPoint: false };

function weight(N: number, K: number, st: Quant4Settings, seed: number): QuantizedTensor {
  return quantizeTensor(randomF32(N * K, seed), [N, K], st);
}

// [label, N, K, M, settings]. 2 panels against 34 rows: split by rows; K = 3200 and 2112: two K
// chunks; 1900 x 2112: packed panels over 4 MiB, two rounds.
const SHAPES: [string, number, number, number, Quant4Settings][] = [
  ['panel tail, row tail', 37, 128, 10, nf4(64)],
  ['small blocks, M % 3 = 2', 19, 96, 11, nf4(32, false)],
  ['split by rows, two K chunks', 13, 3200, 100, nf4(64)],
  ['two K chunks, N % 8 = 5', 301, 2112, 14, nf4(64)],
  ['two packed rounds', 1900, 2112, 9, nf4(64)],
];

for (const threads of [1, 2, 3]) {
  describe(`wasm int8-activation GEMM, ${threads} thread(s)`, () => {
    let k: Kernels;
    before(async () => {
      k = await createKernels({ backend: 'wasm', threads, int8Activations: true });
    });
    after(async () => {
      await k.dispose();
    });

    test('equals the reference twin on tails, K chunks, packed rounds and row splits (overwrite and accumulate)', () => {
      let seed = 1000 + threads;
      for (const [label, N, K, M, st] of SHAPES) {
        // The largest shape once (1 thread): its rounds do not depend on the thread count.
        if (N * K > 1e6 && threads !== 1) continue;
        const w = weight(N, K, st, seed++);
        const x = randomF32(M * K, seed++);
        const bound = absBound(x, w, M);
        for (const accumulate of [false, true]) {
          const want = randomF32(M * N, seed);
          const got = k.allocF32(M * N);
          got.set(want);
          matmulXWtQ4Int8Ref(want, x, w, M, accumulate);
          k.matmulXWtQ4(got, x, w, M, accumulate);
          assertTwin(got, want, bound, `${label} (${N}x${K}, M=${M}, acc=${accumulate})`);
          k.free(got);
        }
      }
    });

    test('matmulXWtQ4Many gives the bits of one matmulXWtQ4 per weight (x quantized once)', () => {
      let seed = 2000 + threads;
      const groups: [string, [number, Quant4Settings][], number, number[]][] = [
        ['q/k/v', [[72, nf4(64)], [24, nf4(64)], [24, nf4(64)]], 192, [9, 20, 47]],
        ['tails and mixed codebooks', [[37, nf4(64)], [13, fp4], [8, nf4(64, false)]], 256, [10, 32]],
        ['gate/up', [[200, nf4(64)], [200, nf4(64)]], 128, [64]],
      ];
      for (const [label, specs, K, Ms] of groups) {
        const ws = specs.map(([N, st]) => weight(N, K, st, seed++));
        for (const M of Ms) {
          const x = randomF32(M * K, seed++);
          for (const accumulate of [false, true]) {
            const start = ws.map((w) => randomF32(M * w.rows, seed++));
            const many = start.map((s) => Float32Array.from(s));
            const one = start.map((s) => Float32Array.from(s));
            k.matmulXWtQ4Many(many, x, ws, M, accumulate);
            ws.forEach((w, i) => k.matmulXWtQ4(one[i], x, w, M, accumulate));
            ws.forEach((w, i) => assert.deepEqual(many[i], one[i], `${label} weight ${i} (${w.rows}x${K}), M=${M}, acc=${accumulate}`));
            // And the twin, so both paths are right and not merely equal.
            const want = Float32Array.from(start[0]);
            matmulXWtQ4Int8Ref(want, x, ws[0], M, accumulate);
            assertTwin(many[0], want, absBound(x, ws[0], M), `${label} weight 0 vs twin, M=${M}`);
          }
        }
      }
    });
  });
}

test('a group with different block sizes takes one int8 GEMM per weight (x quantized per block size)', async () => {
  const k = await createKernels({ backend: 'wasm', threads: 2, int8Activations: true });
  try {
    const K = 256, M = 12;
    const ws = [weight(16, K, nf4(64), 1), weight(24, K, nf4(128), 2)];
    const x = randomF32(M * K, 3);
    const many = ws.map((w) => new Float32Array(M * w.rows));
    k.matmulXWtQ4Many(many, x, ws, M, false);
    ws.forEach((w, i) => {
      const want = new Float32Array(M * w.rows);
      matmulXWtQ4Int8Ref(want, x, w, M, false);
      assertTwin(many[i], want, absBound(x, w, M), `block size ${w.blockSize}`);
    });
  } finally {
    await k.dispose();
  }
});
