// Reference encoders from f32 to the ggml types qlora-ts exports: F32, F16, BF16, Q8_0, Q4_0 and
// IQ4_NL. Each is byte-exact with what llama.cpp's `llama-quantize` writes without an importance
// matrix: every f32 operation is rounded (Math.fround) in ggml's evaluation order, and only the
// stored scale is rounded to f16 (quants use the unrounded f32 scale). These are the oracles;
// faster twins, if any, are tested against them.
//
// Sources: ggml-org/llama.cpp `ggml/src/ggml-quants.c`: quantize_row_q8_0_ref,
// quantize_row_q4_0_ref, quantize_iq4_nl -> quantize_row_iq4_nl_impl (ntry = 7),
// best_index_int8; `ggml/src/ggml-impl.h` (fp16/bf16 rounding). FORMATS.md §1, §7.2-7.4.
// Decoders are in formats/gguf/dequant.ts (re-exported by ./index.ts).

import { NumericError, UnsupportedError } from '../../errors.js';
import { f32ToBf16Bits, f32ToF16Bits } from '../../formats/dtype.js';
import { KVALUES_IQ4NL } from '../../formats/gguf/dequant.js';
import { GgmlType, QK32, ggmlTypeName, ggmlTypeTraits } from '../../formats/gguf/ggml-types.js';

const fr = Math.fround;

/** Types quantizeGgml can write. */
export const QUANTIZABLE_TYPES: readonly GgmlType[] = Object.freeze([GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.IQ4_NL]);

/** ggml GROUP_MAX_EPS: an IQ4_NL block whose largest |x| is below this is encoded as zeros. */
const IQ4NL_GROUP_MAX_EPS = fr(1e-15);
/** quantize_iq4_nl searches scales (t + kvalues[0]) / max for t = -NTRY..NTRY. */
const IQ4NL_NTRY = 7;

/** Little-endian u16 store (byte writes: endian-independent and faster than DataView in V8). */
function putU16(out: Uint8Array, p: number, v: number): void {
  out[p] = v & 0xff;
  out[p + 1] = v >>> 8;
}

/** C roundf: half away from zero. Exact in f64 for f32 inputs. */
function roundHalfAway(x: number): number {
  return Math.sign(x) * Math.floor(Math.abs(x) + 0.5);
}

/** Q8_0 block: d = amax/127, q = roundf(x/d) (FORMATS.md §7.2). */
function quantizeBlockQ8_0(x: Float32Array, o: number, out: Uint8Array, p: number): void {
  let amax = 0;
  for (let j = 0; j < QK32; j++) amax = Math.max(amax, Math.abs(x[o + j]));
  const d = fr(amax / 127);
  const id = d !== 0 ? fr(1 / d) : 0;
  putU16(out, p, f32ToF16Bits(d));
  for (let j = 0; j < QK32; j++) out[p + 2 + j] = roundHalfAway(fr(x[o + j] * id)) & 0xff;
}

/** Q4_0 block: d = (signed value of largest |x|) / -8, q = min(15, trunc(x/d + 8.5)) (§7.3). */
function quantizeBlockQ4_0(x: Float32Array, o: number, out: Uint8Array, p: number): void {
  let amax = 0;
  let max = 0;
  for (let j = 0; j < QK32; j++) {
    const v = x[o + j];
    if (amax < Math.abs(v)) {
      amax = Math.abs(v);
      max = v;
    }
  }
  const d = fr(max / -8); // an all-zero block gives -0.0, stored as f16 0x8000 like ggml
  const id = d !== 0 ? fr(1 / d) : 0;
  putU16(out, p, f32ToF16Bits(d));
  for (let j = 0; j < QK32 / 2; j++) {
    const q0 = Math.min(15, Math.trunc(fr(fr(x[o + j] * id) + 8.5)));
    const q1 = Math.min(15, Math.trunc(fr(fr(x[o + j + QK32 / 2] * id) + 8.5)));
    out[p + 2 + j] = q0 | (q1 << 4); // low nibble: element j; high: element j + 16
  }
}

