// QuantizedTensor: one 4-bit (NF4/FP4) weight with its scales, shape and settings; implements the
// Quant4Weight contract (types.ts) the kernels consume. Built by quantizeTensor (reference
// arithmetic, blockwise.ts) or from stored parts (bnb-checkpoint.ts). Not here: file I/O, the
// per-module planning (config.ts) or fast kernels.
//
// Shape convention: a [rows, ...rest] tensor is viewed as rows x (product of rest); a 1-D [n]
// tensor as 1 x n. Blockwise layouts ignore rows (blocks run over the flat index, as bitsandbytes);
// perChannel layouts restart blocks at every row.

import { NumericError, ShapeError } from '../errors.js';
import { f32ToBf16Bits, f32ToF16Bits } from '../formats/dtype.js';
import { codebookFor } from './codebooks.js';
import { dequantizeRangeRef, quantizeRows4Ref } from './blockwise.js';
import { doubleQuantize } from './double-quant.js';
import type { Quant4Settings } from './config.js';
import type { TorchFloatDtype } from './quant-state.js';
import type { DoubleQuantScales, Quant4Type, Quant4Weight } from './types.js';
import { quant4BlockCount } from './types.js';

export interface QuantizeTensorOptions {
  /** Tensor name for errors (`model.layers.0.mlp.up_proj.weight`). */
  name?: string;
  /** Dtype the data came from; recorded for the bnb JSON and dequantizeToDtype. Default float32. */
  sourceDtype?: TorchFloatDtype;
  /** See QuantizationConfig.allowNonFinite. Default false: NaN/Inf is a NumericError. */
  allowNonFinite?: boolean;
  /**
   * A fast twin of quantizeBlockwise4Ref (e.g. Kernels.quantizeBlockwise4 of the wasm backend,
   * tested equal to the reference by the kernel tests), used for the blockwise symmetric layout.
   */
  blockwise4?: Blockwise4Quantizer;
  /**
   * Storage for the packed codes (`bytes` zero-filled bytes), e.g. a view into the compute
   * backend's memory so that its kernels read the codes in place instead of keeping a copy.
   * Default: a new Uint8Array.
   */
  packedStorage?: (bytes: number) => Uint8Array;
}

/** The signature of quantizeBlockwise4Ref and Kernels.quantizeBlockwise4. */
export type Blockwise4Quantizer = (packed: Uint8Array, absmax: Float32Array, x: Float32Array, n: number, blockSize: number, type: Quant4Type) => void;

/** rows x cols view of a torch shape; ShapeError for 0-d and empty tensors. */
export function matrixView(shape: readonly number[], name = 'tensor'): { rows: number; cols: number; numel: number } {
  if (shape.length === 0) {
    throw new ShapeError('cannot quantize a 0-d (scalar) tensor', { field: name, expected: 'at least 1 dimension', got: '[]' });
  }
  if (!shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new ShapeError('invalid shape', { field: name, expected: 'non-negative integers', got: `[${shape.join(', ')}]` });
  }
  const numel = shape.reduce((a, b) => a * b, 1);
  if (numel === 0) throw new ShapeError('cannot quantize an empty tensor', { field: name, expected: 'at least one element', got: `[${shape.join(', ')}]` });
  const rows = shape.length === 1 ? 1 : shape[0];
  return { rows, cols: numel / rows, numel };
}

/**
 * Throw NumericError at the first NaN/Inf, or (allowNonFinite) return a sanitized copy: NaN -> 0,
 * ±Inf -> ± the largest finite magnitude of its block (0 when the block has none). Returns x
 * itself when everything is finite.
 */
function checkFinite(x: Float32Array, name: string, allow: boolean, blockOf: (i: number) => [number, number]): Float32Array {
  let first = -1;
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    if (v - v !== 0) { // NaN and ±Inf are the only values where v - v is not 0
      first = i;
      break;
    }
  }
  if (first < 0) return x;
  if (!allow) {
    throw new NumericError('non-finite weight', {
      field: name, offset: first, expected: 'finite values', got: `${x[first]} at flat index ${first}`,
      hint: 'fix the checkpoint, or pass --allow-nonfinite (NaN -> 0, ±Inf -> ± the block maximum)',
    });
  }
  const out = Float32Array.from(x);
  for (let i = first; i < out.length; i++) {
    const v = out[i];
    if (v - v === 0) continue;
    if (Number.isNaN(v)) {
      out[i] = 0;
      continue;
    }
    const [b0, b1] = blockOf(i);
    let m = 0;
    for (let j = b0; j < b1; j++) if (Number.isFinite(x[j]) && Math.abs(x[j]) > m) m = Math.abs(x[j]);
    out[i] = v > 0 ? m : -m;
  }
  return out;
}

