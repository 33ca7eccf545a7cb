// Decoders from ggml tensor bytes to f32 for the types real downloaded GGUF models use: F32, F16,
// BF16, Q8_0, Q4_0, Q4_1, IQ4_NL, Q4_K, Q6_K. Each block decoder follows ggml's
// `dequantize_row_*` arithmetic in f32 (products rounded with Math.fround in the same order).
// Decoding is part of reading the file, so it sits in formats/ beside the container reader;
// quant/ggml re-exports it next to the encoders (quantize.ts there).
//
// Sources: ggml-org/llama.cpp `ggml/src/ggml-quants.c` (dequantize_row_q4_0, _q4_1, _q8_0,
// _iq4_nl, _q4_K, _q6_K, get_scale_min_k4), `ggml/src/ggml-common.h` (kvalues_iq4nl).
// FORMATS.md §7.

import { UnsupportedError, FormatError } from '../../errors.js';
import { f16BitsToF32 } from '../dtype.js';
import { GgmlType, QK32, QK_K, ggmlTypeName, ggmlTypeTraits } from './ggml-types.js';
import { readTensorBytes } from './reader.js';
import type { GgufFile, GgufTensorInfo } from './types.js';

/** IQ4_NL non-linear codebook, index = 4-bit code (ggml-common.h kvalues_iq4nl). */
export const KVALUES_IQ4NL: Readonly<Int8Array> = Int8Array.of(-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113);

/** Byte offset of Q6_K's trailing f16 scale inside its 210-byte block. */
const Q6K_D_OFFSET = QK_K / 2 + QK_K / 4 + QK_K / 16;
/** Byte offsets inside a Q4_K block: d, dmin, scales[12], qs[128]. */
const Q4K_SCALES_OFFSET = 4;
const Q4K_QS_OFFSET = 16;

/** All 65536 f16 bit patterns decoded once: decoding by lookup is ~10x faster than by formula. */
let f16Table: Float32Array | undefined;
function f16ToF32Table(): Float32Array {
  if (f16Table === undefined) {
    f16Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16BitsToF32(h);
  }
  return f16Table;
}

// Little-endian fields are assembled from bytes: endian-independent and, unlike DataView, fast
// in V8 for element-by-element access.
const u16 = (b: Uint8Array, p: number): number => b[p] | (b[p + 1] << 8);
const i8 = (b: Uint8Array, p: number): number => (b[p] << 24) >> 24;

/** Types dequantizeGgml accepts. */
export const DEQUANTIZABLE_TYPES: readonly GgmlType[] = Object.freeze([
  GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.IQ4_NL, GgmlType.Q4_K, GgmlType.Q6_K,
]);

/** f32 and bf16 are decoded as bit patterns written through a u32 view of the output. */
function dequantF32(b: Uint8Array, y: Float32Array, n: number): void {
  const bits = new Uint32Array(y.buffer, y.byteOffset, n);
  for (let i = 0, p = 0; i < n; i++, p += 4) bits[i] = (b[p] | (b[p + 1] << 8) | (b[p + 2] << 16) | (b[p + 3] << 24)) >>> 0;
}

/** F16 elements: normal numbers by re-biasing the exponent (112 = 127 - 15) in the bit pattern, which avoids a table gather per element; zeros, subnormals, Inf and NaN via the table. */
function dequantF16(b: Uint8Array, y: Float32Array, n: number): void {
  const table = new Uint32Array(f16ToF32Table().buffer);
  const bits = new Uint32Array(y.buffer, y.byteOffset, n);
  for (let i = 0; i < n; i++) {
    const h = u16(b, 2 * i);
    const e = h & 0x7c00;
    bits[i] = e !== 0 && e !== 0x7c00 ? ((h & 0x8000) << 16) | (((h & 0x7fff) + (112 << 10)) << 13) : table[h];
  }
}

function dequantBf16(b: Uint8Array, y: Float32Array, n: number): void {
  const bits = new Uint32Array(y.buffer, y.byteOffset, n);
  for (let i = 0; i < n; i++) bits[i] = u16(b, 2 * i) << 16;
}

