// WasmKernels: the fast backend. AssemblyScript SIMD kernels (assembly/) run on a worker-thread
// pool (pool.ts) over one shared WebAssembly.Memory (memory.ts); 4-bit weights are made resident
// on first use (q4cache.ts). Arguments are checked with the same functions as the ref backend
// (ref/check.ts), then the work is split by output rows or columns when it pays.
// The non-matmul kernels (norm, rope, activations, attention, loss, optimiser) are dispatched by
// layers.ts; embedding lookup/scatter run the reference implementation on the same buffers.
// Not here: module loading (module.ts), kernel arithmetic (assembly/), backend choice (../index.ts).

import { ShapeError } from '../../errors.js';
import { FP4_MIDPOINTS_SORTED, FP4_SORTED_INDEX_TO_CODE, NF4_MIDPOINTS } from '../../quant/codebooks.js';
import type { Quant4Weight } from '../../quant/types.js';
import type { AttentionDims, Int16Weight, Kernels } from '../kernels.js';
import { RefKernels, activationsName } from '../ref/index.js';
import { int8ActivationsApply } from '../ref/matmul-int8.js';
import { INT16_BLOCK, INT16_MIN_ROWS, int16Apply } from '../ref/matmul-int16.js';
import { checkBuffers, checkPackInt16, checkQuant4, checkQuant4Many, requireDims, requireLength } from '../ref/check.js';
import { LAYER_KERNEL_NAMES, LayerKernels } from './layers.js';
import { WasmHeap, Staging } from './memory.js';
import { variantSummary, type KernelModule } from './module.js';
import { ThreadPool } from './pool.js';
import { wasmApi } from './wasm-api.js';
import { Q4Cache } from './q4cache.js';

/** Exports of assembly/index.ts the pool may call (worker function table, by index). */
const KERNEL_NAMES = [
  'zeroBytes', 'gemmF32', 'gemvF32', 'gemvQ4', 'gemvQ4Many', 'q4DequantizeRows', 'quantizeBlockwise4',
  'gemmI8Prepare', 'gemmI8Run', 'gemvI8Q4Many', 'gemmI16Prepare', 'gemmI16Run',
  ...LAYER_KERNEL_NAMES,
];

/** B-operand kinds of gemmF32 (assembly/gemm.ts). */
const enum BKind { F32T = 0, F32N = 1, Q4T = 2, Q4N = 3 }

/** Flops one thread must get before a task is split (~100 us at ~40 GFLOPS; dispatch costs ~15 us). */
const MIN_FLOPS_PER_THREAD = 4e6;
/**
 * Largest M that takes the GEMV path (decoding, small batches) instead of the packed GEMM: GEMV
 * reads each weight row once and dots it with every x row, GEMM pays a full pass to pack B. Measured
 * crossovers on 4096x4096 (CPU time, 1 thread): f32 ~M=6, NF4 ~M=12-16 (packing decodes everything).
 */
const GEMV_MAX_M_F32 = 4;
const GEMV_MAX_M_Q4 = 8;
/** Largest M of the int8-activation GEMV; from M = 3 the int8 GEMM is faster (576x576: 45 vs 55 us at M = 3, 87 vs 132 at M = 8). */
const GEMV_MAX_M_INT8 = 2;
/** GEMV is memory/decode bound (~5x fewer flops per second than GEMM): its flops weigh 5x when splitting. */
const GEMV_FLOP_WEIGHT = 5;
/**
 * Splitting GEMVs (decoding) adapts to the measured hand-off lag of the pool (ThreadPool.handoffLagUs):
 * a thread must get at least ~25 us of work and at least GEMV_LAG_FACTOR times the lag, so splits
 * are fine-grained while workers spin on free cores and stop when other load takes the cores.
 */
const MIN_GEMV_FLOPS_PER_THREAD = 1e6;
/** Weighted flops per us of one thread (MIN_FLOPS_PER_THREAD is ~100 us). */
const FLOPS_PER_US = MIN_FLOPS_PER_THREAD / 100;
const GEMV_LAG_FACTOR = 2;
/** While lag forbids a split, every this many GEMVs is split anyway to measure the lag again. */
const GEMV_PROBE_INTERVAL = 64;
/** Most weights one matmulXWtQ4Many task takes (size of its {descriptor, y} table). */
const MANY_MAX_WEIGHTS = 16;
/**
 * Elements per staging round of the 4-bit quantize/dequantize kernels when an array is not in wasm
 * memory: one area of this size is reused round after round (small enough to stay in cache between
 * the copy and the kernel, large enough, ~1 ms per thread, to amortise the dispatch).
 */
const STAGING_CHUNK_ELEMENTS = 1 << 20;
/** assembly/quant.ts table: bytes, and the grid of its one-compare path (same constants there). */
const QUANT_TABLE_BYTES = 256;
const QUANT_GRID_BUCKETS = 32;
const QUANT_GRID_SCALE = 15;
const QUANT_GRID_MAGIC = 12582927; // 1.5·2^23 + 15
const QUANT_GRID_MAGIC_BASE = 12582912; // 1.5·2^23
/** Default byte budget of resident 4-bit weights (q4cache.ts); the rest of 4 GiB is for tensors. */
export const DEFAULT_RESIDENT_WEIGHT_BYTES = 2 * 2 ** 30;

export interface WasmKernelsOptions {
  readonly threads: number;
  readonly residentWeightBytes?: number;
  /**
   * X·Wᵀ of 4-bit weights with int8 activations, decoding and prompt processing alike
   * (assembly/gemv-i8.ts, gemm-i8.ts; error documented in ref/matmul-int8.ts). Default false: exact f32.
   */
  readonly int8Activations?: boolean;
  /**
   * The frozen 4-bit matmuls of training (X·Wᵀ and dY·W) with 13-bit integer operands
   * (assembly/gemm-i16.ts; arithmetic and error in ref/matmul-int16.ts). Default false: exact f32.
   */
  readonly int16Activations?: boolean;
}

/** n rounded up to a whole number of cache lines. */
const align64 = (n: number): number => Math.ceil(n / 64) * 64;

/** packInt16's weight: the forward (w) and input-gradient (wᵀ) panels in one heap block. */
interface WasmInt16Weight extends Int16Weight {
  readonly fwd: number;
  readonly dx: number;
  readonly owner: WasmKernels;
  live: boolean;
}

/** A [m0, m1, n0, n1) share of an output. */
type Share = [number, number, number, number];

