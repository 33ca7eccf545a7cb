// GGUF models made by llama.cpp's own tools load into the same LlamaModel as the Hugging Face
// folder: F32 gives the HF logits; every quantized file (dequantized, quant 'none', so only the
// file's own weight error counts) matches llama.cpp's recorded f32kv logits within the
// tolerances of fixtures/gguf/README.md ("Observed differences": llama.cpp's matmuls also round
// the activations, which a float32 forward does not); llama-2-tiny-random GGUF equals its hf/
// copy and the §14.3 values.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { GgmlType } from '../../src/formats/gguf/ggml-types.js';
import { GgufValueType } from '../../src/formats/gguf/types.js';
import { writeGguf } from '../../src/formats/gguf/writer.js';
import { RefKernels } from '../../src/kernels/ref/index.js';
import type { LlamaModel } from '../../src/model/llama.js';
import { loadModel } from '../../src/model/load.js';
import { fixture } from '../helpers/shared.js';
import { argmax, maxAbsDiff, SENTENCE_IDS } from './helpers.js';

/** README: "a float32 reimplementation on F32 weights should land within about 1e-4". */
const F32_TOLERANCE = 1e-4;
/** Max / mean |ours − llama.cpp f32kv| per file (README: ≈0.01 F16, ≈0.08 BF16, ≤≈0.3 / ≈0.05 quantized). */
const LLAMACPP_TOLERANCE: Record<string, { max: number; mean: number }> = {
  F16: { max: 0.015, mean: 0.003 },
  BF16: { max: 0.1, mean: 0.02 },
  Q8_0: { max: 0.3, mean: 0.05 },
  Q4_0: { max: 0.3, mean: 0.05 },
  IQ4_NL: { max: 0.3, mean: 0.05 },
};
/** FORMATS.md §14.3: top logit (id, value) at positions 0..2 for `<s> Hello world`, f64 reference. */
const TINY_RANDOM_TOP = [[31102, 0.22471], [9439, 0.22299], [19356, 0.25037]] as const;

function llamaCppLogits(name: string): Float32Array {
  const bin = readFileSync(fixture('gguf', 'logits', `${name}.f32kv.f32.bin`));
  return new Float32Array(bin.buffer, bin.byteOffset, bin.byteLength / 4);
}

function meanAbsDiff(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i] - b[i]);
  return s / a.length;
}

describe('GGUF models', () => {
  const kernels = new RefKernels();
  let hf: LlamaModel;
  let hfLogits: Float32Array;
  before(async () => {
    hf = await loadModel(fixture('models', 'stories260K'), { kernels, quant: 'none' });
    hfLogits = hf.forward(SENTENCE_IDS, 1, SENTENCE_IDS.length, { logits: 'all' });
  });
  after(() => hf.dispose());

  it('stories260K-F32.gguf gives the HF folder logits and llama.cpp F32 logits', async () => {
    const m = await loadModel(fixture('gguf', 'stories260K-F32.gguf'), { kernels, quant: 'none' });
    const logits = m.forward(SENTENCE_IDS, 1, SENTENCE_IDS.length, { logits: 'all' });
    assert.ok(maxAbsDiff(logits, hfLogits) < F32_TOLERANCE);
    assert.ok(maxAbsDiff(logits, llamaCppLogits('stories260K-F32')) < F32_TOLERANCE);
    assert.equal(m.config.tieWordEmbeddings, true);
    // tokenizer rebuilt from the GGUF metadata (512 tokens, scores all equal: see the README)
    assert.ok(m.tokenizer !== null);
    assert.equal(m.tokenizer.vocabSize, 512);
    assert.equal(m.tokenizer.decode([403, 407, 261, 378]), hf.tokenizer?.decode([403, 407, 261, 378]));
    m.dispose();
  });

  for (const [type, tol] of Object.entries(LLAMACPP_TOLERANCE)) {
    it(`stories260K-${type}.gguf matches llama.cpp's logits for the same file`, async () => {
      const m = await loadModel(fixture('gguf', `stories260K-${type}.gguf`), { kernels, quant: 'none' });
      const logits = m.forward(SENTENCE_IDS, 1, SENTENCE_IDS.length, { logits: 'all' });
      const ref = llamaCppLogits(`stories260K-${type}`);
      assert.ok(maxAbsDiff(logits, ref) < tol.max, `max ${maxAbsDiff(logits, ref)}`);
      assert.ok(meanAbsDiff(logits, ref) < tol.mean, `mean ${meanAbsDiff(logits, ref)}`);
      m.dispose();
    });
  }

  it('a GGUF is quantized to NF4 by default, like an HF folder', async () => {
    const fromGguf = await loadModel(fixture('gguf', 'stories260K-F32.gguf'), { kernels });
    const fromHf = await loadModel(fixture('models', 'stories260K'), { kernels });
    assert.equal(fromGguf.linear('model.layers.0.self_attn.q_proj').weight.kind, 'q4');
    const a = fromGguf.forward(SENTENCE_IDS, 1, SENTENCE_IDS.length, { logits: 'all' });
    const b = fromHf.forward(SENTENCE_IDS, 1, SENTENCE_IDS.length, { logits: 'all' });
    assert.deepEqual(a, b); // same f32 weights → same NF4 codes → same logits
    fromGguf.dispose();
    fromHf.dispose();
  });

  it('llama-2-tiny-random: GGUF (F16, permuted Q/K) equals its hf/ folder and §14.3', async () => {
    const gguf = await loadModel(fixture('models', 'llama-2-tiny-random', 'llama-2-tiny-random.gguf'), { kernels, quant: 'none' });
    const folder = await loadModel(fixture('models', 'llama-2-tiny-random', 'hf'), { kernels, quant: 'none' });
    const ids = Int32Array.of(1, 15043, 3186);
    const a = gguf.forward(ids, 1, 3, { logits: 'all' });
    const b = folder.forward(ids, 1, 3, { logits: 'all' });
    assert.ok(maxAbsDiff(a, b) < 1e-6);
    assert.deepEqual(gguf.tokenizer?.encode('Hello world'), [1, 15043, 3186]);
    const V = 32000;
    TINY_RANDOM_TOP.forEach(([id, value], p) => {
      assert.ok(Math.abs(b[p * V + id] - value) < 1e-4, `position ${p}`);
      assert.ok(b[p * V + argmax(b, p * V, V)] - b[p * V + id] < 1e-4);
    });
    gguf.dispose();
    folder.dispose();
  });

  describe('bad input', () => {
    let dir: string;
    before(() => {
      dir = mkdtempSync(join(tmpdir(), 'qlora-gguf-'));
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    it('a GGUF of another architecture is refused by name', async () => {
      const path = join(dir, 'gpt2.gguf');
      writeGguf(path, {
        metadata: [['general.architecture', { type: GgufValueType.STRING, value: 'gpt2' }]],
        tensors: [{ name: 'token_embd.weight', ne: [4, 2], type: GgmlType.F32, data: new Uint8Array(32) }],
      });
      await assert.rejects(loadModel(path, { kernels, quant: 'none' }), { name: 'UnsupportedError', message: /gpt2/ });
    });
  });
});
