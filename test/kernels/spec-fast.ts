// Kernel specs: the backend under test against the reference backend (RefKernels) on the same f32
// inputs, at model-like sizes the f64 specs are too slow for (hidden 576, head dim 64, vocab
// 5003...), within the named TOL_FAST tolerances. Skipped when the backend under test is ref.

import { describe, it } from 'node:test';
import type { Kernels } from '../../src/kernels/kernels.js';
import { quant4BlockCount, type Quant4Weight } from '../../src/quant/types.js';
import { TOL_FAST, type SpecContext } from './spec-context.js';
import { assertClose, randF32, randInts, rng } from './spec-oracle.js';
import { dims, kvLen, ropeTables } from './spec-layers.js';

/** Runs `body` on both backends with buffers from each, returns the outputs named by `outs`. */
function both(ctx: SpecContext, body: (k: Kernels, f32: (x: number | Float32Array) => Float32Array) => Float32Array[]): [Float32Array[], Float32Array[]] {
  const run = (k: Kernels) => {
    const held: Float32Array[] = [];
    const f32 = (x: number | Float32Array) => {
      const b = k.allocF32(typeof x === 'number' ? x : x.length);
      if (typeof x !== 'number') b.set(x);
      held.push(b);
      return b;
    };
    const outs = body(k, f32).map((o) => o.slice());
    for (const b of held) k.free(b);
    return outs;
  };
  return [run(ctx.k), run(ctx.ref)];
}

function compare(label: string, [fast, ref]: [Float32Array[], Float32Array[]], tol: { abs: number; rel: number }): void {
  fast.forEach((f, i) => assertClose(`${label} #${i}`, f, ref[i], tol));
}

