// Round-trip error of quantize -> dequantize on seeded random data (normal, uniform, heavy-tailed,
// outliers, all-zero blocks, skewed) for nf4/fp4 x blockwise/perChannel x symmetric/zero-point x
// with/without double quantization, against the named budgets of src/quant/error-bounds.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { quantizeTensor, type QuantizedTensor } from '../../src/quant/quantized-tensor.js';
import { blockScale } from '../../src/quant/blockwise.js';
import { DYNAMIC_MAP_SIGNED, FP4_CODEBOOK, FP4_SORTED_INDEX_TO_CODE, NF4_CODEBOOK } from '../../src/quant/codebooks.js';
import {
  DYNAMIC_MAP_MAX_HALF_GAP, F32_ROUNDING_SLACK, FP4_MAX_HALF_GAP, maxHalfGap, NF4_MAX_HALF_GAP,
  REL_RMSE_BLOCK64, REL_RMSE_ZERO_POINT_SKEWED,
} from '../../src/quant/error-bounds.js';
import type { QuantStrategy } from '../../src/quant/config.js';
import type { Quant4Type } from '../../src/quant/types.js';
import { sample, type Distribution } from './random.js';

const ROWS = 37;
const COLS = 331; // not a multiple of the block: partial blocks in every row (perChannel) and at the end

function maxHalfGapOf(sorted: number[]): number {
  let g = 0;
  for (let k = 0; k + 1 < sorted.length; k++) g = Math.max(g, (sorted[k + 1] - sorted[k]) / 2);
  return g;
}

test('the half-gap constants are the tables\' own', () => {
  assert.equal(NF4_MAX_HALF_GAP, maxHalfGapOf(Array.from(NF4_CODEBOOK)));
  assert.equal(FP4_MAX_HALF_GAP, maxHalfGapOf(Array.from(FP4_SORTED_INDEX_TO_CODE, (c) => FP4_CODEBOOK[c])));
  let g = 0;
  for (let k = 0; k < 255; k++) g = Math.max(g, Math.fround(DYNAMIC_MAP_SIGNED[k + 1] - DYNAMIC_MAP_SIGNED[k]) / 2);
  assert.equal(DYNAMIC_MAP_MAX_HALF_GAP, g);
});

/** The flat index range of every block of q. */
function blockRanges(q: QuantizedTensor): [number, number][] {
  const out: [number, number][] = [];
  if (q.blocksPerRow === 0) {
    for (let i = 0; i < q.numel; i += q.blockSize) out.push([i, Math.min(q.numel, i + q.blockSize)]);
  } else {
    for (let r = 0; r < q.rows; r++) {
      for (let c = 0; c < q.cols; c += q.blockSize) out.push([r * q.cols + c, r * q.cols + Math.min(q.cols, c + q.blockSize)]);
    }
  }
  return out;
}

/** Check every element against the guaranteed bound; return the relative RMS error. */
function checkRoundTrip(q: QuantizedTensor, x: Float32Array, label: string): number {
  const w = q.dequantize();
  const gap = maxHalfGap(q.quantType);
  const ranges = blockRanges(q);
  assert.equal(ranges.length, q.blockCount, `${label}: block count`);
  ranges.forEach(([b0, b1], b) => {
    const zero = q.zeros === null ? 0 : q.zeros[b];
    let a = 0;
    for (let i = b0; i < b1; i++) a = Math.max(a, Math.abs(Math.fround(x[i] - zero)));
    const s = blockScale(q, b);
    if (q.dq !== null) {
      const nested = q.dq.nestedAbsmax[Math.floor(b / q.dq.nestedBlockSize)];
      // Stored absmax of a partial block is clamped to 1e-38; immaterial at this tolerance.
      assert.ok(Math.abs(a - s) <= DYNAMIC_MAP_MAX_HALF_GAP * nested * (1 + 1e-6) + F32_ROUNDING_SLACK * (a + nested) + 1e-37,
        `${label}: block ${b} scale ${s} vs absmax ${a}`);
    } else {
      assert.ok(Math.abs(a - s) <= 1e-38, `${label}: block ${b} absmax`);
    }
    for (let i = b0; i < b1; i++) {
      const bound = gap * a + Math.abs(a - s) + F32_ROUNDING_SLACK * (Math.abs(x[i]) + Math.abs(w[i]) + a + Math.abs(s));
      if (!(Math.abs(w[i] - x[i]) <= bound)) assert.fail(`${label}: element ${i}: |${w[i]} - ${x[i]}| > ${bound}`);
    }
  });
  let se = 0;
  let ss = 0;
  for (let i = 0; i < x.length; i++) {
    se += (w[i] - x[i]) ** 2;
    ss += x[i] ** 2;
  }
  return Math.sqrt(se / ss);
}

const DISTRIBUTIONS: Distribution[] = ['normal', 'uniform', 'heavyTailed', 'outliers', 'zeroBlocks', 'skewed'];
const TYPES: Quant4Type[] = ['nf4', 'fp4'];
const STRATEGIES: QuantStrategy[] = ['blockwise', 'perChannel'];

for (const dist of DISTRIBUTIONS) {
  test(`round trip within bounds: ${dist}`, () => {
    const x = sample(dist, ROWS * COLS, 1234 + DISTRIBUTIONS.indexOf(dist));
    for (const quantType of TYPES) {
      for (const strategy of STRATEGIES) {
        for (const zeroPoint of [false, true]) {
          for (const doubleQuant of [false, true]) {
            const label = `${dist} ${quantType} ${strategy} zeroPoint=${zeroPoint} dq=${doubleQuant}`;
            const q = quantizeTensor(x, [ROWS, COLS], { quantType, blockSize: 64, doubleQuant, strategy, zeroPoint });
            const rmse = checkRoundTrip(q, x, label);
            if (!zeroPoint && (dist === 'normal' || dist === 'uniform' || dist === 'heavyTailed')) {
              assert.ok(rmse <= REL_RMSE_BLOCK64[quantType][dist], `${label}: relative RMSE ${rmse}`);
            }
            if (zeroPoint && dist === 'skewed') assert.ok(rmse <= REL_RMSE_ZERO_POINT_SKEWED[quantType], `${label}: relative RMSE ${rmse}`);
          }
        }
      }
    }
  });
}

test('all-zero blocks dequantize to zeros (+0 with plain scales; the sign of a DQ scale may give -0)', () => {
  const x = sample('zeroBlocks', ROWS * COLS, 99); // every third block of 64 (flat) is all zero
  for (const quantType of TYPES) {
    for (const doubleQuant of [false, true]) {
      const q = quantizeTensor(x, [ROWS, COLS], { quantType, blockSize: 64, doubleQuant, strategy: 'blockwise', zeroPoint: false });
      const w = q.dequantize();
      for (let i = 0; i < x.length; i++) {
        if (Math.floor(i / 64) % 3 !== 1) continue;
        assert.equal(w[i], 0, `element ${i}`);
        if (!doubleQuant) assert.ok(Object.is(w[i], 0), `element ${i} is +0`);
      }
    }
  }
});
