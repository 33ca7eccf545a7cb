// Reference decode and encode of 4-bit weights (Quant4Weight, src/quant/types.ts): the block and
// scale of an element, a row of dequantized values, and bitsandbytes' blockwise quantizer.
// Decode follows FORMATS.md §3.6 / types.ts to the bit; encode follows §3.1-§3.3 (the torch/CPU
// path of bitsandbytes/backends/default/ops.py). These are what the ref kernels call; they are
// the oracle for the wasm kernels' in-panel dequantization.
// NOT the quant layer's public API (src/quant/), which builds Quant4Weight objects from files.

import type { Quant4Weight } from '../../quant/types.js';

/** f32(1e-38): the torch path's lower clamp of a block's absmax (FORMATS.md §3.3 step 3). */
const ABSMAX_FLOOR = Math.fround(1e-38);

/** Scale of first-level block b (plain absmax, or decoded double-quantized scale, §3.6). */
export function q4BlockScale(w: Quant4Weight, b: number): number {
  if (w.absmax !== null) return w.absmax[b];
  const dq = w.dq!;
  const nested = Math.fround(dq.nestedMap[dq.codes[b]] * dq.nestedAbsmax[Math.floor(b / dq.nestedBlockSize)]);
  return Math.fround(nested + dq.offset);
}

/**
 * out[0..cols) = dequantized row r of w (f32): w = f32(codebook[q] · scale[b]) (+ zeros[b]).
 * Element (r, c) has flat index i = r·cols + c, code in byte i>>1 (high nibble for even i).
 */
export function dequantizeQ4Row(out: Float32Array, w: Quant4Weight, r: number): void {
  const { cols, blockSize, blocksPerRow, packed, codebook, zeros } = w;
  let block = -1;
  let scale = 0;
  let zero = 0;
  for (let c = 0; c < cols; c++) {
    const i = r * cols + c;
    const b = blocksPerRow > 0 ? r * blocksPerRow + Math.floor(c / blockSize) : Math.floor(i / blockSize);
    if (b !== block) {
      block = b;
      scale = q4BlockScale(w, b);
      zero = zeros !== null ? zeros[b] : 0;
    }
    const byte = packed[i >> 1];
    const q = (i & 1) === 0 ? byte >> 4 : byte & 15;
    const v = Math.fround(codebook[q] * scale);
    out[c] = zeros !== null ? Math.fround(v + zero) : v;
  }
}

// ---- encode (FORMATS.md §3.1-§3.3) --------------------------------------------------------------
// TODO(H3 coordination): replace this block by a call to the quant layer's reference quantizer
// once src/quant/ exports it, so the codebook thresholds live in one place.

/** NF4 decision thresholds t[i] = f32((code[i] + code[i+1]) / 2), FORMATS.md §3.1 (bit patterns). */
const NF4_THRESHOLDS = f32FromBits([
  0xbf591cd8, 0xbf1c5270, 0xbeeb8480, 0xbeadea76, 0xbe703cec, 0xbe0d38bc, 0xbd3a7871, 0x3d22faff,
  0x3df64862, 0x3e5067e0, 0x3e9582d4, 0x3ec753f9, 0x3f006d04, 0x3f248daf, 0x3f5c89da,
]);
/** FP4: exact f32 midpoints of the sorted magnitudes (§3.2) and sorted position -> 3-bit pattern. */
const FP4_MIDPOINTS = Float32Array.from([
  0.0026041667442768812, 0.0859375, 0.2083333432674408, 0.2916666865348816, 0.4166666865348816,
  0.5833333730697632, 0.8333333730697632,
]);
const FP4_BITS_OF_SORTED = [0b000, 0b001, 0b110, 0b111, 0b100, 0b101, 0b010, 0b011];
/** Code of the value 0.0, used for the pad nibble of odd n (§3.3 step 5). */
const ZERO_CODE = { nf4: 7, fp4: 0 } as const;

function f32FromBits(bits: number[]): Float32Array {
  return new Float32Array(Uint32Array.from(bits).buffer);
}

/** 4-bit code of a scaled value s in [-1, 1]; exact ties go to the lower code (strict `>`). */
export function encode4(s: number, type: 'nf4' | 'fp4'): number {
  if (type === 'nf4') {
    let q = 0;
    for (let i = 0; i < 15; i++) if (s > NF4_THRESHOLDS[i]) q++;
    return q;
  }
  const sign = s < 0 ? 8 : 0;
  const a = Math.abs(s);
  let pos = 0;
  for (let i = 0; i < 7; i++) if (a > FP4_MIDPOINTS[i]) pos++;
  return sign | FP4_BITS_OF_SORTED[pos];
}

/**
 * bitsandbytes blockwise 4-bit quantization, torch/CPU path (§3.3): blocks of `blockSize` over the
 * flat x[n]; absmax[b] = max|x|; full blocks scale by f32(1 / max(absmax, 1e-38)), the partial
 * last block divides by max(absmax, 1e-38) and stores that clamped value; codes packed high
 * nibble first, odd n padded with the code of 0.0.
 */
export function quantizeBlockwise4Ref(packed: Uint8Array, absmax: Float32Array, x: Float32Array, n: number, blockSize: number, type: 'nf4' | 'fp4'): void {
  const nBlocks = Math.ceil(n / blockSize);
  const codes = new Uint8Array(blockSize);
  for (let b = 0; b < nBlocks; b++) {
    const start = b * blockSize;
    const len = Math.min(blockSize, n - start);
    let amax = 0;
    for (let j = 0; j < len; j++) {
      const a = Math.abs(x[start + j]);
      if (Number.isNaN(a)) {
        amax = NaN; // torch's max propagates NaN; every code of the block then becomes 0
        break;
      }
      if (a > amax) amax = a;
    }
    const clamped = Math.fround(Math.max(amax, ABSMAX_FLOOR));
    const partial = len < blockSize;
    const inv = Math.fround(1 / clamped);
    for (let j = 0; j < len; j++) {
      const raw = partial ? Math.fround(x[start + j] / clamped) : Math.fround(x[start + j] * inv);
      codes[j] = encode4(Math.min(1, Math.max(-1, raw)), type);
    }
    absmax[b] = partial ? clamped : amax;
    for (let j = 0; j < len; j++) {
      const i = start + j;
      const byte = i >> 1;
      packed[byte] = (i & 1) === 0 ? (codes[j] << 4) | ZERO_CODE[type] : (packed[byte] & 0xf0) | codes[j];
    }
  }
}
