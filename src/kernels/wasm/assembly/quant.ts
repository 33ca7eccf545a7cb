// bitsandbytes blockwise 4-bit quantization in wasm, bit-exact with the plain TypeScript reference
// of the quant layer (src/quant/blockwise.ts quantizeBlockwise4Ref) and so with the torch/CPU path
// of bitsandbytes (bitsandbytes/backends/default/ops.py; FORMATS.md §3.1-§3.3):
//   absmax[b] = max|x| over the block (NaN elements are skipped by the strict '>', as the reference);
//   full blocks: s = clamp(f32(x · f32(1 / max(absmax, f32(1e-38)))), -1, 1), absmax stored as is;
//   a partial last block: s = clamp(f32(x / max(absmax, 1e-38))) and that clamped absmax is stored;
//   code = codeMap[number of sorted-codebook midpoints strictly below s] (ties take the lower code);
//   two codes per byte, first element in the HIGH nibble, odd n padded with the code of 0.0.
// The tables come from the caller so they stay defined in one place (src/quant/codebooks.ts):
//   table + 0:  15 f32 midpoints of the sorted codebook (NF4_MIDPOINTS / FP4_MIDPOINTS_SORTED)
//   table + 64: 16 u8 sorted position -> code (identity for NF4, FP4_SORTED_INDEX_TO_CODE)
// Not here: double quantization of absmax and the zero-point variant (quant layer, JS).

const ABSMAX_FLOOR: f32 = 1e-38;

/** Number of the 15 sorted midpoints at t strictly below s: a 4-level binary search. */
@inline function sortedPosition(s: f32, t: usize): u32 {
  let k: u32 = s > load<f32>(t, 28) ? 8 : 0;
  if (s > load<f32>(t + (<usize>(k + 3) << 2))) k += 4;
  if (s > load<f32>(t + (<usize>(k + 1) << 2))) k += 2;
  if (s > load<f32>(t + (<usize>k << 2))) k += 1;
  return k;
}

@inline function clampUnit(v: f32): f32 {
  return v > 1 ? 1 : v < -1 ? -1 : v;
}

/** Quantizes x[0..n) (f32 at x) into packed[ceil(n/2)] and absmax[ceil(n/blockSize)]. */
export function quantizeBlockwise4(packed: usize, absmax: usize, x: usize, n: i32, blockSize: i32, zeroCode: i32, table: usize): void {
  const nBlocks = (n + blockSize - 1) / blockSize;
  const codeMap = table + 64;
  for (let b = 0; b < nBlocks; b++) {
    const start = b * blockSize;
    const len = min(blockSize, n - start);
    let amax: f32 = 0;
    for (let j = 0; j < len; j++) {
      const a = abs<f32>(load<f32>(x + (<usize>(start + j) << 2)));
      if (a > amax) amax = a;
    }
    const clamped: f32 = amax > ABSMAX_FLOOR ? amax : ABSMAX_FLOOR;
    const partial = len < blockSize;
    const inv: f32 = <f32>1 / clamped;
    for (let j = 0; j < len; j++) {
      const i = start + j;
      const v = load<f32>(x + (<usize>i << 2));
      const s = clampUnit(partial ? v / clamped : v * inv);
      const q = <u32>load<u8>(codeMap + <usize>sortedPosition(s, table));
      const byteAt = packed + (<usize>i >> 1);
      if ((i & 1) == 0) store<u8>(byteAt, <u8>((q << 4) | <u32>zeroCode));
      else store<u8>(byteAt, <u8>((<u32>load<u8>(byteAt) & 0xf0) | q));
    }
    store<f32>(absmax + (<usize>b << 2), partial ? clamped : amax);
  }
}
