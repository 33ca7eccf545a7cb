// PEFT LoRA adapter writer: `adapter_config.json` + `adapter_model.safetensors` in the form
// `PeftModel.save_pretrained` produces (FORMATS.md §11), so that `PeftModel.from_pretrained` loads
// it with no missing or unexpected key and formats/peft.ts reads it back.
//
// Sources: huggingface/peft `src/peft/config.py` (`save_pretrained`: `json.dumps(indent=2,
// sort_keys=True)`, no trailing newline, `peft_version` added), `src/peft/tuners/lora/config.py`
// (LoraConfig fields and defaults), `src/peft/utils/save_and_load.py` (saved key names without
// the adapter name, metadata {"format": "pt"}). The key set follows the PEFT 0.21.0 file in
// ../shared/fixtures/golden/stories260K-lora/adapter_config.json.
//
// Not here: reading adapters (peft.ts), choosing what to train (train/), GGUF adapters (export/).

import { join, resolve } from 'node:path';
import { existsSync, statSync } from 'node:fs';
import { ConfigError, IoError, NumericError, ShapeError } from '../errors.js';
import { writeBytesAtomic } from './atomic.js';
import { dumpPythonJson, PyFloat, type PyJson } from './py-json.js';
import { f32ToBf16Bits, f32ToF16Bits, type DType } from './dtype.js';
import { ADAPTER_CONFIG_NAME, ADAPTER_WEIGHTS_NAME, PEFT_KEY_PREFIX } from './peft.js';
import { writeSafetensors, type TensorToWrite } from './safetensors-write.js';

export interface PeftModuleToWrite {
  /** Checkpoint module path, e.g. `model.layers.0.self_attn.q_proj`. */
  readonly module: string;
  readonly r: number;
  readonly inFeatures: number;
  readonly outFeatures: number;
  /** [r, in] */
  readonly A: Float32Array;
  /** [out, r] */
  readonly B: Float32Array;
}

export interface PeftConfigToWrite {
  readonly r: number;
  readonly loraAlpha: number;
  readonly useRslora: boolean;
  readonly loraDropout: number;
  /** Explicit module names (never "all-linear"); written sorted. */
  readonly targetModules: readonly string[];
  readonly baseModelNameOrPath: string | null;
  readonly rankPattern?: Readonly<Record<string, number>>;
  readonly alphaPattern?: Readonly<Record<string, number>>;
  readonly initLoraWeights?: boolean | 'gaussian';
}

export type PeftWriteDtype = 'f32' | 'f16' | 'bf16';

/** The PEFT release whose saved-config key set this writer reproduces. */
export const PEFT_FORMAT_VERSION = '0.21.0';

function checkPositive(value: number, field: string, integer: boolean): void {
  if (!Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value))) {
    throw new ConfigError(`adapter ${field} must be a positive ${integer ? 'integer' : 'number'}`, { field, got: String(value) });
  }
}

function patternDict(map: Readonly<Record<string, number>> | undefined, field: string, integer: boolean): PyJson {
  const dict: Record<string, PyJson> = {};
  for (const [k, x] of Object.entries(map ?? {})) {
    checkPositive(x, `${field}.${k}`, integer);
    dict[k] = integer ? x : new PyFloat(x);
  }
  return dict;
}

