// The Quant4 descriptor layout inside wasm memory, declared once for every kernel that reads it
// (q4.ts, gemv.ts, gemm-i8.ts). Written by src/kernels/wasm/q4cache.ts (its DESC table mirrors
// these offsets; AssemblyScript cannot share a module with TypeScript). All fields are u32 byte
// addresses or values except dqOffset (f32); an address of 0 means "absent".

export const Q4D_PACKED: usize = 0;
/** 16 f32 values, index = 4-bit code. */
export const Q4D_CODEBOOK: usize = 4;
export const Q4D_ROWS: usize = 8;
export const Q4D_COLS: usize = 12;
export const Q4D_BLOCK_SIZE: usize = 16;
/** 0 = blockwise over the flat tensor; > 0 = blocks per row (perChannel). */
export const Q4D_BLOCKS_PER_ROW: usize = 20;
/** Plain f32 scales, or 0 when double-quantized. */
export const Q4D_ABSMAX: usize = 24;
export const Q4D_DQ_CODES: usize = 28;
export const Q4D_DQ_NESTED_ABSMAX: usize = 32;
export const Q4D_DQ_NESTED_MAP: usize = 36;
export const Q4D_DQ_OFFSET: usize = 40;
export const Q4D_DQ_NESTED_BLOCK_SIZE: usize = 44;
/** Zero-point offsets, or 0 when symmetric. */
export const Q4D_ZEROS: usize = 48;
/** 64 bytes: byte p of codebook[q] at planes + 16p + q (the swizzle tables of the decoder). */
export const Q4D_PLANES: usize = 52;

/** Scale of block b (FORMATS.md §3.6): plain absmax, or f32(f32(map[code]·nested) + offset). */
@inline export function q4BlockScale(d: usize, b: u32): f32 {
  const absmax = <usize>load<u32>(d, Q4D_ABSMAX);
  if (absmax != 0) return load<f32>(absmax + (<usize>b << 2));
  const nb = b / load<u32>(d, Q4D_DQ_NESTED_BLOCK_SIZE);
  const code = <usize>load<u8>(<usize>load<u32>(d, Q4D_DQ_CODES) + <usize>b);
  const nested: f32 = load<f32>(<usize>load<u32>(d, Q4D_DQ_NESTED_MAP) + (code << 2)) * load<f32>(<usize>load<u32>(d, Q4D_DQ_NESTED_ABSMAX) + (<usize>nb << 2));
  return nested + load<f32>(d, Q4D_DQ_OFFSET);
}
