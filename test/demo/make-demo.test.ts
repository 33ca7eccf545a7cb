// The demo assets are what `npm run demo:make` makes: the shipped fine-tuning set and tokenizer are
// exactly the seeded generator's and the BPE trainer's output, the stories are deterministic, and
// a freshly initialised model folder has the shipped config and loads (training it for real takes
// 12 minutes and is the script's own job).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { demoDataPath, demoModelPath } from '../../src/demo.js';
import { RefKernels } from '../../src/kernels/ref/index.js';
import { loadModel } from '../../src/model/load.js';
import { trainBpeTokenizer } from '../../scripts/demo/bpe-train.js';
import { BASE_SEED, BASE_STORIES, DEMO_CONFIG, jsonl, PIP_SEED, PIP_STORIES, writeInitialModel } from '../../scripts/demo/make-demo.js';
import { baseStory, pipStory, stories } from '../../scripts/demo/stories.js';

test('the shipped Pip stories are the generator\'s, and the generator is deterministic', () => {
  assert.equal(readFileSync(demoDataPath(), 'utf8'), jsonl(stories(pipStory, PIP_STORIES, PIP_SEED)));
  assert.deepEqual(stories(baseStory, 50, 9), stories(baseStory, 50, 9));
  assert.notDeepEqual(stories(baseStory, 50, 9), stories(baseStory, 50, 10));
  for (const s of stories(baseStory, 500, BASE_SEED)) assert.ok(!s.includes('Pip') && !s.includes('dragon') && !s.includes('cloud'), s);
});

test('the shipped tokenizer is the BPE trainer\'s on the base stories; a fresh init loads with the shipped config', async () => {
  const tokenizer = trainBpeTokenizer(stories(baseStory, BASE_STORIES, BASE_SEED).join('\n'), DEMO_CONFIG.vocab_size, DEMO_CONFIG.max_position_embeddings);
  assert.deepEqual(JSON.parse(readFileSync(join(demoModelPath(), 'tokenizer.json'), 'utf8')), tokenizer.tokenizerJson);
  assert.deepEqual(JSON.parse(readFileSync(join(demoModelPath(), 'tokenizer_config.json'), 'utf8')), tokenizer.tokenizerConfig);
  const dir = mkdtempSync(join(tmpdir(), 'qlora-demo-init-'));
  try {
    writeInitialModel(dir, tokenizer, 3);
    assert.deepEqual(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')), JSON.parse(readFileSync(join(demoModelPath(), 'config.json'), 'utf8')));
    const model = await loadModel(dir, { kernels: new RefKernels(), quant: 'none' });
    assert.equal(model.config.numLayers, 4);
    const ids = model.tokenizer!.encode('Once upon a time,');
    const logits = model.forward(Int32Array.from(ids), 1, ids.length, { logits: 'last' });
    // Random init: close to uniform over the vocabulary.
    const max = Math.max(...logits);
    assert.ok(Number.isFinite(max) && max < 1, `largest logit ${max}`);
    model.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
