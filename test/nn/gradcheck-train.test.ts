// Finite-difference checks of the training modes beyond plain LoRA over f32 (gradcheck.test.ts):
// LoRA over an NF4 (double-quantized) base, LoRA with dropout (fixed mask seed: the loss of the
// same seed is a smooth function of the parameters), the full-parameter mode (every weight, bias,
// norm and the embedding, tied and untied heads), and the loss scale of gradient accumulation.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RefKernels } from '../../src/kernels/ref/index.js';
import type { LlamaModel } from '../../src/model/llama.js';
import { dropoutBackwardAdd, dropoutForward } from '../../src/nn/dropout.js';
import { resolveQuantizationConfig } from '../../src/quant/config.js';
import { randomArray, rng, tinyModel } from '../model/tiny-model.js';

const FD_STEP = 1e-2;
const FD_ABS = 2e-3;
const FD_REL = 2e-2;

const LLAMA = {
  model_type: 'llama', vocab_size: 23, hidden_size: 16, intermediate_size: 14, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2,
  attention_bias: true, tie_word_embeddings: false,
};
const TIED = { model_type: 'qwen2', vocab_size: 19, hidden_size: 16, intermediate_size: 10, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 1, tie_word_embeddings: true };

function batch(V: number, B: number, T: number, seed: number): Int32Array {
  const rand = rng(seed);
  return Int32Array.from({ length: B * T }, () => Math.floor(((rand() + 1) / 2) * V));
}

function attachLora(model: LlamaModel, seed: number, dropout = 0): void {
  const rand = rng(seed);
  const r = 3;
  for (const lin of [...model.linears()]) {
    if (lin.name === 'lm_head') continue;
    model.attachLora(lin.name, randomArray(r * lin.inFeatures, 0.4, rand), randomArray(lin.outFeatures * r, 0.4, rand), r, 1.5, { dropout });
  }
}

function loraTensors(model: LlamaModel): { name: string; data: Float32Array; grad: Float32Array }[] {
  const out = [];
  for (const lin of model.linears()) {
    if (lin.lora === null) continue;
    out.push({ name: `${lin.name}.lora_A`, data: lin.lora.A, grad: lin.lora.dA }, { name: `${lin.name}.lora_B`, data: lin.lora.B, grad: lin.lora.dB });
  }
  return out;
}

/** Checks `perTensor` random elements of every tensor: analytic grad (copied now) vs central differences of `loss`. */
function checkAgainstFd(tensors: readonly { name: string; data: Float32Array; grad: Float32Array }[], loss: () => number, perTensor: number, seed: number): number {
  const rand = rng(seed);
  const analytic = tensors.map((t) => Float32Array.from(t.grad));
  let checked = 0;
  tensors.forEach((t, ti) => {
    for (let e = 0; e < perTensor; e++) {
      const i = Math.floor(((rand() + 1) / 2) * t.data.length);
      const keep = t.data[i];
      t.data[i] = keep + FD_STEP;
      const up = loss();
      t.data[i] = keep - FD_STEP;
      const down = loss();
      t.data[i] = keep;
      const fd = (up - down) / (2 * FD_STEP);
      const an = analytic[ti][i];
      assert.ok(Math.abs(fd - an) <= FD_ABS + FD_REL * Math.abs(an), `${t.name}[${i}]: fd ${fd} vs analytic ${an}`);
      checked++;
    }
  });
  return checked;
}

