// Kernel specs: f32 matmuls (three layouts) and 4-bit weights (decode, matmuls, bitsandbytes
// quantizer against the shared golden vectors). Part of the suite run by defineKernelSpecs.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ShapeError } from '../../src/errors.js';
import { SafetensorsReader } from '../../src/formats/safetensors.js';
import type { Quant4Weight } from '../../src/quant/types.js';
import { quant4BlockCount } from '../../src/quant/types.js';
import { fixture } from '../helpers/shared.js';
import { FD_STEP, TOL_F64, TOL_FD, type SpecContext } from './spec-context.js';
import { Arena, assertBitsEqual, assertClose, dequantQ4F64, dot, finiteDiff, matmulXWtF64, randF32, rng, scaledTol } from './spec-oracle.js';

/** [M, K, N]: odd sizes, sizes that are not multiples of 4/8/32/64, single rows, zero sizes. */
const MATMUL_SHAPES: [number, number, number][] = [
  [1, 1, 1], [1, 7, 3], [5, 33, 17], [13, 67, 9], [4, 130, 65], [3, 257, 5], [9, 8, 4], [1, 64, 64],
  [17, 12, 31], [0, 5, 3], [3, 0, 4], [2, 5, 0],
];

export function linearSpecs(ctx: SpecContext): void {
  describe('matmul f32', () => {
    it('matmulXWt: forward vs f64, overwrite and accumulate', () => {
      const a = new Arena(ctx.k);
      const r = rng(11);
      for (const [M, K, N] of MATMUL_SHAPES) {
        const x = a.f32(randF32(r, M * K));
        const w = a.f32(randF32(r, N * K));
        const want = matmulXWtF64(x, w, M, K, N);
        const y = a.f32(new Float32Array(M * N).fill(7)); // garbage: must be overwritten
        ctx.k.matmulXWt(y, x, w, M, K, N, false);
        assertClose(`xwt ${M}x${K}x${N}`, y, want, TOL_F64.matmul);
        const y0 = randF32(r, M * N);
        y.set(y0);
        ctx.k.matmulXWt(y, x, w, M, K, N, true);
        assertClose(`xwt acc ${M}x${K}x${N}`, y, want.map((v, i) => v + y0[i]), TOL_F64.matmul);
      }
      a.freeAll();
    });

    it('matmulDyW and matmulDytX: the gradients of x·wᵀ by finite differences, overwrite and accumulate', () => {
      const a = new Arena(ctx.k);
      const r = rng(12);
      for (const [M, K, N] of MATMUL_SHAPES) {
        if ((M * K + N * K) * M * K * N > 3e7) continue; // FD cost; large shapes are covered by fast-vs-ref
        const x = randF32(r, M * K);
        const w = randF32(r, N * K);
        const dy = randF32(r, M * N);
        const x64 = Float64Array.from(x);
        const w64 = Float64Array.from(w);
        const loss = () => dot(dy, matmulXWtF64(x64, w64, M, K, N));
        const gx = finiteDiff(loss, x64, FD_STEP);
        const gw = finiteDiff(loss, w64, FD_STEP);
        const dx = a.f32(new Float32Array(M * K).fill(-3));
        ctx.k.matmulDyW(dx, a.f32(dy), a.f32(w), M, N, K, false);
        assertClose(`dyw ${M}x${K}x${N}`, dx, gx, scaledTol(TOL_FD.matmul, gx));
        ctx.k.matmulDyW(dx, a.f32(dy), a.f32(w), M, N, K, true);
        assertClose(`dyw acc ${M}x${K}x${N}`, dx, gx.map((v) => 2 * v), scaledTol(2 * TOL_FD.matmul, gx));
        const dw = a.f32(new Float32Array(N * K).fill(5));
        ctx.k.matmulDytX(dw, a.f32(dy), a.f32(x), M, N, K, false);
        assertClose(`dytx ${M}x${K}x${N}`, dw, gw, scaledTol(TOL_FD.matmul, gw));
        ctx.k.matmulDytX(dw, a.f32(dy), a.f32(x), M, N, K, true);
        assertClose(`dytx acc ${M}x${K}x${N}`, dw, gw.map((v) => 2 * v), scaledTol(2 * TOL_FD.matmul, gw));
      }
      a.freeAll();
    });

    it('NaN in one input row poisons exactly the dependent outputs', () => {
      const a = new Arena(ctx.k);
      const r = rng(13);
      const [M, K, N] = [5, 37, 11];
      const x = a.f32(randF32(r, M * K));
      const w = a.f32(randF32(r, N * K));
      x[2 * K + 5] = NaN;
      const y = a.f32(M * N);
      ctx.k.matmulXWt(y, x, w, M, K, N, false);
      for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) assert.equal(Number.isNaN(y[m * N + n]), m === 2, `y[${m},${n}]`);
      const dy = a.f32(randF32(r, M * N));
      dy[3 * N + 4] = NaN;
      const dw = a.f32(N * K);
      ctx.k.matmulDytX(dw, dy, a.f32(randF32(r, M * K)), M, N, K, false);
      for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) assert.equal(Number.isNaN(dw[n * K + k]), n === 4, `dw[${n},${k}]`);
      const dx = a.f32(M * K);
      ctx.k.matmulDyW(dx, dy, w, M, N, K, false);
      for (let m = 0; m < M; m++) for (let k = 0; k < K; k++) assert.equal(Number.isNaN(dx[m * K + k]), m === 3, `dx[${m},${k}]`);
      a.freeAll();
    });

    it('plain Float32Arrays (not from allocF32) give the same results as backend buffers', () => {
      const a = new Arena(ctx.k);
      const r = rng(14);
      const [M, K, N] = [6, 45, 13];
      const x = randF32(r, M * K);
      const w = randF32(r, N * K);
      const yPlain = new Float32Array(M * N);
      ctx.k.matmulXWt(yPlain, x, w, M, K, N, false);
      const y = a.f32(M * N);
      ctx.k.matmulXWt(y, a.f32(x), a.f32(w), M, K, N, false);
      assert.deepEqual(yPlain, y);
      a.freeAll();
    });

    it('buffers shorter than the dims are a ShapeError, not a silent read past the end', () => {
      const x = new Float32Array(6);
      const w = new Float32Array(6);
      assert.throws(() => ctx.k.matmulXWt(new Float32Array(3), x, w, 2, 3, 2, false), ShapeError);
      assert.throws(() => ctx.k.matmulDyW(new Float32Array(6), new Float32Array(3), w, 2, 2, 3, false), ShapeError);
      assert.throws(() => ctx.k.matmulXWt(new Float32Array(4), x, w, 2, 3.5, 2, false), ShapeError);
    });
  });

  describe('4-bit weights', () => {
    const VARIANTS: { label: string; rows: number; cols: number; blockSize: number; perChannel: boolean; dq: boolean; zeros: boolean }[] = [
      { label: 'blockwise 7x9 bs32 (blocks cross rows)', rows: 7, cols: 9, blockSize: 32, perChannel: false, dq: false, zeros: false },
      { label: 'blockwise 5x130 bs64 dq', rows: 5, cols: 130, blockSize: 64, perChannel: false, dq: true, zeros: false },
      { label: 'blockwise 65x130 bs32 dq (265 blocks: 2 nested blocks)', rows: 65, cols: 130, blockSize: 32, perChannel: false, dq: true, zeros: false },
      { label: 'perChannel 6x100 bs64 (partial block per row)', rows: 6, cols: 100, blockSize: 64, perChannel: true, dq: false, zeros: false },
      { label: 'perChannel 3x65 bs32 zeros', rows: 3, cols: 65, blockSize: 32, perChannel: true, dq: false, zeros: true },
      { label: 'perChannel 4x31 bs32 dq zeros', rows: 4, cols: 31, blockSize: 32, perChannel: true, dq: true, zeros: true },
      { label: 'single element', rows: 1, cols: 1, blockSize: 64, perChannel: false, dq: false, zeros: false },
      // cols and block size multiples of 32: the M = 1 GEMV's permuted fast path of the wasm backend
      { label: 'blockwise 9x96 bs64 dq (blocks cross rows, 32-aligned)', rows: 9, cols: 96, blockSize: 64, perChannel: false, dq: true, zeros: false },
      { label: 'blockwise 300x64 bs32 (600 blocks: 3 nested blocks)', rows: 300, cols: 64, blockSize: 32, perChannel: false, dq: true, zeros: false },
      { label: 'perChannel 5x224 bs64 (partial 32-column block per row)', rows: 5, cols: 224, blockSize: 64, perChannel: true, dq: false, zeros: false },
      { label: 'perChannel 3x96 bs32 zeros (32-aligned, zero points)', rows: 3, cols: 96, blockSize: 32, perChannel: true, dq: false, zeros: true },
    ];

    it('dequantizeQ4Rows follows the Quant4Weight contract bit for bit (plain, dq, perChannel, zeros)', () => {
      const r = rng(21);
      for (const v of VARIANTS) {
        const w = randomQuant4(r, v.rows, v.cols, v.blockSize, v.perChannel, v.dq, v.zeros);
        const want = Float32Array.from(dequantQ4F64(w));
        const out = new Float32Array(v.rows * v.cols);
        ctx.k.dequantizeQ4Rows(out, w, 0, v.rows);
        assertBitsEqual(v.label, out, want);
        if (v.rows > 2) {
          const part = new Float32Array(v.cols * (v.rows - 2));
          ctx.k.dequantizeQ4Rows(part, w, 1, v.rows - 1);
          assertBitsEqual(`${v.label} rows 1..${v.rows - 1}`, part, want.subarray(v.cols, v.cols * (v.rows - 1)));
        }
      }
    });

    it('matmulXWtQ4 and matmulDyWQ4 equal the f32 matmuls of the decoded weight (f64 oracle)', () => {
      const a = new Arena(ctx.k);
      const r = rng(22);
      for (const v of VARIANTS) {
        const w = randomQuant4(r, v.rows, v.cols, v.blockSize, v.perChannel, v.dq, v.zeros);
        const wd = dequantQ4F64(w);
        const N = v.rows;
        const K = v.cols;
        for (const M of [1, 5, 0]) {
          const x = a.f32(randF32(r, M * K));
          const y = a.f32(new Float32Array(M * N).fill(9));
          ctx.k.matmulXWtQ4(y, x, w, M, false);
          const want = matmulXWtF64(x, wd, M, K, N);
          assertClose(`xwtq4 ${v.label} M=${M}`, y, want, TOL_F64.matmul);
          ctx.k.matmulXWtQ4(y, x, w, M, true);
          assertClose(`xwtq4 acc ${v.label} M=${M}`, y, want.map((e) => 2 * e), TOL_F64.matmul);
          const dy = randF32(r, M * N);
          const wt = transpose(wd, N, K); // dy·W = dy·(Wᵀ)ᵀ
          const wantDx = matmulXWtF64(dy, wt, M, N, K);
          const dx = a.f32(new Float32Array(M * K).fill(9));
          ctx.k.matmulDyWQ4(dx, a.f32(dy), w, M, false);
          assertClose(`dywq4 ${v.label} M=${M}`, dx, wantDx, TOL_F64.matmul);
          ctx.k.matmulDyWQ4(dx, a.f32(dy), w, M, true);
          assertClose(`dywq4 acc ${v.label} M=${M}`, dx, wantDx.map((e) => 2 * e), TOL_F64.matmul);
        }
      }
      a.freeAll();
    });

    it('matmulXWtQ4Many equals one matmulXWtQ4 per weight, bit for bit (q/k/v-like widths, M = 1..9)', () => {
      const a = new Arena(ctx.k);
      const r = rng(23);
      for (const [K, bs, dq] of [[96, 64, true], [130, 32, false]] as const) {
        const ws = [40, 7, 7, 33].map((N, i) => randomQuant4(r, N, K, bs, i === 3, dq, false));
        for (const M of [1, 3, 9]) {
          const x = a.f32(randF32(r, M * K));
          for (const accumulate of [false, true]) {
            const start = ws.map((w) => randF32(r, M * w.rows));
            const want = ws.map((w, i) => {
              const y = a.f32(start[i]);
              ctx.k.matmulXWtQ4(y, x, w, M, accumulate);
              return y;
            });
            // Outputs in backend memory and ordinary arrays alike.
            const got = ws.map((_, i) => (i % 2 === 0 ? a.f32(start[i]) : Float32Array.from(start[i])));
            ctx.k.matmulXWtQ4Many(got, x, ws, M, accumulate);
            got.forEach((g, i) => assertBitsEqual(`many K=${K} M=${M} acc=${accumulate} weight ${i}`, g, want[i]));
          }
        }
      }
      const w = randomQuant4(r, 4, 8, 32, false, false, false);
      const v = randomQuant4(r, 4, 9, 32, false, false, false);
      assert.throws(() => ctx.k.matmulXWtQ4Many([a.f32(new Float32Array(4)), a.f32(new Float32Array(4))], a.f32(new Float32Array(8)), [w, v], 1, false), ShapeError);
      assert.throws(() => ctx.k.matmulXWtQ4Many([a.f32(new Float32Array(4))], a.f32(new Float32Array(8)), [w, w], 1, false), ShapeError);
      a.freeAll();
    });

    it('quantizeBlockwise4 reproduces the FORMATS.md §14.6 vectors', () => {
      const p1 = new Uint8Array(4);
      const a1 = new Float32Array(1);
      ctx.k.quantizeBlockwise4(p1, a1, Float32Array.from([-1.0, -0.5, 0.0, 0.25, 0.5, 0.75, 1.0, 0.04]), 8, 64, 'nf4');
      assert.equal(Buffer.from(p1).toString('hex'), '027acef8');
      assert.equal(a1[0], 1);
      const x2 = Float32Array.from({ length: 10 }, (_, k) => 0.3 * (k - 5));
      const p2 = new Uint8Array(5);
      const a2 = new Float32Array(1);
      ctx.k.quantizeBlockwise4(p2, a2, x2, 10, 64, 'nf4');
      assert.equal(Buffer.from(p2).toString('hex'), '0123579cde');
      assert.equal(a2[0], 1.5);
    });

    it('quantizeBlockwise4 and dequantizeQ4Rows are bit-exact with bitsandbytes on every f32 golden case', () => {
      const manifest = JSON.parse(readFileSync(fixture('bnb', 'manifest.json'), 'utf8')) as { cases: BnbCase[] };
      const readers = new Map<string, SafetensorsReader>();
      const open = (file: string) => {
        if (!readers.has(file)) readers.set(file, SafetensorsReader.open(fixture('bnb', file)));
        return readers.get(file)!;
      };
      let checked = 0;
      for (const c of manifest.cases) {
        if (c.input_dtype !== 'float32') continue;
        const st = open(c.file);
        const t = (role: string) => c.tensors[role]!.key;
        const n = c.numel;
        const x = st.readF32(t('input'));
        const packed = new Uint8Array(Math.ceil(n / 2));
        const absmax = new Float32Array(c.num_blocks);
        ctx.k.quantizeBlockwise4(packed, absmax, x, n, c.blocksize, c.quant_type);
        assert.deepEqual(packed, st.readBytes(t('packed')), `${c.id}: packed codes`);
        assertBitsEqual(`${c.id}: absmax`, absmax, st.readF32(t('absmax_f32')));
        const rows = c.shape.length === 2 ? c.shape[0] : 1;
        const w: Quant4Weight = {
          quantType: c.quant_type, rows, cols: n / rows, packed, codebook: st.readF32(t('quant_map')),
          blockSize: c.blocksize, blocksPerRow: 0, zeros: null,
          absmax: c.double_quant ? null : absmax,
          dq: c.double_quant
            ? {
                codes: st.readBytes(t('absmax')), nestedAbsmax: st.readF32(t('nested_absmax')),
                nestedMap: st.readF32(t('nested_quant_map')), offset: st.readF32(t('nested_offset'))[0], nestedBlockSize: 256,
              }
            : null,
        };
        const out = new Float32Array(n);
        ctx.k.dequantizeQ4Rows(out, w, 0, rows);
        assertBitsEqual(`${c.id}: dequantized`, out, st.readF32(t('dequant')));
        checked++;
      }
      for (const st of readers.values()) st.close();
      assert.ok(checked >= 50, `only ${checked} f32 cases found`);
    });
  });
}

