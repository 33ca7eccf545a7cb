// The wasm backend's non-matmul kernels: argument checks (shared with ref, ref/check.ts), staging
// of arrays that are not in the heap, and the split of each kernel over the pool's threads. The
// arithmetic is in assembly/{norm,rope,act,attention,loss,optim}.ts; WasmKernels (backend.ts)
// forwards the Kernels methods here. Embedding lookup/scatter are row copies at memcpy speed
// (TypedArray.set) and stay on the reference implementation.
// Not here: matmuls and 4-bit weights (backend.ts), memory and threads (memory.ts, pool.ts).

import { ShapeError } from '../../errors.js';
import type { AttentionDims } from '../kernels.js';
import type { AttentionGeometry } from '../ref/attention.js';
import { checkAttention, checkBuffers, checkCrossEntropy, checkRope, kvLength, requireLength } from '../ref/check.js';
import { Staging, type WasmHeap } from './memory.js';
import type { ThreadPool } from './pool.js';

/** Exports of assembly/ these kernels call through the pool (appended to backend.ts's list). */
export const LAYER_KERNEL_NAMES = [
  'rmsnormForwardRows', 'rmsnormBackwardDx', 'rmsnormBackwardDw', 'ropeRows', 'siluMulForward', 'siluMulBackward',
  'softmaxRows', 'attentionForwardRows', 'attentionForwardInfer', 'attentionForwardDecode', 'attentionDecodeMerge', 'attentionBackwardQ', 'attentionBackwardKV', 'crossEntropyForwardRows',
  'crossEntropyBackwardRows', 'sumSquaresRange', 'scaleRange', 'addRange', 'adamwRange',
];

/**
 * Rough cost in flop-equivalents per element, for deciding when a split pays (the pool's
 * threshold is in flops): memory-bound elementwise kernels are cheap, exp-bearing ones are not.
 */
const COST = { elementwise: 2, norm: 6, exp: 24 } as const;

/**
 * Query rows from which a forward without probabilities takes the blocked inference kernel
 * (assembly/attention-infer.ts); below, its blocks of 8 positions would be mostly padding and the
 * decoding kernel (assembly/attention-decode.ts) is faster.
 */
const INFER_MIN_ROWS = 8;

/**
 * Weight of the decoding forward's flops when deciding its thread split: the split threshold
 * assumes ~40 GFLOPS per thread, and decoding, which reads each layer's KV cache from L3 or DRAM
 * once per token (the weights streamed in between evict it), runs at about a third of that
 * (measured, 1 thread, SmolLM2-135M shape decoding after a 1000-token prompt: ~150 us per call,
 * ~15 GFLOPS). A second thread also brings a second core's memory bandwidth. Not yet tuned by a
 * 2-thread measurement.
 */
const DECODE_FLOP_WEIGHT = 3;

/** Key rows per unit of the attention backward's second pass (KV_BLOCK in assembly/attention.ts). */
const KV_BLOCK = 4;

/** Visible keys of query row i. */
function queryRowKeys(g: AttentionGeometry, i: number): number {
  return Math.max(0, Math.min(g.Tk, i + g.qOffset + 1) - g.keyStart);
}

/** Query rows that see key row j. */
function keyRowQueries(g: AttentionGeometry, j: number): number {
  return j < g.keyStart ? 0 : Math.max(0, g.Tq - Math.max(0, j - g.qOffset));
}

/** Splits [0, n) into per-thread shares when `flops` of work pays for it (backend.ts rowsOf). */
export type Splitter = (n: number, flops: number, unit?: number) => [number, number][];

/** Per-thread warm-up buffers (byte offsets): c 640 f32, a 1536 f32, b 3840 f32, x 4096 f32, am 64 f32, pos 64 i32 (zeros). */
export interface WarmBuffers {
  readonly c: number; readonly a: number; readonly b: number; readonly x: number; readonly am: number; readonly pos: number;
}

export class LayerKernels {
  constructor(
    private readonly heap: WasmHeap,
    private readonly pool: ThreadPool,
    private readonly split: Splitter,
  ) {}

