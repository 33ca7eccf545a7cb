// Building a LlamaModel from a stream of named checkpoint tensors: the expected tensor set of a
// config (FORMATS.md §5.2), shape checks, per-tensor quantization while streaming (one tensor is
// read, converted and released before the next: peak memory ≈ the built model + the largest
// tensor), and the checks that the file holds exactly what the config implies.
// Not here: opening files (load.ts chooses HF folder / bnb folder / GGUF); the quantization
// arithmetic (quant/); the forward pass (llama.ts).
import { ShapeError } from '../errors.js';
import type { ModelConfig } from '../formats/hf-config.js';
import { f32ToBf16Bits, f32ToF16Bits, bf16BitsToF32, f16BitsToF32 } from '../formats/dtype.js';
import type { Kernels } from '../kernels/kernels.js';
import { planModuleQuantization, type QuantizationConfig } from '../quant/config.js';
import { quantizeInt8PerRow } from '../quant/int8.js';
import { quantizeTensor } from '../quant/quantized-tensor.js';
import type { Quant4Weight } from '../quant/types.js';
import type { AttentionWeights } from '../nn/attention.js';
import type { DecoderLayerWeights } from '../nn/decoder-layer.js';
import type { GgmlWeight, Linear, LinearWeight } from '../nn/linear.js';
import type { MlpWeights } from '../nn/mlp.js';
import type { RmsNorm } from '../nn/rmsnorm.js';
import type { TextTokenizer } from '../formats/tokenizer.js';
import { LlamaModel, type LlamaWeights } from './llama.js';

/** Where the tensors come from, HF-named (a GGUF source maps names and un-permutes Q/K first). */
export interface WeightSource {
  /** File or folder, for error messages. */
  readonly file: string;
  /** HF tensor names present (for a prequantized source: the plain tensors only). */
  names(): readonly string[];
  shape(name: string): readonly number[];
  /** The tensor converted to f32 (a fresh array the builder may keep or drop). */
  readF32(name: string): Float32Array;
  /** readF32 into `out` (the tensor's element count), so the builder can reuse one buffer. */
  readF32Into(name: string, out: Float32Array): void;
  /** Linear weights stored already 4-bit (bnb-4bit folders), by weight name; used as-is. */
  readonly prequantized?: ReadonlyMap<string, () => Quant4Weight>;
  /** Linear weights kept in a GGUF base's own block types (load quant 'gguf'), by weight name. */
  readonly native?: ReadonlyMap<string, () => GgmlWeight>;
}

/** Buffers that buildLlamaModel hands to the model's dispose(). */
export interface BuildOptions {
  readonly kernels: Kernels;
  /** 'none' keeps every weight in f32. */
  readonly quant: QuantizationConfig | 'none';
  readonly onProgress?: (done: number, total: number, name: string) => void;
}

/** Tensors some checkpoints carry that the model recomputes; skipped silently. */
const IGNORED_TENSOR = /\.rotary_emb\.inv_freq$/;

interface ExpectedTensor {
  readonly name: string;
  readonly shape: readonly number[];
}

