// Options of a fine-tuning run, their defaults and their validation (all before any training).
// Defaults follow the QLoRA paper's recipe (Dettmers et al. 2023, §4 and qlora.py: LoRA on all
// linear layers, r 64, alpha 16, dropout 0.1, lr 2e-4, constant schedule, warmup ratio 0.03, max
// grad norm 0.3, NF4 + double quantization). Small models (hidden size below 1024) get small-model
// defaults, because the paper's r 64 and lr 2e-4 were tuned for 7B-65B models: r 16 (at most the
// smallest targeted layer's dimension), alpha 32, dropout 0.05, lr 1e-3.
// Not here: the loop (trainer.ts), the command line (cli/train.ts).

import { ConfigError } from '../errors.js';
import type { DatasetFormat } from './data.js';
import type { LoraSpec } from './lora.js';

export type Schedule = 'constant' | 'linear' | 'cosine';

/** Everything a run is made of that a resume must keep; saved in run.json. */
export interface RunConfig {
  readonly model: string;
  readonly data: string;
  readonly evalData: string | null;
  /**
   * Held-out fraction (0, 1) or count (>= 1) of the training file; 0 = none. Default 5 % without
   * --eval-data; a fraction is applied only when the file has MIN_SPLIT_EXAMPLES examples or more.
   */
  readonly evalSplit: number;
  readonly format: DatasetFormat;
  readonly seqLen: number;
  readonly packing: boolean;
  readonly completionOnly: boolean;
  readonly overlong: 'truncate' | 'drop';
  readonly maxSteps: number | null;
  readonly epochs: number | null;
  readonly batchSize: number;
  readonly gradAccum: number;
  readonly lr: number;
  readonly schedule: Schedule;
  readonly warmupSteps: number | null;
  readonly weightDecay: number;
  readonly maxGradNorm: number;
  readonly optimStates: '32bit' | '8bit';
  /** Frozen base weights; 'gguf' keeps a GGUF base's own block types (Q4_0, Q8_0, IQ4_NL...). */
  readonly quant: 'nf4' | 'fp4' | 'none' | 'gguf';
  readonly full: boolean;
  readonly lora: LoraSpec;
  /** PEFT adapter folder to continue from, or null. */
  readonly adapter: string | null;
  readonly evalEvery: number | null;
  readonly saveEvery: number | null;
  readonly keepCheckpoints: number;
  readonly seed: number;
  readonly nanPolicy: 'stop' | 'skip';
}

/** What a caller may set; everything else takes its default. */
export type RunConfigInput = Partial<Omit<RunConfig, 'lora'>> & Pick<RunConfig, 'model' | 'data'> & {
  readonly loraR?: number;
  readonly loraAlpha?: number;
  readonly loraDropout?: number;
  readonly targetModules?: readonly string[] | string;
  readonly rslora?: boolean;
  readonly init?: 'kaiming' | 'gaussian';
};

/** The model facts the defaults depend on. */
export interface ModelFacts {
  readonly hiddenSize: number;
  readonly maxPositionEmbeddings: number;
  /** Smallest in/out dimension over the Linears LoRA would target by default. */
  readonly smallestLinearDim: number;
}

export const SMALL_MODEL_HIDDEN = 1024;
export const DEFAULT_EVAL_SPLIT = 0.05;
export const MIN_SPLIT_EXAMPLES = 20;
/** QLoRA's warmup_ratio. */
export const WARMUP_RATIO = 0.03;

function fail(field: string, expected: string, got: unknown): never {
  throw new ConfigError('bad training option', { field, expected, got: JSON.stringify(got) });
}

function positiveInt(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) fail(field, 'a positive integer', v);
  return v;
}

function nonNegative(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) fail(field, 'a number >= 0', v);
  return v;
}

function oneOf<T extends string>(v: unknown, field: string, values: readonly T[]): T {
  if (typeof v !== 'string' || !values.includes(v as T)) fail(field, values.join(' | '), v);
  return v as T;
}

function optional<T>(v: T | null | undefined, check: (x: T) => T): T | null {
  return v === undefined || v === null ? null : check(v);
}

