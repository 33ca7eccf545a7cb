// The bitsandbytes codebooks, as literal float32 bit patterns, in exactly one place: the NF4 and
// FP4 4-bit tables (index = code), their decision midpoints, FP4's sorted-position -> code map and
// the 256-entry signed dynamic map of double quantization. Everything else imports from here.
// Not here: the arithmetic that uses them (blockwise.ts).
//
// Sources (FORMATS.md §3.1, §3.2, §3.5): bitsandbytes-foundation/bitsandbytes
// bitsandbytes/functional.py (get_4bit_type, create_dynamic_map) and csrc/kernels.cu
// (dQuantizeNF4 thresholds). Upstream declares the hard-coded NF4 values canonical: never regenerate.

import type { Quant4Type } from './types.js';

function f32Table(bits: readonly number[]): Float32Array {
  return new Float32Array(new Uint32Array(bits).buffer);
}

/** NF4 values, index = 4-bit code (§3.1). Asymmetric: 7 negatives, exact 0 at code 7, 8 positives. */
export const NF4_CODEBOOK: Float32Array = f32Table([
  0xbf800000, 0xbf3239b1, 0xbf066b30, 0xbeca32a0, 0xbe91a24d, 0xbe3d353f, 0xbdba7871, 0x00000000,
  0x3da2faff, 0x3e24cae3, 0x3e7c04dd, 0x3ead033a, 0x3ee1a4b8, 0x3f1007ab, 0x3f3913b3, 0x3f800000,
]);

/** NF4 decision thresholds t[i] = f32((code[i] + code[i+1]) / 2); code(s) = #{i : s > t[i]}. */
export const NF4_MIDPOINTS: Float32Array = f32Table([
  0xbf591cd8, 0xbf1c5270, 0xbeeb8480, 0xbeadea76, 0xbe703cec, 0xbe0d38bc, 0xbd3a7871, 0x3d22faff,
  0x3df64862, 0x3e5067e0, 0x3e9582d4, 0x3ec753f9, 0x3f006d04, 0x3f248daf, 0x3f5c89da,
]);

/**
 * FP4 values in BIT-PATTERN order (bit 3 = sign, bits 2..0 index the magnitude), raw magnitudes
 * [0, 0.0625, 8, 12, 4, 6, 2, 3] / 12 (§3.2). Entry 8 is +0.0: upstream writes the integer -0.
 * Not the OCP/MX E2M1 table.
 */
export const FP4_CODEBOOK: Float32Array = f32Table([
  0x00000000, 0x3baaaaab, 0x3f2aaaab, 0x3f800000, 0x3eaaaaab, 0x3f000000, 0x3e2aaaab, 0x3e800000,
  0x00000000, 0xbbaaaaab, 0xbf2aaaab, 0xbf800000, 0xbeaaaaab, 0xbf000000, 0xbe2aaaab, 0xbe800000,
]);

/**
 * The 15 float32 midpoints of the SORTED FP4 codebook (which holds two zeros, code 0 then code 8,
 * with midpoint 0.0 between them): the default (torch) backend's thresholds. CUDA's rounded
 * literals differ by a few ulp at five of them (FORMATS.md §3.7, bnb README "FP4 thresholds").
 */
export const FP4_MIDPOINTS_SORTED: Float32Array = f32Table([
  0xbf555556, 0xbf155556, 0xbed55556, 0xbe955556, 0xbe555556, 0xbdb00000, 0xbb2aaaab, 0x00000000,
  0x3b2aaaab, 0x3db00000, 0x3e555556, 0x3e955556, 0x3ed55556, 0x3f155556, 0x3f555556,
]);

/** Sorted position k (number of FP4 midpoints strictly below s) -> 4-bit FP4 code. */
export const FP4_SORTED_INDEX_TO_CODE: Uint8Array = new Uint8Array([11, 10, 13, 12, 15, 14, 9, 0, 8, 1, 6, 7, 4, 5, 2, 3]);

