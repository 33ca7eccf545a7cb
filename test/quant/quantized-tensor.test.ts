// QuantizedTensor: sizes and bits per parameter, row-range dequantization, perChannel layout,
// bad input (NaN/Inf, empty, 0-d, inconsistent parts), the allowNonFinite policy, and int8.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { QuantizedTensor, quantizeTensor } from '../../src/quant/quantized-tensor.js';
import { quantizeInt8PerRow } from '../../src/quant/int8.js';
import { NumericError, ShapeError } from '../../src/errors.js';
import { sample } from './random.js';

const S = { quantType: 'nf4', blockSize: 64, doubleQuant: true, strategy: 'blockwise', zeroPoint: false } as const;

test('bits per parameter: 4.5 without double quant, 4 + 8/64 + 32/(64*256) + offset with it (block 64)', () => {
  const x = sample('normal', 256 * 256, 1);
  const plain = quantizeTensor(x, [256, 256], { ...S, doubleQuant: false });
  assert.equal(plain.bitsPerParameter(), 4.5);
  const dq = quantizeTensor(x, [256, 256], S);
  assert.equal(dq.sizeBytes(), 32768 + 1024 + 4 * 4 + 4);
  assert.ok(Math.abs(dq.bitsPerParameter() - 4.127) < 0.001);
  assert.deepEqual(plain.compressionRatio(), { vsF32: 32 / 4.5, vsF16: 16 / 4.5 });
});

test('dequantizeRows / dequantizeInto equal slices of dequantize, in every layout', () => {
  const x = sample('normal', 13 * 77, 2);
  for (const strategy of ['blockwise', 'perChannel'] as const) {
    for (const zeroPoint of [false, true]) {
      const q = quantizeTensor(x, [13, 77], { ...S, strategy, zeroPoint });
      const all = q.dequantize();
      assert.deepEqual(q.dequantizeRows(3, 8), all.subarray(3 * 77, 8 * 77));
      const out = new Float32Array(2 * 77 + 5).fill(7);
      q.dequantizeInto(out, 11, 13);
      assert.deepEqual(out.subarray(0, 154), all.subarray(11 * 77));
      assert.equal(out[154], 7, 'nothing written past the range');
      assert.throws(() => q.dequantizeRows(5, 14), ShapeError);
      assert.throws(() => q.dequantizeInto(new Float32Array(10), 0, 1), ShapeError);
    }
  }
});

test('perChannel: blocks never cross rows; each row quantizes as its own bnb tensor; packing is dense', () => {
  const rows = 5;
  const cols = 99; // odd: rows start at odd flat indices, i.e. in low nibbles
  const x = sample('normal', rows * cols, 3);
  const q = quantizeTensor(x, [rows, cols], { ...S, doubleQuant: false, strategy: 'perChannel' });
  assert.equal(q.blocksPerRow, 2);
  assert.equal(q.absmax!.length, rows * 2);
  assert.equal(q.packed.length, Math.ceil((rows * cols) / 2));
  for (let r = 0; r < rows; r++) {
    const row = quantizeTensor(x.subarray(r * cols, (r + 1) * cols), [cols], { ...S, doubleQuant: false });
    assert.deepEqual(q.absmax!.subarray(2 * r, 2 * r + 2), row.absmax);
    assert.deepEqual(q.dequantizeRows(r, r + 1), row.dequantize());
  }
});

test('NaN / Inf: NumericError naming the tensor and flat index; allowNonFinite sanitizes', () => {
  const x = sample('normal', 200, 4);
  x[130] = NaN;
  assert.throws(() => quantizeTensor(x, [2, 100], S, { name: 'model.layers.0.mlp.up_proj.weight' }),
    (e: unknown) => e instanceof NumericError && /up_proj/.test(e.message) && /flat index 130/.test(e.message));
  x[130] = -Infinity;
  assert.throws(() => quantizeTensor(x, [2, 100], S), NumericError);
  x[5] = NaN;
  const q = quantizeTensor(x, [2, 100], { ...S, doubleQuant: false }, { allowNonFinite: true });
  const w = q.dequantize();
  assert.equal(w[5], 0, 'NaN -> 0');
  let finiteMax = 0;
  for (let i = 128; i < 192; i++) if (i !== 130) finiteMax = Math.max(finiteMax, Math.abs(x[i]));
  assert.equal(q.absmax![2], Math.fround(finiteMax), '-Inf does not blow up its block scale');
  assert.equal(w[130], -q.absmax![2], '-Inf -> -(block max)');
  assert.ok(w.every(Number.isFinite));
});

test('empty and 0-d tensors, wrong data length: ShapeError', () => {
  assert.throws(() => quantizeTensor(new Float32Array(0), [0, 64], S), ShapeError);
  assert.throws(() => quantizeTensor(new Float32Array(1), [], S), ShapeError);
  assert.throws(() => quantizeTensor(new Float32Array(10), [3, 4], S), ShapeError);
});

test('QuantizedTensor refuses inconsistent parts', () => {
  const bad = () => new QuantizedTensor([4, 64], 'float32', { ...S, doubleQuant: false }, new Uint8Array(128), new Float32Array(3), null, null);
  assert.throws(bad, /absmax has 3 values, expected 4/);
  assert.throws(() => new QuantizedTensor([4, 64], 'float32', S, new Uint8Array(127), new Float32Array(4), null, null), /packed has 127 bytes/);
  assert.throws(() => new QuantizedTensor([4, 64], 'float32', S, new Uint8Array(128), null, null, null), /exactly one of/);
});

test('int8 per-row: error at most half a step, zero rows stay zero', () => {
  const x = sample('normal', 8 * 50, 5);
  x.fill(0, 100, 150);
  const q = quantizeInt8PerRow(x, [8, 50]);
  const w = q.dequantize();
  for (let r = 0; r < 8; r++) {
    for (let c = 0; c < 50; c++) {
      const i = r * 50 + c;
      assert.ok(Math.abs(w[i] - x[i]) <= q.scales[r] * 0.5 * (1 + 1e-5) + 1e-7, `element ${i}`);
    }
  }
  assert.equal(q.scales[2], 0);
  assert.equal(q.bitsPerParameter(), 8 + 32 / 50);
});
