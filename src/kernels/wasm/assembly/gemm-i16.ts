// The int16 path of the frozen 4-bit matmuls of training (chosen with createKernels({
// int16Activations: true })): the forward X·Wᵀ and the input gradient dY·W, both as
//
//   C[M, Nout] (+)= A[M, Kc] · Bᵀ,   B[Nout, Kc] = the dequantized weight (X·Wᵀ) or its transpose (dY·W)
//
// with A quantized per (row, I16_BLOCK-long block of the contraction) and B per (column, block)
// to integers in ±4095, block sums exact in i32 (i32x4.dot_i16x8_s: 8 multiply-adds per
// instruction, standard SIMD, exact on every runtime), each block's sum scaled into the f32
// output. The arithmetic is DEFINED by src/kernels/ref/matmul-int16.ts; this file follows it bit
// for bit (plain f32 multiplies and adds, no fused multiply-add), so tests compare the two exactly.
//
// Three pool tasks per call (backend.ts): q4DequantizeRows writes the f32 weight once; then
// gemmI16Prepare quantizes a share of A's rows into 4-row tiles and packs a share of B's 8-column
// panels (B read through strides from that f32 weight: no transposed copy); then gemmI16Run
// computes a share of the output.
//
// Tile layout: tile u (rows 4u..4u+3) at qt + u·8·Kc bytes; the pair of contraction indices
// (2g, 2g+1) at 16g: [row 4u: 2 x i16][row 4u+1][row 4u+2][row 4u+3], so one 32-bit splat load
// gives a row's pair. Panel layout (gemmI16PanelBytes): pair g at 32g: [col 0..3 x (2g, 2g+1)] then
// [col 4..7 x ...] (i16), then per block 8 f32 column scales. Columns past Nout: codes 0, scale 0.
// Requirements (checked by the caller, ref/matmul-int16.ts int16Apply): Kc even.
// Not here: the arithmetic's definition and its measured error (ref/matmul-int16.ts), threading
// (backend.ts), the int8 path (gemm-i8.ts).

import { MIN_ABSMAX, ROUND_MAGIC, ROUND_MAGIC_BITS, roundScaled } from './act-i8';

/** Contraction indices per quantization block (ref/matmul-int16.ts INT16_BLOCK). */
const BLOCK: i32 = 64;
/** Largest |integer| of either operand: 64·4095² < 2^31, so a block sum never overflows. */
const LEVELS: f32 = 4095;
/** Packed panel bytes of one cache block, reused by every 4-row tile (as gemm-i8.ts). */
const L2_PANEL_BYTES: i32 = 512 * 1024;

@inline function blocksOf(Kc: i32): i32 {
  return (Kc + BLOCK - 1) / BLOCK;
}

/** Bytes of one packed 8-column panel over Kc (codes, then per-block column scales). */
export function gemmI16PanelBytes(Kc: i32): i32 {
  return 16 * Kc + 32 * blocksOf(Kc);
}

/** Rows of an activation tile (and of the register tile: 8 accumulators + 2 panel vectors + 1 splat). */
export const TILE_ROWS: i32 = 4;

/** Thread scratch: one block of 8 gathered columns (f32), one block of row codes (i16), one 4 x 8 spill tile. */
export function gemmI16ScratchBytes(): i32 {
  return BLOCK * 8 * 4 + BLOCK * 2 + TILE_ROWS * 8 * 4;
}

/** Bytes of the activation tiles of M rows over Kc. */
export function gemmI16TileBytes(M: i32, Kc: i32): i32 {
  return ((M + TILE_ROWS - 1) / TILE_ROWS) * TILE_ROWS * 2 * Kc;
}

/** max over lanes of the i32 lanes of m (absolute-value bit patterns: integer order = float order, NaN above Inf). */
@inline function laneMax(m: v128): i32 {
  m = i32x4.max_s(m, v128.shuffle<i32>(m, m, 2, 3, 0, 1));
  m = i32x4.max_s(m, v128.shuffle<i32>(m, m, 1, 0, 3, 2));
  return i32x4.extract_lane(m, 0);
}

/** round-half-even(f32(x · inv)) for |x · inv| < 2^22 (scalar twin of act-i8.ts roundScaled). */
@inline function roundScaledScalar(x: f32, inv: f32): i32 {
  return reinterpret<i32>(x * inv + ROUND_MAGIC) - ROUND_MAGIC_BITS;
}

// ---- activations --------------------------------------------------------------------------------

/**
 * Rows [m0, m1) of a [M, Kc] (f32, row-major) quantized per block into the 4-row tiles at qt and
 * the scales sa[i·nb + b] (f32). tmp: BLOCK i16 of scratch.
 */
