// f32 GEMM C[m0..m1, n0..n1) (+)= A · B for one thread's share of the output, with packed B panels
// and a 4x8 register tile (8 v128 accumulators; ARCHITECTURE.md §2: V8 spills beyond ~10 live
// v128, and 4x8 is the measured sweet spot). FMA (f32x4.relaxed_madd) in the relaxed build.
//
// Operands are byte addresses in the shared memory. A is read in place with two strides so one
// kernel serves every layout of the Kernels interface:
//   A(i, k) at a + i·aRow + k·aK          (X·Wᵀ and dY·W: aRow = 4·lda, aK = 4; dYᵀ·X: aRow = 4, aK = 4·N)
// B(k, j) comes from one of four sources, packed per (kc × nc) block into 8-column panels:
//   B_F32_T   B(k, j) = b[j·ldb + k]        (w[N,K] of X·Wᵀ)
//   B_F32_N   B(k, j) = b[k·ldb + j]        (w[N,K] of dY·W, x[M,K] of dYᵀ·X)
//   B_Q4_T    B(k, j) = dequant(w)[j, k]    (b = Quant4 descriptor, see q4.ts)
//   B_Q4_N    B(k, j) = dequant(w)[k, j]
// Panel layout: panel p holds columns 8p..8p+7; element (k, jj) at panel + (k·8 + jj)·4; columns
// past the matrix are zero (so a padded tile computes finite junk that is never stored).
// Not here: threading (the JS pool splits m or n ranges), GEMV (gemv.ts), 4-bit decoding (q4.ts).

import { q4DecodeRow } from './q4';

export const B_F32_T: i32 = 0;
export const B_F32_N: i32 = 1;
export const B_Q4_T: i32 = 2;
export const B_Q4_N: i32 = 3;

/** K block: one 8-column panel is KC·32 bytes (8 KiB), an L1-resident stream per tile. */
const KC: i32 = 256;
/** N block: the packed B block is KC·NC·4 bytes (512 KiB), L2-resident. */
const NC: i32 = 512;
/** Decoded 4-bit rows before packing: one row of NC (B_Q4_N) or 8 rows of KC (B_Q4_T). */
const ROW_FLOATS: i32 = NC > 8 * KC ? NC : 8 * KC;
/** Scratch bytes one thread needs: packed B block + decoded rows + one spill tile. */
export const GEMM_SCRATCH_BYTES: i32 = KC * NC * 4 + ROW_FLOATS * 4 + 4 * 8 * 4 + 64;

export function gemmScratchBytes(): i32 {
  return GEMM_SCRATCH_BYTES;
}

/** f32 capacity of the packed-panel area at the start of the scratch (GEMV reuses it as a row). */
export function gemmPanelFloats(): i32 {
  return KC * NC;
}

// ---- micro-kernels ------------------------------------------------------------------------------

@inline function fma(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(c, f32x4.mul(a, b));
}

/** 4x8 tile: c(i, j) (+)= Σ_k A(i, k)·panel(k, j), c rows ldc bytes apart. */
function micro4x8(c: usize, ldc: usize, a: usize, aRow: usize, aK: usize, bp: usize, kc: i32, acc: bool): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0);
  let c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0);
  let c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  let a0 = a, a1 = a + aRow, a2 = a + 2 * aRow, a3 = a + 3 * aRow;
  for (let k = 0; k < kc; k++) {
    const b0 = v128.load(bp);
    const b1 = v128.load(bp, 16);
    let x = v128.load32_splat(a0);
    c00 = fma(x, b0, c00); c01 = fma(x, b1, c01);
    x = v128.load32_splat(a1);
    c10 = fma(x, b0, c10); c11 = fma(x, b1, c11);
    x = v128.load32_splat(a2);
    c20 = fma(x, b0, c20); c21 = fma(x, b1, c21);
    x = v128.load32_splat(a3);
    c30 = fma(x, b0, c30); c31 = fma(x, b1, c31);
    a0 += aK; a1 += aK; a2 += aK; a3 += aK;
    bp += 32;
  }
  if (acc) {
    c00 = f32x4.add(c00, v128.load(c)); c01 = f32x4.add(c01, v128.load(c, 16)); c += ldc;
    c10 = f32x4.add(c10, v128.load(c)); c11 = f32x4.add(c11, v128.load(c, 16)); c += ldc;
    c20 = f32x4.add(c20, v128.load(c)); c21 = f32x4.add(c21, v128.load(c, 16)); c += ldc;
    c30 = f32x4.add(c30, v128.load(c)); c31 = f32x4.add(c31, v128.load(c, 16));
    c -= 3 * ldc;
  }
  v128.store(c, c00); v128.store(c, c01, 16); c += ldc;
  v128.store(c, c10); v128.store(c, c11, 16); c += ldc;
  v128.store(c, c20); v128.store(c, c21, 16); c += ldc;
  v128.store(c, c30); v128.store(c, c31, 16);
}

