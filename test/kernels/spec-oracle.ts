// The kernel spec suite's own oracle: naive float64 formulas written from the math (FORMATS.md
// §3.6, §5.3-§5.4, fixtures/golden/README.md), independent of src/kernels/ref, plus the test
// utilities the specs share (seeded random data, tolerance checks, central finite differences,
// a buffer arena over a backend's allocF32). Formulas are deliberately written differently from
// the kernels where that is natural (explicit masks, repeat_kv, m̂/v̂ form of Adam).

import assert from 'node:assert/strict';
import type { Kernels } from '../../src/kernels/kernels.js';
import type { Quant4Weight } from '../../src/quant/types.js';

type Arr = ArrayLike<number>;

// ---- random data, buffers, comparisons -----------------------------------------------------------

export { rng } from '../helpers/random.js';

export function randF32(r: () => number, n: number, lo = -1, hi = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * r();
  return out;
}

export function randInts(r: () => number, n: number, hi: number): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(r() * hi);
  return out;
}

/** Buffers allocated from one backend and freed together (tests leave no allocation behind). */
export class Arena {
  private readonly bufs: Float32Array[] = [];
  constructor(private readonly k: Kernels) {}
  f32(init: number | Arr): Float32Array {
    const n = typeof init === 'number' ? init : init.length;
    const b = this.k.allocF32(n);
    if (typeof init !== 'number') b.set(init);
    this.bufs.push(b);
    return b;
  }
  freeAll(): void {
    for (const b of this.bufs.splice(0)) this.k.free(b);
  }
}

/** Per-element tolerance: |got − want| <= abs + rel·|want|. */
export interface Tol {
  readonly abs: number;
  readonly rel: number;
}

/** Elementwise comparison; NaN must meet NaN, ±Infinity must be equal. Reports the worst element. */
export function assertClose(label: string, got: Arr, want: Arr, tol: Tol, n = want.length): void {
  assert.ok(got.length >= n, `${label}: got ${got.length} elements, want ${n}`);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < n; i++) {
    const g = got[i];
    const w = want[i];
    if (Number.isNaN(w) || Number.isNaN(g)) {
      assert.ok(Number.isNaN(w) && Number.isNaN(g), `${label}[${i}]: got ${g}, want ${w}`);
      continue;
    }
    if (!Number.isFinite(w) || !Number.isFinite(g)) {
      assert.equal(g, w, `${label}[${i}]`);
      continue;
    }
    const excess = Math.abs(g - w) - (tol.abs + tol.rel * Math.abs(w));
    if (excess > worstExcess) {
      worstExcess = excess;
      worst = i;
    }
  }
  if (worst >= 0) {
    assert.fail(`${label}[${worst}]: got ${got[worst]}, want ${want[worst]} (|diff| ${Math.abs(got[worst] - want[worst]).toExponential(3)} > abs ${tol.abs} + rel ${tol.rel}·|want|)`);
  }
}

/**
 * A tolerance relative to the largest |want| (gradients, whose small entries carry no scale).
 * `base` is the value a gradient buffer held before a kernel accumulated into it: the f32 sum
 * base + g is rounded at base's scale, so one f32 ulp of |base| is allowed on top.
 */
export function scaledTol(relToMax: number, want: Arr, base = 0): Tol {
  let m = 0;
  for (let i = 0; i < want.length; i++) if (Number.isFinite(want[i])) m = Math.max(m, Math.abs(want[i]));
  return { abs: relToMax * Math.max(m, 1e-30) + F32_EPS * Math.abs(base), rel: 0 };
}

/** 2^-23, one f32 ulp at 1.0. */
export const F32_EPS = 2 ** -23;

export function assertBitsEqual(label: string, got: Float32Array, want: Float32Array): void {
  assert.equal(got.length, want.length, `${label}: length`);
  const g = new Uint32Array(got.buffer, got.byteOffset, got.length);
  const w = new Uint32Array(want.buffer, want.byteOffset, want.length);
  for (let i = 0; i < g.length; i++) {
    if (g[i] !== w[i]) assert.fail(`${label}[${i}]: got ${got[i]} (0x${g[i].toString(16)}), want ${want[i]} (0x${w[i].toString(16)})`);
  }
}