  rmsnormForward(out: Float32Array, rstd: Float32Array, x: Float32Array, weight: Float32Array, T: number, C: number, eps: number): void {
    checkBuffers('rmsnormForward', { T, C }, [['out', out, T * C], ['rstd', rstd, T], ['x', x, T * C], ['weight', weight, C]]);
    const s = new Staging(this.heap);
    const [po, pr] = [s.out(out, T * C, false), s.out(rstd, T, false)];
    const [px, pw] = [s.in(x, T * C), s.in(weight, C)];
    this.pool.run('rmsnormForwardRows', this.split(T, COST.norm * T * C).map(([a, b]) => [po, pr, px, pw, a, b, C, eps]));
    s.finish();
  }

  rmsnormBackward(dx: Float32Array, dweight: Float32Array | null, dout: Float32Array, x: Float32Array, weight: Float32Array, rstd: Float32Array, T: number, C: number): void {
    checkBuffers('rmsnormBackward', { T, C }, [['dx', dx, T * C], ['dout', dout, T * C], ['x', x, T * C], ['weight', weight, C], ['rstd', rstd, T]]);
    if (dweight !== null) requireLength('rmsnormBackward', 'dweight', dweight, C);
    const s = new Staging(this.heap);
    const pdx = s.out(dx, T * C, true);
    const pdw = dweight !== null ? s.out(dweight, C, true) : 0;
    const [pdo, px, pw, pr] = [s.in(dout, T * C), s.in(x, T * C), s.in(weight, C), s.in(rstd, T)];
    this.pool.run('rmsnormBackwardDx', this.split(T, COST.norm * T * C).map(([a, b]) => [pdx, pdo, px, pw, pr, a, b, C]));
    if (dweight !== null) this.pool.run('rmsnormBackwardDw', this.split(C, COST.norm * T * C, 4).map(([a, b]) => [pdw, pdo, px, pr, T, C, a, b]));
    s.finish();
  }

  rope(x: Float32Array, positions: Int32Array, cos: Float32Array, sin: Float32Array, T: number, nHeads: number, D: number, inverse: boolean, stride?: number): void {
    const rowStride = stride ?? nHeads * D;
    checkRope(x, positions, cos, sin, T, nHeads, D, rowStride);
    const n = T === 0 ? 0 : (T - 1) * rowStride + nHeads * D;
    // Only the table rows [lo, hi] the positions use are staged (tables of 100k+ positions are
    // common), with positions rebased to that window.
    let lo = Infinity;
    let hi = -1;
    for (let t = 0; t < T; t++) {
      lo = Math.min(lo, positions[t]);
      hi = Math.max(hi, positions[t]);
    }
    const half = D >> 1;
    const window = T === 0 ? [0, 0] : [lo * half, (hi + 1) * half];
    const rebased = positions.subarray(0, T).map((p) => p - (T === 0 ? 0 : lo));
    const s = new Staging(this.heap);
    const px = s.out(x, n, true);
    const [pp, pc, ps] = [s.in(rebased, T), s.in(cos.subarray(window[0], window[1]), window[1] - window[0]), s.in(sin.subarray(window[0], window[1]), window[1] - window[0])];
    this.pool.run('ropeRows', this.split(T, COST.norm * T * nHeads * D).map(([a, b]) => [px, pp, pc, ps, a, b, nHeads, D, +inverse, rowStride]));
    s.finish();
  }

  siluMulForward(out: Float32Array, gate: Float32Array, up: Float32Array, n: number): void {
    checkBuffers('siluMulForward', { n }, [['out', out, n], ['gate', gate, n], ['up', up, n]]);
    const s = new Staging(this.heap);
    const po = s.out(out, n, false);
    const [pg, pu] = [s.in(gate, n), s.in(up, n)];
    this.pool.run('siluMulForward', this.split(n, COST.exp * n, 4).map(([a, b]) => [po, pg, pu, a, b]));
    s.finish();
  }