function quantizeRowsI16(a: usize, Kc: i32, m0: i32, m1: i32, qt: usize, sa: usize, tmp: usize): void {
  const nb = blocksOf(Kc);
  const magic = f32x4.splat(ROUND_MAGIC);
  const magicBits = i32x4.splat(ROUND_MAGIC_BITS);
  const absMask = i32x4.splat(0x7fffffff);
  for (let i = m0; i < m1; i++) {
    const row = a + <usize>i * <usize>Kc * 4;
    const tileRow = qt + <usize>(i / TILE_ROWS) * <usize>(2 * TILE_ROWS * Kc) + <usize>(i % TILE_ROWS) * 4;
    for (let b = 0; b < nb; b++) {
      const t0 = b * BLOCK;
      const len = min(BLOCK, Kc - t0);
      const xb = row + <usize>t0 * 4;
      let m = i32x4.splat(0);
      let t = 0;
      for (; t + 4 <= len; t += 4) m = i32x4.max_s(m, v128.and(v128.load(xb + <usize>t * 4), absMask));
      let mi = laneMax(m);
      for (; t < len; t++) mi = max(mi, load<i32>(xb + <usize>t * 4) & 0x7fffffff);
      const absmax = reinterpret<f32>(mi);
      const invS: f32 = absmax > MIN_ABSMAX && absmax < Infinity ? LEVELS / absmax : 0;
      store<f32>(sa + (<usize>(i * nb + b) << 2), absmax / LEVELS);
      const inv = f32x4.splat(invS);
      t = 0;
      for (; t + 8 <= len; t += 8) {
        const n0 = roundScaled(v128.load(xb + <usize>t * 4), inv, magic, magicBits);
        const n1 = roundScaled(v128.load(xb + <usize>t * 4, 16), inv, magic, magicBits);
        v128.store(tmp + <usize>t * 2, i16x8.narrow_i32x4_s(n0, n1));
      }
      for (; t < len; t++) store<i16>(tmp + <usize>t * 2, <i16>roundScaledScalar(load<f32>(xb + <usize>t * 4), invS));
      const dst = tileRow + <usize>(4 * TILE_ROWS * (t0 >> 1));
      for (let g = 0; g < len >> 1; g++) store<u32>(dst + <usize>(4 * TILE_ROWS * g), load<u32>(tmp + <usize>(4 * g)));
    }
  }
}

// ---- weights ------------------------------------------------------------------------------------

/** [c0 t, c1 t, c2 t, c3 t, c0 t+1, ...] (i16) to [c0 t, c0 t+1, c1 t, c1 t+1, ...]: the pairs one dot multiplies. */
@inline function interleave(n: v128): v128 {
  return i8x16.shuffle(n, n, 0, 1, 8, 9, 2, 3, 10, 11, 4, 5, 12, 13, 6, 7, 14, 15);
}

/**
 * Panel p of B (B(j, t) = F[j·sj + t·st], f32; Nout columns, Kc contraction indices) into `panel`
 * (layout in the header); gather: BLOCK x 8 f32 of scratch.
 */
