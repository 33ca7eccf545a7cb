// stories260K with 4-bit weights: the perplexity cost of NF4 (+ double quant, block 64, the
// default) stays under a measured bound, and a bitsandbytes-4bit folder (made by transformers +
// bitsandbytes) loads as-is and computes exactly what quantizing the f32 folder ourselves gives.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openCheckpoint } from '../../src/formats/safetensors.js';
import { RefKernels } from '../../src/kernels/ref/index.js';
import type { LlamaModel } from '../../src/model/llama.js';
import { loadModel } from '../../src/model/load.js';
import { resolveQuantizationConfig } from '../../src/quant/config.js';
import { fixture } from '../helpers/shared.js';
import { SENTENCE_IDS } from './helpers.js';

/**
 * Perplexity ratio NF4+DQ / f32 over the golden batch (2 × 32 tinyshakespeare tokens) plus the
 * §14.2 sentence. Measured 1.137 (f32 32.680 → NF4 37.154; FP4 gives 1.41). stories260K's
 * 64-wide rows make 4-bit error unusually large; the bound only leaves room for rounding.
 */
const NF4_PERPLEXITY_RATIO_BOUND = 1.15;

function perplexity(model: LlamaModel, batch: Int32Array): number {
  const a = model.loss(batch, 2, 32);
  const s = model.loss(SENTENCE_IDS, 1, SENTENCE_IDS.length);
  return Math.exp((a.sum + s.sum) / (a.count + s.count));
}

describe('stories260K with NF4 weights', () => {
  const kernels = new RefKernels();
  let batch: Int32Array;
  let f32: LlamaModel;
  let nf4: LlamaModel;

  before(async () => {
    const golden = openCheckpoint(fixture('golden', 'stories260K-lora', 'golden.safetensors'));
    batch = Int32Array.from(golden.readF32('input_ids'));
    golden.close();
    f32 = await loadModel(fixture('models', 'stories260K'), { kernels, quant: 'none' });
    nf4 = await loadModel(fixture('models', 'stories260K'), { kernels }); // default: nf4 + DQ, block 64
  });
  after(() => {
    f32.dispose();
    nf4.dispose();
  });

  it('quantizes every decoder projection and nothing else', () => {
    let q4 = 0;
    for (const lin of nf4.linears()) {
      if (lin.name === 'lm_head') assert.equal(lin.weight.kind, 'f32');
      else {
        assert.equal(lin.weight.kind, 'q4', lin.name);
        if (lin.weight.kind === 'q4') {
          assert.equal(lin.weight.q.quantType, 'nf4');
          assert.equal(lin.weight.q.blockSize, 64);
          assert.ok(lin.weight.q.dq !== null);
        }
        q4++;
      }
    }
    assert.equal(q4, 35);
  });

  it('the bitsandbytes-4bit folder loads as stored and equals quantizing the f32 folder', async () => {
    const bnb = await loadModel(fixture('bnb-models', 'stories260K-nf4-dq'), { kernels, quant: 'none' });
    try {
      for (const lin of bnb.linears()) {
        const mine = nf4.linear(lin.name);
        if (lin.weight.kind !== 'q4' || mine.weight.kind !== 'q4') {
          assert.equal(lin.name, 'lm_head');
          continue;
        }
        assert.deepEqual(lin.weight.q.packed, mine.weight.q.packed, lin.name);
      }
      const a = bnb.forward(batch, 2, 32, { logits: 'all' });
      const b = nf4.forward(batch, 2, 32, { logits: 'all' });
      assert.deepEqual(a, b);
      assert.ok(bnb.tokenizer !== null);
    } finally {
      bnb.dispose();
    }
  });

  it('an override can quantize the tied lm head (the embedding lookup stays f32)', async () => {
    const quant = resolveQuantizationConfig({ overrides: [{ match: 'lm_head', quantType: 'nf4' }] });
    const m = await loadModel(fixture('models', 'stories260K'), { kernels, quant });
    const head = m.linear('lm_head').weight;
    assert.equal(head.kind, 'q4');
    assert.equal(m.weights.embed.length, 512 * 64);
    const ratio = perplexity(m, batch) / perplexity(f32, batch);
    assert.ok(ratio < NF4_PERPLEXITY_RATIO_BOUND + 0.1, `ratio ${ratio}`);
    m.dispose();
  });

  it(`perplexity grows by less than ×${NF4_PERPLEXITY_RATIO_BOUND}`, () => {
    const ratio = perplexity(nf4, batch) / perplexity(f32, batch);
    assert.ok(ratio < NF4_PERPLEXITY_RATIO_BOUND, `ratio ${ratio}`);
  });
});
