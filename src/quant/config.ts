// QuantizationConfig: what to quantize and how, in two stages (STYLE.md §7): parse what the user
// or a file says (parseQuantizationOptions: types and unknown keys), then resolve every default
// and refuse invalid combinations in one place (resolveQuantizationConfig: a frozen object).
// planModuleQuantization answers, for one checkpoint tensor, what happens to it.
// Not here: the arithmetic (blockwise.ts, quantized-tensor.ts) or any file format.
//
// Defaults and why:
// - nf4, block 64, double quant ON for nf4: the QLoRA recipe (artidoro/qlora qlora.py).
// - double quant OFF for fp4: bitsandbytes' own default (Linear4bit compress_statistics and
//   BitsAndBytesConfig bnb_4bit_use_double_quant are False), so `--quant fp4` gives what a Python
//   user gets from bnb_4bit_quant_type="fp4"; pass doubleQuant: true to change it.
// - Only 2-D `.weight` tensors are quantized, minus the skip list (default: lm_head and token
//   embeddings); norms and biases are 1-D. For Llama-family checkpoints this is exactly the set of
//   nn.Linear weights inside the decoder layers that transformers quantizes (quantizer_bnb_4bit.py).

import { ConfigError } from '../errors.js';
import type { Quant4Type } from './types.js';

export type QuantStrategy = 'blockwise' | 'perChannel';
export type FloatKind = 'f32' | 'f16' | 'bf16';

export const MIN_BLOCK_SIZE = 32;
export const MAX_QUANT_BLOCK_SIZE = 4096;
export const DEFAULT_BLOCK_SIZE = 64;
/** Module-name patterns never quantized unless an override says otherwise. */
export const DEFAULT_SKIP_MODULES: readonly string[] = Object.freeze(['lm_head', 'embed_tokens']);

/** How one tensor is 4-bit quantized. */
export interface Quant4Settings {
  readonly quantType: Quant4Type;
  readonly blockSize: number;
  readonly doubleQuant: boolean;
  readonly strategy: QuantStrategy;
  /** Asymmetric variant: per-block zero = f32(f32(max + min) / 2) subtracted before absmax scaling. */
  readonly zeroPoint: boolean;
}

/** What an override does to the modules it matches. */
export type OverrideAction =
  | { readonly kind: 'keep'; readonly dtype: FloatKind }
  | { readonly kind: 'int8' }
  | { readonly kind: 'quant4'; readonly settings: Quant4Settings };

export interface ModuleOverride {
  /** The pattern as given: a module name, a glob (`*` within a name part, `**` across) or `/regex/`. */
  readonly pattern: string;
  readonly action: OverrideAction;
}

export interface QuantizationConfig extends Quant4Settings {
  readonly computeDtype: FloatKind;
  /** Module-name patterns left in their stored dtype: DEFAULT_SKIP_MODULES plus the options' `skip`. */
  readonly skip: readonly string[];
  /** First matching override wins; overrides take precedence over the skip list. */
  readonly overrides: readonly ModuleOverride[];
  /**
   * false: a NaN or ±Inf weight is a NumericError naming the tensor and flat index.
   * true: NaN is quantized as 0 and ±Inf as ± the largest finite magnitude of its block (0 if the
   * block has none), so one bad value cannot poison its block's scale (quantized-tensor.ts).
   */
  readonly allowNonFinite: boolean;
}

/** The user-facing, all-optional form (CLI options, JSON). */
export interface QuantizationOptions {
  quantType?: Quant4Type;
  blockSize?: number;
  doubleQuant?: boolean;
  strategy?: QuantStrategy;
  zeroPoint?: boolean;
  computeDtype?: FloatKind;
  skip?: string[];
  overrides?: ModuleOverrideOptions[];
  allowNonFinite?: boolean;
}

/** One override as given: `keep` XOR `int8` XOR any of the 4-bit fields. */
export interface ModuleOverrideOptions {
  match: string;
  keep?: FloatKind;
  int8?: boolean;
  quantType?: Quant4Type;
  blockSize?: number;
  doubleQuant?: boolean;
  strategy?: QuantStrategy;
  zeroPoint?: boolean;
}

const QUANT_TYPES: readonly string[] = ['nf4', 'fp4'];
const STRATEGIES: readonly string[] = ['blockwise', 'perChannel'];
const FLOAT_KINDS: readonly string[] = ['f32', 'f16', 'bf16'];
const OPTION_KEYS = ['quantType', 'blockSize', 'doubleQuant', 'strategy', 'zeroPoint', 'computeDtype', 'skip', 'overrides', 'allowNonFinite'];
const OVERRIDE_KEYS = ['match', 'keep', 'int8', 'quantType', 'blockSize', 'doubleQuant', 'strategy', 'zeroPoint'];