function packPanelI16(panel: usize, F: usize, sj: i32, st: i32, Nout: i32, Kc: i32, p: i32, gather: usize): void {
  const nb = blocksOf(Kc);
  const cols = min(8, Nout - 8 * p);
  const j0 = 8 * p;
  const magic = f32x4.splat(ROUND_MAGIC);
  const magicBits = i32x4.splat(ROUND_MAGIC_BITS);
  const absMask = i32x4.splat(0x7fffffff);
  const levels = f32x4.splat(LEVELS);
  const minAbs = f32x4.splat(MIN_ABSMAX);
  const inf = f32x4.splat(Infinity);
  for (let b = 0; b < nb; b++) {
    const t0 = b * BLOCK;
    const len = min(BLOCK, Kc - t0);
    // Gather B(j0..j0+7, t0..t0+len) as [t][8 columns] f32 (zeros past Nout).
    if (sj == 1 && cols == 8) {
      for (let t = 0; t < len; t++) {
        const src = F + (<usize>j0 + <usize>(t0 + t) * <usize>st) * 4;
        v128.store(gather + <usize>t * 32, v128.load(src));
        v128.store(gather + <usize>t * 32, v128.load(src, 16), 16);
      }
    } else {
      if (cols < 8) memory.fill(gather, 0, <usize>len * 32);
      for (let jj = 0; jj < cols; jj++) {
        const src = F + (<usize>(j0 + jj) * <usize>sj + <usize>t0 * <usize>st) * 4;
        for (let t = 0; t < len; t++) store<f32>(gather + <usize>(t * 32 + jj * 4), load<f32>(src + <usize>t * <usize>st * 4));
      }
    }
    // Per-column absmax over the block, scale and inverse (0 for a zero, tiny or non-finite column).
    let m0 = i32x4.splat(0), m1 = m0;
    for (let t = 0; t < len; t++) {
      m0 = i32x4.max_s(m0, v128.and(v128.load(gather + <usize>t * 32), absMask));
      m1 = i32x4.max_s(m1, v128.and(v128.load(gather + <usize>t * 32, 16), absMask));
    }
    const scl = panel + <usize>(16 * Kc + 32 * b);
    v128.store(scl, f32x4.div(m0, levels));
    v128.store(scl, f32x4.div(m1, levels), 16);
    const inv0 = v128.and(f32x4.div(levels, m0), v128.and(f32x4.gt(m0, minAbs), f32x4.lt(m0, inf)));
    const inv1 = v128.and(f32x4.div(levels, m1), v128.and(f32x4.gt(m1, minAbs), f32x4.lt(m1, inf)));
    const codes = panel + <usize>(16 * t0);
    for (let t = 0; t < len; t += 2) {
      const g = gather + <usize>t * 32;
      const lo0 = roundScaled(v128.load(g), inv0, magic, magicBits);
      const lo1 = roundScaled(v128.load(g, 32), inv0, magic, magicBits);
      const hi0 = roundScaled(v128.load(g, 16), inv1, magic, magicBits);
      const hi1 = roundScaled(v128.load(g, 48), inv1, magic, magicBits);
      v128.store(codes + <usize>t * 16, interleave(i16x8.narrow_i32x4_s(lo0, lo1)));
      v128.store(codes + <usize>t * 16, interleave(i16x8.narrow_i32x4_s(hi0, hi1)), 16);
    }
  }
}

// ---- micro-kernel -------------------------------------------------------------------------------

/**
 * 4x8 tile over all blocks: row r of c (+)= Σ_b f32(f32(dot) · f32(sa(r, b) · sw(·, b))), block
 * after block. a: the tile's pairs; s_r: row r's block scales; bp: the panel. One pair a step:
 * V8 11 (Node 20) hoists the loads of a two-pair step ahead of its dots and spills accumulators
 * (measured 20.5 vs 27 G multiply-adds/s a thread).
 */
function microI16x4x8(c0: usize, c1: usize, c2: usize, c3: usize, a: usize, s0: usize, s1: usize, s2: usize, s3: usize, bp: usize, Kc: i32, acc: bool): void {
  const nb = blocksOf(Kc);
  const sp = bp + <usize>(16 * Kc);
  for (let b = 0; b < nb; b++) {
    let d00 = i32x4.splat(0), d01 = d00, d10 = d00, d11 = d00, d20 = d00, d21 = d00, d30 = d00, d31 = d00;
    const pairs = min(BLOCK, Kc - b * BLOCK) >> 1;
    const end = bp + <usize>(32 * pairs);
    do {
      const b0 = v128.load(bp);
      const b1 = v128.load(bp, 16);
      let x = v128.load32_splat(a);
      d00 = i32x4.add(d00, i32x4.dot_i16x8_s(x, b0)); d01 = i32x4.add(d01, i32x4.dot_i16x8_s(x, b1));
      x = v128.load32_splat(a, 4);
      d10 = i32x4.add(d10, i32x4.dot_i16x8_s(x, b0)); d11 = i32x4.add(d11, i32x4.dot_i16x8_s(x, b1));
      x = v128.load32_splat(a, 8);
      d20 = i32x4.add(d20, i32x4.dot_i16x8_s(x, b0)); d21 = i32x4.add(d21, i32x4.dot_i16x8_s(x, b1));
      x = v128.load32_splat(a, 12);
      d30 = i32x4.add(d30, i32x4.dot_i16x8_s(x, b0)); d31 = i32x4.add(d31, i32x4.dot_i16x8_s(x, b1));
      a += 16;
      bp += 32;
    } while (bp < end);
    const so = <usize>b << 2;
    const w0 = v128.load(sp + (<usize>b << 5)), w1 = v128.load(sp + (<usize>b << 5), 16);
    const first = !acc && b == 0;
    finishRowI16(c0, d00, d01, v128.load32_splat(s0 + so), w0, w1, first);
    finishRowI16(c1, d10, d11, v128.load32_splat(s1 + so), w0, w1, first);
    finishRowI16(c2, d20, d21, v128.load32_splat(s2 + so), w0, w1, first);
    finishRowI16(c3, d30, d31, v128.load32_splat(s3 + so), w0, w1, first);
  }
}

