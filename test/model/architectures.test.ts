// Architecture options of the one LlamaModel, on tiny random models: which projections carry a
// bias (Qwen2: q/k/v only; Llama attention_bias: all four; mlp_bias), tied vs untied heads,
// Mistral's sliding window (refused beyond the window, which the kernels do not implement).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RefKernels } from '../../src/kernels/ref/index.js';
import { tinyModel } from './tiny-model.js';

const BASE = { vocab_size: 11, hidden_size: 8, intermediate_size: 6, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1 };

describe('architecture options', () => {
  const kernels = new RefKernels();

  it('qwen2: q/k/v biases, no o_proj or mlp bias', () => {
    const m = tinyModel(kernels, { ...BASE, model_type: 'qwen2' }, 1);
    const p = 'model.layers.0';
    for (const n of ['q_proj', 'k_proj', 'v_proj']) assert.ok(m.linear(`${p}.self_attn.${n}`).bias !== null, n);
    assert.equal(m.linear(`${p}.self_attn.o_proj`).bias, null);
    for (const n of ['gate_proj', 'up_proj', 'down_proj']) assert.equal(m.linear(`${p}.mlp.${n}`).bias, null);
    m.dispose();
  });

  it('llama attention_bias and mlp_bias: every projection has a bias; untied head has its own weight', () => {
    const m = tinyModel(kernels, { ...BASE, model_type: 'llama', attention_bias: true, mlp_bias: true, tie_word_embeddings: false }, 2);
    for (const lin of m.linears()) if (lin.name !== 'lm_head') assert.ok(lin.bias !== null, lin.name);
    const head = m.linear('lm_head').weight;
    assert.ok(head.kind === 'f32' && head.data !== m.weights.embed);
    m.dispose();
  });

  it('tied embeddings share the table with the lm head', () => {
    const m = tinyModel(kernels, { ...BASE, model_type: 'llama', tie_word_embeddings: true }, 3);
    const head = m.linear('lm_head').weight;
    assert.ok(head.kind === 'f32' && head.data === m.weights.embed);
    m.dispose();
  });

  it('mistral: sequences within the sliding window run, longer ones are refused', () => {
    const m = tinyModel(kernels, { ...BASE, model_type: 'mistral', sliding_window: 4 }, 4);
    assert.equal(m.forward(Int32Array.of(1, 2, 3, 4), 1, 4, { logits: 'last' }).length, 11);
    assert.throws(() => m.forward(Int32Array.of(1, 2, 3, 4, 5), 1, 5, { logits: 'last' }), { name: 'UnsupportedError', message: /sliding/ });
    const cache = m.createKvCache(1, 8);
    m.forward(Int32Array.of(1, 2, 3), 1, 3, { cache, logits: 'last' });
    m.forward(Int32Array.of(4), 1, 1, { cache, logits: 'last' });
    assert.throws(() => m.forward(Int32Array.of(5), 1, 1, { cache, logits: 'last' }), { name: 'UnsupportedError' });
    cache.dispose();
    m.dispose();
  });
});
