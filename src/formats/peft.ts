// PEFT LoRA adapter reader: a folder with `adapter_config.json` + `adapter_model.safetensors`
// (FORMATS.md §10, §11), parsed, validated and checked against the Linear shapes of the model it
// will be attached to. Returns per-module A [r, in], B [out, r] (f32) and the PEFT scale.
//
// Sources: huggingface/peft `src/peft/tuners/lora/config.py` (LoraConfig fields),
// `src/peft/tuners/tuners_utils.py` (`check_target_module_exists`: list entries match a name equal
// to them or ending in "." + entry, a string is a full-match regex; layers_to_transform),
// `src/peft/utils/other.py` (`get_pattern_key`: rank_pattern / alpha_pattern key K applies to
// module N when `(.*\.)?(K)$` matches N), `src/peft/utils/save_and_load.py` (saved keys
// `base_model.model.<module>.lora_A.weight`, no adapter name), `src/peft/utils/constants.py`
// (default target modules of llama/mistral/qwen2: q_proj, v_proj).
//
// Not here: attaching the weights to a model (model/), writing adapters (export/), GGUF adapters.

import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ConfigError, FormatError, IoError, NumericError, ShapeError, UnsupportedError } from '../errors.js';
import { isJsonObject, parseJsonStrict } from './json-strict.js';
import { SafetensorsReader } from './safetensors.js';

export const ADAPTER_CONFIG_NAME = 'adapter_config.json';
export const ADAPTER_WEIGHTS_NAME = 'adapter_model.safetensors';
/** Legacy PyTorch pickle weights; not readable without Python. */
export const ADAPTER_WEIGHTS_BIN_NAME = 'adapter_model.bin';
/** Prefix PeftModel puts before every module path in saved keys. */
export const PEFT_KEY_PREFIX = 'base_model.model.';
/** PEFT's default `target_modules` for the Llama family (llama, mistral, qwen2) when the config has null. */
export const PEFT_DEFAULT_LLAMA_TARGETS: readonly string[] = Object.freeze(['q_proj', 'v_proj']);
/** PEFT's shorthand for every Linear except the output layer. */
const ALL_LINEAR = 'all-linear';

export interface LoraAdapterConfig {
  readonly r: number;
  readonly loraAlpha: number;
  readonly useRslora: boolean;
  /** Explicit module-name suffixes, or a full-match regex string. */
  readonly targetModules: readonly string[] | string;
  /** Modules excluded from targeting (PEFT `exclude_modules`), same syntax; null when absent. */
  readonly excludeModules: readonly string[] | string | null;
  readonly rankPattern: Readonly<Record<string, number>>;
  readonly alphaPattern: Readonly<Record<string, number>>;
  /** Layer indices the adapter applies to, or null for all. */
  readonly layersToTransform: readonly number[] | null;
  readonly layersPattern: readonly string[] | null;
  readonly loraDropout: number;
  readonly baseModelNameOrPath: string | null;
  readonly taskType: string | null;
}

/** The shape of one Linear of the target model (torch [out, in]). */
export interface LinearShape {
  readonly inFeatures: number;
  readonly outFeatures: number;
}

export interface LoraModuleTensors {
  /** Checkpoint module path, e.g. `model.layers.0.self_attn.q_proj`. */
  readonly module: string;
  readonly r: number;
  readonly alpha: number;
  /** α/r, or α/√r with rsLoRA (after rank_pattern / alpha_pattern). */
  readonly scale: number;
  /** [r, in] */
  readonly A: Float32Array;
  /** [out, r] */
  readonly B: Float32Array;
}

export interface PeftAdapter {
  readonly dir: string;
  readonly config: LoraAdapterConfig;
  /** Sorted by module name. */
  readonly modules: readonly LoraModuleTensors[];
}

// ---- adapter_config.json ---------------------------------------------------------------------------

type Json = Record<string, unknown>;

function fieldError(file: string, field: string, expected: string, got: unknown): FormatError {
  return new FormatError('bad adapter_config.json field', { file, field, expected, got: JSON.stringify(got) });
}