/**
 * Most packed panel bytes one int8 GEMM round holds (bigger weight groups go in rounds of panels:
 * ~960 columns of a 4096-wide weight, two dispatches per round, well under 1% at prompt sizes).
 */
const INT8_PACKED_MAX_BYTES = 4 * 2 ** 20;
/** Rows of the int16 GEMM's activation tiles (assembly/gemm-i16.ts TILE_ROWS). */
const INT16_TILE_ROWS = 4;

/** [0, n) in exactly `parts` contiguous shares of whole units (trailing ones empty when n is small). */
function evenShares(n: number, parts: number, unit: number): [number, number][] {
  const units = Math.ceil(n / unit);
  return Array.from({ length: parts }, (_, p): [number, number] => [
    Math.min(n, Math.round((units * p) / parts) * unit),
    Math.min(n, Math.round((units * (p + 1)) / parts) * unit),
  ]);
}

export class WasmKernels implements Kernels {
  readonly name = 'wasm' as const;
  readonly threads: number;
  readonly variant: KernelModule['variant'];
  private readonly heap: WasmHeap;
  private readonly pool: ThreadPool;
  private readonly q4: Q4Cache;
  private readonly ref = new RefKernels();
  private readonly layers: LayerKernels;
  private readonly allocated = new WeakSet<Float32Array>();
  /** Per-thread GEMM scratch (packed panels + decoded row), thread t at scratch[t]. */
  private readonly scratch: number[];
  private readonly scratchFloats: number;
  private readonly scratchBytes: number;
  readonly int8Activations: boolean;
  readonly int16Activations: boolean;

  get description(): string {
    return `wasm ${this.variant} (${variantSummary(this.variant)}), ${this.threads} thread${this.threads === 1 ? '' : 's'}, ${activationsName(this)} activations`;
  }
  /** Quantized activations of the int8 path (grown on demand): codes, scales, corrections. */
  private int8Area = { off: 0, bytes: 0 };
  /** The int16 path's f32 weight, activation tiles, scales and packed panels (grown on demand). */
  private int16Area = { off: 0, bytes: 0 };
  /** GEMV splits refused for lag since the last probe, and the probe in progress (gemvRowsOf). */
  private gemvRefusals = 0;
  private gemvProbe: 'none' | 'first' | 'again' | 'last' = 'none';
  /** {u32 descriptor, u32 y} pairs of a gemvQ4Many task (one table: calls are synchronous). */
  private readonly manyTable: Uint32Array;
  /** 80-byte quantizer tables (assembly/quant.ts) per type. */
  private readonly quantTables: Record<'nf4' | 'fp4', number>;

  private constructor(mod: KernelModule, heap: WasmHeap, pool: ThreadPool, opts: WasmKernelsOptions) {
    this.variant = mod.variant;
    this.heap = heap;
    this.pool = pool;
    this.threads = pool.threads;
    this.q4 = new Q4Cache(heap, opts.residentWeightBytes ?? DEFAULT_RESIDENT_WEIGHT_BYTES);
    this.layers = new LayerKernels(heap, pool, (n, flops, unit) => this.rowsOf(n, flops, unit));
    const scratchBytes = Math.max(pool.exports.gemmScratchBytes(), pool.exports.gemmI8ScratchBytes(), pool.exports.gemmI16ScratchBytes());
    this.scratchBytes = scratchBytes;
    this.int8Activations = opts.int8Activations === true;
    this.int16Activations = opts.int16Activations === true && !this.int8Activations;
    this.scratchFloats = pool.exports.gemmPanelFloats(); // the packed-panel area doubles as a GEMV row
    this.scratch = Array.from({ length: this.threads }, () => heap.alloc(scratchBytes));
    // A view made now stays valid after growth: a shared memory's bytes never move.
    this.manyTable = new Uint32Array(heap.buffer, heap.alloc(MANY_MAX_WEIGHTS * 8), MANY_MAX_WEIGHTS * 2);
    this.quantTables = { nf4: this.quantTable(NF4_MIDPOINTS, null), fp4: this.quantTable(FP4_MIDPOINTS_SORTED, FP4_SORTED_INDEX_TO_CODE) };
  }

  /** Builds the memory and the pool and warms every kernel in every thread. */
  static async create(mod: KernelModule, opts: WasmKernelsOptions): Promise<WasmKernels> {
    const memory = new wasmApi!.Memory({ initial: 64, maximum: 65536, shared: true });
    const pool = await ThreadPool.create(mod.module, memory, KERNEL_NAMES, Math.max(1, Math.floor(opts.threads)));
    const zero = pool.exports.zeroBytes;
    const heap = new WasmHeap(memory, pool.exports.heapBase(), (off, bytes) => zero(off, bytes));
    const k = new WasmKernels(mod, heap, pool, opts);
    k.warmUp();
    return k;
  }

  /**
   * The quantizer table of assembly/quant.ts (layout in its header): midpoints, position -> code
   * map and, when every bucket of its grid holds at most one midpoint and the map is the identity
   * (NF4), the grid tables of the kernel's one-compare path.
   */
  private quantTable(midpoints: Float32Array, codeMap: Uint8Array | null): number {
    const off = this.heap.alloc(QUANT_TABLE_BYTES);
    this.heap.f32(off, 15).set(midpoints);
    const map = this.heap.u8(off + 64, 16);
    for (let i = 0; i < 16; i++) map[i] = codeMap === null ? i : codeMap[i];
    // The kernel's bucket of a scaled value s, with its two f32 roundings.
    const bucket = (s: number): number => Math.fround(Math.fround(s * QUANT_GRID_SCALE) + QUANT_GRID_MAGIC) - QUANT_GRID_MAGIC_BASE;
    const buckets = Array.from(midpoints, bucket);
    if (codeMap === null && buckets.every((u, i) => u >= 0 && u < QUANT_GRID_BUCKETS && (i === 0 || u > buckets[i - 1]))) {
      const below = this.heap.u8(off + 80, QUANT_GRID_BUCKETS);
      const mids = new Float32Array(QUANT_GRID_BUCKETS).fill(Infinity); // +Inf: no midpoint, s > it never holds
      for (let u = 0; u < QUANT_GRID_BUCKETS; u++) below[u] = buckets.filter((v) => v < u).length;
      buckets.forEach((u, i) => (mids[u] = midpoints[i]));
      const bytes = new Uint8Array(mids.buffer);
      const planes = this.heap.u8(off + 112, 4 * QUANT_GRID_BUCKETS);
      for (let u = 0; u < QUANT_GRID_BUCKETS; u++) for (let p = 0; p < 4; p++) planes[p * QUANT_GRID_BUCKETS + u] = bytes[4 * u + p];
      new Int32Array(this.heap.buffer, off + 240, 1)[0] = 1;
    }
    return off;
  }