/** Central finite differences in f64: ∂f/∂x_i ≈ (f(x + h e_i) − f(x − h e_i)) / 2h, for every i in `which`. */
export function finiteDiff(f: () => number, x: Float64Array, h: number, which?: number[]): Float64Array {
  const g = new Float64Array(x.length);
  const idx = which ?? Array.from({ length: x.length }, (_, i) => i);
  for (const i of idx) {
    const x0 = x[i];
    x[i] = x0 + h;
    const fp = f();
    x[i] = x0 - h;
    const fm = f();
    x[i] = x0;
    g[i] = (fp - fm) / (2 * h);
  }
  return g;
}

/** Σ a_i · b_i in f64 (the scalar loss L = Σ dout ⊙ y whose gradient a backward kernel returns). */
export function dot(a: Arr, b: Arr): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

// ---- f64 formulas --------------------------------------------------------------------------------

/** y[M,N] = x[M,K] · w[N,K]ᵀ. */
export function matmulXWtF64(x: Arr, w: Arr, M: number, K: number, N: number): Float64Array {
  const y = new Float64Array(M * N);
  for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) {
    let s = 0;
    for (let k = 0; k < K; k++) s += x[m * K + k] * w[n * K + k];
    y[m * N + n] = s;
  }
  return y;
}

/** HF LlamaRMSNorm: w · x / sqrt(mean(x²) + eps), row-wise over [T, C]. */
export function rmsnormF64(x: Arr, w: Arr, T: number, C: number, eps: number): { y: Float64Array; rstd: Float64Array } {
  const y = new Float64Array(T * C);
  const rstd = new Float64Array(T);
  for (let t = 0; t < T; t++) {
    let ms = 0;
    for (let c = 0; c < C; c++) ms += x[t * C + c] ** 2 / C;
    rstd[t] = 1 / Math.sqrt(ms + eps);
    for (let c = 0; c < C; c++) y[t * C + c] = w[c] * x[t * C + c] * rstd[t];
  }
  return { y, rstd };
}

/** rotate_half RoPE as a complex product: (x_i + i·x_{i+D/2}) · e^{±iφ}, φ from the cos/sin tables. */
export function ropeF64(x: Arr, positions: Int32Array, cos: Arr, sin: Arr, T: number, nHeads: number, D: number, inverse: boolean, stride: number): Float64Array {
  const y = Float64Array.from(x);
  const half = D / 2;
  for (let t = 0; t < T; t++) for (let h = 0; h < nHeads; h++) for (let i = 0; i < half; i++) {
    const re = x[t * stride + h * D + i];
    const im = x[t * stride + h * D + i + half];
    const c = cos[positions[t] * half + i];
    const s = inverse ? -sin[positions[t] * half + i] : sin[positions[t] * half + i];
    y[t * stride + h * D + i] = re * c - im * s;
    y[t * stride + h * D + i + half] = re * s + im * c;
  }
  return y;
}

export function siluMulF64(gate: Arr, up: Arr): Float64Array {
  return Float64Array.from(gate, (g, i) => (g / (1 + Math.exp(-g))) * up[i]);
}

export function softmaxRowsF64(x: Arr, rows: number, cols: number): Float64Array {
  const y = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    let max = -Infinity;
    for (let c = 0; c < cols; c++) max = Math.max(max, x[r * cols + c]);
    let z = 0;
    for (let c = 0; c < cols; c++) z += Math.exp(x[r * cols + c] - max);
    for (let c = 0; c < cols; c++) y[r * cols + c] = Math.exp(x[r * cols + c] - max) / z;
  }
  return y;
}

export interface AttnCase {
  Tq: number; Tk: number; H: number; Hkv: number; D: number; qOffset: number; keyStart?: number; kvStride?: number;
}

/**
 * Attention the torch way: repeat_kv to H heads, full score matrix, additive −∞ mask, softmax,
 * P·V. Returns out[Tq, H·D] and probs[H, Tq, Tk].
 */