function optionalBool(obj: Json, key: string, file: string): boolean {
  const v = obj[key];
  if (v === undefined || v === null) return false;
  if (typeof v !== 'boolean') throw fieldError(file, key, 'a boolean', v);
  return v;
}

function positiveNumber(v: unknown, file: string, field: string, integer: boolean): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || (integer && !Number.isInteger(v))) {
    throw fieldError(file, field, integer ? 'a positive integer' : 'a positive number', v);
  }
  return v;
}

function numberMap(v: unknown, file: string, field: string, integer: boolean): Record<string, number> {
  if (v === undefined || v === null) return {};
  if (!isJsonObject(v)) throw fieldError(file, field, 'an object {pattern: number}', v);
  const out: Record<string, number> = {};
  for (const [k, x] of Object.entries(v)) out[k] = positiveNumber(x, file, `${field}.${k}`, integer);
  return out;
}

function moduleSelector(v: unknown, file: string, field: string): readonly string[] | string | null {
  if (v === undefined || v === null) return null;
  if (typeof v === 'string') return v;
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return Object.freeze([...(v as string[])]);
  throw fieldError(file, field, 'a list of module names or a regex string', v);
}

/** Reject options that change the adapter's structure or math beyond plain LoRA on Linears. */
function refuseUnsupported(obj: Json, file: string): void {
  const refuse = (field: string, why: string): never => {
    throw new UnsupportedError(`adapter uses ${why}, which qlora-ts does not implement`, { file, field, got: JSON.stringify(obj[field]) });
  };
  const set = (k: string): boolean => obj[k] !== undefined && obj[k] !== null && obj[k] !== false;
  if (obj.use_dora === true) refuse('use_dora', 'DoRA (weight-decomposed LoRA)');
  if (obj.lora_bias === true) refuse('lora_bias', 'a bias on lora_B');
  if (obj.bias !== undefined && obj.bias !== null && obj.bias !== 'none') refuse('bias', 'trained base biases');
  if (Array.isArray(obj.modules_to_save) ? obj.modules_to_save.length > 0 : set('modules_to_save')) refuse('modules_to_save', 'fully trained extra modules');
  if (set('layer_replication')) refuse('layer_replication', 'layer replication');
  if (set('target_parameters')) refuse('target_parameters', 'LoRA on raw parameters');
  if (set('trainable_token_indices')) refuse('trainable_token_indices', 'trainable token embeddings');
  if (set('alora_invocation_tokens')) refuse('alora_invocation_tokens', 'activated LoRA');
  if (obj.use_qalora === true) refuse('use_qalora', 'QA-LoRA');
}

