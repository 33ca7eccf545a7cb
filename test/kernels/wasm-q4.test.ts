// The wasm backend's 4-bit kernels against the references: in-panel dequantization GEMMs
// (X·dequant(W)ᵀ for M > 8, dY·dequant(W)) and the GEMV path (M <= 8) on NF4 and FP4 weights
// with plain and double-quantized scales, blockwise and per-channel blocks, zero points, odd
// shapes; dequantizeQ4Rows bit-exact; quantizeBlockwise4 byte-exact with the quant layer's
// reference (src/quant/blockwise.ts); the resident weight cache under a tiny budget (streaming).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ShapeError } from '../../src/errors.js';
import { randomF32 } from '../helpers/random.js';
import { createKernels } from '../../src/kernels/index.js';
import type { Kernels } from '../../src/kernels/kernels.js';
import { RefKernels } from '../../src/kernels/ref/index.js';
import { quantizeBlockwise4Ref } from '../../src/quant/blockwise.js';
import type { Quant4Settings } from '../../src/quant/config.js';
import { quantizeTensor } from '../../src/quant/quantized-tensor.js';
import type { Quant4Weight } from '../../src/quant/types.js';
import { q4s } from '../helpers/quant-settings.js';

/** Same budget as the f32 GEMM test: per element, relative to Σ_k |x_k·w_k| (+1). */
const Q4_MATMUL_REL_TOL = 2e-6;

const rand = randomF32;

function assertClose(got: Float32Array, want: Float32Array, bound: Float32Array, what: string): void {
  for (let i = 0; i < got.length; i++) {
    const tol = Q4_MATMUL_REL_TOL * (bound[i] + 1);
    if (!(Math.abs(got[i] - want[i]) <= tol)) assert.fail(`${what}: element ${i}: got ${got[i]}, want ${want[i]}`);
  }
}

const s = q4s;

// [rows (N), cols (K), settings]: odd cols put rows at odd nibbles; cols not a multiple of the block
// make blockwise blocks cross rows.
const WEIGHTS: [number, number, Quant4Settings][] = [
  [40, 96, s('nf4', 64, true, 'blockwise')],
  [37, 53, s('nf4', 64, false, 'blockwise')],
  [19, 130, s('fp4', 32, true, 'blockwise')],
  [23, 100, s('nf4', 32, false, 'perChannel')],
  [17, 77, s('fp4', 64, true, 'perChannel', true)],
  [9, 300, s('nf4', 128, false, 'blockwise', true)],
  [300, 600, s('nf4', 64, true, 'blockwise')],
];

function absWeight(ref: RefKernels, w: Quant4Weight): Float32Array {
  const d = new Float32Array(w.rows * w.cols);
  ref.dequantizeQ4Rows(d, w, 0, w.rows);
  return d.map(Math.abs);
}

