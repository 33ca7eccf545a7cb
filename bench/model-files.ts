// Benchmark model files: a Llama-architecture model with random weights drawn from a seeded PRNG,
// written as a Hugging Face folder (config.json + F16 model.safetensors + the Llama-2 tokenizer
// files referenced from ../shared at run time), and the same weights as a Q4_0 GGUF for
// llama.cpp (the peer). Both files are made in a temporary folder by each benchmark run; nothing
// here is shipped or committed.
//
// The GGUF is converted FROM the safetensors file just written (read back with the project's
// reader), so both sides hold bit-identical weights before their own 4-bit quantization.
// GGUF layout: llama metadata (FORMATS.md §8.1), tensor names and Q/K row permutation (§8.2,
// §8.3), tokenizer metadata copied from the llama-2-tiny-random fixture GGUF (§9, 32000 tokens).
// Tensor types follow llama-quantize for a Q4_0 file (src/llama-quant.cpp `llama_tensor_get_type`):
// 2-D weights Q4_0, norms F32, and the tied token_embd (it is also the output layer when there
// is no output.weight) at Q6_K, which falls back to Q8_0 because ne0 = 576 is not a multiple of 256.
//
// Not here: the measurements (suites/model.ts). This is not a general HF → GGUF exporter (that
// belongs to the export layer): it writes only what a benchmark model needs.

import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { f32ToF16Bits } from '../src/formats/dtype.js';
import { GgmlType } from '../src/formats/gguf/ggml-types.js';
import { hfToGgufName, permuteQkHfToGguf, qkPermuteHeads } from '../src/formats/gguf/llama.js';
import { readGgufFile } from '../src/formats/gguf/reader.js';
import { GgufValueType, type GgufValue } from '../src/formats/gguf/types.js';
import { writeGguf, type GgufTensorToWrite } from '../src/formats/gguf/writer.js';
import { SafetensorsReader, writeSafetensors, type TensorToWrite } from '../src/formats/safetensors.js';
import { Rng } from '../src/model/sampling.js';
import { quantizeGgml } from '../src/quant/ggml/index.js';
import { fixture } from '../test/helpers/shared.js';

export interface BenchModelShape {
  readonly name: string;
  readonly hiddenSize: number;
  readonly intermediateSize: number;
  readonly numLayers: number;
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  readonly vocabSize: number;
  readonly contextLength: number;
  readonly ropeTheta: number;
  readonly rmsNormEps: number;
}

/** SmolLM2-135M's shape (HuggingFaceTB/SmolLM2-135M config.json) with the Llama-2 vocabulary. */
export const SMOLLM2_135M_SHAPE: BenchModelShape = Object.freeze({
  name: 'smollm2-135m-shape',
  hiddenSize: 576,
  intermediateSize: 1536,
  numLayers: 30,
  numHeads: 9,
  numKvHeads: 3,
  headDim: 64,
  vocabSize: 32000,
  contextLength: 2048,
  ropeTheta: 100000,
  rmsNormEps: 1e-5,
});

/** The Llama-2 tokenizer (32000 tokens) for the HF side, and the GGUF holding the same vocabulary. */
const LLAMA2_TOKENIZER_DIR = fixture('tokenizers', 'llama2');
const LLAMA2_VOCAB_GGUF = fixture('models', 'llama-2-tiny-random', 'llama-2-tiny-random.gguf');

/** Weights are uniform in ±WEIGHT_RANGE (std 0.02, a usual init scale); norms uniform in 1 ± NORM_RANGE. */
const WEIGHT_RANGE = 0.02 * Math.sqrt(3);
const NORM_RANGE = 0.1;

interface HfTensorSpec {
  readonly name: string;
  readonly shape: readonly number[];
  readonly isNorm: boolean;
}

/** Every tensor of a tied-embedding Llama checkpoint (FORMATS.md §5.2), in checkpoint order. */
function hfTensorSpecs(s: BenchModelShape): HfTensorSpec[] {
  const C = s.hiddenSize;
  const F = s.intermediateSize;
  const qd = s.numHeads * s.headDim;
  const kd = s.numKvHeads * s.headDim;
  const specs: HfTensorSpec[] = [{ name: 'model.embed_tokens.weight', shape: [s.vocabSize, C], isNorm: false }];
  for (let i = 0; i < s.numLayers; i++) {
    const p = `model.layers.${i}`;
    specs.push(
      { name: `${p}.input_layernorm.weight`, shape: [C], isNorm: true },
      { name: `${p}.self_attn.q_proj.weight`, shape: [qd, C], isNorm: false },
      { name: `${p}.self_attn.k_proj.weight`, shape: [kd, C], isNorm: false },
      { name: `${p}.self_attn.v_proj.weight`, shape: [kd, C], isNorm: false },
      { name: `${p}.self_attn.o_proj.weight`, shape: [C, qd], isNorm: false },
      { name: `${p}.post_attention_layernorm.weight`, shape: [C], isNorm: true },
      { name: `${p}.mlp.gate_proj.weight`, shape: [F, C], isNorm: false },
      { name: `${p}.mlp.up_proj.weight`, shape: [F, C], isNorm: false },
      { name: `${p}.mlp.down_proj.weight`, shape: [C, F], isNorm: false },
    );
  }
  specs.push({ name: 'model.norm.weight', shape: [C], isNorm: true });
  return specs;
}

