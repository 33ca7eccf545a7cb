// The one place where the llama architecture's Hugging Face and GGUF conventions meet: tensor
// names in both directions, the Q/K row permutation and its inverse, the HF config rebuilt from
// GGUF metadata (resolved by hf-config.ts so defaults live in one place), and GgufTensorSource,
// which presents a llama GGUF file through the same TensorSource interface as a safetensors
// checkpoint (HF names, HF row order, dequantized f32).
//
// Sources: ggml-org/llama.cpp `src/llama-arch.cpp` (names), `src/llama-model.cpp` (load_hparams),
// `conversion/llama.py` (`permute`), `gguf-py/gguf/tensor_mapping.py`. FORMATS.md §8.
// Not here: the tokenizer (tokenizer.ts), writing whole models (export/).

import { FormatError, UnsupportedError } from '../../errors.js';
import { resolveModelConfig, type ModelConfig } from '../hf-config.js';
import type { DType } from '../dtype.js';
import type { TensorEntry, TensorSource } from '../safetensors.js';
import { dequantizeGgml } from './dequant.js';
import { GgmlType, ggmlTypeName } from './ggml-types.js';
import { readGgufFile, readTensorBytes } from './reader.js';
import { GgufValueType, metaArray, metaNumber, metaString, type GgufFile, type GgufTensorInfo, type GgufValue } from './types.js';

export const GGUF_LLAMA_ARCHITECTURE = 'llama';

const U32 = [GgufValueType.UINT32] as const;
const F32 = [GgufValueType.FLOAT32] as const;
const ANY_INT = [GgufValueType.UINT32, GgufValueType.INT32, GgufValueType.UINT16, GgufValueType.UINT8] as const;

// ------------------------------------------------------------------------------------------------
// Tensor names (FORMATS.md §8.2)

/** [GGUF name, HF name] of tensors outside the decoder layers. */
const GLOBAL_NAMES: ReadonlyArray<readonly [string, string]> = [
  ['token_embd.weight', 'model.embed_tokens.weight'],
  ['output_norm.weight', 'model.norm.weight'],
  ['output.weight', 'lm_head.weight'],
];

/** [GGUF suffix after `blk.{i}.`, HF suffix after `model.layers.{i}.`] of each layer's tensors. */
const LAYER_NAMES: ReadonlyArray<readonly [string, string]> = [
  ['attn_norm.weight', 'input_layernorm.weight'],
  ['attn_q.weight', 'self_attn.q_proj.weight'],
  ['attn_k.weight', 'self_attn.k_proj.weight'],
  ['attn_v.weight', 'self_attn.v_proj.weight'],
  ['attn_output.weight', 'self_attn.o_proj.weight'],
  ['attn_q.bias', 'self_attn.q_proj.bias'],
  ['attn_k.bias', 'self_attn.k_proj.bias'],
  ['attn_v.bias', 'self_attn.v_proj.bias'],
  ['attn_output.bias', 'self_attn.o_proj.bias'],
  ['ffn_norm.weight', 'post_attention_layernorm.weight'],
  ['ffn_gate.weight', 'mlp.gate_proj.weight'],
  ['ffn_up.weight', 'mlp.up_proj.weight'],
  ['ffn_down.weight', 'mlp.down_proj.weight'],
];

/** Per-dimension RoPE frequency divisors that llama.cpp's converter writes for llama3 scaling. */
const ROPE_FREQS_TENSOR = 'rope_freqs.weight';
/** GGUF tensors that have no HF counterpart (derived from the config, FORMATS.md §5.4). */
const DERIVED_GGUF_TENSORS = new Set([ROPE_FREQS_TENSOR]);

const GGUF_LAYER = /^blk\.(\d+)\.(.+)$/;
const HF_LAYER = /^model\.layers\.(\d+)\.(.+)$/;

