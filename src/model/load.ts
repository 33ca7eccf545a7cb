// loadModel: open a Llama-family checkpoint and build a LlamaModel, quantizing while streaming.
//   (a) a Hugging Face folder (config.json + model.safetensors or a sharded index; f32/f16/bf16)
//   (b) a bitsandbytes-4bit Hugging Face folder (config.json has quantization_config): the stored
//       NF4/FP4 weights are used as they are, never re-quantized
//   (c) a .gguf file: dequantized tensor by tensor to f32 (Q/K rows un-permuted by formats/gguf),
//       then quantized to the configured type; or, with quant 'gguf', its block-quantized linear
//       weights (Q4_0, Q8_0, IQ4_NL, K-quants...) kept as they are (no dequantize/requantize step),
//       the other tensors in f32
// Not here: the file formats themselves (formats/), the quantization arithmetic (quant/).
import { statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ConfigError, IoError, ShapeError } from '../errors.js';
import type { ModelConfig } from '../formats/hf-config.js';
import { GgufTensorSource } from '../formats/gguf/llama.js';
import { ggufTextTokenizer } from '../formats/gguf/tokenizer.js';
import { openHfFolder } from '../formats/hf-folder.js';
import type { TensorSource } from '../formats/safetensors.js';
import { TOKENIZER_JSON, type TextTokenizer } from '../formats/tokenizer.js';
import type { Kernels } from '../kernels/kernels.js';
import { bnbCompanionNames, listBnbWeights, readBnbWeight } from '../quant/bnb-checkpoint.js';
import { resolveQuantizationConfig, type QuantizationConfig } from '../quant/config.js';
import { dequantizeGgml } from '../quant/ggml/index.js';
import type { Quant4Weight } from '../quant/types.js';
import type { GgmlWeight } from '../nn/linear.js';
import { buildLlamaModel, type WeightSource } from './build.js';
import type { LlamaModel } from './llama.js';
import { progressTracker, type WithProgressCallback } from '../progress.js';

const GGUF_EXTENSION = '.gguf';
/** FORMATS.md §9: present when the GGUF carries a tokenizer. */
const GGUF_TOKENIZER_MODEL_KEY = 'tokenizer.ggml.model';

export interface LoadModelOptions extends WithProgressCallback {
  readonly kernels: Kernels;
  /**
   * Default: nf4 + double quant, block 64 (resolveQuantizationConfig()); 'none' keeps f32; 'gguf'
   * (GGUF files only) keeps the file's own block types for the linear weights.
   */
  readonly quant?: QuantizationConfig | 'none' | 'gguf';
  readonly onProgress?: (done: number, total: number, name: string) => void;
}

/**
 * A safetensors checkpoint as a WeightSource. bitsandbytes-4bit weights (found by their
 * quant_state tensors, FORMATS.md §4.4) are offered as prequantized and their companion tensors
 * are hidden from the plain names.
 */
export function safetensorsWeightSource(src: TensorSource, file: string): WeightSource {
  const prequantized = new Map<string, () => Quant4Weight>();
  const hidden = new Set<string>();
  for (const param of listBnbWeights(src)) {
    const type = src.has(`${param}.quant_state.bitsandbytes__fp4`) ? 'fp4' : 'nf4';
    for (const name of bnbCompanionNames(param, type, src.has(`${param}.nested_absmax`))) hidden.add(name);
    prequantized.set(param, () => readBnbWeight(src, param, file));
  }
  return {
    file,
    names: () => src.names().filter((n) => !hidden.has(n)),
    shape: (name) => src.entry(name).shape,
    readF32: (name) => src.readF32(name),
    readF32Into: (name, out) => src.readF32Into(name, out),
    prequantized,
  };
}

