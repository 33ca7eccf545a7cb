// stories260K end to end on the reference kernels with f32 weights (quant 'none'): logits against
// the transformers golden bundle and llama.cpp's F32 logits, the NLL and greedy continuation of
// FORMATS.md §14.2, the KV-cache path against the cache-free path, and the LoRA forward and
// gradients against PyTorch/PEFT (golden/README.md tolerances).
import { readFileSync } from 'node:fs';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openCheckpoint, type TensorSource } from '../../src/formats/safetensors.js';
import { RefKernels } from '../../src/kernels/ref/index.js';
import type { LlamaModel } from '../../src/model/llama.js';
import { loadModel } from '../../src/model/load.js';
import { fixture } from '../helpers/shared.js';
import { argmax, maxAbsDiff, SENTENCE_IDS, greedyIds } from './helpers.js';

/** golden/README.md: logits of a float32 implementation within 1e-4 abs. */
const LOGITS_TOLERANCE = 1e-4;
/** golden/README.md: gradients within 1e-5 abs. */
const GRAD_TOLERANCE = 1e-5;
/** FORMATS.md §14.2: the NLL of the sentence within 1e-3. */
const NLL_TOLERANCE = 1e-3;
const SENTENCE_NLL = 54.4041;
const GREEDY_FROM_BOS = [
  403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337, 410, 408, 419, 292, 411, 322, 265, 282, 295, 433,
  426, 385, 328, 432, 358, 394, 261, 370, 432, 352, 266, 268, 388, 426, 338, 391, 266, 267, 337, 335, 312, 432, 398, 312, 286, 267, 414, 270, 333, 415,
  426, 13, 438, 310,
];
const PEFT_PREFIX = 'base_model.model.';

