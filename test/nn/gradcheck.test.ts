// Finite-difference checks of the whole backward chain (loss → lm head → norms → every decoder
// op → LoRA A/B of every projection) on tiny random models covering the architecture options:
// Llama with all biases, untied lm head with LoRA, GQA 2:1, head_dim ≠ hidden/heads, llama3 RoPE
// scaling; Qwen2 (qkv bias) with tied embeddings and GQA 4:1. Central differences on the f32
// forward: the tolerance covers f32 rounding noise (≈1e-6 / h) and the O(h²) truncation.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RefKernels } from '../../src/kernels/ref/index.js';
import type { LlamaModel } from '../../src/model/llama.js';
import { resolveQuantizationConfig } from '../../src/quant/config.js';
import { randomArray, rng, tinyModel } from '../model/tiny-model.js';

const FD_STEP = 1e-2;
/** |fd − analytic| <= FD_ABS + FD_REL · |analytic|, per checked element. */
const FD_ABS = 2e-3;
const FD_REL = 2e-2;
const ELEMENTS_PER_TENSOR = 3;

const CONFIGS: Record<string, Record<string, unknown>> = {
  'llama: biases, untied head, GQA 2:1, head_dim 6 ≠ 12/4, llama3 rope': {
    model_type: 'llama', vocab_size: 23, hidden_size: 12, intermediate_size: 14, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2,
    head_dim: 6, attention_bias: true, mlp_bias: true, tie_word_embeddings: false,
    rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 16 }, rope_theta: 500000,
  },
  'qwen2: qkv bias, tied embeddings, GQA 4:1': {
    model_type: 'qwen2', vocab_size: 19, hidden_size: 16, intermediate_size: 10, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 1,
    tie_word_embeddings: true,
  },
};

function attachRandomLora(model: LlamaModel, seed: number): void {
  const rand = rng(seed);
  const r = 3;
  for (const lin of [...model.linears()]) {
    if (lin.name === 'lm_head' && model.config.tieWordEmbeddings) continue;
    model.attachLora(lin.name, randomArray(r * lin.inFeatures, 0.4, rand), randomArray(lin.outFeatures * r, 0.4, rand), r, 1.5);
  }
}

for (const [title, raw] of Object.entries(CONFIGS)) {
  describe(`finite differences, ${title}`, () => {
    it('d loss / d(LoRA A, B) of every projection match central differences', () => {
      const kernels = new RefKernels();
      const model = tinyModel(kernels, raw, 7);
      attachRandomLora(model, 11);
      const B = 2;
      const T = 7;
      const rand = rng(3);
      const V = model.config.vocabSize;
      const ids = Int32Array.from({ length: B * T }, () => Math.floor(((rand() + 1) / 2) * V));
      const labels = Int32Array.from(ids);
      labels[3] = -100; // a masked label must be skipped by both loss and gradient
      for (const lin of model.linears()) {
        lin.lora?.dA.fill(0);
        lin.lora?.dB.fill(0);
      }
      model.forwardBackward(ids, B, T, labels);
      let checked = 0;
      for (const lin of model.linears()) {
        const slot = lin.lora;
        if (slot === null) continue;
        for (const [which, param, grad] of [['A', slot.A, slot.dA], ['B', slot.B, slot.dB]] as const) {
          for (let e = 0; e < ELEMENTS_PER_TENSOR; e++) {
            const i = Math.floor(((rand() + 1) / 2) * param.length);
            const keep = param[i];
            param[i] = keep + FD_STEP;
            const up = model.loss(ids, B, T, labels).loss;
            param[i] = keep - FD_STEP;
            const down = model.loss(ids, B, T, labels).loss;
            param[i] = keep;
            const fd = (up - down) / (2 * FD_STEP);
            const an = grad[i];
            assert.ok(Math.abs(fd - an) <= FD_ABS + FD_REL * Math.abs(an), `${lin.name}.lora_${which}[${i}]: fd ${fd} vs analytic ${an}`);
            checked++;
          }
        }
      }
      assert.ok(checked >= 14 * 2 * ELEMENTS_PER_TENSOR);
      model.dispose();
    });

    it('the KV-cache path equals the cache-free path (and with LoRA)', () => {
      const kernels = new RefKernels();
      const model = tinyModel(kernels, raw, 5);
      attachRandomLora(model, 9);
      const T = 9;
      const rand = rng(1);
      const V = model.config.vocabSize;
      const ids = Int32Array.from({ length: T }, () => Math.floor(((rand() + 1) / 2) * V));
      const full = model.forward(ids, 1, T, { logits: 'all' });
      const cache = model.createKvCache(1, T);
      model.forward(ids.subarray(0, 4), 1, 4, { cache, logits: 'last' });
      for (let t = 4; t < T; t++) {
        const last = model.forward(ids.subarray(t, t + 1), 1, 1, { cache, logits: 'last' });
        for (let v = 0; v < V; v++) assert.ok(Math.abs(last[v] - full[t * V + v]) < 1e-5);
      }
      cache.dispose();
      model.dispose();
    });
  });
}