/** The tokenizer must not produce ids the embedding table lacks (a larger table is fine). */
export function checkTokenizerFits(tokenizer: TextTokenizer | null, cfg: ModelConfig, file: string): void {
  if (tokenizer !== null && tokenizer.vocabSize > cfg.vocabSize) {
    throw new ShapeError('the tokenizer has more tokens than the model vocabulary', {
      file, field: 'vocab', expected: `at most vocab_size = ${cfg.vocabSize} tokens`, got: `${tokenizer.vocabSize} tokens`,
      hint: 'the tokenizer and the weights may belong to different models',
    });
  }
}

const LINEAR_WEIGHT = /(^lm_head|_proj)\.weight$/;

/** The block-quantized linear weights of a GGUF, rows in HF order, read when the builder asks. */
function nativeGgmlWeights(gguf: GgufTensorSource): Map<string, () => GgmlWeight> {
  const out = new Map<string, () => GgmlWeight>();
  for (const name of gguf.names()) {
    const e = gguf.entry(name);
    if (!LINEAR_WEIGHT.test(name) || e.dtype !== 'U8' || e.shape.length !== 2) continue;
    out.set(name, () => {
      const data = gguf.readBytes(name);
      const [rows, cols] = e.shape;
      // Checked decodable now, not at the first matmul.
      dequantizeGgml(e.ggmlType, data.subarray(0, data.length / rows), cols, undefined, { file: gguf.file.path, field: name });
      return { type: e.ggmlType, rows, cols, data, rowBytes: data.length / rows };
    });
  }
  return out;
}

export async function loadModel(path: string, opts: LoadModelOptions): Promise<LlamaModel> {
  const tracker = progressTracker(opts.progress_callback, 'load', resolve(path), resolve(path));
  const model = await loadModelFrom(path, { ...opts, onProgress: (done, total, name) => { opts.onProgress?.(done, total, name); tracker.update(done, total); } });
  tracker.finish();
  return model;
}

async function loadModelFrom(path: string, opts: LoadModelOptions): Promise<LlamaModel> {
  const full = resolve(path);
  let isDir: boolean;
  try {
    isDir = statSync(full).isDirectory();
  } catch (cause) {
    throw new IoError('no such model file or folder', { file: full, cause, hint: 'give a Hugging Face model folder or a .gguf file' });
  }
  const quant = opts.quant ?? resolveQuantizationConfig();
  const build = { kernels: opts.kernels, quant: quant === 'gguf' ? 'none' as const : quant, onProgress: opts.onProgress };
  if (quant === 'gguf' && (isDir || !full.toLowerCase().endsWith(GGUF_EXTENSION))) {
    throw new ConfigError("quant 'gguf' keeps a GGUF file's own block types and needs a .gguf base", { file: full, field: 'quant', expected: 'nf4, fp4 or none for a folder' });
  }
  if (!isDir) {
    if (!full.toLowerCase().endsWith(GGUF_EXTENSION)) {
      throw new IoError('not a model folder or GGUF file', { file: full, expected: 'a folder with config.json and safetensors weights, or a .gguf file' });
    }
    const gguf = GgufTensorSource.open(full);
    try {
      // A GGUF without tokenizer metadata (weights only) loads with tokenizer null.
      const tokenizer = gguf.file.metadata.has(GGUF_TOKENIZER_MODEL_KEY) ? ggufTextTokenizer(gguf.file) : null;
      checkTokenizerFits(tokenizer, gguf.config, full);
      const source = safetensorsWeightSource(gguf, full);
      return buildLlamaModel(quant === 'gguf' ? { ...source, native: nativeGgmlWeights(gguf) } : source, gguf.config, tokenizer, build);
    } finally {
      gguf.close();
    }
  }
  const folder = openHfFolder(full);
  try {
    checkTokenizerFits(folder.tokenizer, folder.config, join(full, TOKENIZER_JSON));
    const model = buildLlamaModel(safetensorsWeightSource(folder.weights, full), folder.config, folder.tokenizer, build);
    model.generationConfig = folder.generationConfig;
    return model;
  } finally {
    folder.weights.close();
  }
}
