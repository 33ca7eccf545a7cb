// Kernel specs: RMSNorm, RoPE, SiLU·mul, softmax and causal GQA attention — each forward against
// the f64 formulas of spec-oracle.ts and each backward against central finite differences.
// Part of the suite run by defineKernelSpecs.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ShapeError } from '../../src/errors.js';
import type { AttentionDims } from '../../src/kernels/kernels.js';
import { FD_STEP, TOL_F64, TOL_FD, type SpecContext } from './spec-context.js';
import {
  Arena, assertClose, attentionF64, dot, finiteDiff, randF32, randInts, rmsnormF64, rng, ropeF64, scaledTol, siluMulF64,
  softmaxRowsF64, type AttnCase,
} from './spec-oracle.js';

const RMSNORM_EPS = 1e-5;
const ROPE_THETA = 10000;

/** cos/sin tables [maxPos, D/2] in f32 as the model builds them (HF: inv_freq and angles in f32). */
export function ropeTables(maxPos: number, D: number): { cos: Float32Array; sin: Float32Array } {
  const half = D / 2;
  const cos = new Float32Array(maxPos * half);
  const sin = new Float32Array(maxPos * half);
  for (let p = 0; p < maxPos; p++) for (let i = 0; i < half; i++) {
    const angle = Math.fround(p * Math.fround(1 / ROPE_THETA ** ((2 * i) / D)));
    cos[p * half + i] = Math.cos(angle);
    sin[p * half + i] = Math.sin(angle);
  }
  return { cos, sin };
}

/** Attention cases: MHA, GQA, decoding with a cache (qOffset), left padding (keyStart), a wide cache row (kvStride). */
export const ATTENTION_CASES: (AttnCase & { label: string; fdSample?: number })[] = [
  { label: 'MHA 5x5 H2 D4', Tq: 5, Tk: 5, H: 2, Hkv: 2, D: 4, qOffset: 0 },
  { label: 'GQA 7x7 H6/2 D6', Tq: 7, Tk: 7, H: 6, Hkv: 2, D: 6, qOffset: 0 },
  { label: 'GQA 11x11 H4/2 D16 (whole and partial key blocks)', Tq: 11, Tk: 11, H: 4, Hkv: 2, D: 16, qOffset: 0 },
  { label: 'decode chunk Tq3 Tk9 qOffset6 H4/1 D5', Tq: 3, Tk: 9, H: 4, Hkv: 1, D: 5, qOffset: 6 },
  { label: 'keyStart2 kvStride13 Tq4 Tk8 H2/1 D8', Tq: 4, Tk: 8, H: 2, Hkv: 1, D: 8, qOffset: 4, keyStart: 2, kvStride: 13 },
  { label: 'keyStart1: row 0 sees no key', Tq: 3, Tk: 3, H: 1, Hkv: 1, D: 4, qOffset: 0, keyStart: 1 },
  { label: 'keyStart2 D8: rows 0-1 of a 4-row block see no key', Tq: 6, Tk: 6, H: 2, Hkv: 1, D: 8, qOffset: 0, keyStart: 2 },
  { label: 'single 1x1 D1', Tq: 1, Tk: 1, H: 1, Hkv: 1, D: 1, qOffset: 0 },
  { label: '17x17 H3 D33', Tq: 17, Tk: 17, H: 3, Hkv: 3, D: 33, qOffset: 0, fdSample: 120 },
  { label: 'Tq0', Tq: 0, Tk: 3, H: 2, Hkv: 1, D: 4, qOffset: 3 },
];

export function kvLen(c: AttnCase): number {
  return c.Tk === 0 ? 0 : (c.Tk - 1) * (c.kvStride ?? c.Hkv * c.D) + c.Hkv * c.D;
}