describe('stories260K, f32 weights, ref kernels', () => {
  const kernels = new RefKernels();
  let model: LlamaModel;
  let golden: TensorSource;
  let ids: Int32Array;

  before(async () => {
    model = await loadModel(fixture('models', 'stories260K'), { kernels, quant: 'none' });
    golden = openCheckpoint(fixture('golden', 'stories260K-lora', 'golden.safetensors'));
    ids = Int32Array.from(golden.readF32('input_ids'));
  });
  after(() => {
    golden.close();
    model.dispose();
  });

  it('base logits equal the transformers golden logits', () => {
    const logits = model.forward(ids, 2, 32, { logits: 'all' });
    assert.ok(maxAbsDiff(logits, golden.readF32('base.logits')) < LOGITS_TOLERANCE);
  });

  it('sentence logits equal llama.cpp F32 (f32kv) and the NLL is 54.4041', () => {
    const logits = model.forward(SENTENCE_IDS, 1, SENTENCE_IDS.length, { logits: 'all' });
    const bin = readFileSync(fixture('gguf', 'logits', 'stories260K-F32.f32kv.f32.bin'));
    const ref = new Float32Array(bin.buffer, bin.byteOffset, bin.byteLength / 4);
    assert.ok(maxAbsDiff(logits, ref) < LOGITS_TOLERANCE);
    const top = argmax(logits, 0, 512);
    assert.equal(top, 403);
    const { sum, count } = model.loss(SENTENCE_IDS, 1, SENTENCE_IDS.length);
    assert.equal(count, 34);
    assert.ok(Math.abs(sum - SENTENCE_NLL) < NLL_TOLERANCE, `NLL ${sum}`);
  });

  it('greedy continuation from BOS (KV cache) equals the reference 64 ids', () => {
    assert.deepEqual(greedyIds(model, 1, GREEDY_FROM_BOS.length), GREEDY_FROM_BOS);
  });

  it('the cached path (prefix, then one token at a time) equals the cache-free path', () => {
    const T = SENTENCE_IDS.length;
    const full = model.forward(SENTENCE_IDS, 1, T, { logits: 'all' });
    const cache = model.createKvCache(1, 64);
    const head = model.forward(SENTENCE_IDS.subarray(0, 20), 1, 20, { cache, logits: 'all' });
    assert.ok(maxAbsDiff(head, full.subarray(0, 20 * 512)) < 1e-5);
    for (let t = 20; t < T; t++) {
      const last = model.forward(SENTENCE_IDS.subarray(t, t + 1), 1, 1, { cache, logits: 'last' });
      assert.ok(maxAbsDiff(last, full.subarray(t * 512, (t + 1) * 512)) < 1e-5, `position ${t}`);
    }
    assert.equal(cache.length, T);
    cache.dispose();
  });

  it('a left-padded batch gives each row the logits of its unpadded sequence', () => {
    const a = SENTENCE_IDS.subarray(0, 12);
    const b = SENTENCE_IDS.subarray(5, 9);
    const T = 12;
    const batch = new Int32Array(2 * T);
    batch.set(a, 0);
    batch.set(b, T + (T - b.length)); // left padding with id 0
    const mask = new Uint8Array(2 * T).fill(1);
    mask.fill(0, T, T + (T - b.length));
    const padded = model.forward(batch, 2, T, { attentionMask: mask, logits: 'last' });
    const alone = model.forward(b, 1, b.length, { logits: 'last' });
    assert.ok(maxAbsDiff(padded.subarray(512), alone) < 1e-5);
    assert.ok(maxAbsDiff(padded.subarray(0, 512), model.forward(a, 1, T, { logits: 'last' })) < 1e-5);
  });

  it('a left-padded batch decodes through the KV cache like each sequence alone', () => {
    const a = SENTENCE_IDS.subarray(0, 10);
    const b = SENTENCE_IDS.subarray(0, 6);
    const T = 10;
    const batch = new Int32Array(2 * T);
    batch.set(a, 0);
    batch.set(b, T + (T - b.length));
    const mask = new Uint8Array(2 * T).fill(1);
    mask.fill(0, T, T + (T - b.length));
    const cache = model.createKvCache(2, 16);
    model.forward(batch, 2, T, { cache, attentionMask: mask, logits: 'last' });
    const aloneCache = model.createKvCache(1, 16);
    model.forward(b, 1, b.length, { cache: aloneCache, logits: 'last' });
    for (const next of [261, 378, 432]) {
      const both = model.forward(Int32Array.of(next, next), 2, 1, { cache, logits: 'last' }); // the cache keeps the padding
      const alone = model.forward(Int32Array.of(next), 1, 1, { cache: aloneCache, logits: 'last' });
      assert.ok(maxAbsDiff(both.subarray(512), alone) < 1e-5);
    }
    cache.dispose();
    aloneCache.dispose();
  });

  it('a sequence longer than the context is a typed error', () => {
    assert.throws(() => model.forward(new Int32Array(513).fill(1), 1, 513, { logits: 'last' }), { name: 'ShapeError', message: /longer than the model context/ });
    assert.throws(() => model.forward(new Int32Array([1, 600]), 1, 2, { logits: 'last' }), { name: 'ShapeError', message: /outside the vocabulary/ });
  });

  describe('with the golden PEFT adapter', () => {
    let adapter: TensorSource;
    before(() => {
      adapter = openCheckpoint(fixture('golden', 'stories260K-lora', 'adapter_model.safetensors'));
      for (const key of adapter.names()) {
        if (!key.endsWith('.lora_A.weight')) continue;
        const module = key.slice(PEFT_PREFIX.length, -'.lora_A.weight'.length);
        // adapter_config.json: r = 4, lora_alpha = 8 → scale 2
        model.attachLora(module, adapter.readF32(key), adapter.readF32(key.replace('.lora_A.', '.lora_B.')), 4, 2);
      }
    });
    after(() => {
      adapter.close();
      for (const lin of model.linears()) lin.lora = null;
    });

    it('lora logits equal PEFT within 1e-4', () => {
      const logits = model.forward(ids, 2, 32, { logits: 'all' });
      assert.ok(maxAbsDiff(logits, golden.readF32('lora.logits')) < LOGITS_TOLERANCE);
    });

    it('loss and d loss / d(A, B) equal PyTorch for all 70 LoRA tensors', () => {
      for (const lin of model.linears()) {
        lin.lora?.dA.fill(0);
        lin.lora?.dB.fill(0);
      }
      const { loss, count } = model.forwardBackward(ids, 2, 32);
      assert.equal(count, 62);
      assert.ok(Math.abs(loss - 4.880150318145752) < 1e-5, `loss ${loss}`);
      let checked = 0;
      for (const key of adapter.names()) {
        const module = key.slice(PEFT_PREFIX.length).replace(/\.lora_[AB]\.weight$/, '');
        const slot = model.linear(module).lora;
        assert.ok(slot !== null);
        const got = key.includes('.lora_A.') ? slot.dA : slot.dB;
        const diff = maxAbsDiff(got, golden.readF32(`grad.${key}`));
        assert.ok(diff < GRAD_TOLERANCE, `${key}: ${diff}`);
        checked++;
      }
      assert.equal(checked, 70);
    });
  });
});