describe('finite differences of the training modes', () => {
  it('LoRA over an NF4 double-quantized base', () => {
    const kernels = new RefKernels();
    const model = tinyModel(kernels, LLAMA, 7, resolveQuantizationConfig({ quantType: 'nf4', blockSize: 64, doubleQuant: true }));
    assert.equal(model.linear('model.layers.0.self_attn.q_proj').weight.kind, 'q4');
    attachLora(model, 3);
    const ids = batch(23, 2, 6, 1);
    for (const t of loraTensors(model)) t.grad.fill(0);
    model.forwardBackward(ids, 2, 6);
    const checked = checkAgainstFd(loraTensors(model), () => model.loss(ids, 2, 6).loss, 2, 5);
    assert.equal(checked, 14 * 2 * 2);
    model.dispose();
  });

  it('LoRA with dropout 0.3 and a fixed mask seed', () => {
    const kernels = new RefKernels();
    const model = tinyModel(kernels, LLAMA, 8);
    attachLora(model, 4, 0.3);
    const ids = batch(23, 2, 6, 2);
    const seed = 1234;
    const plain = model.loss(ids, 2, 6).loss;
    for (const t of loraTensors(model)) t.grad.fill(0);
    const dropped = model.forwardBackward(ids, 2, 6, undefined, { dropoutSeed: seed }).loss;
    assert.notEqual(dropped, plain, 'dropout changes the loss');
    // The same seed gives the same masks: the loss of a pass is a smooth function of A and B.
    assert.equal(model.forwardBackward(ids, 2, 6, undefined, { dropoutSeed: seed }).loss, dropped);
    const tensors = loraTensors(model);
    for (const t of tensors) t.grad.fill(0);
    model.forwardBackward(ids, 2, 6, undefined, { dropoutSeed: seed });
    checkAgainstFd(tensors, () => model.forwardBackward(ids, 2, 6, undefined, { dropoutSeed: seed }).loss, 2, 6);
    // Keys are cleared after the pass: inference runs without dropout.
    assert.equal(model.loss(ids, 2, 6).loss, plain);
    model.dispose();
  });

  for (const [title, raw] of [['untied head, biases', LLAMA], ['tied embeddings', TIED]] as const) {
    it(`full-parameter mode (${title}): every weight, bias, norm and the embedding`, () => {
      const kernels = new RefKernels();
      const model = tinyModel(kernels, raw, 9);
      const params = model.enableFullTraining();
      const names = params.map((p) => p.name);
      assert.ok(names.includes('model.embed_tokens.weight'));
      assert.ok(names.includes('model.norm.weight'));
      assert.ok(names.includes('model.layers.1.post_attention_layernorm.weight'));
      assert.equal(names.includes('lm_head.weight'), !raw.tie_word_embeddings);
      assert.equal(new Set(names).size, names.length);
      assert.ok(params.filter((p) => p.name.endsWith('norm.weight')).every((p) => !p.decay));
      const V = raw.vocab_size;
      const ids = batch(V, 2, 5, 3);
      for (const p of params) p.grad.fill(0);
      model.forwardBackward(ids, 2, 5);
      // The embedding rows of tokens that occur carry gradient; check those for the embedding.
      const embed = params.find((p) => p.name === 'model.embed_tokens.weight')!;
      const C = raw.hidden_size;
      const row = ids[1] * C;
      const embedRows = { name: embed.name, data: embed.data.subarray(row, row + C), grad: embed.grad.subarray(row, row + C) };
      checkAgainstFd([...params.filter((p) => p !== embed), embedRows], () => model.loss(ids, 2, 5).loss, 2, 7);
      model.dispose();
    });
  }

  it('full-parameter mode refuses quantized weights with a typed error', () => {
    const model = tinyModel(new RefKernels(), LLAMA, 1, resolveQuantizationConfig({}));
    assert.throws(() => model.enableFullTraining(), (e: Error) => e.name === 'UnsupportedError' && /f32 weights/.test(e.message));
    model.dispose();
  });

  it('lossScale multiplies every gradient (gradient accumulation)', () => {
    const kernels = new RefKernels();
    const model = tinyModel(kernels, LLAMA, 2);
    attachLora(model, 5);
    const ids = batch(23, 1, 6, 4);
    const tensors = loraTensors(model);
    for (const t of tensors) t.grad.fill(0);
    model.forwardBackward(ids, 1, 6);
    const once = tensors.map((t) => Float32Array.from(t.grad));
    for (const t of tensors) t.grad.fill(0);
    model.forwardBackward(ids, 1, 6, undefined, { lossScale: 0.25 });
    tensors.forEach((t, i) => t.grad.forEach((g, j) => assert.ok(Math.abs(g - 0.25 * once[i][j]) <= 1e-6 + 1e-5 * Math.abs(once[i][j]), t.name)));
    model.dispose();
  });
});

describe('dropout masks', () => {
  it('drop about p of the elements, scale the rest by 1/(1−p), and backward uses the same mask', () => {
    const n = 20000;
    const x = new Float32Array(n).fill(1);
    const out = new Float32Array(n);
    dropoutForward(out, x, n, 0.1, 77);
    const dropped = out.filter((v) => v === 0).length;
    assert.ok(Math.abs(dropped / n - 0.1) < 0.01, `dropped ${dropped / n}`);
    assert.ok(out.every((v) => v === 0 || Math.abs(v - 1 / 0.9) < 1e-6));
    const dx = new Float32Array(n);
    dropoutBackwardAdd(dx, x, n, 0.1, 77);
    assert.deepEqual(dx, out);
    const other = new Float32Array(n);
    dropoutForward(other, x, n, 0.1, 78);
    assert.notDeepEqual(other, out);
  });
});