/**
 * create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8), sorted ascending
 * (index = 8-bit code): m[127] = 0, m[255] = 1.0, m[k] = -m[254-k] (§3.5).
 */
export const DYNAMIC_MAP_SIGNED: Float32Array = f32Table([
  0xbf7e3333, 0xbf7a999a, 0xbf770000, 0xbf736666, 0xbf6fcccd, 0xbf6c3333, 0xbf68999a, 0xbf650000,
  0xbf616666, 0xbf5dcccd, 0xbf5a3333, 0xbf56999a, 0xbf530000, 0xbf4f6666, 0xbf4bcccd, 0xbf483333,
  0xbf44999a, 0xbf410000, 0xbf3d6666, 0xbf39cccd, 0xbf363334, 0xbf32999a, 0xbf2f0000, 0xbf2b6666,
  0xbf27cccd, 0xbf243334, 0xbf20999a, 0xbf1d0000, 0xbf196666, 0xbf15cccd, 0xbf123334, 0xbf0e999a,
  0xbf0b0000, 0xbf076666, 0xbf03cccc, 0xbf003333, 0xbef93332, 0xbef20000, 0xbeeacccc, 0xbee3999a,
  0xbedc6666, 0xbed53333, 0xbece0000, 0xbec6cccc, 0xbebf999a, 0xbeb86666, 0xbeb13333, 0xbeaa0000,
  0xbea2cccc, 0xbe9b999a, 0xbe946666, 0xbe8d3334, 0xbe860000, 0xbe7d9999, 0xbe6f3333, 0xbe60cccd,
  0xbe526666, 0xbe440000, 0xbe35999a, 0xbe273333, 0xbe18cccd, 0xbe0a6666, 0xbdf80000, 0xbddb3334,
  0xbdc9eb85, 0xbdc428f7, 0xbdbe6667, 0xbdb8a3d7, 0xbdb2e148, 0xbdad1eb8, 0xbda75c2a, 0xbda1999a,
  0xbd9bd70a, 0xbd96147b, 0xbd9051eb, 0xbd8a8f5d, 0xbd84cccd, 0xbd7e147b, 0xbd728f5d, 0xbd670a3d,
  0xbd5b851f, 0xbd500000, 0xbd447ae1, 0xbd38f5c3, 0xbd2d70a3, 0xbd21eb85, 0xbd166667, 0xbd0ae148,
  0xbcfeb852, 0xbce7ae15, 0xbcd0a3d7, 0xbcb9999a, 0xbca28f5d, 0xbc8b851f, 0xbc68f5c3, 0xbc3ae148,
  0xbc1f3b64, 0xbc160418, 0xbc0ccccd, 0xbc039581, 0xbbf4bc6a, 0xbbe24dd3, 0xbbcfdf3b, 0xbbbd70a4,
  0xbbab020d, 0xbb989374, 0xbb8624dd, 0xbb676c8a, 0xbb428f5c, 0xbb1db22d, 0xbaf1a9fc, 0xbaa7ef9d,
  0xba7765ff, 0xba59e83e, 0xba3c6a80, 0xba1eecc1, 0xba016f01, 0xb9c7e283, 0xb98ce705, 0xb923d70b,
  0xb8ba1f4b, 0xb88aefb3, 0xb8378034, 0xb7b24206, 0xb70205ff, 0xb65a1a94, 0xb513a3b7, 0x00000000,
  0x3513a3b7, 0x365a1a94, 0x370205ff, 0x37b24206, 0x38378034, 0x388aefb3, 0x38ba1f4b, 0x3923d70b,
  0x398ce705, 0x39c7e283, 0x3a016f01, 0x3a1eecc1, 0x3a3c6a80, 0x3a59e83e, 0x3a7765ff, 0x3aa7ef9d,
  0x3af1a9fc, 0x3b1db22d, 0x3b428f5c, 0x3b676c8a, 0x3b8624dd, 0x3b989374, 0x3bab020d, 0x3bbd70a4,
  0x3bcfdf3b, 0x3be24dd3, 0x3bf4bc6a, 0x3c039581, 0x3c0ccccd, 0x3c160418, 0x3c1f3b64, 0x3c3ae148,
  0x3c68f5c3, 0x3c8b851f, 0x3ca28f5d, 0x3cb9999a, 0x3cd0a3d7, 0x3ce7ae15, 0x3cfeb852, 0x3d0ae148,
  0x3d166667, 0x3d21eb85, 0x3d2d70a3, 0x3d38f5c3, 0x3d447ae1, 0x3d500000, 0x3d5b851f, 0x3d670a3d,
  0x3d728f5d, 0x3d7e147b, 0x3d84cccd, 0x3d8a8f5d, 0x3d9051eb, 0x3d96147b, 0x3d9bd70a, 0x3da1999a,
  0x3da75c2a, 0x3dad1eb8, 0x3db2e148, 0x3db8a3d7, 0x3dbe6667, 0x3dc428f7, 0x3dc9eb85, 0x3ddb3334,
  0x3df80000, 0x3e0a6666, 0x3e18cccd, 0x3e273333, 0x3e35999a, 0x3e440000, 0x3e526666, 0x3e60cccd,
  0x3e6f3333, 0x3e7d9999, 0x3e860000, 0x3e8d3334, 0x3e946666, 0x3e9b999a, 0x3ea2cccc, 0x3eaa0000,
  0x3eb13333, 0x3eb86666, 0x3ebf999a, 0x3ec6cccc, 0x3ece0000, 0x3ed53333, 0x3edc6666, 0x3ee3999a,
  0x3eeacccc, 0x3ef20000, 0x3ef93332, 0x3f003333, 0x3f03cccc, 0x3f076666, 0x3f0b0000, 0x3f0e999a,
  0x3f123334, 0x3f15cccd, 0x3f196666, 0x3f1d0000, 0x3f20999a, 0x3f243334, 0x3f27cccd, 0x3f2b6666,
  0x3f2f0000, 0x3f32999a, 0x3f363334, 0x3f39cccd, 0x3f3d6666, 0x3f410000, 0x3f44999a, 0x3f483333,
  0x3f4bcccd, 0x3f4f6666, 0x3f530000, 0x3f56999a, 0x3f5a3333, 0x3f5dcccd, 0x3f616666, 0x3f650000,
  0x3f68999a, 0x3f6c3333, 0x3f6fcccd, 0x3f736666, 0x3f770000, 0x3f7a999a, 0x3f7e3333, 0x3f800000,
]);

