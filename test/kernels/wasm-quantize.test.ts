// The wasm 4-bit quantizer (assembly/quant.ts) and its dispatch (backend.ts quantizeBlockwise4,
// dequantizeQ4Rows) on the cases its fast paths could get wrong, byte for byte against the quant
// layer's reference (src/quant/blockwise.ts):
// - scaled values exactly on every sorted-codebook midpoint, one ulp either side, on the codebook
//   values, on the boundaries of the NF4 grid buckets (one-compare path) and past ±1, -0, NaN, ±Inf;
// - sizes whose 2-thread split and 2^20-element staging rounds fall mid-tensor, with partial last
//   blocks, odd element counts and an odd block size, arrays foreign or in wasm memory (at an
//   offset), identical at 1 and 2 threads;
// - dequantization into a foreign output over several staging rounds.
// Other kernel cases (random data, bnb fixtures) are in wasm-q4.test.ts and ../quant/.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { randomF32 } from '../helpers/random.js';
import { createKernels } from '../../src/kernels/index.js';
import type { Kernels } from '../../src/kernels/kernels.js';
import { dequantizeQ4RowsRef, quantizeBlockwise4Ref } from '../../src/quant/blockwise.js';
import { FP4_CODEBOOK, FP4_MIDPOINTS_SORTED, NF4_CODEBOOK, NF4_MIDPOINTS } from '../../src/quant/codebooks.js';
import { quantizeTensor } from '../../src/quant/quantized-tensor.js';
import type { Quant4Type } from '../../src/quant/types.js';

const rand = randomF32;

const f32Bits = new Float32Array(1);
const u32Bits = new Uint32Array(f32Bits.buffer);
/** The f32 k ulps from v (k may be negative; v finite and not crossing zero). */
function ulps(v: number, k: number): number {
  f32Bits[0] = v;
  u32Bits[0] += v < 0 ? -k : k;
  return f32Bits[0];
}

/**
 * Blocks of 64 whose first element is 1 (absmax 1, reciprocal 1: the scaled values are the inputs
 * themselves) filled with every edge value, then the same values in blocks scaled by 2^-3 and by
 * 3 (the reciprocal rounds), then a block with NaN / ±Inf / -0.
 */
function edgeValues(type: Quant4Type): Float32Array {
  const mids = type === 'nf4' ? NF4_MIDPOINTS : FP4_MIDPOINTS_SORTED;
  const book = type === 'nf4' ? NF4_CODEBOOK : FP4_CODEBOOK;
  const v: number[] = [];
  for (const m of mids) v.push(m, ...(m === 0 ? [1e-45, -1e-45] : [ulps(m, 1), ulps(m, -1), ulps(m, 2), ulps(m, -2)]));
  v.push(...book, 1, -1, ulps(1, -1), ulps(-1, -1), -0, 1e-40, -1e-40);
  for (let j = 0; j <= 31; j++) { // NF4 grid: bucket j ends where 15s + 15 = j + 0.5
    const b = Math.fround((j + 0.5) / 15 - 1);
    if (Math.abs(b) < 1 && b !== 0) v.push(b, ulps(b, 1), ulps(b, -1));
  }
  const per = 63;
  const blocks = Math.ceil(v.length / per);
  const x = new Float32Array(64 * (3 * blocks + 1));
  for (const [k, scale] of [[0, 1], [1, 0.125], [2, 3]] as const) {
    for (let i = 0; i < v.length; i++) {
      const b = k * blocks + Math.floor(i / per);
      x[64 * b] = scale;
      x[64 * b + 1 + (i % per)] = Math.fround(v[i] * scale);
    }
  }
  const last = 64 * 3 * blocks;
  x.set([NaN, 0.5, Infinity, -0, -Infinity, 0.25, NaN], last);
  return x;
}

function assertSameQuant(k: Kernels, x: Float32Array, n: number, bs: number, type: Quant4Type, what: string): void {
  const nb = Math.ceil(n / bs);
  const wantP = new Uint8Array(Math.ceil(n / 2)), wantA = new Float32Array(nb);
  quantizeBlockwise4Ref(wantP, wantA, x, n, bs, type);
  const gotP = new Uint8Array(Math.ceil(n / 2)).fill(0xaa), gotA = new Float32Array(nb).fill(NaN);
  k.quantizeBlockwise4(gotP, gotA, x, n, bs, type);
  assert.ok(Buffer.from(gotP.buffer).equals(Buffer.from(wantP.buffer)), `${what}: codes (first difference at byte ${gotP.findIndex((b, i) => b !== wantP[i])})`);
  assert.ok(Buffer.from(gotA.buffer).equals(Buffer.from(wantA.buffer)), `${what}: absmax`);
}

