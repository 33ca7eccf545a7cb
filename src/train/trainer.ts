// The fine-tuning loop: `train(options)` loads the base (NF4 + double quantization by default),
// attaches LoRA (or unfreezes everything in full-parameter mode), tokenizes the data, and runs
// optimizer steps of `gradAccum` micro-batches each (token-weighted, so a step's gradient is that
// of the mean loss over all its tokens, as one large batch would give), with global-norm clipping,
// AdamW and the LR schedule; evaluates every N steps, checkpoints every M steps, and at the end
// writes the PEFT adapter (or the model folder), the metrics and the loss curve.
//
// Run folder (RUN_DIR):
//   run.json                 {"format": "qlora-ts-run", "model": base path, "config": RunConfig, ...}
//   adapter/                 PEFT adapter (LoRA; updated at every checkpoint and at the end)
//   model/                   Hugging Face folder (full-parameter mode)
//   metrics.jsonl            one line per step ({"type":"train",...}) and evaluation ({"type":"eval",...})
//   loss.svg                 the loss curve (train and eval)
//   checkpoints/step-NNNNNN/ see checkpoint.ts
// Reproducibility: data order (BatchIterator cursor), dropout masks (a key from seed, step and
// micro-batch) and the optimizer state are all in the checkpoint or derived from it, so a resumed
// run continues exactly as the uninterrupted one would have (same kernels and thread count).
// Not here: options and defaults (train-options.ts), the math (model/, nn/), the optimizer
// (optim.ts, schedule.ts), the command line (cli/train.ts).

import { appendFileSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ConfigError, IoError, NumericError, UnsupportedError } from '../errors.js';
import { writeBytesAtomic } from '../formats/atomic.js';
import { isJsonObject, parseJsonStrict } from '../formats/json-strict.js';
import { openCheckpoint } from '../formats/safetensors.js';
import { writeSafetensors, type TensorToWrite } from '../formats/safetensors-write.js';
import { createKernels, type Kernels } from '../kernels/index.js';
import type { LlamaModel } from '../model/llama.js';
import { loadModel } from '../model/load.js';
import { dropoutKey } from '../nn/dropout.js';
import { layerLinears } from '../nn/decoder-layer.js';
import { resolveQuantizationConfig } from '../quant/config.js';
import { CHECKPOINTS_DIR, latestCheckpoint, OPTIMIZER_FILE, readTrainerState, TRAINER_STATE_FILE, writeCheckpoint } from './checkpoint.js';
import { BatchIterator, evalBatches, loadDataset, splitDataset, type Batch, type BatchCursor, type TokenizedDataset } from './data.js';
import { attachExistingLora, attachNewLora, loraParams, writeLoraAdapter, type LoraWriteSpec } from './lora.js';
import { AdamW, clipGradNorm, gradNorm, stateTensorsToWrite, type TrainableParam } from './optim.js';
import { plotRun } from './plot.js';
import { learningRate } from './schedule.js';
import { cadenceOf, MIN_SPLIT_EXAMPLES, resolveRunConfig, totalStepsOf, warmupStepsOf, type RunConfig, type RunConfigInput } from './train-options.js';
import { progressTracker, type WithProgressCallback } from '../progress.js';

export const RUN_FILE = 'run.json';
export const METRICS_FILE = 'metrics.jsonl';
export const ADAPTER_DIR = 'adapter';
export const MODEL_DIR = 'model';
const RUN_FORMAT = 'qlora-ts-run';
/** Files and folders a run writes: the only ones --overwrite removes. */
const RUN_OUTPUTS = [RUN_FILE, METRICS_FILE, 'loss.svg', ADAPTER_DIR, MODEL_DIR, CHECKPOINTS_DIR];
/** Files of a Hugging Face folder copied unchanged into a full-parameter run's model/. */
const HF_SIDE_FILES = ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'chat_template.jinja', 'tokenizer.model'];