/** f32((m[k] + m[k+1]) / 2) for a sorted table m: the midpoints the torch path compares against. */
function sortedMidpoints(m: Float32Array): Float32Array {
  const out = new Float32Array(m.length - 1);
  // The f64 sum of two f32 values is exact and /2 is exact, so one fround equals torch's f32 ops.
  for (let k = 0; k < out.length; k++) out[k] = Math.fround((m[k] + m[k + 1]) / 2);
  return out;
}

/** The 255 decision midpoints of DYNAMIC_MAP_SIGNED (code = #{k : s > mid[k]}). */
export const DYNAMIC_MAP_SIGNED_MIDPOINTS: Float32Array = sortedMidpoints(DYNAMIC_MAP_SIGNED);

/** Block size of the nested (second-level) quantization of absmax in bitsandbytes. */
export const NESTED_BLOCK_SIZE = 256;

/** f32(1e-38): the floor the torch path applies to absmax before scaling (a subnormal). */
export const ABSMAX_FLOOR = Math.fround(1e-38);

/** The 16-entry quant_map stored with a tensor of this type (index = code). */
export function codebookFor(type: Quant4Type): Float32Array {
  return type === 'nf4' ? NF4_CODEBOOK : FP4_CODEBOOK;
}

/** The 4-bit code of the value 0.0 (the odd-n pad nibble and the code of an all-zero block). */
export function zeroCodeFor(type: Quant4Type): number {
  return type === 'nf4' ? 7 : 0;
}
