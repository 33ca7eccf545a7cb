// Kernel specs: embedding lookup and scatter, cross-entropy with ignore-index over large
// vocabularies, the optimiser kernels (sum of squares, scale, torch AdamW) with the clipping
// convention, and buffer management. Part of the suite run by defineKernelSpecs.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ShapeError } from '../../src/errors.js';
import { FD_STEP, TOL_F64, TOL_FD, type SpecContext } from './spec-context.js';
import { Arena, adamwTrajectoryF64, assertClose, crossEntropyF64, finiteDiff, randF32, randInts, rng, scaledTol } from './spec-oracle.js';

const IGNORE = -100;

export function lossOptimSpecs(ctx: SpecContext): void {
  describe('buffers', () => {
    it('allocF32 is zero-filled (also after reuse), free rejects foreign and double frees', () => {
      for (let round = 0; round < 3; round++) {
        const b = ctx.k.allocF32(1000);
        assert.ok(b.every((v) => v === 0));
        b.fill(round + 1);
        ctx.k.free(b);
      }
      ctx.k.free(ctx.k.allocF32(0));
      assert.throws(() => ctx.k.free(new Float32Array(4)));
      const b = ctx.k.allocF32(8);
      ctx.k.free(b);
      assert.throws(() => ctx.k.free(b));
    });
  });

  describe('embedding', () => {
    it('forward copies rows; backward scatter-adds (repeated ids accumulate) = finite differences', () => {
      const a = new Arena(ctx.k);
      const r = rng(71);
      for (const [V, C, T] of [[10, 7, 5], [3, 1, 4], [20, 67, 9], [5, 4, 0]] as [number, number, number][]) {
        const table = randF32(r, V * C);
        const ids = randInts(r, T, V);
        if (T > 2) ids[2] = ids[0]; // a repeated id
        const out = a.f32(new Float32Array(T * C).fill(9));
        ctx.k.embeddingForward(out, a.f32(table), ids, T, C);
        for (let t = 0; t < T; t++) assert.deepEqual(out.subarray(t * C, t * C + C), table.subarray(ids[t] * C, ids[t] * C + C));
        const dout = randF32(r, T * C);
        const t64 = Float64Array.from(table);
        const loss = () => {
          let s = 0;
          for (let t = 0; t < T; t++) for (let c = 0; c < C; c++) s += dout[t * C + c] * t64[ids[t] * C + c];
          return s;
        };
        const g = finiteDiff(loss, t64, FD_STEP);
        const dtable = a.f32(new Float32Array(V * C).fill(1));
        ctx.k.embeddingBackward(dtable, a.f32(dout), ids, T, C);
        assertClose(`embedding backward ${V}x${C} T=${T}`, dtable, g.map((v) => v + 1), scaledTol(TOL_FD.embedding, g, 1));
      }
      assert.throws(() => ctx.k.embeddingForward(new Float32Array(4), new Float32Array(8), Int32Array.from([2]), 1, 4), ShapeError);
      assert.throws(() => ctx.k.embeddingBackward(new Float32Array(8), new Float32Array(4), Int32Array.from([-1]), 1, 4), ShapeError);
      a.freeAll();
    });
  });

  describe('cross-entropy', () => {
    it('forward vs f64: ignore-index rows, large logits, V = 32000 and 50257, count and sum', () => {
      const a = new Arena(ctx.k);
      const r = rng(81);
      for (const [T, V, spread, offset] of [[1, 1, 1, 0], [5, 7, 3, 0], [4, 32000, 10, 0], [3, 50257, 30, 1000], [0, 9, 1, 0]] as number[][]) {
        const logits = randF32(r, T * V, offset - spread, offset + spread);
        const targets = randInts(r, T, V);
        if (T > 2) targets[1] = IGNORE;
        const losses = a.f32(new Float32Array(T).fill(5));
        const res = ctx.k.crossEntropyForward(losses, a.f32(logits), targets, T, V, IGNORE);
        const want = crossEntropyF64(logits, targets, T, V, IGNORE);
        assertClose(`CE losses T=${T} V=${V}`, losses, want, TOL_F64.crossEntropy);
        const counted = Array.from(targets).filter((t) => t !== IGNORE).length;
        assert.equal(res.count, counted);
        assertClose(`CE sum T=${T} V=${V}`, [res.sum], [want.reduce((s, v) => s + v, 0)], { abs: TOL_F64.crossEntropy.abs * Math.max(1, T), rel: TOL_F64.crossEntropy.rel });
      }
      assert.throws(() => ctx.k.crossEntropyForward(new Float32Array(1), new Float32Array(4), Int32Array.from([4]), 1, 4, IGNORE), ShapeError);
      a.freeAll();
    });

    it('backward (scale = 1/count) by finite differences; overwrites; ignored rows are zero; NaN logits give NaN loss', () => {
      const a = new Arena(ctx.k);
      const r = rng(82);
      for (const [T, V] of [[4, 9], [3, 130], [1, 1]] as [number, number][]) {
        const logits = randF32(r, T * V, -4, 4);
        const targets = randInts(r, T, V);
        if (T > 2) targets[0] = IGNORE;
        const count = Array.from(targets).filter((t) => t !== IGNORE).length;
        const l64 = Float64Array.from(logits);
        const mean = () => crossEntropyF64(l64, targets, T, V, IGNORE).reduce((s, v) => s + v, 0) / count;
        const g = finiteDiff(mean, l64, FD_STEP);
        const dl = a.f32(new Float32Array(T * V).fill(7));
        ctx.k.crossEntropyBackward(dl, a.f32(logits), targets, T, V, IGNORE, 1 / count);
        assertClose(`CE backward T=${T} V=${V}`, dl, g, scaledTol(TOL_FD.crossEntropy, g));
        if (T > 2) assert.ok(dl.subarray(0, V).every((v) => v === 0));
      }
      const logits = a.f32(randF32(r, 2 * 5));
      logits[5 + 2] = NaN;
      const losses = a.f32(2);
      const res = ctx.k.crossEntropyForward(losses, logits, Int32Array.from([1, 0]), 2, 5, IGNORE);
      assert.ok(Number.isFinite(losses[0]) && Number.isNaN(losses[1]) && Number.isNaN(res.sum));
      a.freeAll();
    });
  });

  describe('optimiser', () => {
    it('sumSquares accumulates in f64 (n = 0, 1, odd, 1e5 elements of mixed magnitude); scale; add', () => {
      const a = new Arena(ctx.k);
      const r = rng(91);
      for (const n of [0, 1, 7, 33, 100003]) {
        const x = randF32(r, n);
        for (let i = 0; i < n; i += 97) x[i] *= 3000; // mixed magnitudes: an f32 running sum would lose ~1e-4
        let want = 0;
        for (let i = 0; i < n; i++) want += x[i] * x[i];
        const xb = a.f32(x);
        assertClose(`sumSquares n=${n}`, [ctx.k.sumSquares(xb, n)], [want], TOL_F64.sumSquares);
        ctx.k.scale(xb, n, -0.375);
        assertClose(`scale n=${n}`, xb, x.map((v) => v * -0.375), { abs: 0, rel: 0 });
        const y = randF32(r, n);
        const sum = a.f32(n);
        ctx.k.add(sum, xb, a.f32(y), n);
        assertClose(`add n=${n}`, sum, x.map((v, i) => Math.fround(Math.fround(v * -0.375) + y[i])), { abs: 0, rel: 0 });
        ctx.k.add(xb, xb, xb, n); // out aliasing both inputs
        assertClose(`add in place n=${n}`, xb, x.map((v) => Math.fround(v * -0.375) * 2), { abs: 0, rel: 0 });
      }
      const nan = a.f32([1, NaN, 2]);
      assert.ok(Number.isNaN(ctx.k.sumSquares(nan, 3)));
      a.freeAll();
    });

    it('AdamW first step by hand: |g| >> eps moves p by lr·sign(g); g = eps moves it by lr/2 (eps after bias correction)', () => {
      const a = new Arena(ctx.k);
      const [lr, b1, b2, eps] = [1e-2, 0.9, 0.999, 1e-8];
      // Step 1: m̂ = g, v̂ = g², so Δp = −lr·g / (|g| + eps). With g = 1e-8 = eps: Δp = −lr/2 exactly
      // (torch's form); the "eps on uncorrected sqrt(v)" variant would give −lr·1e-8/(3.16e-10 + 1e-8).
      const p = a.f32([1, -2, 0.5, 0.25]);
      const g = a.f32([3, -0.5, 1e-8, -1e-8]);
      ctx.k.adamwStep(p, g, a.f32(4), a.f32(4), 4, lr, b1, b2, eps, 0, 1);
      const want = [1 - lr * (3 / (3 + eps)), -2 + lr * (0.5 / (0.5 + eps)), 0.5 - lr / 2, 0.25 + lr / 2];
      assertClose('adamw step 1', p, want, { abs: 1e-8, rel: 1e-7 });
      a.freeAll();
    });

    it('AdamW five-step trajectory (with and without weight decay) = torch formula in f64', () => {
      const a = new Arena(ctx.k);
      const r = rng(92);
      const n = 37;
      const p0 = randF32(r, n);
      const grads = Array.from({ length: 5 }, (_, s) => randF32(r, n, -1, 1).map((v, i) => (i % 5 === 0 ? v * 1e-7 : v) * (s + 1)));
      for (const wd of [0, 0.01]) {
        const p = a.f32(p0);
        const m = a.f32(n);
        const v = a.f32(n);
        grads.forEach((g, s) => ctx.k.adamwStep(p, a.f32(g), m, v, n, 1e-2, 0.9, 0.999, 1e-8, wd, s + 1));
        assertClose(`adamw trajectory wd=${wd}`, p, adamwTrajectoryF64(p0, grads, 1e-2, 0.9, 0.999, 1e-8, wd), TOL_F64.adamw);
      }
      const p = a.f32([1, 2]);
      ctx.k.adamwStep(p, a.f32([NaN, 1]), a.f32(2), a.f32(2), 2, 1e-2, 0.9, 0.999, 1e-8, 0, 1);
      assert.ok(Number.isNaN(p[0]) && Number.isFinite(p[1]));
      a.freeAll();
    });

    it('clipping convention: global norm over all tensors, coef = min(1, max / (norm + 1e-6))', () => {
      const a = new Arena(ctx.k);
      const r = rng(93);
      const tensors = [randF32(r, 10, -3, 3), randF32(r, 33, -3, 3), randF32(r, 1, -3, 3)].map((t) => a.f32(t));
      const maxNorm = 1.0;
      const norm = Math.sqrt(tensors.reduce((s, t) => s + ctx.k.sumSquares(t, t.length), 0));
      let want = 0;
      for (const t of tensors) for (const x of t) want += x * x;
      assertClose('global norm', [norm], [Math.sqrt(want)], { abs: 0, rel: 1e-12 });
      const coef = Math.min(1, maxNorm / (norm + 1e-6));
      for (const t of tensors) ctx.k.scale(t, t.length, coef);
      const after = Math.sqrt(tensors.reduce((s, t) => s + ctx.k.sumSquares(t, t.length), 0));
      assertClose('norm after clipping', [after], [(maxNorm * norm) / (norm + 1e-6)], { abs: 0, rel: 1e-6 });
      a.freeAll();
    });
  });
}
