// RefKernels: the reference backend. Every method checks its arguments (lengths against dims,
// index ranges) and then runs the plain-TypeScript kernel of this folder. It is the oracle of the
// kernel spec suite (test/kernels/spec.ts), the fallback, and what `--kernels ref` selects.
// Buffers are ordinary Float32Arrays (no wasm memory); threads = 1.

import { ShapeError } from '../../errors.js';
import { dequantizeQ4RowsRef, quantizeBlockwise4Ref } from '../../quant/blockwise.js';
import type { Quant4Weight } from '../../quant/types.js';
import type { AttentionDims, Int16Weight, Kernels } from '../kernels.js';
import { siluMulBackwardRef, siluMulForwardRef, softmaxRowsRef } from './act.js';
import { attentionBackwardRef, attentionForwardRef } from './attention.js';
import { checkAttention, checkBuffers, checkPackInt16, checkCrossEntropy, checkEmbedding, checkQuant4, checkQuant4Many, checkRope, kvLength, requireDims, requireLength } from './check.js';
import { embeddingBackwardRef, embeddingForwardRef } from './embedding.js';
import { crossEntropyBackwardRef, crossEntropyForwardRef } from './loss.js';
import { int8ActivationsApply, matmulXWtQ4Int8Ref } from './matmul-int8.js';
import { int16Apply, int16DyWRef, int16XWtRef, matmulDyWQ4Int16Ref, matmulXWtQ4Int16Ref } from './matmul-int16.js';
import { matmulDytXRef, matmulDyWQ4Ref, matmulDyWRef, matmulXWtQ4Ref, matmulXWtRef } from './matmul.js';
import { rmsnormBackwardRef, rmsnormForwardRef } from './norm.js';
import { adamwStepRef, scaleRef, sumSquaresRef } from './optim.js';
import { ropeRef } from './rope.js';

interface RefInt16Weight extends Int16Weight {
  readonly data: Float32Array;
  live: boolean;
}

function liveInt16(kernel: string, w: Int16Weight): RefInt16Weight {
  const pw = w as Partial<RefInt16Weight>;
  if (!(pw.data instanceof Float32Array) || pw.live !== true) {
    throw new ShapeError(`${kernel}: not a live packInt16 weight of the ref backend (released, or from another backend?)`, { expected: 'a packInt16 result' });
  }
  return pw as RefInt16Weight;
}

/** The arithmetic of a backend's 4-bit matmuls, as its description names it. */
export function activationsName(k: { readonly int8Activations: boolean; readonly int16Activations: boolean }): 'int8' | 'int16' | 'f32' {
  return k.int8Activations ? 'int8' : k.int16Activations ? 'int16' : 'f32';
}

export class RefKernels implements Kernels {
  readonly name = 'ref' as const;
  readonly threads = 1;
  /** The optional int8-activation prompt path (matmul-int8.ts); default false (exact). */
  readonly int8Activations: boolean;
  /** The int16 training path of the frozen 4-bit matmuls (matmul-int16.ts); default false (exact). */
  readonly int16Activations: boolean;
  private readonly owned = new WeakSet<Float32Array>();

  constructor(opts: { readonly int8Activations?: boolean; readonly int16Activations?: boolean } = {}) {
    this.int8Activations = opts.int8Activations === true;
    this.int16Activations = opts.int16Activations === true && !this.int8Activations;
  }

  /** The reference kernels read weights where they are: nothing is made resident. */
  readonly residentWeightBytes = 0;

  setResidentWeightBytes(): void {
    // nothing resident to limit
  }

  get description(): string {
    return `ref (TypeScript reference kernels), 1 thread, ${activationsName(this)} activations`;
  }

  allocF32(n: number): Float32Array {
    requireDims('allocF32', { n });
    const buf = new Float32Array(n);
    this.owned.add(buf);
    return buf;
  }