/** adapter_config.json text exactly as PEFT's save_pretrained writes it (sorted keys, indent 2). */
export function peftAdapterConfigJson(cfg: PeftConfigToWrite): string {
  checkPositive(cfg.r, 'r', true);
  checkPositive(cfg.loraAlpha, 'lora_alpha', false);
  if (!(cfg.loraDropout >= 0 && cfg.loraDropout < 1)) throw new ConfigError('lora_dropout must be in [0, 1)', { field: 'lora_dropout', got: String(cfg.loraDropout) });
  const targets = [...new Set(cfg.targetModules)].sort();
  if (targets.length === 0) throw new ConfigError('an adapter needs at least one target module', { field: 'target_modules' });
  if (targets.some((t) => t.toLowerCase() === 'all-linear')) {
    throw new ConfigError('target_modules must be explicit names', { field: 'target_modules', got: 'all-linear', hint: 'expand it to the Linear names before saving, as PEFT does' });
  }
  // Every key of PEFT 0.21.0's LoraConfig dict, with the defaults a plain LoRA save holds.
  const dict: Record<string, PyJson> = {
    alora_invocation_tokens: null,
    alpha_pattern: patternDict(cfg.alphaPattern, 'alpha_pattern', false),
    arrow_config: null,
    auto_mapping: null,
    base_model_name_or_path: cfg.baseModelNameOrPath,
    bias: 'none',
    corda_config: null,
    ensure_weight_tying: false,
    eva_config: null,
    exclude_modules: null,
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: cfg.initLoraWeights ?? true,
    kasa_config: null,
    layer_replication: null,
    layers_pattern: null,
    layers_to_transform: null,
    loftq_config: {},
    lora_alpha: new PyFloat(cfg.loraAlpha),
    lora_bias: false,
    lora_dropout: new PyFloat(cfg.loraDropout),
    lora_ga_config: null,
    megatron_config: null,
    megatron_core: 'megatron.core',
    modules_to_save: null,
    monteclora_config: null,
    peft_type: 'LORA',
    peft_version: PEFT_FORMAT_VERSION,
    qalora_group_size: 16,
    r: cfg.r,
    rank_pattern: patternDict(cfg.rankPattern, 'rank_pattern', true),
    revision: null,
    target_modules: targets,
    target_parameters: null,
    task_type: 'CAUSAL_LM',
    trainable_token_indices: null,
    use_bdlora: null,
    use_dora: false,
    use_qalora: false,
    use_rslora: cfg.useRslora,
    velora_config: null,
  };
  return dumpPythonJson(dict);
}

const SAFETENSORS_DTYPE: Readonly<Record<PeftWriteDtype, DType>> = Object.freeze({ f32: 'F32', f16: 'F16', bf16: 'BF16' });

/** Little-endian bytes of `data` in `dtype`; f16 refuses values it cannot hold (naming `key`). */
function encodeTensor(data: Float32Array, dtype: PeftWriteDtype, key: string, file: string): Uint8Array {
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) throw new NumericError('adapter weight is not finite', { file, field: key, got: `${data[i]} at element ${i}` });
  }
  if (dtype === 'f32') return new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
  const out = new Uint16Array(data.length);
  const convert = dtype === 'f16' ? f32ToF16Bits : f32ToBf16Bits;
  for (let i = 0; i < data.length; i++) {
    out[i] = convert(data[i]);
    if (dtype === 'f16' && (out[i] & 0x7c00) === 0x7c00) {
      throw new NumericError('adapter weight overflows f16', { file, field: key, got: `${data[i]} at element ${i}`, hint: 'save as f32 or bf16' });
    }
  }
  return new Uint8Array(out.buffer);
}

function moduleTensors(modules: readonly PeftModuleToWrite[], dtype: PeftWriteDtype, file: string): TensorToWrite[] {
  const seen = new Set<string>();
  const tensors: TensorToWrite[] = [];
  for (const m of modules) {
    if (seen.has(m.module)) throw new ConfigError('adapter module given twice', { file, field: m.module });
    seen.add(m.module);
    checkPositive(m.r, `${m.module}.r`, true);
    for (const [half, data, rows, cols] of [['A', m.A, m.r, m.inFeatures], ['B', m.B, m.outFeatures, m.r]] as const) {
      const key = `${PEFT_KEY_PREFIX}${m.module}.lora_${half}.weight`;
      if (data.length !== rows * cols) {
        throw new ShapeError(`lora_${half} size does not match its shape`, { file, field: key, expected: `${rows}x${cols} = ${rows * cols} values`, got: `${data.length}` });
      }
      tensors.push({ name: key, dtype: SAFETENSORS_DTYPE[dtype], shape: [rows, cols], data: encodeTensor(data, dtype, key, file) });
    }
  }
  if (tensors.length === 0) throw new ConfigError('an adapter needs at least one module', { file });
  return tensors;
}

/** Writes adapter_config.json + adapter_model.safetensors into the existing folder dir, each file atomically. */
export function writePeftAdapter(dir: string, cfg: PeftConfigToWrite, modules: readonly PeftModuleToWrite[], opts?: { readonly dtype?: PeftWriteDtype }): void {
  const root = resolve(dir);
  if (!existsSync(root) || !statSync(root).isDirectory()) throw new IoError('adapter output folder does not exist', { file: root });
  const configText = peftAdapterConfigJson(cfg);
  const weightsFile = join(root, ADAPTER_WEIGHTS_NAME);
  const tensors = moduleTensors(modules, opts?.dtype ?? 'f32', weightsFile);
  writeSafetensors(weightsFile, tensors, { format: 'pt' });
  writeBytesAtomic(join(root, ADAPTER_CONFIG_NAME), configText);
}
