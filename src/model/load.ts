// loadModel: open a Llama-family checkpoint and build a LlamaModel, quantizing while streaming.
//   (a) a Hugging Face folder (config.json + model.safetensors or a sharded index; f32/f16/bf16)
//   (b) a bitsandbytes-4bit Hugging Face folder (config.json has quantization_config): the stored
//       NF4/FP4 weights are used as they are, never re-quantized
//   (c) a .gguf file: dequantized tensor by tensor to f32 (Q/K rows un-permuted by formats/gguf),
//       then quantized to the configured type
// Not here: the file formats themselves (formats/), the quantization arithmetic (quant/).
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { IoError } from '../errors.js';
import { loadModelConfig, type ModelConfig } from '../formats/hf-config.js';
import { openCheckpoint, type TensorSource } from '../formats/safetensors.js';
import type { Kernels } from '../kernels/kernels.js';
import { resolveQuantizationConfig, type QuantizationConfig } from '../quant/config.js';
import { buildLlamaModel, type WeightSource } from './build.js';
import type { LlamaModel, ModelTokenizer } from './llama.js';

export interface LoadModelOptions {
  readonly kernels: Kernels;
  /** Default: nf4 + double quant, block 64 (resolveQuantizationConfig()); 'none' keeps f32. */
  readonly quant?: QuantizationConfig | 'none';
  readonly onProgress?: (done: number, total: number, name: string) => void;
}

/** A safetensors checkpoint as a WeightSource (names, shapes, f32 data). */
export function safetensorsWeightSource(src: TensorSource, file: string): WeightSource {
  return {
    file,
    names: () => src.names(),
    shape: (name) => src.entry(name).shape,
    readF32: (name) => src.readF32(name),
  };
}

export async function loadModel(path: string, opts: LoadModelOptions): Promise<LlamaModel<ModelConfig, ModelTokenizer>> {
  const full = resolve(path);
  let isDir: boolean;
  try {
    isDir = statSync(full).isDirectory();
  } catch (cause) {
    throw new IoError('no such model file or folder', { file: full, cause, hint: 'give a Hugging Face model folder or a .gguf file' });
  }
  const quant = opts.quant ?? resolveQuantizationConfig();
  if (!isDir) throw new IoError('not a model folder', { file: full, expected: 'a folder with config.json and safetensors weights' });
  const cfg = loadModelConfig(full);
  const src = openCheckpoint(full);
  try {
    return buildLlamaModel(safetensorsWeightSource(src, full), cfg, null, { kernels: opts.kernels, quant, onProgress: opts.onProgress });
  } finally {
    src.close();
  }
}