export type TrainEvent =
  | { readonly kind: 'load'; readonly done: number; readonly total: number }
  | { readonly kind: 'tokenize'; readonly file: string; readonly done: number; readonly total: number }
  | { readonly kind: 'start'; readonly totalSteps: number; readonly startStep: number; readonly trainExamples: number; readonly evalExamples: number; readonly trainableParams: number; readonly config: RunConfig }
  | { readonly kind: 'step'; readonly step: number; readonly totalSteps: number; readonly loss: number; readonly lr: number; readonly gradNorm: number; readonly tokensPerS: number; readonly etaS: number; readonly epoch: number; readonly skipped: boolean }
  | { readonly kind: 'eval'; readonly step: number; readonly loss: number; readonly perplexity: number }
  | { readonly kind: 'checkpoint'; readonly step: number; readonly dir: string }
  | { readonly kind: 'warning'; readonly message: string };

export interface TrainOptions extends WithProgressCallback {
  /** The run's settings (ignored except maxSteps / epochs when resuming: the run's own are used). */
  readonly config: RunConfigInput | null;
  /** The run folder. */
  readonly out: string;
  /** Continue the run in `out` from its newest intact checkpoint. */
  readonly resume?: boolean;
  /** Replace the outputs of an earlier run in `out`. */
  readonly overwrite?: boolean;
  /** Compute kernels (the caller disposes them); default: wasm with `threads` threads. */
  readonly kernels?: Kernels;
  readonly threads?: number;
  /**
   * Arithmetic of the frozen matmuls (4-bit base, f32 lm head) when `kernels` is not given:
   * 'int16' (default; 13-bit integer operands per block, kernels/ref/matmul-int16.ts) or 'f32' (exact).
   */
  readonly activations?: TrainActivations;
  readonly onEvent?: (e: TrainEvent) => void;
  /** Abort: the run saves a checkpoint after the current step and returns (interrupted). */
  readonly signal?: AbortSignal;
  /**
   * Bytes of layer activations kept per micro-batch instead of recomputed in the backward (gradient
   * checkpointing only as far as memory requires); default DEFAULT_ACTIVATION_MEMORY, 0 recomputes
   * all. Same gradients, bit for bit: only speed and memory change.
   */
  readonly activationMemoryBytes?: number;
}

/** 1.5 GiB: at the SmolLM2-135M shape, batch 4 x 256, every one of its 30 layers skips its recomputation (1 GiB: 21). */
export const DEFAULT_ACTIVATION_MEMORY = 1.5 * 2 ** 30;

export interface TrainResult {
  readonly runDir: string;
  readonly steps: number;
  readonly totalSteps: number;
  readonly interrupted: boolean;
  /** Mean loss of the last step. */
  readonly finalLoss: number;
  readonly finalEval: { loss: number; perplexity: number } | null;
  /** The adapter folder (LoRA) or model folder (full-parameter mode). */
  readonly output: string;
  /** Mean training throughput over the steps run (tokens of the batches, padding included). */
  readonly tokensPerS: number;
}

interface RunState {
  readonly cfg: RunConfig;
  readonly model: LlamaModel;
  readonly params: TrainableParam[];
  readonly opt: AdamW;
  readonly train: TokenizedDataset;
  readonly evalSet: Batch[];
  readonly totalSteps: number;
  readonly runDir: string;
}

/** Arithmetic of training's frozen 4-bit matmuls (TrainOptions.activations). */
export type TrainActivations = 'int16' | 'f32';

/** Fine-tunes as configured; resolves when the run ends (finished or interrupted). */
export async function train(opts: TrainOptions): Promise<TrainResult> {
  const runDir = resolve(opts.out);
  const tracker = progressTracker(opts.progress_callback, 'train', runDir, join(runDir, METRICS_FILE));
  const emit = (e: TrainEvent): void => {
    opts.onEvent?.(e);
    if (e.kind === 'step') tracker.update(e.step, e.totalSteps);
  };
  const input = opts.resume === true ? resumedInput(runDir, opts.config) : opts.config;
  if (input === null) throw new ConfigError('no training configuration given', { field: 'config' });
  if (opts.resume !== true) prepareRunDir(runDir, opts.overwrite === true);
  const kernels = opts.kernels ?? await createKernels({ threads: opts.threads, int16Activations: (opts.activations ?? 'int16') === 'int16' });
  try {
    const result = await runWithKernels(kernels, input, runDir, opts.resume === true, emit, opts.signal, opts.activationMemoryBytes ?? DEFAULT_ACTIVATION_MEMORY);
    tracker.finish();
    return result;
  } finally {
    if (opts.kernels === undefined) await kernels.dispose();
  }
}