/**
 * Index of the IQ4_NL table entry nearest to v; an exact tie goes to the upper entry. Literal port
 * of ggml best_index_int8 (binary search, then f32 distances): the reference twin of
 * bestIndexIq4nl.
 */
export function bestIndexIq4nlRef(v: number): number {
  const k = KVALUES_IQ4NL;
  if (v <= k[0]) return 0;
  if (v >= k[15]) return 15;
  let lo = 0;
  let hi = 15;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (v < k[mid]) hi = mid;
    else lo = mid;
  }
  return fr(v - k[hi - 1]) < fr(k[hi] - v) ? hi - 1 : hi;
}

/**
 * bestIndexIq4nl by table: the index is the number of midpoints (k[i] + k[i+1]) / 2 that are <= v.
 * The table entries are integers, so every midpoint is a multiple of 1/2 and floor(2v) decides.
 * The f32 distances of the reference compare like exact ones: near a midpoint both distances are
 * exactly representable, and away from it rounding cannot reorder them (tested exhaustively
 * around every midpoint against bestIndexIq4nlRef).
 */
const IQ4NL_LO = KVALUES_IQ4NL[0];
const IQ4NL_HI = KVALUES_IQ4NL[15];
const IQ4NL_INDEX_BY_HALF = Uint8Array.from({ length: 2 * (IQ4NL_HI - IQ4NL_LO) + 1 }, (_, j) => {
  const v = IQ4NL_LO + j / 2;
  let count = 0;
  for (let i = 0; i < 15; i++) if ((KVALUES_IQ4NL[i] + KVALUES_IQ4NL[i + 1]) / 2 <= v) count++;
  return count;
});

export function bestIndexIq4nl(v: number): number {
  if (v <= IQ4NL_LO) return 0;
  if (!(v < IQ4NL_HI)) return 15; // NaN lands here too, as in the reference
  return IQ4NL_INDEX_BY_HALF[Math.floor(2 * (v - IQ4NL_LO))];
}

/** Scratch of one IQ4_NL block: weights x^2 and the result of the last fit. */
const iq4Weights = new Float32Array(QK32);
let fitSumQ2 = 0;

/**
 * Weighted least-squares terms of the indices picked with inverse scale `id`: returns sumqx and
 * leaves sumq2 in fitSumQ2 (no tuple allocation: this runs 16 times per block). f32 accumulation
 * in element order, as ggml.
 */
function fitIq4nl(x: Float32Array, o: number, id: number): number {
  let sumqx = 0;
  let sumq2 = 0;
  for (let j = 0; j < QK32; j++) {
    const xj = x[o + j];
    const q = KVALUES_IQ4NL[bestIndexIq4nl(fr(id * xj))];
    const wq = fr(iq4Weights[j] * q);
    sumqx = fr(sumqx + fr(wq * xj));
    sumq2 = fr(sumq2 + fr(wq * q));
  }
  fitSumQ2 = sumq2;
  return sumqx;
}

