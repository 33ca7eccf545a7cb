// Hugging Face config.json for the Llama family, in two stages: parse (strict JSON, a plain object),
// then resolve every default and every consistency rule in one place into a frozen ModelConfig.
// Defaults are transformers' class defaults (huggingface/transformers
// `src/transformers/models/{llama,mistral,qwen2}/configuration_*.py`), RoPE per
// `modeling_rope_utils.py` (FORMATS.md §5.1), bitsandbytes `quantization_config` per
// `utils/quantization_config.py` (FORMATS.md §4.3). This file does not look at weights.

import { readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ConfigError, IoError, UnsupportedError } from '../errors.js';
import { isJsonObject, parseJsonStrict } from './json-strict.js';

export type Architecture = 'llama' | 'mistral' | 'qwen2';
export type RopeType = 'default' | 'linear' | 'llama3';
export type TorchDtype = 'float32' | 'float16' | 'bfloat16';

export interface RopeConfig {
  readonly theta: number;
  readonly type: RopeType;
  /** Position scale (linear) or frequency scale (llama3); 1 for default. */
  readonly factor: number;
  /** llama3 only, else null. */
  readonly lowFreqFactor: number | null;
  readonly highFreqFactor: number | null;
  readonly originalMaxPositionEmbeddings: number | null;
}

/** bitsandbytes 4-bit `quantization_config`, class defaults applied (FORMATS.md §4.3). */
export interface BnbQuantizationConfig {
  readonly quantMethod: 'bitsandbytes';
  readonly loadIn4bit: true;
  readonly quantType: 'nf4' | 'fp4';
  readonly useDoubleQuant: boolean;
  /** null in the file means float32. */
  readonly computeDtype: TorchDtype;
  /** null in the file means uint8; otherwise a torch dtype name (the packed bytes' storage type). */
  readonly quantStorage: string;
  readonly skipModules: readonly string[] | null;
  /** The block exactly as parsed, to write back unchanged. */
  readonly raw: Readonly<Record<string, unknown>>;
}

export interface ModelConfig {
  readonly architecture: Architecture;
  /** The class named in `architectures` (e.g. "LlamaForCausalLM"). */
  readonly architectureClass: string;
  readonly vocabSize: number;
  readonly hiddenSize: number;
  readonly intermediateSize: number;
  readonly numLayers: number;
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  readonly rmsNormEps: number;
  readonly maxPositionEmbeddings: number;
  readonly tieWordEmbeddings: boolean;
  /** Bias on the q/k/v projections (Llama: attention_bias; Qwen2: always; Mistral: never). */
  readonly attentionBias: boolean;
  /** Bias on o_proj (Llama with attention_bias only; Qwen2's o_proj has none). */
  readonly outputProjBias: boolean;
  readonly mlpBias: boolean;
  readonly rope: RopeConfig;
  /** Mistral (and Qwen2 with use_sliding_window) attention window; null = full attention. */
  readonly slidingWindow: number | null;
  readonly bosTokenId: number | null;
  readonly eosTokenIds: readonly number[];
  readonly padTokenId: number | null;
  readonly torchDtype: TorchDtype | null;
  readonly quantization: BnbQuantizationConfig | null;
  /** The parsed config.json, for writing it back with changes. */
  readonly raw: Readonly<Record<string, unknown>>;
}

/** Class names and model_type values of each supported architecture. */
const ARCHITECTURE_CLASSES: Readonly<Record<string, Architecture>> = Object.freeze({
  LlamaForCausalLM: 'llama',
  MistralForCausalLM: 'mistral',
  Qwen2ForCausalLM: 'qwen2',
});
const MODEL_TYPES: readonly Architecture[] = ['llama', 'mistral', 'qwen2'];

interface ArchitectureDefaults {
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  /** null: same as numHeads. */
  numKvHeads: number | null;
  maxPositionEmbeddings: number;
  rmsNormEps: number;
  ropeTheta: number;
  bosTokenId: number | null;
  eosTokenId: number | null;
  slidingWindow: number | null;
}

