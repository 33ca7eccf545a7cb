// The data contract of a 4-bit weight as the compute kernels see it. The quant layer builds these
// (QuantizedTensor exposes one), the kernels consume them; neither copies the other's logic.
//
// Element (r, c) of a [rows, cols] weight (torch order, rows = out_features) has flat index
// i = r * cols + c. Codes are packed two per byte, bitsandbytes order: element i lives in byte
// i >> 1, in the HIGH nibble when i is even and the LOW nibble when i is odd (FORMATS.md §3.3).
//
// The block of element (r, c):
//   blockwise  (blocksPerRow = 0): b = floor(i / blockSize)                     (bitsandbytes)
//   perChannel (blocksPerRow > 0): b = r * blocksPerRow + floor(c / blockSize)  (blocks never cross rows)
// Its scale:
//   absmax != null: scale[b] = absmax[b]
//   dq != null:     scale[b] = f32(f32(dq.nestedMap[dq.codes[b]] * dq.nestedAbsmax[floor(b / dq.nestedBlockSize)]) + dq.offset)
// Its value: w = f32(codebook[q] * scale[b]), plus zeros[b] when zeros != null (zero-point variant).

export type Quant4Type = 'nf4' | 'fp4';

export interface DoubleQuantScales {
  /** One 8-bit code per first-level block, indexes nestedMap. */
  readonly codes: Uint8Array;
  /** One f32 scale per nested block of nestedBlockSize first-level blocks. */
  readonly nestedAbsmax: Float32Array;
  /** 256-entry signed dynamic map (FORMATS.md §3.5). */
  readonly nestedMap: Float32Array;
  /** Mean of the first-level absmax, added back after decoding (an f32 value). */
  readonly offset: number;
  /** 256 in bitsandbytes. */
  readonly nestedBlockSize: number;
}

export interface Quant4Weight {
  readonly quantType: Quant4Type;
  readonly rows: number;
  readonly cols: number;
  /** ceil(rows * cols / 2) bytes. */
  readonly packed: Uint8Array;
  /** 16 f32 values, index = 4-bit code. */
  readonly codebook: Float32Array;
  readonly blockSize: number;
  /** 0 for blockwise (blocks over the flat tensor); ceil(cols / blockSize) for perChannel. */
  readonly blocksPerRow: number;
  /** Plain f32 scales, one per block; null when double-quantized. */
  readonly absmax: Float32Array | null;
  /** Double-quantized scales; null when plain. Exactly one of absmax / dq is set. */
  readonly dq: DoubleQuantScales | null;
  /** Zero-point (asymmetric) variant: per-block offset added after scaling; null when symmetric. */
  readonly zeros: Float32Array | null;
}

/** Number of scale blocks of a Quant4Weight layout. */
export function quant4BlockCount(rows: number, cols: number, blockSize: number, blocksPerRow: number): number {
  return blocksPerRow > 0 ? rows * blocksPerRow : Math.ceil((rows * cols) / blockSize);
}