  siluMulBackward(dgate: Float32Array, dup: Float32Array, dout: Float32Array, gate: Float32Array, up: Float32Array, n: number): void {
    checkBuffers('siluMulBackward', { n }, [['dgate', dgate, n], ['dup', dup, n], ['dout', dout, n], ['gate', gate, n], ['up', up, n]]);
    const s = new Staging(this.heap);
    const [pdg, pdu] = [s.out(dgate, n, true), s.out(dup, n, true)];
    const [pdo, pg, pu] = [s.in(dout, n), s.in(gate, n), s.in(up, n)];
    this.pool.run('siluMulBackward', this.split(n, COST.exp * n, 4).map(([a, b]) => [pdg, pdu, pdo, pg, pu, a, b]));
    s.finish();
  }

  softmaxRows(x: Float32Array, rows: number, cols: number): void {
    checkBuffers('softmaxRows', { rows, cols }, [['x', x, rows * cols]]);
    const s = new Staging(this.heap);
    const px = s.out(x, rows * cols, true);
    this.pool.run('softmaxRows', this.split(rows, COST.exp * rows * cols).map(([a, b]) => [px, a, b, cols]));
    s.finish();
  }

  // ---- attention ----------------------------------------------------------------------------

  attentionForward(out: Float32Array, probs: Float32Array | null, q: Float32Array, k: Float32Array, v: Float32Array, dims: AttentionDims): void {
    const g = checkAttention('attentionForward', dims, q, k, v);
    const nq = g.Tq * g.H * g.D;
    requireLength('attentionForward', 'out', out, nq);
    if (probs !== null) requireLength('attentionForward', 'probs', probs, g.H * g.Tq * g.Tk);
    const s = new Staging(this.heap);
    const po = s.out(out, nq, false);
    const pp = probs !== null ? s.out(probs, g.H * g.Tq * g.Tk, false) : 0;
    const [pq, pk, pv] = [s.in(q, nq), s.in(k, kvLength(g)), s.in(v, kvLength(g))];
    const dimArgs = [g.Tq, g.Tk, g.H, g.Hkv, g.D, g.qOffset, g.keyStart, g.kvStride];
    if (probs === null && g.Tq >= INFER_MIN_ROWS) {
      // Inference: blocks of query positions x every query head of a kv head (assembly/attention-infer.ts).
      const block = this.pool.exports.attentionInferBlock();
      const blocks = Math.ceil(g.Tq / block);
      // A block's cost: its rows times its last row's keys, plus block² for the causal edge and the
      // per-block set-up (transposing queries, normalising rows) that even a short block pays.
      const blockCost = (b: number) => queryRowKeys(g, Math.min(g.Tq, (b + 1) * block) - 1) * Math.min(block, g.Tq - b * block) + block * block;
      const shares = this.balancedShares(g.Hkv * blocks, (u) => blockCost(u % blocks) * g.group, 4 * g.D);
      const bytes = this.pool.exports.attentionInferScratchBytes(g.group, g.D);
      const scratch = s.reserve(shares.length * bytes);
      this.pool.run('attentionForwardInfer', shares.map(([u0, u1], t) => [po, pq, pk, pv, ...dimArgs, u0, u1, scratch + t * bytes]));
    } else if (probs === null) {
      this.attentionDecode(s, po, pq, pk, pv, g, dimArgs);
    } else {
      // Training: the row kernel, which writes the probabilities (assembly/attention.ts).
      const shares = this.balancedShares(g.H * g.Tq, (u) => queryRowKeys(g, u % g.Tq), 4 * g.D);
      this.pool.run('attentionForwardRows', shares.map(([u0, u1]) => [po, pp, pq, pk, pv, ...dimArgs, u0, u1]));
    }
    s.finish();
  }