/** transformers' constructor defaults per architecture (configuration_llama/mistral/qwen2.py). */
const DEFAULTS: Readonly<Record<Architecture, ArchitectureDefaults>> = Object.freeze({
  llama: {
    vocabSize: 32000, hiddenSize: 4096, intermediateSize: 11008, numLayers: 32, numHeads: 32, numKvHeads: null,
    maxPositionEmbeddings: 2048, rmsNormEps: 1e-6, ropeTheta: 10000, bosTokenId: 1, eosTokenId: 2, slidingWindow: null,
  },
  mistral: {
    vocabSize: 32000, hiddenSize: 4096, intermediateSize: 14336, numLayers: 32, numHeads: 32, numKvHeads: 8,
    maxPositionEmbeddings: 4096 * 32, rmsNormEps: 1e-6, ropeTheta: 10000, bosTokenId: 1, eosTokenId: 2, slidingWindow: 4096,
  },
  qwen2: {
    vocabSize: 151936, hiddenSize: 4096, intermediateSize: 22016, numLayers: 32, numHeads: 32, numKvHeads: 32,
    maxPositionEmbeddings: 32768, rmsNormEps: 1e-6, ropeTheta: 10000, bosTokenId: null, eosTokenId: null, slidingWindow: 4096,
  },
});

/** RoPE types transformers knows but this library does not implement. */
const UNIMPLEMENTED_ROPE_TYPES = new Set(['dynamic', 'yarn', 'longrope', 'su', 'proportional']);

/** Stage 1: config.json text -> plain object (strict JSON, duplicate keys refused). */
export function parseConfigJson(text: string, file: string): Record<string, unknown> {
  const value = parseJsonStrict(text, file, 'config.json');
  if (!isJsonObject(value)) throw new ConfigError('config.json is not a JSON object', { file });
  return value;
}

/** Reads and resolves `config.json` from a model folder or a file path. */
export function loadModelConfig(dirOrFile: string): ModelConfig {
  let file = resolve(dirOrFile);
  try {
    if (statSync(file).isDirectory()) file = join(file, 'config.json');
  } catch (cause) {
    throw new IoError('no such file or folder', { file, cause });
  }
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new IoError('cannot read config.json', { file, cause, hint: 'a Hugging Face model folder holds config.json' });
  }
  return resolveModelConfig(parseConfigJson(text, file), file);
}

/** Typed field access with errors naming the file and field. */
class Fields {
  constructor(readonly raw: Record<string, unknown>, readonly file: string) {}

  present(key: string): boolean {
    return this.raw[key] !== undefined && this.raw[key] !== null;
  }

  positiveInt(key: string, fallback: number): number {
    const v = this.raw[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) {
      throw new ConfigError('must be a positive integer', { file: this.file, field: key, got: JSON.stringify(v) });
    }
    return v;
  }

  positiveNumber(key: string, fallback: number, obj: Record<string, unknown> = this.raw, prefix = ''): number {
    const v = obj[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
      throw new ConfigError('must be a positive number', { file: this.file, field: prefix + key, got: JSON.stringify(v) });
    }
    return v;
  }

  bool(key: string, fallback: boolean): boolean {
    const v = this.raw[key] ?? fallback;
    if (typeof v !== 'boolean') throw new ConfigError('must be true or false', { file: this.file, field: key, got: JSON.stringify(v) });
    return v;
  }

  /** A token id, or null when the file says null; `fallback` when absent. */
  tokenId(key: string, fallback: number | null): number | null {
    const v = key in this.raw ? this.raw[key] : fallback;
    if (v === null || v === undefined) return null;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
      throw new ConfigError('must be a token id (non-negative integer) or null', { file: this.file, field: key, got: JSON.stringify(v) });
    }
    return v;
  }
}