export function layerSpecs(ctx: SpecContext): void {
  describe('rmsnorm', () => {
    const SHAPES: [number, number][] = [[1, 1], [3, 7], [5, 67], [2, 130], [4, 576], [1, 1000], [0, 8]];

    it('forward vs f64 (out and the rstd cache), zero rows, NaN rows', () => {
      const a = new Arena(ctx.k);
      const r = rng(31);
      for (const [T, C] of SHAPES) {
        const x = a.f32(randF32(r, T * C));
        if (T > 1) x.fill(0, C, 2 * C); // an all-zero row: rstd = 1/sqrt(eps), out = 0
        const w = a.f32(randF32(r, C, 0.5, 1.5));
        const out = a.f32(T * C);
        const rstd = a.f32(T);
        ctx.k.rmsnormForward(out, rstd, x, w, T, C, RMSNORM_EPS);
        const want = rmsnormF64(x, w, T, C, RMSNORM_EPS);
        assertClose(`rmsnorm out ${T}x${C}`, out, want.y, TOL_F64.rmsnorm);
        assertClose(`rmsnorm rstd ${T}x${C}`, rstd, want.rstd, TOL_F64.rmsnorm);
      }
      const [T, C] = [3, 37];
      const x = a.f32(randF32(r, T * C));
      x[C + 3] = NaN;
      const out = a.f32(T * C);
      ctx.k.rmsnormForward(out, a.f32(T), x, a.f32(randF32(r, C)), T, C, RMSNORM_EPS);
      for (let i = 0; i < T * C; i++) assert.equal(Number.isNaN(out[i]), Math.floor(i / C) === 1, `out[${i}]`);
      a.freeAll();
    });

    it('backward: dx and dweight by finite differences, accumulating; dweight null', () => {
      const a = new Arena(ctx.k);
      const r = rng(32);
      for (const [T, C] of SHAPES) {
        const x = randF32(r, T * C);
        const w = randF32(r, C, 0.5, 1.5);
        const dout = randF32(r, T * C);
        const x64 = Float64Array.from(x);
        const w64 = Float64Array.from(w);
        const loss = () => dot(dout, rmsnormF64(x64, w64, T, C, RMSNORM_EPS).y);
        const gx = finiteDiff(loss, x64, FD_STEP);
        const gw = finiteDiff(loss, w64, FD_STEP);
        const xb = a.f32(x);
        const wb = a.f32(w);
        const rstd = a.f32(T);
        ctx.k.rmsnormForward(a.f32(T * C), rstd, xb, wb, T, C, RMSNORM_EPS);
        const dx = a.f32(new Float32Array(T * C).fill(1));
        const dw = a.f32(new Float32Array(C).fill(1));
        ctx.k.rmsnormBackward(dx, dw, a.f32(dout), xb, wb, rstd, T, C);
        // dx is a difference of two terms of size ~|dout·w|·rstd that nearly cancel when C is
        // small (C = 1: dx ∝ eps); f32 rounding is relative to the terms, so the tolerance is too.
        const { rstd: r64 } = rmsnormF64(x, w, T, C, RMSNORM_EPS);
        const terms = Float64Array.from(dout, (d, i) => d * w[i % C] * r64[Math.floor(i / C)]);
        const dxTol = scaledTol(TOL_FD.rmsnorm, [...gx, ...terms], 1);
        assertClose(`rmsnorm dx ${T}x${C}`, dx, gx.map((g) => g + 1), dxTol);
        assertClose(`rmsnorm dw ${T}x${C}`, dw, gw.map((g) => g + 1), scaledTol(TOL_FD.rmsnorm, gw, 1));
        const dx2 = a.f32(T * C);
        ctx.k.rmsnormBackward(dx2, null, a.f32(dout), xb, wb, rstd, T, C);
        assertClose(`rmsnorm dx (dweight null) ${T}x${C}`, dx2, gx, dxTol);
      }
      a.freeAll();
    });
  });

  describe('rope (rotate_half)', () => {
    const CASES: { T: number; nHeads: number; D: number; stride?: number }[] = [
      { T: 3, nHeads: 2, D: 4 }, { T: 5, nHeads: 3, D: 6 }, { T: 2, nHeads: 1, D: 2 }, { T: 1, nHeads: 4, D: 10 },
      { T: 4, nHeads: 9, D: 64, stride: 9 * 64 + 3 * 64 + 5 }, { T: 6, nHeads: 2, D: 22, stride: 47 }, { T: 0, nHeads: 2, D: 8 },
    ];
    const MAX_POS = 40;

    it('forward vs f64 at arbitrary positions (gap columns of a wide row untouched); inverse undoes it', () => {
      const a = new Arena(ctx.k);
      const r = rng(41);
      for (const c of CASES) {
        const stride = c.stride ?? c.nHeads * c.D;
        const { cos, sin } = ropeTables(MAX_POS, c.D);
        const positions = randInts(r, c.T, MAX_POS);
        const x0 = randF32(r, c.T * stride);
        const x = a.f32(x0);
        ctx.k.rope(x, positions, a.f32(cos), a.f32(sin), c.T, c.nHeads, c.D, false, c.stride);
        assertClose(`rope ${JSON.stringify(c)}`, x, ropeF64(x0, positions, cos, sin, c.T, c.nHeads, c.D, false, stride), TOL_F64.rope);
        ctx.k.rope(x, positions, a.f32(cos), a.f32(sin), c.T, c.nHeads, c.D, true, c.stride);
        assertClose(`rope inverse∘forward ${JSON.stringify(c)}`, x, x0, TOL_F64.rope);
      }
      a.freeAll();
    });

    it('backward = inverse rotation of the gradient (finite differences)', () => {
      const a = new Arena(ctx.k);
      const r = rng(42);
      for (const c of CASES) {
        const stride = c.stride ?? c.nHeads * c.D;
        const { cos, sin } = ropeTables(MAX_POS, c.D);
        const positions = randInts(r, c.T, MAX_POS);
        const x64 = Float64Array.from(randF32(r, c.T * stride));
        const dout = randF32(r, c.T * stride);
        const g = finiteDiff(() => dot(dout, ropeF64(x64, positions, cos, sin, c.T, c.nHeads, c.D, false, stride)), x64, FD_STEP);
        const d = a.f32(dout);
        ctx.k.rope(d, positions, a.f32(cos), a.f32(sin), c.T, c.nHeads, c.D, true, c.stride);
        assertClose(`rope backward ${JSON.stringify(c)}`, d, g, scaledTol(TOL_FD.rope, g));
      }
      a.freeAll();
    });

    it('NaN stays in its rotation pair; odd D and positions beyond the table are ShapeErrors', () => {
      const a = new Arena(ctx.k);
      const { cos, sin } = ropeTables(8, 8);
      const x = a.f32(randF32(rng(43), 2 * 16));
      x[16 + 8 + 1] = NaN; // row 1, head 1, element 1: pairs with element 5
      ctx.k.rope(x, Int32Array.from([3, 7]), a.f32(cos), a.f32(sin), 2, 2, 8, false);
      for (let i = 0; i < 32; i++) assert.equal(Number.isNaN(x[i]), i === 25 || i === 29, `x[${i}]`);
      assert.throws(() => ctx.k.rope(new Float32Array(6), Int32Array.from([0]), cos, sin, 1, 2, 3, false), ShapeError);
      assert.throws(() => ctx.k.rope(new Float32Array(16), Int32Array.from([0, 8]), cos, sin, 2, 1, 8, false), ShapeError);
      a.freeAll();
    });
  });

  describe('siluMul and softmax', () => {
    it('siluMul forward vs f64 including saturated gates (±100, ±1000), NaN and ±inf', () => {
      const a = new Arena(ctx.k);
      const r = rng(51);
      for (const n of [0, 1, 3, 17, 1000]) {
        const gate = randF32(r, n, -8, 8);
        if (n >= 17) gate.set([100, -100, 1000, -1000, 0, -0], 5);
        const up = randF32(r, n);
        const out = a.f32(n);
        ctx.k.siluMulForward(out, a.f32(gate), a.f32(up), n);
        assertClose(`siluMul n=${n}`, out, siluMulF64(gate, up), TOL_F64.siluMul);
      }
      const gate = a.f32([1, NaN, 2, 3, 4, Infinity, -Infinity]);
      const out = a.f32(7);
      ctx.k.siluMulForward(out, gate, a.f32([1, 1, 1, NaN, 1, 1, 1]), 7);
      // silu(+inf) = inf; silu(−inf) = −inf·σ(−inf) = −inf·0 = NaN, as torch computes it.
      assert.deepEqual(Array.from(out, Number.isNaN), [false, true, false, true, false, false, true]);
      assert.equal(out[5], Infinity);
      a.freeAll();
    });

    it('siluMul backward by finite differences, accumulating', () => {
      const a = new Arena(ctx.k);
      const r = rng(52);
      for (const n of [1, 7, 130]) {
        const gate = randF32(r, n, -6, 6);
        const up = randF32(r, n);
        const dout = randF32(r, n);
        const g64 = Float64Array.from(gate);
        const u64 = Float64Array.from(up);
        const loss = () => dot(dout, siluMulF64(g64, u64));
        const gg = finiteDiff(loss, g64, FD_STEP);
        const gu = finiteDiff(loss, u64, FD_STEP);
        const dg = a.f32(new Float32Array(n).fill(0.5));
        const du = a.f32(new Float32Array(n).fill(0.5));
        ctx.k.siluMulBackward(dg, du, a.f32(dout), a.f32(gate), a.f32(up), n);
        assertClose(`siluMul dgate n=${n}`, dg, gg.map((v) => v + 0.5), scaledTol(TOL_FD.siluMul, gg, 0.5));
        assertClose(`siluMul dup n=${n}`, du, gu.map((v) => v + 0.5), scaledTol(TOL_FD.siluMul, gu, 0.5));
      }
      a.freeAll();
    });

    it('softmaxRows vs f64: huge offsets do not overflow, −∞ entries get 0, a NaN poisons only its row', () => {
      const a = new Arena(ctx.k);
      const r = rng(53);
      for (const [rows, cols] of [[1, 1], [3, 7], [2, 1000], [5, 33], [0, 4]] as [number, number][]) {
        const x0 = randF32(r, rows * cols, -5, 5);
        for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) x0[i * cols + j] += i * 1e4;
        if (rows * cols > 3) x0[2] = -Infinity;
        const x = a.f32(x0);
        ctx.k.softmaxRows(x, rows, cols);
        assertClose(`softmax ${rows}x${cols}`, x, softmaxRowsF64(x0, rows, cols), TOL_F64.softmax);
        if (rows * cols > 3) assert.equal(x[2], 0);
      }
      const x = a.f32(randF32(r, 3 * 9));
      x[9 + 4] = NaN;
      ctx.k.softmaxRows(x, 3, 9);
      for (let i = 0; i < 27; i++) assert.equal(Number.isNaN(x[i]), Math.floor(i / 9) === 1, `x[${i}]`);
      a.freeAll();
    });
  });

  describe('attention (causal, GQA, KV cache)', () => {
    it('forward vs f64 (out and probs; masked probabilities exactly 0; probs = null, a separate inference kernel on wasm, too)', () => {
      const a = new Arena(ctx.k);
      const r = rng(61);
      for (const c of ATTENTION_CASES) {
        const q = a.f32(randF32(r, c.Tq * c.H * c.D, -2, 2));
        const k = a.f32(randF32(r, kvLen(c), -2, 2));
        const v = a.f32(randF32(r, kvLen(c)));
        const out = a.f32(new Float32Array(c.Tq * c.H * c.D).fill(3));
        const probs = a.f32(new Float32Array(c.H * c.Tq * c.Tk).fill(3));
        ctx.k.attentionForward(out, probs, q, k, v, dims(c));
        const want = attentionF64(q, k, v, c);
        assertClose(`attention out ${c.label}`, out, want.out, TOL_F64.attention);
        assertClose(`attention probs ${c.label}`, probs, want.probs, TOL_F64.attention);
        for (let i = 0; i < probs.length; i++) if (want.probs[i] === 0) assert.equal(probs[i], 0, `${c.label}: masked probs[${i}]`);
        const out2 = a.f32(c.Tq * c.H * c.D);
        ctx.k.attentionForward(out2, null, q, k, v, dims(c));
        assertClose(`attention out (probs null) ${c.label}`, out2, want.out, TOL_F64.attention);
      }
      a.freeAll();
    });

    it('backward: dq, dk, dv by finite differences (GQA, qOffset, keyStart, kvStride), accumulating, gaps untouched', () => {
      const a = new Arena(ctx.k);
      const r = rng(62);
      for (const c of ATTENTION_CASES) {
        const q = randF32(r, c.Tq * c.H * c.D, -2, 2);
        const k = randF32(r, kvLen(c), -2, 2);
        const v = randF32(r, kvLen(c));
        const dout = randF32(r, c.Tq * c.H * c.D);
        const q64 = Float64Array.from(q);
        const k64 = Float64Array.from(k);
        const v64 = Float64Array.from(v);
        const loss = () => dot(dout, attentionF64(q64, k64, v64, c).out);
        const sample = (n: number) => (c.fdSample !== undefined && n > c.fdSample ? Array.from({ length: c.fdSample }, () => Math.floor(r() * n)) : undefined);
        const qs = sample(q.length);
        const ks = sample(k.length);
        const vs = sample(v.length);
        const gq = finiteDiff(loss, q64, FD_STEP, qs);
        const gk = finiteDiff(loss, k64, FD_STEP, ks);
        const gv = finiteDiff(loss, v64, FD_STEP, vs);
        const [qb, kb, vb] = [a.f32(q), a.f32(k), a.f32(v)];
        const probs = a.f32(c.H * c.Tq * c.Tk);
        ctx.k.attentionForward(a.f32(q.length), probs, qb, kb, vb, dims(c));
        const dq = a.f32(new Float32Array(q.length).fill(0.25));
        const dk = a.f32(new Float32Array(k.length).fill(0.25));
        const dv = a.f32(new Float32Array(v.length).fill(0.25));
        ctx.k.attentionBackward(dq, dk, dv, a.f32(dout), probs, qb, kb, vb, dims(c));
        checkGrad(`attention dq ${c.label}`, dq, gq, qs, 0.25);
        checkGrad(`attention dk ${c.label}`, dk, gk, ks, 0.25);
        checkGrad(`attention dv ${c.label}`, dv, gv, vs, 0.25);
      }
      a.freeAll();
    });

    it('decoding in chunks over a KV cache (wider and longer than needed) equals attention over the full sequence', () => {
      const a = new Arena(ctx.k);
      const r = rng(63);
      const [T, H, Hkv, D, capacity, stride] = [11, 4, 2, 8, 16, 2 * 8 + 3];
      const q = randF32(r, T * H * D);
      const kFull = randF32(r, T * Hkv * D);
      const vFull = randF32(r, T * Hkv * D);
      const full = a.f32(T * H * D);
      ctx.k.attentionForward(full, null, a.f32(q), a.f32(kFull), a.f32(vFull), { Tq: T, Tk: T, H, Hkv, D, qOffset: 0 });
      const kCache = a.f32(capacity * stride);
      const vCache = a.f32(capacity * stride);
      let s = 0;
      for (const len of [4, 1, 6]) {
        for (let t = s; t < s + len; t++) {
          kCache.set(kFull.subarray(t * Hkv * D, (t + 1) * Hkv * D), t * stride);
          vCache.set(vFull.subarray(t * Hkv * D, (t + 1) * Hkv * D), t * stride);
        }
        const out = a.f32(len * H * D);
        const qChunk = a.f32(q.subarray(s * H * D, (s + len) * H * D));
        ctx.k.attentionForward(out, null, qChunk, kCache, vCache, { Tq: len, Tk: s + len, H, Hkv, D, qOffset: s, kvStride: stride });
        assertClose(`cache rows ${s}..${s + len}`, out, full.subarray(s * H * D, (s + len) * H * D), { abs: 1e-6, rel: 1e-6 });
        s += len;
      }
      a.freeAll();
    });

    it('NaN: a NaN query poisons only its row and head; a NaN value row never reaches rows that cannot see it', () => {
      const a = new Arena(ctx.k);
      const r = rng(64);
      const c = { Tq: 6, Tk: 6, H: 4, Hkv: 2, D: 8, qOffset: 0 };
      const q = a.f32(randF32(r, 6 * 32));
      const k = a.f32(randF32(r, 6 * 16));
      const v = a.f32(randF32(r, 6 * 16));
      q[2 * 32 + 1 * 8 + 3] = NaN; // row 2, head 1
      v[4 * 16 + 0 * 8 + 5] = NaN; // key row 4, kv head 0 (query heads 0, 1), dim 5
      const out = a.f32(6 * 32);
      ctx.k.attentionForward(out, a.f32(4 * 36), q, k, v, c);
      for (let i = 0; i < 6; i++) for (let h = 0; h < 4; h++) for (let d = 0; d < 8; d++) {
        const nan = (i === 2 && h === 1) || (i >= 4 && h < 2 && d === 5);
        assert.equal(Number.isNaN(out[i * 32 + h * 8 + d]), nan, `out[${i}, head ${h}, ${d}]`);
      }
      a.freeAll();
    });

    it('GQA with H not a multiple of Hkv, and a short k, are ShapeErrors', () => {
      const q = new Float32Array(3 * 4);
      const kv = new Float32Array(2 * 4);
      assert.throws(() => ctx.k.attentionForward(new Float32Array(12), null, q, kv, kv, { Tq: 1, Tk: 1, H: 3, Hkv: 2, D: 4, qOffset: 0 }), ShapeError);
      assert.throws(() => ctx.k.attentionForward(new Float32Array(12), null, q, kv, kv, { Tq: 1, Tk: 2, H: 3, Hkv: 3, D: 4, qOffset: 1 }), ShapeError);
    });
  });
}

export function dims(c: AttnCase): AttentionDims {
  return { Tq: c.Tq, Tk: c.Tk, H: c.H, Hkv: c.Hkv, D: c.D, qOffset: c.qOffset, keyStart: c.keyStart, kvStride: c.kvStride };
}

/** got = base + fd at the finite-difference indices (all when `which` is undefined), base elsewhere-free. */
function checkGrad(label: string, got: Float32Array, fd: Float64Array, which: number[] | undefined, base: number): void {
  const idx = which ?? Array.from({ length: fd.length }, (_, i) => i);
  const tol = scaledTol(TOL_FD.attention, fd, base);
  assertClose(label, idx.map((i) => got[i]), idx.map((i) => fd[i] + base), tol);
}
