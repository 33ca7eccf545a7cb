// evaluatePerplexity (HF strided-window recipe) on stories260K, and the eval CLI's data reader.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { readEvalText } from '../../src/cli/eval.js';
import { RefKernels } from '../../src/kernels/ref/index.js';
import type { LlamaModel } from '../../src/model/llama.js';
import { loadModel } from '../../src/model/load.js';
import { evaluatePerplexity } from '../../src/model/perplexity.js';
import { fixture } from '../helpers/shared.js';
import { SENTENCE_IDS } from './helpers.js';

describe('evaluatePerplexity', () => {
  const kernels = new RefKernels();
  let model: LlamaModel;
  before(async () => {
    model = await loadModel(fixture('models', 'stories260K'), { kernels, quant: 'none' });
  });
  after(() => model.dispose());

  it('one window over the sentence gives the §14.2 NLL and perplexity', () => {
    const r = evaluatePerplexity(model, SENTENCE_IDS, { context: 64 });
    assert.equal(r.windows, 1);
    assert.equal(r.tokens, 34);
    assert.ok(Math.abs(r.nll - 54.4041) < 1e-3);
    assert.ok(Math.abs(r.perplexity - 4.95363) < 1e-3);
  });

  it('strided windows score every token after the first exactly once', () => {
    const progress: number[] = [];
    const r = evaluatePerplexity(model, SENTENCE_IDS, { context: 16, stride: 8, onProgress: (done) => progress.push(done) });
    // windows start at 0, 8, 16, 24 (the last one reaches the end)
    assert.equal(r.windows, 4);
    assert.equal(r.tokens, 34);
    assert.deepEqual(progress, [15, 23, 31, 34]);
    // without overlap, each window is an independent sequence: the sum of their losses
    const plain = evaluatePerplexity(model, SENTENCE_IDS, { context: 16 });
    let nll = 0;
    for (let b = 0; b < SENTENCE_IDS.length; b += 16) {
      const w = SENTENCE_IDS.subarray(b, Math.min(b + 16, SENTENCE_IDS.length));
      nll += model.loss(w, 1, w.length).sum;
    }
    assert.ok(Math.abs(plain.nll - nll) < 1e-9);
    assert.equal(plain.tokens, 34 - 2); // the first token of windows 2 and 3 has no context
  });

  it('refuses bad windows', () => {
    assert.throws(() => evaluatePerplexity(model, SENTENCE_IDS, { context: 1024 }), { name: 'ConfigError' });
    assert.throws(() => evaluatePerplexity(model, SENTENCE_IDS, { context: 16, stride: 17 }), { name: 'ConfigError' });
    assert.throws(() => evaluatePerplexity(model, SENTENCE_IDS.subarray(0, 1), { context: 16 }), { name: 'ConfigError' });
  });
});

describe('readEvalText', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'qlora-eval-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('joins JSONL text and Alpaca records with blank lines', () => {
    const file = join(dir, 'd.jsonl');
    writeFileSync(file, '{"text": "Once upon a time."}\n\n{"instruction": "Add", "input": "1 2", "output": "3"}\n{"instruction": "Greet", "output": "Hi"}\n');
    const text = readEvalText(file);
    const parts = text.split('\n\n');
    assert.equal(parts[0], 'Once upon a time.');
    assert.ok(text.includes('### Instruction:\nAdd\n\n### Input:\n1 2\n\n### Response:\n3'));
    assert.ok(text.endsWith('Write a response that appropriately completes the request.\n\n### Instruction:\nGreet\n\n### Response:\nHi'));
  });

  it('names the line of a bad record and refuses unknown file types', () => {
    const file = join(dir, 'bad.jsonl');
    writeFileSync(file, '{"text": "ok"}\n{"prompt": "x"}\n');
    assert.throws(() => readEvalText(file), { name: 'FormatError', message: /line 2/ });
    writeFileSync(join(dir, 'x.csv'), 'a,b');
    assert.throws(() => readEvalText(join(dir, 'x.csv')), { name: 'ConfigError' });
  });
});