async function runWithKernels(kernels: Kernels, input: RunConfigInput, runDir: string, resume: boolean, emit: (e: TrainEvent) => void, signal: AbortSignal | undefined, activationMemory: number): Promise<TrainResult> {
  const modelPath = resolve(input.model);
  if (input.full === true && input.quant !== undefined && input.quant !== 'none') throw new ConfigError('full-parameter training trains f32 weights', { field: 'quant', expected: 'none', got: input.quant });
  const quant = input.quant ?? (input.full === true ? 'none' : 'nf4');
  const model = await loadModel(modelPath, {
    kernels, quant: quant === 'none' || quant === 'gguf' ? quant : resolveQuantizationConfig({ quantType: quant }),
    onProgress: (done, total) => emit({ kind: 'load', done, total }),
  });
  try {
    const cfg = resolveRunConfig({ ...input, model: modelPath }, modelFacts(model));
    const checkpoint = resume ? latestCheckpoint(runDir) : null;
    // Stopped before its first checkpoint: the saved configuration starts over (same seed, so the
    // same run); metrics of the lost attempt are dropped.
    if (resume && checkpoint === null) {
      emit({ kind: 'warning', message: 'the run has no checkpoint yet: starting it again from step 0' });
      rmSync(join(runDir, METRICS_FILE), { force: true });
    }
    for (const skipped of checkpoint?.skipped ?? []) emit({ kind: 'warning', message: `checkpoint ${skipped}: using an older one` });
    const state = prepare(model, cfg, runDir, emit, checkpoint?.dir ?? null);
    try {
      return await loop(state, checkpoint?.dir ?? null, emit, signal, activationMemory);
    } finally {
      state.opt.dispose();
    }
  } finally {
    model.dispose();
  }
}

function modelFacts(model: LlamaModel): { hiddenSize: number; maxPositionEmbeddings: number; smallestLinearDim: number } {
  let smallest = Infinity;
  for (const layer of model.weights.layers) for (const lin of layerLinears(layer)) smallest = Math.min(smallest, lin.inFeatures, lin.outFeatures);
  return { hiddenSize: model.config.hiddenSize, maxPositionEmbeddings: model.config.maxPositionEmbeddings, smallestLinearDim: smallest };
}

/**
 * Data, adapters and optimizer: every check that can fail happens here, before step 1. With a
 * checkpoint, the trained tensors and the optimizer state come from it.
 */