export function attentionF64(q: Arr, k: Arr, v: Arr, c: AttnCase): { out: Float64Array; probs: Float64Array } {
  const { Tq, Tk, H, Hkv, D, qOffset } = c;
  const keyStart = c.keyStart ?? 0;
  const stride = c.kvStride ?? Hkv * D;
  const rep = H / Hkv;
  const out = new Float64Array(Tq * H * D);
  const probs = new Float64Array(H * Tq * Tk);
  const scores = new Float64Array(Tk);
  for (let h = 0; h < H; h++) {
    const kvHead = Math.floor(h / rep); // repeat_kv: kv head g serves query heads g·rep .. g·rep+rep-1
    for (let i = 0; i < Tq; i++) {
      for (let j = 0; j < Tk; j++) {
        let s = 0;
        for (let d = 0; d < D; d++) s += q[i * H * D + h * D + d] * k[j * stride + kvHead * D + d];
        const visible = j >= keyStart && j <= i + qOffset;
        scores[j] = visible ? s / Math.sqrt(D) : -Infinity;
      }
      const max = Math.max(...scores);
      if (max === -Infinity) continue; // no visible key: zero output, zero probabilities
      let z = 0;
      for (let j = 0; j < Tk; j++) z += Math.exp(scores[j] - max);
      for (let j = 0; j < Tk; j++) {
        const p = Math.exp(scores[j] - max) / z;
        probs[(h * Tq + i) * Tk + j] = p;
        for (let d = 0; d < D; d++) out[i * H * D + h * D + d] += p * v[j * stride + kvHead * D + d];
      }
    }
  }
  return { out, probs };
}

/** Per-row cross-entropy −log softmax(x)[y] in f64 (NaN-free for huge logits: max subtracted). */
export function crossEntropyF64(logits: Arr, targets: Int32Array, T: number, V: number, ignoreIndex: number): Float64Array {
  const losses = new Float64Array(T);
  for (let t = 0; t < T; t++) {
    if (targets[t] === ignoreIndex) continue;
    let max = -Infinity;
    for (let j = 0; j < V; j++) max = Math.max(max, logits[t * V + j]);
    let z = 0;
    for (let j = 0; j < V; j++) z += Math.exp(logits[t * V + j] - max);
    losses[t] = -(logits[t * V + targets[t]] - max - Math.log(z));
  }
  return losses;
}

/** torch AdamW written with bias-corrected moments: p −= lr · m̂ / (sqrt(v̂) + eps). */
export function adamwTrajectoryF64(p0: Arr, grads: Arr[], lr: number, b1: number, b2: number, eps: number, wd: number): Float64Array {
  const p = Float64Array.from(p0);
  const m = new Float64Array(p.length);
  const v = new Float64Array(p.length);
  grads.forEach((g, s) => {
    const t = s + 1;
    for (let i = 0; i < p.length; i++) {
      p[i] -= lr * wd * p[i];
      m[i] = b1 * m[i] + (1 - b1) * g[i];
      v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
      const mHat = m[i] / (1 - b1 ** t);
      const vHat = v[i] / (1 - b2 ** t);
      p[i] -= (lr * mHat) / (Math.sqrt(vHat) + eps);
    }
  });
  return p;
}

/** Element (r, c) of a Quant4Weight, straight from the contract in src/quant/types.ts. */
export function quant4ElementF32(w: Quant4Weight, r: number, c: number): number {
  const i = r * w.cols + c;
  const b = w.blocksPerRow > 0 ? r * w.blocksPerRow + Math.floor(c / w.blockSize) : Math.floor(i / w.blockSize);
  const nibble = i % 2 === 0 ? w.packed[Math.floor(i / 2)] >> 4 : w.packed[Math.floor(i / 2)] % 16;
  const scale = w.absmax
    ? w.absmax[b]
    : Math.fround(Math.fround(w.dq!.nestedMap[w.dq!.codes[b]] * w.dq!.nestedAbsmax[Math.floor(b / w.dq!.nestedBlockSize)]) + w.dq!.offset);
  const value = Math.fround(w.codebook[nibble] * scale);
  return w.zeros ? Math.fround(value + w.zeros[b]) : value;
}

export function dequantQ4F64(w: Quant4Weight): Float64Array {
  const out = new Float64Array(w.rows * w.cols);
  for (let r = 0; r < w.rows; r++) for (let c = 0; c < w.cols; c++) out[r * w.cols + c] = quant4ElementF32(w, r, c);
  return out;
}