/** Parse and validate an adapter_config.json object (`file` names it in errors). */
export function parseAdapterConfig(obj: unknown, file: string): LoraAdapterConfig {
  if (!isJsonObject(obj)) throw new FormatError('adapter_config.json is not a JSON object', { file });
  const peftType = obj.peft_type;
  if (peftType !== 'LORA') {
    throw new UnsupportedError('only LoRA adapters are supported', { file, field: 'peft_type', expected: '"LORA"', got: JSON.stringify(peftType) });
  }
  refuseUnsupported(obj, file);
  const r = positiveNumber(obj.r ?? 8, file, 'r', true);
  const loraAlpha = positiveNumber(obj.lora_alpha ?? 8, file, 'lora_alpha', false);
  let targetModules = moduleSelector(obj.target_modules, file, 'target_modules') ?? PEFT_DEFAULT_LLAMA_TARGETS;
  if (Array.isArray(targetModules) && targetModules.length === 0) throw fieldError(file, 'target_modules', 'at least one module', targetModules);
  if (typeof targetModules === 'string') {
    // PEFT compares the shorthand case-insensitively; saved configs normally hold the expanded list.
    if (targetModules.toLowerCase() === ALL_LINEAR) targetModules = ALL_LINEAR;
    else compileFullMatch(targetModules, file, 'target_modules');
  }
  const excludeModules = moduleSelector(obj.exclude_modules, file, 'exclude_modules');
  if (typeof excludeModules === 'string') compileFullMatch(excludeModules, file, 'exclude_modules');
  const rankPattern = numberMap(obj.rank_pattern, file, 'rank_pattern', true);
  const alphaPattern = numberMap(obj.alpha_pattern, file, 'alpha_pattern', false);
  for (const [field, map] of [['rank_pattern', rankPattern], ['alpha_pattern', alphaPattern]] as const) {
    for (const key of Object.keys(map)) compilePatternKey(key, file, `${field}.${key}`);
  }
  let layersToTransform: number[] | null = null;
  const ltt = obj.layers_to_transform;
  if (typeof ltt === 'number') layersToTransform = [ltt];
  else if (Array.isArray(ltt)) layersToTransform = ltt as number[];
  else if (ltt !== undefined && ltt !== null) throw fieldError(file, 'layers_to_transform', 'an integer or a list of integers', ltt);
  if (layersToTransform !== null && !layersToTransform.every((x) => Number.isInteger(x) && x >= 0)) {
    throw fieldError(file, 'layers_to_transform', 'non-negative integers', ltt);
  }
  const lp = obj.layers_pattern;
  let layersPattern: string[] | null = null;
  if (typeof lp === 'string') layersPattern = [lp];
  else if (Array.isArray(lp) && lp.every((x) => typeof x === 'string')) layersPattern = lp as string[];
  else if (lp !== undefined && lp !== null) throw fieldError(file, 'layers_pattern', 'a string or a list of strings', lp);
  const dropout = obj.lora_dropout ?? 0;
  if (typeof dropout !== 'number' || !(dropout >= 0 && dropout < 1)) throw fieldError(file, 'lora_dropout', 'a number in [0, 1)', dropout);
  if (typeof obj.use_rslora !== 'boolean' && obj.use_rslora !== undefined && obj.use_rslora !== null) throw fieldError(file, 'use_rslora', 'a boolean', obj.use_rslora);
  const str = (k: string): string | null => (typeof obj[k] === 'string' ? (obj[k] as string) : null);
  return Object.freeze({
    r,
    loraAlpha,
    useRslora: optionalBool(obj, 'use_rslora', file),
    targetModules,
    excludeModules,
    rankPattern: Object.freeze(rankPattern),
    alphaPattern: Object.freeze(alphaPattern),
    layersToTransform: layersToTransform === null ? null : Object.freeze([...layersToTransform]),
    layersPattern: layersPattern === null ? null : Object.freeze([...layersPattern]),
    loraDropout: dropout,
    baseModelNameOrPath: str('base_model_name_or_path'),
    taskType: str('task_type'),
  });
}

/** Read and validate `<dir>/adapter_config.json`. */
export function readAdapterConfig(dir: string): LoraAdapterConfig {
  const file = join(resolve(dir), ADAPTER_CONFIG_NAME);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new IoError('cannot read adapter_config.json', { file, cause, hint: adapterFolderHint(dir) });
  }
  return parseAdapterConfig(parseJsonStrict(text, file, 'adapter_config.json'), file);
}

/** Points at sub-folders holding an adapter (PEFT saves non-default adapters in a sub-folder). */
function adapterFolderHint(dir: string): string {
  try {
    const subs = readdirSync(dir).filter((d) => existsSync(join(dir, d, ADAPTER_CONFIG_NAME)) && statSync(join(dir, d)).isDirectory());
    if (subs.length > 0) return `adapters found in sub-folders: ${subs.join(', ')}`;
  } catch {
    // the folder itself is unreadable: the IoError says so
  }
  return `a PEFT adapter folder holds ${ADAPTER_CONFIG_NAME} and ${ADAPTER_WEIGHTS_NAME}`;
}

// ---- module matching and scale -----------------------------------------------------------------

function compileFullMatch(pattern: string, file: string, field: string): RegExp {
  try {
    return new RegExp(`^(?:${pattern})$`);
  } catch (cause) {
    throw new FormatError('invalid regular expression', { file, field, got: pattern, cause });
  }
}

function compilePatternKey(key: string, file: string, field: string): RegExp {
  try {
    return new RegExp(`^(.*\\.)?(${key})$`);
  } catch (cause) {
    throw new FormatError('invalid regular expression', { file, field, got: key, cause });
  }
}