function fail(field: string, expected: string, got: unknown, hint?: string): never {
  throw new ConfigError('invalid quantization option', { field, expected, got: JSON.stringify(got) ?? String(got), hint });
}

function checkObject(obj: unknown, keys: readonly string[], field: string): Record<string, unknown> {
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) fail(field, 'an object', obj);
  const o = obj as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!keys.includes(k)) fail(`${field}.${k}`, `one of ${keys.join(', ')}`, k);
  return o;
}

function checkEnum(o: Record<string, unknown>, key: string, allowed: readonly string[], field: string): void {
  if (o[key] !== undefined && !allowed.includes(o[key] as string)) fail(`${field}${key}`, allowed.join(' | '), o[key]);
}

function checkBool(o: Record<string, unknown>, key: string, field: string): void {
  if (o[key] !== undefined && typeof o[key] !== 'boolean') fail(`${field}${key}`, 'true or false', o[key]);
}

/** Check the types of a plain object (e.g. parsed JSON) and return it as QuantizationOptions. */
export function parseQuantizationOptions(obj: unknown): QuantizationOptions {
  const o = checkObject(obj, OPTION_KEYS, 'quantization');
  checkEnum(o, 'quantType', QUANT_TYPES, '');
  checkEnum(o, 'strategy', STRATEGIES, '');
  checkEnum(o, 'computeDtype', FLOAT_KINDS, '');
  for (const k of ['doubleQuant', 'zeroPoint', 'allowNonFinite']) checkBool(o, k, '');
  if (o.blockSize !== undefined && typeof o.blockSize !== 'number') fail('blockSize', 'a number', o.blockSize);
  if (o.skip !== undefined && (!Array.isArray(o.skip) || !o.skip.every((s) => typeof s === 'string'))) fail('skip', 'a list of module-name patterns', o.skip);
  if (o.overrides !== undefined) {
    if (!Array.isArray(o.overrides)) fail('overrides', 'a list of {match, ...}', o.overrides);
    o.overrides.forEach((ov: unknown, i: number) => {
      const f = `overrides[${i}]`;
      const r = checkObject(ov, OVERRIDE_KEYS, f);
      if (typeof r.match !== 'string' || r.match.length === 0) fail(`${f}.match`, 'a module-name pattern', r.match);
      checkEnum(r, 'keep', FLOAT_KINDS, `${f}.`);
      checkEnum(r, 'quantType', QUANT_TYPES, `${f}.`);
      checkEnum(r, 'strategy', STRATEGIES, `${f}.`);
      for (const k of ['int8', 'doubleQuant', 'zeroPoint']) checkBool(r, k, `${f}.`);
      if (r.blockSize !== undefined && typeof r.blockSize !== 'number') fail(`${f}.blockSize`, 'a number', r.blockSize);
    });
  }
  return o as QuantizationOptions;
}

function checkBlockSize(bs: number, field: string): void {
  if (!Number.isInteger(bs) || bs < MIN_BLOCK_SIZE || bs > MAX_QUANT_BLOCK_SIZE || (bs & (bs - 1)) !== 0) {
    fail(field, `a power of two from ${MIN_BLOCK_SIZE} to ${MAX_QUANT_BLOCK_SIZE}`, bs, 'bitsandbytes uses 64');
  }
}

function resolveSettings(o: Partial<Quant4Settings>, base: Quant4Settings | null, field: string): Quant4Settings {
  const quantType = o.quantType ?? base?.quantType ?? 'nf4';
  // An override that changes the type without saying doubleQuant gets that type's default.
  const typeDefaultDq = quantType === 'nf4';
  const doubleQuant = o.doubleQuant ?? (base !== null && o.quantType === undefined ? base.doubleQuant : typeDefaultDq);
  const s: Quant4Settings = Object.freeze({
    quantType,
    blockSize: o.blockSize ?? base?.blockSize ?? DEFAULT_BLOCK_SIZE,
    doubleQuant,
    strategy: o.strategy ?? base?.strategy ?? 'blockwise',
    zeroPoint: o.zeroPoint ?? base?.zeroPoint ?? false,
  });
  checkBlockSize(s.blockSize, `${field}blockSize`);
  return s;
}

