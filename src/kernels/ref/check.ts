// Argument checks shared by the kernel backends: a kernel given a buffer shorter than its dims
// imply throws a ShapeError naming the kernel and the argument, instead of reading past the end
// (TypedArrays return undefined -> NaN silently) or, in wasm, corrupting memory.
// Not a validation of the numbers themselves (NaN/Inf pass through, as in torch).

import { ShapeError } from '../../errors.js';
import type { Quant4Weight } from '../../quant/types.js';
import { quant4BlockCount } from '../../quant/types.js';
import type { AttentionDims } from '../kernels.js';
import { attentionGeometry, type AttentionGeometry } from './attention.js';

/** Throws unless `arr` holds at least `n` elements; `n` must be a non-negative integer. */
export function requireLength(kernel: string, arg: string, arr: ArrayLike<number>, n: number): void {
  if (!Number.isInteger(n) || n < 0) {
    throw new ShapeError(`${kernel}: size of ${arg} is not a non-negative integer`, { field: arg, expected: 'integer >= 0', got: String(n) });
  }
  if (arr.length < n) {
    throw new ShapeError(`${kernel}: ${arg} is too short`, { field: arg, expected: `>= ${n} elements`, got: `${arr.length}` });
  }
}

/** Throws unless every dim is a non-negative integer. */
export function requireDims(kernel: string, dims: Record<string, number>): void {
  for (const [name, v] of Object.entries(dims)) {
    if (!Number.isInteger(v) || v < 0) {
      throw new ShapeError(`${kernel}: dimension ${name} is not a non-negative integer`, { field: name, expected: 'integer >= 0', got: String(v) });
    }
  }
}

/** Throws unless `ids[0..T)` are valid row indices of a table with `rows` rows. */
export function requireIndices(kernel: string, arg: string, ids: Int32Array, T: number, rows: number, allowed?: number): void {
  for (let t = 0; t < T; t++) {
    const id = ids[t];
    if (id === allowed) continue;
    if (id < 0 || id >= rows) {
      throw new ShapeError(`${kernel}: ${arg}[${t}] is out of range`, { field: `${arg}[${t}]`, expected: `0 <= id < ${rows}`, got: String(id) });
    }
  }
}

// ---- per-kernel checks (used by both backends) -------------------------------------------------

/** Checks integer dims, then each [name, array, required length]. */
export function checkBuffers(kernel: string, dims: Record<string, number>, bufs: [string, ArrayLike<number>, number][]): void {
  requireDims(kernel, dims);
  for (const [name, arr, n] of bufs) requireLength(kernel, name, arr, n);
}

export function checkQuant4(kernel: string, w: Quant4Weight): void {
  requireDims(kernel, { rows: w.rows, cols: w.cols, blockSize: w.blockSize, blocksPerRow: w.blocksPerRow });
  requireLength(kernel, 'w.packed', w.packed, Math.ceil((w.rows * w.cols) / 2));
  requireLength(kernel, 'w.codebook', w.codebook, 16);
  const nBlocks = quant4BlockCount(w.rows, w.cols, w.blockSize, w.blocksPerRow);
  if ((w.absmax === null) === (w.dq === null)) {
    throw new ShapeError(`${kernel}: exactly one of absmax / dq must be set`, { field: 'w.absmax', expected: 'absmax xor dq' });
  }
  if (w.absmax !== null) requireLength(kernel, 'w.absmax', w.absmax, nBlocks);
  if (w.dq !== null) {
    requireLength(kernel, 'w.dq.codes', w.dq.codes, nBlocks);
    requireLength(kernel, 'w.dq.nestedMap', w.dq.nestedMap, 256);
    requireLength(kernel, 'w.dq.nestedAbsmax', w.dq.nestedAbsmax, Math.ceil(nBlocks / w.dq.nestedBlockSize));
  }
  if (w.zeros !== null) requireLength(kernel, 'w.zeros', w.zeros, nBlocks);
}

