// SwiGLU MLP (FORMATS.md §5.3): out = down(silu(gate(x)) ⊙ up(x)), forward and backward, over
// rows x [N, C] with hidden [N, F].
// Not here: the compute (kernels), the residual add (decoder-layer.ts).
import type { Kernels } from '../kernels/kernels.js';
import type { Arena } from './arena.js';
import { createLinearCache, linearBackward, linearForward, linearForwardShared, type Linear, type LinearCache } from './linear.js';

export interface MlpWeights {
  readonly gate: Linear;
  readonly up: Linear;
  readonly down: Linear;
  /** Intermediate size F. */
  readonly F: number;
}

export interface MlpCache {
  readonly gc: LinearCache;
  readonly uc: LinearCache;
  readonly dc: LinearCache;
  /** [N, F] */
  readonly gate: Float32Array;
  /** [N, F] */
  readonly up: Float32Array;
  /** [N, F] = silu(gate) ⊙ up */
  readonly hidden: Float32Array;
  readonly xa: { gate: Float32Array; up: Float32Array; down: Float32Array };
}

/** `dropBuf`: scratch of at least N·max(C, F) values when LoRA dropout may run, else null. */
export function createMlpCache(arena: Arena, F: number, N: number, loraRank: number, dropBuf: Float32Array | null = null): MlpCache {
  return {
    gc: createLinearCache(dropBuf), uc: createLinearCache(dropBuf), dc: createLinearCache(dropBuf),
    gate: arena.f32(N * F), up: arena.f32(N * F), hidden: arena.f32(N * F),
    xa: { gate: arena.f32(N * loraRank), up: arena.f32(N * loraRank), down: arena.f32(N * loraRank) },
  };
}

export interface MlpGradScratch {
  readonly dhidden: Float32Array;
  readonly dgate: Float32Array;
  readonly dup: Float32Array;
  readonly dxa: Float32Array;
}

export function createMlpGradScratch(arena: Arena, F: number, N: number, loraRank: number): MlpGradScratch {
  return { dhidden: arena.f32(N * F), dgate: arena.f32(N * F), dup: arena.f32(N * F), dxa: arena.f32(N * loraRank) };
}

/** out[N, C] = mlp(x[N, C]). */
export function mlpForward(k: Kernels, out: Float32Array, cache: MlpCache, w: MlpWeights, x: Float32Array, N: number): void {
  const n = N * w.F;
  linearForwardShared(k, [cache.gate, cache.up], [cache.gc, cache.uc], [w.gate, w.up], x, N, [cache.xa.gate, cache.xa.up]);
  k.siluMulForward(cache.hidden, cache.gate, cache.up, n);
  linearForward(k, out, cache.dc, w.down, cache.hidden, N, cache.xa.down);
}

/** dx[N, C] += d mlp / dx · dout. */
export function mlpBackward(k: Kernels, dx: Float32Array, dout: Float32Array, cache: MlpCache, w: MlpWeights, N: number, s: MlpGradScratch): void {
  const n = N * w.F;
  const dhidden = s.dhidden.subarray(0, n).fill(0);
  linearBackward(k, dhidden, dout, cache.dc, w.down, N, s.dxa);
  const dgate = s.dgate.subarray(0, n).fill(0);
  const dup = s.dup.subarray(0, n).fill(0);
  k.siluMulBackward(dgate, dup, dhidden, cache.gate, cache.up, n);
  linearBackward(k, dx, dgate, cache.gc, w.gate, N, s.dxa);
  linearBackward(k, dx, dup, cache.uc, w.up, N, s.dxa);
}