  /**
   * Decoding forward (assembly/attention-decode.ts): the visible keys are cut into one chunk per
   * thread the work pays for (Hkv = 3 kv heads do not divide over 2 threads; keys do), each chunk
   * for every kv head and query vector; with several chunks their partial results are merged by
   * their log-sum-exp weights afterwards.
   */
  private attentionDecode(s: Staging, po: number, pq: number, pk: number, pv: number, g: AttentionGeometry, dimArgs: number[]): void {
    const nq = g.Tq * g.group;
    if (nq === 0 || g.D === 0) return;
    const keys = queryRowKeys(g, g.Tq - 1);
    const chunks = this.split(keys, DECODE_FLOP_WEIGHT * 4 * g.D * nq * keys * g.Hkv).length;
    const bytes = this.pool.exports.attentionDecodeScratchBytes(nq, g.Hkv, g.D);
    const scratch = s.reserve(chunks * bytes);
    const partial = chunks > 1 ? s.reserve(4 * this.pool.exports.attentionDecodePartialFloats(nq, g.Hkv, g.D, chunks)) : 0;
    this.pool.run('attentionForwardDecode', Array.from({ length: chunks }, (_, t) => [po, partial, pq, pk, pv, ...dimArgs, chunks, t, t + 1, scratch + t * bytes]));
    if (chunks > 1) this.pool.run('attentionDecodeMerge', [[po, partial, g.Tq, g.H, g.Hkv, g.D, chunks]]);
  }

  /**
   * Two passes (assembly/attention.ts): per query row, the score gradients ds [H, Tq, Tk] (a
   * scratch as large as probs) and dq; then per block of key rows of each kv head, dk and dv summed over
   * the group's query heads, so threads never write the same row.
   */
  attentionBackward(dq: Float32Array, dk: Float32Array, dv: Float32Array, dout: Float32Array, probs: Float32Array, q: Float32Array, k: Float32Array, v: Float32Array, dims: AttentionDims): void {
    const g = checkAttention('attentionBackward', dims, q, k, v);
    const nq = g.Tq * g.H * g.D;
    const nkv = kvLength(g);
    const np = g.H * g.Tq * g.Tk;
    for (const [name, arr, n] of [['dq', dq, nq], ['dout', dout, nq], ['probs', probs, np], ['dk', dk, nkv], ['dv', dv, nkv]] as const) {
      requireLength('attentionBackward', name, arr, n);
    }
    const s = new Staging(this.heap);
    const [pdq, pdk, pdv] = [s.out(dq, nq, true), s.out(dk, nkv, true), s.out(dv, nkv, true)];
    const [pdo, pp, pq, pk, pv] = [s.in(dout, nq), s.in(probs, np), s.in(q, nq), s.in(k, nkv), s.in(v, nkv)];
    const ds = s.reserve(np * 4);
    const dimArgs = [g.Tq, g.Tk, g.H, g.Hkv, g.D, g.qOffset, g.keyStart, g.kvStride];
    const rows = this.balancedShares(g.H * g.Tq, (u) => queryRowKeys(g, u % g.Tq), 4 * g.D);
    this.pool.run('attentionBackwardQ', rows.map(([u0, u1]) => [pdq, ds, pdo, pp, pk, pv, ...dimArgs, u0, u1]));
    // Units of part 2: blocks of KV_BLOCK key rows of one kv head (assembly/attention.ts).
    const blocks = Math.ceil(g.Tk / KV_BLOCK);
    const blockQueries = (b: number) => {
      let n = 0;
      for (let j = b * KV_BLOCK; j < Math.min(g.Tk, (b + 1) * KV_BLOCK); j++) n += keyRowQueries(g, j);
      return n;
    };
    const keys = this.balancedShares(g.Hkv * blocks, (u) => blockQueries(u % blocks) * g.group, 4 * g.D);
    this.pool.run('attentionBackwardKV', keys.map(([u0, u1]) => [pdk, pdv, ds, pp, pq, pdo, ...dimArgs, u0, u1]));
    s.finish();
  }