  // ---- memory -----------------------------------------------------------------------------------

  allocF32(n: number): Float32Array {
    requireDims('allocF32', { n });
    const off = this.heap.alloc(n * 4);
    const buf = this.heap.f32(off, n);
    this.allocated.add(buf);
    return buf;
  }

  free(buf: Float32Array): void {
    if (!this.allocated.delete(buf)) {
      throw new ShapeError('free: buffer was not allocated by this backend (or was already freed)', { expected: 'a buffer from allocF32', got: `Float32Array(${buf.length})` });
    }
    this.heap.free(buf.byteOffset);
  }

  async dispose(): Promise<void> {
    await this.pool.dispose();
  }

  get residentWeightBytes(): number {
    return this.q4.budgetBytes;
  }

  setResidentWeightBytes(bytes: number): void {
    this.q4.setBudget(bytes);
  }

  /** Bytes held by the allocator (tests watch it stay flat). */
  get heapUsedBytes(): number {
    return this.heap.usedBytes;
  }

  // ---- matmuls ----------------------------------------------------------------------------------

  matmulXWt(y: Float32Array, x: Float32Array, w: Float32Array, M: number, K: number, N: number, accumulate: boolean): void {
    checkBuffers('matmulXWt', { M, K, N }, [['y', y, M * N], ['x', x, M * K], ['w', w, N * K]]);
    const s = new Staging(this.heap);
    const py = s.out(y, M * N, accumulate);
    const px = s.in(x, M * K);
    const pw = s.in(w, N * K);
    if (M <= GEMV_MAX_M_F32) {
      this.runGemv('gemvF32', this.gemvRowsOf(N, M * N * K * 2 * GEMV_FLOP_WEIGHT).map(([n0, n1]) => [py, N, px, pw, M, K, n0, n1, +accumulate]));
    } else {
      this.gemm(py, N, px, K * 4, 4, BKind.F32T, pw, K, M, N, K, accumulate);
    }
    s.finish();
  }

  matmulDyW(dx: Float32Array, dy: Float32Array, w: Float32Array, M: number, N: number, K: number, accumulate: boolean): void {
    checkBuffers('matmulDyW', { M, K, N }, [['dx', dx, M * K], ['dy', dy, M * N], ['w', w, N * K]]);
    const s = new Staging(this.heap);
    const pdx = s.out(dx, M * K, accumulate);
    const pdy = s.in(dy, M * N);
    const pw = s.in(w, N * K);
    this.gemm(pdx, K, pdy, N * 4, 4, BKind.F32N, pw, K, M, K, N, accumulate);
    s.finish();
  }

  matmulDytX(dw: Float32Array, dy: Float32Array, x: Float32Array, M: number, N: number, K: number, accumulate: boolean): void {
    checkBuffers('matmulDytX', { M, K, N }, [['dw', dw, N * K], ['dy', dy, M * N], ['x', x, M * K]]);
    const s = new Staging(this.heap);
    const pdw = s.out(dw, N * K, accumulate);
    const pdy = s.in(dy, M * N);
    const px = s.in(x, M * K);
    // dw[n, k] = Σ_m dy[m, n]·x[m, k]: A(i=n, k=m) = dy[m·N + n].
    this.gemm(pdw, K, pdy, 4, N * 4, BKind.F32N, px, K, N, K, M, accumulate);
    s.finish();
  }

  matmulXWtQ4(y: Float32Array, x: Float32Array, w: Quant4Weight, M: number, accumulate: boolean): void {
    checkQuant4('matmulXWtQ4', w);
    const N = w.rows;
    const K = w.cols;
    checkBuffers('matmulXWtQ4', { M }, [['y', y, M * N], ['x', x, M * K]]);
    const d = this.q4.descriptor(w, 'matmulXWtQ4');
    const s = new Staging(this.heap);
    const py = s.out(y, M * N, accumulate);
    const px = s.in(x, M * K);
    const int8 = this.int8Activations && int8ActivationsApply(w, M);
    if (this.int16Activations && int16Apply(w, 'forward', M)) {
      this.gemmInt16(py, px, M, K, d, w, K, 1, N, accumulate);
    } else if (int8 && this.gemvInt8Fits([w], M)) {
      this.gemvInt8([d], [py], px, M, K, N, accumulate);
    } else if (int8) {
      this.gemmInt8([py], px, [d], [w], M, accumulate);
    } else if (M <= GEMV_MAX_M_Q4 && K <= this.scratchFloats) {
      this.runGemv('gemvQ4', this.gemvRowsOf(N, M * N * K * 2 * GEMV_FLOP_WEIGHT).map(([n0, n1], t) => [py, N, px, d, M, n0, n1, +accumulate, this.scratch[t]]));
    } else {
      this.gemm(py, N, px, K * 4, 4, BKind.Q4T, d, 0, M, N, K, accumulate);
    }
    s.finish();
  }

