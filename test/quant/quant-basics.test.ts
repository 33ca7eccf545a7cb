// Unit tests of the quant layer's building blocks: codebooks, FORMATS.md §14.6 vectors, code
// choice at thresholds, Python float repr, the quant_state JSON, torch's cascade mean.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DYNAMIC_MAP_SIGNED, DYNAMIC_MAP_SIGNED_MIDPOINTS, FP4_CODEBOOK, FP4_MIDPOINTS_SORTED, FP4_SORTED_INDEX_TO_CODE,
  NF4_CODEBOOK, NF4_MIDPOINTS,
} from '../../src/quant/codebooks.js';
import { quantizeBlockwise4Ref } from '../../src/quant/blockwise.js';
import { quantizeTensor } from '../../src/quant/quantized-tensor.js';
import { formatQuantStateJson, parseQuantStateJson } from '../../src/quant/quant-state.js';
import { torchCascadeSumF32 } from '../../src/quant/double-quant.js';
import { FormatError } from '../../src/errors.js';
import { dumpPythonJson, parsePreservingNumbers, PyFloat, pythonFloatRepr } from '../../src/formats/py-json.js';

const hex = (b: Uint8Array): string => Array.from(b, (v) => v.toString(16).padStart(2, '0')).join(' ');
const NF4_64 = { quantType: 'nf4', blockSize: 64, doubleQuant: false, strategy: 'blockwise', zeroPoint: false } as const;

test('NF4 thresholds are the f32 midpoints of the codebook; FP4 sorted midpoints and index map agree with the table', () => {
  for (let i = 0; i < 15; i++) assert.equal(NF4_MIDPOINTS[i], Math.fround((NF4_CODEBOOK[i] + NF4_CODEBOOK[i + 1]) / 2));
  const sorted = Array.from(FP4_SORTED_INDEX_TO_CODE, (c) => FP4_CODEBOOK[c]);
  for (let k = 0; k < 15; k++) {
    assert.ok(sorted[k] <= sorted[k + 1]);
    assert.equal(FP4_MIDPOINTS_SORTED[k], Math.fround((sorted[k] + sorted[k + 1]) / 2));
  }
  assert.deepEqual(Array.from(FP4_CODEBOOK.subarray(0, 8), (v) => v * 12), [0, 0.0625, 8, 12, 4, 6, 2, 3].map((v) => Math.fround(v / 12) * 12));
  assert.equal(Object.is(FP4_CODEBOOK[8], 0), true, 'FP4 code 8 is +0.0');
});

test('signed dynamic map: symmetric, m[127] = 0, m[255] = 1, sorted, smallest magnitude 5.5e-7', () => {
  assert.equal(DYNAMIC_MAP_SIGNED.length, 256);
  assert.equal(DYNAMIC_MAP_SIGNED[127], 0);
  assert.equal(DYNAMIC_MAP_SIGNED[255], 1);
  for (let k = 0; k < 127; k++) assert.equal(DYNAMIC_MAP_SIGNED[k], -DYNAMIC_MAP_SIGNED[254 - k]);
  for (let k = 0; k < 255; k++) assert.ok(DYNAMIC_MAP_SIGNED[k] < DYNAMIC_MAP_SIGNED[k + 1]);
  assert.equal(DYNAMIC_MAP_SIGNED[128], Math.fround(5.5000004e-7));
  assert.equal(DYNAMIC_MAP_SIGNED_MIDPOINTS.length, 255);
});

test('FORMATS §14.6: NF4 one block of 8', () => {
  const x = Float32Array.from([-1.0, -0.5, 0.0, 0.25, 0.5, 0.75, 1.0, 0.04]);
  const q = quantizeTensor(x, [8], NF4_64);
  assert.equal(hex(q.packed), '02 7a ce f8');
  assert.deepEqual(Array.from(q.absmax!), [1]);
});

test('FORMATS §14.6: NF4 n = 10 (partial block divides), codes and dequantized values', () => {
  const x = Float32Array.from({ length: 10 }, (_, k) => Math.fround(0.3 * (k - 5)));
  const q = quantizeTensor(x, [10], NF4_64);
  assert.equal(hex(q.packed), '01 23 57 9c de');
  assert.deepEqual(Array.from(q.absmax!), [1.5]);
  assert.deepEqual(Array.from(q.dequantize()), [-1.5, -1.044289231300354, -0.7876095771789551, -0.5923762321472168,
    -0.2771601378917694, 0.0, 0.24139529466629028, 0.6610647439956665, 0.8439254760742188, 1.084435224533081]);
});

test('code choice: a value exactly on a threshold goes to the lower code, one ulp above to the upper', () => {
  const absmax = new Float32Array(1);
  // The next f32 above v (v != 0): one bit-pattern step away from zero for v > 0, toward it for v < 0.
  const up = (v: number): number => { const f = new Float32Array([v]); const u = new Uint32Array(f.buffer); u[0] += v > 0 ? 1 : -1; return f[0]; };
  for (let i = 0; i < 15; i++) {
    const t = NF4_MIDPOINTS[i];
    // 64 elements: one 1.0 (absmax 1 -> reciprocal 1, exact), t, then t + 1 ulp.
    const x = new Float32Array(64);
    x[0] = 1; x[2] = t; x[3] = up(t);
    const p = new Uint8Array(32);
    quantizeBlockwise4Ref(p, absmax, x, 64, 64, 'nf4');
    assert.equal(p[1] >> 4, i, `threshold ${i}: on it -> lower code`);
    assert.equal(p[1] & 0xf, i + 1, `threshold ${i}: one ulp above -> upper code`);
  }
});