function resolveArchitecture(f: Fields): { architecture: Architecture; architectureClass: string } {
  const supported = `${Object.keys(ARCHITECTURE_CLASSES).join(', ')} (model_type ${MODEL_TYPES.join(', ')})`;
  const archs = f.raw.architectures;
  const modelType = f.raw.model_type;
  let fromClass: { architecture: Architecture; architectureClass: string } | null = null;
  if (archs !== undefined && archs !== null) {
    if (!Array.isArray(archs) || archs.length !== 1 || typeof archs[0] !== 'string') {
      throw new ConfigError('architectures must list exactly one class name', { file: f.file, field: 'architectures', got: JSON.stringify(archs) });
    }
    const cls = archs[0];
    const arch = ARCHITECTURE_CLASSES[cls];
    if (arch === undefined) {
      throw new UnsupportedError(`unsupported architecture ${cls}`, { file: f.file, field: 'architectures', expected: supported, got: cls });
    }
    fromClass = { architecture: arch, architectureClass: cls };
  }
  if (modelType !== undefined && modelType !== null) {
    if (typeof modelType !== 'string' || !(MODEL_TYPES as readonly string[]).includes(modelType)) {
      throw new UnsupportedError(`unsupported model_type ${JSON.stringify(modelType)}`, { file: f.file, field: 'model_type', expected: supported, got: String(modelType) });
    }
    if (fromClass !== null && fromClass.architecture !== modelType) {
      throw new ConfigError('model_type contradicts architectures', {
        file: f.file,
        field: 'model_type',
        expected: fromClass.architecture,
        got: modelType,
      });
    }
    if (fromClass === null) {
      const cls = Object.keys(ARCHITECTURE_CLASSES).find((c) => ARCHITECTURE_CLASSES[c] === modelType)!;
      return { architecture: modelType as Architecture, architectureClass: cls };
    }
  }
  if (fromClass === null) {
    throw new ConfigError('config.json names no architecture', { file: f.file, field: 'architectures', expected: supported, got: 'neither architectures nor model_type' });
  }
  return fromClass;
}

/** FORMATS.md §5.1: p = rope_parameters ?? rope_scaling ?? {}; theta and type from p first. */
function resolveRope(f: Fields, defaultTheta: number): RopeConfig {
  const source = f.present('rope_parameters') ? 'rope_parameters' : f.present('rope_scaling') ? 'rope_scaling' : null;
  let p: Record<string, unknown> = {};
  if (source !== null) {
    const v = f.raw[source];
    if (!isJsonObject(v)) throw new ConfigError('must be an object or null', { file: f.file, field: source, got: JSON.stringify(v) });
    // transformers v5 may nest the parameters per attention type; these architectures have one.
    p = isJsonObject(v.full_attention) && v.rope_type === undefined && v.type === undefined ? v.full_attention : v;
  }
  const prefix = source === null ? '' : `${source}.`;
  const theta = f.positiveNumber('rope_theta', typeof f.raw.rope_theta === 'number' ? f.raw.rope_theta : defaultTheta, p, prefix);
  const typeValue = p.rope_type ?? p.type ?? 'default';
  const typeField = `${prefix}${p.rope_type !== undefined ? 'rope_type' : 'type'}`;
  if (typeof typeValue !== 'string') throw new ConfigError('rope type must be a string', { file: f.file, field: typeField, got: JSON.stringify(typeValue) });
  const requireNumber = (key: string): number => {
    if (p[key] === undefined || p[key] === null) {
      throw new ConfigError(`rope type ${typeValue} needs ${key}`, { file: f.file, field: prefix + key, expected: 'a positive number', got: 'absent' });
    }
    return f.positiveNumber(key, 0, p, prefix);
  };
  switch (typeValue) {
    case 'default':
      return { theta, type: 'default', factor: 1, lowFreqFactor: null, highFreqFactor: null, originalMaxPositionEmbeddings: null };
    case 'linear':
      return { theta, type: 'linear', factor: requireNumber('factor'), lowFreqFactor: null, highFreqFactor: null, originalMaxPositionEmbeddings: null };
    case 'llama3': {
      const low = requireNumber('low_freq_factor');
      const high = requireNumber('high_freq_factor');
      if (high <= low) {
        throw new ConfigError('llama3 rope needs high_freq_factor > low_freq_factor', { file: f.file, field: `${prefix}high_freq_factor`, got: `${high} <= ${low}` });
      }
      return {
        theta,
        type: 'llama3',
        factor: requireNumber('factor'),
        lowFreqFactor: low,
        highFreqFactor: high,
        originalMaxPositionEmbeddings: requireNumber('original_max_position_embeddings'),
      };
    }
    default:
      if (UNIMPLEMENTED_ROPE_TYPES.has(typeValue)) {
        throw new UnsupportedError(`rope type ${typeValue} is not implemented`, { file: f.file, field: typeField, expected: 'default, linear, llama3', got: typeValue });
      }
      throw new ConfigError(`unknown rope type ${JSON.stringify(typeValue)}`, { file: f.file, field: typeField, expected: 'default, linear, llama3', got: typeValue });
  }
}