  free(buf: Float32Array): void {
    if (!this.owned.delete(buf)) {
      throw new ShapeError('free: buffer was not allocated by this backend (or was already freed)', { expected: 'a buffer from allocF32', got: `Float32Array(${buf.length})` });
    }
  }

  async dispose(): Promise<void> {}

  matmulXWt(y: Float32Array, x: Float32Array, w: Float32Array, M: number, K: number, N: number, accumulate: boolean): void {
    checkBuffers('matmulXWt', { M, K, N }, [['y', y, M * N], ['x', x, M * K], ['w', w, N * K]]);
    matmulXWtRef(y, x, w, M, K, N, accumulate);
  }

  matmulDyW(dx: Float32Array, dy: Float32Array, w: Float32Array, M: number, N: number, K: number, accumulate: boolean): void {
    checkBuffers('matmulDyW', { M, K, N }, [['dx', dx, M * K], ['dy', dy, M * N], ['w', w, N * K]]);
    matmulDyWRef(dx, dy, w, M, N, K, accumulate);
  }

  matmulDytX(dw: Float32Array, dy: Float32Array, x: Float32Array, M: number, N: number, K: number, accumulate: boolean): void {
    checkBuffers('matmulDytX', { M, K, N }, [['dw', dw, N * K], ['dy', dy, M * N], ['x', x, M * K]]);
    matmulDytXRef(dw, dy, x, M, N, K, accumulate);
  }

  matmulXWtQ4(y: Float32Array, x: Float32Array, w: Quant4Weight, M: number, accumulate: boolean): void {
    checkQuant4('matmulXWtQ4', w);
    checkBuffers('matmulXWtQ4', { M }, [['y', y, M * w.rows], ['x', x, M * w.cols]]);
    if (this.int8Activations && int8ActivationsApply(w, M)) matmulXWtQ4Int8Ref(y, x, w, M, accumulate);
    else if (this.int16Activations && int16Apply(w, 'forward', M)) matmulXWtQ4Int16Ref(y, x, w, M, accumulate);
    else matmulXWtQ4Ref(y, x, w, M, accumulate);
  }

  matmulXWtQ4Many(ys: readonly Float32Array[], x: Float32Array, ws: readonly Quant4Weight[], M: number, accumulate: boolean): void {
    checkQuant4Many('matmulXWtQ4Many', ys, x, ws, M);
    for (let i = 0; i < ws.length; i++) this.matmulXWtQ4(ys[i], x, ws[i], M, accumulate);
  }

  matmulDyWQ4(dx: Float32Array, dy: Float32Array, w: Quant4Weight, M: number, accumulate: boolean): void {
    checkQuant4('matmulDyWQ4', w);
    checkBuffers('matmulDyWQ4', { M }, [['dx', dx, M * w.cols], ['dy', dy, M * w.rows]]);
    if (this.int16Activations && int16Apply(w, 'input-grad', M)) matmulDyWQ4Int16Ref(dx, dy, w, M, accumulate);
    else matmulDyWQ4Ref(dx, dy, w, M, accumulate);
  }

  dequantizeQ4Rows(out: Float32Array, w: Quant4Weight, r0: number, r1: number): void {
    checkQuant4('dequantizeQ4Rows', w);
    requireDims('dequantizeQ4Rows', { r0, r1 });
    if (r0 > r1 || r1 > w.rows) {
      throw new ShapeError('dequantizeQ4Rows: row range out of bounds', { field: 'r0,r1', expected: `0 <= r0 <= r1 <= ${w.rows}`, got: `${r0},${r1}` });
    }
    requireLength('dequantizeQ4Rows', 'out', out, (r1 - r0) * w.cols);
    dequantizeQ4RowsRef(out, w, r0, r1);
  }

  packInt16(w: Float32Array, N: number, K: number): Int16Weight {
    checkPackInt16(w, N, K);
    // The reference quantizes the weight inside every product (the same integers each time).
    const packed: RefInt16Weight = { rows: N, cols: K, data: Float32Array.from(w.subarray(0, N * K)), live: true };
    return packed;
  }

