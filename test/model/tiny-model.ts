// Tiny random Llama-family models built in memory (no files) for gradient and cache tests:
// a WeightSource of seeded random tensors for any config, so every architecture option (biases,
// tied embeddings, GQA ratio, head_dim ≠ hidden/heads, RoPE scaling) can be exercised cheaply.
import { resolveModelConfig, type ModelConfig } from '../../src/formats/hf-config.js';
import type { Kernels } from '../../src/kernels/kernels.js';
import { buildLlamaModel, expectedTensors, type WeightSource } from '../../src/model/build.js';
import type { LlamaModel } from '../../src/model/llama.js';
import type { QuantizationConfig } from '../../src/quant/config.js';
import { rng as uniform01 } from '../helpers/random.js';

/** Deterministic uniform [-1, 1) generator (mulberry32, test/helpers/random.ts). */
export function rng(seed: number): () => number {
  const u = uniform01(seed);
  return () => u() * 2 - 1;
}

export function randomArray(n: number, scale: number, rand: () => number): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = rand() * scale;
  return x;
}

/** A WeightSource with every tensor the config needs, random (norm weights near 1). */
export function randomWeightSource(cfg: ModelConfig, seed: number): WeightSource {
  const rand = rng(seed);
  const tensors = new Map<string, { shape: readonly number[]; data: Float32Array }>();
  for (const { name, shape } of expectedTensors(cfg)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = shape.length === 1 && name.includes('norm') ? randomArray(n, 0.2, rand).map((v) => 1 + v) : randomArray(n, shape.length === 1 ? 0.1 : 0.5, rand);
    tensors.set(name, { shape, data });
  }
  return {
    file: '<random>',
    names: () => [...tensors.keys()],
    shape: (name) => tensors.get(name)!.shape,
    readF32: (name) => Float32Array.from(tensors.get(name)!.data),
    readF32Into: (name, out) => out.set(tensors.get(name)!.data),
  };
}

export function tinyConfig(raw: Record<string, unknown>): ModelConfig {
  return resolveModelConfig({ max_position_embeddings: 64, rms_norm_eps: 1e-5, ...raw });
}

export function tinyModel(kernels: Kernels, raw: Record<string, unknown>, seed: number, quant: QuantizationConfig | 'none' = 'none'): LlamaModel<ModelConfig> {
  const cfg = tinyConfig(raw);
  return buildLlamaModel(randomWeightSource(cfg, seed), cfg, null, { kernels, quant });
}