function resolveTorchDtype(f: Fields): TorchDtype | null {
  // v4 writes torch_dtype, v5 writes dtype.
  const key = f.present('dtype') ? 'dtype' : 'torch_dtype';
  const v = f.raw[key];
  if (v === undefined || v === null || v === 'auto') return null;
  if (v === 'float32' || v === 'float16' || v === 'bfloat16') return v;
  throw new ConfigError('unsupported storage dtype', { file: f.file, field: key, expected: 'float32, float16, bfloat16 or auto', got: JSON.stringify(v) });
}

function resolveEosIds(f: Fields, fallback: number | null): number[] {
  const v = 'eos_token_id' in f.raw ? f.raw.eos_token_id : fallback;
  if (v === null || v === undefined) return [];
  const list = Array.isArray(v) ? v : [v];
  for (const id of list) {
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) {
      throw new ConfigError('eos_token_id must be a token id or a list of them', { file: f.file, field: 'eos_token_id', got: JSON.stringify(v) });
    }
  }
  return list as number[];
}

function torchDtypeName(v: unknown, file: string, field: string, fallback: TorchDtype): TorchDtype {
  if (v === null || v === undefined) return fallback;
  const name = typeof v === 'string' ? v.replace(/^torch\./, '') : v;
  if (name === 'float32' || name === 'float16' || name === 'bfloat16') return name;
  throw new ConfigError('unsupported dtype', { file, field, expected: 'float32, float16 or bfloat16', got: JSON.stringify(v) });
}

/** Parses `quantization_config` (FORMATS.md §4.3), tolerant of keys older writers omit. */
export function resolveBnbQuantizationConfig(value: unknown, file: string): BnbQuantizationConfig | null {
  if (value === undefined || value === null) return null;
  const field = 'quantization_config';
  if (!isJsonObject(value)) throw new ConfigError('must be an object', { file, field, got: JSON.stringify(value) });
  const method = value.quant_method ?? 'bitsandbytes';
  if (method !== 'bitsandbytes') {
    throw new UnsupportedError(`quantization method ${JSON.stringify(method)} is not supported`, {
      file,
      field: `${field}.quant_method`,
      expected: 'bitsandbytes (4-bit)',
      got: String(method),
    });
  }
  const load4 = value.load_in_4bit ?? value._load_in_4bit ?? false;
  const load8 = value.load_in_8bit ?? value._load_in_8bit ?? false;
  if (load8 === true || load4 !== true) {
    throw new UnsupportedError('only bitsandbytes 4-bit checkpoints are supported', {
      file,
      field: `${field}.load_in_4bit`,
      expected: 'load_in_4bit true',
      got: `load_in_4bit ${JSON.stringify(load4)}, load_in_8bit ${JSON.stringify(load8)}`,
    });
  }
  const quantType = value.bnb_4bit_quant_type ?? 'fp4';
  if (quantType !== 'nf4' && quantType !== 'fp4') {
    throw new ConfigError('unknown 4-bit quant type', { file, field: `${field}.bnb_4bit_quant_type`, expected: 'nf4 or fp4', got: JSON.stringify(quantType) });
  }
  const dq = value.bnb_4bit_use_double_quant ?? false;
  if (typeof dq !== 'boolean') {
    throw new ConfigError('must be true or false', { file, field: `${field}.bnb_4bit_use_double_quant`, got: JSON.stringify(dq) });
  }
  const storage = value.bnb_4bit_quant_storage ?? 'uint8';
  if (typeof storage !== 'string') {
    throw new ConfigError('must be a dtype name', { file, field: `${field}.bnb_4bit_quant_storage`, got: JSON.stringify(storage) });
  }
  const skip = value.llm_int8_skip_modules ?? null;
  if (skip !== null && !(Array.isArray(skip) && skip.every((s) => typeof s === 'string'))) {
    throw new ConfigError('must be a list of module names or null', { file, field: `${field}.llm_int8_skip_modules`, got: JSON.stringify(skip) });
  }
  return Object.freeze({
    quantMethod: 'bitsandbytes',
    loadIn4bit: true,
    quantType,
    useDoubleQuant: dq,
    computeDtype: torchDtypeName(value.bnb_4bit_compute_dtype, file, `${field}.bnb_4bit_compute_dtype`, 'float32'),
    quantStorage: storage.replace(/^torch\./, ''),
    skipModules: skip === null ? null : Object.freeze([...(skip as string[])]),
    raw: Object.freeze({ ...value }),
  });
}

