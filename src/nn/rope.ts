// Rotary position embedding: the cos/sin tables [maxPos, D/2] and the forward/backward rotation
// on q or k. Hugging Face conventions (FORMATS.md §5.4): rotate_half pairing (i, i + D/2),
// inv_freq[i] = 1 / theta^(2i/D) computed in f32 like `LlamaRotaryEmbedding` (torch: int64
// arange → f32, divide by D, pow, reciprocal, each rounded to f32), angle = f32(p · inv_freq[i]),
// then cos/sin of that f32 angle. Scaling folded into inv_freq: 'linear' divides by `factor`,
// 'llama3' follows transformers `_compute_llama3_parameters` (modeling_rope_utils.py).
// Not here: llama.cpp's adjacent-pair layout (GGUF Q/K rows are un-permuted by formats/gguf).
import { UnsupportedError } from '../errors.js';
import type { Kernels } from '../kernels/kernels.js';

/** RoPE settings as resolved from config.json / GGUF metadata (a subset of ModelConfig.rope). */
export interface RopeParams {
  readonly theta: number;
  /** 'default' | 'linear' | 'llama3'; anything else is refused. */
  readonly type: string;
  readonly factor?: number | null;
  readonly lowFreqFactor?: number | null;
  readonly highFreqFactor?: number | null;
  readonly originalMaxPositionEmbeddings?: number | null;
}

export const SUPPORTED_ROPE_TYPES = ['default', 'linear', 'llama3'] as const;

export interface RopeTables {
  /** Rows available (positions 0..maxPos-1). */
  readonly maxPos: number;
  readonly D: number;
  /** [maxPos, D/2] */
  readonly cos: Float32Array;
  /** [maxPos, D/2] */
  readonly sin: Float32Array;
}

const f = Math.fround;

/** inv_freq[D/2] in f32, scaling applied. */
export function ropeInverseFrequencies(rope: RopeParams, D: number): Float32Array {
  const half = D >> 1;
  const inv = new Float32Array(half);
  for (let i = 0; i < half; i++) inv[i] = f(1 / f(Math.pow(rope.theta, f(f(2 * i) / D))));
  switch (rope.type) {
    case 'default':
      return inv;
    case 'linear': {
      const factor = requireField(rope, 'factor');
      for (let i = 0; i < half; i++) inv[i] = f(inv[i] / factor);
      return inv;
    }
    case 'llama3': {
      const factor = requireField(rope, 'factor');
      const lowF = requireField(rope, 'lowFreqFactor');
      const highF = requireField(rope, 'highFreqFactor');
      const orig = requireField(rope, 'originalMaxPositionEmbeddings');
      const lowWavelen = orig / lowF;
      const highWavelen = orig / highF;
      for (let i = 0; i < half; i++) {
        const wavelen = f((2 * Math.PI) / inv[i]);
        if (wavelen < highWavelen) continue;
        if (wavelen > lowWavelen) {
          inv[i] = f(inv[i] / factor);
          continue;
        }
        const smooth = f(f(f(orig / wavelen) - lowF) / (highF - lowF));
        inv[i] = f(f(f(f(1 - smooth) * inv[i]) / factor) + f(smooth * inv[i]));
      }
      return inv;
    }
    default:
      throw new UnsupportedError(`RoPE scaling type "${rope.type}" is not supported`, {
        field: 'rope_scaling.rope_type', expected: SUPPORTED_ROPE_TYPES.join(' | '), got: rope.type,
      });
  }
}

function requireField(rope: RopeParams, key: 'factor' | 'lowFreqFactor' | 'highFreqFactor' | 'originalMaxPositionEmbeddings'): number {
  const v = rope[key];
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new UnsupportedError(`RoPE type "${rope.type}" needs ${key}`, { field: `rope_scaling.${key}`, expected: 'a number', got: String(v) });
  }
  return v;
}

/** cos/sin tables for positions 0..maxPos-1. */
export function buildRopeTables(rope: RopeParams, D: number, maxPos: number): RopeTables {
  const half = D >> 1;
  const inv = ropeInverseFrequencies(rope, D);
  const cos = new Float32Array(maxPos * half);
  const sin = new Float32Array(maxPos * half);
  for (let p = 0; p < maxPos; p++) {
    for (let i = 0; i < half; i++) {
      const angle = f(p * inv[i]);
      cos[p * half + i] = Math.cos(angle);
      sin[p * half + i] = Math.sin(angle);
    }
  }
  return { maxPos, D, cos, sin };
}

/** Rotate x[T, stride] (nHeads heads of D) in place by the angles of positions[T]. */
export function ropeForward(k: Kernels, x: Float32Array, positions: Int32Array, tables: RopeTables, T: number, nHeads: number, stride: number): void {
  k.rope(x, positions, tables.cos, tables.sin, T, nHeads, tables.D, false, stride);
}

/** Backward: the rotation is orthogonal, so dx = Rᵀ · dy, in place on the gradient. */
export function ropeBackward(k: Kernels, dx: Float32Array, positions: Int32Array, tables: RopeTables, T: number, nHeads: number, stride: number): void {
  k.rope(dx, positions, tables.cos, tables.sin, T, nHeads, tables.D, true, stride);
}
