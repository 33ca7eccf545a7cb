// GGUF LoRA adapter export against convert_lora_to_gguf.py's file (fixtures/gguf/stories260K-lora-f32.gguf):
// byte-identical, and llama.cpp applies it on our F32 GGUF export as our forward does with the adapter.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openExportBase, readAdapterFor, type ExportBase } from '../../src/export/base.js';
import { writeGgufAdapter } from '../../src/export/gguf-adapter.js';
import { writeGgufModel } from '../../src/export/gguf-model.js';
import { RefKernels } from '../../src/kernels/ref/index.js';
import { loadModel } from '../../src/model/load.js';
import { loadPeftAdapter } from '../../src/model/peft-adapter.js';
import { llamaCppProbabilityDiff } from '../helpers/llama-peer.js';
import { softmaxRowsF64 } from '../kernels/spec-oracle.js';
import { fixture } from '../helpers/shared.js';

const IDS = [1, 385, 328, 432, 261, 280, 305, 330];
const F32_PROB_TOLERANCE = 1e-4;

describe('GGUF adapter export', () => {
  let base: ExportBase;
  let dir: string;
  before(() => {
    base = openExportBase(fixture('models', 'stories260K'));
    dir = mkdtempSync(join(tmpdir(), 'qlora-gguf-adapter-'));
  });
  after(() => {
    base.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('equals convert_lora_to_gguf.py output byte for byte', () => {
    const out = join(dir, 'lora.gguf');
    writeGgufAdapter(readAdapterFor(base, fixture('golden', 'stories260K-lora')), base.config, out, { name: 'stories260K Lora' });
    assert.ok(readFileSync(out).equals(readFileSync(fixture('gguf', 'stories260K-lora-f32.gguf'))));
  });

  it('llama.cpp applies it like our forward with the adapter', async () => {
    const modelFile = join(dir, 'base.gguf');
    const loraFile = join(dir, 'lora.gguf');
    writeGgufModel(base, (n) => base.readF32(n), modelFile, 'f32');
    writeGgufAdapter(readAdapterFor(base, fixture('golden', 'stories260K-lora')), base.config, loraFile);
    const model = await loadModel(fixture('models', 'stories260K'), { kernels: new RefKernels(), quant: 'none' });
    loadPeftAdapter(model, fixture('golden', 'stories260K-lora'));
    const logits = model.forward(Int32Array.from(IDS), 1, IDS.length, { logits: 'last' });
    model.dispose();
    const diff = await llamaCppProbabilityDiff(modelFile, IDS, softmaxRowsF64(logits, 1, logits.length), loraFile);
    assert.ok(diff <= F32_PROB_TOLERANCE, `max probability difference ${diff}`);
  });
});
