// The package entry point exposes the public API and a whole pipeline runs through it alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as qlora from '../src/index.js';
import { fixture } from './helpers/shared.js';

test('package entry: load stories260K in NF4 through the public API and generate greedily', async () => {
  const kernels = await qlora.createKernels({ backend: 'ref' });
  try {
    const model = await qlora.loadModel(fixture('models', 'stories260K'), { kernels });
    assert.equal(model.config.architecture, 'llama');
    assert.deepEqual(model.generationConfig?.eosTokenIds, [2]); // from generation_config.json
    const out = await qlora.generate(model, [1], { maxNewTokens: 8, temperature: 0 });
    assert.equal(out.ids.length, 8);
    model.dispose();
  } finally {
    await kernels.dispose();
  }
});

test('package entry: typed errors are exported as classes', () => {
  const err = new qlora.FormatError('bad header', { file: 'x.safetensors', expected: 'a', got: 'b' });
  assert.ok(err instanceof qlora.QloraError);
  assert.match(err.message, /x\.safetensors: bad header; expected a, got b/);
});
