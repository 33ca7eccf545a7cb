// LoRA for training with Hugging Face PEFT's semantics (FORMATS.md §10-11; peft
// `tuners/lora/config.py`, `tuners/lora/layer.py`, `tuners/tuners_utils.py`): which Linears get
// an adapter, PEFT's initialisation, scale α/r (α/√r with rsLoRA), and the adapter as trainable
// parameters and as a PEFT folder.
//   target_modules: a list (a module matches an entry it equals or ends with `.entry`), a regex
//   string (full match), or "all-linear" (every Linear but lm_head, as PEFT does for causal LMs).
//   init "kaiming" (PEFT's default `True`): A ~ kaiming_uniform(a=√5) = U(±1/√in), B = 0.
//   init "gaussian": A ~ N(0, (1/r)²), B = 0.
// The random stream is this project's (xoshiro128**), so initial values differ from torch's.
// Not here: the LoRA math (nn/linear.ts), reading adapters (formats/peft.ts), the optimiser.

import { ConfigError } from '../errors.js';
import { readPeftAdapter, type LinearShape, type PeftAdapter } from '../formats/peft.js';
import { writePeftAdapter, type PeftModuleToWrite } from '../formats/peft-write.js';
import type { LlamaModel } from '../model/llama.js';
import { Rng } from '../model/sampling.js';
import type { Linear } from '../nn/linear.js';
import type { TrainableParam } from './optim.js';

export const ALL_LINEAR = 'all-linear';

export interface LoraSpec {
  readonly r: number;
  readonly alpha: number;
  readonly dropout: number;
  /** Module names, a full-match regex, or "all-linear". */
  readonly targetModules: readonly string[] | string;
  readonly rslora: boolean;
  readonly init: 'kaiming' | 'gaussian';
}

/** PEFT's selection of a Linear by target_modules. */
export function targetsModule(targets: readonly string[] | string, module: string): boolean {
  if (targets === ALL_LINEAR) return module !== 'lm_head';
  if (typeof targets === 'string') return new RegExp(`^(?:${targets})$`).test(module);
  return targets.some((t) => module === t || module.endsWith(`.${t}`));
}

/** The Linears `targets` selects, in model order; an error when it selects none. */
export function selectTargets(model: LlamaModel, targets: readonly string[] | string): Linear[] {
  if (typeof targets === 'string' && targets !== ALL_LINEAR) {
    try {
      new RegExp(targets);
    } catch (cause) {
      throw new ConfigError('target_modules is not a valid regular expression', { field: 'targetModules', got: targets, cause });
    }
  }
  const picked = [...model.linears()].filter((lin) => targetsModule(targets, lin.name));
  if (picked.length === 0) {
    const some = [...model.linears()].slice(0, 8).map((l) => l.name.split('.').pop()).filter((v, i, a) => a.indexOf(v) === i);
    throw new ConfigError('LoRA target_modules match no linear layer of the model', {
      field: 'targetModules', got: JSON.stringify(targets), expected: `names such as ${some.join(', ')}, a regex, or "${ALL_LINEAR}"`,
    });
  }
  return picked;
}

function checkSpec(spec: LoraSpec): void {
  if (!Number.isInteger(spec.r) || spec.r < 1) throw new ConfigError('LoRA rank must be a positive integer', { field: 'loraR', got: String(spec.r) });
  if (!(spec.alpha > 0) || !Number.isFinite(spec.alpha)) throw new ConfigError('LoRA alpha must be a positive number', { field: 'loraAlpha', got: String(spec.alpha) });
  if (!(spec.dropout >= 0 && spec.dropout < 1)) throw new ConfigError('LoRA dropout must be in [0, 1)', { field: 'loraDropout', got: String(spec.dropout) });
}

export function loraScale(spec: Pick<LoraSpec, 'r' | 'alpha' | 'rslora'>): number {
  return spec.rslora ? spec.alpha / Math.sqrt(spec.r) : spec.alpha / spec.r;
}

