// The Quant4 descriptor layout inside wasm memory, declared once for every kernel that reads it
// (q4.ts, gemv.ts, gemm-i8.ts). Written by src/kernels/wasm/q4cache.ts (its DESC table mirrors
// these offsets; AssemblyScript cannot share a module with TypeScript). All fields are u32 byte
// addresses or values; an address of 0 means "absent".

export const Q4D_PACKED: usize = 0;
/** 16 f32 values, index = 4-bit code. */
export const Q4D_CODEBOOK: usize = 4;
export const Q4D_ROWS: usize = 8;
export const Q4D_COLS: usize = 12;
export const Q4D_BLOCK_SIZE: usize = 16;
/** 0 = blockwise over the flat tensor; > 0 = blocks per row (perChannel). */
export const Q4D_BLOCKS_PER_ROW: usize = 20;
/** f32 scale per block (double-quantized scales are decoded when the weight is uploaded). */
export const Q4D_ABSMAX: usize = 24;
/** Zero-point offsets, or 0 when symmetric. */
export const Q4D_ZEROS: usize = 28;
/** 64 bytes: byte p of codebook[q] at planes + 16p + q (the swizzle tables of the decoder). */
export const Q4D_PLANES: usize = 32;

/** Scale of block b (FORMATS.md §3.6; q4cache.ts stores it decoded, as quant/blockwise.ts blockScale gives it). */
@inline export function q4BlockScale(d: usize, b: u32): f32 {
  return load<f32>(<usize>load<u32>(d, Q4D_ABSMAX) + (<usize>b << 2));
}
