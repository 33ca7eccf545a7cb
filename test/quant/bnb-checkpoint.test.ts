// bnb-4bit checkpoints: the linear4bit_* state dicts (transformers/bitsandbytes-written) read,
// decode to the expected weights, and re-quantizing their sources reproduces model.safetensors
// byte for byte (whole file, incl. quant_storage=bfloat16); the quantization_config text; the
// stories260K-nf4-dq model; and corrupted checkpoints refused with FormatError.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openCheckpoint, SafetensorsReader, writeSafetensors, type TensorToWrite } from '../../src/formats/safetensors.js';
import { bnbQuantizationConfig, bnbTensorsFor, listBnbWeights, readBnbWeight, readBnbWeights, type QuantStorage } from '../../src/quant/bnb-checkpoint.js';
import { quantizeTensor } from '../../src/quant/quantized-tensor.js';
import { dumpPythonJson } from '../../src/formats/py-json.js';
import { FormatError, UnsupportedError } from '../../src/errors.js';
import { fixture } from '../helpers/shared.js';

interface Linear4bitVariant { name: string; dir: string; torch_dtype: 'bfloat16' | 'float16'; quant_type: 'nf4' | 'fp4'; double_quant: boolean; quant_storage: QuantStorage }
const manifest = JSON.parse(readFileSync(fixture('bnb', 'manifest.json'), 'utf8')) as { linear4bit: Linear4bitVariant[] };

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