/** Attach fresh adapters (PEFT init) to every target; returns the targeted module names. */
export function attachNewLora(model: LlamaModel, spec: LoraSpec, seed: number): string[] {
  checkSpec(spec);
  const targets = selectTargets(model, spec.targetModules);
  for (const lin of targets) {
    if (spec.r > Math.min(lin.inFeatures, lin.outFeatures)) {
      throw new ConfigError('LoRA rank is larger than the layer', { field: 'loraR', expected: `at most ${Math.min(lin.inFeatures, lin.outFeatures)} for ${lin.name} [${lin.outFeatures}, ${lin.inFeatures}]`, got: String(spec.r) });
    }
  }
  const rng = Rng.fromSeed(BigInt.asUintN(64, BigInt(seed) ^ 0x4c6f5241n));
  for (const lin of targets) {
    const A = new Float32Array(spec.r * lin.inFeatures);
    if (spec.init === 'kaiming') {
      const bound = 1 / Math.sqrt(lin.inFeatures);
      for (let i = 0; i < A.length; i++) A[i] = (rng.nextFloat() * 2 - 1) * bound;
    } else {
      const std = 1 / spec.r;
      for (let i = 0; i < A.length; i++) A[i] = gaussian(rng) * std;
    }
    model.attachLora(lin.name, A, new Float32Array(lin.outFeatures * spec.r), spec.r, loraScale(spec), { dropout: spec.dropout });
  }
  return targets.map((l) => l.name);
}

/** Box-Muller standard normal. */
function gaussian(rng: Rng): number {
  const u = 1 - rng.nextFloat(); // (0, 1]
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.nextFloat());
}

/**
 * Continue training an existing PEFT adapter folder (ours or PEFT's): checked against the model's
 * Linear shapes (an adapter for another base fails here), attached with the given dropout.
 */
export function attachExistingLora(model: LlamaModel, dir: string, dropout: number): PeftAdapter {
  const shapes = new Map<string, LinearShape>();
  for (const lin of model.linears()) shapes.set(lin.name, { inFeatures: lin.inFeatures, outFeatures: lin.outFeatures });
  const adapter = readPeftAdapter(dir, shapes);
  for (const m of adapter.modules) model.attachLora(m.module, m.A, m.B, m.r, m.scale, { dropout });
  return adapter;
}

/** The adapters' A and B with their gradient buffers, PEFT-named (`<module>.lora_A.weight`). */
export function loraParams(model: LlamaModel): TrainableParam[] {
  const out: TrainableParam[] = [];
  for (const lin of model.linears()) {
    const s = lin.lora;
    if (s === null) continue;
    out.push({ name: `${lin.name}.lora_A.weight`, data: s.A, grad: s.dA, decay: true }, { name: `${lin.name}.lora_B.weight`, data: s.B, grad: s.dB, decay: true });
  }
  return out;
}

/** The attached adapters as PEFT modules (module order of the model). */
export function loraModules(model: LlamaModel): PeftModuleToWrite[] {
  const out: PeftModuleToWrite[] = [];
  for (const lin of model.linears()) {
    const s = lin.lora;
    if (s !== null) out.push({ module: lin.name, r: s.r, inFeatures: lin.inFeatures, outFeatures: lin.outFeatures, A: s.A, B: s.B });
  }
  return out;
}

/** PEFT config fields of the adapter being trained (`patterns` from a continued adapter). */
export interface LoraWriteSpec extends Pick<LoraSpec, 'r' | 'alpha' | 'rslora' | 'dropout' | 'init'> {
  readonly rankPattern?: Readonly<Record<string, number>>;
  readonly alphaPattern?: Readonly<Record<string, number>>;
}

/**
 * target_modules to save: the module-name suffixes in use when they select exactly the adapted
 * modules (the usual case, and what PEFT's own files look like), else the full module names.
 */
function savedTargets(model: LlamaModel, adapted: readonly string[]): string[] {
  const suffixes = [...new Set(adapted.map((m) => m.split('.').pop() as string))];
  const selected = [...model.linears()].filter((lin) => targetsModule(suffixes, lin.name)).length;
  return selected === adapted.length ? suffixes : [...adapted];
}

/** Write the model's adapters as a PEFT folder into the existing folder `dir`. */
export function writeLoraAdapter(dir: string, model: LlamaModel, spec: LoraWriteSpec, baseModel: string | null): void {
  const modules = loraModules(model);
  writePeftAdapter(dir, {
    r: spec.r, loraAlpha: spec.alpha, useRslora: spec.rslora, loraDropout: spec.dropout, targetModules: savedTargets(model, modules.map((m) => m.module)),
    baseModelNameOrPath: baseModel, initLoraWeights: spec.init === 'gaussian' ? 'gaussian' : true, rankPattern: spec.rankPattern, alphaPattern: spec.alphaPattern,
  }, modules);
}
