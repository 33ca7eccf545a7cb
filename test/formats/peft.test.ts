import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { adapterTargets, loraScaleFor, parseAdapterConfig, readPeftAdapter, type LinearShape } from '../../src/formats/peft.js';
import { SafetensorsReader, writeSafetensors, type TensorToWrite } from '../../src/formats/safetensors.js';
import { ConfigError, FormatError, IoError, NumericError, ShapeError, UnsupportedError } from '../../src/errors.js';
import { fixture } from '../helpers/shared.js';

const GOLDEN = fixture('golden', 'stories260K-lora');

/** The Linear shapes of stories260K (FORMATS.md §11.3): E 64, Hkv·D 32, F 172, 5 layers. */
function stories260KLinears(): Map<string, LinearShape> {
  const m = new Map<string, LinearShape>();
  for (let i = 0; i < 5; i++) {
    const p = `model.layers.${i}`;
    m.set(`${p}.self_attn.q_proj`, { inFeatures: 64, outFeatures: 64 });
    m.set(`${p}.self_attn.k_proj`, { inFeatures: 64, outFeatures: 32 });
    m.set(`${p}.self_attn.v_proj`, { inFeatures: 64, outFeatures: 32 });
    m.set(`${p}.self_attn.o_proj`, { inFeatures: 64, outFeatures: 64 });
    m.set(`${p}.mlp.gate_proj`, { inFeatures: 64, outFeatures: 172 });
    m.set(`${p}.mlp.up_proj`, { inFeatures: 64, outFeatures: 172 });
    m.set(`${p}.mlp.down_proj`, { inFeatures: 172, outFeatures: 64 });
  }
  return m;
}

function goldenConfig(): Record<string, unknown> {
  return JSON.parse(readFileSync(join(GOLDEN, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
}

/** A temp adapter folder: config (golden one with overrides) and tensors. */
function makeAdapter(config: Record<string, unknown>, tensors: TensorToWrite[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'qlora-peft-'));
  writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify(config, null, 2));
  writeSafetensors(join(dir, 'adapter_model.safetensors'), tensors, { format: 'pt' });
  return dir;
}

function f32Tensor(name: string, shape: number[], fill = 0.01): TensorToWrite {
  const n = shape.reduce((a, b) => a * b, 1);
  return { name, dtype: 'F32', shape, data: new Uint8Array(new Float32Array(n).fill(fill).buffer) };
}

/** A rank-r adapter on q_proj and v_proj of every layer of stories260K. */
function qvTensors(r: number): TensorToWrite[] {
  const out: TensorToWrite[] = [];
  for (let i = 0; i < 5; i++) {
    const p = `base_model.model.model.layers.${i}.self_attn`;
    out.push(f32Tensor(`${p}.q_proj.lora_A.weight`, [r, 64]), f32Tensor(`${p}.q_proj.lora_B.weight`, [64, r]));
    out.push(f32Tensor(`${p}.v_proj.lora_A.weight`, [r, 64]), f32Tensor(`${p}.v_proj.lora_B.weight`, [32, r]));
  }
  return out;
}

const qvConfig = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  peft_type: 'LORA', task_type: 'CAUSAL_LM', r: 2, lora_alpha: 4, target_modules: ['q_proj', 'v_proj'], use_rslora: false, ...extra,
});

test('reads the golden PEFT adapter of stories260K with the right shapes, scale and values', () => {
  const adapter = readPeftAdapter(GOLDEN, stories260KLinears());
  assert.equal(adapter.config.r, 4);
  assert.equal(adapter.config.loraAlpha, 8);
  assert.equal(adapter.config.baseModelNameOrPath, 'stories260K/hf');
  assert.equal(adapter.modules.length, 35);
  const st = SafetensorsReader.open(join(GOLDEN, 'adapter_model.safetensors'));
  try {
    for (const m of adapter.modules) {
      assert.equal(m.r, 4);
      assert.equal(m.scale, 2);
      assert.deepEqual(m.A, st.readF32(`base_model.model.${m.module}.lora_A.weight`));
      assert.deepEqual(m.B, st.readF32(`base_model.model.${m.module}.lora_B.weight`));
    }
  } finally {
    st.close();
  }
  const down = adapter.modules.find((m) => m.module === 'model.layers.0.mlp.down_proj')!;
  assert.equal(down.A.length, 4 * 172);
  assert.equal(down.B.length, 64 * 4);
});

