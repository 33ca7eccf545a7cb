// GGUF model export against llama.cpp's own files (fixtures/gguf, README): every tensor of every
// fixture type byte-identical (same name, type, ne and bytes), and llama.cpp (node-llama-cpp)
// loads the F32 export and predicts the next token as our forward does.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getLlama, LlamaLogLevel, type Token } from 'node-llama-cpp';
import { readGgufFile, readTensorBytes } from '../../src/formats/gguf/reader.js';
import { ggmlTypeName } from '../../src/formats/gguf/ggml-types.js';
import { openExportBase, type ExportBase } from '../../src/export/base.js';
import { writeGgufModel, type GgufModelType } from '../../src/export/gguf-model.js';
import { RefKernels } from '../../src/kernels/ref/index.js';
import { loadModel } from '../../src/model/load.js';
import { fixture } from '../helpers/shared.js';

const TYPES: ReadonlyArray<[GgufModelType, string]> = [['f32', 'F32'], ['f16', 'F16'], ['bf16', 'BF16'], ['q8_0', 'Q8_0'], ['q4_0', 'Q4_0'], ['iq4_nl', 'IQ4_NL']];
const IDS = [1, 385, 328, 432, 261, 280, 305, 330, 272, 414];
/** F32 weights, f32 K/V cache, no flash attention: llama.cpp's logits are within 1.3e-5 of transformers (README). */
const F32_PROB_TOLERANCE = 1e-4;

describe('GGUF model export', () => {
  let base: ExportBase;
  let dir: string;
  before(() => {
    base = openExportBase(fixture('models', 'stories260K'));
    dir = mkdtempSync(join(tmpdir(), 'qlora-gguf-export-'));
  });
  after(() => {
    base.close();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const [type, label] of TYPES) {
    it(`${label}: every tensor equals llama.cpp's byte for byte`, () => {
      const out = join(dir, `${label}.gguf`);
      const choices = writeGgufModel(base, (n) => base.readF32(n), out, type);
      const ours = readGgufFile(out);
      const theirs = readGgufFile(fixture('gguf', `stories260K-${label}.gguf`));
      assert.equal(ours.tensors.length, theirs.tensors.length);
      for (const t of theirs.tensors) {
        const o = ours.tensors.find((x) => x.name === t.name);
        assert.ok(o !== undefined, t.name);
        assert.equal(ggmlTypeName(o.type), ggmlTypeName(t.type), t.name);
        assert.deepEqual(o.ne, t.ne, t.name);
        assert.ok(Buffer.from(readTensorBytes(ours, o)).equals(Buffer.from(readTensorBytes(theirs, t))), `${t.name} bytes`);
      }
      for (const key of ['llama.block_count', 'llama.attention.head_count_kv', 'llama.rope.freq_base', 'llama.attention.layer_norm_rms_epsilon', 'general.file_type', 'tokenizer.ggml.bos_token_id']) {
        assert.deepEqual(ours.metadata.get(key), theirs.metadata.get(key), key);
      }
      if (type === 'q4_0') assert.ok(choices.some((c) => c.name === 'blk.0.ffn_down.weight' && c.type === 'F16' && c.fallback !== null));
    });
  }

  it('llama.cpp loads the F32 export; next-token probabilities match our forward', async () => {
    const out = join(dir, 'F32.gguf');
    writeGgufModel(base, (n) => base.readF32(n), out, 'f32');
    const model = await loadModel(fixture('models', 'stories260K'), { kernels: new RefKernels(), quant: 'none' });
    const logits = model.forward(Int32Array.from(IDS), 1, IDS.length, { logits: 'last' });
    model.dispose();
    const max = Math.max(...logits);
    const exp = logits.map((x) => Math.exp(x - max));
    const sum = exp.reduce((a, b) => a + b, 0);
    const llama = await getLlama({ gpu: false, build: 'never', usePrebuiltBinaries: true, progressLogs: false, logLevel: LlamaLogLevel.error });
    const peer = await llama.loadModel({ modelPath: out });
    const ctx = await peer.createContext({ contextSize: 64, batchSize: 64, threads: 1, flashAttention: false, experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32' });
    try {
      const res = await ctx.getSequence().controlledEvaluate(IDS.map((t, i) => (i === IDS.length - 1 ? [t as Token, { generateNext: { probabilities: true } }] : (t as Token))));
      const probs = res[IDS.length - 1]!.next.probabilities!;
      let diff = 0;
      for (let v = 0; v < exp.length; v++) diff = Math.max(diff, Math.abs((probs.get(v as Token) ?? 0) - exp[v] / sum));
      assert.ok(diff <= F32_PROB_TOLERANCE, `max probability difference ${diff}`);
    } finally {
      await ctx.dispose();
      await peer.dispose();
    }
  });
});
