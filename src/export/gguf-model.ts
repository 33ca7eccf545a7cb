// GGUF model export (FORMATS.md §6-9): a llama-family base (optionally with a PEFT adapter merged)
// as a GGUF file llama.cpp loads, tensor data byte-identical to llama.cpp's converter
// (`convert_hf_to_gguf.py`) and `llama-quantize` for F32, F16, BF16, Q8_0, Q4_0 and IQ4_NL.
// Type choice as llama-quantize: norms and 1-D tensors F32; the output matrix (token_embd when
// embeddings are tied) Q8_0 for the 4-bit types (llama-quantize wants Q6_K, and falls back to Q8_0
// when ne0 % 256 != 0; qlora-ts has no Q6_K encoder, so it always writes Q8_0 and reports it); rows
// not a multiple of 32 fall back to F16 (convert_hf_to_gguf.py's fallback; llama-quantize aborts).
// Not here: the container (formats/gguf/writer.ts), quantizers (quant/ggml), tokenizer keys.

import { UnsupportedError } from '../errors.js';
import { GgmlType, ggmlTypeName } from '../formats/gguf/ggml-types.js';
import { hfToGgufName, permuteQkHfToGguf, qkPermuteHeads } from '../formats/gguf/llama.js';
import { GgufValueType, type GgufValue } from '../formats/gguf/types.js';
import { writeGguf, type GgufTensorToWrite } from '../formats/gguf/writer.js';
import { quantizeGgml } from '../quant/ggml/quantize.js';
import type { ExportBase } from './base.js';
import { ggufTokenizerMetadata } from './gguf-tokenizer.js';

export type GgufModelType = 'f32' | 'f16' | 'bf16' | 'q8_0' | 'q4_0' | 'iq4_nl';

const TARGET: Readonly<Record<GgufModelType, { type: GgmlType; fileType: number }>> = Object.freeze({
  f32: { type: GgmlType.F32, fileType: 0 },
  f16: { type: GgmlType.F16, fileType: 1 },
  bf16: { type: GgmlType.BF16, fileType: 32 },
  q8_0: { type: GgmlType.Q8_0, fileType: 7 },
  q4_0: { type: GgmlType.Q4_0, fileType: 2 },
  iq4_nl: { type: GgmlType.IQ4_NL, fileType: 25 },
});

const BLOCK = 32;

export interface TensorTypeChoice {
  readonly name: string;
  readonly type: string;
  /** Why the tensor is not the requested type (null when it is, or is a norm). */
  readonly fallback: string | null;
}

export interface GgufExportProgress {
  readonly tensor: string;
  readonly done: number;
  readonly total: number;
}

/** The ggml type of one tensor for a requested file type (see the file header). */
export function chooseTensorType(name: string, ne: readonly number[], target: GgufModelType, tied: boolean): { type: GgmlType; fallback: string | null } {
  const want = TARGET[target].type;
  if (ne.length === 1) return { type: GgmlType.F32, fallback: null };
  if (want === GgmlType.F32 || want === GgmlType.F16 || want === GgmlType.BF16) return { type: want, fallback: null };
  const isOutput = name === 'output.weight' || (tied && name === 'token_embd.weight');
  if (ne[0] % BLOCK !== 0) return { type: GgmlType.F16, fallback: `row length ${ne[0]} is not a multiple of ${BLOCK}: F16` };
  if (isOutput && want !== GgmlType.Q8_0) {
    return { type: GgmlType.Q8_0, fallback: ne[0] % 256 === 0 ? 'output matrix: Q8_0 (llama-quantize would write Q6_K, which qlora-ts does not encode)' : 'output matrix: Q8_0 (as llama-quantize, row length not a multiple of 256)' };
  }
  return { type: want, fallback: null };
}

