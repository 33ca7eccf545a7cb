// Options shared by every command that loads a model (`--quant nf4|fp4|none`, `--kernels`,
// `--threads`, `--activations int8|f32`, `--no-progress`) and the one way those commands turn them into a loaded model:
// kernels created once, then loadModel with a progress bar on stderr.
// Not here: what a command does with the model.

import { Option, type Command } from 'commander';
import { ConfigError } from '../errors.js';
import { createKernels, type KernelBackendName, type Kernels } from '../kernels/index.js';
import type { LlamaModel } from '../model/llama.js';
import { loadModel } from '../model/load.js';
import { resolveQuantizationConfig } from '../quant/config.js';
import { progressDisplay } from './progress.js';
import { verboseLine } from './verbosity.js';

export interface ModelLoadCliOptions {
  quant: 'nf4' | 'fp4' | 'none' | 'gguf';
  kernels: KernelBackendName;
  threads?: string;
  progress: boolean;
  activations: Activations;
}

/** Arithmetic of the 4-bit matmuls: int8 activations (kernels/ref/matmul-int8.ts) or exact f32. */
export type Activations = 'int8' | 'f32';

/** `activations`: the command's default (generate: int8, for speed; eval: f32, exact). */
export function addModelLoadOptions(cmd: Command, activations: Activations): Command {
  return cmd
    .addOption(new Option('--quant <type>', 'weight type of the linear layers (none keeps f32; gguf keeps a .gguf file\'s own block types)').choices(['nf4', 'fp4', 'none', 'gguf']).default('nf4'))
    .addOption(new Option('--kernels <backend>', 'compute backend').choices(['wasm', 'ref']).default('wasm'))
    .option('--threads <n>', 'compute threads (default: available cores)')
    .addOption(new Option('--activations <type>', 'arithmetic of the 4-bit matmuls: int8 = activations quantized per block, ~1.5x faster, not exact ' +
      '(stories260K NF4: perplexity x1.01); f32 = exact').choices(['int8', 'f32']).default(activations))
    .option('--no-progress', 'no progress bar while loading');
}

/** `--threads`, `--kernels`, `--no-progress` and `--json` of the commands that train (train, demo). */
export function addRunOptions(cmd: Command): Command {
  return cmd
    .option('--threads <n>', 'compute threads (default: available cores)')
    .addOption(new Option('--kernels <backend>', 'compute backend').choices(['wasm', 'ref']).default('wasm'))
    .option('--no-progress', 'no progress bar or step lines')
    .option('--json', 'print the report as JSON');
}

export function positiveIntegerOption(value: string, field: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new ConfigError('expected a positive integer', { field, got: value });
  return n;
}

export interface LoadedModel {
  readonly model: Awaited<ReturnType<typeof loadModel>>;
  readonly kernels: Kernels;
  readonly loadMs: number;
  /** The 4-bit matmuls' arithmetic as it runs: f32 when there are none (`--quant none`). */
  readonly activations: Activations;
}

/** Create the kernels and load MODEL with a progress bar; the caller disposes both (disposeLoaded). */
export async function loadModelFromCli(path: string, o: ModelLoadCliOptions): Promise<LoadedModel> {
  const threads = o.threads === undefined ? undefined : positiveIntegerOption(o.threads, '--threads');
  const kernels = await createKernels({ backend: o.kernels, threads, int8Activations: o.activations === 'int8' });
  verboseLine(`kernels: ${kernels.description}; node ${process.version}`);
  // A bar on a terminal only: loading is seconds even for large models, lines would be noise in logs.
  const bar = progressDisplay('load', 'tensors', o.progress && process.stderr.isTTY === true);
  const t0 = performance.now();
  try {
    const model = await loadModel(path, {
      kernels,
      quant: o.quant === 'none' || o.quant === 'gguf' ? o.quant : resolveQuantizationConfig({ quantType: o.quant }),
      onProgress: (done, total, name) => bar.update(done, total, name),
    });
    return { model, kernels, loadMs: performance.now() - t0, activations: o.quant === 'none' || o.quant === 'gguf' ? 'f32' : o.activations };
  } catch (err) {
    await kernels.dispose();
    throw err;
  } finally {
    bar.stop();
  }
}

export async function disposeLoaded(loaded: { model: LlamaModel; kernels: Kernels }): Promise<void> {
  loaded.model.dispose();
  await loaded.kernels.dispose();
}
