// Every quantization case of fixtures/bnb/manifest.json (bitsandbytes 0.50.2 default backend on
// CPU), encode and decode, byte for byte: packed codes, f32 absmax, double-quant u8 codes, nested
// absmax, nested offset (via torch's cascade mean), the quant_state JSON bytes, the decoded scales
// and the dequantized output in the input dtype (sign of zeros included).
// No CUDA/CPU corner case is excluded: these fixtures were made on the CPU path we implement.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { SafetensorsReader } from '../../src/formats/safetensors.js';
import { fixture } from '../helpers/shared.js';
import { quantizeTensor, QuantizedTensor } from '../../src/quant/quantized-tensor.js';
import { decodeDoubleQuantScales } from '../../src/quant/double-quant.js';
import { encodeQuantStateJson, parseQuantStateJson, type TorchFloatDtype } from '../../src/quant/quant-state.js';
import { codebookFor, DYNAMIC_MAP_SIGNED } from '../../src/quant/codebooks.js';
import type { Quant4Type } from '../../src/quant/types.js';

interface Case {
  id: string; file: string; input_dtype: TorchFloatDtype; shape: number[]; quant_type: Quant4Type;
  blocksize: number; double_quant: boolean; quant_state_json: string; nested_offset?: number;
  tensors: Record<string, { key: string; dtype: string; shape: number[] }>;
}

const manifest = JSON.parse(readFileSync(fixture('bnb', 'manifest.json'), 'utf8')) as { cases: Case[]; codebooks: Record<string, number[]> };
const readers = new Map<string, SafetensorsReader>();
const reader = (file: string): SafetensorsReader => {
  let r = readers.get(file);
  if (r === undefined) readers.set(file, (r = SafetensorsReader.open(fixture('bnb', file))));
  return r;
};

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function assertBytes(got: ArrayBufferView, want: Uint8Array, what: string): void {
  const g = bytesOf(got);
  assert.equal(g.length, want.length, `${what}: length`);
  for (let i = 0; i < g.length; i++) if (g[i] !== want[i]) assert.fail(`${what}: byte ${i} is ${g[i]}, expected ${want[i]}`);
}

test('manifest codebooks equal the literal tables', () => {
  assert.deepEqual(Array.from(codebookFor('nf4')), manifest.codebooks.nf4.map(Math.fround));
  assert.deepEqual(Array.from(codebookFor('fp4')), manifest.codebooks.fp4.map(Math.fround));
  assert.deepEqual(Array.from(DYNAMIC_MAP_SIGNED), manifest.codebooks.dynamic_map_signed_256.map(Math.fround));
});

test('the manifest has the 64 cases this test expects', () => {
  assert.equal(manifest.cases.length, 64);
});

for (const c of manifest.cases) {
  test(`bnb case ${c.id}`, () => {
    const r = reader(c.file);
    const t = (role: string): Uint8Array => r.readBytes(c.tensors[role].key);
    const x = r.readF32(c.tensors.input.key);
    const settings = { quantType: c.quant_type, blockSize: c.blocksize, doubleQuant: c.double_quant, strategy: 'blockwise', zeroPoint: false } as const;

    // Encode: our quantizer from the input.
    const q = quantizeTensor(x, c.shape, settings, { name: c.id, sourceDtype: c.input_dtype });
    assertBytes(q.packed, t('packed'), 'packed');
    assert.deepEqual(r.entry(c.tensors.packed.key).shape, [q.packed.length, 1]);
    if (c.double_quant) {
      const dq = q.dq!;
      assertBytes(dq.codes, t('absmax'), 'absmax u8');
      assertBytes(dq.nestedAbsmax, t('nested_absmax'), 'nested_absmax');
      assertBytes(new Float32Array([dq.offset]), t('nested_offset'), `nested_offset ${dq.offset}`);
      assertBytes(dq.nestedMap, t('nested_quant_map'), 'nested_quant_map');
      assertBytes(decodeDoubleQuantScales(dq), t('absmax_dq'), 'absmax_dq');
    } else {
      assertBytes(q.absmax!, t('absmax'), 'absmax f32');
    }
    assertBytes(q.codebook, t('quant_map'), 'quant_map');
    const stateKey = `quant_state.bitsandbytes__${c.quant_type}`;
    const json = encodeQuantStateJson({
      quantType: c.quant_type, blockSize: c.blocksize, dtype: c.input_dtype, shape: c.shape,
      nested: q.dq === null ? undefined : { blockSize: q.dq.nestedBlockSize, dtype: 'float32', offset: q.dq.offset },
    });
    assertBytes(json, t(stateKey), 'quant_state JSON');
    assert.equal(new TextDecoder().decode(json), c.quant_state_json);
    assertBytes(q.dequantizeToDtype(), t('dequant'), 'dequantized (encode path)');

    // Decode: only the stored tensors and JSON.
    const state = parseQuantStateJson(t(stateKey), { field: c.id });
    const storedAbsmax = t('absmax');
    const stored = new QuantizedTensor(
      state.shape, state.dtype, { ...settings, blockSize: state.blockSize }, t('packed'),
      state.nested === undefined ? new Float32Array(storedAbsmax.buffer) : null,
      state.nested === undefined ? null : {
        codes: storedAbsmax, nestedAbsmax: new Float32Array(t('nested_absmax').buffer),
        nestedMap: new Float32Array(t('nested_quant_map').buffer), offset: state.nested.offset, nestedBlockSize: state.nested.blockSize,
      },
      null, new Float32Array(t('quant_map').buffer), c.id,
    );
    assertBytes(stored.dequantizeToDtype(), t('dequant'), 'dequantized (decode path)');
  });
}

test('close fixture readers', () => {
  for (const r of readers.values()) r.close();
});