/** HF name of a llama GGUF tensor (`blk.3.attn_q.weight` -> `model.layers.3.self_attn.q_proj.weight`), or undefined. */
export function ggufToHfName(gguf: string): string | undefined {
  for (const [g, h] of GLOBAL_NAMES) if (g === gguf) return h;
  const m = GGUF_LAYER.exec(gguf);
  if (m === null) return undefined;
  const pair = LAYER_NAMES.find(([g]) => g === m[2]);
  return pair === undefined ? undefined : `model.layers.${m[1]}.${pair[1]}`;
}

/** GGUF name of an HF llama tensor, or undefined (e.g. `rotary_emb.inv_freq` buffers, which GGUF drops). */
export function hfToGgufName(hf: string): string | undefined {
  for (const [g, h] of GLOBAL_NAMES) if (h === hf) return g;
  const m = HF_LAYER.exec(hf);
  if (m === null) return undefined;
  const pair = LAYER_NAMES.find(([, h]) => h === m[2]);
  return pair === undefined ? undefined : `blk.${m[1]}.${pair[0]}`;
}

// ------------------------------------------------------------------------------------------------
// Q/K row permutation (FORMATS.md §8.3)

type RowArray = Uint8Array | Uint16Array | Float32Array;

/** Which heads count permutes an HF tensor's rows: H for q_proj, Hkv for k_proj, null for others. */
export function qkPermuteHeads(hfName: string, config: Pick<ModelConfig, 'numHeads' | 'numKvHeads'>): number | null {
  if (/\.self_attn\.q_proj\.(weight|bias)$/.test(hfName)) return config.numHeads;
  if (/\.self_attn\.k_proj\.(weight|bias)$/.test(hfName)) return config.numKvHeads;
  return null;
}

function permuteRows<T extends RowArray>(src: T, rows: number, nHeads: number, toGguf: boolean): T {
  if (rows % nHeads !== 0 || (rows / nHeads) % 2 !== 0 || src.length % rows !== 0) {
    throw new FormatError('Q/K tensor rows do not split into heads of even size', { expected: `rows divisible by 2 x ${nHeads}, length divisible by rows`, got: `${rows} rows, ${src.length} elements` });
  }
  const D = rows / nHeads;
  const rowLen = src.length / rows;
  const out = new (src.constructor as new (n: number) => T)(src.length);
  for (let h = 0; h < nHeads; h++) {
    for (let i = 0; i < D / 2; i++) {
      for (let j = 0; j < 2; j++) {
        const gguf = h * D + 2 * i + j;
        const hf = h * D + j * (D / 2) + i;
        const [from, to] = toGguf ? [hf, gguf] : [gguf, hf];
        out.set(src.subarray(from * rowLen, (from + 1) * rowLen), to * rowLen);
      }
    }
  }
  return out;
}

/** HF rotate_half row order -> GGUF adjacent-pair order, for a [rows, *] q/k weight, bias or lora_B (any element type). */
export function permuteQkHfToGguf<T extends RowArray>(src: T, rows: number, nHeads: number): T {
  return permuteRows(src, rows, nHeads, true);
}

/** Inverse of permuteQkHfToGguf. */
export function permuteQkGgufToHf<T extends RowArray>(src: T, rows: number, nHeads: number): T {
  return permuteRows(src, rows, nHeads, false);
}

// ------------------------------------------------------------------------------------------------
// Config (FORMATS.md §8.1)

/** Refuses a GGUF whose `general.architecture` is not llama. */
export function requireLlamaArchitecture(file: GgufFile): void {
  const arch = metaString(file, 'general.architecture', true);
  if (arch !== GGUF_LLAMA_ARCHITECTURE) {
    throw new UnsupportedError(`GGUF architecture ${JSON.stringify(arch)} is not supported`, {
      file: file.path,
      field: 'general.architecture',
      expected: GGUF_LLAMA_ARCHITECTURE,
      got: arch,
      hint: 'qlora-ts reads llama-architecture GGUF files (Llama 2/3, Mistral converted as llama); use the Hugging Face folder for other models',
    });
  }
}