/** 1x8 tile (row remainder). */
function micro1x8(c: usize, a: usize, aK: usize, bp: usize, kc: i32, acc: bool): void {
  let s0 = f32x4.splat(0), s1 = f32x4.splat(0), t0 = f32x4.splat(0), t1 = f32x4.splat(0);
  let k = 0;
  for (; k + 2 <= kc; k += 2) {
    const x = v128.load32_splat(a);
    const y = v128.load32_splat(a + aK);
    s0 = fma(x, v128.load(bp), s0); s1 = fma(x, v128.load(bp, 16), s1);
    t0 = fma(y, v128.load(bp, 32), t0); t1 = fma(y, v128.load(bp, 48), t1);
    a += 2 * aK;
    bp += 64;
  }
  if (k < kc) {
    const x = v128.load32_splat(a);
    s0 = fma(x, v128.load(bp), s0); s1 = fma(x, v128.load(bp, 16), s1);
  }
  s0 = f32x4.add(s0, t0);
  s1 = f32x4.add(s1, t1);
  if (acc) {
    s0 = f32x4.add(s0, v128.load(c));
    s1 = f32x4.add(s1, v128.load(c, 16));
  }
  v128.store(c, s0);
  v128.store(c, s1, 16);
}

// ---- packing ------------------------------------------------------------------------------------

/** B(k, j) = b[j·ldb + k] for k in [k0, k0+kc), j in [n0, n0+nc); gathers 8 rows per panel. */
function packF32T(dst: usize, b: usize, ldb: usize, n0: i32, nc: i32, k0: i32, kc: i32): void {
  for (let p = 0; p < nc; p += 8) {
    const panel = dst + <usize>(p * kc) * 4;
    const cols = min(8, nc - p);
    if (cols == 8) {
      // 4x4 transposes: rows j..j+3 and k..k+3 in, 4 panel rows out.
      const r0 = b + (<usize>(n0 + p) * ldb + <usize>k0) * 4;
      const rs = ldb * 4;
      let k = 0;
      for (; k + 4 <= kc; k += 4) {
        const kb = <usize>k * 4;
        for (let h = 0; h < 2; h++) {
          const base = r0 + <usize>(h * 4) * rs + kb;
          const x0 = v128.load(base);
          const x1 = v128.load(base + rs);
          const x2 = v128.load(base + 2 * rs);
          const x3 = v128.load(base + 3 * rs);
          const t0 = v128.shuffle<f32>(x0, x1, 0, 4, 1, 5);
          const t1 = v128.shuffle<f32>(x2, x3, 0, 4, 1, 5);
          const t2 = v128.shuffle<f32>(x0, x1, 2, 6, 3, 7);
          const t3 = v128.shuffle<f32>(x2, x3, 2, 6, 3, 7);
          const o = panel + <usize>k * 32 + <usize>h * 16;
          v128.store(o, v128.shuffle<f32>(t0, t1, 0, 1, 4, 5));
          v128.store(o, v128.shuffle<f32>(t0, t1, 2, 3, 6, 7), 32);
          v128.store(o, v128.shuffle<f32>(t2, t3, 0, 1, 4, 5), 64);
          v128.store(o, v128.shuffle<f32>(t2, t3, 2, 3, 6, 7), 96);
        }
      }
      for (; k < kc; k++) {
        for (let jj = 0; jj < 8; jj++) {
          store<f32>(panel + <usize>(k * 8 + jj) * 4, load<f32>(r0 + <usize>jj * rs + <usize>k * 4));
        }
      }
    } else {
      for (let k = 0; k < kc; k++) {
        for (let jj = 0; jj < 8; jj++) {
          const v: f32 = jj < cols ? load<f32>(b + (<usize>(n0 + p + jj) * ldb + <usize>(k0 + k)) * 4) : 0;
          store<f32>(panel + <usize>(k * 8 + jj) * 4, v);
        }
      }
    }
  }
}

/** Copies one contiguous source row of nc values into row k of every panel (zero padded). */
function packRowN(dst: usize, src: usize, nc: i32, k: i32, kc: i32): void {
  let p = 0;
  for (; p + 8 <= nc; p += 8) {
    const o = dst + (<usize>(p * kc) + <usize>k * 8) * 4;
    v128.store(o, v128.load(src + <usize>p * 4));
    v128.store(o, v128.load(src + <usize>p * 4, 16), 16);
  }
  if (p < nc) {
    const o = dst + (<usize>(p * kc) + <usize>k * 8) * 4;
    for (let jj = 0; jj < 8; jj++) store<f32>(o + <usize>jj * 4, p + jj < nc ? load<f32>(src + <usize>(p + jj) * 4) : 0);
  }
}