/** F16 bytes of one tensor; tensor i draws from its own stream, so each is reproducible alone. */
function randomF16Tensor(spec: HfTensorSpec, seed: number, index: number): Uint8Array {
  const n = spec.shape.reduce((a, b) => a * b, 1);
  const rng = Rng.fromSeed(seed * 65536 + index);
  const bits = new Uint16Array(n);
  const [center, range] = spec.isNorm ? [1, NORM_RANGE] : [0, WEIGHT_RANGE];
  for (let i = 0; i < n; i++) bits[i] = f32ToF16Bits(center + (2 * rng.nextFloat() - 1) * range);
  return new Uint8Array(bits.buffer);
}

/** Writes config.json, model.safetensors (F16) and the Llama-2 tokenizer files into `dir`. */
export function writeBenchHfModel(dir: string, s: BenchModelShape, seed: number): void {
  const config = {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: s.hiddenSize,
    intermediate_size: s.intermediateSize,
    num_hidden_layers: s.numLayers,
    num_attention_heads: s.numHeads,
    num_key_value_heads: s.numKvHeads,
    head_dim: s.headDim,
    vocab_size: s.vocabSize,
    max_position_embeddings: s.contextLength,
    rms_norm_eps: s.rmsNormEps,
    rope_theta: s.ropeTheta,
    hidden_act: 'silu',
    tie_word_embeddings: true,
    bos_token_id: 1,
    eos_token_id: 2,
    torch_dtype: 'float16',
  };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  const tensors: TensorToWrite[] = hfTensorSpecs(s).map((spec, i) => ({
    name: spec.name,
    dtype: 'F16',
    shape: spec.shape,
    data: () => randomF16Tensor(spec, seed, i),
  }));
  writeSafetensors(join(dir, 'model.safetensors'), tensors, { format: 'pt' });
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(LLAMA2_TOKENIZER_DIR, f), join(dir, f));
}

// ---- GGUF ------------------------------------------------------------------------------------------

/** general.file_type MOSTLY_Q4_0 (FORMATS.md §7.7). */
const FILE_TYPE_MOSTLY_Q4_0 = 2;
const QUANTIZATION_VERSION = 2;
const TOKEN_EMBD = 'token_embd.weight';

const u32 = (value: number): GgufValue => ({ type: GgufValueType.UINT32, value });
const f32 = (value: number): GgufValue => ({ type: GgufValueType.FLOAT32, value });
const str = (value: string): GgufValue => ({ type: GgufValueType.STRING, value });

/** Llama metadata (FORMATS.md §8.1) then every `tokenizer.*` key of the Llama-2 vocabulary fixture. */
function ggufMetadata(s: BenchModelShape): [string, GgufValue][] {
  const meta: [string, GgufValue][] = [
    ['general.architecture', str('llama')],
    ['general.type', str('model')],
    ['general.name', str(`${s.name}-random`)],
    ['general.file_type', u32(FILE_TYPE_MOSTLY_Q4_0)],
    ['general.quantization_version', u32(QUANTIZATION_VERSION)],
    ['llama.context_length', u32(s.contextLength)],
    ['llama.embedding_length', u32(s.hiddenSize)],
    ['llama.block_count', u32(s.numLayers)],
    ['llama.feed_forward_length', u32(s.intermediateSize)],
    ['llama.attention.head_count', u32(s.numHeads)],
    ['llama.attention.head_count_kv', u32(s.numKvHeads)],
    ['llama.attention.layer_norm_rms_epsilon', f32(s.rmsNormEps)],
    ['llama.rope.freq_base', f32(s.ropeTheta)],
    ['llama.rope.dimension_count', u32(s.headDim)],
    ['llama.vocab_size', u32(s.vocabSize)],
  ];
  const vocab = readGgufFile(LLAMA2_VOCAB_GGUF);
  for (const [key, value] of vocab.metadata) if (key.startsWith('tokenizer.')) meta.push([key, value]);
  return meta;
}

/**
 * Writes `ggufPath` from the HF folder `hfDir` written by writeBenchHfModel: Q4_0 matrices, F32
 * norms, token_embd Q8_0 (tied output), tensors produced one at a time while writing.
 */
export function writeBenchQ4_0Gguf(hfDir: string, ggufPath: string, s: BenchModelShape): void {
  const st = SafetensorsReader.open(join(hfDir, 'model.safetensors'));
  try {
    const tensors: GgufTensorToWrite[] = [];
    for (const spec of hfTensorSpecs(s)) {
      const name = hfToGgufName(spec.name);
      if (name === undefined) throw new Error(`no GGUF name for ${spec.name}`);
      const heads = qkPermuteHeads(spec.name, s);
      const type = spec.isNorm ? GgmlType.F32 : name === TOKEN_EMBD ? GgmlType.Q8_0 : GgmlType.Q4_0;
      tensors.push({
        name,
        ne: [...spec.shape].reverse(),
        type,
        data: () => {
          const x = st.readF32(spec.name);
          const rows = heads === null ? x : permuteQkHfToGguf(x, spec.shape[0], heads);
          return quantizeGgml(type, rows, rows.length, { file: ggufPath, field: name });
        },
      });
    }
    writeGguf(ggufPath, { metadata: ggufMetadata(s), tensors });
  } finally {
    st.close();
  }
}