/** An HF-style config.json object built from llama GGUF metadata (before default resolution). */
export function ggufToHfConfigObject(file: GgufFile): Record<string, unknown> {
  requireLlamaArchitecture(file);
  const key = (k: string): string => `${GGUF_LLAMA_ARCHITECTURE}.${k}`;
  const hidden = metaNumber(file, key('embedding_length'), U32, true);
  const heads = metaNumber(file, key('attention.head_count'), U32, true);
  const keyLength = metaNumber(file, key('attention.key_length'), U32);
  const valueLength = metaNumber(file, key('attention.value_length'), U32);
  if (keyLength !== undefined && valueLength !== undefined && keyLength !== valueLength) {
    throw new UnsupportedError('different key and value head sizes are not supported', { file: file.path, field: key('attention.value_length'), expected: String(keyLength), got: String(valueLength) });
  }
  const headDim = keyLength ?? hidden / heads;
  const ropeDims = metaNumber(file, key('rope.dimension_count'), U32);
  if (ropeDims !== undefined && ropeDims !== headDim) {
    throw new UnsupportedError('partial rotary embeddings are not supported', { file: file.path, field: key('rope.dimension_count'), expected: `the head size ${headDim}`, got: String(ropeDims) });
  }
  const tokens = metaArray(file, 'tokenizer.ggml.tokens', GgufValueType.STRING);
  const vocab = metaNumber(file, key('vocab_size'), U32) ?? tokens?.length ?? tensorRows(file, 'token_embd.weight');
  const config: Record<string, unknown> = {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: hidden,
    intermediate_size: metaNumber(file, key('feed_forward_length'), U32, true),
    num_hidden_layers: metaNumber(file, key('block_count'), U32, true),
    num_attention_heads: heads,
    num_key_value_heads: metaNumber(file, key('attention.head_count_kv'), U32) ?? heads,
    head_dim: headDim,
    vocab_size: vocab,
    max_position_embeddings: metaNumber(file, key('context_length'), U32, true),
    // The f32 epsilon widened to f64, as transformers' config.json of a converted model holds it.
    rms_norm_eps: metaNumber(file, key('attention.layer_norm_rms_epsilon'), F32, true),
    rope_theta: metaNumber(file, key('rope.freq_base'), F32) ?? 10000,
    hidden_act: 'silu',
    tie_word_embeddings: !file.tensors.some((t) => t.name === 'output.weight'),
    attention_bias: file.tensors.some((t) => t.name === 'blk.0.attn_q.bias'),
    bos_token_id: metaNumber(file, 'tokenizer.ggml.bos_token_id', ANY_INT) ?? null,
    eos_token_id: metaNumber(file, 'tokenizer.ggml.eos_token_id', ANY_INT) ?? null,
    pad_token_id: metaNumber(file, 'tokenizer.ggml.padding_token_id', ANY_INT) ?? null,
  };
  const ropeFreqs = file.tensors.find((t) => t.name === ROPE_FREQS_TENSOR);
  const scaling = metaString(file, key('rope.scaling.type'));
  if (ropeFreqs !== undefined) {
    config.rope_scaling = llama3RopeFromFreqFactors(file, ropeFreqs, config.rope_theta as number, headDim);
  } else if (scaling !== undefined && scaling !== 'none') {
    const factor = metaNumber(file, key('rope.scaling.factor'), F32);
    const original = metaNumber(file, key('rope.scaling.original_context_length'), U32);
    config.rope_scaling = { rope_type: scaling, ...(factor !== undefined ? { factor } : {}), ...(original !== undefined ? { original_max_position_embeddings: original } : {}) };
  }
  const name = metaString(file, 'general.name');
  if (name !== undefined) config._name_or_path = name;
  return config;
}

/**
 * Llama 3.1+ GGUF files carry llama3 RoPE scaling only as `rope_freqs.weight` (D/2 divisors of
 * the frequencies), not as parameters. The converter (`conversion/llama.py`,
 * generate_extra_tensors) computes them from factor, low/high_freq_factor and the original
 * context (8192, 1, 4 in every Llama 3.x release). Rebuild those parameters: factor is the largest
 * divisor; the others are the released values, accepted only if they reproduce every divisor.
 */