function packB(dst: usize, bKind: i32, b: usize, ldb: usize, n0: i32, nc: i32, k0: i32, kc: i32, row: usize): void {
  if (bKind == B_F32_T) {
    packF32T(dst, b, ldb, n0, nc, k0, kc);
  } else if (bKind == B_F32_N) {
    for (let k = 0; k < kc; k++) packRowN(dst, b + (<usize>(k0 + k) * ldb + <usize>n0) * 4, nc, k, kc);
  } else if (bKind == B_Q4_N) {
    for (let k = 0; k < kc; k++) {
      q4DecodeRow(b, k0 + k, n0, n0 + nc, row);
      packRowN(dst, row, nc, k, kc);
    }
  } else {
    // B_Q4_T: decode the panel's (up to) 8 weight rows over [k0, k0+kc) into `row` (8 x kc),
    // then pack them with the same 4x4-transpose packer as an f32 weight.
    for (let p = 0; p < nc; p += 8) {
      const rows = min(8, nc - p);
      for (let jj = 0; jj < rows; jj++) q4DecodeRow(b, n0 + p + jj, k0, k0 + kc, row + <usize>(jj * kc) * 4);
      packF32T(dst + <usize>(p * kc) * 4, row, <usize>kc, 0, rows, 0, kc);
    }
  }
}

// ---- driver -------------------------------------------------------------------------------------

/**
 * C[i, j] (+)= Σ_k A(i, k)·B(k, j) for i in [m0, m1), j in [n0, n1), k in [0, K).
 * c: C base (element (i, j) at c + (i·ldc + j)·4). scratch: GEMM_SCRATCH_BYTES, 16-byte aligned,
 * private to the calling thread. accumulate = 0 overwrites C (also when K = 0).
 */
export function gemmF32(
  c: usize, ldc: i32, a: usize, aRow: i32, aK: i32, bKind: i32, b: usize, ldb: i32,
  m0: i32, m1: i32, n0: i32, n1: i32, K: i32, accumulate: i32, scratch: usize,
): void {
  if (m1 <= m0 || n1 <= n0) return;
  const ldcB = <usize>ldc * 4;
  if (K == 0) {
    if (accumulate == 0) for (let i = m0; i < m1; i++) memory.fill(c + <usize>i * ldcB + <usize>n0 * 4, 0, <usize>(n1 - n0) * 4);
    return;
  }
  const packed = scratch;
  const row = scratch + <usize>(KC * NC) * 4;
  const tile = row + <usize>ROW_FLOATS * 4;
  const aRowB = <usize>aRow;
  const aKB = <usize>aK;
  for (let k0 = 0; k0 < K; k0 += KC) {
    const kc = min(KC, K - k0);
    const acc = accumulate != 0 || k0 > 0;
    for (let nb = n0; nb < n1; nb += NC) {
      const nc = min(NC, n1 - nb);
      packB(packed, bKind, b, <usize>ldb, nb, nc, k0, kc, row);
      const aK0 = a + <usize>k0 * aKB;
      let i = m0;
      for (; i + 4 <= m1; i += 4) {
        const ai = aK0 + <usize>i * aRowB;
        for (let p = 0; p < nc; p += 8) {
          const bp = packed + <usize>(p * kc) * 4;
          const cij = c + <usize>i * ldcB + <usize>(nb + p) * 4;
          if (p + 8 <= nc) {
            micro4x8(cij, ldcB, ai, aRowB, aKB, bp, kc, acc);
          } else {
            const cols = nc - p;
            for (let r = 0; r < 4; r++) for (let jj = 0; jj < cols; jj++) {
              store<f32>(tile + <usize>(r * 8 + jj) * 4, load<f32>(cij + <usize>r * ldcB + <usize>jj * 4));
            }
            micro4x8(tile, 32, ai, aRowB, aKB, bp, kc, acc);
            for (let r = 0; r < 4; r++) for (let jj = 0; jj < cols; jj++) {
              store<f32>(cij + <usize>r * ldcB + <usize>jj * 4, load<f32>(tile + <usize>(r * 8 + jj) * 4));
            }
          }
        }
      }
      for (; i < m1; i++) {
        const ai = aK0 + <usize>i * aRowB;
        for (let p = 0; p < nc; p += 8) {
          const bp = packed + <usize>(p * kc) * 4;
          const cij = c + <usize>i * ldcB + <usize>(nb + p) * 4;
          if (p + 8 <= nc) {
            micro1x8(cij, ai, aKB, bp, kc, acc);
          } else {
            const cols = nc - p;
            for (let jj = 0; jj < cols; jj++) store<f32>(tile + <usize>jj * 4, load<f32>(cij + <usize>jj * 4));
            micro1x8(tile, ai, aKB, bp, kc, acc);
            for (let jj = 0; jj < cols; jj++) store<f32>(cij + <usize>jj * 4, load<f32>(tile + <usize>jj * 4));
          }
        }
      }
    }
  }
}