/** Fills the defaults for this model and checks every field. */
export function resolveRunConfig(input: RunConfigInput, facts: ModelFacts): RunConfig {
  const known = new Set(['model', 'data', 'evalData', 'evalSplit', 'format', 'seqLen', 'packing', 'completionOnly', 'overlong', 'maxSteps', 'epochs', 'batchSize', 'gradAccum',
    'lr', 'schedule', 'warmupSteps', 'weightDecay', 'maxGradNorm', 'optimStates', 'quant', 'full', 'adapter', 'evalEvery', 'saveEvery', 'keepCheckpoints', 'seed', 'nanPolicy',
    'loraR', 'loraAlpha', 'loraDropout', 'targetModules', 'rslora', 'init', 'lora']);
  for (const key of Object.keys(input)) if (!known.has(key)) fail(key, `one of ${[...known].join(', ')}`, 'an unknown option');
  const small = facts.hiddenSize < SMALL_MODEL_HIDDEN;
  const saved = (input as { lora?: LoraSpec }).lora;
  if (typeof input.model !== 'string' || input.model.length === 0) fail('model', 'a model folder or .gguf file', input.model);
  if (typeof input.data !== 'string' || input.data.length === 0) fail('data', 'a dataset file', input.data);
  const maxSteps = optional(input.maxSteps, (v) => positiveInt(v, 'maxSteps'));
  const epochs = optional(input.epochs, (v) => {
    if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v)) fail('epochs', 'a number > 0', v);
    return v;
  });
  const seqLen = positiveInt(input.seqLen ?? Math.min(512, facts.maxPositionEmbeddings), 'seqLen');
  if (seqLen < 2 || seqLen > facts.maxPositionEmbeddings) fail('seqLen', `2..${facts.maxPositionEmbeddings} (the model context)`, seqLen);
  const full = input.full ?? false;
  const r = positiveInt(input.loraR ?? saved?.r ?? (small ? Math.min(16, facts.smallestLinearDim) : 64), 'loraR');
  const lora: LoraSpec = {
    r,
    alpha: nonNegative(input.loraAlpha ?? saved?.alpha ?? (small ? 32 : 16), 'loraAlpha'),
    dropout: nonNegative(input.loraDropout ?? saved?.dropout ?? (small ? 0.05 : 0.1), 'loraDropout'),
    targetModules: input.targetModules ?? saved?.targetModules ?? 'all-linear',
    rslora: input.rslora ?? saved?.rslora ?? false,
    init: oneOf(input.init ?? saved?.init ?? 'kaiming', 'init', ['kaiming', 'gaussian'] as const),
  };
  if (!(lora.alpha > 0)) fail('loraAlpha', 'a number > 0', lora.alpha);
  if (lora.dropout >= 1) fail('loraDropout', 'a probability in [0, 1)', lora.dropout);
  const quant = oneOf(input.quant ?? (full ? 'none' : 'nf4'), 'quant', ['nf4', 'fp4', 'none', 'gguf'] as const);
  if (full && quant !== 'none') fail('quant', 'none (full-parameter training trains f32 weights)', quant);
  if (full && input.adapter) fail('adapter', 'no adapter in full-parameter mode', input.adapter);
  const evalSplit = nonNegative(input.evalSplit ?? (input.evalData ? 0 : DEFAULT_EVAL_SPLIT), 'evalSplit');
  if (evalSplit >= 1 && !Number.isInteger(evalSplit)) fail('evalSplit', 'a fraction in (0, 1) or a whole count', evalSplit);
  return {
    model: input.model,
    data: input.data,
    evalData: input.evalData ?? null,
    evalSplit,
    format: oneOf(input.format ?? 'auto', 'format', ['auto', 'text', 'alpaca', 'chat', 'text-field'] as const),
    seqLen,
    packing: input.packing ?? false,
    completionOnly: input.completionOnly ?? true,
    overlong: oneOf(input.overlong ?? 'truncate', 'overlong', ['truncate', 'drop'] as const),
    maxSteps,
    epochs: maxSteps === null && epochs === null ? 1 : epochs,
    batchSize: positiveInt(input.batchSize ?? 4, 'batchSize'),
    gradAccum: positiveInt(input.gradAccum ?? 1, 'gradAccum'),
    lr: (() => {
      const lr = input.lr ?? (small ? 1e-3 : 2e-4);
      if (typeof lr !== 'number' || !(lr > 0) || !Number.isFinite(lr)) fail('lr', 'a number > 0', lr);
      return lr;
    })(),
    schedule: oneOf(input.schedule ?? 'constant', 'schedule', ['constant', 'linear', 'cosine'] as const),
    warmupSteps: optional(input.warmupSteps, (v) => {
      if (!Number.isSafeInteger(v) || v < 0) fail('warmupSteps', 'an integer >= 0', v);
      return v;
    }),
    weightDecay: nonNegative(input.weightDecay ?? 0, 'weightDecay'),
    maxGradNorm: nonNegative(input.maxGradNorm ?? 0.3, 'maxGradNorm'),
    optimStates: oneOf(input.optimStates ?? '32bit', 'optimStates', ['32bit', '8bit'] as const),
    quant,
    full,
    lora,
    adapter: input.adapter ?? null,
    evalEvery: optional(input.evalEvery, (v) => positiveInt(v, 'evalEvery')),
    saveEvery: optional(input.saveEvery, (v) => positiveInt(v, 'saveEvery')),
    keepCheckpoints: positiveInt(input.keepCheckpoints ?? 2, 'keepCheckpoints'),
    seed: (() => {
      const seed = input.seed ?? 42;
      if (!Number.isSafeInteger(seed) || seed < 0) fail('seed', 'an integer >= 0', seed);
      return seed;
    })(),
    nanPolicy: oneOf(input.nanPolicy ?? 'stop', 'nanPolicy', ['stop', 'skip'] as const),
  };
}

/** Optimizer steps of the run: --max-steps, else the epochs over the training batches. */
export function totalStepsOf(cfg: RunConfig, batchesPerEpoch: number): number {
  if (cfg.maxSteps !== null) return cfg.maxSteps;
  return Math.max(1, Math.ceil(((cfg.epochs ?? 1) * batchesPerEpoch) / cfg.gradAccum));
}

/** Warmup steps: as given, else QLoRA's 3 % of the run. */
export function warmupStepsOf(cfg: RunConfig, totalSteps: number): number {
  return cfg.warmupSteps ?? Math.round(WARMUP_RATIO * totalSteps);
}

/** Eval / save cadence: as given, else ten evaluations and four checkpoints per run. */
export function cadenceOf(every: number | null, totalSteps: number, perRun: number): number {
  return every ?? Math.max(1, Math.ceil(totalSteps / perRun));
}