function selects(selector: readonly string[] | string, module: string): boolean {
  if (typeof selector === 'string') return new RegExp(`^(?:${selector})$`).test(module);
  return selector.some((entry) => module === entry || module.endsWith(`.${entry}`));
}

/** Layer index of a module name as PEFT finds it (any `<word>.<n>.` when layers_pattern is unset). */
function layerIndex(module: string, patterns: readonly string[] | null): number | null {
  const regexes = patterns === null || patterns.length === 0 ? [/^.*\.[^.]*\.(\d+)\./] : patterns.map((p) => new RegExp(`^.*\\.${p}\\.(\\d+)\\.`));
  for (const re of regexes) {
    const m = re.exec(module);
    if (m !== null) return Number(m[1]);
  }
  return null;
}

/** Whether the adapter applies to the Linear named `module` (target, exclude, layer selection). */
export function adapterTargets(config: LoraAdapterConfig, module: string): boolean {
  const t = config.targetModules;
  const hit = t === ALL_LINEAR ? module !== 'lm_head' : selects(t, module);
  if (!hit) return false;
  if (config.excludeModules !== null && selects(config.excludeModules, module)) return false;
  // PEFT filters by layer only for list targets matched by suffix (tuners_utils.py
  // check_target_module_exists); a regex target_modules selects layers itself.
  if (config.layersToTransform !== null && config.layersToTransform.length > 0 && Array.isArray(t) && !t.includes(module)) {
    const idx = layerIndex(module, config.layersPattern);
    if (idx === null || !config.layersToTransform.includes(idx)) return false;
  }
  return true;
}

function patternValue(patterns: Readonly<Record<string, number>>, module: string): number | undefined {
  for (const [key, value] of Object.entries(patterns)) if (new RegExp(`^(.*\\.)?(${key})$`).test(module)) return value;
  return undefined;
}

/** Rank, alpha and scale PEFT uses for `module` (rank_pattern / alpha_pattern, rsLoRA). */
export function loraScaleFor(config: LoraAdapterConfig, module: string): { r: number; alpha: number; scale: number } {
  const r = patternValue(config.rankPattern, module) ?? config.r;
  const alpha = patternValue(config.alphaPattern, module) ?? config.loraAlpha;
  return { r, alpha, scale: config.useRslora ? alpha / Math.sqrt(r) : alpha / r };
}

// ---- adapter_model.safetensors -----------------------------------------------------------------

const LORA_KEY = /^base_model\.model\.(.+)\.lora_([AB])\.weight$/;

/** Tensors PEFT writes for features qlora-ts does not implement, by key shape. */
function unsupportedKeyReason(key: string): string | null {
  if (key.endsWith('.lora_magnitude_vector') || key.includes('.lora_magnitude_vector.')) return 'DoRA magnitude vectors';
  if (/\.lora_B\.bias$/.test(key)) return 'a bias on lora_B';
  if (/\.lora_embedding_[AB]$/.test(key)) return 'LoRA on embeddings';
  return null;
}

/**
 * Read a PEFT LoRA adapter folder and check it against the model: `linears` maps every Linear
 * module path of the model to its shape. Every targeted Linear must have both tensors, shapes
 * `A [r, in]`, `B [out, r]` with r as the config says; any other tensor is an error.
 */