/** c[0..8) = (first ? 0 : c) + f32(dot) · (sa · sw), unfused (the reference's rounding). */
@inline function finishRowI16(c: usize, l: v128, h: v128, s: v128, w0: v128, w1: v128, first: bool): void {
  const v0 = f32x4.mul(f32x4.convert_i32x4_s(l), f32x4.mul(s, w0));
  const v1 = f32x4.mul(f32x4.convert_i32x4_s(h), f32x4.mul(s, w1));
  if (first) {
    v128.store(c, v0);
    v128.store(c, v1, 16);
  } else {
    v128.store(c, f32x4.add(v128.load(c), v0));
    v128.store(c, f32x4.add(v128.load(c, 16), v1), 16);
  }
}

// ---- tasks --------------------------------------------------------------------------------------

/**
 * First task: rows [m0, m1) of a [M, Kc] into the tiles at qt and the scales sa (m0 % TILE_ROWS == 0), and
 * panels [p0, p1) of B (B(j, t) = F[j·sj + t·st]) into packed (panel p at packed + p·panelBytes).
 */
export function gemmI16Prepare(a: usize, Kc: i32, m0: i32, m1: i32, qt: usize, sa: usize, F: usize, sj: i32, st: i32, Nout: i32, p0: i32, p1: i32, packed: usize, scratch: usize): void {
  const gather = scratch;
  const tmp = scratch + <usize>(BLOCK * 8 * 4);
  if (m1 > m0) quantizeRowsI16(a, Kc, m0, m1, qt, sa, tmp);
  const panelBytes = <usize>gemmI16PanelBytes(Kc);
  for (let p = p0; p < p1; p++) packPanelI16(packed + <usize>p * panelBytes, F, sj, st, Nout, Kc, p, gather);
}

/**
 * Second task: output rows [m0, m1) (m0 % TILE_ROWS == 0) x panels [p0, p1) of c [M, Nout] from the tiles
 * and panels gemmI16Prepare wrote. accumulate != 0 adds to c.
 */
export function gemmI16Run(c: usize, M: i32, Nout: i32, Kc: i32, qt: usize, sa: usize, packed: usize, m0: i32, m1: i32, p0: i32, p1: i32, accumulate: i32, scratch: usize): void {
  if (m1 <= m0 || p1 <= p0) return;
  const nb = blocksOf(Kc);
  const panelBytes = gemmI16PanelBytes(Kc);
  const ldc = <usize>Nout * 4;
  const spill = scratch + <usize>(BLOCK * 8 * 4 + BLOCK * 2);
  const acc = accumulate != 0;
  const perBlock = max(1, L2_PANEL_BYTES / panelBytes);
  for (let pb = p0; pb < p1; pb += perBlock) {
    const pe = min(p1, pb + perBlock);
    for (let i = m0; i < m1; i += TILE_ROWS) {
      const rows = min(TILE_ROWS, M - i);
      const i1 = i + min(1, rows - 1), i2 = i + min(2, rows - 1), i3 = i + min(3, rows - 1);
      const at = qt + <usize>(i / TILE_ROWS) * <usize>(2 * TILE_ROWS * Kc);
      const s0 = sa + (<usize>(i * nb) << 2), s1 = sa + (<usize>(i1 * nb) << 2), s2 = sa + (<usize>(i2 * nb) << 2), s3 = sa + (<usize>(i3 * nb) << 2);
      for (let p = pb; p < pe; p++) {
        const bp = packed + <usize>p * <usize>panelBytes;
        const cij = c + <usize>i * ldc + <usize>(8 * p) * 4;
        const cols = min(8, Nout - 8 * p);
        if (cols == 8 && rows == TILE_ROWS) {
          microI16x4x8(cij, cij + ldc, cij + 2 * ldc, cij + 3 * ldc, at, s0, s1, s2, s3, bp, Kc, acc);
        } else {
          for (let r = 0; r < rows; r++) for (let jj = 0; jj < cols; jj++) {
            store<f32>(spill + <usize>(r * 8 + jj) * 4, load<f32>(cij + <usize>r * ldc + <usize>jj * 4));
          }
          microI16x4x8(spill, spill + 32, spill + 64, spill + 96, at, s0, s1, s2, s3, bp, Kc, acc);
          for (let r = 0; r < rows; r++) for (let jj = 0; jj < cols; jj++) {
            store<f32>(cij + <usize>r * ldc + <usize>jj * 4, load<f32>(spill + <usize>(r * 8 + jj) * 4));
          }
        }
      }
    }
  }
}