for (const threads of [1, 2]) {
  describe(`wasm 4-bit kernels, ${threads} thread(s)`, () => {
    let k: Kernels;
    const ref = new RefKernels();
    before(async () => {
      k = await createKernels({ backend: 'wasm', threads });
    });
    after(async () => {
      await k.dispose();
    });

    test('dequantizeQ4Rows is bit-exact with the reference (full range and sub-ranges)', () => {
      let seed = 1;
      for (const [N, K, st] of WEIGHTS) {
        const w = quantizeTensor(rand(N * K, seed++), [N, K], st);
        for (const [r0, r1] of [[0, N], [1, Math.min(N, 4)], [N - 1, N], [2, 2]]) {
          const want = new Float32Array((r1 - r0) * K);
          ref.dequantizeQ4Rows(want, w, r0, r1);
          const got = new Float32Array((r1 - r0) * K).fill(NaN);
          k.dequantizeQ4Rows(got, w, r0, r1);
          assert.deepEqual(new Uint32Array(got.buffer), new Uint32Array(want.buffer), `${N}x${K} ${JSON.stringify(st)} rows ${r0}..${r1}`);
        }
      }
    });

    test('matmulXWtQ4 (GEMV for M <= 8, GEMM above) and matmulDyWQ4 match the reference', () => {
      let seed = 100;
      for (const [N, K, st] of WEIGHTS) {
        const w = quantizeTensor(rand(N * K, seed++), [N, K], st);
        const absW = absWeight(ref, w);
        for (const M of [0, 1, 2, 3, 5, 9, 10, 11, 17]) {
          const x = rand(M * K, seed++);
          const bound = new Float32Array(M * N);
          ref.matmulXWt(bound, x.map(Math.abs), absW, M, K, N, false);
          const want = rand(M * N, seed);
          const got = Float32Array.from(want);
          ref.matmulXWtQ4(want, x, w, M, true);
          k.matmulXWtQ4(got, x, w, M, true);
          assertClose(got, want, bound, `XWtQ4 ${N}x${K} M=${M} ${JSON.stringify(st)}`);
          const over = new Float32Array(M * N).fill(NaN);
          k.matmulXWtQ4(over, x, w, M, false);
          ref.matmulXWtQ4(want, x, w, M, false);
          assertClose(over, want, bound, `XWtQ4 overwrite ${N}x${K} M=${M}`);

          const dy = rand(M * N, seed++);
          const bound2 = new Float32Array(M * K);
          ref.matmulDyW(bound2, dy.map(Math.abs), absW, M, N, K, false);
          const want2 = new Float32Array(M * K);
          const got2 = new Float32Array(M * K).fill(NaN);
          ref.matmulDyWQ4(want2, dy, w, M, false);
          k.matmulDyWQ4(got2, dy, w, M, false);
          assertClose(got2, want2, bound2, `DyWQ4 ${N}x${K} M=${M} ${JSON.stringify(st)}`);
        }
      }
    });

    test('quantizeBlockwise4 is byte-exact with the quant layer reference', () => {
      let seed = 7;
      for (const type of ['nf4', 'fp4'] as const) {
        for (const [n, bs] of [[1, 64], [63, 64], [64, 64], [1000, 64], [4097, 64], [777, 32], [5000, 256], [333, 4096], [10, 3]]) {
          const x = rand(n, seed++);
          for (let i = 0; i < n; i++) x[i] *= 2 ** ((i % 17) - 8); // mixed magnitudes, tiny values
          if (n > 200) {
            x.fill(0, 64, 128); // an all-zero full block
            x[150] = NaN;
            x[151] = Infinity;
            x[152] = -0;
          }
          if (n % bs !== 0 && n > bs) x.fill(0, n - (n % bs)); // an all-zero partial last block
          const nb = Math.ceil(n / bs);
          const wantP = new Uint8Array(Math.ceil(n / 2)), wantA = new Float32Array(nb);
          quantizeBlockwise4Ref(wantP, wantA, x, n, bs, type);
          const gotP = new Uint8Array(Math.ceil(n / 2)).fill(0xaa), gotA = new Float32Array(nb).fill(NaN);
          k.quantizeBlockwise4(gotP, gotA, x, n, bs, type);
          assert.deepEqual(gotP, wantP, `${type} n=${n} bs=${bs} codes`);
          assert.deepEqual(new Uint32Array(gotA.buffer), new Uint32Array(wantA.buffer), `${type} n=${n} bs=${bs} absmax`);
        }
      }
    });
  });
}