export class QuantizedTensor implements Quant4Weight {
  readonly quantType: Quant4Type;
  readonly rows: number;
  readonly cols: number;
  readonly numel: number;
  readonly codebook: Float32Array;
  readonly blocksPerRow: number;

  constructor(
    /** Torch shape of the original weight. */
    readonly shape: readonly number[],
    /** Dtype of the original weight (and of dequantizeToDtype). */
    readonly dtype: TorchFloatDtype,
    readonly settings: Quant4Settings,
    readonly packed: Uint8Array,
    readonly absmax: Float32Array | null,
    readonly dq: DoubleQuantScales | null,
    readonly zeros: Float32Array | null,
    /** The stored 16-entry map (index = code); defaults to the built-in table of the type. */
    codebook?: Float32Array,
    name = 'tensor',
  ) {
    const { rows, cols, numel } = matrixView(shape, name);
    this.rows = rows;
    this.cols = cols;
    this.numel = numel;
    this.quantType = settings.quantType;
    this.codebook = codebook ?? codebookFor(settings.quantType);
    this.blocksPerRow = settings.strategy === 'perChannel' ? Math.ceil(cols / settings.blockSize) : 0;
    const nb = quant4BlockCount(rows, cols, settings.blockSize, this.blocksPerRow);
    const problems: string[] = [];
    if (packed.length !== Math.ceil(numel / 2)) problems.push(`packed has ${packed.length} bytes, expected ${Math.ceil(numel / 2)}`);
    if ((absmax === null) === (dq === null)) problems.push('exactly one of absmax / double-quant scales must be given');
    if (absmax !== null && absmax.length !== nb) problems.push(`absmax has ${absmax.length} values, expected ${nb}`);
    if (dq !== null && dq.codes.length !== nb) problems.push(`double-quant codes: ${dq.codes.length}, expected ${nb}`);
    if (dq !== null && dq.nestedAbsmax.length !== Math.ceil(nb / dq.nestedBlockSize)) {
      problems.push(`nested absmax has ${dq.nestedAbsmax.length} values, expected ${Math.ceil(nb / dq.nestedBlockSize)}`);
    }
    if (dq !== null && dq.nestedMap.length !== 256) problems.push(`nested map has ${dq.nestedMap.length} entries, expected 256`);
    if (zeros !== null && zeros.length !== nb) problems.push(`zeros has ${zeros.length} values, expected ${nb}`);
    if ((zeros !== null) !== settings.zeroPoint) problems.push('zeros must be given exactly for the zero-point variant');
    if (this.codebook.length !== 16) problems.push(`codebook has ${this.codebook.length} entries, expected 16`);
    if (problems.length > 0) throw new ShapeError('inconsistent quantized tensor parts', { field: name, got: problems.join('; ') });
  }

  get blockSize(): number {
    return this.settings.blockSize;
  }

  get blockCount(): number {
    return quant4BlockCount(this.rows, this.cols, this.blockSize, this.blocksPerRow);
  }

  /**
   * Bytes of per-tensor data: packed codes + scales (f32 absmax, or u8 codes + f32 nested absmax +
   * the f32 offset) + f32 zeros. The constant tables (16-entry codebook, 256-entry nested map)
   * are shared by every tensor and not counted; bnb files store a copy of them per tensor.
   */
  sizeBytes(): number {
    let bytes = this.packed.length;
    if (this.absmax !== null) bytes += 4 * this.absmax.length;
    if (this.dq !== null) bytes += this.dq.codes.length + 4 * this.dq.nestedAbsmax.length + 4;
    if (this.zeros !== null) bytes += 4 * this.zeros.length;
    return bytes;
  }

  bitsPerParameter(): number {
    return (8 * this.sizeBytes()) / this.numel;
  }

  /** How many times smaller than the same tensor in f32 and in f16. */
  compressionRatio(): { vsF32: number; vsF16: number } {
    const s = this.sizeBytes();
    return { vsF32: (4 * this.numel) / s, vsF16: (2 * this.numel) / s };
  }

