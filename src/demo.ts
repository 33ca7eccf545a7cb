// The embedded demo (`qlora demo`, the examples): where the package's own demo model and
// fine-tuning set are, and the whole QLoRA round trip over them as one library call.
//   runDemo: quantize the demo model to a bitsandbytes NF4 + double-quant folder, generate, fine-tune
//   LoRA on the Pip stories over the 4-bit base, generate again with the adapter, export the merged
//   model and the adapter as GGUF files llama.cpp loads. The run folder holds the PEFT adapter and
//   loss.svg. Everything it reads is in this package (assets/demo, made by `npm run demo:make`).
// Not here: the command line and its bars (cli/demo.ts).
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, IoError } from './errors.js';
import { exportModel } from './export/index.js';
import type { Kernels } from './kernels/kernels.js';
import { generate } from './model/generate.js';
import { loadModel } from './model/load.js';
import { loadPeftAdapter } from './model/peft-adapter.js';
import { quantizeCheckpoint } from './quant/quantize-checkpoint.js';
import { train, type TrainEvent } from './train/trainer.js';
import type { RunConfigInput } from './train/train-options.js';

let root: string | undefined;

/** The package root: the nearest folder above this module with qlora-ts's package.json (found once). */
function packageRoot(): string {
  root ??= findPackageRoot();
  return root;
}

function findPackageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: unknown }).name === 'qlora-ts') return dir;
    const up = dirname(dir);
    if (up === dir) throw new IoError('cannot find the qlora-ts package folder above this module', { file: fileURLToPath(import.meta.url) });
    dir = up;
  }
}

/** The embedded demo model: a tiny Llama (4 layers, hidden 128, 512-piece BPE) trained by qlora-ts on its own stories. */
export function demoModelPath(): string {
  return join(packageRoot(), 'assets', 'demo', 'model');
}

/** The demo's fine-tuning set: JSONL {"text"} stories about Pip the dragon, which the base model never saw. */
export function demoDataPath(): string {
  return join(packageRoot(), 'assets', 'demo', 'data', 'pip-stories.jsonl');
}

export const DEMO_PROMPT = 'Once upon a time,';

export interface DemoOptions {
  /** Output folder (created; must not exist unless `overwrite`, which replaces it once the new demo is whole and keeps it if the demo fails). */
  readonly out: string;
  readonly overwrite?: boolean;
  /** Optimizer steps of the fine-tune (default 120). */
  readonly steps?: number;
  readonly kernels: Kernels;
  readonly prompt?: string;
  readonly maxNewTokens?: number;
  /** Each phase as it starts. */
  readonly onPhase?: (phase: DemoPhase) => void;
  /** The fine-tune's events (progress, evaluations). */
  readonly onTrainEvent?: (e: TrainEvent) => void;
  readonly signal?: AbortSignal;
}

export type DemoPhase = 'quantize' | 'generate-before' | 'train' | 'generate-after' | 'export';

export interface DemoReport {
  readonly out: string;
  readonly prompt: string;
  readonly quantized: { readonly dir: string; readonly sourceBytes: number; readonly outputBytes: number; readonly bitsPerParameter: number };
  readonly before: string;
  readonly after: string;
  readonly loss: { readonly firstStep: number; readonly lastStep: number; readonly evalBefore: number | null; readonly evalAfter: number | null };
  readonly steps: number;
  readonly interrupted: boolean;
  readonly tokensPerS: number;
  readonly files: { readonly runDir: string; readonly adapter: string; readonly lossCurve: string; readonly gguf: string; readonly ggufAdapter: string };
  readonly seconds: number;
}

/** The demo's fine-tuning recipe (LoRA r 16 on every linear layer over the NF4 base). */
export function demoTrainConfig(model: string, data: string, steps: number): RunConfigInput {
  return { model, data, maxSteps: steps, seqLen: 160, batchSize: 4, lr: 2e-3, schedule: 'cosine', evalSplit: 20, evalEvery: steps, saveEvery: steps, seed: 42 };
}