const tmp = mkdtempSync(join(tmpdir(), 'qlora-bnb-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

for (const v of manifest.linear4bit) {
  test(`linear4bit ${v.name}: read, decode, re-quantize to identical file bytes`, () => {
    const model = SafetensorsReader.open(fixture('bnb', v.dir, 'model.safetensors'));
    const expected = SafetensorsReader.open(fixture('bnb', v.dir, 'expected.safetensors'));
    try {
      assert.deepEqual(listBnbWeights(model), ['fc1.weight', 'fc2.weight']);
      const weights = readBnbWeights(model, v.dir);
      const tensors: TensorToWrite[] = [];
      for (const [param, q] of weights) {
        assert.equal(q.dtype, v.torch_dtype);
        assert.deepEqual(bytesOf(q.dequantizeToDtype()), expected.readBytes(`${param}.dequantized`), `${param} decode`);
        const source = expected.readF32(`${param}.source`);
        const requant = quantizeTensor(source, q.shape, { quantType: v.quant_type, blockSize: 64, doubleQuant: v.double_quant, strategy: 'blockwise', zeroPoint: false }, { sourceDtype: v.torch_dtype });
        for (const t of bnbTensorsFor(param, requant, v.quant_storage)) {
          assert.deepEqual(model.entry(t.name).shape, t.shape, `${t.name} shape`);
          assert.equal(model.entry(t.name).dtype, t.dtype, `${t.name} dtype`);
          assert.deepEqual(t.data, model.readBytes(t.name), `${t.name} bytes`);
          tensors.push(t);
        }
        const bias = param.replace(/weight$/, 'bias');
        tensors.push({ name: bias, dtype: model.entry(bias).dtype, shape: model.entry(bias).shape, data: model.readBytes(bias) });
      }
      const out = join(tmp, `${v.name}.safetensors`);
      writeSafetensors(out, tensors, { format: 'pt' });
      assert.ok(readFileSync(out).equals(readFileSync(fixture('bnb', v.dir, 'model.safetensors'))), 'whole file identical');
      const config = JSON.parse(readFileSync(fixture('bnb', v.dir, 'config.json'), 'utf8'));
      const ours = bnbQuantizationConfig({ quantType: v.quant_type, doubleQuant: v.double_quant, computeDtype: v.torch_dtype === 'bfloat16' ? 'bf16' : 'f16', quantStorage: v.quant_storage });
      assert.deepEqual(JSON.parse(dumpPythonJson(ours)), config.quantization_config);
      const text = readFileSync(fixture('bnb', v.dir, 'config.json'), 'utf8');
      assert.ok(text.includes(dumpPythonJson(ours, 2, 1)), 'quantization_config text as transformers writes it');
    } finally {
      model.close();
      expected.close();
    }
  });
}

test('stories260K-nf4-dq: every weight reads; quantizing the f32 model reproduces every tensor', () => {
  const bnb = openCheckpoint(fixture('bnb-models', 'stories260K-nf4-dq'));
  const src = openCheckpoint(fixture('models', 'stories260K'));
  try {
    const params = listBnbWeights(bnb);
    assert.equal(params.length, 35); // 5 layers x 7 Linear
    for (const param of params) {
      const stored = readBnbWeight(bnb, param);
      const e = src.entry(param);
      const q = quantizeTensor(src.readF32(param), e.shape, { quantType: 'nf4', blockSize: 64, doubleQuant: true, strategy: 'blockwise', zeroPoint: false }, { name: param });
      for (const t of bnbTensorsFor(param, q)) assert.deepEqual(t.data, bnb.readBytes(t.name), t.name);
      assert.deepEqual(stored.dequantize(), q.dequantize());
    }
  } finally {
    bnb.close();
    src.close();
  }
});

test('bnb export refuses perChannel and zero-point layouts', () => {
  const x = new Float32Array(128).map((_, i) => Math.sin(i));
  const base = { quantType: 'nf4', blockSize: 64, doubleQuant: false, strategy: 'blockwise', zeroPoint: false } as const;
  assert.throws(() => bnbTensorsFor('w', quantizeTensor(x, [2, 64], { ...base, strategy: 'perChannel' })), UnsupportedError);
  assert.throws(() => bnbTensorsFor('w', quantizeTensor(x, [2, 64], { ...base, zeroPoint: true })), UnsupportedError);
});

test('corrupted checkpoints: FormatError naming the tensor, nothing returned', () => {
  const x = new Float32Array(64 * 10).map((_, i) => Math.cos(i));
  const q = quantizeTensor(x, [10, 64], { quantType: 'nf4', blockSize: 64, doubleQuant: true, strategy: 'blockwise', zeroPoint: false });
  const good = bnbTensorsFor('a.weight', q);
  const variants: [string, (ts: TensorToWrite[]) => TensorToWrite[], RegExp][] = [
    ['absmax count', (ts) => ts.map((t) => (t.name === 'a.weight.absmax' ? { ...t, shape: [9], data: new Uint8Array(9) } : t)), /a\.weight\.absmax/],
    ['missing nested', (ts) => ts.filter((t) => t.name !== 'a.weight.nested_absmax'), /nested_absmax/],
    ['packed size', (ts) => ts.map((t) => (t.name === 'a.weight' ? { ...t, shape: [300, 1], data: new Uint8Array(300) } : t)), /packed weight size/],
    ['JSON shape', (ts) => ts.map((t) => (t.name.includes('quant_state') ? jsonTensor(t, '"shape": [10, 64]', '"shape": [10, 65]') : t)), /quant_state|packed/],
    ['JSON blocksize', (ts) => ts.map((t) => (t.name.includes('quant_state') ? jsonTensor(t, '"blocksize": 64', '"blocksize": 128') : t)), /absmax/],
    ['JSON garbage', (ts) => ts.map((t) => (t.name.includes('quant_state') ? { ...t, shape: [3], data: new Uint8Array([123, 34, 0]) } : t)), /JSON/],
  ];
  for (const [label, corrupt, re] of variants) {
    const file = join(tmp, `bad-${label.replace(/ /g, '_')}.safetensors`);
    writeSafetensors(file, corrupt(good), { format: 'pt' });
    const r = SafetensorsReader.open(file);
    try {
      assert.throws(() => readBnbWeights(r, file), (e: unknown) => e instanceof FormatError && re.test(e.message), label);
    } finally {
      r.close();
    }
  }
});

function jsonTensor(t: TensorToWrite, from: string, to: string): TensorToWrite {
  const text = new TextDecoder().decode(t.data as Uint8Array).replace(from, to);
  const data = new TextEncoder().encode(text);
  return { ...t, shape: [data.length], data };
}