function prepare(model: LlamaModel, cfg: RunConfig, runDir: string, emit: (e: TrainEvent) => void, checkpoint: string | null): RunState {
  const tokenizer = model.tokenizer;
  if (tokenizer === null) throw new ConfigError('the model has no tokenizer: training data cannot be tokenized', { file: cfg.model, hint: 'use a model folder with tokenizer.json or a GGUF with tokenizer metadata' });
  const dataOpts = (file: string): Parameters<typeof loadDataset>[2] => ({
    format: cfg.format, seqLen: cfg.seqLen, packing: cfg.packing, completionOnly: cfg.completionOnly, overlong: cfg.overlong,
    onProgress: (done, total) => emit({ kind: 'tokenize', file, done, total }),
  });
  let trainSet = loadDataset(resolve(cfg.data), tokenizer, dataOpts(cfg.data));
  let held: TokenizedDataset | null = null;
  if (cfg.evalData !== null) {
    held = loadDataset(resolve(cfg.evalData), tokenizer, dataOpts(cfg.evalData));
  } else if (cfg.evalSplit > 0) {
    if (cfg.evalSplit >= 1 || trainSet.examples.length >= MIN_SPLIT_EXAMPLES) {
      ({ train: trainSet, eval: held } = splitDataset(trainSet, cfg.evalSplit, cfg.seed));
    } else {
      emit({ kind: 'warning', message: `${trainSet.examples.length} examples are too few for a held-out split (fewer than ${MIN_SPLIT_EXAMPLES}): no evaluation; give --eval-data` });
    }
  }
  for (const w of [...trainSet.warnings, ...(held?.warnings ?? [])]) emit({ kind: 'warning', message: w });
  let params: TrainableParam[];
  if (cfg.full) {
    if (!statSync(cfg.model).isDirectory()) throw new UnsupportedError('full-parameter training writes a Hugging Face folder and needs one as the base', { file: cfg.model, expected: 'a model folder (config.json + safetensors)' });
    params = model.enableFullTraining();
    if (checkpoint !== null) readTensorsInto(join(checkpoint, 'model.safetensors'), params);
  } else {
    if (checkpoint !== null) attachExistingLora(model, join(checkpoint, ADAPTER_DIR), cfg.lora.dropout);
    else if (cfg.adapter !== null) attachExistingLora(model, resolve(cfg.adapter), cfg.lora.dropout);
    else attachNewLora(model, cfg.lora, cfg.seed);
    params = loraParams(model);
  }
  const opt = new AdamW(model.kernels, params, { lr: cfg.lr, weightDecay: cfg.weightDecay, states: cfg.optimStates });
  if (checkpoint !== null) {
    const optFile = join(checkpoint, OPTIMIZER_FILE);
    const src = openCheckpoint(optFile);
    try {
      opt.loadState(src, optFile);
    } finally {
      src.close();
    }
  }
  const batchesPerEpoch = Math.ceil(trainSet.examples.length / cfg.batchSize);
  return {
    cfg, model, params, opt, train: trainSet, evalSet: held === null ? [] : evalBatches(held, cfg.batchSize, held.padId),
    totalSteps: totalStepsOf(cfg, batchesPerEpoch), runDir,
  };
}