describe('lm head and loss in row chunks (vocabulary large enough for 3 chunks of 5 rows)', () => {
  it('loss equals cross-entropy of the full logits, and gradients match central differences', () => {
    const kernels = new RefKernels();
    const V = 700_000; // 2^22 / V = 5 rows per chunk
    const model = tinyModel(kernels, { model_type: 'llama', vocab_size: V, hidden_size: 8, intermediate_size: 8, num_hidden_layers: 1, num_attention_heads: 2, tie_word_embeddings: false }, 3);
    attachRandomLora(model, 4);
    const T = 12;
    const rand = rng(8);
    const ids = Int32Array.from({ length: T }, () => Math.floor(((rand() + 1) / 2) * V));
    const logits = model.forward(ids, 1, T, { logits: 'all' });
    let nll = 0;
    for (let t = 0; t + 1 < T; t++) {
      let max = -Infinity;
      for (let v = 0; v < V; v++) max = Math.max(max, logits[t * V + v]);
      let z = 0;
      for (let v = 0; v < V; v++) z += Math.exp(logits[t * V + v] - max);
      nll += Math.log(z) + max - logits[t * V + ids[t + 1]];
    }
    for (const lin of model.linears()) {
      lin.lora?.dA.fill(0);
      lin.lora?.dB.fill(0);
    }
    const r = model.forwardBackward(ids, 1, T);
    assert.equal(r.count, T - 1);
    assert.ok(Math.abs(r.sum - nll) < 1e-3 * Math.max(1, Math.abs(nll)), `${r.sum} vs ${nll}`);
    for (const name of ['lm_head', 'model.layers.0.self_attn.q_proj']) {
      const slot = model.linear(name).lora!;
      for (const [param, grad] of [[slot.A, slot.dA], [slot.B, slot.dB]] as const) {
        const i = 1;
        const keep = param[i];
        param[i] = keep + FD_STEP;
        const up = model.loss(ids, 1, T).loss;
        param[i] = keep - FD_STEP;
        const down = model.loss(ids, 1, T).loss;
        param[i] = keep;
        const fd = (up - down) / (2 * FD_STEP);
        assert.ok(Math.abs(fd - grad[i]) <= FD_ABS + FD_REL * Math.abs(grad[i]), `${name}: fd ${fd} vs ${grad[i]}`);
      }
    }
    model.dispose();
  });
});

describe('int8 weights (per-module override), dequantized panel by panel', () => {
  it('forward and LoRA gradients equal an f32 model holding the same dequantized values', () => {
    const kernels = new RefKernels();
    // down_proj: 40 rows x 300 cols → panels of 218 rows: one panel; q_proj 300x300 → 2 panels
    const raw = { model_type: 'llama', vocab_size: 17, hidden_size: 300, intermediate_size: 40, num_hidden_layers: 1, num_attention_heads: 3, tie_word_embeddings: true };
    const quant = resolveQuantizationConfig({ overrides: [{ match: 'down_proj', int8: true }, { match: 'q_proj', int8: true }, { match: '**', keep: 'f32' }] });
    const int8 = tinyModel(kernels, raw, 21, quant);
    const f32 = tinyModel(kernels, raw, 21, 'none');
    for (const name of ['model.layers.0.mlp.down_proj', 'model.layers.0.self_attn.q_proj']) {
      const w = int8.linear(name).weight;
      assert.equal(w.kind, 'int8');
      const ref = f32.linear(name).weight;
      if (w.kind !== 'int8' || ref.kind !== 'f32') continue;
      const { codes, scales, cols } = w.q;
      for (let i = 0; i < codes.length; i++) ref.data[i] = Math.fround(codes[i] * scales[Math.floor(i / cols)]);
    }
    for (const m of [int8, f32]) attachRandomLora(m, 5);
    const ids = Int32Array.of(1, 5, 9, 2, 16, 3);
    const a = int8.forward(ids, 1, 6, { logits: 'all' });
    const b = f32.forward(ids, 1, 6, { logits: 'all' });
    for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) < 1e-4);
    int8.forwardBackward(ids, 2, 3);
    f32.forwardBackward(ids, 2, 3);
    for (const lin of int8.linears()) {
      const other = f32.linear(lin.name).lora;
      if (lin.lora === null || other === null) continue;
      for (let i = 0; i < lin.lora.dA.length; i++) assert.ok(Math.abs(lin.lora.dA[i] - other.dA[i]) < 1e-5, lin.name);
    }
    int8.dispose();
    f32.dispose();
  });
});
