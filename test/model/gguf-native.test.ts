// A GGUF base kept in its own block types (load quant 'gguf'): every projection is a ggml weight,
// and forward logits and LoRA gradients equal those of the same file dequantized to f32 (the
// weights llama.cpp runs), for Q4_0, Q8_0 and IQ4_NL; training over it runs and lowers the loss.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { RefKernels } from '../../src/kernels/ref/index.js';
import { loadModel } from '../../src/model/load.js';
import { train } from '../../src/train/trainer.js';
import { attachNewLora } from '../../src/train/lora.js';
import { DATA, fixture } from '../helpers/shared.js';
import { maxAbsDiff, SENTENCE_IDS } from './helpers.js';

const LORA = { r: 4, alpha: 8, dropout: 0, targetModules: 'all-linear', rslora: false, init: 'kaiming' } as const;

describe("GGUF base in its own block types (quant 'gguf')", () => {
  for (const type of ['Q4_0', 'Q8_0', 'IQ4_NL']) {
    it(`${type}: forward and LoRA gradients equal the dequantized f32 model`, async () => {
      const kernels = new RefKernels();
      const file = fixture('gguf', `stories260K-${type}.gguf`);
      const native = await loadModel(file, { kernels, quant: 'gguf' });
      const f32 = await loadModel(file, { kernels, quant: 'none' });
      assert.equal(native.linear('model.layers.0.self_attn.q_proj').weight.kind, 'ggml');
      assert.equal(native.linear('model.layers.4.mlp.up_proj').weight.kind, 'ggml');
      // ffn 172 is not a multiple of 32: llama-quantize kept down_proj in F16, which loads as f32.
      assert.equal(native.linear('model.layers.4.mlp.down_proj').weight.kind, 'f32');
      assert.equal(f32.linear('model.layers.0.self_attn.q_proj').weight.kind, 'f32');
      const T = SENTENCE_IDS.length;
      assert.ok(maxAbsDiff(native.forward(SENTENCE_IDS, 1, T, { logits: 'all' }), f32.forward(SENTENCE_IDS, 1, T, { logits: 'all' })) < 1e-5);
      for (const m of [native, f32]) {
        attachNewLora(m, LORA, 5);
        for (const lin of m.linears()) lin.lora?.B.fill(0.01);
        m.forwardBackward(SENTENCE_IDS, 1, T);
      }
      for (const lin of native.linears()) {
        const other = f32.linear(lin.name).lora;
        if (lin.lora === null || other === null) continue;
        assert.ok(maxAbsDiff(lin.lora.dA, other.dA) < 1e-5, lin.name);
        assert.ok(maxAbsDiff(lin.lora.dB, other.dB) < 1e-5, lin.name);
      }
      native.dispose();
      f32.dispose();
    });
  }

  it('trains LoRA over a Q4_0 GGUF base; a folder base is refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qlora-gguf-native-'));
    try {
      const data = join(dir, 'text.txt');
      writeFileSync(data, readFileSync(join(DATA, 'tinyshakespeare.txt'), 'utf8').slice(0, 20000));
      const kernels = new RefKernels();
      const r = await train({ config: { model: fixture('gguf', 'stories260K-Q4_0.gguf'), data, quant: 'gguf', seqLen: 64, maxSteps: 6, evalSplit: 4, evalEvery: 6 }, out: join(dir, 'run'), kernels });
      const evals = readFileSync(join(dir, 'run', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string; loss: number }).filter((m) => m.type === 'eval');
      assert.ok(r.finalEval !== null && r.finalEval.loss < evals[0].loss);
      await assert.rejects(loadModel(fixture('models', 'stories260K'), { kernels, quant: 'gguf' }), /ConfigError.*needs a \.gguf base/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