  /**
   * The int8-activation X·Wᵀ (assembly/gemm-i8.ts) of one weight or of weights sharing x (q/k/v,
   * gate/up: x quantized once). Two pool tasks: quantize x (by 3-row tiles) and pack the weights'
   * 8-column panels once into one shared area (by panels), then the product split by panels
   * (columns) or rows. Weights whose packed panels exceed INT8_PACKED_MAX_BYTES go in rounds of
   * panels.
   */
  private gemmInt8(pys: readonly number[], px: number, descs: readonly number[], ws: readonly Quant4Weight[], M: number, accumulate: boolean): void {
    const K = ws[0].cols;
    const bs = ws[0].blockSize;
    const nb = K / bs;
    const panelBytes = this.pool.exports.gemmI8PanelBytes(K, bs);
    const panels = ws.reduce((n, w) => n + Math.ceil(w.rows / 8), 0);
    const perRound = Math.max(1, Math.floor(INT8_PACKED_MAX_BYTES / panelBytes));
    const rounds = Math.ceil(panels / perRound);
    const roundPanels = 2 * Math.ceil(panels / rounds / 2);
    const codeBytes = Math.ceil((M * K) / 64) * 64;
    const scaleBytes = Math.ceil((M * nb * 4) / 64) * 64;
    const tileBytes = Math.ceil((Math.ceil(M / 3) * 3 * K) / 64) * 64;
    const need = codeBytes + tileBytes + 2 * scaleBytes + roundPanels * panelBytes;
    if (this.int8Area.bytes < need) {
      if (this.int8Area.bytes > 0) this.heap.free(this.int8Area.off);
      this.int8Area = { off: this.heap.alloc(need), bytes: need };
    }
    const q = this.int8Area.off;
    const qt = q + codeBytes;
    const sa = qt + tileBytes;
    const sums = sa + scaleBytes;
    const packed = sums + scaleBytes;
    const table = this.fillManyTable(descs, pys);
    const count = descs.length;
    const macs = ws.reduce((n, w) => n + M * w.rows * K, 0);
    const parts = this.rowsOf(this.threads, 2 * macs).length;
    const rowTiles = Math.ceil(M / 3);
    for (let r0 = 0; r0 < panels; r0 += roundPanels) {
      const r1 = Math.min(panels, r0 + roundPanels);
      const rowShares = r0 === 0 ? evenShares(M, parts, 3) : evenShares(0, parts, 3);
      const panelShares = evenShares(r1 - r0, parts, 1);
      this.pool.run('gemmI8Prepare', rowShares.map(([m0, m1], t) => [table, count, px, q, qt, sa, sums, m0, m1, r0 + panelShares[t][0], r0 + panelShares[t][1], packed, r0, this.scratch[t]]));
      // By columns in pairs of panels: 64 output bytes, so threads share no cache line of a row
      // (when the weight's first panel is even in the numbering: q/k/v, gate/up).
      const byCols = r1 - r0 >= rowTiles || r1 - r0 >= 4 * parts;
      const shares: Share[] = byCols
        ? evenShares(r1 - r0, parts, 2).map(([a, b]): Share => [0, M, r0 + a, r0 + b])
        : evenShares(M, parts, 3).map(([a, b]): Share => [a, b, r0, r1]);
      this.pool.run('gemmI8Run', shares.map(([m0, m1, p0, p1], t) => [table, count, qt, sa, sums, m0, m1, p0, p1, +accumulate, packed, r0, this.scratch[t]]));
    }
  }

  matmulXWtQ4Many(ys: readonly Float32Array[], x: Float32Array, ws: readonly Quant4Weight[], M: number, accumulate: boolean): void {
    checkQuant4Many('matmulXWtQ4Many', ys, x, ws, M);
    const count = ws.length;
    if (count === 0) return;
    if (this.int16Activations && M >= INT16_MIN_ROWS) {
      // The int16 GEMM quantizes x per call (a 1/N share of its work): one call per weight.
      for (let i = 0; i < count; i++) this.matmulXWtQ4(ys[i], x, ws[i], M, accumulate);
      return;
    }
    const K = ws[0].cols;
    // One task over the group only where every weight takes the same path as it would alone (each
    // ys[i] is what matmulXWtQ4 gives): with int8 activations the GEMV (small M) or one GEMM with x
    // quantized once (same block size), else the exact GEMV.
    const int8 = ws.map((w) => this.int8Activations && int8ActivationsApply(w, M));
    const int8Gemv = int8.every(Boolean) && this.gemvInt8Fits(ws, M);
    const int8Gemm = !int8Gemv && int8.every(Boolean) && ws.every((w) => w.blockSize === ws[0].blockSize);
    const exactGemv = !int8.some(Boolean) && M <= GEMV_MAX_M_Q4 && K <= this.scratchFloats;
    if (count === 1 || count > MANY_MAX_WEIGHTS || !(int8Gemv || int8Gemm || exactGemv)) {
      for (let i = 0; i < count; i++) this.matmulXWtQ4(ys[i], x, ws[i], M, accumulate);
      return;
    }
    const descs = ws.map((w) => this.q4.descriptor(w, 'matmulXWtQ4Many'));
    // Weights together larger than the resident budget evict each other: then one call each.
    if (!ws.every((w, i) => this.q4.isResident(w, descs[i]))) {
      for (let i = 0; i < count; i++) this.matmulXWtQ4(ys[i], x, ws[i], M, accumulate);
      return;
    }
    const s = new Staging(this.heap);
    const px = s.in(x, M * K);
    const pys = ys.map((y, i) => s.out(y, M * ws[i].rows, accumulate));
    const rows = ws.reduce((n, w) => n + w.rows, 0);
    if (int8Gemv) {
      this.gemvInt8(descs, pys, px, M, K, rows, accumulate);
    } else if (int8Gemm) {
      this.gemmInt8(pys, px, descs, ws, M, accumulate);
    } else {
      const table = this.fillManyTable(descs, pys);
      this.runGemv('gemvQ4Many', this.gemvRowsOf(rows, M * rows * K * 2 * GEMV_FLOP_WEIGHT).map(([r0, r1], t) => [table, count, px, M, r0, r1, +accumulate, this.scratch[t]]));
    }
    s.finish();
  }

  /** {descriptor, y} pairs into the table a many-weights GEMV task reads; its byte address. */
  private fillManyTable(descs: readonly number[], ys: readonly number[]): number {
    for (let i = 0; i < descs.length; i++) {
      this.manyTable[2 * i] = descs[i];
      this.manyTable[2 * i + 1] = ys[i];
    }
    return this.manyTable.byteOffset;
  }

  /**
   * Whether the int8-activation GEMV (assembly/gemv-i8.ts) serves weights the int8 path applies to
   * (the caller checked int8ActivationsApply) at this M: small M, a table entry each, scratch room.
   */
  private gemvInt8Fits(ws: readonly Quant4Weight[], M: number): boolean {
    if (M > GEMV_MAX_M_INT8 || ws.length > MANY_MAX_WEIGHTS) return false;
    const K = ws[0].cols;
    return ws.every((w) => this.scratchBytes >= this.pool.exports.gemvI8ScratchBytes(M, K, w.blockSize));
  }