/** Stage 2: every default and consistency rule, into a frozen ModelConfig. */
export function resolveModelConfig(raw: Record<string, unknown>, file = 'config.json'): ModelConfig {
  const f = new Fields(raw, file);
  const { architecture, architectureClass } = resolveArchitecture(f);
  const d = DEFAULTS[architecture];
  const hiddenAct = raw.hidden_act ?? raw.hidden_activation ?? 'silu';
  if (hiddenAct !== 'silu') {
    throw new UnsupportedError(`activation ${JSON.stringify(hiddenAct)} is not implemented`, { file, field: 'hidden_act', expected: 'silu', got: String(hiddenAct) });
  }
  const hiddenSize = f.positiveInt('hidden_size', d.hiddenSize);
  const numHeads = f.positiveInt('num_attention_heads', d.numHeads);
  const numKvHeads = f.positiveInt('num_key_value_heads', d.numKvHeads ?? numHeads);
  if (numHeads % numKvHeads !== 0) {
    throw new ConfigError('num_key_value_heads must divide num_attention_heads', {
      file,
      field: 'num_key_value_heads',
      expected: `a divisor of ${numHeads}`,
      got: String(numKvHeads),
    });
  }
  let headDim: number;
  if (f.present('head_dim')) {
    headDim = f.positiveInt('head_dim', 0);
  } else {
    if (hiddenSize % numHeads !== 0) {
      throw new ConfigError('num_attention_heads must divide hidden_size when head_dim is absent', {
        file,
        field: 'num_attention_heads',
        expected: `a divisor of hidden_size ${hiddenSize}`,
        got: String(numHeads),
        hint: 'add head_dim to config.json if the model uses a head size other than hidden_size / heads',
      });
    }
    headDim = hiddenSize / numHeads;
  }
  let slidingWindow: number | null = null;
  if (architecture === 'mistral') {
    slidingWindow = 'sliding_window' in raw ? (raw.sliding_window === null ? null : f.positiveInt('sliding_window', 0)) : d.slidingWindow;
  } else if (architecture === 'qwen2' && f.bool('use_sliding_window', false)) {
    slidingWindow = f.positiveInt('sliding_window', d.slidingWindow!);
  }
  const config: ModelConfig = {
    architecture,
    architectureClass,
    vocabSize: f.positiveInt('vocab_size', d.vocabSize),
    hiddenSize,
    intermediateSize: f.positiveInt('intermediate_size', d.intermediateSize),
    numLayers: f.positiveInt('num_hidden_layers', d.numLayers),
    numHeads,
    numKvHeads,
    headDim,
    rmsNormEps: f.positiveNumber('rms_norm_eps', d.rmsNormEps),
    maxPositionEmbeddings: f.positiveInt('max_position_embeddings', d.maxPositionEmbeddings),
    tieWordEmbeddings: f.bool('tie_word_embeddings', false),
    attentionBias: architecture === 'qwen2' ? true : architecture === 'llama' ? f.bool('attention_bias', false) : false,
    outputProjBias: architecture === 'llama' ? f.bool('attention_bias', false) : false,
    mlpBias: architecture === 'llama' ? f.bool('mlp_bias', false) : false,
    rope: Object.freeze(resolveRope(f, d.ropeTheta)),
    slidingWindow,
    bosTokenId: f.tokenId('bos_token_id', d.bosTokenId),
    eosTokenIds: Object.freeze(resolveEosIds(f, d.eosTokenId)),
    padTokenId: f.tokenId('pad_token_id', null),
    torchDtype: resolveTorchDtype(f),
    quantization: resolveBnbQuantizationConfig(raw.quantization_config, file),
    raw: Object.freeze({ ...raw }),
  };
  for (const [key, id] of [['bos_token_id', config.bosTokenId], ['pad_token_id', config.padTokenId]] as const) {
    if (id !== null && id >= config.vocabSize) {
      throw new ConfigError('token id is outside the vocabulary', { file, field: key, expected: `< vocab_size ${config.vocabSize}`, got: String(id) });
    }
  }
  return Object.freeze(config);
}