  matmulXWtInt16(y: Float32Array, x: Float32Array, w: Int16Weight, M: number, accumulate: boolean): void {
    const pw = liveInt16('matmulXWtInt16', w);
    checkBuffers('matmulXWtInt16', { M }, [['y', y, M * pw.rows], ['x', x, M * pw.cols]]);
    int16XWtRef(y, x, M, pw.data, pw.rows, pw.cols, accumulate);
  }

  matmulDyWInt16(dx: Float32Array, dy: Float32Array, w: Int16Weight, M: number, accumulate: boolean): void {
    const pw = liveInt16('matmulDyWInt16', w);
    checkBuffers('matmulDyWInt16', { M }, [['dx', dx, M * pw.cols], ['dy', dy, M * pw.rows]]);
    int16DyWRef(dx, dy, M, pw.data, pw.rows, pw.cols, accumulate);
  }

  releaseInt16(w: Int16Weight): void {
    liveInt16('releaseInt16', w).live = false;
  }

  quantizeBlockwise4(packed: Uint8Array, absmax: Float32Array, x: Float32Array, n: number, blockSize: number, type: 'nf4' | 'fp4'): void {
    requireDims('quantizeBlockwise4', { n, blockSize });
    if (blockSize === 0) throw new ShapeError('quantizeBlockwise4: blockSize must be positive', { field: 'blockSize', expected: '> 0', got: '0' });
    requireLength('quantizeBlockwise4', 'x', x, n);
    requireLength('quantizeBlockwise4', 'packed', packed, Math.ceil(n / 2));
    requireLength('quantizeBlockwise4', 'absmax', absmax, Math.ceil(n / blockSize));
    quantizeBlockwise4Ref(packed, absmax, x, n, blockSize, type);
  }

  rmsnormForward(out: Float32Array, rstd: Float32Array, x: Float32Array, weight: Float32Array, T: number, C: number, eps: number): void {
    checkBuffers('rmsnormForward', { T, C }, [['out', out, T * C], ['rstd', rstd, T], ['x', x, T * C], ['weight', weight, C]]);
    rmsnormForwardRef(out, rstd, x, weight, T, C, eps);
  }

  rmsnormBackward(dx: Float32Array, dweight: Float32Array | null, dout: Float32Array, x: Float32Array, weight: Float32Array, rstd: Float32Array, T: number, C: number): void {
    checkBuffers('rmsnormBackward', { T, C }, [['dx', dx, T * C], ['dout', dout, T * C], ['x', x, T * C], ['weight', weight, C], ['rstd', rstd, T]]);
    if (dweight !== null) requireLength('rmsnormBackward', 'dweight', dweight, C);
    rmsnormBackwardRef(dx, dweight, dout, x, weight, rstd, T, C);
  }

  rope(x: Float32Array, positions: Int32Array, cos: Float32Array, sin: Float32Array, T: number, nHeads: number, D: number, inverse: boolean, stride?: number): void {
    const rowStride = stride ?? nHeads * D;
    checkRope(x, positions, cos, sin, T, nHeads, D, rowStride);
    ropeRef(x, positions, cos, sin, T, nHeads, D, inverse, rowStride);
  }

  siluMulForward(out: Float32Array, gate: Float32Array, up: Float32Array, n: number): void {
    checkBuffers('siluMulForward', { n }, [['out', out, n], ['gate', gate, n], ['up', up, n]]);
    siluMulForwardRef(out, gate, up, n);
  }

  siluMulBackward(dgate: Float32Array, dup: Float32Array, dout: Float32Array, gate: Float32Array, up: Float32Array, n: number): void {
    checkBuffers('siluMulBackward', { n }, [['dgate', dgate, n], ['dup', dup, n], ['dout', dout, n], ['gate', gate, n], ['up', up, n]]);
    siluMulBackwardRef(dgate, dup, dout, gate, up, n);
  }