  /**
   * Splits units [0, n) into contiguous ranges of about equal cost (cost(u) + 1 each, the +1 for
   * a unit's fixed work), as many as `flopsPerCost` · total cost pays for.
   */
  private balancedShares(n: number, cost: (u: number) => number, flopsPerCost: number): [number, number][] {
    if (n === 0) return [];
    let total = 0;
    for (let u = 0; u < n; u++) total += cost(u) + 1;
    const parts = this.split(n, total * flopsPerCost).length;
    const out: [number, number][] = [];
    let start = 0;
    let acc = 0;
    for (let u = 0; u < n && out.length < parts - 1; u++) {
      acc += cost(u) + 1;
      if (acc >= (total * (out.length + 1)) / parts) {
        out.push([start, u + 1]);
        start = u + 1;
      }
    }
    out.push([start, n]);
    return out;
  }

  // ---- loss and optimiser -------------------------------------------------------------------

  crossEntropyForward(losses: Float32Array, logits: Float32Array, targets: Int32Array, T: number, V: number, ignoreIndex: number): { sum: number; count: number } {
    checkCrossEntropy('crossEntropyForward', logits, targets, T, V, ignoreIndex);
    requireLength('crossEntropyForward', 'losses', losses, T);
    const s = new Staging(this.heap);
    const pl = s.out(losses, T, false);
    const [px, pt] = [s.in(logits, T * V), s.in(targets, T)];
    this.pool.run('crossEntropyForwardRows', this.split(T, COST.exp * T * V).map(([a, b]) => [pl, px, pt, a, b, V, ignoreIndex]));
    s.finish();
    let sum = 0;
    let count = 0;
    for (let t = 0; t < T; t++) {
      if (targets[t] === ignoreIndex) continue;
      sum += losses[t];
      count++;
    }
    return { sum, count };
  }

  crossEntropyBackward(dlogits: Float32Array, logits: Float32Array, targets: Int32Array, T: number, V: number, ignoreIndex: number, scale: number): void {
    checkCrossEntropy('crossEntropyBackward', logits, targets, T, V, ignoreIndex);
    requireLength('crossEntropyBackward', 'dlogits', dlogits, T * V);
    const s = new Staging(this.heap);
    const pd = s.out(dlogits, T * V, false);
    const [px, pt] = [s.in(logits, T * V), s.in(targets, T)];
    this.pool.run('crossEntropyBackwardRows', this.split(T, 2 * COST.exp * T * V).map(([a, b]) => [pd, px, pt, a, b, V, ignoreIndex, scale]));
    s.finish();
  }

  sumSquares(x: Float32Array, n: number): number {
    checkBuffers('sumSquares', { n }, [['x', x, n]]);
    const s = new Staging(this.heap);
    const px = s.in(x, n);
    const shares = this.split(n, COST.elementwise * n, 4);
    const partial = s.reserve(shares.length * 8);
    this.pool.run('sumSquaresRange', shares.map(([a, b], t) => [px, a, b, partial + t * 8]));
    let total = 0;
    for (const p of new Float64Array(this.heap.buffer, partial, shares.length)) total += p;
    s.finish();
    return total;
  }

  scale(x: Float32Array, n: number, sc: number): void {
    checkBuffers('scale', { n }, [['x', x, n]]);
    const s = new Staging(this.heap);
    const px = s.out(x, n, true);
    this.pool.run('scaleRange', this.split(n, COST.elementwise * n, 4).map(([a, b]) => [px, a, b, sc]));
    s.finish();
  }

  add(out: Float32Array, a: Float32Array, b: Float32Array, n: number): void {
    checkBuffers('add', { n }, [['out', out, n], ['a', a, n], ['b', b, n]]);
    const s = new Staging(this.heap);
    const po = s.out(out, n, out === a || out === b);
    const [pa, pb] = [out === a ? po : s.in(a, n), out === b ? po : s.in(b, n)];
    this.pool.run('addRange', this.split(n, COST.elementwise * n, 4).map(([i0, i1]) => [po, pa, pb, i0, i1]));
    s.finish();
  }

