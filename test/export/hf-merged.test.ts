// Merged HF export: the golden adapter merged into stories260K gives PEFT's merge_and_unload
// weights (golden.safetensors merged.*) and logits; f16 overflow is refused with the tensor named.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NumericError } from '../../src/errors.js';
import { mergedReader, openExportBase, readAdapterFor } from '../../src/export/base.js';
import { writeMergedFolder } from '../../src/export/hf-merged.js';
import { openCheckpoint } from '../../src/formats/safetensors.js';
import { RefKernels } from '../../src/kernels/ref/index.js';
import { loadModel } from '../../src/model/load.js';
import { fixture } from '../helpers/shared.js';

const GOLDEN = fixture('golden', 'stories260K-lora');

describe('merged HF export', () => {
  it('equals PEFT merge_and_unload weights and logits', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qlora-merged-'));
    const base = openExportBase(fixture('models', 'stories260K'));
    const golden = openCheckpoint(join(GOLDEN, 'golden.safetensors'));
    try {
      const out = join(dir, 'merged');
      writeMergedFolder(base, mergedReader(base, readAdapterFor(base, GOLDEN)), out);
      const merged = openCheckpoint(out);
      for (const n of golden.names().filter((x) => x.startsWith('merged.model.'))) {
        const ours = merged.readF32(n.slice('merged.'.length));
        const theirs = golden.readF32(n);
        let d = 0;
        for (let i = 0; i < ours.length; i++) d = Math.max(d, Math.abs(ours[i] - theirs[i]));
        assert.ok(d < 1e-6, `${n}: ${d}`);
      }
      merged.close();
      const model = await loadModel(out, { kernels: new RefKernels(), quant: 'none' });
      const ids = Int32Array.from(golden.readF32('input_ids'));
      const logits = model.forward(ids, 2, 32, { logits: 'all' });
      model.dispose();
      const want = golden.readF32('merged.logits');
      let d = 0;
      for (let i = 0; i < want.length; i++) d = Math.max(d, Math.abs(logits[i] - want[i]));
      assert.ok(d < 1e-4, `logits differ by ${d}`);
      const huge = (name: string): Float32Array => (name.endsWith('0.mlp.up_proj.weight') ? base.readF32(name).fill(1e6) : base.readF32(name));
      assert.throws(() => writeMergedFolder(base, huge, join(dir, 'f16'), { dtype: 'f16' }), (e: unknown) => e instanceof NumericError && /up_proj/.test(String(e.field)));
      assert.deepEqual(readdirSync(dir), ['merged']);
    } finally {
      golden.close();
      base.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
