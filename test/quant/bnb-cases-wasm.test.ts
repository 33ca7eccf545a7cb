// The fast path against bitsandbytes itself: the wasm kernels' quantizeBlockwise4 and
// dequantizeQ4Rows on every case of fixtures/bnb/manifest.json, byte for byte (the reference twin
// is checked the same way in bnb-cases.test.ts). Skipped, saying why, when the wasm kernel module
// cannot load here (e.g. not built).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { SafetensorsReader } from '../../src/formats/safetensors.js';
import { createKernels } from '../../src/kernels/index.js';
import type { Kernels } from '../../src/kernels/kernels.js';
import { quantizeTensor } from '../../src/quant/quantized-tensor.js';
import { doubleQuantize } from '../../src/quant/double-quant.js';
import type { Quant4Type } from '../../src/quant/types.js';
import { fixture } from '../helpers/shared.js';

interface Case {
  id: string; file: string; input_dtype: string; shape: number[]; quant_type: Quant4Type; blocksize: number; double_quant: boolean;
  tensors: Record<string, { key: string }>;
}
const manifest = JSON.parse(readFileSync(fixture('bnb', 'manifest.json'), 'utf8')) as { cases: Case[] };

let kernels: Kernels | null = null;
let unavailable = '';
before(async () => {
  try {
    kernels = await createKernels({ backend: 'wasm', threads: 2 });
  } catch (err) {
    unavailable = err instanceof Error ? err.message : String(err);
  }
});
after(async () => {
  await kernels?.dispose();
});

const same = (a: ArrayBufferView, b: Uint8Array): boolean => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);

test('wasm quantizeBlockwise4 / dequantizeQ4Rows reproduce every bnb fixture case', (t) => {
  if (kernels === null) {
    t.skip(`wasm kernels unavailable: ${unavailable}`);
    return;
  }
  const k = kernels;
  const readers = new Map<string, SafetensorsReader>();
  try {
    for (const c of manifest.cases) {
      let r = readers.get(c.file);
      if (r === undefined) readers.set(c.file, (r = SafetensorsReader.open(fixture('bnb', c.file))));
      const x = r.readF32(c.tensors.input.key);
      const n = x.length;
      const packed = new Uint8Array(Math.ceil(n / 2));
      const absmax = new Float32Array(Math.ceil(n / c.blocksize));
      k.quantizeBlockwise4(packed, absmax, x, n, c.blocksize, c.quant_type);
      assert.ok(same(packed, r.readBytes(c.tensors.packed.key)), `${c.id}: packed`);
      assert.ok(same(absmax, r.readBytes(c.tensors.absmax_f32.key)), `${c.id}: absmax`);
      if (c.double_quant) assert.ok(same(doubleQuantize(absmax).codes, r.readBytes(c.tensors.absmax.key)), `${c.id}: nested codes`);
      if (c.input_dtype === 'float32') {
        const q = quantizeTensor(x, c.shape, { quantType: c.quant_type, blockSize: c.blocksize, doubleQuant: c.double_quant, strategy: 'blockwise', zeroPoint: false });
        const out = new Float32Array(n);
        k.dequantizeQ4Rows(out, q, 0, q.rows);
        assert.ok(same(out, r.readBytes(c.tensors.dequant.key)), `${c.id}: dequantized`);
      }
    }
  } finally {
    for (const r of readers.values()) r.close();
  }
});