  /** The int8-activation GEMV over weights sharing x (one or a q/k/v or gate/up group), split by rows. */
  private gemvInt8(descs: readonly number[], pys: readonly number[], px: number, M: number, K: number, rows: number, accumulate: boolean): void {
    const table = this.fillManyTable(descs, pys);
    // Integer dot products run ~3x the rate of the f32 GEMV's decode + FMA: weigh the split so.
    this.runGemv('gemvI8Q4Many', this.gemvRowsOf(rows, (M * rows * K * 2 * GEMV_FLOP_WEIGHT) / 3).map(([r0, r1], t) => [table, descs.length, px, M, r0, r1, +accumulate, this.scratch[t]]));
  }

  matmulDyWQ4(dx: Float32Array, dy: Float32Array, w: Quant4Weight, M: number, accumulate: boolean): void {
    checkQuant4('matmulDyWQ4', w);
    const N = w.rows;
    const K = w.cols;
    checkBuffers('matmulDyWQ4', { M }, [['dx', dx, M * K], ['dy', dy, M * N]]);
    const d = this.q4.descriptor(w, 'matmulDyWQ4');
    const s = new Staging(this.heap);
    const pdx = s.out(dx, M * K, accumulate);
    const pdy = s.in(dy, M * N);
    if (this.int16Activations && int16Apply(w, 'input-grad', M)) this.gemmInt16(pdx, pdy, M, N, d, w, 1, K, K, accumulate);
    else this.gemm(pdx, K, pdy, N * 4, 4, BKind.Q4N, d, 0, M, K, N, accumulate);
    s.finish();
  }

  /**
   * The int16 product (assembly/gemm-i16.ts) c[M, Nout] (+)= a[M, Kc]·Bᵀ, B(j, t) = W[j·sj + t·st]
   * of the 4-bit weight w (descriptor d) dequantized once into f32. Three pool tasks: dequantize
   * (by weight rows), quantize a and pack B's panels (by 4-row tiles and by panels), then the
   * product (int16Run).
   */
  private gemmInt16(pc: number, pa: number, M: number, Kc: number, d: number, w: Quant4Weight, sj: number, st: number, Nout: number, accumulate: boolean): void {
    const panels = Math.ceil(Nout / 8);
    const fBytes = align64(w.rows * w.cols * 4);
    const rowBytes = this.int16RowBytes(M, Kc);
    const F = this.int16Scratch(fBytes + rowBytes + panels * this.pool.exports.gemmI16PanelBytes(Kc));
    const qt = F + fBytes;
    const packed = qt + rowBytes;
    this.pool.run('q4DequantizeRows', this.rowsOf(w.rows, w.rows * w.cols * 4).map(([a, b]) => [d, a, b, F + a * w.cols * 4]));
    this.int16Prepare(pa, M, Kc, qt, F, sj, st, Nout, panels, packed);
    this.int16Run(pc, M, Nout, Kc, qt, packed, accumulate);
  }

  /** Bytes of a's tiles and block scales for M rows over Kc (tiles first, scales after). */
  private int16RowBytes(M: number, Kc: number): number {
    return this.int16ScalesOffset(M, Kc) + align64(M * Math.ceil(Kc / INT16_BLOCK) * 4);
  }

  /** Where the block scales start after the tiles at qt (int16RowBytes' layout). */
  private int16ScalesOffset(M: number, Kc: number): number {
    return align64(this.pool.exports.gemmI16TileBytes(M, Kc));
  }

  /** The int16 scratch area of at least `bytes` (grown on demand; one call uses it at a time). */
  private int16Scratch(bytes: number): number {
    if (this.int16Area.bytes < bytes) {
      if (this.int16Area.bytes > 0) this.heap.free(this.int16Area.off);
      this.int16Area = { off: this.heap.alloc(bytes), bytes };
    }
    return this.int16Area.off;
  }

  /**
   * gemmI16Prepare over the threads: rows of a [M, Kc] into tiles at qt (scales after them, as
   * int16RowBytes lays out), and `panels` panels of B (B(j, t) = F[j·sj + t·st], Nout columns) into packed.
   */
  private int16Prepare(pa: number, M: number, Kc: number, qt: number, F: number, sj: number, st: number, Nout: number, panels: number, packed: number): void {
    const sa = qt + this.int16ScalesOffset(M, Kc);
    const parts = this.rowsOf(this.threads, 2 * (M + 8) * Nout * Kc).length;
    const rowShares = evenShares(M, parts, INT16_TILE_ROWS);
    const panelShares = evenShares(panels, parts, 1);
    this.pool.run('gemmI16Prepare', rowShares.map(([m0, m1], t) => [pa, Kc, m0, m1, qt, sa, F, sj, st, Nout, panelShares[t][0], panelShares[t][1], packed, this.scratch[t]]));
  }

  /**
   * gemmI16Run over the threads: c[M, Nout] (+)= from the tiles at qt and the panels at packed,
   * split by panel pairs (columns: no shared cache line of a row) or by 4-row tiles.
   */
  private int16Run(pc: number, M: number, Nout: number, Kc: number, qt: number, packed: number, accumulate: boolean): void {
    const sa = qt + this.int16ScalesOffset(M, Kc);
    const panels = Math.ceil(Nout / 8);
    const parts = this.rowsOf(this.threads, 2 * M * Nout * Kc).length;
    const byCols = panels >= Math.ceil(M / INT16_TILE_ROWS) || panels >= 4 * parts;
    const shares: Share[] = byCols
      ? evenShares(panels, parts, 2).map(([a, b]): Share => [0, M, a, b])
      : evenShares(M, parts, INT16_TILE_ROWS).map(([a, b]): Share => [a, b, 0, panels]);
    this.pool.run('gemmI16Run', shares.map(([m0, m1, p0, p1], t) => [pc, M, Nout, Kc, qt, sa, packed, m0, m1, p0, p1, +accumulate, this.scratch[t]]));
  }

  packInt16(w: Float32Array, N: number, K: number): Int16Weight {
    checkPackInt16(w, N, K);
    const fwdBytes = Math.ceil(N / 8) * this.pool.exports.gemmI16PanelBytes(K);
    const dxBytes = Math.ceil(K / 8) * this.pool.exports.gemmI16PanelBytes(N);
    const off = this.heap.alloc(fwdBytes + dxBytes);
    const s = new Staging(this.heap);
    try {
      const pw = s.in(w, N * K);
      this.int16Prepare(0, 0, K, 0, pw, K, 1, N, Math.ceil(N / 8), off);
      this.int16Prepare(0, 0, N, 0, pw, 1, K, K, Math.ceil(K / 8), off + fwdBytes);
    } finally {
      s.finish();
    }
    const packed: WasmInt16Weight = { rows: N, cols: K, fwd: off, dx: off + fwdBytes, owner: this, live: true };
    return packed;
  }

