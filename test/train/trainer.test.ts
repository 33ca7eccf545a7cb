// The fine-tuning loop end to end on stories260K (NF4 base, wasm kernels, 1 thread): held-out
// loss goes down by a tested margin; an interrupted run (Ctrl-C path and a kill after a
// checkpoint) resumes to a byte-identical adapter; full-parameter mode writes a model folder that
// loads with the lower loss; bad input fails before any training with a typed error.
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createKernels, type Kernels } from '../../src/kernels/index.js';
import { NumericError } from '../../src/errors.js';
import { loadModel } from '../../src/model/load.js';
import { train, type TrainOptions } from '../../src/train/trainer.js';
import type { RunConfigInput } from '../../src/train/train-options.js';
import { writePeftAdapter } from '../../src/formats/peft-write.js';
import { DATA, fixture } from '../helpers/shared.js';

const MODEL = fixture('models', 'stories260K');
/** Shakespeare is far from TinyStories: 24 LoRA steps must lower held-out loss by this much (nats). */
const MIN_EVAL_DROP = 0.5;

describe('train (stories260K)', () => {
  let kernels: Kernels;
  let dir: string;
  let text: string;
  const base = (): RunConfigInput => ({ model: MODEL, data: text, seqLen: 64, batchSize: 4, maxSteps: 24, evalSplit: 8, evalEvery: 8, saveEvery: 8, keepCheckpoints: 5, seed: 3 });
  const run = (name: string, config: RunConfigInput | null, extra: Partial<TrainOptions> = {}) => train({ config, out: join(dir, name), kernels, ...extra });
  const adapterBytes = (name: string): Buffer => readFileSync(join(dir, name, 'adapter', 'adapter_model.safetensors'));

  before(async () => {
    kernels = await createKernels({ threads: 1 });
    dir = mkdtempSync(join(tmpdir(), 'qlora-train-'));
    text = join(dir, 'shakespeare.txt');
    writeFileSync(text, readFileSync(join(DATA, 'tinyshakespeare.txt'), 'utf8').slice(0, 60000));
  });
  after(async () => {
    await kernels.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('without kernels: int16 frozen matmuls by default, exact f32 with activations: \'f32\'', async () => {
    const short = { ...base(), maxSteps: 3, evalEvery: 3, saveEvery: 3 };
    await train({ config: short, out: join(dir, 'own-default'), threads: 1 });
    await train({ config: short, out: join(dir, 'own-f32'), threads: 1, activations: 'f32' });
    const int16 = await createKernels({ threads: 1, int16Activations: true });
    try {
      await train({ config: short, out: join(dir, 'given-int16'), kernels: int16 });
    } finally {
      await int16.dispose();
    }
    await run('given-f32', short);
    assert.deepEqual(adapterBytes('own-default'), adapterBytes('given-int16'));
    assert.deepEqual(adapterBytes('own-f32'), adapterBytes('given-f32'));
    assert.notDeepEqual(adapterBytes('own-default'), adapterBytes('own-f32'));
  });

  it('lowers held-out loss and writes adapter, metrics, curve and checkpoints', async () => {
    const r = await run('a', base());
    assert.equal(r.steps, 24);
    assert.equal(r.interrupted, false);
    const metrics = readFileSync(join(dir, 'a', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string; step: number; loss: number });
    const evals = metrics.filter((m) => m.type === 'eval');
    assert.deepEqual(evals.map((m) => m.step), [0, 8, 16, 24]);
    assert.ok(evals[0].loss - evals[3].loss > MIN_EVAL_DROP, `eval loss ${evals[0].loss} -> ${evals[3].loss}`);
    assert.equal(metrics.filter((m) => m.type === 'train').length, 24);
    assert.match(readFileSync(join(dir, 'a', 'loss.svg'), 'utf8'), /eval loss/);
    const cfg = JSON.parse(readFileSync(join(dir, 'a', 'adapter', 'adapter_config.json'), 'utf8')) as { r: number; target_modules: string[] };
    assert.equal(cfg.r, 16);
    assert.deepEqual([...cfg.target_modules].sort(), ['down_proj', 'gate_proj', 'k_proj', 'o_proj', 'q_proj', 'up_proj', 'v_proj']);
    assert.deepEqual(readdirSync(join(dir, 'a', 'checkpoints')), ['step-000008', 'step-000016', 'step-000024']);
  });

  it('resumes to a byte-identical adapter after a kill following a checkpoint', async () => {
    cpSync(join(dir, 'a'), join(dir, 'killed'), { recursive: true });
    const killed = join(dir, 'killed');
    rmSync(join(killed, 'checkpoints', 'step-000016'), { recursive: true });
    rmSync(join(killed, 'checkpoints', 'step-000024'), { recursive: true });
    // What a kill leaves: a half-written checkpoint and metric lines past the checkpoint.
    mkdirSync(join(killed, 'checkpoints', '.step-000016.99999.tmp'));
    writeFileSync(join(killed, 'checkpoints', '.step-000016.99999.tmp', 'optimizer.safetensors'), 'partial');
    const r = await train({ config: null, out: killed, resume: true, kernels });
    assert.equal(r.steps, 24);
    assert.ok(adapterBytes('killed').equals(adapterBytes('a')));
    assert.equal(readFileSync(join(killed, 'metrics.jsonl'), 'utf8').trim().split('\n').length, readFileSync(join(dir, 'a', 'metrics.jsonl'), 'utf8').trim().split('\n').length);
    assert.ok(!existsSync(join(killed, 'checkpoints', '.step-000016.99999.tmp')));
  });

  it('an abort (Ctrl-C) checkpoints the current step; resuming ends byte-identical', async () => {
    const abort = new AbortController();
    const r = await run('int', base(), { signal: abort.signal, onEvent: (e) => { if (e.kind === 'step' && e.step === 5) abort.abort(); } });
    assert.equal(r.interrupted, true);
    assert.equal(r.steps, 5);
    assert.ok(existsSync(join(dir, 'int', 'checkpoints', 'step-000005', 'manifest.json')));
    const done = await train({ config: null, out: join(dir, 'int'), resume: true, kernels });
    assert.equal(done.steps, 24);
    assert.ok(adapterBytes('int').equals(adapterBytes('a')));
  });

  it('dropout, gradient accumulation and 8-bit states: seeded, deterministic, training', async () => {
    const cfg = { ...base(), maxSteps: 8, loraDropout: 0.1, gradAccum: 2, batchSize: 2, optimStates: '8bit' as const, evalEvery: 8 };
    const r1 = await run('d1', cfg);
    const r2 = await run('d2', cfg);
    assert.ok(adapterBytes('d1').equals(adapterBytes('d2')));
    assert.ok(r1.finalEval !== null && r2.finalEval !== null);
    const first = JSON.parse(readFileSync(join(dir, 'd1', 'metrics.jsonl'), 'utf8').split('\n')[0]) as { loss: number };
    assert.ok(r1.finalEval.loss < first.loss, `${r1.finalEval.loss} vs ${first.loss}`);
  });

  it('full-parameter mode writes a model folder that loads and scores lower', async () => {
    const r = await run('full', { ...base(), full: true, maxSteps: 10, evalEvery: 10, lr: 1e-3 });
    assert.equal(r.output, join(dir, 'full', 'model'));
    const metrics = readFileSync(join(dir, 'full', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string; loss: number });
    const evals = metrics.filter((m) => m.type === 'eval');
    assert.ok(evals[evals.length - 1].loss < evals[0].loss);
    const trained = await loadModel(r.output, { kernels, quant: 'none' });
    const original = await loadModel(MODEL, { kernels, quant: 'none' });
    const ids = trained.tokenizer!.encode(readFileSync(text, 'utf8').slice(0, 400)).slice(0, 64);
    const batch = Int32Array.from(ids);
    assert.ok(trained.loss(batch, 1, batch.length).loss < original.loss(batch, 1, batch.length).loss);
    trained.dispose();
    original.dispose();
  });

  it('bad input fails before training with typed errors, and keeps earlier runs', async () => {
    const rejects = async (config: RunConfigInput, re: RegExp, name = 'bad'): Promise<void> => {
      await assert.rejects(run(name, config, { overwrite: true }), (e: Error) => re.test(`${e.name}: ${e.message}`));
      assert.ok(!existsSync(join(dir, name, 'run.json')), 'nothing written');
    };
    const empty = join(dir, 'empty.jsonl');
    writeFileSync(empty, '');
    await rejects({ ...base(), data: empty }, /FormatError.*no rows|empty/);
    const missing = join(dir, 'missing.jsonl');
    writeFileSync(missing, '{"instruction": "hi"}\n');
    await rejects({ ...base(), data: missing }, /output/);
    const chat = join(dir, 'chat.jsonl');
    writeFileSync(chat, '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}\n');
    await rejects({ ...base(), data: chat }, /ConfigError.*chat template/);
    await rejects({ ...base(), targetModules: ['qkv_proj'] }, /ConfigError.*match no linear layer/);
    await rejects({ ...base(), loraR: 40 }, /ConfigError.*rank is larger than the layer/);
    const other = join(dir, 'other-base-adapter');
    mkdirSync(other);
    writePeftAdapter(other, { r: 2, loraAlpha: 4, useRslora: false, loraDropout: 0, targetModules: ['q_proj'], baseModelNameOrPath: 'another' },
      [{ module: 'model.layers.0.self_attn.q_proj', r: 2, inFeatures: 128, outFeatures: 128, A: new Float32Array(256), B: new Float32Array(256) }]);
    await rejects({ ...base(), adapter: other }, /ShapeError|FormatError/);
    await rejects({ ...base(), seqLen: 9999 }, /seqLen/);
    await rejects({ ...base(), full: true, quant: 'nf4' }, /ConfigError/);
    // An existing run is never replaced without overwrite.
    await assert.rejects(train({ config: base(), out: join(dir, 'a'), kernels }), /already holds a run/);
    assert.ok(existsSync(join(dir, 'a', 'adapter', 'adapter_model.safetensors')));
  });

  // Divergence: a learning rate of 1e38 overflows the LoRA weights at step 1; that is fatal under
  // either NaN policy (a skip cannot undo an update), before any checkpoint stores it. (A merely huge
  // rate, 1e12, saturates the model at loss ln(vocab) with zero gradients: finite, not caught.)
  it('divergence: an update that makes weights non-finite stops the run under both policies, naming the step and tensor', async () => {
    const diverging = (lr: number): RunConfigInput => ({ ...base(), lr, schedule: 'constant', warmupSteps: 0, maxGradNorm: 0, maxSteps: 6, saveEvery: 2, evalSplit: 0 });
    const stopped = (e: unknown): boolean => e instanceof NumericError && e.field === 'step 1' && /training stopped at step 1: the update made .*lora_[AB].* non-finite/.test(e.message) && /checkpoints/.test(String(e.hint));
    await assert.rejects(run('inf-weights', diverging(1e38)), stopped);
    await assert.rejects(run('inf-weights-skip', { ...diverging(1e38), nanPolicy: 'skip' }), stopped);
  });
});
