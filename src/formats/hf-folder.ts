// A Hugging Face model folder: config.json (resolved), weights (model.safetensors or the sharded
// index), tokenizer files when present, and generation_config.json with transformers'
// GenerationConfig defaults (huggingface/transformers `src/transformers/generation/configuration_utils.py`).
// Opening reads headers and small JSON files only; tensor data is read on demand through `weights`.

import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ConfigError, FormatError, IoError } from '../errors.js';
import { loadModelConfig, type ModelConfig } from './hf-config.js';
import { isJsonObject, parseJsonStrict } from './json-strict.js';
import { openCheckpoint, type TensorSource } from './safetensors.js';
import { TextTokenizer, TOKENIZER_JSON } from './tokenizer.js';

export const CONFIG_JSON = 'config.json';
export const GENERATION_CONFIG_JSON = 'generation_config.json';

/** Suffix of the packed quant_state tensor of a bitsandbytes 4-bit Linear (FORMATS.md §4.1). */
const BNB_QUANT_STATE_PATTERN = /^(.*)\.weight\.quant_state\.bitsandbytes__(nf4|fp4)$/;

export interface Bnb4bitWeightRef {
  /** Module path, e.g. `model.layers.0.self_attn.q_proj`. */
  readonly module: string;
  readonly quantType: 'nf4' | 'fp4';
  /** Name of the packed quant_state JSON tensor. */
  readonly quantStateTensor: string;
}

/** The bitsandbytes 4-bit Linear layers of a checkpoint, found by their quant_state keys (§4.4). */
export function findBnb4bitWeights(names: readonly string[]): Bnb4bitWeightRef[] {
  const out: Bnb4bitWeightRef[] = [];
  for (const name of names) {
    const m = BNB_QUANT_STATE_PATTERN.exec(name);
    if (m !== null) out.push({ module: m[1], quantType: m[2] as 'nf4' | 'fp4', quantStateTensor: name });
  }
  return out;
}

/** generation_config.json with transformers' defaults, token ids falling back to config.json. */
export interface GenerationConfig {
  readonly bosTokenId: number | null;
  readonly eosTokenIds: readonly number[];
  readonly padTokenId: number | null;
  readonly doSample: boolean;
  readonly temperature: number;
  readonly topK: number;
  readonly topP: number;
  readonly minP: number | null;
  readonly repetitionPenalty: number;
  /** Total length (prompt + new tokens) limit; superseded by maxNewTokens when that is set. */
  readonly maxLength: number;
  readonly maxNewTokens: number | null;
  /** The parsed file ({} when absent). */
  readonly raw: Readonly<Record<string, unknown>>;
}

/** transformers GenerationConfig class defaults. */
const GENERATION_DEFAULTS = Object.freeze({
  doSample: false,
  temperature: 1.0,
  topK: 50,
  topP: 1.0,
  repetitionPenalty: 1.0,
  maxLength: 20,
});

