// config.json resolution: the fixtures, per-architecture defaults, RoPE spellings (v4/v5/old key),
// bitsandbytes quantization_config, and refusal of missing or contradictory fields.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadModelConfig, parseConfigJson, resolveModelConfig } from '../../src/formats/hf-config.js';
import { ConfigError, FormatError, UnsupportedError } from '../../src/errors.js';
import { fixture } from '../helpers/shared.js';

const LLAMA = { architectures: ['LlamaForCausalLM'], model_type: 'llama' };

function refuses(raw: Record<string, unknown>, kind: typeof ConfigError | typeof UnsupportedError, field: string): void {
  assert.throws(
    () => resolveModelConfig(raw, '/x/config.json'),
    (err: unknown) => {
      assert.ok(err instanceof kind, `expected ${kind.name}, got ${String(err)}`);
      assert.equal(err.field, field);
      assert.equal(err.file, '/x/config.json');
      return true;
    },
  );
}

test('stories260K config (v4 spelling) resolves to FORMATS §14.2', () => {
  const c = loadModelConfig(fixture('models', 'stories260K'));
  assert.equal(c.architecture, 'llama');
  assert.equal(c.architectureClass, 'LlamaForCausalLM');
  assert.deepEqual(
    [c.hiddenSize, c.intermediateSize, c.numLayers, c.numHeads, c.numKvHeads, c.headDim, c.vocabSize, c.maxPositionEmbeddings],
    [64, 172, 5, 8, 4, 8, 512, 512],
  );
  assert.equal(c.rmsNormEps, 1e-5);
  assert.deepEqual(c.rope, { theta: 10000, type: 'default', factor: 1, lowFreqFactor: null, highFreqFactor: null, originalMaxPositionEmbeddings: null });
  assert.equal(c.tieWordEmbeddings, true);
  assert.equal(c.attentionBias, false);
  assert.equal(c.bosTokenId, 1);
  assert.deepEqual(c.eosTokenIds, [2]);
  assert.equal(c.padTokenId, null);
  assert.equal(c.torchDtype, 'float32');
  assert.equal(c.quantization, null);
  assert.equal(c.slidingWindow, null);
  assert.ok(Object.isFrozen(c) && Object.isFrozen(c.rope) && Object.isFrozen(c.eosTokenIds));
});

test('bnb stories260K config (v5 spelling: dtype, rope_parameters) with quantization_config', () => {
  const c = loadModelConfig(fixture('bnb-models', 'stories260K-nf4-dq', 'config.json'));
  assert.equal(c.torchDtype, 'float32');
  assert.equal(c.rope.theta, 10000);
  assert.equal(c.rope.type, 'default');
  const q = c.quantization!;
  assert.equal(q.quantType, 'nf4');
  assert.equal(q.useDoubleQuant, true);
  assert.equal(q.computeDtype, 'float32');
  assert.equal(q.quantStorage, 'uint8');
  assert.equal(q.skipModules, null);
  assert.equal(q.raw.llm_int8_threshold, 6);
});

test('llama-2-tiny-random: f32 epsilon widened to f64 is kept as written', () => {
  const c = loadModelConfig(fixture('models', 'llama-2-tiny-random', 'hf'));
  assert.equal(c.rmsNormEps, 9.999999747378752e-6);
  assert.equal(c.headDim, 4);
  assert.equal(c.tieWordEmbeddings, false);
  assert.equal(c.torchDtype, 'float16');
});