function metadata(base: ExportBase, target: GgufModelType, name: string): Array<readonly [string, GgufValue]> {
  const c = base.config;
  if (c.architecture === 'qwen2') {
    throw new UnsupportedError('qwen2 models cannot be written as llama GGUF', { file: base.path, field: 'model_type', expected: 'llama or mistral' });
  }
  if (c.rope.type === 'llama3') {
    throw new UnsupportedError('llama3 RoPE scaling (rope_freqs tensor) is not written yet', { file: base.path, field: 'rope_scaling' });
  }
  const u32 = (value: number): GgufValue => ({ type: GgufValueType.UINT32, value });
  const f32 = (value: number): GgufValue => ({ type: GgufValueType.FLOAT32, value });
  const str = (value: string): GgufValue => ({ type: GgufValueType.STRING, value });
  const m: Array<readonly [string, GgufValue]> = [
    ['general.architecture', str('llama')],
    ['general.type', str('model')],
    ['general.name', str(name)],
    ['llama.block_count', u32(c.numLayers)],
    ['llama.context_length', u32(c.maxPositionEmbeddings)],
    ['llama.embedding_length', u32(c.hiddenSize)],
    ['llama.feed_forward_length', u32(c.intermediateSize)],
    ['llama.attention.head_count', u32(c.numHeads)],
    ['llama.attention.head_count_kv', u32(c.numKvHeads)],
    ['llama.rope.freq_base', f32(c.rope.theta)],
    ['llama.attention.layer_norm_rms_epsilon', f32(c.rmsNormEps)],
    ['llama.attention.key_length', u32(c.headDim)],
    ['llama.attention.value_length', u32(c.headDim)],
    ['general.file_type', u32(TARGET[target].fileType)],
    ['llama.vocab_size', u32(c.vocabSize)],
    ['llama.rope.dimension_count', u32(c.headDim)],
  ];
  if (c.rope.type === 'linear') m.push(['llama.rope.scaling.type', str('linear')], ['llama.rope.scaling.factor', f32(c.rope.factor)]);
  m.push(['general.quantization_version', u32(2)]);
  if (base.tokenizer !== null) m.push(...ggufTokenizerMetadata(base.tokenizer, base.path));
  return m;
}

/**
 * Writes `base` (with `read` giving each HF tensor as f32, e.g. with an adapter merged) as a GGUF
 * file at `out`, atomically. Returns each tensor's type and any fallback.
 */
export function writeGgufModel(
  base: ExportBase, read: (name: string) => Float32Array, out: string, target: GgufModelType,
  opts: { name?: string; onProgress?: (p: GgufExportProgress) => void } = {},
): TensorTypeChoice[] {
  const tied = !base.names.includes('lm_head.weight');
  const names = base.names.filter((n) => hfToGgufName(n) !== undefined);
  const skipped = base.names.filter((n) => hfToGgufName(n) === undefined && !/\.rotary_emb\.inv_freq$/.test(n));
  if (skipped.length > 0) throw new UnsupportedError('tensor has no llama GGUF name', { file: base.path, field: skipped[0], hint: 'llama.cpp would refuse the file ("wrong number of tensors")' });
  const choices: TensorTypeChoice[] = [];
  let done = 0;
  const tensors: GgufTensorToWrite[] = names.map((hf) => {
    const gguf = hfToGgufName(hf)!;
    const ne = [...base.shape(hf)].reverse();
    const { type, fallback } = chooseTensorType(gguf, ne, target, tied);
    choices.push({ name: gguf, type: ggmlTypeName(type), fallback });
    return {
      name: gguf, ne, type,
      data: () => {
        let x = read(hf);
        const heads = qkPermuteHeads(hf, base.config);
        if (heads !== null) x = permuteQkHfToGguf(x, ne.length === 1 ? ne[0] : ne[1], heads);
        const bytes = quantizeGgml(type, x, x.length, { file: out, field: gguf });
        opts.onProgress?.({ tensor: gguf, done: ++done, total: names.length });
        return bytes;
      },
    };
  });
  writeGguf(out, { metadata: metadata(base, target, opts.name ?? base.name), tensors });
  return choices;
}
