// Int8Tensor: the simple 8-bit scheme of the `int8` per-module override (mixed precision: keep a
// sensitive module, e.g. down_proj, at 8 bits while the rest is 4-bit). Symmetric absmax per row:
//   scale[r] = f32(absmax_r / 127);  q = roundHalfAwayFromZero(f32(x * f32(127 / absmax_r)))
//   (q in [-127, 127]; an all-zero row has scale 0 and q 0);  w = f32(q * scale[r])
// One row = one output channel of a [out, in] Linear weight (a 1-D tensor is one row).
// This is NOT bitsandbytes' LLM.int8 (Linear8bitLt, with outlier decomposition) and has no file
// format of its own here: the bnb-4bit writer refuses it (bnb-checkpoint.ts).

import { NumericError } from '../errors.js';
import { matrixView } from './quantized-tensor.js';

/** Largest code magnitude; -128 is never used so the scheme stays symmetric. */
export const INT8_QMAX = 127;

export class Int8Tensor {
  constructor(
    readonly shape: readonly number[],
    readonly rows: number,
    readonly cols: number,
    /** rows * cols codes, row-major. */
    readonly codes: Int8Array,
    /** One f32 scale per row. */
    readonly scales: Float32Array,
  ) {}

  /** Codes plus one f32 scale per row. */
  sizeBytes(): number {
    return this.codes.length + 4 * this.scales.length;
  }

  bitsPerParameter(): number {
    return (8 * this.sizeBytes()) / this.codes.length;
  }

  dequantizeRows(r0: number, r1: number): Float32Array {
    const out = new Float32Array((r1 - r0) * this.cols);
    for (let r = r0; r < r1; r++) {
      const s = this.scales[r];
      const o = (r - r0) * this.cols;
      for (let c = 0; c < this.cols; c++) out[o + c] = this.codes[r * this.cols + c] * s;
    }
    return out;
  }

  dequantize(): Float32Array {
    return this.dequantizeRows(0, this.rows);
  }
}

/** Quantize f32 values (flat, torch `shape`) to Int8Tensor; non-finite input is a NumericError. */
export function quantizeInt8PerRow(x: Float32Array, shape: readonly number[], name = 'tensor'): Int8Tensor {
  const { rows, cols } = matrixView(shape, name);
  const codes = new Int8Array(rows * cols);
  const scales = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    let absmax = 0;
    for (let c = 0; c < cols; c++) {
      const v = x[r * cols + c];
      if (!Number.isFinite(v)) {
        throw new NumericError('non-finite weight', { field: name, expected: 'finite values', got: `${v} at flat index ${r * cols + c}` });
      }
      absmax = Math.max(absmax, Math.abs(v));
    }
    if (absmax === 0) continue;
    scales[r] = Math.fround(absmax / INT8_QMAX);
    const inv = Math.fround(INT8_QMAX / absmax);
    for (let c = 0; c < cols; c++) {
      const s = Math.fround(x[r * cols + c] * inv);
      codes[r * cols + c] = Math.min(INT8_QMAX, Math.sign(s) * Math.floor(Math.abs(s) + 0.5));
    }
  }
  return new Int8Tensor(shape, rows, cols, codes, scales);
}