test('FP4 near zero (torch path): tiny positives -> code 8, tiny negatives and ±0 -> code 0', () => {
  const x = Float32Array.from([1, 1e-4, -1e-4, -0, 0, 2e-3, -2e-3, 3e-3]);
  const q = quantizeTensor(x, [8], { ...NF4_64, quantType: 'fp4' });
  assert.equal(hex(q.packed), '38 00 08 01');
});

test('all-zero blocks: NF4 0x77 with absmax 0 (complete) / 1e-38 (partial tail), FP4 0x00', () => {
  const q = quantizeTensor(new Float32Array(70), [70], NF4_64);
  assert.ok(q.packed.every((b) => b === 0x77));
  assert.deepEqual(Array.from(q.absmax!), [0, Math.fround(1e-38)]);
  assert.ok(q.dequantize().every((v) => Object.is(v, 0)));
  const f = quantizeTensor(new Float32Array(70), [70], { ...NF4_64, quantType: 'fp4' });
  assert.ok(f.packed.every((b) => b === 0));
});

test('odd n: the pad nibble is the code of 0.0 (NF4 7, FP4 0)', () => {
  const x = Float32Array.from([1, -1, 0.5]);
  assert.equal(quantizeTensor(x, [3], NF4_64).packed[1] & 0xf, 7);
  assert.equal(quantizeTensor(Float32Array.from([1, -1, -0.5]), [3], { ...NF4_64, quantType: 'fp4' }).packed[1] & 0xf, 0);
});

test('Python float repr', () => {
  const cases: [number, string][] = [
    [2.759014368057251, '2.759014368057251'], [6.998875927883846e37, '6.998875927883846e+37'], [1e-5, '1e-05'],
    [2, '2.0'], [0.05, '0.05'], [0.0001, '0.0001'], [1.5e-7, '1.5e-07'], [1e16, '1e+16'], [1234567890123456, '1234567890123456.0'],
    [123.25, '123.25'], [-0.5, '-0.5'], [0, '0.0'], [-0, '-0.0'], [Math.fround(1e-38), '9.999999350456404e-39'],
    [1e100, '1e+100'], [Math.fround(0.1), '0.10000000149011612'], [5e-324, '5e-324'],
  ];
  for (const [x, s] of cases) assert.equal(pythonFloatRepr(x), s, String(x));
});

test('quant_state JSON: exact text, and the parser refuses bad fields', () => {
  const text = formatQuantStateJson({ quantType: 'nf4', blockSize: 64, dtype: 'bfloat16', shape: [8, 100], nested: { blockSize: 256, dtype: 'float32', offset: 2.759014368057251 } });
  assert.equal(text, '{"quant_type": "nf4", "blocksize": 64, "dtype": "bfloat16", "shape": [8, 100], "nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": 2.759014368057251}');
  const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
  assert.deepEqual(parseQuantStateJson(enc('{"shape":[4096,4096],"dtype":"float16","blocksize":128,"quant_type":"fp4"}'), {}),
    { quantType: 'fp4', blockSize: 128, dtype: 'float16', shape: [4096, 4096] });
  for (const bad of ['[1]', '{"quant_type": "int4", "blocksize": 64, "dtype": "float32", "shape": [2]}',
    '{"quant_type": "nf4", "blocksize": 64, "dtype": "float64", "shape": [2]}',
    '{"quant_type": "nf4", "blocksize": 64, "dtype": "float32", "shape": [2], "nested_blocksize": 256}', '{"quant_type": ']) {
    assert.throws(() => parseQuantStateJson(enc(bad), { field: 'w' }), FormatError, bad);
  }
});

test('torch cascade sum: exact for small integers at every length, and different from a sequential sum where torch is', () => {
  for (let n = 1; n < 300; n++) {
    const a = Float32Array.from({ length: n }, (_, i) => i % 7);
    assert.equal(torchCascadeSumF32(a), Array.from(a).reduce((s, v) => s + v, 0));
  }
  // 1 followed by many 2^-24: a sequential f32 sum never moves off 1; the cascade adds the small ones first.
  const a = new Float32Array(4096).fill(2 ** -24);
  a[0] = 1;
  assert.ok(torchCascadeSumF32(a) > 1);
});

test('Python-style config JSON: sorted keys, indent 2, number spellings kept, ensure_ascii escapes', () => {
  const text = '{"b": 1e-05, "a": [10000.0, 2, {}], "c": "caf\u00e9 \ud83d\ude00", "d": null, "e": [], "f": true}';
  const parsed = parsePreservingNumbers(text, 'config.json');
  assert.equal(dumpPythonJson(parsed),
    '{\n  "a": [\n    10000.0,\n    2,\n    {}\n  ],\n  "b": 1e-05,\n  "c": "caf\\u00e9 \\ud83d\\ude00",\n  "d": null,\n  "e": [],\n  "f": true\n}');
  assert.equal(dumpPythonJson({ x: new PyFloat(6), y: 0.5, z: 3 }), '{\n  "x": 6.0,\n  "y": 0.5,\n  "z": 3\n}');
  assert.throws(() => parsePreservingNumbers('{"a": }', 'config.json'), FormatError);
});