  /** The whole tensor in f32, flat row-major. */
  dequantize(): Float32Array {
    const out = new Float32Array(this.numel);
    dequantizeRangeRef(out, this, 0, this.numel);
    return out;
  }

  /** Rows r0..r1-1 in f32 ((r1 - r0) * cols values). */
  dequantizeRows(r0: number, r1: number): Float32Array {
    this.checkRows(r0, r1);
    const out = new Float32Array((r1 - r0) * this.cols);
    dequantizeRangeRef(out, this, r0 * this.cols, r1 * this.cols);
    return out;
  }

  /** Rows r0..r1-1 (default: all) into the caller's buffer, which must hold (r1 - r0) * cols values. */
  dequantizeInto(out: Float32Array, r0 = 0, r1 = this.rows): void {
    this.checkRows(r0, r1);
    const need = (r1 - r0) * this.cols;
    if (out.length < need) throw new ShapeError('output buffer too small', { expected: `>= ${need} values`, got: String(out.length) });
    dequantizeRangeRef(out, this, r0 * this.cols, r1 * this.cols);
  }

  /**
   * Dequantize and cast to the original dtype (bitsandbytes dequantize_4bit output): f32 values,
   * or f16/bf16 bits (round to nearest even) in a Uint16Array.
   */
  dequantizeToDtype(): Float32Array | Uint16Array {
    const f = this.dequantize();
    if (this.dtype === 'float32') return f;
    const out = new Uint16Array(f.length);
    const cast = this.dtype === 'float16' ? f32ToF16Bits : f32ToBf16Bits;
    for (let i = 0; i < f.length; i++) out[i] = cast(f[i]);
    return out;
  }

  private checkRows(r0: number, r1: number): void {
    if (!Number.isInteger(r0) || !Number.isInteger(r1) || r0 < 0 || r1 > this.rows || r0 > r1) {
      throw new ShapeError('row range out of bounds', { expected: `0 <= r0 <= r1 <= ${this.rows}`, got: `[${r0}, ${r1})` });
    }
  }
}

/**
 * Quantize a weight (f32 values, flat row-major, torch `shape`) with the reference arithmetic.
 * Blockwise without zero point is bitsandbytes' quantize_4bit exactly (with DQ: its
 * compress_statistics), byte for byte.
 */
export function quantizeTensor(x: Float32Array, shape: readonly number[], settings: Quant4Settings, opts: QuantizeTensorOptions = {}): QuantizedTensor {
  const name = opts.name ?? 'tensor';
  const { rows, cols, numel } = matrixView(shape, name);
  if (x.length !== numel) throw new ShapeError('data length does not match the shape', { field: name, expected: String(numel), got: String(x.length) });
  const { blockSize, strategy, zeroPoint, quantType } = settings;
  const perChannel = strategy === 'perChannel';
  const blockOf = (i: number): [number, number] => {
    if (!perChannel) {
      const b0 = i - (i % blockSize);
      return [b0, Math.min(numel, b0 + blockSize)];
    }
    const r = Math.floor(i / cols);
    const c0 = (i - r * cols) - ((i - r * cols) % blockSize);
    return [r * cols + c0, r * cols + Math.min(cols, c0 + blockSize)];
  };
  const data = checkFinite(x, name, opts.allowNonFinite ?? false, blockOf);
  const nb = quant4BlockCount(rows, cols, blockSize, perChannel ? Math.ceil(cols / blockSize) : 0);
  const packedBytes = Math.ceil(numel / 2);
  const packed = opts.packedStorage?.(packedBytes) ?? new Uint8Array(packedBytes);
  if (packed.length !== packedBytes) throw new ShapeError('packedStorage returned the wrong size', { field: name, expected: String(packedBytes), got: String(packed.length) });
  const absmax = new Float32Array(nb);
  const zeros = zeroPoint ? new Float32Array(nb) : null;
  if (opts.blockwise4 !== undefined && !perChannel && zeros === null) opts.blockwise4(packed, absmax, data, numel, blockSize, quantType);
  else quantizeRows4Ref(packed, absmax, zeros, data, rows, cols, blockSize, quantType, perChannel);
  const dq = settings.doubleQuant ? doubleQuantize(absmax) : null;
  return new QuantizedTensor(shape, opts.sourceDtype ?? 'float32', settings, packed, dq === null ? absmax : null, dq, zeros, undefined, name);
}
