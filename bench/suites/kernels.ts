// Suite `kernels`: the compute layer's headline numbers (issue 4), at 1 thread and at all threads,
// with the reference twin as `ref:`-prefixed results (1 thread):
//   gemm_f32           GFLOPS, y = x·Wᵀ at M=512,K=576,N=1536 (training shape) and 1024³
//   gemm_f32_simd128   the same on the plain SIMD128 build (what relaxed SIMD's FMA is worth)
//   gemm_nf4           GFLOPS with an NF4 + double-quant weight at the training shape
//   gemm_nf4_int8      the same with int8 activations (the prompt path): on the build the probe
//                      chose and, at 1 thread, on the other int8-dot build ("kernels" names each),
//                      so the fused int8 dot's gain or loss is a ratio inside one run
//   gemv_nf4 / _flops  M=1 on a 4096x4096 NF4 + double-quant weight: GB/s of weight bytes, GFLOPS
//   attention_fwd_bwd  ms for forward + backward, T=512, H=9, D=64 (causal, training)
// Each wasm rate is also recorded per CPU-second of the whole process (`cpu:` prefix, all threads'
// CPU time): on a shared, overloaded machine the wall-clock medians drop with the load, the
// per-CPU-second rate does not (x threads = what an idle machine gives at full scaling).
// Not a test: it asserts nothing; targets are in ARCHITECTURE.md §2 and issue 4.

import { availableParallelism } from 'node:os';
import { kernelsLabel, type BenchContext, type BenchSuite, type MeasureOptions, type Timing } from '../harness.js';
import { createKernels } from '../../src/kernels/index.js';
import { fusedDotHere, loadKernelModule } from '../../src/kernels/wasm/module.js';
import type { Kernels } from '../../src/kernels/kernels.js';
import { quantizeTensor } from '../../src/quant/quantized-tensor.js';
import type { QuantizedTensor } from '../../src/quant/quantized-tensor.js';

const TRAIN = { M: 512, K: 576, N: 1536 };
const CUBE = { M: 1024, K: 1024, N: 1024 };
const GEMV = { N: 4096, K: 4096 };
const ATTN = { T: 512, H: 9, D: 64 };
const NF4_DQ = { quantType: 'nf4', blockSize: 64, doubleQuant: true, strategy: 'blockwise', zeroPoint: false } as const;

function random(k: Kernels | null, n: number, seed: number): Float32Array {
  const a = k === null ? new Float32Array(n) : k.allocF32(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 2 ** 31 - 1;
  }
  return a;
}

/** Wall-clock timing of fn plus the median CPU seconds (all threads of the process) per run. */
async function measureWithCpu(ctx: BenchContext, fn: () => void, opts: MeasureOptions): Promise<{ wall: Timing; cpu: Timing }> {
  const cpu: number[] = [];
  const wall = await ctx.measure(() => {
    const c0 = process.cpuUsage();
    fn();
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1e6);
  }, opts);
  const timed = cpu.slice(cpu.length - wall.runs).sort((a, b) => a - b);
  return { wall, cpu: { median: timed[timed.length >> 1], min: timed[0], max: timed[timed.length - 1], runs: timed.length } };
}

/** Records a rate from wall time, and for wasm runs also per CPU-second (`cpu:` prefix). */
async function rate(ctx: BenchContext, name: string, shape: string, threads: number, unit: string, work: number, fn: () => void, opts: MeasureOptions, k: Kernels | null): Promise<void> {
  const { wall, cpu } = await measureWithCpu(ctx, fn, opts);
  const label = k === null ? 'ref' : kernelsLabel(k);
  ctx.recordRate(name, shape, threads, unit, work, wall, label);
  if (k !== null) ctx.recordRate(`cpu:${name}`, shape, threads, `${unit}/cpu-s`, work, cpu, label);
}

function weightBytes(w: QuantizedTensor): number {
  const dq = w.dq;
  return w.packed.byteLength + (w.absmax?.byteLength ?? 0) + (dq === null ? 0 : dq.codes.byteLength + dq.nestedAbsmax.byteLength);
}

async function gemmF32(ctx: BenchContext, k: Kernels | null, ref: Kernels, name: string, threads: number, s: { M: number; K: number; N: number }): Promise<void> {
  const kk = k ?? ref;
  const x = random(k, s.M * s.K, 1);
  const w = random(k, s.N * s.K, 2);
  const y = k === null ? new Float32Array(s.M * s.N) : k.allocF32(s.M * s.N);
  await rate(ctx, name, `M=${s.M},K=${s.K},N=${s.N}`, threads, 'GFLOPS', (2 * s.M * s.N * s.K) / 1e9, () => kk.matmulXWt(y, x, w, s.M, s.K, s.N, false),
    k === null ? { warmup: 0, runs: 3, maxSeconds: 5 } : { runs: 9 }, k);
}

async function gemmNf4Int8(ctx: BenchContext, threads: number, nf4: QuantizedTensor, wasmVariant?: 'relaxed' | 'relaxed-fused'): Promise<void> {
  const k = await createKernels({ backend: 'wasm', threads, int8Activations: true, wasmVariant });
  try {
    const { M, K, N } = TRAIN;
    const x = random(k, M * K, 3);
    const y = k.allocF32(M * N);
    await rate(ctx, 'gemm_nf4_int8', `M=${M},K=${K},N=${N},nf4+dq`, threads, 'GFLOPS', (2 * M * N * K) / 1e9, () => k.matmulXWtQ4(y, x, nf4, M, false), { runs: 9 }, k);
  } finally {
    await k.dispose();
  }
}