describe('resident 4-bit weight cache', () => {
  test('a budget smaller than one weight streams weights and stays correct, with flat memory', async () => {
    const k = await createKernels({ backend: 'wasm', threads: 1, residentWeightBytes: 1 });
    const ref = new RefKernels();
    try {
      const ws = [0, 1, 2].map((i) => quantizeTensor(rand(64 * 96, 50 + i), [64, 96], s('nf4', 64, i === 1, 'blockwise')));
      const x = rand(3 * 96, 9);
      const used: number[] = [];
      for (let it = 0; it < 6; it++) {
        for (const w of ws) {
          const got = new Float32Array(3 * 64), want = new Float32Array(3 * 64);
          k.matmulXWtQ4(got, x, w, 3, false);
          ref.matmulXWtQ4(want, x, w, 3, false);
          for (let i = 0; i < got.length; i++) assert.ok(Math.abs(got[i] - want[i]) < 1e-4, `iteration ${it}`);
        }
        used.push((k as unknown as { heapUsedBytes: number }).heapUsedBytes);
      }
      assert.equal(new Set(used.slice(1)).size, 1, `heap bytes ${used.join(', ')}`);
    } finally {
      await k.dispose();
    }
  });

  test('lowering the budget evicts resident weights down to it; results stay the same', async () => {
    const k = await createKernels({ backend: 'wasm', threads: 1 });
    try {
      const used = (): number => (k as unknown as { heapUsedBytes: number }).heapUsedBytes;
      const ws = [0, 1, 2].map((i) => quantizeTensor(rand(64 * 96, 70 + i), [64, 96], s('nf4', 64, true, 'blockwise')));
      const x = rand(2 * 96, 3);
      const before = ws.map((w) => { const y = new Float32Array(2 * 64); k.matmulXWtQ4(y, x, w, 2, false); return y; });
      const resident = used();
      assert.ok(k.residentWeightBytes > resident);
      k.setResidentWeightBytes(1);
      assert.equal(k.residentWeightBytes, 1);
      assert.ok(used() < resident, `heap ${resident} -> ${used()} bytes`);
      ws.forEach((w, i) => { const y = new Float32Array(2 * 64); k.matmulXWtQ4(y, x, w, 2, false); assert.deepEqual(y, before[i]); });
    } finally {
      await k.dispose();
    }
  });

  test('codes stored in the kernels\' memory are read in place (no resident copy) and give the same results', async () => {
    const k = await createKernels({ backend: 'wasm', threads: 2, int8Activations: false });
    try {
      const used = (): number => (k as unknown as { heapUsedBytes: number }).heapUsedBytes;
      const N = 256, K = 512;
      const data = rand(N * K, 61);
      const copy = quantizeTensor(data, [N, K], s('nf4', 64, true, 'blockwise'));
      const storage: Float32Array[] = [];
      const inPlace = quantizeTensor(data, [N, K], s('nf4', 64, true, 'blockwise'), {
        packedStorage: (bytes) => {
          storage.push(k.allocF32(Math.ceil(bytes / 4)));
          return new Uint8Array(storage[0].buffer, storage[0].byteOffset, bytes);
        },
      });
      assert.deepEqual(inPlace.packed, copy.packed);
      const x = rand(5 * K, 62);
      const a = new Float32Array(5 * N), b = new Float32Array(5 * N);
      for (const M of [1, 5]) {
        let before = used();
        k.matmulXWtQ4(a, x, inPlace, M, false);
        const inPlaceGrowth = used() - before;
        before = used();
        k.matmulXWtQ4(b, x, copy, M, false);
        const copyGrowth = used() - before;
        assert.deepEqual(a, b, `M=${M}`);
        if (M === 1) assert.ok(inPlaceGrowth < copyGrowth - (N * K) / 2 + 4096, `resident bytes: in place +${inPlaceGrowth}, copy +${copyGrowth}`);
      }
      k.free(storage[0]);
    } finally {
      await k.dispose();
    }
  });

  test('bad weight layouts are ShapeErrors', async () => {
    const k = await createKernels({ backend: 'wasm', threads: 1 });
    try {
      const q = quantizeTensor(rand(8 * 64, 3), [8, 64], s('nf4', 64, false, 'blockwise'));
      // A plain copy (QuantizedTensor exposes some fields as getters, which a spread would drop).
      const w: Quant4Weight = {
        quantType: q.quantType, rows: q.rows, cols: q.cols, packed: q.packed, codebook: q.codebook, blockSize: q.blockSize,
        blocksPerRow: q.blocksPerRow, absmax: q.absmax, dq: q.dq, zeros: q.zeros,
      };
      const y = new Float32Array(8), x = new Float32Array(64);
      assert.throws(() => k.matmulXWtQ4(y, x, { ...w, packed: w.packed.subarray(0, 10) }, 1, false), ShapeError);
      assert.throws(() => k.matmulXWtQ4(y, x, { ...w, blockSize: 0 }, 1, false), ShapeError);
      assert.throws(() => k.matmulXWtQ4(y, x, { ...w, blockSize: 32, blocksPerRow: 3 }, 1, false), ShapeError);
    } finally {
      await k.dispose();
    }
  });
});

describe('staging of large foreign arrays', () => {
  test('quantizeBlockwise4 over more than one staging chunk (2^24 elements) is byte-exact', async () => {
    const k = await createKernels({ backend: 'wasm', threads: 2 });
    try {
      const n = 2 ** 24 + 1001; // two chunks, the second ending in a partial block
      const x = rand(n, 77);
      const nb = Math.ceil(n / 64);
      const wantP = new Uint8Array(Math.ceil(n / 2)), wantA = new Float32Array(nb);
      quantizeBlockwise4Ref(wantP, wantA, x, n, 64, 'nf4');
      const gotP = new Uint8Array(Math.ceil(n / 2)), gotA = new Float32Array(nb);
      k.quantizeBlockwise4(gotP, gotA, x, n, 64, 'nf4');
      assert.ok(Buffer.from(gotP.buffer).equals(Buffer.from(wantP.buffer)), 'codes');
      assert.ok(Buffer.from(gotA.buffer).equals(Buffer.from(wantA.buffer)), 'absmax');
    } finally {
      await k.dispose();
    }
  });
});
