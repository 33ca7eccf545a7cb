// A PEFT adapter loaded into stories260K's LoRA slots (f32 weights, reference kernels) gives the
// PyTorch/PEFT logits of the golden bundle (golden/README.md: 1e-4 abs), and generation uses it.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openCheckpoint } from '../../src/formats/safetensors.js';
import { RefKernels } from '../../src/kernels/ref/index.js';
import { generate } from '../../src/model/generate.js';
import { loadModel } from '../../src/model/load.js';
import { loadPeftAdapter } from '../../src/model/peft-adapter.js';
import { fixture } from '../helpers/shared.js';

const GOLDEN = fixture('golden', 'stories260K-lora');
const LOGITS_TOLERANCE = 1e-4;

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('PEFT adapter on stories260K', () => {
  const kernels = new RefKernels();
  let model: Awaited<ReturnType<typeof loadModel>>;
  before(async () => {
    model = await loadModel(fixture('models', 'stories260K'), { kernels, quant: 'none' });
  });
  after(() => model.dispose());

  it('base + adapter logits equal the golden PEFT logits; generation changes', async () => {
    const golden = openCheckpoint(fixture('golden', 'stories260K-lora', 'golden.safetensors'));
    try {
      const ids = Int32Array.from(golden.readF32('input_ids'));
      const base = model.forward(ids, 2, 32, { logits: 'all' });
      assert.ok(maxAbsDiff(base, golden.readF32('base.logits')) < LOGITS_TOLERANCE);
      const plain = await generate(model, [1], { maxNewTokens: 32 });
      const adapter = loadPeftAdapter(model, GOLDEN);
      assert.equal(adapter.modules.length, 35);
      const lora = model.forward(ids, 2, 32, { logits: 'all' });
      const diff = maxAbsDiff(lora, golden.readF32('lora.logits'));
      assert.ok(diff < LOGITS_TOLERANCE, `lora logits differ by ${diff}`);
      assert.ok(maxAbsDiff(lora, base) > 100 * LOGITS_TOLERANCE, 'the adapter changes the logits');
      const adapted = await generate(model, [1], { maxNewTokens: 32 });
      assert.ok(plain.text.includes('She loved to play outside'), plain.text);
      assert.ok(adapted.text.includes('She loved to play with her toys'), adapted.text);
    } finally {
      golden.close();
    }
  });
});