async function loop(s: RunState, checkpoint: string | null, emit: (e: TrainEvent) => void, signal: AbortSignal | undefined, activationMemory: number): Promise<TrainResult> {
  const { cfg, model, params, opt, totalSteps, runDir } = s;
  let startStep = 0;
  let cursor: BatchCursor | undefined;
  if (checkpoint !== null) ({ startStep, cursor } = restoreProgress(runDir, checkpoint));
  else writeRunJson(s);
  const batches = new BatchIterator(s.train, cfg.batchSize, cfg.seed, { cursor });
  const schedule = { lr: cfg.lr, schedule: cfg.schedule, warmupSteps: warmupStepsOf(cfg, totalSteps), totalSteps };
  const evalEvery = cadenceOf(cfg.evalEvery, totalSteps, 10);
  const saveEvery = cadenceOf(cfg.saveEvery, totalSteps, 4);
  const metrics = join(runDir, METRICS_FILE);
  emit({ kind: 'start', totalSteps, startStep, trainExamples: s.train.examples.length, evalExamples: s.evalSet.reduce((n, b) => n + b.B, 0), trainableParams: params.reduce((n, p) => n + p.data.length, 0), config: cfg });
  let finalLoss = Number.NaN;
  let finalEval: { loss: number; perplexity: number } | null = null;
  let tokens = 0;
  let seconds = 0;
  let step = startStep;
  let interrupted = false;
  const evalAt = (at: number): void => {
    const r = evaluate(model, s.evalSet);
    appendMetric(metrics, { type: 'eval', step: at, loss: finiteOrNull(r.loss), perplexity: finiteOrNull(r.perplexity) });
    emit({ kind: 'eval', step: at, ...r });
    finalEval = r;
  };
  // Step 0: the base (LoRA B = 0 adds nothing) or the continued adapter, for the curve's start.
  if (s.evalSet.length > 0 && startStep === 0) evalAt(0);
  while (step < totalSteps) {
    const t0 = performance.now();
    for (const p of params) p.grad.fill(0);
    const micro = Array.from({ length: cfg.gradAccum }, () => batches.next());
    const counted = micro.reduce((n, b) => n + b.tokens, 0);
    let sum = 0;
    micro.forEach((b, i) => {
      if (b.tokens === 0) return;
      const dropoutSeed = cfg.lora.dropout > 0 && !cfg.full ? dropoutKey(dropoutKey(cfg.seed, step), i) : undefined;
      sum += model.forwardBackward(b.ids, b.B, b.T, b.labels, { lossScale: b.tokens / counted, dropoutSeed, activationBudgetBytes: activationMemory }).sum;
    });
    const loss = counted > 0 ? sum / counted : Number.NaN;
    const norm = cfg.maxGradNorm > 0 ? clipGradNorm(model.kernels, params, cfg.maxGradNorm) : gradNorm(model.kernels, params);
    const lr = learningRate(step, schedule);
    const bad = !Number.isFinite(loss) ? (counted === 0 ? 'no trained tokens in the batch' : `loss ${loss}`) : !Number.isFinite(norm) ? `gradient norm ${norm}` : null;
    if (bad !== null && cfg.nanPolicy === 'stop') {
      throw new NumericError(`training stopped at step ${step + 1}: ${bad}`, { field: `step ${step + 1}`, hint: `the last good checkpoint is in ${join(runDir, CHECKPOINTS_DIR)}; lower --lr, or pass --nan-policy skip` });
    }
    if (bad !== null) emit({ kind: 'warning', message: `step ${step + 1} skipped: ${bad}` });
    else {
      opt.step(lr);
      // An update that overflows a weight cannot be skipped afterwards: always fatal, before any
      // checkpoint would store it (a learning rate of 1e38 does this at step 1).
      const broken = firstNonFinite(params);
      if (broken !== null) {
        throw new NumericError(`training stopped at step ${step + 1}: the update made ${broken} non-finite`, { field: `step ${step + 1}`, hint: `the last good checkpoint is in ${join(runDir, CHECKPOINTS_DIR)}; lower --lr` });
      }
    }
    step++;
    const dt = (performance.now() - t0) / 1000;
    const stepTokens = micro.reduce((n, b) => n + b.B * b.T, 0);
    tokens += stepTokens;
    seconds += dt;
    finalLoss = loss;
    const epoch = (step * cfg.gradAccum) / Math.ceil(s.train.examples.length / cfg.batchSize);
    appendMetric(metrics, { type: 'train', step, loss: finiteOrNull(loss), lr, grad_norm: finiteOrNull(norm), tokens_per_s: stepTokens / dt, epoch, time_s: dt });
    emit({ kind: 'step', step, totalSteps, loss, lr, gradNorm: norm, tokensPerS: stepTokens / dt, etaS: (seconds / (step - startStep)) * (totalSteps - step), epoch, skipped: bad !== null });
    if (s.evalSet.length > 0 && (step % evalEvery === 0 || step === totalSteps)) evalAt(step);
    // Give signal handlers (Ctrl-C) a turn between steps.
    await new Promise((r) => setImmediate(r));
    interrupted = signal?.aborted === true && step < totalSteps;
    if (step % saveEvery === 0 || step === totalSteps || interrupted) {
      emit({ kind: 'checkpoint', step, dir: save(s, step, batches.cursor()) });
    }
    if (interrupted) break;
  }
  if (existsSync(metrics)) plotRun(runDir);
  return {
    runDir, steps: step, totalSteps, interrupted, finalLoss, finalEval,
    output: join(runDir, cfg.full ? MODEL_DIR : ADAPTER_DIR), tokensPerS: seconds > 0 ? tokens / seconds : 0,
  };
}

function finiteOrNull(x: number): number | null {
  return Number.isFinite(x) ? x : null;
}

function appendMetric(file: string, m: Record<string, unknown>): void {
  appendFileSync(file, `${JSON.stringify(m)}\n`);
}

