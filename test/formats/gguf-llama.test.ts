// llama HF <-> GGUF mapping: names both ways, the Q/K permutation and its inverse, the config
// rebuilt from metadata, and GgufTensorSource against the HF checkpoints of the same models.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture } from '../helpers/shared.js';
import { UnsupportedError } from '../../src/errors.js';
import { loadModelConfig } from '../../src/formats/hf-config.js';
import { SafetensorsReader } from '../../src/formats/safetensors.js';
import { readGgufFile, readTensorBytes } from '../../src/formats/gguf/reader.js';
import { writeGguf } from '../../src/formats/gguf/writer.js';
import { GgufValueType } from '../../src/formats/gguf/types.js';
import { GgmlType } from '../../src/formats/gguf/ggml-types.js';
import { GgufTensorSource, ggufToHfName, ggufToModelConfig, hfToGgufName, permuteQkGgufToHf, permuteQkHfToGguf } from '../../src/formats/gguf/llama.js';

const STORIES_GGUF = fixture('gguf', 'stories260K-F32.gguf');
const STORIES_HF = fixture('models', 'stories260K');
const TINY_GGUF = fixture('models', 'llama-2-tiny-random', 'llama-2-tiny-random.gguf');
const TINY_HF = fixture('models', 'llama-2-tiny-random', 'hf');

test('tensor names map both ways (§8.2)', () => {
  const pairs: Array<[string, string]> = [
    ['token_embd.weight', 'model.embed_tokens.weight'], ['output_norm.weight', 'model.norm.weight'], ['output.weight', 'lm_head.weight'],
    ['blk.0.attn_norm.weight', 'model.layers.0.input_layernorm.weight'], ['blk.12.attn_q.weight', 'model.layers.12.self_attn.q_proj.weight'],
    ['blk.3.attn_k.weight', 'model.layers.3.self_attn.k_proj.weight'], ['blk.3.attn_v.weight', 'model.layers.3.self_attn.v_proj.weight'],
    ['blk.3.attn_output.weight', 'model.layers.3.self_attn.o_proj.weight'], ['blk.3.ffn_norm.weight', 'model.layers.3.post_attention_layernorm.weight'],
    ['blk.3.ffn_gate.weight', 'model.layers.3.mlp.gate_proj.weight'], ['blk.3.ffn_up.weight', 'model.layers.3.mlp.up_proj.weight'],
    ['blk.3.ffn_down.weight', 'model.layers.3.mlp.down_proj.weight'], ['blk.1.attn_q.bias', 'model.layers.1.self_attn.q_proj.bias'],
  ];
  for (const [g, h] of pairs) {
    assert.equal(ggufToHfName(g), h);
    assert.equal(hfToGgufName(h), g);
  }
  assert.equal(hfToGgufName('model.layers.0.self_attn.rotary_emb.inv_freq'), undefined);
  assert.equal(ggufToHfName('blk.0.attn_qkv.weight'), undefined);
  assert.equal(ggufToHfName('rope_freqs.weight'), undefined);
});

test('Q/K permutation: §8.3 index formula, inverse, any element type', () => {
  const nHeads = 2, D = 4, cols = 3, rows = nHeads * D;
  const hf = Float32Array.from({ length: rows * cols }, (_, k) => k);
  const gguf = permuteQkHfToGguf(hf, rows, nHeads);
  for (let h = 0; h < nHeads; h++) for (let i = 0; i < D / 2; i++) for (let j = 0; j < 2; j++) {
    for (let c = 0; c < cols; c++) assert.equal(gguf[(h * D + 2 * i + j) * cols + c], hf[(h * D + j * (D / 2) + i) * cols + c]);
  }
  assert.deepEqual(permuteQkGgufToHf(gguf, rows, nHeads), hf);
  const bytes = Uint8Array.from({ length: rows * 18 }, (_, k) => k % 251);
  assert.deepEqual(permuteQkGgufToHf(permuteQkHfToGguf(bytes, rows, nHeads), rows, nHeads), bytes);
  assert.ok(permuteQkHfToGguf(bytes, rows, nHeads) instanceof Uint8Array);
  assert.throws(() => permuteQkHfToGguf(hf, 6, 4), /heads of even size/);
});

test('ggufToModelConfig equals the resolved config.json of the same models', () => {
  for (const [gguf, hf] of [[STORIES_GGUF, STORIES_HF], [TINY_GGUF, TINY_HF]]) {
    const a = ggufToModelConfig(readGgufFile(gguf));
    const b = loadModelConfig(hf);
    // GGUF stores epsilon as f32: stories260K's config.json says 1e-05, its GGUF the f32 nearest.
    const pick = (c: typeof a): unknown => ({ ...c, raw: undefined, torchDtype: undefined, rmsNormEps: Math.fround(c.rmsNormEps) });
    assert.deepEqual(pick(a), pick(b), gguf);
  }
});

test('stories260K-F32.gguf through GgufTensorSource equals model.safetensors exactly', () => {
  const src = GgufTensorSource.open(STORIES_GGUF);
  const ref = SafetensorsReader.open(join(STORIES_HF, 'model.safetensors'));
  try {
    assert.deepEqual(src.names(), ref.names());
    for (const name of ref.names()) {
      assert.deepEqual(src.entry(name).shape, ref.entry(name).shape, name);
      assert.equal(src.entry(name).dtype, 'F32');
      assert.deepEqual(src.readF32(name), ref.readF32(name), name);
      assert.deepEqual(src.readBytes(name), ref.readBytes(name), name);
    }
    assert.equal(src.entry('model.layers.0.self_attn.k_proj.weight').permuteHeads, 4);
    assert.equal(src.metadata['general.architecture'], 'llama');
  } finally {
    src.close();
    ref.close();
  }
});