  matmulXWtInt16(y: Float32Array, x: Float32Array, w: Int16Weight, M: number, accumulate: boolean): void {
    const pw = this.liveInt16('matmulXWtInt16', w);
    const { rows: N, cols: K } = pw;
    checkBuffers('matmulXWtInt16', { M }, [['y', y, M * N], ['x', x, M * K]]);
    this.int16Packed(y, x, M, K, N, pw.fwd, accumulate);
  }

  matmulDyWInt16(dx: Float32Array, dy: Float32Array, w: Int16Weight, M: number, accumulate: boolean): void {
    const pw = this.liveInt16('matmulDyWInt16', w);
    const { rows: N, cols: K } = pw;
    checkBuffers('matmulDyWInt16', { M }, [['dx', dx, M * K], ['dy', dy, M * N]]);
    this.int16Packed(dx, dy, M, N, K, pw.dx, accumulate);
  }

  /** c[M, Nout] (+)= a[M, Kc]·Bᵀ from B's panels packed by packInt16 (a quantized per call). */
  private int16Packed(c: Float32Array, a: Float32Array, M: number, Kc: number, Nout: number, panels: number, accumulate: boolean): void {
    const s = new Staging(this.heap);
    const pc = s.out(c, M * Nout, accumulate);
    const pa = s.in(a, M * Kc);
    const qt = this.int16Scratch(this.int16RowBytes(M, Kc));
    this.int16Prepare(pa, M, Kc, qt, 0, 0, 0, Nout, 0, 0);
    this.int16Run(pc, M, Nout, Kc, qt, panels, accumulate);
    s.finish();
  }

  releaseInt16(w: Int16Weight): void {
    const pw = this.liveInt16('releaseInt16', w);
    pw.live = false;
    this.heap.free(pw.fwd);
  }

  private liveInt16(kernel: string, w: Int16Weight): WasmInt16Weight {
    const pw = w as Partial<WasmInt16Weight>;
    if (pw.owner !== this || pw.live !== true) {
      throw new ShapeError(`${kernel}: not a live packInt16 weight of this backend (released, or from another backend?)`, { expected: 'a packInt16 result of these kernels' });
    }
    return pw as WasmInt16Weight;
  }

  dequantizeQ4Rows(out: Float32Array, w: Quant4Weight, r0: number, r1: number): void {
    checkQuant4('dequantizeQ4Rows', w);
    requireDims('dequantizeQ4Rows', { r0, r1 });
    if (r0 > r1 || r1 > w.rows) {
      throw new ShapeError('dequantizeQ4Rows: row range out of bounds', { field: 'r0,r1', expected: `0 <= r0 <= r1 <= ${w.rows}`, got: `${r0},${r1}` });
    }
    const n = (r1 - r0) * w.cols;
    requireLength('dequantizeQ4Rows', 'out', out, n);
    const d = this.q4.descriptor(w, 'dequantizeQ4Rows');
    // `out` in wasm memory is written in place in one pass; a foreign one through one staging
    // area reused chunk of rows after chunk of rows (as quantizeBlockwise4).
    const resident = this.heap.owns(out);
    const rowsPerChunk = resident ? Math.max(1, r1 - r0) : Math.max(1, Math.floor(STAGING_CHUNK_ELEMENTS / Math.max(1, w.cols)));
    const s = new Staging(this.heap);
    try {
      const staged = resident ? -1 : s.reserve(Math.min(r1 - r0, rowsPerChunk) * w.cols * 4);
      for (let c0 = r0; c0 < r1; c0 += rowsPerChunk) {
        const c1 = Math.min(r1, c0 + rowsPerChunk);
        const po = staged >= 0 ? staged : out.byteOffset + (c0 - r0) * w.cols * 4;
        const shares = this.rowsOf(c1 - c0, (c1 - c0) * w.cols * 4);
        this.pool.run('q4DequantizeRows', shares.map(([a, b]) => [d, c0 + a, c0 + b, po + a * w.cols * 4]));
        if (staged >= 0) out.set(this.heap.f32(staged, (c1 - c0) * w.cols), (c0 - r0) * w.cols);
      }
    } finally {
      s.finish();
    }
  }

  quantizeBlockwise4(packed: Uint8Array, absmax: Float32Array, x: Float32Array, n: number, blockSize: number, type: 'nf4' | 'fp4'): void {
    requireDims('quantizeBlockwise4', { n, blockSize });
    if (blockSize === 0) throw new ShapeError('quantizeBlockwise4: blockSize must be positive', { field: 'blockSize', expected: '> 0', got: '0' });
    requireLength('quantizeBlockwise4', 'x', x, n);
    requireLength('quantizeBlockwise4', 'packed', packed, Math.ceil(n / 2));
    const nBlocks = Math.ceil(n / blockSize);
    requireLength('quantizeBlockwise4', 'absmax', absmax, nBlocks);
    if (type !== 'nf4' && type !== 'fp4') throw new ShapeError('quantizeBlockwise4: unknown 4-bit type', { field: 'type', expected: "'nf4' | 'fp4'", got: String(type) });
    // Arrays in wasm memory are used in place, in one pass. Foreign ones go through one staging
    // area per call, reused chunk after chunk (a fresh heap block per chunk costs a zero-fill of
    // shared memory, slower than the kernel); chunks are whole blocks starting at even element
    // indices, so only the very last block can be partial and every chunk starts on a byte.
    const resident = this.heap.owns(x) && this.heap.owns(packed) && this.heap.owns(absmax);
    const unit = blockSize % 2 === 0 ? blockSize : 2 * blockSize;
    const chunk = resident ? n : Math.max(unit, Math.floor(STAGING_CHUNK_ELEMENTS / unit) * unit);
    const s = new Staging(this.heap);
    try {
      const xs = this.heap.owns(x) ? -1 : s.reserve(Math.min(n, chunk) * 4);
      const ps = this.heap.owns(packed) ? -1 : s.reserve(Math.ceil(Math.min(n, chunk) / 2));
      const as = this.heap.owns(absmax) ? -1 : s.reserve(Math.ceil(Math.min(n, chunk) / blockSize) * 4);
      for (let e0 = 0; e0 < n; e0 += chunk) {
        const e1 = Math.min(n, e0 + chunk);
        const b0 = e0 / blockSize, b1 = Math.ceil(e1 / blockSize);
        const p0 = e0 / 2, p1 = Math.ceil(e1 / 2);
        if (xs >= 0) this.heap.f32(xs, e1 - e0).set(x.subarray(e0, e1));
        const px = xs >= 0 ? xs : x.byteOffset + e0 * 4;
        const pp = ps >= 0 ? ps : packed.byteOffset + p0;
        const pa = as >= 0 ? as : absmax.byteOffset + b0 * 4;
        this.quantizeResident(pp, pa, px, e1 - e0, blockSize, type);
        if (ps >= 0) packed.set(this.heap.u8(ps, p1 - p0), p0);
        if (as >= 0) absmax.set(this.heap.f32(as, b1 - b0), b0);
      }
    } finally {
      s.finish();
    }
  }