interface BnbCase {
  id: string; file: string; input_dtype: string; shape: number[]; numel: number; quant_type: 'nf4' | 'fp4';
  blocksize: number; double_quant: boolean; num_blocks: number; tensors: Record<string, { key: string }>;
}

function transpose(a: ArrayLike<number>, rows: number, cols: number): Float64Array {
  const t = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = a[r * cols + c];
  return t;
}

/** A Quant4Weight with random codes, codebook and scales: the decode contract needs no real quantizer. */
function randomQuant4(r: () => number, rows: number, cols: number, blockSize: number, perChannel: boolean, dq: boolean, zeros: boolean): Quant4Weight {
  const blocksPerRow = perChannel ? Math.ceil(cols / blockSize) : 0;
  const nBlocks = quant4BlockCount(rows, cols, blockSize, blocksPerRow);
  const packed = Uint8Array.from({ length: Math.ceil((rows * cols) / 2) }, () => Math.floor(r() * 256));
  const nested = Math.ceil(nBlocks / 256);
  return {
    quantType: 'nf4', rows, cols, packed, blockSize, blocksPerRow,
    codebook: randF32(r, 16),
    absmax: dq ? null : randF32(r, nBlocks, 0.01, 2),
    dq: dq
      ? {
          codes: Uint8Array.from({ length: nBlocks }, () => Math.floor(r() * 256)), nestedAbsmax: randF32(r, nested, 0.1, 1),
          nestedMap: randF32(r, 256), offset: Math.fround(0.5 + r()), nestedBlockSize: 256,
        }
      : null,
    zeros: zeros ? randF32(r, nBlocks, -0.5, 0.5) : null,
  };
}