  softmaxRows(x: Float32Array, rows: number, cols: number): void {
    checkBuffers('softmaxRows', { rows, cols }, [['x', x, rows * cols]]);
    softmaxRowsRef(x, rows, cols);
  }

  attentionForward(out: Float32Array, probs: Float32Array | null, q: Float32Array, k: Float32Array, v: Float32Array, dims: AttentionDims): void {
    const g = checkAttention('attentionForward', dims, q, k, v);
    requireLength('attentionForward', 'out', out, g.Tq * g.H * g.D);
    if (probs !== null) requireLength('attentionForward', 'probs', probs, g.H * g.Tq * g.Tk);
    attentionForwardRef(out, probs, q, k, v, dims);
  }

  attentionBackward(dq: Float32Array, dk: Float32Array, dv: Float32Array, dout: Float32Array, probs: Float32Array, q: Float32Array, k: Float32Array, v: Float32Array, dims: AttentionDims): void {
    const g = checkAttention('attentionBackward', dims, q, k, v);
    requireLength('attentionBackward', 'dq', dq, g.Tq * g.H * g.D);
    requireLength('attentionBackward', 'dout', dout, g.Tq * g.H * g.D);
    requireLength('attentionBackward', 'probs', probs, g.H * g.Tq * g.Tk);
    requireLength('attentionBackward', 'dk', dk, kvLength(g));
    requireLength('attentionBackward', 'dv', dv, kvLength(g));
    attentionBackwardRef(dq, dk, dv, dout, probs, q, k, v, dims);
  }

  embeddingForward(out: Float32Array, table: Float32Array, ids: Int32Array, T: number, C: number): void {
    checkEmbedding('embeddingForward', out, table, ids, T, C);
    embeddingForwardRef(out, table, ids, T, C);
  }

  embeddingBackward(dtable: Float32Array, dout: Float32Array, ids: Int32Array, T: number, C: number): void {
    checkEmbedding('embeddingBackward', dout, dtable, ids, T, C);
    embeddingBackwardRef(dtable, dout, ids, T, C);
  }

  crossEntropyForward(losses: Float32Array, logits: Float32Array, targets: Int32Array, T: number, V: number, ignoreIndex: number): { sum: number; count: number } {
    checkCrossEntropy('crossEntropyForward', logits, targets, T, V, ignoreIndex);
    requireLength('crossEntropyForward', 'losses', losses, T);
    return crossEntropyForwardRef(losses, logits, targets, T, V, ignoreIndex);
  }

  crossEntropyBackward(dlogits: Float32Array, logits: Float32Array, targets: Int32Array, T: number, V: number, ignoreIndex: number, scale: number): void {
    checkCrossEntropy('crossEntropyBackward', logits, targets, T, V, ignoreIndex);
    requireLength('crossEntropyBackward', 'dlogits', dlogits, T * V);
    crossEntropyBackwardRef(dlogits, logits, targets, T, V, ignoreIndex, scale);
  }

  sumSquares(x: Float32Array, n: number): number {
    checkBuffers('sumSquares', { n }, [['x', x, n]]);
    return sumSquaresRef(x, n);
  }

  scale(x: Float32Array, n: number, s: number): void {
    checkBuffers('scale', { n }, [['x', x, n]]);
    scaleRef(x, n, s);
  }
  add(out: Float32Array, a: Float32Array, b: Float32Array, n: number): void {
    checkBuffers('add', { n }, [['out', out, n], ['a', a, n], ['b', b, n]]);
    for (let i = 0; i < n; i++) out[i] = a[i] + b[i];
  }

  adamwStep(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, n: number, lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, t: number): void {
    checkBuffers('adamwStep', { n }, [['p', p, n], ['g', g, n], ['m', m, n], ['v', v, n]]);
    if (!Number.isInteger(t) || t < 1) throw new ShapeError('adamwStep: step number must be an integer >= 1', { field: 't', expected: '>= 1', got: String(t) });
    adamwStepRef(p, g, m, v, n, lr, beta1, beta2, eps, weightDecay, t);
  }
}