for (const threads of [1, 2]) {
  describe(`wasm quantizeBlockwise4, ${threads} thread(s)`, () => {
    let k: Kernels;
    before(async () => {
      k = await createKernels({ backend: 'wasm', threads });
    });
    after(async () => {
      await k.dispose();
    });

    test('midpoints, their neighbours, grid bucket edges, ±1, -0, NaN and ±Inf: same codes as the reference', () => {
      for (const type of ['nf4', 'fp4'] as const) {
        const x = edgeValues(type);
        assertSameQuant(k, x, x.length, 64, type, `${type} edges`);
        assertSameQuant(k, x, x.length, 32, type, `${type} edges, block 32`);
        assertSameQuant(k, x, x.length - 9, 64, type, `${type} edges, partial last block`);
      }
    });

    test('sizes whose thread split and staging rounds fall mid-tensor, foreign arrays', () => {
      const cases: [number, number, Quant4Type][] = [
        [(1 << 20) + 64 * 3 + 7, 64, 'nf4'], // two staging rounds, odd n, partial last block
        [1_000_003, 32, 'fp4'],
        [600_001, 4096, 'nf4'], // few, large blocks: the split falls on a block boundary
        [499_994, 3, 'nf4'], // odd block size: 166665 blocks, split on a pair boundary, not at block 83333
        [(1 << 21) + 128, 128, 'nf4'],
      ];
      let seed = 11;
      for (const [n, bs, type] of cases) {
        const x = rand(n, seed++);
        for (let i = 0; i < n; i += 997) x[i] *= 2 ** ((i % 23) - 11);
        assertSameQuant(k, x, n, bs, type, `${type} n=${n} bs=${bs}`);
      }
    });

    test('arrays in wasm memory at an offset give the same bytes as foreign ones', () => {
      const n = 700_001, bs = 64, nb = Math.ceil(n / bs);
      const host = rand(n, 5);
      const xk = k.allocF32(n + 3);
      const pk = k.allocF32(Math.ceil(n / 8) + 2);
      const ak = k.allocF32(nb + 1);
      try {
        const x = xk.subarray(3, 3 + n);
        x.set(host);
        const packed = new Uint8Array(pk.buffer, pk.byteOffset + 5, Math.ceil(n / 2));
        const absmax = ak.subarray(1, 1 + nb);
        k.quantizeBlockwise4(packed, absmax, x, n, bs, 'nf4');
        const wantP = new Uint8Array(Math.ceil(n / 2)), wantA = new Float32Array(nb);
        quantizeBlockwise4Ref(wantP, wantA, host, n, bs, 'nf4');
        assert.ok(Buffer.from(packed).equals(Buffer.from(wantP)), 'codes');
        assert.ok(Buffer.from(absmax.buffer, absmax.byteOffset, absmax.byteLength).equals(Buffer.from(wantA.buffer)), 'absmax');
      } finally {
        k.free(ak);
        k.free(pk);
        k.free(xk);
      }
    });

    test('dequantizeQ4Rows into a foreign output over several staging rounds is bit-exact', () => {
      const rows = 1100, cols = 1001;
      const w = quantizeTensor(rand(rows * cols, 9), [rows, cols], { quantType: 'nf4', blockSize: 64, doubleQuant: true, strategy: 'blockwise', zeroPoint: false });
      for (const [r0, r1] of [[0, rows], [7, 1093]]) {
        const want = new Float32Array((r1 - r0) * cols);
        dequantizeQ4RowsRef(want, w, r0, r1);
        const got = new Float32Array((r1 - r0) * cols).fill(NaN);
        k.dequantizeQ4Rows(got, w, r0, r1);
        assert.ok(Buffer.from(got.buffer).equals(Buffer.from(want.buffer)), `rows ${r0}..${r1}`);
      }
    });
  });
}