/** Apply every default, validate every combination, and freeze. */
export function resolveQuantizationConfig(options: QuantizationOptions = {}): QuantizationConfig {
  const opts = parseQuantizationOptions(options);
  const settings = resolveSettings(opts, null, '');
  const overrides = (opts.overrides ?? []).map((ov, i): ModuleOverride => {
    const f = `overrides[${i}].`;
    compilePattern(ov.match, `${f}match`);
    const quantFields = (['quantType', 'blockSize', 'doubleQuant', 'strategy', 'zeroPoint'] as const).filter((k) => ov[k] !== undefined);
    const kinds = [ov.keep !== undefined, ov.int8 === true, quantFields.length > 0].filter(Boolean).length;
    if (kinds !== 1) {
      fail(f.slice(0, -1), 'exactly one of: keep (f32|f16|bf16), int8: true, or 4-bit fields (quantType, blockSize, ...)', ov);
    }
    if (ov.keep !== undefined) return Object.freeze({ pattern: ov.match, action: Object.freeze({ kind: 'keep', dtype: ov.keep }) });
    if (ov.int8 === true) return Object.freeze({ pattern: ov.match, action: Object.freeze({ kind: 'int8' }) });
    return Object.freeze({ pattern: ov.match, action: Object.freeze({ kind: 'quant4', settings: resolveSettings(ov, settings, f) }) });
  });
  // Additive: embeddings and lm_head stay unquantized unless an override names them explicitly.
  const skip = [...new Set([...DEFAULT_SKIP_MODULES, ...(opts.skip ?? [])])];
  skip.forEach((p, i) => compilePattern(p, `skip[${i}]`));
  return Object.freeze({
    ...settings,
    computeDtype: opts.computeDtype ?? 'f32',
    skip: Object.freeze([...skip]),
    overrides: Object.freeze(overrides),
    allowNonFinite: opts.allowNonFinite ?? false,
  });
}

// ---- module-name patterns -------------------------------------------------------------------

const patternCache = new Map<string, (module: string) => boolean>();

/**
 * `/re/flags`: a regular expression tested against the module name. A pattern with `*`: a glob
 * over the whole name (`*` = within one dot-separated part, `**` = anything). Otherwise a name:
 * matches when it equals a run of whole dot-separated parts (`lm_head`, `mlp.down_proj`,
 * `model.layers.3`), like transformers' llm_int8_skip_modules but without partial-word hits.
 */
export function compilePattern(pattern: string, field = 'pattern'): (module: string) => boolean {
  const cached = patternCache.get(pattern);
  if (cached !== undefined) return cached;
  let test: (module: string) => boolean;
  const re = /^\/(.+)\/([a-z]*)$/.exec(pattern);
  if (re !== null) {
    let rx: RegExp;
    try {
      rx = new RegExp(re[1], re[2]);
    } catch (cause) {
      throw new ConfigError('invalid regular expression', { field, got: pattern, cause });
    }
    test = (m) => rx.test(m);
  } else if (pattern.includes('*')) {
    const body = pattern.split(/(\*\*|\*)/).map((p) => (p === '**' ? '.*' : p === '*' ? '[^.]*' : p.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))).join('');
    const rx = new RegExp(`^${body}$`);
    test = (m) => rx.test(m);
  } else {
    if (pattern.length === 0) fail(field, 'a non-empty module-name pattern', pattern);
    test = (m) => `.${m}.`.includes(`.${pattern}.`);
  }
  patternCache.set(pattern, test);
  return test;
}

// ---- planning -------------------------------------------------------------------------------

export type ModulePlan =
  | { readonly action: 'quant4'; readonly module: string; readonly settings: Quant4Settings }
  | { readonly action: 'int8'; readonly module: string }
  /** dtype null = leave as stored. */
  | { readonly action: 'keep'; readonly module: string; readonly dtype: FloatKind | null; readonly reason: string };

/** `model.layers.0.mlp.down_proj.weight` -> module `model.layers.0.mlp.down_proj`, param `weight`. */
export function splitParamName(tensorName: string): { module: string; param: string } {
  const dot = tensorName.lastIndexOf('.');
  return dot < 0 ? { module: '', param: tensorName } : { module: tensorName.slice(0, dot), param: tensorName.slice(dot + 1) };
}

/** What happens to one checkpoint tensor under `config`. */
export function planModuleQuantization(config: QuantizationConfig, tensorName: string, shape: readonly number[]): ModulePlan {
  const { module, param } = splitParamName(tensorName);
  if (param !== 'weight' || shape.length !== 2) {
    return { action: 'keep', module, dtype: null, reason: param !== 'weight' ? `not a weight (${param})` : `${shape.length}-D, not a Linear weight` };
  }
  for (const ov of config.overrides) {
    if (!compilePattern(ov.pattern)(module)) continue;
    const a = ov.action;
    if (a.kind === 'keep') return { action: 'keep', module, dtype: a.dtype, reason: `override ${ov.pattern}` };
    if (a.kind === 'int8') return { action: 'int8', module };
    return { action: 'quant4', module, settings: a.settings };
  }
  const skipped = config.skip.find((p) => compilePattern(p)(module));
  if (skipped !== undefined) return { action: 'keep', module, dtype: null, reason: `skip list: ${skipped}` };
  const { quantType, blockSize, doubleQuant, strategy, zeroPoint } = config;
  return { action: 'quant4', module, settings: { quantType, blockSize, doubleQuant, strategy, zeroPoint } };
}