/** Token-weighted mean loss over the held-out batches, and its perplexity. */
export function evaluate(model: LlamaModel, batches: readonly Batch[]): { loss: number; perplexity: number } {
  let sum = 0;
  let count = 0;
  for (const b of batches) {
    const r = model.loss(b.ids, b.B, b.T, b.labels);
    sum += r.sum;
    count += r.count;
  }
  const loss = count > 0 ? sum / count : Number.NaN;
  return { loss, perplexity: Math.exp(loss) };
}

/** The name of the first trainable tensor holding a NaN or Inf, or null. */
function firstNonFinite(params: readonly TrainableParam[]): string | null {
  for (const p of params) {
    const d = p.data;
    for (let i = 0; i < d.length; i++) if (!Number.isFinite(d[i])) return `${p.name} (element ${i})`;
  }
  return null;
}

// ---- run folder --------------------------------------------------------------------------------

function prepareRunDir(runDir: string, overwrite: boolean): void {
  if (existsSync(runDir)) {
    if (!statSync(runDir).isDirectory()) throw new IoError('the run folder is a file', { file: runDir });
    const earlier = readdirSync(runDir).filter((n) => RUN_OUTPUTS.includes(n));
    if (earlier.length > 0 && !overwrite) {
      throw new ConfigError('the run folder already holds a run', { file: runDir, got: earlier.join(', '), hint: 'pass --overwrite to replace it, --resume to continue it, or choose another --out' });
    }
    for (const n of earlier) rmSync(join(runDir, n), { recursive: true, force: true });
  }
  mkdirSync(runDir, { recursive: true });
}

function writeRunJson(s: RunState): void {
  const run = { format: RUN_FORMAT, version: 1, model: s.cfg.model, mode: s.cfg.full ? 'full' : 'lora', config: s.cfg, totalSteps: s.totalSteps, created: new Date().toISOString() };
  writeBytesAtomic(join(s.runDir, RUN_FILE), `${JSON.stringify(run, null, 2)}\n`);
}

/** The saved configuration of the run in runDir, with a new maxSteps / epochs when given. */
function resumedInput(runDir: string, given: RunConfigInput | null): RunConfigInput {
  const file = join(runDir, RUN_FILE);
  if (!existsSync(file)) throw new IoError('not a run folder: run.json is missing', { file, hint: 'resume takes the --out folder of an earlier `qlora train`' });
  const run = parseJsonStrict(readFileSync(file, 'utf8'), file);
  if (!isJsonObject(run) || run.format !== RUN_FORMAT || !isJsonObject(run.config)) throw new IoError('run.json is not a qlora-ts run', { file, field: 'format', expected: RUN_FORMAT });
  const saved = run.config as unknown as RunConfig;
  const { lora, ...rest } = saved;
  const extend = given === null ? {} : { ...(given.maxSteps !== undefined ? { maxSteps: given.maxSteps } : {}), ...(given.epochs !== undefined ? { epochs: given.epochs } : {}) };
  return { ...rest, loraR: lora.r, loraAlpha: lora.alpha, loraDropout: lora.dropout, targetModules: lora.targetModules, rslora: lora.rslora, init: lora.init, ...extend };
}

function loraWriteSpec(s: RunState): LoraWriteSpec {
  return s.cfg.lora;
}

/** Trained tensors as they go into the checkpoint and the final folder (f32, exact). */
function paramTensors(params: readonly TrainableParam[], shapeOf: (name: string) => readonly number[]): TensorToWrite[] {
  return params.map((p) => ({ name: p.name, dtype: 'F32', shape: shapeOf(p.name), data: new Uint8Array(p.data.buffer, p.data.byteOffset, p.data.byteLength) }));
}

function writeTrained(s: RunState, dir: string): void {
  if (s.cfg.full) {
    const shapes = fullShapes(s.model);
    writeSafetensors(join(dir, 'model.safetensors'), paramTensors(s.params, (n) => shapes.get(n) as number[]), { format: 'pt' });
  } else {
    mkdirSync(join(dir, ADAPTER_DIR), { recursive: true });
    writeLoraAdapter(join(dir, ADAPTER_DIR), s.model, loraWriteSpec(s), s.cfg.model);
  }
}