export function fastSpecs(ctx: SpecContext): void {
  describe('fast vs reference', { skip: ctx.isRef ? 'the backend under test is the reference' : false }, () => {
    const r = rng(101);

    it('matmuls f32 at odd and model-like shapes', () => {
      for (const [M, K, N] of [[37, 129, 65], [64, 576, 192], [1, 576, 1536], [3, 5, 7]]) {
        const x = randF32(r, M * K);
        const w = randF32(r, N * K);
        const dy = randF32(r, M * N);
        const y0 = randF32(r, M * N);
        compare(`matmuls ${M}x${K}x${N}`, both(ctx, (k, f) => {
          const y = f(y0);
          k.matmulXWt(y, f(x), f(w), M, K, N, true);
          const dx = f(M * K);
          k.matmulDyW(dx, f(dy), f(w), M, N, K, false);
          const dw = f(N * K);
          k.matmulDytX(dw, f(dy), f(x), M, N, K, false);
          return [y, dx, dw];
        }), TOL_FAST.matmul);
      }
    });

    it('4-bit matmuls and dequantization (NF4, double-quantized, odd sizes)', () => {
      for (const [M, N, K] of [[9, 96, 130], [1, 256, 576], [33, 17, 64]]) {
        const x = randF32(r, N * K, -1, 1);
        const blocks = quant4BlockCount(N, K, 64, 0);
        const packed = new Uint8Array(Math.ceil((N * K) / 2));
        const absmax = new Float32Array(blocks);
        ctx.ref.quantizeBlockwise4(packed, absmax, x, N * K, 64, 'nf4');
        const nf4 = Float32Array.from([-1, -0.6961928, -0.5250731, -0.3949175, -0.2844414, -0.1847734, -0.0910500, 0, 0.0795803, 0.1609302, 0.2461123, 0.3379152, 0.4407098, 0.5626170, 0.7229568, 1]);
        const w: Quant4Weight = { quantType: 'nf4', rows: N, cols: K, packed, codebook: nf4, blockSize: 64, blocksPerRow: 0, absmax, dq: null, zeros: null };
        const xs = randF32(r, M * K);
        const dy = randF32(r, M * N);
        compare(`q4 ${M}x${N}x${K}`, both(ctx, (k, f) => {
          const y = f(M * N);
          k.matmulXWtQ4(y, f(xs), w, M, false);
          const dx = f(M * K);
          k.matmulDyWQ4(dx, f(dy), w, M, false);
          const deq = f(N * K);
          k.dequantizeQ4Rows(deq, w, 0, N);
          return [y, dx, deq];
        }), TOL_FAST.q4);
      }
    });

    it('rmsnorm, rope, siluMul, softmax at hidden sizes', () => {
      const [T, C] = [19, 576];
      const x = randF32(r, T * C, -3, 3);
      const w = randF32(r, C, 0.5, 1.5);
      const dout = randF32(r, T * C);
      compare('rmsnorm', both(ctx, (k, f) => {
        const out = f(T * C);
        const rstd = f(T);
        k.rmsnormForward(out, rstd, f(x), f(w), T, C, 1e-5);
        const dx = f(T * C);
        const dw = f(C);
        k.rmsnormBackward(dx, dw, f(dout), f(x), f(w), rstd, T, C);
        return [out, rstd, dx, dw];
      }), TOL_FAST.rmsnorm);
      const [H, D, stride] = [9, 64, 9 * 64 + 2 * 3 * 64];
      const { cos, sin } = ropeTables(600, D);
      const positions = randInts(r, T, 600);
      const xr = randF32(r, T * stride);
      compare('rope', both(ctx, (k, f) => {
        const a = f(xr);
        k.rope(a, positions, f(cos), f(sin), T, H, D, false, stride);
        const b = f(xr);
        k.rope(b, positions, f(cos), f(sin), T, H, D, true, stride);
        return [a, b];
      }), TOL_FAST.rope);
      const n = T * 1536 + 3;
      const gate = randF32(r, n, -10, 10);
      const up = randF32(r, n);
      const dsm = randF32(r, n);
      compare('siluMul', both(ctx, (k, f) => {
        const out = f(n);
        k.siluMulForward(out, f(gate), f(up), n);
        const dg = f(n);
        const du = f(n);
        k.siluMulBackward(dg, du, f(dsm), f(gate), f(up), n);
        return [out, dg, du];
      }), TOL_FAST.siluMul);
      const xs = randF32(r, 7 * 1001, -20, 20);
      compare('softmax', both(ctx, (k, f) => {
        const s = f(xs);
        k.softmaxRows(s, 7, 1001);
        return [s];
      }), TOL_FAST.softmax);
    });

    it('attention forward and backward (T=64, GQA, D=64, decode chunk with keyStart and kvStride)', () => {
      for (const c of [
        { Tq: 64, Tk: 64, H: 9, Hkv: 3, D: 64, qOffset: 0 },
        { Tq: 5, Tk: 70, H: 4, Hkv: 2, D: 64, qOffset: 65, keyStart: 3, kvStride: 2 * 64 + 16 },
        { Tq: 13, Tk: 13, H: 3, Hkv: 1, D: 37, qOffset: 0 },
      ]) {
        const q = randF32(r, c.Tq * c.H * c.D, -2, 2);
        const kk = randF32(r, kvLen(c), -2, 2);
        const v = randF32(r, kvLen(c));
        const dout = randF32(r, c.Tq * c.H * c.D);
        compare(`attention ${JSON.stringify(c)}`, both(ctx, (k, f) => {
          const out = f(q.length);
          const probs = f(c.H * c.Tq * c.Tk);
          const [qb, kb, vb] = [f(q), f(kk), f(v)];
          k.attentionForward(out, probs, qb, kb, vb, dims(c));
          const dq = f(q.length);
          const dk = f(kk.length);
          const dv = f(v.length);
          k.attentionBackward(dq, dk, dv, f(dout), probs, qb, kb, vb, dims(c));
          return [out, probs, dq, dk, dv];
        }), TOL_FAST.attention);
      }
    });

    it(`work large enough to be split over the pool's threads matches the reference`, () => {
      // Sizes chosen to exceed the wasm backend's split threshold (~4e6 flop-equivalents per
      // thread) for every kernel, so multi-thread shares and their boundaries are exercised.
      const [T, C] = [1200, 1152];
      const x = randF32(r, T * C, -2, 2);
      const w = randF32(r, C);
      const dout = randF32(r, T * C);
      compare('rmsnorm split', both(ctx, (k, f) => {
        const rstd = f(T);
        const out = f(T * C);
        k.rmsnormForward(out, rstd, f(x), f(w), T, C, 1e-6);
        const dx = f(T * C);
        const dw = f(C);
        k.rmsnormBackward(dx, dw, f(dout), f(x), f(w), rstd, T, C);
        return [out, rstd, dx, dw];
      }), TOL_FAST.rmsnorm);
      const { cos, sin } = ropeTables(600, 64);
      const positions = randInts(r, 600, 600);
      compare('rope split', both(ctx, (k, f) => {
        const a = f(x.subarray(0, 600 * 36 * 64));
        k.rope(a, positions, f(cos), f(sin), 600, 36, 64, false);
        return [a];
      }), TOL_FAST.rope);
      const n = 400003;
      compare('siluMul split', both(ctx, (k, f) => {
        const out = f(n);
        k.siluMulForward(out, f(x.subarray(0, n)), f(dout.subarray(0, n)), n);
        const dg = f(n);
        const du = f(n);
        k.siluMulBackward(dg, du, f(dout.subarray(n, 2 * n)), f(x.subarray(0, n)), f(dout.subarray(0, n)), n);
        const sm = f(x.subarray(0, 40 * 9001));
        k.softmaxRows(sm, 40, 9001);
        return [out, dg, du, sm];
      }), TOL_FAST.siluMul);
      const c = { Tq: 128, Tk: 128, H: 4, Hkv: 2, D: 64, qOffset: 0, keyStart: 3 };
      const q = randF32(r, c.Tq * c.H * c.D);
      const kv = randF32(r, kvLen(c));
      compare('attention split', both(ctx, (k, f) => {
        const out = f(q.length);
        const probs = f(c.H * c.Tq * c.Tk);
        k.attentionForward(out, probs, f(q), f(kv), f(kv.map((e) => -e)), dims(c));
        const [dq, dk, dv] = [f(q.length), f(kv.length), f(kv.length)];
        k.attentionBackward(dq, dk, dv, f(dout.subarray(0, q.length)), probs, f(q), f(kv), f(kv.map((e) => -e)), dims(c));
        return [out, probs, dq, dk, dv];
      }), TOL_FAST.attention);
      const [Tc, V] = [70, 5003];
      const targets = randInts(r, Tc, V);
      compare('crossEntropy split', both(ctx, (k, f) => {
        const losses = f(Tc);
        const lb = f(x.subarray(0, Tc * V));
        k.crossEntropyForward(losses, lb, targets, Tc, V, -100);
        const dl = f(Tc * V);
        k.crossEntropyBackward(dl, lb, targets, Tc, V, -100, 1 / Tc);
        return [losses, dl];
      }), TOL_FAST.crossEntropy);
      const big = T * C * 3;
      const p = randF32(r, big);
      compare('optimiser split', both(ctx, (k, f) => {
        const pb = f(p);
        const m = f(big);
        const v = f(big);
        k.adamwStep(pb, f(p.map((e) => e * 0.5)), m, v, big, 1e-3, 0.9, 0.999, 1e-8, 0.01, 1);
        k.scale(pb, big, 0.75);
        return [pb, m, v, new Float32Array([k.sumSquares(pb, big)])];
      }), TOL_FAST.adamw);
    });

    it('cross-entropy, embedding and the optimiser kernels', () => {
      const [T, V] = [6, 5003];
      const logits = randF32(r, T * V, -8, 8);
      const targets = randInts(r, T, V);
      targets[3] = -100;
      compare('crossEntropy', both(ctx, (k, f) => {
        const losses = f(T);
        const lb = f(logits);
        k.crossEntropyForward(losses, lb, targets, T, V, -100);
        const dl = f(T * V);
        k.crossEntropyBackward(dl, lb, targets, T, V, -100, 0.2);
        return [losses, dl];
      }), TOL_FAST.crossEntropy);
      const ids = randInts(r, 40, 300);
      const table = randF32(r, 300 * 72);
      const de = randF32(r, 40 * 72);
      compare('embedding', both(ctx, (k, f) => {
        const out = f(40 * 72);
        k.embeddingForward(out, f(table), ids, 40, 72);
        const dt = f(300 * 72);
        k.embeddingBackward(dt, f(de), ids, 40, 72);
        return [out, dt];
      }), { abs: 0, rel: 1e-7 });
      const n = 10007;
      const p = randF32(r, n);
      const g = randF32(r, n);
      compare('adamw', both(ctx, (k, f) => {
        const pb = f(p);
        const m = f(n);
        const v = f(n);
        for (let t = 1; t <= 3; t++) k.adamwStep(pb, f(g.map((x) => x * t)), m, v, n, 1e-3, 0.9, 0.999, 1e-8, 0.01, t);
        const ss = new Float32Array([k.sumSquares(pb, n)]);
        return [pb, m, v, ss];
      }), TOL_FAST.adamw);
    });
  });
}