test('defaults per architecture (Llama, Mistral, Qwen2)', () => {
  const llama = resolveModelConfig({ ...LLAMA });
  assert.deepEqual([llama.vocabSize, llama.hiddenSize, llama.intermediateSize, llama.numKvHeads, llama.headDim], [32000, 4096, 11008, 32, 128]);
  assert.equal(llama.rmsNormEps, 1e-6);
  assert.equal(llama.maxPositionEmbeddings, 2048);
  assert.deepEqual(llama.eosTokenIds, [2]);
  const mistral = resolveModelConfig({ architectures: ['MistralForCausalLM'] });
  assert.equal(mistral.architecture, 'mistral');
  assert.deepEqual([mistral.numKvHeads, mistral.intermediateSize, mistral.slidingWindow, mistral.maxPositionEmbeddings], [8, 14336, 4096, 131072]);
  assert.equal(resolveModelConfig({ model_type: 'mistral', sliding_window: null }).slidingWindow, null);
  const qwen = resolveModelConfig({ architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', eos_token_id: [151643, 151645], bos_token_id: 151643 });
  assert.equal(qwen.attentionBias, true);
  assert.equal(qwen.outputProjBias, false);
  assert.equal(qwen.slidingWindow, null);
  assert.deepEqual(qwen.eosTokenIds, [151643, 151645]);
  assert.equal(resolveModelConfig({ model_type: 'qwen2', use_sliding_window: true }).slidingWindow, 4096);
  const biased = resolveModelConfig({ ...LLAMA, attention_bias: true, mlp_bias: true });
  assert.deepEqual([biased.attentionBias, biased.outputProjBias, biased.mlpBias], [true, true, true]);
});

test('RoPE: rope_parameters (v5), rope_scaling (v4), old key "type", llama3 and linear', () => {
  const llama3 = {
    factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_position_embeddings: 8192, rope_type: 'llama3',
  };
  const v4 = resolveModelConfig({ ...LLAMA, rope_theta: 500000.0, rope_scaling: llama3 });
  assert.deepEqual(v4.rope, { theta: 500000, type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 });
  const v5 = resolveModelConfig({ ...LLAMA, rope_parameters: { ...llama3, rope_theta: 500000.0 } });
  assert.deepEqual(v5.rope, v4.rope);
  const nested = resolveModelConfig({ ...LLAMA, rope_parameters: { full_attention: { ...llama3, rope_theta: 500000.0 } } });
  assert.deepEqual(nested.rope, v4.rope);
  const old = resolveModelConfig({ ...LLAMA, rope_scaling: { type: 'linear', factor: 2.0 } });
  assert.equal(old.rope.type, 'linear');
  assert.equal(old.rope.factor, 2);
  assert.equal(old.rope.theta, 10000);
  refuses({ ...LLAMA, rope_scaling: { type: 'linear' } }, ConfigError, 'rope_scaling.factor');
  refuses({ ...LLAMA, rope_scaling: { rope_type: 'llama3', factor: 8 } }, ConfigError, 'rope_scaling.low_freq_factor');
  refuses({ ...LLAMA, rope_scaling: { rope_type: 'wobbly' } }, ConfigError, 'rope_scaling.rope_type');
  refuses({ ...LLAMA, rope_scaling: { type: 'yarn', factor: 4 } }, UnsupportedError, 'rope_scaling.type');
  refuses({ ...LLAMA, rope_theta: -1 }, ConfigError, 'rope_theta');
});

test('unsupported architectures are refused by name with the supported list', () => {
  assert.throws(
    () => resolveModelConfig({ architectures: ['GPT2LMHeadModel'], model_type: 'gpt2' }),
    (e: unknown) => e instanceof UnsupportedError && /GPT2LMHeadModel/.test(e.message) && /LlamaForCausalLM/.test(e.message),
  );
  refuses({ model_type: 'gemma' }, UnsupportedError, 'model_type');
  refuses({}, ConfigError, 'architectures');
  refuses({ architectures: ['LlamaForCausalLM'], model_type: 'qwen2' }, ConfigError, 'model_type');
  refuses({ architectures: 'LlamaForCausalLM' }, ConfigError, 'architectures');
  refuses({ ...LLAMA, hidden_act: 'gelu' }, UnsupportedError, 'hidden_act');
});

test('missing or contradictory sizes', () => {
  refuses({ ...LLAMA, hidden_size: 100, num_attention_heads: 3 }, ConfigError, 'num_attention_heads');
  // head_dim present: hidden_size need not divide.
  assert.equal(resolveModelConfig({ ...LLAMA, hidden_size: 100, num_attention_heads: 3, num_key_value_heads: 1, head_dim: 32 }).headDim, 32);
  refuses({ ...LLAMA, num_attention_heads: 8, num_key_value_heads: 3 }, ConfigError, 'num_key_value_heads');
  refuses({ ...LLAMA, hidden_size: 0 }, ConfigError, 'hidden_size');
  refuses({ ...LLAMA, num_hidden_layers: -2 }, ConfigError, 'num_hidden_layers');
  refuses({ ...LLAMA, vocab_size: 1.5 }, ConfigError, 'vocab_size');
  refuses({ ...LLAMA, intermediate_size: '11008' }, ConfigError, 'intermediate_size');
  refuses({ ...LLAMA, rms_norm_eps: 0 }, ConfigError, 'rms_norm_eps');
  refuses({ ...LLAMA, tie_word_embeddings: 'yes' }, ConfigError, 'tie_word_embeddings');
  refuses({ ...LLAMA, bos_token_id: 40000 }, ConfigError, 'bos_token_id');
  refuses({ ...LLAMA, eos_token_id: [2, 'x'] }, ConfigError, 'eos_token_id');
  refuses({ ...LLAMA, torch_dtype: 'int8' }, ConfigError, 'torch_dtype');
});

test('quantization_config: class defaults for missing keys, other methods refused', () => {
  const minimal = resolveModelConfig({ ...LLAMA, quantization_config: { load_in_4bit: true, quant_method: 'bitsandbytes' } }).quantization!;
  assert.equal(minimal.quantType, 'fp4'); // the class default is fp4, not nf4
  assert.equal(minimal.useDoubleQuant, false);
  assert.equal(minimal.computeDtype, 'float32');
  assert.equal(minimal.quantStorage, 'uint8');
  const torchNames = resolveModelConfig({ ...LLAMA, quantization_config: { load_in_4bit: true, bnb_4bit_compute_dtype: 'torch.bfloat16', bnb_4bit_quant_type: 'nf4' } }).quantization!;
  assert.equal(torchNames.computeDtype, 'bfloat16');
  refuses({ ...LLAMA, quantization_config: { quant_method: 'gptq', bits: 4 } }, UnsupportedError, 'quantization_config.quant_method');
  refuses({ ...LLAMA, quantization_config: { quant_method: 'bitsandbytes', load_in_8bit: true } }, UnsupportedError, 'quantization_config.load_in_4bit');
  refuses({ ...LLAMA, quantization_config: { load_in_4bit: true, bnb_4bit_quant_type: 'int4' } }, ConfigError, 'quantization_config.bnb_4bit_quant_type');
});

test('config.json that is not JSON, has duplicate keys, or is missing', () => {
  assert.throws(() => parseConfigJson('{"hidden_size": 8,', '/x/config.json'), FormatError);
  assert.throws(() => parseConfigJson('{"hidden_size": 8, "hidden_size": 16}', '/x/config.json'), (e: unknown) => e instanceof FormatError && e.field === 'hidden_size');
  assert.throws(() => parseConfigJson('[]', '/x/config.json'), ConfigError);
  assert.throws(() => loadModelConfig(fixture('tokenizers', 'gpt2')), /config\.json/);
});