/** HF shapes of the full-parameter tensors. */
function fullShapes(model: LlamaModel): Map<string, number[]> {
  const shapes = new Map<string, number[]>();
  const C = model.config.hiddenSize;
  shapes.set('model.embed_tokens.weight', [model.config.vocabSize, C]);
  for (const lin of model.linears()) {
    shapes.set(`${lin.name}.weight`, [lin.outFeatures, lin.inFeatures]);
    shapes.set(`${lin.name}.bias`, [lin.outFeatures]);
  }
  for (const layer of model.weights.layers) for (const norm of [layer.inputNorm, layer.postNorm]) shapes.set(`${norm.name}.weight`, [norm.weight.length]);
  shapes.set(`${model.weights.norm.name}.weight`, [C]);
  return shapes;
}

/** A checkpoint, then the run's output folder refreshed from it. */
function save(s: RunState, step: number, cursor: BatchCursor): string {
  const dir = writeCheckpoint(s.runDir, step, s.cfg.keepCheckpoints, (tmp) => {
    writeTrained(s, tmp);
    writeSafetensors(join(tmp, OPTIMIZER_FILE), stateTensorsToWrite(s.opt.stateTensors()), { format: 'qlora-ts-adamw' });
    writeBytesAtomic(join(tmp, TRAINER_STATE_FILE), `${JSON.stringify({ step, cursor, totalSteps: s.totalSteps }, null, 1)}\n`);
  });
  if (s.cfg.full) {
    const out = join(s.runDir, MODEL_DIR);
    mkdirSync(out, { recursive: true });
    for (const f of HF_SIDE_FILES) if (existsSync(join(s.cfg.model, f))) copyFileSync(join(s.cfg.model, f), join(out, f));
    copyFileSync(join(dir, 'model.safetensors'), join(out, 'model.safetensors'));
  } else {
    mkdirSync(join(s.runDir, ADAPTER_DIR), { recursive: true });
    for (const f of readdirSync(join(dir, ADAPTER_DIR))) copyFileAtomic(join(dir, ADAPTER_DIR, f), join(s.runDir, ADAPTER_DIR, f));
  }
  return dir;
}

function copyFileAtomic(from: string, to: string): void {
  writeBytesAtomic(to, readFileSync(from));
}

function readTensorsInto(file: string, params: readonly TrainableParam[]): void {
  const src = openCheckpoint(file);
  try {
    for (const p of params) src.readF32Into(p.name, p.data);
  } finally {
    src.close();
  }
}

/** Step and data cursor of a checkpoint; metrics cut back to that step. */
function restoreProgress(runDir: string, checkpoint: string): { startStep: number; cursor: BatchCursor } {
  const state = readTrainerState(checkpoint);
  const c = state.cursor;
  if (typeof state.step !== 'number' || !isJsonObject(c) || typeof c.epoch !== 'number' || typeof c.index !== 'number') {
    throw new IoError('trainer_state.json lacks step or cursor', { file: join(checkpoint, TRAINER_STATE_FILE), expected: '{"step": N, "cursor": {"epoch": E, "index": I}}' });
  }
  truncateMetrics(join(runDir, METRICS_FILE), state.step);
  return { startStep: state.step, cursor: { epoch: c.epoch, index: c.index } };
}

/** Drops metric lines after `step` (written by the interrupted attempt after its checkpoint). */
function truncateMetrics(file: string, step: number): void {
  if (!existsSync(file)) return;
  const keep = readFileSync(file, 'utf8').split('\n').filter((line) => {
    if (line.trim().length === 0) return false;
    try {
      const m = JSON.parse(line) as { step?: unknown };
      return typeof m.step === 'number' && m.step <= step;
    } catch {
      return false; // a line cut by the kill
    }
  });
  writeBytesAtomic(file, keep.map((l) => `${l}\n`).join(''));
}