  /** quantizeBlockwise4 of n elements already in wasm memory (byte addresses), over the pool. */
  private quantizeResident(pp: number, pa: number, px: number, n: number, blockSize: number, type: 'nf4' | 'fp4'): void {
    const nBlocks = Math.ceil(n / blockSize);
    // Threads split on block boundaries that are also byte boundaries (even element index).
    const unit = blockSize % 2 === 0 ? 1 : 2;
    const parts = this.rowsOf(Math.ceil(nBlocks / unit), n * 20).map(([b0, b1]) => {
      const e0 = Math.min(n, b0 * unit * blockSize);
      const e1 = Math.min(n, b1 * unit * blockSize);
      return [pp + e0 / 2, pa + b0 * unit * 4, px + e0 * 4, e1 - e0, blockSize, type === 'nf4' ? 7 : 0, this.quantTables[type]];
    });
    this.pool.run('quantizeBlockwise4', parts);
  }

  // ---- splitting --------------------------------------------------------------------------------

  /**
   * Shares of a GEMV over [0, n) rows (see MIN_GEMV_FLOPS_PER_THREAD). A split refused only for
   * the lag counts toward a probe (a split made anyway, to measure the lag again); a probe that
   * found its worker asleep measured nothing, so the next GEMV probes once more while that worker
   * still spins.
   */
  private gemvRowsOf(n: number, flops: number): [number, number][] {
    const byLag = Math.max(MIN_GEMV_FLOPS_PER_THREAD, GEMV_LAG_FACTOR * this.pool.handoffLagUs * FLOPS_PER_US);
    let min = byLag;
    if (flops >= 2 * MIN_GEMV_FLOPS_PER_THREAD && flops < this.threads * byLag) {
      if (this.gemvProbe === 'again' || ++this.gemvRefusals >= GEMV_PROBE_INTERVAL) {
        this.gemvProbe = this.gemvProbe === 'again' ? 'last' : 'first';
        this.gemvRefusals = 0;
        min = MIN_GEMV_FLOPS_PER_THREAD;
      }
    }
    return this.rowsOf(n, flops, 1, min);
  }

  private runGemv(fn: string, parts: number[][]): void {
    this.pool.run(fn, parts);
    if (this.gemvProbe !== 'none' && parts.length > 1) {
      this.gemvProbe = this.gemvProbe === 'first' && this.pool.lastTaskWokeWorker ? 'again' : 'none';
    }
  }

  /** Splits [0, n) into contiguous shares for as many threads as `flops` of work pays for. */
  private rowsOf(n: number, flops: number, unit = 1, minFlopsPerThread = MIN_FLOPS_PER_THREAD): [number, number][] {
    const units = Math.ceil(n / unit);
    const parts = Math.max(1, Math.min(this.threads, units, Math.floor(flops / minFlopsPerThread)));
    const out: [number, number][] = [];
    for (let p = 0; p < parts; p++) {
      const a = Math.min(n, Math.round((units * p) / parts) * unit);
      const b = Math.min(n, Math.round((units * (p + 1)) / parts) * unit);
      out.push([a, b]);
    }
    return out;
  }

  /** Thread shares of a [rows, cols] GEMM output: by columns (8-wide panels) or rows (4-row tiles). */
  private gemmShares(rows: number, cols: number, inner: number): Share[] {
    const flops = 2 * rows * cols * Math.max(inner, 1);
    const byCols = Math.ceil(cols / 8) >= Math.ceil(rows / 4) || Math.ceil(cols / 8) >= 4 * this.threads;
    return byCols
      ? this.rowsOf(cols, flops, 8).map(([n0, n1]): Share => [0, rows, n0, n1])
      : this.rowsOf(rows, flops, 4).map(([m0, m1]): Share => [m0, m1, 0, cols]);
  }

  /** C[rows, cols] (+)= A·B over `inner`, split by columns (8-wide panels) or rows (4-row tiles). */
  private gemm(c: number, ldc: number, a: number, aRow: number, aK: number, bKind: BKind, b: number, ldb: number, rows: number, cols: number, inner: number, accumulate: boolean): void {
    const shares = this.gemmShares(rows, cols, inner);
    this.pool.run('gemmF32', shares.map(([m0, m1, n0, n1], t) => [c, ldc, a, aRow, aK, bKind, b, ldb, m0, m1, n0, n1, inner, +accumulate, this.scratch[t]]));
  }

  // ---- warm-up ----------------------------------------------------------------------------------