test('llama-2-tiny-random.gguf through GgufTensorSource equals its hf/ folder (F16 -> f32)', () => {
  const src = GgufTensorSource.open(TINY_GGUF);
  const ref = SafetensorsReader.open(join(TINY_HF, 'model.safetensors'));
  try {
    assert.deepEqual(src.names(), ref.names());
    for (const name of ref.names()) {
      assert.deepEqual(src.entry(name).shape, ref.entry(name).shape, name);
      assert.equal(src.entry(name).dtype, ref.entry(name).dtype, name);
      assert.deepEqual(src.readF32(name), ref.readF32(name), name);
    }
  } finally {
    src.close();
    ref.close();
  }
});

test('quantized GGUF: entries expose the ggml type, readF32 dequantizes and unpermutes', () => {
  const src = GgufTensorSource.open(fixture('gguf', 'stories260K-Q4_0.gguf'));
  const e = src.entry('model.layers.0.self_attn.q_proj.weight');
  assert.equal(e.ggmlType, GgmlType.Q4_0);
  assert.equal(e.dtype, 'U8');
  assert.deepEqual(e.shape, [64, 64]);
  const f32 = GgufTensorSource.open(STORIES_GGUF);
  const x = f32.readF32(e.name), y = src.readF32(e.name);
  let worst = 0;
  for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]));
  assert.ok(worst < 0.1, `Q4_0 q_proj max error ${worst}`); // unpermuted rows line up with the F32 ones
  assert.equal(src.readBytes(e.name).length, e.byteLength);
});

test('non-llama architectures and foreign tensors are refused by name', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gguf-llama-'));
  try {
    const g = readGgufFile(STORIES_GGUF);
    const md = [...g.metadata].map(([k, v]) => (k === 'general.architecture' ? [k, { type: GgufValueType.STRING, value: 'qwen2' }] : [k, v]) as [string, typeof v]);
    const p = join(dir, 'qwen.gguf');
    writeGguf(p, { metadata: md, tensors: g.tensors.map((t) => ({ name: t.name, ne: t.ne, type: t.type, data: () => readTensorBytes(g, t) })) });
    assert.throws(() => GgufTensorSource.open(p), (e: unknown) => e instanceof UnsupportedError && /qwen2/.test(e.message));
    const p2 = join(dir, 'extra.gguf');
    writeGguf(p2, { metadata: [...g.metadata], tensors: [...g.tensors.map((t) => ({ name: t.name, ne: t.ne, type: t.type, data: () => readTensorBytes(g, t) })), { name: 'blk.0.attn_qkv.weight', ne: [4], type: GgmlType.F32, data: new Uint8Array(16) }] });
    assert.throws(() => GgufTensorSource.open(p2), (e: unknown) => e instanceof UnsupportedError && e.field === 'blk.0.attn_qkv.weight');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('llama3 RoPE scaling is rebuilt from rope_freqs.weight; other divisors are refused', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gguf-rope-'));
  try {
    const g = readGgufFile(STORIES_GGUF);
    const theta = 500000, D = 8, factor = 8;
    // conversion/llama.py generate_extra_tensors with low 1, high 4, original context 8192.
    const divisors = Float32Array.from({ length: D / 2 }, (_, i) => {
      const wavelen = (2 * Math.PI) / theta ** (-(2 * i) / D);
      if (wavelen < 8192 / 4) return 1;
      if (wavelen > 8192) return factor;
      const smooth = (8192 / wavelen - 1) / 3;
      return 1 / ((1 - smooth) / factor + smooth);
    });
    assert.deepEqual(Array.from(divisors.slice(0, 2)), [1, 1]);
    assert.equal(divisors[3], factor);
    assert.ok(divisors[2] > 1 && divisors[2] < factor);
    const write = (values: Float32Array): string => {
      const p = join(dir, 'llama3.gguf');
      const md = [...g.metadata].map(([k, v]) => (k === 'llama.rope.freq_base' ? [k, { type: GgufValueType.FLOAT32, value: theta }] : [k, v]) as [string, typeof v]);
      writeGguf(p, {
        metadata: md,
        tensors: [
          ...g.tensors.map((t) => ({ name: t.name, ne: t.ne, type: t.type, data: () => readTensorBytes(g, t) })),
          { name: 'rope_freqs.weight', ne: [D / 2], type: GgmlType.F32, data: new Uint8Array(values.buffer) },
        ],
      });
      return p;
    };
    const p = write(divisors);
    const config = ggufToModelConfig(readGgufFile(p));
    assert.deepEqual(config.rope, { theta, type: 'llama3', factor, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 });
    const src = GgufTensorSource.open(p);
    assert.equal(src.has('rope_freqs.weight'), false);
    assert.equal(src.names().length, 47);
    const wrong = divisors.slice();
    wrong[2] *= 1.01;
    assert.throws(() => ggufToModelConfig(readGgufFile(write(wrong))), (e: unknown) => e instanceof UnsupportedError && e.field === 'rope_freqs.weight[2]');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