async function runBackend(ctx: BenchContext, k: Kernels | null, ref: Kernels, threads: number, prefix: string, nf4: QuantizedTensor, nf4Gemv: QuantizedTensor): Promise<void> {
  const kk = k ?? ref;
  const isRef = k === null;
  await gemmF32(ctx, k, ref, `${prefix}gemm_f32`, threads, TRAIN);
  await gemmF32(ctx, k, ref, `${prefix}gemm_f32`, threads, CUBE);
  {
    const { M, K, N } = TRAIN;
    const x = random(k, M * K, 3);
    const y = isRef ? new Float32Array(M * N) : k.allocF32(M * N);
    await rate(ctx, `${prefix}gemm_nf4`, `M=${M},K=${K},N=${N},nf4+dq`, threads, 'GFLOPS', (2 * M * N * K) / 1e9, () => kk.matmulXWtQ4(y, x, nf4, M, false),
      isRef ? { warmup: 0, runs: 3, maxSeconds: 5 } : { runs: 9 }, k);
  }
  {
    const { N, K } = GEMV;
    const x = random(k, K, 4);
    const y = isRef ? new Float32Array(N) : k.allocF32(N);
    const { wall, cpu } = await measureWithCpu(ctx, () => kk.matmulXWtQ4(y, x, nf4Gemv, 1, false), isRef ? { warmup: 0, runs: 3, maxSeconds: 5 } : { warmup: 3, runs: 21 });
    const shape = `M=1,K=${K},N=${N},nf4+dq`;
    ctx.recordRate(`${prefix}gemv_nf4`, shape, threads, 'GB/s', weightBytes(nf4Gemv) / 1e9, wall);
    ctx.recordRate(`${prefix}gemv_nf4_flops`, shape, threads, 'GFLOPS', (2 * N * K) / 1e9, wall);
    if (!isRef) ctx.recordRate(`cpu:${prefix}gemv_nf4`, shape, threads, 'GB/s/cpu-s', weightBytes(nf4Gemv) / 1e9, cpu);
  }
  {
    const { T, H, D } = ATTN;
    const C = H * D;
    const q = random(k, T * C, 5);
    const kv = random(k, T * C, 6);
    const v = random(k, T * C, 7);
    const dout = random(k, T * C, 8);
    const alloc = (n: number): Float32Array => (isRef ? new Float32Array(n) : k.allocF32(n));
    const out = alloc(T * C), probs = alloc(H * T * T), dq = alloc(T * C), dk = alloc(T * C), dv = alloc(T * C);
    const dims = { Tq: T, Tk: T, H, Hkv: H, D, qOffset: 0 };
    const t = await ctx.measure(() => {
      kk.attentionForward(out, probs, q, kv, v, dims);
      kk.attentionBackward(dq, dk, dv, dout, probs, q, kv, v, dims);
    }, isRef ? { warmup: 0, runs: 3, maxSeconds: 5 } : { runs: 9 });
    ctx.record({ name: `${prefix}attention_fwd_bwd`, shape: `T=${T},H=${H},D=${D}`, threads, unit: 'ms', median: t.median * 1e3, min: t.min * 1e3, max: t.max * 1e3, runs: t.runs });
  }
}

export const kernelsSuite: BenchSuite = {
  name: 'kernels',
  description: 'GEMM f32/NF4, NF4 GEMV, attention fwd+bwd: wasm at 1 and all threads vs the ref twin',
  async run(ctx) {
    const ref = await createKernels({ backend: 'ref' });
    const nf4 = quantizeTensor(random(null, TRAIN.N * TRAIN.K, 9), [TRAIN.N, TRAIN.K], NF4_DQ);
    const nf4Gemv = quantizeTensor(random(null, GEMV.N * GEMV.K, 10), [GEMV.N, GEMV.K], NF4_DQ);
    const all = availableParallelism();
    for (const threads of all > 1 ? [1, all] : [1]) {
      const k = await createKernels({ backend: 'wasm', threads });
      ctx.log(`wasm ${'variant' in k ? String(k.variant) : ''} threads=${k.threads}`);
      try {
        await runBackend(ctx, k, ref, threads, '', nf4, nf4Gemv);
      } finally {
        await k.dispose();
      }
      await gemmNf4Int8(ctx, threads, nf4);
    }
    // The build the probe did not choose, at 1 thread (the fused one only where it is exact).
    const chosen = loadKernelModule();
    const other = 'variant' in chosen && chosen.variant === 'relaxed-fused' ? 'relaxed' : fusedDotHere().exact ? 'relaxed-fused' : null;
    if (other !== null) await gemmNf4Int8(ctx, 1, nf4, other);
    const simd = await createKernels({ backend: 'wasm', threads: 1, wasmVariant: 'simd' });
    try {
      await gemmF32(ctx, simd, ref, 'gemm_f32_simd128', 1, TRAIN);
    } finally {
      await simd.dispose();
    }
    await runBackend(ctx, null, ref, 1, 'ref:', nf4, nf4Gemv);
  },
};