function dequantQ8_0(b: Uint8Array, y: Float32Array, nb: number): void {
  const t = f16ToF32Table();
  for (let k = 0, p = 0; k < nb; k++, p += 2 + QK32) {
    const d = t[u16(b, p)];
    for (let j = 0; j < QK32; j++) y[k * QK32 + j] = Math.fround(i8(b, p + 2 + j) * d);
  }
}

/** Q4_0 and IQ4_NL share the block shape and nibble order; `codes` maps a nibble to its factor. */
function dequantNibbles32(b: Uint8Array, y: Float32Array, nb: number, codes: ArrayLike<number>): void {
  const t = f16ToF32Table();
  for (let k = 0, p = 0; k < nb; k++, p += 2 + QK32 / 2) {
    const d = t[u16(b, p)];
    const o = k * QK32;
    for (let j = 0; j < QK32 / 2; j++) {
      const q = b[p + 2 + j];
      y[o + j] = Math.fround(codes[q & 0x0f] * d); // low nibble: element j
      y[o + j + QK32 / 2] = Math.fround(codes[q >> 4] * d); // high nibble: element j + 16
    }
  }
}

const Q4_0_CODES = Int8Array.from({ length: 16 }, (_, q) => q - 8);

function dequantQ4_1(b: Uint8Array, y: Float32Array, nb: number): void {
  const t = f16ToF32Table();
  for (let k = 0, p = 0; k < nb; k++, p += 4 + QK32 / 2) {
    const d = t[u16(b, p)];
    const m = t[u16(b, p + 2)];
    const o = k * QK32;
    for (let j = 0; j < QK32 / 2; j++) {
      const q = b[p + 4 + j];
      y[o + j] = Math.fround(Math.fround((q & 0x0f) * d) + m);
      y[o + j + QK32 / 2] = Math.fround(Math.fround((q >> 4) * d) + m);
    }
  }
}

/** 6-bit scale and min of Q4_K sub-block s from the 12 `scales` bytes at `at` (ggml get_scale_min_k4). */
export function q4kScaleMin(b: Uint8Array, at: number, s: number): [number, number] {
  if (s < 4) return [b[at + s] & 63, b[at + s + 4] & 63];
  return [(b[at + s + 4] & 0x0f) | ((b[at + s - 4] >> 6) << 4), (b[at + s + 4] >> 4) | ((b[at + s] >> 6) << 4)];
}

function dequantQ4_K(b: Uint8Array, y: Float32Array, nb: number): void {
  const t = f16ToF32Table();
  const blockBytes = ggmlTypeTraits(GgmlType.Q4_K)!.blockBytes;
  for (let k = 0, p = 0; k < nb; k++, p += blockBytes) {
    const d = t[u16(b, p)];
    const dmin = t[u16(b, p + 2)];
    for (let c = 0; c < 4; c++) {
      const [sc1, m1] = q4kScaleMin(b, p + Q4K_SCALES_OFFSET, 2 * c);
      const [sc2, m2] = q4kScaleMin(b, p + Q4K_SCALES_OFFSET, 2 * c + 1);
      const d1 = Math.fround(d * sc1), mm1 = Math.fround(dmin * m1);
      const d2 = Math.fround(d * sc2), mm2 = Math.fround(dmin * m2);
      const o = k * QK_K + 64 * c;
      for (let l = 0; l < 32; l++) {
        const q = b[p + Q4K_QS_OFFSET + 32 * c + l];
        y[o + l] = Math.fround(Math.fround(d1 * (q & 0x0f)) - mm1);
        y[o + 32 + l] = Math.fround(Math.fround(d2 * (q >> 4)) - mm2);
      }
    }
  }
}