/** matmulXWtQ4Many: one output per weight, weights valid and of one width K, buffers sized for M rows. */
/** packInt16's arguments: w holds N·K values, and both dims are even (the int16 product takes pairs). */
export function checkPackInt16(w: Float32Array, N: number, K: number): void {
  checkBuffers('packInt16', { N, K }, [['w', w, N * K]]);
  if (N % 2 !== 0 || K % 2 !== 0) throw new ShapeError('packInt16: both dims must be even (the int16 product takes pairs)', { field: 'N,K', expected: 'even', got: `${N},${K}` });
}

export function checkQuant4Many(kernel: string, ys: readonly Float32Array[], x: Float32Array, ws: readonly Quant4Weight[], M: number): void {
  if (ys.length !== ws.length) throw new ShapeError(`${kernel}: one output per weight`, { field: 'ys', expected: `${ws.length} outputs`, got: String(ys.length) });
  requireDims(kernel, { M });
  for (let i = 0; i < ws.length; i++) {
    checkQuant4(kernel, ws[i]);
    if (ws[i].cols !== ws[0].cols) throw new ShapeError(`${kernel}: the weights must share their input width`, { field: `ws[${i}].cols`, expected: String(ws[0].cols), got: String(ws[i].cols) });
    requireLength(kernel, `ys[${i}]`, ys[i], M * ws[i].rows);
  }
  if (ws.length > 0) requireLength(kernel, 'x', x, M * ws[0].cols);
}

export function checkRope(x: Float32Array, positions: Int32Array, cos: Float32Array, sin: Float32Array, T: number, nHeads: number, D: number, stride: number): void {
  requireDims('rope', { T, nHeads, D, stride });
  if (D % 2 !== 0) throw new ShapeError('rope: head dimension must be even', { field: 'D', expected: 'even', got: String(D) });
  if (T > 0) requireLength('rope', 'x', x, (T - 1) * stride + nHeads * D);
  requireLength('rope', 'positions', positions, T);
  const maxPos = Math.min(cos.length, sin.length) / (D / 2 || 1);
  requireIndices('rope', 'positions', positions, T, D === 0 ? Infinity : Math.floor(maxPos));
}

export function kvLength(g: AttentionGeometry): number {
  return g.Tk === 0 ? 0 : (g.Tk - 1) * g.kvStride + g.Hkv * g.D;
}

export function checkAttention(kernel: string, dims: AttentionDims, q: Float32Array, k: Float32Array, v: Float32Array): AttentionGeometry {
  const g = attentionGeometry(dims);
  requireDims(kernel, { Tq: g.Tq, Tk: g.Tk, H: g.H, Hkv: g.Hkv, D: g.D, qOffset: g.qOffset, keyStart: g.keyStart, kvStride: g.kvStride });
  if (g.Hkv === 0 ? g.H !== 0 : g.H % g.Hkv !== 0) {
    throw new ShapeError(`${kernel}: query heads must be a multiple of kv heads`, { field: 'H', expected: `multiple of Hkv=${g.Hkv}`, got: String(g.H) });
  }
  if (g.kvStride < g.Hkv * g.D) throw new ShapeError(`${kernel}: kvStride narrower than Hkv*D`, { field: 'kvStride', expected: `>= ${g.Hkv * g.D}`, got: String(g.kvStride) });
  requireLength(kernel, 'q', q, g.Tq * g.H * g.D);
  requireLength(kernel, 'k', k, kvLength(g));
  requireLength(kernel, 'v', v, kvLength(g));
  return g;
}

export function checkEmbedding(kernel: string, rows: Float32Array, table: Float32Array, ids: Int32Array, T: number, C: number): void {
  requireDims(kernel, { T, C });
  requireLength(kernel, 'ids', ids, T);
  requireLength(kernel, 'out/dout', rows, T * C);
  requireIndices(kernel, 'ids', ids, T, C === 0 ? Infinity : Math.floor(table.length / C));
}

export function checkCrossEntropy(kernel: string, logits: Float32Array, targets: Int32Array, T: number, V: number, ignoreIndex: number): void {
  requireDims(kernel, { T, V });
  requireLength(kernel, 'logits', logits, T * V);
  requireLength(kernel, 'targets', targets, T);
  requireIndices(kernel, 'targets', targets, T, V, ignoreIndex);
}