  /**
   * Runs every pooled kernel in every thread until V8 has tiered it up (its baseline tier is 3-4x
   * slower), on small private buffers per thread.
   */
  private warmUp(): void {
    const T = this.threads;
    const M = 16, K = 96, N = 40;
    const bufs = Array.from({ length: T }, () => ({
      c: this.heap.alloc(M * N * 4), a: this.heap.alloc(M * K * 4), b: this.heap.alloc(N * K * 4),
      x: this.heap.alloc(4096 * 4), p: this.heap.alloc(2048), am: this.heap.alloc(64 * 4), pos: this.heap.alloc(64 * 4),
      i8table: this.heap.alloc(8), i8packed: this.heap.alloc(Math.ceil(N / 8) * this.pool.exports.gemmI8PanelBytes(K, 32)),
    }));
    for (const u of bufs) {
      const a = this.heap.f32(u.a, M * K);
      const b = this.heap.f32(u.b, N * K);
      for (let i = 0; i < a.length; i++) a[i] = Math.sin(i);
      for (let i = 0; i < b.length; i++) b[i] = Math.cos(i);
    }
    const codebook = new Float32Array(16).map((_, i) => (i - 7) / 8);
    const w: Quant4Weight = {
      quantType: 'nf4', rows: N, cols: K, packed: new Uint8Array((N * K) / 2).map((_, i) => i * 37), codebook,
      blockSize: 32, blocksPerRow: 0, absmax: new Float32Array((N * K) / 32).fill(1), dq: null, zeros: null,
    };
    const d = this.q4.descriptor(w, 'warmUp');
    for (const u of bufs) new Uint32Array(this.heap.buffer, u.i8table, 2).set([d, u.c]);
    const all = (f: (u: (typeof bufs)[number], t: number) => number[]): number[][] => bufs.map(f);
    for (let rep = 0; rep < 40; rep++) {
      for (const kind of [BKind.F32T, BKind.F32N, BKind.Q4T, BKind.Q4N]) {
        const bp = kind === BKind.Q4T || kind === BKind.Q4N ? d : 0;
        this.pool.run('gemmF32', all((u, t) => [u.c, N, u.a, K * 4, 4, kind, bp || u.b, K, 0, M, 0, N, kind === BKind.Q4N ? N : K, rep & 1, this.scratch[t]]));
      }
      this.pool.run('gemvF32', all((u) => [u.c, N, u.a, u.b, 1, K, 0, N, 0]));
      this.pool.run('gemvQ4', all((u, t) => [u.c, N, u.a, d, 1, 0, N, 0, this.scratch[t]]));
      this.manyTable[0] = d;
      this.manyTable[1] = bufs[0].c;
      this.pool.run('gemvQ4Many', all((u, t) => [this.manyTable.byteOffset, 1, u.a, 1, Math.floor((t * N) / T), Math.floor(((t + 1) * N) / T), 0, this.scratch[t]]));
      this.pool.run('gemvI8Q4Many', all((u, t) => [this.manyTable.byteOffset, 1, u.a, 1 + (rep & 1), Math.floor((t * N) / T), Math.floor(((t + 1) * N) / T), 0, this.scratch[t]]));
      this.pool.run('gemmI8Prepare', all((u, t) => [u.i8table, 1, u.a, u.p, u.p + 1024, u.am, u.pos, 0, 5, 0, N / 8, u.i8packed, 0, this.scratch[t]]));
      this.pool.run('gemmI8Run', all((u, t) => [u.i8table, 1, u.p + 1024, u.am, u.pos, 0, 5, 0, N / 8, rep & 1, u.i8packed, 0, this.scratch[t]]));
      this.pool.run('q4DequantizeRows', all((u) => [d, 0, 8, u.x]));
      this.pool.run('quantizeBlockwise4', all((u) => [u.p, u.am, u.x, 4000, 64, 7, this.quantTables.nf4]));
      this.layers.warmUp(bufs, rep);
    }
    this.q4.forget(w);
    for (const u of bufs) for (const off of Object.values(u).reverse()) this.heap.free(off);
  }

  // ---- layers: assembly/{norm,rope,act,attention,loss,optim}.ts via layers.ts ------------------

  rmsnormForward(out: Float32Array, rstd: Float32Array, x: Float32Array, weight: Float32Array, T: number, C: number, eps: number): void {
    this.layers.rmsnormForward(out, rstd, x, weight, T, C, eps);
  }
  rmsnormBackward(dx: Float32Array, dweight: Float32Array | null, dout: Float32Array, x: Float32Array, weight: Float32Array, rstd: Float32Array, T: number, C: number): void {
    this.layers.rmsnormBackward(dx, dweight, dout, x, weight, rstd, T, C);
  }
  rope(x: Float32Array, positions: Int32Array, cos: Float32Array, sin: Float32Array, T: number, nHeads: number, D: number, inverse: boolean, stride?: number): void {
    this.layers.rope(x, positions, cos, sin, T, nHeads, D, inverse, stride);
  }
  siluMulForward(out: Float32Array, gate: Float32Array, up: Float32Array, n: number): void {
    this.layers.siluMulForward(out, gate, up, n);
  }
  siluMulBackward(dgate: Float32Array, dup: Float32Array, dout: Float32Array, gate: Float32Array, up: Float32Array, n: number): void {
    this.layers.siluMulBackward(dgate, dup, dout, gate, up, n);
  }
  softmaxRows(x: Float32Array, rows: number, cols: number): void {
    this.layers.softmaxRows(x, rows, cols);
  }
  attentionForward(out: Float32Array, probs: Float32Array | null, q: Float32Array, k: Float32Array, v: Float32Array, dims: AttentionDims): void {
    this.layers.attentionForward(out, probs, q, k, v, dims);
  }
  attentionBackward(dq: Float32Array, dk: Float32Array, dv: Float32Array, dout: Float32Array, probs: Float32Array, q: Float32Array, k: Float32Array, v: Float32Array, dims: AttentionDims): void {
    this.layers.attentionBackward(dq, dk, dv, dout, probs, q, k, v, dims);
  }
  crossEntropyForward(losses: Float32Array, logits: Float32Array, targets: Int32Array, T: number, V: number, ignoreIndex: number): { sum: number; count: number } {
    return this.layers.crossEntropyForward(losses, logits, targets, T, V, ignoreIndex);
  }
  crossEntropyBackward(dlogits: Float32Array, logits: Float32Array, targets: Int32Array, T: number, V: number, ignoreIndex: number, scale: number): void {
    this.layers.crossEntropyBackward(dlogits, logits, targets, T, V, ignoreIndex, scale);
  }
  sumSquares(x: Float32Array, n: number): number {
    return this.layers.sumSquares(x, n);
  }
  scale(x: Float32Array, n: number, s: number): void {
    this.layers.scale(x, n, s);
  }
  add(out: Float32Array, a: Float32Array, b: Float32Array, n: number): void {
    this.layers.add(out, a, b, n);
  }
  adamwStep(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, n: number, lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, t: number): void {
    this.layers.adamwStep(p, g, m, v, n, lr, beta1, beta2, eps, weightDecay, t);
  }

  // ---- ref kernels (row copies at memcpy speed through TypedArray.set; same buffers) -------------

  embeddingForward(out: Float32Array, table: Float32Array, ids: Int32Array, T: number, C: number): void {
    this.ref.embeddingForward(out, table, ids, T, C);
  }
  embeddingBackward(dtable: Float32Array, dout: Float32Array, ids: Int32Array, T: number, C: number): void {
    this.ref.embeddingBackward(dtable, dout, ids, T, C);
  }
}