/** Every tensor a config implies, in checkpoint order, with its torch shape. */
export function expectedTensors(cfg: ModelConfig): ExpectedTensor[] {
  const C = cfg.hiddenSize;
  const F = cfg.intermediateSize;
  const qd = cfg.numHeads * cfg.headDim;
  const kd = cfg.numKvHeads * cfg.headDim;
  const out: ExpectedTensor[] = [{ name: 'model.embed_tokens.weight', shape: [cfg.vocabSize, C] }];
  for (let i = 0; i < cfg.numLayers; i++) {
    const p = `model.layers.${i}`;
    out.push({ name: `${p}.input_layernorm.weight`, shape: [C] });
    const proj = (name: string, rows: number, cols: number, bias: boolean): void => {
      out.push({ name: `${p}.${name}.weight`, shape: [rows, cols] });
      if (bias) out.push({ name: `${p}.${name}.bias`, shape: [rows] });
    };
    proj('self_attn.q_proj', qd, C, cfg.attentionBias);
    proj('self_attn.k_proj', kd, C, cfg.attentionBias);
    proj('self_attn.v_proj', kd, C, cfg.attentionBias);
    proj('self_attn.o_proj', C, qd, cfg.outputProjBias);
    out.push({ name: `${p}.post_attention_layernorm.weight`, shape: [C] });
    proj('mlp.gate_proj', F, C, cfg.mlpBias);
    proj('mlp.up_proj', F, C, cfg.mlpBias);
    proj('mlp.down_proj', C, F, cfg.mlpBias);
  }
  out.push({ name: 'model.norm.weight', shape: [C] });
  if (!cfg.tieWordEmbeddings) out.push({ name: 'lm_head.weight', shape: [cfg.vocabSize, C] });
  return out;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** Round f32 values through f16 / bf16 (a `keep` plan with a narrower dtype). */
function roundThrough(x: Float32Array, dtype: 'f16' | 'bf16'): Float32Array {
  for (let i = 0; i < x.length; i++) x[i] = dtype === 'f16' ? f16BitsToF32(f32ToF16Bits(x[i])) : bf16BitsToF32(f32ToBf16Bits(x[i]));
  return x;
}

/** Largest total of packed 4-bit codes a model keeps in the kernels' memory (see buildLlamaModel). */
const IN_PLACE_PACKED_MAX_BYTES = 2 ** 30;
/**
 * Resident budget for a model whose 4-bit weights exceed the kernels' budget: a few layers'
 * worth (Llama-2-13B's q/k/v/o and MLP: ~170 MB), enough for one call's weights; the rest streams
 * at memcpy speed either way (an LRU cache smaller than a model read in layer order never hits).
 * Measured on Llama-2-7B shapes: a training step's peak RSS 7.5 GiB with the 2 GiB default.
 */
const STREAM_WINDOW_BYTES = 256 * 2 ** 20;

export function buildLlamaModel(source: WeightSource, cfg: ModelConfig, tokenizer: TextTokenizer | null, opts: BuildOptions): LlamaModel {
  const k = opts.kernels;
  const expected = expectedTensors(cfg);
  const expectedNames = new Set(expected.map((e) => e.name));
  const prequantized = source.prequantized ?? new Map<string, () => Quant4Weight>();
  const present = new Set(source.names());
  // Extra tensors are refused before any data is read (llama.cpp's loader does the same).
  for (const name of present) {
    if (expectedNames.has(name) || IGNORED_TENSOR.test(name)) continue;
    if (name === 'lm_head.weight' && cfg.tieWordEmbeddings) continue; // tied: the embedding serves
    throw new ShapeError('unexpected tensor in the checkpoint', {
      file: source.file, field: name, expected: `only the tensors of a ${cfg.architecture} model with this config`,
      hint: 'the config and the weights may belong to different models',
    });
  }
  for (const e of expected) {
    if (!present.has(e.name) && !prequantized.has(e.name)) {
      throw new ShapeError('tensor missing from the checkpoint', { file: source.file, field: e.name, expected: `shape [${e.shape.join(', ')}]`, got: 'absent' });
    }
    if (present.has(e.name) && !sameShape(source.shape(e.name), e.shape)) {
      throw new ShapeError('tensor has the wrong shape', { file: source.file, field: e.name, expected: `[${e.shape.join(', ')}]`, got: `[${source.shape(e.name).join(', ')}]` });
    }
  }

  const owned: Float32Array[] = [];
  const toKernel = (x: Float32Array): Float32Array => {
    const buf = k.allocF32(x.length);
    buf.set(x);
    owned.push(buf);
    return buf;
  };
  // The packed 4-bit codes of a model up to IN_PLACE_PACKED_MAX_BYTES live in the kernels' memory
  // too: the wasm kernels then read them in place (q4cache.ts) instead of holding a second copy.
  // A larger model keeps them in ordinary arrays, so the kernels stream them through their budget
  // (a wasm memory holds at most 4 GiB).
  const quant = opts.quant;
  const plannedPackedBytes = quant === 'none' ? 0 : expected.reduce((n, e) => {
    const numel = e.shape.reduce((a, b) => a * b, 1);
    return n + (planModuleQuantization(quant, e.name, e.shape).action === 'quant4' ? Math.ceil(numel / 2) : 0);
  }, 0);
  if (plannedPackedBytes > k.residentWeightBytes && k.residentWeightBytes > STREAM_WINDOW_BYTES) k.setResidentWeightBytes(STREAM_WINDOW_BYTES);
  const packedStorage = plannedPackedBytes > IN_PLACE_PACKED_MAX_BYTES ? undefined : (bytes: number): Uint8Array => {
    const buf = k.allocF32(Math.ceil(bytes / 4));
    owned.push(buf);
    return new Uint8Array(buf.buffer, buf.byteOffset, bytes);
  };
  let done = 0;
  const progress = (name: string): void => opts.onProgress?.(++done, expected.length, name);

  try {
    const numel = (name: string): number => source.shape(name).reduce((a, b) => a * b, 1);
    /** A tensor read straight into a kernel buffer the model keeps. */
    const readPlain = (name: string): Float32Array => {
      const x = k.allocF32(numel(name));
      owned.push(x);
      source.readF32Into(name, x);
      progress(name);
      return x;
    };
    /** A tensor read into one reused buffer (valid until the next call): the input of a quantizer. */
    let scratch = new Float32Array(0);
    const readTransient = (name: string): Float32Array => {
      const n = numel(name);
      if (scratch.length < n) scratch = new Float32Array(n);
      const x = scratch.subarray(0, n);
      source.readF32Into(name, x);
      return x;
    };
    const readOptional = (name: string): Float32Array | null => (expectedNames.has(name) ? readPlain(name) : null);
    const linearWeight = (name: string, shape: readonly number[]): LinearWeight => {
      /** A weight stored already in its final type, checked against the expected shape. */
      const stored = <Q extends { rows: number; cols: number }>(q: Q, what: string): Q => {
        if (q.rows !== shape[0] || q.cols !== shape[1]) {
          throw new ShapeError(`${what} has the wrong shape`, { file: source.file, field: name, expected: `[${shape.join(', ')}]`, got: `[${q.rows}, ${q.cols}]` });
        }
        progress(name);
        return q;
      };
      const native = source.native?.get(name);
      if (native !== undefined) return { kind: 'ggml', q: stored(native(), 'GGUF tensor') };
      const pre = prequantized.get(name);
      if (pre !== undefined) return { kind: 'q4', q: stored(pre(), 'quantized tensor') };
      if (opts.quant === 'none') return { kind: 'f32', data: readPlain(name) };
      const w = weightFromF32(name, readTransient(name), shape, opts.quant);
      progress(name);
      return w;
    };
    /** The weight type the quantization plan gives `name` (its f32 data is consumed). */
    const weightFromF32 = (name: string, x: Float32Array, shape: readonly number[], quant: QuantizationConfig): LinearWeight => {
      const plan = planModuleQuantization(quant, name, shape);
      if (plan.action === 'quant4') {
        // The backend's quantizer (bit-exact with the reference, tested by the kernel suite).
        const blockwise4 = k.quantizeBlockwise4.bind(k);
        return { kind: 'q4', q: quantizeTensor(x, shape, plan.settings, { name, allowNonFinite: quant.allowNonFinite, blockwise4, packedStorage }) };
      }
      if (plan.action === 'int8') return { kind: 'int8', q: quantizeInt8PerRow(x, shape, name) };
      return { kind: 'f32', data: toKernel(plan.dtype === 'f16' || plan.dtype === 'bf16' ? roundThrough(x, plan.dtype) : x) };
    };
    const linear = (module: string, inFeatures: number, outFeatures: number): Linear => ({
      name: module, inFeatures, outFeatures, weight: linearWeight(`${module}.weight`, [outFeatures, inFeatures]), bias: readOptional(`${module}.bias`), lora: null,
    });
    const norm = (module: string): RmsNorm => ({ name: module, weight: readPlain(`${module}.weight`), eps: cfg.rmsNormEps });

    /**
     * Tied embeddings: the lm head shares the f32 table unless the plan explicitly gives lm_head
     * another type (an override: the default skip list keeps it), then it gets its own copy.
     */
    const tiedHeadWeight = (embed: Float32Array): LinearWeight => {
      const shape = [cfg.vocabSize, cfg.hiddenSize];
      if (opts.quant === 'none') return { kind: 'f32', data: embed };
      const plan = planModuleQuantization(opts.quant, 'lm_head.weight', shape);
      if (plan.action === 'keep' && plan.dtype === null) return { kind: 'f32', data: embed };
      return weightFromF32('lm_head.weight', Float32Array.from(embed), shape, opts.quant);
    };

    const C = cfg.hiddenSize;
    const F = cfg.intermediateSize;
    const qd = cfg.numHeads * cfg.headDim;
    const kd = cfg.numKvHeads * cfg.headDim;
    const embed = readPlain('model.embed_tokens.weight');
    const layers: DecoderLayerWeights[] = [];
    for (let i = 0; i < cfg.numLayers; i++) {
      const p = `model.layers.${i}`;
      const inputNorm = norm(`${p}.input_layernorm`);
      const attn: AttentionWeights = {
        q: linear(`${p}.self_attn.q_proj`, C, qd), k: linear(`${p}.self_attn.k_proj`, C, kd), v: linear(`${p}.self_attn.v_proj`, C, kd),
        o: linear(`${p}.self_attn.o_proj`, qd, C), H: cfg.numHeads, Hkv: cfg.numKvHeads, D: cfg.headDim,
      };
      const postNorm = norm(`${p}.post_attention_layernorm`);
      const mlp: MlpWeights = { gate: linear(`${p}.mlp.gate_proj`, C, F), up: linear(`${p}.mlp.up_proj`, C, F), down: linear(`${p}.mlp.down_proj`, F, C), F };
      layers.push({ index: i, inputNorm, attn, postNorm, mlp });
    }
    const finalNorm = norm('model.norm');
    const lmHead: Linear = cfg.tieWordEmbeddings
      ? { name: 'lm_head', inFeatures: C, outFeatures: cfg.vocabSize, weight: tiedHeadWeight(embed), bias: null, lora: null }
      : linear('lm_head', C, cfg.vocabSize);
    const weights: LlamaWeights = { embed, layers, norm: finalNorm, lmHead };
    return new LlamaModel(k, cfg, weights, tokenizer, owned);
  } catch (err) {
    for (const buf of owned) k.free(buf);
    throw err;
  }
}