  adamwStep(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, n: number, lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, t: number): void {
    checkBuffers('adamwStep', { n }, [['p', p, n], ['g', g, n], ['m', m, n], ['v', v, n]]);
    if (!Number.isInteger(t) || t < 1) throw new ShapeError('adamwStep: step number must be an integer >= 1', { field: 't', expected: '>= 1', got: String(t) });
    const s = new Staging(this.heap);
    const [pp, pm, pv] = [s.out(p, n, true), s.out(m, n, true), s.out(v, n, true)];
    const pg = s.in(g, n);
    const decay = 1 - lr * weightDecay;
    const stepSize = lr / (1 - Math.pow(beta1, t));
    const bc2Sqrt = Math.sqrt(1 - Math.pow(beta2, t));
    this.pool.run('adamwRange', this.split(n, COST.norm * n, 4).map(([a, b]) => [pp, pg, pm, pv, a, b, 1 - beta1, beta2, 1 - beta2, eps, decay, stepSize, bc2Sqrt]));
    s.finish();
  }

  // ---- warm-up ------------------------------------------------------------------------------

  /** One round of every kernel above in every thread (each on its own small buffers). */
  warmUp(bufs: readonly WarmBuffers[], rep: number): void {
    const all = (f: (u: WarmBuffers) => number[]) => bufs.map(f);
    const x = (u: WarmBuffers, floats: number) => u.x + floats * 4;
    this.pool.run('rmsnormForwardRows', all((u) => [u.c, u.am, u.a, u.b, 0, 8, 64, 1e-5]));
    this.pool.run('rmsnormBackwardDx', all((u) => [u.c, u.a, u.a, u.b, u.am, 0, 8, 64]));
    this.pool.run('rmsnormBackwardDw', all((u) => [u.b, u.a, u.a, u.am, 8, 64, 0, 64]));
    this.pool.run('ropeRows', all((u) => [u.c, u.pos, u.b, u.b, 0, 8, 1, 64, rep & 1, 64]));
    this.pool.run('siluMulForward', all((u) => [u.c, u.a, u.b, 0, 640]));
    this.pool.run('siluMulBackward', all((u) => [u.c, x(u, 0), u.a, u.a, u.b, 0, 640]));
    this.pool.run('softmaxRows', all((u) => [u.c, 0, 8, 64]));
    this.pool.run('attentionForwardRows', all((u) => [u.c, x(u, 1024), u.a, u.b, u.b, 8, 8, 1, 1, 64, 0, 0, 64, 0, 8]));
    this.pool.run('attentionForwardInfer', all((u) => [u.c, u.a, u.b, u.b, 8, 8, 1, 1, 64, 0, 0, 64, 0, 1, x(u, 0)]));
    this.pool.run('attentionForwardDecode', all((u) => [u.c, 0, u.a, u.b, u.b, 1, 8, 1, 1, 64, 7, 0, 64, 1, 0, 1, x(u, 0)]));
    this.pool.run('attentionBackwardQ', all((u) => [u.c, x(u, 0), u.a, x(u, 1024), u.b, u.b, 8, 8, 1, 1, 64, 0, 0, 64, 0, 8]));
    this.pool.run('attentionBackwardKV', all((u) => [x(u, 2048), x(u, 2560), x(u, 0), x(u, 1024), u.a, u.a, 8, 8, 1, 1, 64, 0, 0, 64, 0, 8]));
    this.pool.run('crossEntropyForwardRows', all((u) => [u.am, u.a, u.pos, 0, 8, 64, -100]));
    this.pool.run('crossEntropyBackwardRows', all((u) => [u.c, u.a, u.pos, 0, 8, 64, -100, 0.125]));
    this.pool.run('sumSquaresRange', all((u) => [u.a, 0, 512, u.am]));
    this.pool.run('scaleRange', all((u) => [u.c, 0, 640, 0.5]));
    this.pool.run('addRange', all((u) => [u.c, u.c, u.a, 0, 640]));
    this.pool.run('adamwRange', all((u) => [x(u, 3072), u.a, x(u, 3328), x(u, 3584), 0, 256, 0.1, 0.999, 0.001, 1e-8, 1, 1e-3, 0.5]));
  }
}