function dequantQ6_K(b: Uint8Array, y: Float32Array, nb: number): void {
  const t = f16ToF32Table();
  const blockBytes = ggmlTypeTraits(GgmlType.Q6_K)!.blockBytes;
  for (let k = 0, p = 0; k < nb; k++, p += blockBytes) {
    const d = t[u16(b, p + Q6K_D_OFFSET)];
    for (let h = 0; h < 2; h++) {
      const ql = p + 64 * h;
      const qh = p + QK_K / 2 + 32 * h;
      const sc = p + QK_K / 2 + QK_K / 4 + 8 * h;
      const o = k * QK_K + 128 * h;
      for (let l = 0; l < 32; l++) {
        const i = l >> 4;
        const lo = b[ql + l], hi = b[ql + l + 32], qhl = b[qh + l];
        const q1 = ((lo & 0x0f) | ((qhl & 3) << 4)) - 32;
        const q2 = ((hi & 0x0f) | (((qhl >> 2) & 3) << 4)) - 32;
        const q3 = ((lo >> 4) | (((qhl >> 4) & 3) << 4)) - 32;
        const q4 = ((hi >> 4) | (((qhl >> 6) & 3) << 4)) - 32;
        y[o + l] = Math.fround(Math.fround(d * i8(b, sc + i)) * q1);
        y[o + l + 32] = Math.fround(Math.fround(d * i8(b, sc + i + 2)) * q2);
        y[o + l + 64] = Math.fround(Math.fround(d * i8(b, sc + i + 4)) * q3);
        y[o + l + 96] = Math.fround(Math.fround(d * i8(b, sc + i + 6)) * q4);
      }
    }
  }
}

/**
 * Decodes `nElements` elements of `type` from `src` (exactly the bytes of those elements) into
 * `dst` (a new Float32Array when omitted). `nElements` must be a multiple of the block size.
 */
export function dequantizeGgml(type: GgmlType, src: Uint8Array, nElements: number, dst?: Float32Array, where?: { file?: string; field?: string }): Float32Array {
  const traits = ggmlTypeTraits(type);
  if (traits === undefined || !DEQUANTIZABLE_TYPES.includes(type)) {
    throw new UnsupportedError(`cannot dequantize ggml type ${ggmlTypeName(type)}`, {
      ...where,
      expected: DEQUANTIZABLE_TYPES.map(ggmlTypeName).join(', '),
      got: ggmlTypeName(type),
      hint: 're-quantize the model to one of the supported types with llama-quantize',
    });
  }
  if (nElements % traits.blockElems !== 0) {
    throw new FormatError('element count is not a multiple of the block size', { ...where, expected: `a multiple of ${traits.blockElems}`, got: String(nElements) });
  }
  const nb = nElements / traits.blockElems;
  if (src.length !== nb * traits.blockBytes) {
    throw new FormatError('tensor byte size does not match its type and shape', { ...where, expected: `${nb * traits.blockBytes} bytes`, got: `${src.length} bytes` });
  }
  const y = dst ?? new Float32Array(nElements);
  if (y.length < nElements) throw new FormatError('output buffer too small', { ...where, expected: `${nElements} elements`, got: String(y.length) });
  switch (type) {
    case GgmlType.F32: dequantF32(src, y, nElements); break;
    case GgmlType.F16: dequantF16(src, y, nElements); break;
    case GgmlType.BF16: dequantBf16(src, y, nElements); break;
    case GgmlType.Q8_0: dequantQ8_0(src, y, nb); break;
    case GgmlType.Q4_0: dequantNibbles32(src, y, nb, Q4_0_CODES); break;
    case GgmlType.IQ4_NL: dequantNibbles32(src, y, nb, KVALUES_IQ4NL); break;
    case GgmlType.Q4_1: dequantQ4_1(src, y, nb); break;
    case GgmlType.Q4_K: dequantQ4_K(src, y, nb); break;
    case GgmlType.Q6_K: dequantQ6_K(src, y, nb); break;
  }
  return y;
}

/** Reads a tensor of a parsed GGUF file and decodes it to f32 (ggml element order, ne0 fastest). */
export function tensorToF32(file: GgufFile, info: GgufTensorInfo): Float32Array {
  const n = info.ne.reduce((a, b) => a * b, 1);
  return dequantizeGgml(info.type, readTensorBytes(file, info), n, undefined, { file: file.path, field: `tensor ${info.name}` });
}
