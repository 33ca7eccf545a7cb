// The embedded demo, as a newcomer meets it: the shipped model is the project's own (tiny, f32,
// its tokenizer), `runDemo` quantizes, fine-tunes and exports with a lower loss and a visibly
// different story afterwards, llama.cpp (node-llama-cpp) loads the exported GGUF model and predicts
// as our forward does, and its adapter GGUF applies over a GGUF of the base; `qlora demo` prints
// the same as JSON and refuses to overwrite without --overwrite. The library's progress callbacks
// (transformers.js's shape) are checked on the same run.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { demoDataPath, demoModelPath, runDemo, type DemoPhase, type DemoReport } from '../../src/demo.js';
import { exportModel } from '../../src/export/index.js';
import { createKernels } from '../../src/kernels/index.js';
import { RefKernels } from '../../src/kernels/ref/index.js';
import { loadModel } from '../../src/model/load.js';
import type { ProgressInfo } from '../../src/progress.js';
import { qlora } from '../helpers/cli.js';
import { llamaCppProbabilityDiff } from '../helpers/llama-peer.js';
import { softmaxRowsF64 } from '../kernels/spec-oracle.js';

describe('the embedded demo', () => {
  let dir: string;
  let report: DemoReport;
  const phases: DemoPhase[] = [];
  const progress: ProgressInfo[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'qlora-demo-test-'));
    const kernels = await createKernels({ threads: 2 });
    try {
      report = await runDemo({ out: join(dir, 'out'), kernels, onPhase: (p) => phases.push(p), onTrainEvent: () => {} });
      await loadModel(report.quantized.dir, { kernels, progress_callback: (p) => progress.push(p) }).then((m) => m.dispose());
    } finally {
      await kernels.dispose();
    }
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('ships its own small model and fine-tuning set', () => {
    const model = demoModelPath();
    const config = JSON.parse(readFileSync(join(model, 'config.json'), 'utf8')) as { _name_or_path: string; vocab_size: number };
    assert.equal(config._name_or_path, 'qlora-ts-demo-stories');
    assert.ok(statSync(join(model, 'model.safetensors')).size <= 8e6, 'weights <= 8 MB');
    assert.ok(existsSync(join(model, 'tokenizer.json')));
    const rows = readFileSync(demoDataPath(), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { text: string });
    assert.ok(rows.length >= 100 && rows.every((r) => r.text.includes('Pip')));
  });

  it('quantizes, fine-tunes (loss down), changes the story and writes every file', () => {
    assert.deepEqual(phases, ['quantize', 'generate-before', 'train', 'generate-after', 'export']);
    assert.ok(report.quantized.outputBytes < report.quantized.sourceBytes / 3, `${report.quantized.outputBytes} of ${report.quantized.sourceBytes} bytes`);
    assert.ok(report.loss.lastStep < report.loss.firstStep * 0.6, `training loss ${report.loss.firstStep} -> ${report.loss.lastStep}`);
    assert.ok(report.loss.evalBefore !== null && report.loss.evalAfter !== null && report.loss.evalAfter < report.loss.evalBefore * 0.6, JSON.stringify(report.loss));
    assert.ok(report.before.startsWith('Once upon a time') && report.after.startsWith('Once upon a time'));
    assert.ok(!report.before.includes('Pip'), `before: ${report.before}`);
    assert.ok(report.after.includes('little dragon named Pip'), `after: ${report.after}`);
    for (const f of [report.files.gguf, report.files.ggufAdapter, join(report.files.adapter, 'adapter_model.safetensors'), join(report.files.adapter, 'adapter_config.json')]) assert.ok(statSync(f).size > 0, f);
    assert.match(readFileSync(report.files.lossCurve, 'utf8'), /^<svg[\s\S]*<\/svg>\s*$/);
  });

  it('llama.cpp loads the exported model and predicts as our forward over the same file', async () => {
    const model = await loadModel(report.files.gguf, { kernels: new RefKernels(), quant: 'gguf' });
    const ids = model.tokenizer!.encode('Once upon a time, there was a little');
    const logits = model.forward(Int32Array.from(ids), 1, ids.length, { logits: 'last' });
    model.dispose();
    const diff = await llamaCppProbabilityDiff(report.files.gguf, ids, softmaxRowsF64(logits, 1, logits.length));
    assert.ok(diff <= 5e-4, `max probability difference ${diff} (F16)`);
  });

  it('llama.cpp applies the exported adapter over a GGUF of the 4-bit base as our merged model predicts', async () => {
    const baseGguf = join(dir, 'base-f32.gguf');
    exportModel(report.quantized.dir, { format: 'gguf', dtype: 'f32', out: baseGguf });
    const merged = await loadModel(report.files.gguf, { kernels: new RefKernels(), quant: 'none' });
    const ids = merged.tokenizer!.encode('Once upon a time');
    const logits = merged.forward(Int32Array.from(ids), 1, ids.length, { logits: 'last' });
    merged.dispose();
    // Our reference is the merged F16 file: its rounding bounds the difference.
    const diff = await llamaCppProbabilityDiff(baseGguf, ids, softmaxRowsF64(logits, 1, logits.length), report.files.ggufAdapter);
    assert.ok(diff <= 2e-3, `max probability difference ${diff}`);
  });

  it('progress callbacks: initiate, progress (0-100 %), done, ready', () => {
    assert.equal(progress[0]?.status, 'initiate');
    const steps = progress.filter((p) => p.status === 'progress');
    assert.ok(steps.length > 0);
    for (const p of steps) assert.ok(p.progress >= 0 && p.progress <= 100 && p.loaded <= p.total);
    assert.equal(steps.at(-1)?.progress, 100);
    assert.deepEqual(progress.slice(-2).map((p) => p.status), ['done', 'ready']);
    assert.deepEqual(progress.at(-1), { status: 'ready', task: 'load', model: report.quantized.dir });
  });

  it('qlora demo --json reports the same run, and refuses to replace it without --overwrite', async () => {
    const out = join(dir, 'cli');
    const run = await qlora('demo', '--out', out, '--steps', '20', '--json');
    assert.equal(run.code, 0, run.stderr);
    const r = JSON.parse(run.stdout) as DemoReport;
    assert.equal(r.steps, 20);
    assert.ok(r.loss.lastStep < r.loss.firstStep);
    assert.ok(existsSync(r.files.gguf));
    const again = await qlora('demo', '--out', out, '--steps', '20');
    assert.equal(again.code, 2);
    assert.match(again.stderr, /exists.*--overwrite/);
    writeFileSync(join(out, 'mine.txt'), 'kept until replaced');
    const replaced = await qlora('demo', '--out', out, '--steps', '10', '--overwrite', '--json');
    assert.equal(replaced.code, 0, replaced.stderr);
    assert.equal((JSON.parse(replaced.stdout) as DemoReport).steps, 10);
    assert.ok(!existsSync(join(out, 'mine.txt')));
    assert.deepEqual(readdirSync(dir).filter((n) => n.includes('.old-')), []);
  });

  it('--overwrite gives the earlier output back when the new demo fails part-way', async () => {
    const out = join(dir, 'kept');
    mkdirSync(out);
    writeFileSync(join(out, 'mine.txt'), 'keep me');
    const kernels = new RefKernels();
    // steps 0 is refused by the trainer, after the demo has quantized into the new folder.
    await assert.rejects(runDemo({ out, overwrite: true, steps: 0, kernels }), { name: 'ConfigError', message: /maxSteps/ });
    assert.equal(readFileSync(join(out, 'mine.txt'), 'utf8'), 'keep me');
    assert.deepEqual(readdirSync(out), ['mine.txt']);
    assert.deepEqual(readdirSync(dir).filter((n) => n.includes('.old-')), []);
  });
});
