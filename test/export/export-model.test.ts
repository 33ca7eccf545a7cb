// exportModel over SRC kinds: a run folder (run.json + adapter/) to a GGUF adapter, an adapter folder
// with --model to bnb-4bit (loads back), a PEFT re-save; typed errors for missing --model and existing output.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../src/errors.js';
import { readGgufFile } from '../../src/formats/gguf/reader.js';
import { exportModel } from '../../src/export/index.js';
import { RefKernels } from '../../src/kernels/ref/index.js';
import { loadModel } from '../../src/model/load.js';
import { fixture } from '../helpers/shared.js';

const GOLDEN = fixture('golden', 'stories260K-lora');
const MODEL = fixture('models', 'stories260K');

describe('exportModel', () => {
  it('handles run folders, adapter folders and refuses bad input', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qlora-export-'));
    try {
      const run = join(dir, 'run');
      mkdirSync(join(run, 'adapter'), { recursive: true });
      for (const f of ['adapter_config.json', 'adapter_model.safetensors']) cpSync(join(GOLDEN, f), join(run, 'adapter', f));
      writeFileSync(join(run, 'run.json'), JSON.stringify({ model: MODEL }));
      exportModel(run, { format: 'gguf-adapter', out: join(dir, 'a.gguf') });
      assert.equal(readGgufFile(join(dir, 'a.gguf')).tensors.length, 70);
      exportModel(GOLDEN, { format: 'peft', model: MODEL, out: join(dir, 'peft') });
      assert.ok(readFileSync(join(dir, 'peft', 'adapter_model.safetensors')).equals(readFileSync(join(GOLDEN, 'adapter_model.safetensors'))));
      exportModel(GOLDEN, { format: 'bnb4', model: MODEL, out: join(dir, 'bnb') });
      const m = await loadModel(join(dir, 'bnb'), { kernels: new RefKernels() });
      assert.ok(Number.isFinite(m.forward(Int32Array.from([1, 385]), 1, 2, { logits: 'last' })[0]));
      m.dispose();
      assert.throws(() => exportModel(GOLDEN, { format: 'gguf', out: join(dir, 'x.gguf') }), ConfigError);
      assert.throws(() => exportModel(MODEL, { format: 'gguf', out: join(dir, 'a.gguf') }), ConfigError);
      assert.deepEqual(readdirSync(dir).sort(), ['a.gguf', 'bnb', 'peft', 'run']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
