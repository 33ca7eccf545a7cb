// Model folders: the fixtures, generation_config defaults, bnb-4bit detection, and refusals of
// folders without config.json or without weights.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findBnb4bitWeights, openHfFolder, resolveGenerationConfig } from '../../src/formats/hf-folder.js';
import { resolveModelConfig } from '../../src/formats/hf-config.js';
import { ConfigError, FormatError, IoError } from '../../src/errors.js';
import { fixture } from '../helpers/shared.js';

test('stories260K folder: config, tokenizer, generation config, weights', () => {
  const f = openHfFolder(fixture('models', 'stories260K'));
  try {
    assert.equal(f.config.numLayers, 5);
    assert.equal(f.tokenizer!.vocabSize, 512);
    assert.equal(f.weights.names().length, 47);
    assert.equal(f.isBnb4bit, false);
    const g = f.generationConfig;
    assert.deepEqual([g.bosTokenId, g.eosTokenIds, g.doSample, g.maxLength, g.maxNewTokens], [1, [2], false, 512, null]);
    assert.deepEqual([g.temperature, g.topK, g.topP, g.repetitionPenalty], [1, 50, 1, 1]);
  } finally {
    f.weights.close();
  }
});

test('bnb-4bit folder is detected from its quant_state tensors', () => {
  const f = openHfFolder(fixture('bnb-models', 'stories260K-nf4-dq'));
  try {
    assert.equal(f.isBnb4bit, true);
    assert.equal(f.config.quantization!.quantType, 'nf4');
    const refs = findBnb4bitWeights(f.weights.names());
    assert.equal(refs.length, 5 * 7);
    assert.ok(refs.some((r) => r.module === 'model.layers.0.self_attn.q_proj' && r.quantType === 'nf4'));
  } finally {
    f.weights.close();
  }
});

test('generation config: eos list overrides, token ids fall back to config.json, bad values refused', () => {
  const model = resolveModelConfig({ model_type: 'llama', eos_token_id: 2, pad_token_id: 0 });
  const g = resolveGenerationConfig({ eos_token_id: [2, 32000], temperature: 0.6, top_p: 0.9, max_new_tokens: 64 }, model);
  assert.deepEqual(g.eosTokenIds, [2, 32000]);
  assert.equal(g.padTokenId, 0);
  assert.equal(g.maxNewTokens, 64);
  assert.throws(() => resolveGenerationConfig({ top_p: 0 }, model), (e: unknown) => e instanceof ConfigError && e.field === 'top_p');
  assert.throws(() => resolveGenerationConfig({ do_sample: 'yes' }, model), ConfigError);
});

test('folders without config.json or without weights are refused, naming the path', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qlora-folder-'));
  try {
    assert.throws(() => openHfFolder(dir), (e: unknown) => e instanceof FormatError && e.message.includes(dir) && /config\.json/.test(e.message));
    copyFileSync(fixture('models', 'stories260K', 'config.json'), join(dir, 'config.json'));
    assert.throws(() => openHfFolder(dir), (e: unknown) => e instanceof FormatError && e.message.includes(dir) && /model\.safetensors/.test(e.message));
    copyFileSync(fixture('models', 'stories260K', 'model.safetensors'), join(dir, 'model.safetensors'));
    const f = openHfFolder(dir);
    assert.equal(f.tokenizer, null);
    f.weights.close();
    writeFileSync(join(dir, 'generation_config.json'), '{"max_length": 0}');
    assert.throws(() => openHfFolder(dir), (e: unknown) => e instanceof ConfigError && e.field === 'max_length');
    assert.throws(() => openHfFolder(join(dir, 'nope')), IoError);
    assert.throws(() => openHfFolder(join(dir, 'config.json')), IoError);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