/** The whole demo; see the module comment. */
export async function runDemo(opts: DemoOptions): Promise<DemoReport> {
  const t0 = performance.now();
  const out = resolve(opts.out);
  // An earlier output replaced with `overwrite` is moved aside, not deleted, until the new one is
  // whole: the new one must be built in place (its run records the 4-bit base's path), and a demo
  // that fails or is stopped part-way gives the earlier folder back.
  let earlier: string | null = null;
  if (existsSync(out)) {
    if (opts.overwrite !== true) throw new ConfigError('the demo output folder exists', { file: out, hint: 'pass --overwrite to replace it, or --out DIR' });
    if (!statSync(out).isDirectory()) throw new ConfigError('the demo output is not a folder', { file: out });
    earlier = join(dirname(out), `.${basename(out)}.old-${randomBytes(4).toString('hex')}`);
    try {
      renameSync(out, earlier);
    } catch (cause) {
      throw new IoError('cannot move the earlier demo output aside to replace it', { file: out, cause });
    }
  }
  try {
    const report = await buildDemo(opts, out, t0);
    if (earlier !== null) rmSync(earlier, { recursive: true, force: true });
    return report;
  } catch (err) {
    rmSync(out, { recursive: true, force: true });
    if (earlier !== null) renameSync(earlier, out);
    throw err;
  }
}

async function buildDemo(opts: DemoOptions, out: string, t0: number): Promise<DemoReport> {
  const steps = opts.steps ?? 120;
  const prompt = opts.prompt ?? DEMO_PROMPT;
  const maxNewTokens = opts.maxNewTokens ?? 160;
  const phase = opts.onPhase ?? ((): void => {});
  mkdirSync(out, { recursive: true });
  const nf4 = join(out, 'model-nf4');
  const runDir = join(out, 'run');

  phase('quantize');
  const q = quantizeCheckpoint(demoModelPath(), nf4);

  phase('generate-before');
  // One load for both stories: the trained adapter goes into the same model.
  const model = await loadModel(nf4, { kernels: opts.kernels });
  try {
    const greedy = async (): Promise<string> => prompt + (await generate(model, prompt, { maxNewTokens, temperature: 0 })).text;
    const before = await greedy();

    phase('train');
    const evals: number[] = [];
    let firstStep = Number.NaN;
    const result = await train({
      config: demoTrainConfig(nf4, demoDataPath(), steps), out: runDir, kernels: opts.kernels, signal: opts.signal,
      onEvent: (e) => {
        if (e.kind === 'eval') evals.push(e.loss);
        if (e.kind === 'step' && Number.isNaN(firstStep)) firstStep = e.loss;
        opts.onTrainEvent?.(e);
      },
    });

    phase('generate-after');
    loadPeftAdapter(model, result.output);
    const after = await greedy();

    phase('export');
    const gguf = join(out, 'demo-pip-f16.gguf');
    exportModel(runDir, { format: 'gguf', dtype: 'f16', out: gguf });
    const ggufAdapter = join(out, 'demo-pip-adapter.gguf');
    exportModel(runDir, { format: 'gguf-adapter', out: ggufAdapter });
    return {
      out, prompt,
      quantized: { dir: nf4, sourceBytes: q.sourceBytes, outputBytes: q.outputBytes, bitsPerParameter: q.bitsPerParameter },
      before, after,
      loss: { firstStep, lastStep: result.finalLoss, evalBefore: evals.length > 1 ? evals[0]! : null, evalAfter: result.finalEval?.loss ?? null },
      steps: result.steps, interrupted: result.interrupted, tokensPerS: result.tokensPerS,
      files: { runDir, adapter: result.output, lossCurve: join(runDir, 'loss.svg'), gguf, ggufAdapter },
      seconds: (performance.now() - t0) / 1000,
    };
  } finally {
    model.dispose();
  }
}