/** IQ4_NL block as llama-quantize writes it: quantize_row_iq4_nl_impl(32, 32, ntry = 7) (§7.4). */
function quantizeBlockIq4nl(x: Float32Array, o: number, out: Uint8Array, p: number, L: Uint8Array): void {
  let amax = 0;
  let max = 0;
  for (let j = 0; j < QK32; j++) {
    const xj = x[o + j];
    iq4Weights[j] = fr(xj * xj); // no importance matrix: weight = x^2
    const ax = Math.abs(xj);
    if (ax > amax) {
      amax = ax;
      max = xj;
    }
  }
  let d = 0;
  if (amax >= IQ4NL_GROUP_MAX_EPS) {
    const k0 = KVALUES_IQ4NL[0];
    const d0 = fr(-max / k0);
    let sumqx = fitIq4nl(x, o, fr(1 / d0));
    d = fr(sumqx / fitSumQ2);
    let best = fr(d * sumqx);
    for (let t = -IQ4NL_NTRY; t <= IQ4NL_NTRY; t++) {
      sumqx = fitIq4nl(x, o, fr((t + k0) / max));
      const sumq2 = fitSumQ2;
      if (sumq2 > 0 && fr(sumqx * sumqx) > fr(best * sumq2)) {
        d = fr(sumqx / sumq2);
        best = fr(d * sumqx);
      }
    }
  }
  putU16(out, p, f32ToF16Bits(d));
  // Final indices are re-picked with the chosen (unrounded) scale.
  const id = d !== 0 ? fr(1 / d) : 0;
  for (let j = 0; j < QK32; j++) L[j] = bestIndexIq4nl(fr(id * x[o + j]));
  for (let j = 0; j < QK32 / 2; j++) out[p + 2 + j] = L[j] | (L[j + QK32 / 2] << 4);
}

function checkFinite(x: Float32Array, n: number, where?: { file?: string; field?: string }): void {
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(x[i])) {
      throw new NumericError('cannot quantize a non-finite value', { ...where, offset: i, expected: 'finite values', got: String(x[i]), hint: 'the source weights contain NaN or Inf' });
    }
  }
}

/**
 * Encodes the first `n` elements of `x` (default: all) as ggml `type`. For the 32-block types `n`
 * must be a multiple of 32; blocks run along the flat array, which equals row-by-row encoding
 * whenever the row length ne0 is a multiple of 32 (the GGUF rule). Block types refuse NaN/Inf.
 */
export function quantizeGgml(type: GgmlType, x: Float32Array, n = x.length, where?: { file?: string; field?: string }): Uint8Array {
  const traits = ggmlTypeTraits(type);
  if (traits === undefined || !QUANTIZABLE_TYPES.includes(type)) {
    throw new UnsupportedError(`cannot quantize to ggml type ${ggmlTypeName(type)}`, { ...where, expected: QUANTIZABLE_TYPES.map(ggmlTypeName).join(', '), got: ggmlTypeName(type) });
  }
  if (n % traits.blockElems !== 0) {
    throw new UnsupportedError(`${traits.name} needs a multiple of ${traits.blockElems} elements`, { ...where, expected: `a multiple of ${traits.blockElems}`, got: String(n), hint: 'use F16 or Q8_0 for tensors whose rows do not fit the block size' });
  }
  const nb = n / traits.blockElems;
  const bytes = new Uint8Array(nb * traits.blockBytes);
  const out = bytes;
  switch (type) {
    case GgmlType.F32: {
      const bits = new Uint32Array(x.buffer, x.byteOffset, n);
      for (let i = 0; i < n; i++) {
        const u = bits[i];
        out[4 * i] = u & 0xff;
        out[4 * i + 1] = (u >>> 8) & 0xff;
        out[4 * i + 2] = (u >>> 16) & 0xff;
        out[4 * i + 3] = u >>> 24;
      }
      return bytes;
    }
    case GgmlType.F16:
      for (let i = 0; i < n; i++) putU16(out, 2 * i, f32ToF16Bits(x[i]));
      return bytes;
    case GgmlType.BF16:
      for (let i = 0; i < n; i++) putU16(out, 2 * i, f32ToBf16Bits(x[i]));
      return bytes;
    default:
      break;
  }
  checkFinite(x, n, where);
  const L = new Uint8Array(QK32);
  for (let b = 0; b < nb; b++) {
    const o = b * QK32;
    const p = b * traits.blockBytes;
    if (type === GgmlType.Q8_0) quantizeBlockQ8_0(x, o, out, p);
    else if (type === GgmlType.Q4_0) quantizeBlockQ4_0(x, o, out, p);
    else quantizeBlockIq4nl(x, o, out, p, L);
  }
  return bytes;
}