const LLAMA3_ROPE_DEFAULTS = Object.freeze({ low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 });
/** rope_freqs is stored as f32; the recomputation is f64. */
const ROPE_FREQS_TOLERANCE = 1e-5;

function llama3RopeFromFreqFactors(file: GgufFile, info: GgufTensorInfo, theta: number, headDim: number): Record<string, unknown> {
  if (info.ne.length !== 1 || info.ne[0] !== headDim / 2) {
    throw new FormatError('rope_freqs.weight has the wrong shape', { file: file.path, field: ROPE_FREQS_TENSOR, expected: `[${headDim / 2}]`, got: `[${info.ne.join(', ')}]` });
  }
  const divisors = dequantizeGgml(info.type, readTensorBytes(file, info), info.ne[0], undefined, { file: file.path, field: ROPE_FREQS_TENSOR });
  const factor = Math.max(...divisors);
  const { low_freq_factor: low, high_freq_factor: high, original_max_position_embeddings: original } = LLAMA3_ROPE_DEFAULTS;
  for (let i = 0; i < divisors.length; i++) {
    const wavelen = (2 * Math.PI) / theta ** (-(2 * i) / headDim);
    let expected: number;
    if (wavelen < original / high) expected = 1;
    else if (wavelen > original / low) expected = factor;
    else {
      const smooth = (original / wavelen - low) / (high - low);
      expected = 1 / ((1 - smooth) / factor + smooth);
    }
    if (Math.abs(divisors[i] - expected) > ROPE_FREQS_TOLERANCE * expected) {
      throw new UnsupportedError('rope_freqs.weight does not follow llama3 scaling with the released parameters', {
        file: file.path,
        field: `${ROPE_FREQS_TENSOR}[${i}]`,
        expected: `${expected} (factor ${factor}, low ${low}, high ${high}, original context ${original})`,
        got: String(divisors[i]),
        hint: 'load the Hugging Face folder of this model instead (its config.json carries the rope parameters)',
      });
    }
  }
  return { rope_type: 'llama3', factor, ...LLAMA3_ROPE_DEFAULTS };
}

function tensorRows(file: GgufFile, name: string): number | undefined {
  const t = file.tensors.find((x) => x.name === name);
  return t === undefined ? undefined : t.ne[1];
}

/** The resolved ModelConfig of a llama GGUF file (same object shape as for a Hugging Face folder). */
export function ggufToModelConfig(file: GgufFile): ModelConfig {
  return resolveModelConfig(ggufToHfConfigObject(file), file.path);
}

// ------------------------------------------------------------------------------------------------
// Tensor source

/** What a GGUF tensor looks like through the HF-named source. */
export interface GgufTensorEntry extends TensorEntry {
  /** The tensor's name inside the GGUF file. */
  readonly ggufName: string;
  readonly ggmlType: GgmlType;
  /** ggml dimension order (shape reversed). */
  readonly ne: readonly number[];
  /** Rows were permuted by the converter (q/k): readBytes and readF32 undo it with this many heads. */
  readonly permuteHeads: number | null;
}

/** DType of the bytes readBytes returns: the element type for plain types, U8 (raw ggml blocks) otherwise. */
const PLAIN_DTYPES: Partial<Record<GgmlType, DType>> = {
  [GgmlType.F32]: 'F32', [GgmlType.F16]: 'F16', [GgmlType.BF16]: 'BF16', [GgmlType.F64]: 'F64',
  [GgmlType.I8]: 'I8', [GgmlType.I16]: 'I16', [GgmlType.I32]: 'I32', [GgmlType.I64]: 'I64',
};

function scalarMetadataString(v: GgufValue): string | undefined {
  if (v.type === GgufValueType.ARRAY) return undefined;
  return String(v.value);
}