export function resolveGenerationConfig(raw: Record<string, unknown>, model: ModelConfig, file = GENERATION_CONFIG_JSON): GenerationConfig {
  const num = (key: string, fallback: number, check: (v: number) => boolean, expected: string): number => {
    const v = raw[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || !check(v)) throw new ConfigError(`must be ${expected}`, { file, field: key, got: JSON.stringify(v) });
    return v;
  };
  const optionalNum = (key: string, check: (v: number) => boolean, expected: string): number | null =>
    raw[key] === undefined || raw[key] === null ? null : num(key, 0, check, expected);
  const tokenId = (key: string, fallback: number | null): number | null => {
    const v = key in raw ? raw[key] : fallback;
    if (v === null || v === undefined) return null;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new ConfigError('must be a token id or null', { file, field: key, got: JSON.stringify(v) });
    return v;
  };
  let eos: readonly number[] = model.eosTokenIds;
  if ('eos_token_id' in raw) {
    const v = raw.eos_token_id;
    const list = v === null ? [] : Array.isArray(v) ? v : [v];
    if (!list.every((id) => typeof id === 'number' && Number.isSafeInteger(id) && id >= 0)) {
      throw new ConfigError('must be a token id or a list of them', { file, field: 'eos_token_id', got: JSON.stringify(v) });
    }
    eos = list as number[];
  }
  const doSample = raw.do_sample ?? GENERATION_DEFAULTS.doSample;
  if (typeof doSample !== 'boolean') throw new ConfigError('must be true or false', { file, field: 'do_sample', got: JSON.stringify(doSample) });
  const isPositiveInt = (v: number): boolean => Number.isSafeInteger(v) && v > 0;
  return Object.freeze({
    bosTokenId: tokenId('bos_token_id', model.bosTokenId),
    eosTokenIds: Object.freeze([...eos]),
    padTokenId: tokenId('pad_token_id', model.padTokenId),
    doSample,
    temperature: num('temperature', GENERATION_DEFAULTS.temperature, (v) => v >= 0, 'a non-negative number'),
    topK: num('top_k', GENERATION_DEFAULTS.topK, (v) => Number.isSafeInteger(v) && v >= 0, 'a non-negative integer'),
    topP: num('top_p', GENERATION_DEFAULTS.topP, (v) => v > 0 && v <= 1, 'in (0, 1]'),
    minP: optionalNum('min_p', (v) => v >= 0 && v <= 1, 'in [0, 1]'),
    repetitionPenalty: num('repetition_penalty', GENERATION_DEFAULTS.repetitionPenalty, (v) => v > 0, 'a positive number'),
    maxLength: num('max_length', GENERATION_DEFAULTS.maxLength, isPositiveInt, 'a positive integer'),
    maxNewTokens: optionalNum('max_new_tokens', isPositiveInt, 'a positive integer'),
    raw: Object.freeze({ ...raw }),
  });
}

export interface HfFolder {
  readonly dir: string;
  readonly config: ModelConfig;
  /** null when the folder has no tokenizer.json. */
  readonly tokenizer: TextTokenizer | null;
  readonly generationConfig: GenerationConfig;
  readonly weights: TensorSource;
  /** True when the weights hold bitsandbytes 4-bit layers (quant_state tensors, §4.1). */
  readonly isBnb4bit: boolean;
}

/** Opens a Hugging Face model folder. Close `weights` when done. */
export function openHfFolder(dir: string): HfFolder {
  const root = resolve(dir);
  let isDir: boolean;
  try {
    isDir = statSync(root).isDirectory();
  } catch (cause) {
    throw new IoError('no such folder', { file: root, cause });
  }
  if (!isDir) throw new IoError('not a folder', { file: root, hint: 'pass the model folder, not a file in it' });
  const configFile = join(root, CONFIG_JSON);
  if (!existsSync(configFile)) {
    throw new FormatError('not a Hugging Face model folder: config.json is missing', { file: root, expected: CONFIG_JSON, got: 'absent' });
  }
  const config = loadModelConfig(configFile);
  const generationFile = join(root, GENERATION_CONFIG_JSON);
  let generationRaw: Record<string, unknown> = {};
  if (existsSync(generationFile)) {
    let text: string;
    try {
      text = readFileSync(generationFile, 'utf8');
    } catch (cause) {
      throw new IoError('cannot read generation_config.json', { file: generationFile, cause });
    }
    const parsed = parseJsonStrict(text, generationFile, 'generation_config.json');
    if (!isJsonObject(parsed)) throw new ConfigError('generation_config.json is not a JSON object', { file: generationFile });
    generationRaw = parsed;
  }
  const generationConfig = resolveGenerationConfig(generationRaw, config, generationFile);
  const tokenizer = existsSync(join(root, TOKENIZER_JSON)) ? TextTokenizer.fromFolder(root) : null;
  const weights = openCheckpoint(root);
  const isBnb4bit = findBnb4bitWeights(weights.names()).length > 0;
  return Object.freeze({ dir: root, config, tokenizer, generationConfig, weights, isBnb4bit });
}