test('target_modules semantics: suffix list, regex, default, exclude, layers_to_transform', () => {
  const file = 'adapter_config.json';
  const list = parseAdapterConfig({ peft_type: 'LORA', target_modules: ['q_proj'] }, file);
  assert.ok(adapterTargets(list, 'model.layers.0.self_attn.q_proj'));
  assert.ok(!adapterTargets(list, 'model.layers.0.self_attn.k_proj'));
  assert.ok(!adapterTargets(list, 'model.layers.0.self_attn.xq_proj'));
  const regex = parseAdapterConfig({ peft_type: 'LORA', target_modules: '.*layers\\.1\\..*(q|k)_proj' }, file);
  assert.ok(adapterTargets(regex, 'model.layers.1.self_attn.k_proj'));
  assert.ok(!adapterTargets(regex, 'model.layers.0.self_attn.k_proj'));
  const dflt = parseAdapterConfig({ peft_type: 'LORA', target_modules: null }, file);
  assert.deepEqual(dflt.targetModules, ['q_proj', 'v_proj']);
  assert.equal(dflt.r, 8);
  const excl = parseAdapterConfig({ peft_type: 'LORA', target_modules: 'all-linear', exclude_modules: ['down_proj'] }, file);
  assert.ok(adapterTargets(excl, 'model.layers.0.mlp.up_proj'));
  assert.ok(!adapterTargets(excl, 'model.layers.0.mlp.down_proj'));
  assert.ok(!adapterTargets(excl, 'lm_head'));
  const layers = parseAdapterConfig({ peft_type: 'LORA', target_modules: ['q_proj'], layers_to_transform: [1, 3] }, file);
  assert.ok(adapterTargets(layers, 'model.layers.3.self_attn.q_proj'));
  assert.ok(!adapterTargets(layers, 'model.layers.2.self_attn.q_proj'));
  const named = parseAdapterConfig({ peft_type: 'LORA', target_modules: ['q_proj'], layers_to_transform: 0, layers_pattern: 'layers' }, file);
  assert.ok(adapterTargets(named, 'model.layers.0.self_attn.q_proj'));
  assert.ok(!adapterTargets(named, 'model.layers.10.self_attn.q_proj'));
  const exact = parseAdapterConfig({ peft_type: 'LORA', target_modules: ['model.layers.2.self_attn.q_proj'], layers_to_transform: [0] }, file);
  assert.ok(adapterTargets(exact, 'model.layers.2.self_attn.q_proj'), 'an exact module name is not filtered by layer, as in PEFT');
  const regexLayers = parseAdapterConfig({ peft_type: 'LORA', target_modules: '.*q_proj', layers_to_transform: [1] }, file);
  assert.ok(adapterTargets(regexLayers, 'model.layers.2.self_attn.q_proj'), 'a regex target ignores layers_to_transform, as PEFT does');
});

test('scale: alpha/r, rsLoRA alpha/sqrt(r), rank_pattern and alpha_pattern', () => {
  const file = 'adapter_config.json';
  const c = parseAdapterConfig(
    { peft_type: 'LORA', r: 8, lora_alpha: 16, target_modules: ['q_proj', 'v_proj'], rank_pattern: { 'layers.0.self_attn.q_proj': 4 }, alpha_pattern: { v_proj: 2 } },
    file,
  );
  assert.deepEqual(loraScaleFor(c, 'model.layers.1.self_attn.q_proj'), { r: 8, alpha: 16, scale: 2 });
  assert.deepEqual(loraScaleFor(c, 'model.layers.0.self_attn.q_proj'), { r: 4, alpha: 16, scale: 4 });
  assert.deepEqual(loraScaleFor(c, 'model.layers.10.self_attn.q_proj'), { r: 8, alpha: 16, scale: 2 });
  assert.deepEqual(loraScaleFor(c, 'model.layers.0.self_attn.v_proj'), { r: 8, alpha: 2, scale: 0.25 });
  const rs = parseAdapterConfig({ peft_type: 'LORA', r: 16, lora_alpha: 8, use_rslora: true }, file);
  assert.equal(loraScaleFor(rs, 'model.layers.0.self_attn.q_proj').scale, 2);
});