/**
 * A llama GGUF file as an HF checkpoint: names are HF names (sorted), shapes torch order, q/k rows
 * in HF rotate_half order. readF32 dequantizes any supported ggml type. For block-quantized types
 * `entry().dtype` is 'U8' and readBytes returns the raw blocks (rows reordered); use `ggmlType`.
 * `metadata` holds the scalar GGUF metadata as strings.
 */
export class GgufTensorSource implements TensorSource {
  readonly metadata: Readonly<Record<string, string>>;
  readonly config: ModelConfig;
  private readonly entries = new Map<string, GgufTensorEntry>();
  private readonly infos = new Map<string, GgufTensorInfo>();
  private readonly sortedNames: string[];

  constructor(readonly file: GgufFile) {
    this.config = ggufToModelConfig(file);
    const meta: Record<string, string> = {};
    for (const [k, v] of file.metadata) {
      const s = scalarMetadataString(v);
      if (s !== undefined) meta[k] = s;
    }
    this.metadata = Object.freeze(meta);
    for (const info of file.tensors) {
      if (DERIVED_GGUF_TENSORS.has(info.name)) continue;
      const hf = ggufToHfName(info.name);
      if (hf === undefined) {
        throw new UnsupportedError('tensor is not part of the llama architecture', { file: file.path, field: info.name, hint: 'llama.cpp would refuse this file too ("wrong number of tensors")' });
      }
      const traits = PLAIN_DTYPES[info.type];
      const shape = [...info.ne].reverse();
      this.infos.set(hf, info);
      this.entries.set(hf, Object.freeze({
        name: hf,
        dtype: traits ?? 'U8',
        shape: Object.freeze(shape),
        file: file.path,
        offset: info.absoluteOffset,
        byteLength: info.nbytes,
        ggufName: info.name,
        ggmlType: info.type,
        ne: info.ne,
        permuteHeads: qkPermuteHeads(hf, this.config),
      }));
    }
    this.sortedNames = [...this.entries.keys()].sort();
  }

  static open(path: string): GgufTensorSource {
    return new GgufTensorSource(readGgufFile(path));
  }

  names(): string[] {
    return [...this.sortedNames];
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  entry(name: string): GgufTensorEntry {
    const e = this.entries.get(name);
    if (e === undefined) throw new FormatError('no such tensor', { file: this.file.path, field: name, hint: `the file holds ${this.entries.size} llama tensors` });
    return e;
  }

  private rows(e: GgufTensorEntry): number {
    return e.ne.slice(1).reduce((a, b) => a * b, 1);
  }

  readBytes(name: string): Uint8Array {
    const e = this.entry(name);
    const bytes = readTensorBytes(this.file, this.infos.get(name)!);
    return e.permuteHeads === null ? bytes : permuteQkGgufToHf(bytes, this.rows(e), e.permuteHeads);
  }

  /** Dequantized f32 in HF layout; types dequantizeGgml does not decode (integers, F64, other quants) are refused. */
  readF32(name: string): Float32Array {
    const e = this.entry(name);
    const info = this.infos.get(name)!;
    const n = e.ne.reduce((a, b) => a * b, 1);
    const y = dequantizeGgml(e.ggmlType, readTensorBytes(this.file, info), n, undefined, { file: this.file.path, field: `${name} (${info.name}, ${ggmlTypeName(info.type)})` });
    return e.permuteHeads === null ? y : permuteQkGgufToHf(y, this.rows(e), e.permuteHeads);
  }

  readF32Into(name: string, out: Float32Array): void {
    const e = this.entry(name);
    if (e.permuteHeads !== null || out.length !== e.ne.reduce((a, b) => a * b, 1)) {
      out.set(this.readF32(name)); // (a length mismatch throws in set)
      return;
    }
    const info = this.infos.get(name)!;
    dequantizeGgml(e.ggmlType, readTensorBytes(this.file, info), out.length, out, { file: this.file.path, field: `${name} (${info.name}, ${ggmlTypeName(info.type)})` });
  }

  close(): void {
    // Reads open and close the file each time; nothing is held.
  }
}
