// The model on the wasm kernels against the same model on the reference kernels: stories260K
// logits with f32 and NF4 weights, the greedy continuation, and the golden LoRA gradients.
// Layers pass the kernels views into resident buffers (KV-cache rows, per-sequence slices), so
// this checks the wasm backend accepts every buffer the model hands it.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openCheckpoint } from '../../src/formats/safetensors.js';
import { createKernels } from '../../src/kernels/index.js';
import type { Kernels } from '../../src/kernels/kernels.js';
import { RefKernels } from '../../src/kernels/ref/index.js';
import type { LlamaModel } from '../../src/model/llama.js';
import { loadModel } from '../../src/model/load.js';
import { fixture } from '../helpers/shared.js';
import { greedyIds, maxAbsDiff, SENTENCE_IDS } from './helpers.js';

/** Different summation orders (SIMD lanes, FMA, threads): logits within 1e-4 of the oracle. */
const BACKEND_LOGITS_TOLERANCE = 1e-4;
const BACKEND_GRAD_TOLERANCE = 1e-5;
const PEFT_PREFIX = 'base_model.model.';

describe('stories260K on the wasm kernels vs the reference kernels', () => {
  const ref = new RefKernels();
  let wasm: Kernels;
  before(async () => {
    wasm = await createKernels({ backend: 'wasm', threads: 2 });
  });
  after(async () => {
    await wasm.dispose();
  });

  for (const quant of ['none', 'nf4'] as const) {
    it(`logits and greedy ids agree (${quant})`, async () => {
      const opts = quant === 'none' ? { quant } : {};
      const a = await loadModel(fixture('models', 'stories260K'), { kernels: wasm, ...opts });
      const b = await loadModel(fixture('models', 'stories260K'), { kernels: ref, ...opts });
      const la = a.forward(SENTENCE_IDS, 1, SENTENCE_IDS.length, { logits: 'all' });
      const lb = b.forward(SENTENCE_IDS, 1, SENTENCE_IDS.length, { logits: 'all' });
      assert.ok(maxAbsDiff(la, lb) < BACKEND_LOGITS_TOLERANCE, `${maxAbsDiff(la, lb)}`);
      assert.deepEqual(greedyIds(a, 1, 32), greedyIds(b, 1, 32));
      a.dispose();
      b.dispose();
    });
  }

  it('NF4 quantization at load on the wasm backend reproduces the bitsandbytes folder byte for byte', async () => {
    const ours = await loadModel(fixture('models', 'stories260K'), { kernels: wasm });
    const bnb = await loadModel(fixture('bnb-models', 'stories260K-nf4-dq'), { kernels: wasm });
    let compared = 0;
    for (const lin of ours.linears()) {
      const other = bnb.linear(lin.name).weight;
      if (lin.weight.kind !== 'q4' || other.kind !== 'q4') continue;
      assert.deepEqual(lin.weight.q.packed, other.q.packed, lin.name);
      assert.deepEqual(lin.weight.q.dq?.codes, other.q.dq?.codes, lin.name);
      compared++;
    }
    assert.equal(compared, 35);
    ours.dispose();
    bnb.dispose();
  });

  it('LoRA gradients agree with the golden PyTorch gradients', async () => {
    const model: LlamaModel = await loadModel(fixture('models', 'stories260K'), { kernels: wasm, quant: 'none' });
    const golden = openCheckpoint(fixture('golden', 'stories260K-lora', 'golden.safetensors'));
    const adapter = openCheckpoint(fixture('golden', 'stories260K-lora', 'adapter_model.safetensors'));
    for (const key of adapter.names()) {
      if (!key.endsWith('.lora_A.weight')) continue;
      model.attachLora(key.slice(PEFT_PREFIX.length, -'.lora_A.weight'.length), adapter.readF32(key), adapter.readF32(key.replace('.lora_A.', '.lora_B.')), 4, 2);
    }
    model.forwardBackward(Int32Array.from(golden.readF32('input_ids')), 2, 32);
    for (const key of adapter.names()) {
      const slot = model.linear(key.slice(PEFT_PREFIX.length).replace(/\.lora_[AB]\.weight$/, '')).lora!;
      const diff = maxAbsDiff(key.includes('.lora_A.') ? slot.dA : slot.dB, golden.readF32(`grad.${key}`));
      assert.ok(diff < BACKEND_GRAD_TOLERANCE, `${key}: ${diff}`);
    }
    golden.close();
    adapter.close();
    model.dispose();
  });
});
