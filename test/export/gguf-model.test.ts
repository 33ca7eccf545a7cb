// GGUF model export against llama.cpp's own files (fixtures/gguf, README): every tensor of every
// fixture type byte-identical (same name, type, ne and bytes), and llama.cpp (node-llama-cpp)
// loads the export of every type and predicts the next token as our forward over that file does.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readGgufFile, readTensorBytes } from '../../src/formats/gguf/reader.js';
import { ggmlTypeName } from '../../src/formats/gguf/ggml-types.js';
import { openExportBase, type ExportBase } from '../../src/export/base.js';
import { writeGgufModel, type GgufModelType } from '../../src/export/gguf-model.js';
import { RefKernels } from '../../src/kernels/ref/index.js';
import { loadModel } from '../../src/model/load.js';
import { llamaCppProbabilityDiff } from '../helpers/llama-peer.js';
import { softmaxRowsF64 } from '../kernels/spec-oracle.js';
import { fixture } from '../helpers/shared.js';

const TYPES: ReadonlyArray<[GgufModelType, string]> = [['f32', 'F32'], ['f16', 'F16'], ['bf16', 'BF16'], ['q8_0', 'Q8_0'], ['q4_0', 'Q4_0'], ['iq4_nl', 'IQ4_NL']];
const IDS = [1, 385, 328, 432, 261, 280, 305, 330, 272, 414];
/**
 * Largest next-token probability difference between llama.cpp over our export and our forward over
 * the same file (weights dequantized exactly, f32 compute). F32: llama.cpp's logits are within
 * 1.3e-5 of transformers (README). Otherwise llama.cpp rounds the activations to the weights' dot
 * type before each matmul: F16 to f16 (unit 2^-11; measured 9.7e-5), BF16 to bf16 (2^-8; 4.9e-4),
 * and Q8_0, Q4_0, IQ4_NL to Q8_0 blocks (32 values on a max/127 grid; measured 6.1e-3, 3.6e-3,
 * 1.9e-2 on stories260K). The bounds are those rounding units scaled to the measured spread with
 * headroom for other CPU builds of llama.cpp.
 */
const PROB_TOLERANCE: Record<GgufModelType, number> = { f32: 1e-4, f16: 5e-4, bf16: 4e-3, q8_0: 5e-2, q4_0: 5e-2, iq4_nl: 5e-2 };

describe('GGUF model export', () => {
  let base: ExportBase;
  let dir: string;
  const exported = new Map<GgufModelType, { file: string; choices: ReturnType<typeof writeGgufModel> }>();
  /** Our export of the fixture model as `type`, written once for both checks of that type. */
  const exportOf = (type: GgufModelType, label: string): { file: string; choices: ReturnType<typeof writeGgufModel> } => {
    let e = exported.get(type);
    if (e === undefined) {
      const file = join(dir, `${label}.gguf`);
      e = { file, choices: writeGgufModel(base, (n) => base.readF32(n), file, type) };
      exported.set(type, e);
    }
    return e;
  };
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
      const { file, choices } = exportOf(type, label);
      const ours = readGgufFile(file);
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

  for (const [type, label] of TYPES) {
    it(`llama.cpp loads the ${label} export; next-token probabilities match our forward over the same file`, async () => {
      const out = exportOf(type, label).file;
      // Our forward over the exported file itself (its own block types, dequantized exactly), so
      // the difference is llama.cpp's compute alone, not the weights' quantization error.
      const model = await loadModel(out, { kernels: new RefKernels(), quant: 'gguf' });
      const logits = model.forward(Int32Array.from(IDS), 1, IDS.length, { logits: 'last' });
      model.dispose();
      const diff = await llamaCppProbabilityDiff(out, IDS, softmaxRowsF64(logits, 1, logits.length));
      assert.ok(diff <= PROB_TOLERANCE[type], `max probability difference ${diff}`);
    });
  }
});