test('rank_pattern is honoured when reading tensors', () => {
  const tensors = qvTensors(2).map((t) =>
    t.name.includes('layers.0.self_attn.q_proj') ? f32Tensor(t.name, t.name.includes('lora_A') ? [3, 64] : [64, 3]) : t,
  );
  const dir = makeAdapter(qvConfig({ rank_pattern: { 'layers.0.self_attn.q_proj': 3 } }), tensors);
  try {
    const a = readPeftAdapter(dir, stories260KLinears());
    assert.equal(a.modules.length, 10);
    const q0 = a.modules.find((m) => m.module === 'model.layers.0.self_attn.q_proj')!;
    assert.equal(q0.r, 3);
    assert.equal(q0.scale, 4 / 3);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('refuses DoRA, lora bias, modules_to_save, other PEFT types', () => {
  const file = 'adapter_config.json';
  assert.throws(() => parseAdapterConfig({ ...goldenConfig(), use_dora: true }, file), (e: unknown) => e instanceof UnsupportedError && e.field === 'use_dora');
  assert.throws(() => parseAdapterConfig({ ...goldenConfig(), lora_bias: true }, file), UnsupportedError);
  assert.throws(() => parseAdapterConfig({ ...goldenConfig(), modules_to_save: ['lm_head'] }, file), UnsupportedError);
  assert.throws(() => parseAdapterConfig({ ...goldenConfig(), bias: 'all' }, file), UnsupportedError);
  assert.throws(() => parseAdapterConfig({ ...goldenConfig(), peft_type: 'IA3' }, file), (e: unknown) => e instanceof UnsupportedError && e.field === 'peft_type');
  assert.throws(() => parseAdapterConfig({ ...goldenConfig(), r: 0 }, file), (e: unknown) => e instanceof FormatError && e.field === 'r');
  assert.throws(() => parseAdapterConfig({ ...goldenConfig(), r: 2.5 }, file), FormatError);
  assert.throws(() => parseAdapterConfig({ ...goldenConfig(), lora_alpha: 'x' }, file), FormatError);
  assert.throws(() => parseAdapterConfig({ ...goldenConfig(), use_rslora: 'yes' }, file), FormatError);
  assert.throws(() => parseAdapterConfig({ ...goldenConfig(), target_modules: [] }, file), FormatError);
  assert.throws(() => parseAdapterConfig({ ...goldenConfig(), target_modules: '(' }, file), FormatError);
  assert.throws(() => parseAdapterConfig({ ...goldenConfig(), rank_pattern: { q_proj: -1 } }, file), FormatError);
});

test('refuses DoRA magnitude tensors and unknown keys in the weights', () => {
  const dora = makeAdapter(qvConfig(), [...qvTensors(2), f32Tensor('base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector', [64])]);
  const other = makeAdapter(qvConfig(), [...qvTensors(2), f32Tensor('base_model.model.lm_head.weight', [512, 64])]);
  const named = makeAdapter(qvConfig(), [...qvTensors(2), f32Tensor('base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight', [2, 64])]);
  try {
    assert.throws(() => readPeftAdapter(dora, stories260KLinears()), UnsupportedError);
    assert.throws(() => readPeftAdapter(other, stories260KLinears()), (e: unknown) => e instanceof FormatError && e.field === 'base_model.model.lm_head.weight');
    assert.throws(() => readPeftAdapter(named, stories260KLinears()), (e: unknown) => e instanceof FormatError && /in-memory/.test(e.message));
  } finally {
    for (const d of [dora, other, named]) rmSync(d, { recursive: true });
  }
});

test('shape, rank, missing and foreign-module errors name the tensor', () => {
  const linears = stories260KLinears();
  const wrongRank = makeAdapter(qvConfig({ r: 4 }), qvTensors(2));
  const missingB = makeAdapter(qvConfig(), qvTensors(2).filter((t) => t.name !== 'base_model.model.model.layers.3.self_attn.v_proj.lora_B.weight'));
  const notTargeted = makeAdapter(qvConfig({ target_modules: ['q_proj'] }), qvTensors(2));
  const foreign = makeAdapter(qvConfig(), [...qvTensors(2), f32Tensor('base_model.model.model.layers.9.self_attn.q_proj.lora_A.weight', [2, 64])]);
  const wrongIn = makeAdapter(qvConfig(), qvTensors(2).map((t) => (t.name.endsWith('layers.2.self_attn.q_proj.lora_A.weight') ? f32Tensor(t.name, [2, 65]) : t)));
  const nan = makeAdapter(qvConfig(), qvTensors(2).map((t) => (t.name.endsWith('layers.1.self_attn.v_proj.lora_B.weight') ? f32Tensor(t.name, [32, 2], NaN) : t)));
  try {
    assert.throws(() => readPeftAdapter(wrongRank, linears), (e: unknown) => e instanceof ShapeError && e.field!.endsWith('lora_A.weight') && e.expected === '[4,64]');
    assert.throws(() => readPeftAdapter(missingB, linears), (e: unknown) => e instanceof FormatError && e.field === 'base_model.model.model.layers.3.self_attn.v_proj.lora_B.weight');
    assert.throws(() => readPeftAdapter(notTargeted, linears), (e: unknown) => e instanceof FormatError && /does not target/.test(e.message));
    assert.throws(() => readPeftAdapter(foreign, linears), (e: unknown) => e instanceof ShapeError && e.got === 'model.layers.9.self_attn.q_proj');
    assert.throws(() => readPeftAdapter(wrongIn, linears), (e: unknown) => e instanceof ShapeError && e.expected === '[2,64]' && e.got === '[2,65]');
    assert.throws(() => readPeftAdapter(nan, linears), NumericError);
    // An adapter whose targets match nothing in the model.
    const none = new Map<string, LinearShape>([['model.layers.0.mlp.up_proj', { inFeatures: 64, outFeatures: 172 }]]);
    const empty = makeAdapter(qvConfig(), []);
    try {
      assert.throws(() => readPeftAdapter(empty, none), ConfigError);
    } finally {
      rmSync(empty, { recursive: true });
    }
  } finally {
    for (const d of [wrongRank, missingB, notTargeted, foreign, wrongIn, nan]) rmSync(d, { recursive: true });
  }
});

test('missing files: typed errors with hints (sub-folder adapters, legacy .bin)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qlora-peft-'));
  try {
    mkdirSync(join(dir, 'my_adapter'));
    copyFileSync(join(GOLDEN, 'adapter_config.json'), join(dir, 'my_adapter', 'adapter_config.json'));
    assert.throws(() => readPeftAdapter(dir, stories260KLinears()), (e: unknown) => e instanceof IoError && /my_adapter/.test(e.message));
    writeFileSync(join(dir, 'my_adapter', 'adapter_model.bin'), 'pickle');
    assert.throws(
      () => readPeftAdapter(join(dir, 'my_adapter'), stories260KLinears()),
      (e: unknown) => e instanceof FormatError && /safe_serialization/.test(e.message),
    );
    writeFileSync(join(dir, 'adapter_config.json'), '{"peft_type": "LORA", "r": 4, "r": 8}');
    assert.throws(() => readPeftAdapter(dir, stories260KLinears()), (e: unknown) => e instanceof FormatError && /duplicate/.test(e.message));
  } finally {
    rmSync(dir, { recursive: true });
  }
});