export function readPeftAdapter(dir: string, linears: ReadonlyMap<string, LinearShape>): PeftAdapter {
  const root = resolve(dir);
  const config = readAdapterConfig(root);
  const file = join(root, ADAPTER_WEIGHTS_NAME);
  if (!existsSync(file)) {
    const legacy = existsSync(join(root, ADAPTER_WEIGHTS_BIN_NAME));
    throw new FormatError('adapter weights are missing', {
      file,
      expected: ADAPTER_WEIGHTS_NAME,
      got: legacy ? ADAPTER_WEIGHTS_BIN_NAME : 'no weights file',
      hint: legacy ? 'PyTorch .bin adapters are not supported: re-save with safe_serialization=True' : adapterFolderHint(root),
    });
  }
  const reader = SafetensorsReader.open(file);
  try {
    const found = new Map<string, { A?: string; B?: string }>();
    for (const key of reader.names()) {
      const reason = unsupportedKeyReason(key);
      if (reason !== null) throw new UnsupportedError(`adapter holds ${reason}, which qlora-ts does not implement`, { file, field: key });
      const m = LORA_KEY.exec(key);
      if (m === null) {
        throw new FormatError('unexpected tensor in a LoRA adapter', {
          file,
          field: key,
          expected: `${PEFT_KEY_PREFIX}<module>.lora_A.weight or .lora_B.weight`,
          hint: key.includes('.default.') ? 'keys with the adapter name (.default.) are in-memory names; save with PeftModel.save_pretrained' : undefined,
        });
      }
      const [, module, half] = m;
      if (!linears.has(module)) {
        throw new ShapeError('adapter tensor for a module the model does not have', {
          file,
          field: key,
          expected: `a Linear of the model (e.g. ${[...linears.keys()][0] ?? 'none'})`,
          got: module,
          hint: 'was the adapter trained on another architecture?',
        });
      }
      if (!adapterTargets(config, module)) {
        throw new FormatError('adapter tensor for a module its config does not target', {
          file,
          field: key,
          expected: `a module matching target_modules ${JSON.stringify(config.targetModules)}`,
          got: module,
        });
      }
      const slot = found.get(module) ?? {};
      slot[half as 'A' | 'B'] = key;
      found.set(module, slot);
    }
    const modules: LoraModuleTensors[] = [];
    for (const [module, shape] of [...linears].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      if (!adapterTargets(config, module)) continue;
      const keys = found.get(module);
      for (const half of ['A', 'B'] as const) {
        if (keys?.[half] === undefined) {
          throw new FormatError(`adapter is missing lora_${half} of a targeted module`, {
            file,
            field: `${PEFT_KEY_PREFIX}${module}.lora_${half}.weight`,
            hint: `${ADAPTER_CONFIG_NAME} targets ${JSON.stringify(config.targetModules)}`,
          });
        }
      }
      modules.push(readModule(reader, file, config, module, shape, keys!.A!, keys!.B!));
    }
    if (modules.length === 0) {
      throw new ConfigError('adapter targets no Linear of the model', { file: join(root, ADAPTER_CONFIG_NAME), field: 'target_modules', got: JSON.stringify(config.targetModules) });
    }
    return Object.freeze({ dir: root, config, modules: Object.freeze(modules) });
  } finally {
    reader.close();
  }
}

function readModule(reader: SafetensorsReader, file: string, config: LoraAdapterConfig, module: string, shape: LinearShape, keyA: string, keyB: string): LoraModuleTensors {
  const { r, alpha, scale } = loraScaleFor(config, module);
  const expectShape = (key: string, want: [number, number]): void => {
    const e = reader.entry(key);
    if (e.dtype !== 'F32' && e.dtype !== 'F16' && e.dtype !== 'BF16') {
      throw new UnsupportedError('adapter tensor dtype', { file, field: key, expected: 'F32, F16 or BF16', got: e.dtype });
    }
    if (e.shape.length !== 2 || e.shape[0] !== want[0] || e.shape[1] !== want[1]) {
      throw new ShapeError('adapter tensor shape does not match the model and config', {
        file,
        field: key,
        expected: JSON.stringify(want),
        got: JSON.stringify(e.shape),
        hint: e.shape.length === 2 && (e.shape[0] === want[0] || e.shape[1] === want[1]) ? `rank from config: r=${r}` : undefined,
      });
    }
  };
  expectShape(keyA, [r, shape.inFeatures]);
  expectShape(keyB, [shape.outFeatures, r]);
  const A = reader.readF32(keyA);
  const B = reader.readF32(keyB);
  for (const [key, data] of [[keyA, A], [keyB, B]] as const) {
    for (let i = 0; i < data.length; i++) {
      if (!Number.isFinite(data[i])) throw new NumericError('adapter weight is not finite', { file, field: key, got: `${data[i]} at element ${i}` });
    }
  }
  return Object.freeze({ module, r, alpha, scale, A, B });
}
