// The OPTIONAL int8-activation path of X·Wᵀ for 4-bit weights at prompt sizes (large M; off by
// default, chosen with createKernels({ int8Activations: true })): activations quantized to int8 per
// (row, weight block), 4-bit codes mapped through a 7-bit integer version of the codebook, integer
// dot products per block (16 multiply-adds per pmaddubsw + pmaddwd pair, ~1.8x the f32 FMA rate
// measured here), then each block's i32 sum scaled into the f32 output. The arithmetic (and its
// measured error) is defined by src/kernels/ref/matmul-int8.ts; the two operands by act-i8.ts.
//
//   y[i, j] (+)= Σ_kb f32(dot_kb − 64·Σqa) · f32(sa · f32(scale(j, kb) / cs))   (block by block)
//
// Two pool tasks per call (backend.ts): gemmI8Prepare quantizes a share of x's rows and packs a
// share of the weights' 8-column panels into ONE shared area (each weight is decoded once per call
// whatever the thread count), then gemmI8Run computes a share of the output (columns or rows)
// from it. Several weights sharing x (q/k/v, gate/up) are one call: their panels are numbered
// one after the other ({descriptor, y} table, as gemvQ4Many's), all of the same K.
//
// Packed panel (gemmI8PanelBytes): 8·K code bytes, then 8 f32 column scales per K-block.
// Codes of 4-k group g at 32g: [col 0..3 x k 4g..4g+3] then [col 4..7 x k 4g..4g+3], so one
// relaxed dot multiplies a row's 4 activations (a splat of 4 bytes) with 4 columns at once. Column
// scale = scale(j, kb) · f32(max|codebook| / 63). Columns past a weight's rows have code 64 (= 0)
// and scale 0.
// Requirements (checked by the caller, backend.ts): no zero points, cols % blockSize == 0,
// blockSize % 4 == 0, one block size and K for all weights of a call (the path's block size limit,
// INT8_MAX_BLOCK, is ref/matmul-int8.ts's: nothing here depends on it).
// Not here: the exact f32 path (gemm.ts), small M (gemv-i8.ts), threading (backend.ts).

import { Q4D_BLOCKS_PER_ROW, Q4D_BLOCK_SIZE, Q4D_COLS, Q4D_PACKED, Q4D_ROWS, q4BlockScale } from './q4desc';
import { I8_OFFSET, dotI8Add, i8CodeTable, quantizeRowsI8 } from './act-i8';
import { nibbleMask, onesI16 } from './vconst';
import { fmaF32x4 } from './vmath';

/** K columns of 8 weight rows decoded per packing round (a multiple of 32: the decoder's step). */
const PACK_KC: i32 = 512;
/**
 * Packed bytes of one cache block of panels, reused by every 3-row tile: half of Zen4's 1 MiB L2
 * (the rest holds the activation rows streaming through and the output; 128-512 KiB measured the
 * same). K up to KC_WHOLE stays whole (one pass over the output); a 3-row activation tile (3·K
 * bytes) and a panel (8·K bytes) then stay in L1 while a tile runs.
 */
const L2_PANEL_BYTES: i32 = 512 * 1024;
const KC_WHOLE: i32 = 2048;
/** Bytes of a {descriptor, y} table entry. */
const ENTRY_BYTES: usize = 8;

/** Bytes of one packed 8-column panel over K (codes, then per-block column scales). */
export function gemmI8PanelBytes(K: i32, bs: i32): i32 {
  return 8 * K + (K / bs) * 32;
}

/** Thread scratch: 8 decoded rows, the code table, one spill tile (3 x 8 f32). */
export function gemmI8ScratchBytes(): i32 {
  return 8 * PACK_KC + 16 + 3 * 8 * 4;
}

@inline function panelsOf(d: usize): i32 {
  return (load<i32>(d, Q4D_ROWS) + 7) >> 3;
}

// ---- weights ------------------------------------------------------------------------------------

/** 7-bit codes of row r over [c0, c1) (c0 and r·cols even) into out, through the 16-byte table at tab. */
function decodeCodesI8(d: usize, r: i32, c0: i32, c1: i32, tab: usize, out: usize): void {
  const table = v128.load(tab);
  const packed = <usize>load<u32>(d, Q4D_PACKED);
  const cols = load<i32>(d, Q4D_COLS);
  const src = packed + (<usize>(r * cols + c0) >> 1);
  const n = c1 - c0;
  const mask = nibbleMask();
  let c = 0;
  for (; c + 32 <= n; c += 32) {
    const v = v128.load(src + (<usize>c >> 1));
    const hi = i8x16.shr_u(v, 4);
    const lo = v128.and(v, mask);
    const e0 = i8x16.shuffle(hi, lo, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const e1 = i8x16.shuffle(hi, lo, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    if (ASC_FEATURE_RELAXED_SIMD) {
      v128.store(out + <usize>c, i8x16.relaxed_swizzle(table, e0));
      v128.store(out + <usize>c, i8x16.relaxed_swizzle(table, e1), 16);
    } else {
      v128.store(out + <usize>c, i8x16.swizzle(table, e0));
      v128.store(out + <usize>c, i8x16.swizzle(table, e1), 16);
    }
  }
  for (; c < n; c += 2) {
    const byte = <u32>load<u8>(src + (<usize>c >> 1));
    store<u8>(out + <usize>c, load<u8>(tab + <usize>(byte >> 4)));
    store<u8>(out + <usize>c + 1, load<u8>(tab + <usize>(byte & 15)));
  }
}

/**
 * Packs local panel p (rows 8p..8p+7) of the weight at d into `panel` (layout in the header),
 * through the code table at tab and the codebook unscale invCs; row: 8·PACK_KC bytes of scratch.
 */
function packPanelI8(panel: usize, d: usize, p: i32, tab: usize, invCs: f32, row: usize): void {
  const N = load<i32>(d, Q4D_ROWS);
  const K = load<i32>(d, Q4D_COLS);
  const bs = load<i32>(d, Q4D_BLOCK_SIZE);
  const nb = K / bs;
  const bpr = load<u32>(d, Q4D_BLOCKS_PER_ROW);
  const blocksPerRow: u32 = bpr > 0 ? bpr : <u32>nb;
  const rows = min(8, N - 8 * p);
  const scl = panel + <usize>(8 * K);
  for (let jj = 0; jj < 8; jj++) {
    const r = 8 * p + jj;
    for (let kb = 0; kb < nb; kb++) {
      store<f32>(scl + <usize>(kb * 32 + jj * 4), jj < rows ? q4BlockScale(d, <u32>r * blocksPerRow + <u32>kb) * invCs : 0);
    }
  }
  for (let k0 = 0; k0 < K; k0 += PACK_KC) {
    const kc = min(PACK_KC, K - k0);
    for (let jj = 0; jj < 8; jj++) {
      const rj = row + <usize>(jj * kc);
      if (jj < rows) decodeCodesI8(d, 8 * p + jj, k0, k0 + kc, tab, rj);
      else memory.fill(rj, <u8>I8_OFFSET, <usize>kc);
    }
    // 4x4 transposes of 32-bit lanes (4 k each): rows 4h..4h+3, 16 k in, 4 groups out.
    const out = panel + <usize>(k0 * 8);
    let k = 0;
    for (; k + 16 <= kc; k += 16) {
      for (let h = 0; h < 2; h++) {
        const base = row + <usize>(h * 4 * kc + k);
        const x0 = v128.load(base);
        const x1 = v128.load(base + <usize>kc);
        const x2 = v128.load(base + <usize>(2 * kc));
        const x3 = v128.load(base + <usize>(3 * kc));
        const t0 = v128.shuffle<i32>(x0, x1, 0, 4, 1, 5);
        const t1 = v128.shuffle<i32>(x2, x3, 0, 4, 1, 5);
        const t2 = v128.shuffle<i32>(x0, x1, 2, 6, 3, 7);
        const t3 = v128.shuffle<i32>(x2, x3, 2, 6, 3, 7);
        const o = out + <usize>(k * 8 + h * 16);
        v128.store(o, v128.shuffle<i32>(t0, t1, 0, 1, 4, 5));
        v128.store(o, v128.shuffle<i32>(t0, t1, 2, 3, 6, 7), 32);
        v128.store(o, v128.shuffle<i32>(t2, t3, 0, 1, 4, 5), 64);
        v128.store(o, v128.shuffle<i32>(t2, t3, 2, 3, 6, 7), 96);
      }
    }
    for (; k < kc; k += 4) {
      for (let jj = 0; jj < 8; jj++) store<u32>(out + <usize>(k * 8 + jj * 4), load<u32>(row + <usize>(jj * kc + k)));
    }
  }
}

// ---- micro-kernel -------------------------------------------------------------------------------

/**
 * 3x8 tile over nkb blocks: row r of c (+)= Σ_kb f32(dot − corr) · (sa(r, kb) · ws(·, kb)).
 * c_r: row r's 8 outputs; a: the tile's interleaved codes at the first k (see gemmI8Prepare);
 * s_r / u_r: row r's first block scale / correction (f32 / i32 per block); bp/sp: the panel's codes
 * and scales at the first k / block.
 * Three rows, not four: 6 accumulators + 2 weight vectors + 3 activation splats + the ones vector
 * fit V8's 15 usable xmm registers (a 4x8 tile spills one accumulator: ~5% slower measured alone,
 * ~20% with the other core busy). One activation pointer and the loop bound on bp: the fewest
 * instructions per step (~5% faster with the other core busy than three row pointers and a counter).
 */
function microI8x3x8(c0: usize, c1: usize, c2: usize, a: usize, s0: usize, s1: usize, s2: usize, u0: usize, u1: usize, u2: usize, bp: usize, sp: usize, nkb: i32, bs: i32, acc: bool): void {
  const ones = onesI16();
  const zero = i32x4.splat(0);
  for (let kb = 0; kb < nkb; kb++) {
    // The accumulators start at −64·Σqa (the offset correction): no subtraction at the end.
    // Splat loads (one broadcast from memory) rather than splats of scalar loads.
    const so = <usize>kb << 2;
    let d00 = i32x4.sub(zero, v128.load32_splat(u0 + so)), d01 = d00;
    let d10 = i32x4.sub(zero, v128.load32_splat(u1 + so)), d11 = d10;
    let d20 = i32x4.sub(zero, v128.load32_splat(u2 + so)), d21 = d20;
    const end = bp + (<usize>bs << 3);
    do {
      const b0 = v128.load(bp);
      const b1 = v128.load(bp, 16);
      let x = v128.load32_splat(a);
      d00 = dotI8Add(x, b0, d00, ones); d01 = dotI8Add(x, b1, d01, ones);
      x = v128.load32_splat(a, 4);
      d10 = dotI8Add(x, b0, d10, ones); d11 = dotI8Add(x, b1, d11, ones);
      x = v128.load32_splat(a, 8);
      d20 = dotI8Add(x, b0, d20, ones); d21 = dotI8Add(x, b1, d21, ones);
      a += 12;
      bp += 32;
    } while (bp < end);
    const w0 = v128.load(sp), w1 = v128.load(sp, 16);
    sp += 32;
    const first = !acc && kb == 0;
    finishRow(c0, d00, d01, v128.load32_splat(s0 + so), w0, w1, first);
    finishRow(c1, d10, d11, v128.load32_splat(s1 + so), w0, w1, first);
    finishRow(c2, d20, d21, v128.load32_splat(s2 + so), w0, w1, first);
  }
}

/** c[0..8) (+)= f32(acc) · (sa · w): one tile row at the end of a block (acc already corrected; s = sa in every lane). */
@inline function finishRow(c: usize, l: v128, h: v128, s: v128, w0: v128, w1: v128, first: bool): void {
  const t0 = f32x4.convert_i32x4_s(l);
  const t1 = f32x4.convert_i32x4_s(h);
  if (first) {
    v128.store(c, f32x4.mul(t0, f32x4.mul(s, w0)));
    v128.store(c, f32x4.mul(t1, f32x4.mul(s, w1)), 16);
  } else {
    v128.store(c, fmaF32x4(t0, f32x4.mul(s, w0), v128.load(c)));
    v128.store(c, fmaF32x4(t1, f32x4.mul(s, w1), v128.load(c, 16)), 16);
  }
}

// ---- tasks --------------------------------------------------------------------------------------

/**
 * Rows [m0, m1) of the row-major codes q [·, K] into 3-row tiles at qt: tile t (rows 3t..3t+2) at
 * qt + 3K·t, 4-k group g at 12g: [row 3t x k 4g..4g+3][row 3t+1 ...][row 3t+2 ...], so the
 * micro-kernel reads a tile through one pointer. m0 % 3 == 0; a last tile past m1 repeats row
 * m1 − 1 (its outputs go to a scratch tile).
 */
function interleaveTilesI8(q: usize, qt: usize, K: i32, m0: i32, m1: i32): void {
  for (let i = m0; i < m1; i += 3) {
    const r0 = q + <usize>i * <usize>K;
    const r1 = q + <usize>min(i + 1, m1 - 1) * <usize>K;
    const r2 = q + <usize>min(i + 2, m1 - 1) * <usize>K;
    const out = qt + <usize>i * <usize>K; // tile i / 3 starts at 3K · i / 3
    let k = 0;
    for (; k + 16 <= K; k += 16) {
      // Four 4-k groups of each row: 48 bytes out.
      const x0 = v128.load(r0 + <usize>k), x1 = v128.load(r1 + <usize>k), x2 = v128.load(r2 + <usize>k);
      const lo = v128.shuffle<i32>(x0, x1, 0, 4, 1, 5); // r0g0 r1g0 r0g1 r1g1
      const hi = v128.shuffle<i32>(x0, x1, 2, 6, 3, 7); // r0g2 r1g2 r0g3 r1g3
      const o = out + <usize>(3 * k);
      v128.store(o, v128.shuffle<i32>(lo, x2, 0, 1, 4, 2)); // r0g0 r1g0 r2g0 r0g1
      v128.store(o, v128.shuffle<i32>(v128.shuffle<i32>(lo, x2, 3, 5, 3, 5), hi, 0, 1, 4, 5), 16); // r1g1 r2g1 r0g2 r1g2
      v128.store(o, v128.shuffle<i32>(hi, x2, 6, 2, 3, 7), 32); // r2g2 r0g3 r1g3 r2g3
    }
    for (; k < K; k += 4) {
      const o = out + <usize>(3 * k);
      store<u32>(o, load<u32>(r0 + <usize>k));
      store<u32>(o + 4, load<u32>(r1 + <usize>k));
      store<u32>(o + 8, load<u32>(r2 + <usize>k));
    }
  }
}

/**
 * First task: rows [m0, m1) of x [M, K] (f32) quantized into q / sa / sums (act-i8.ts layout, for
 * all M rows) and interleaved into 3-row tiles at qt (interleaveTilesI8; m0 % 3 == 0, m1 % 3 == 0
 * or m1 == M), and panels [p0, p1) of the call (numbered weight after weight through the
 * {descriptor, y} table of `count` entries) packed into `packed`, which holds panels from number
 * held0 on (gemmI8PanelBytes each).
 */
export function gemmI8Prepare(table: usize, count: i32, x: usize, q: usize, qt: usize, sa: usize, sums: usize, m0: i32, m1: i32, p0: i32, p1: i32, packed: usize, held0: i32, scratch: usize): void {
  const d0 = <usize>load<u32>(table);
  const K = load<i32>(d0, Q4D_COLS);
  const bs = load<i32>(d0, Q4D_BLOCK_SIZE);
  if (m1 > m0) {
    quantizeRowsI8(x, K, bs, m0, m1, q, sa, sums, false);
    interleaveTilesI8(q, qt, K, m0, m1);
  }
  const panelBytes = <usize>gemmI8PanelBytes(K, bs);
  const row = scratch;
  const tab = row + <usize>(8 * PACK_KC);
  let first = 0; // global number of the current weight's first panel
  for (let w = 0; w < count && first < p1; w++) {
    const d = <usize>load<u32>(table + <usize>w * ENTRY_BYTES);
    const np = panelsOf(d);
    const a = max(p0, first), b = min(p1, first + np);
    if (a < b) {
      const invCs = i8CodeTable(d, tab);
      for (let p = a; p < b; p++) packPanelI8(packed + <usize>(p - held0) * panelBytes, d, p - first, tab, invCs, row);
    }
    first += np;
  }
}

/**
 * Second task: output rows [m0, m1) x panels [p0, p1) of the call (numbering and table as in
 * gemmI8Prepare, which filled qt / sa / sums and `packed`; m0 % 3 == 0, m1 % 3 == 0 or m1 == M).
 * accumulate != 0 adds to y.
 */
export function gemmI8Run(table: usize, count: i32, qt: usize, sa: usize, sums: usize, m0: i32, m1: i32, p0: i32, p1: i32, accumulate: i32, packed: usize, held0: i32, scratch: usize): void {
  if (m1 <= m0 || p1 <= p0) return;
  const d0 = <usize>load<u32>(table);
  const K = load<i32>(d0, Q4D_COLS);
  const bs = load<i32>(d0, Q4D_BLOCK_SIZE);
  const nb = K / bs;
  const panelBytes = gemmI8PanelBytes(K, bs);
  // K chunks (whole up to KC_WHOLE, else balanced, whole blocks) and panel blocks (balanced, ~L2_PANEL_BYTES).
  const kChunks = (K + KC_WHOLE - 1) / KC_WHOLE;
  const kcBlocks = (nb + kChunks - 1) / kChunks;
  const kcBytes = min(K, kcBlocks * bs) * 8;
  const perBlock = max(1, L2_PANEL_BYTES / kcBytes);
  const pBlocks = (p1 - p0 + perBlock - 1) / perBlock;
  const pStep = (p1 - p0 + pBlocks - 1) / pBlocks;
  for (let pb = p0; pb < p1; pb += pStep) {
    const pe = min(p1, pb + pStep);
    for (let kb0 = 0; kb0 < nb; kb0 += kcBlocks) {
      const nkb = min(kcBlocks, nb - kb0);
      const acc = accumulate != 0 || kb0 > 0;
      // The weights whose panels meet [pb, pe), each with its own output.
      let first = 0;
      for (let w = 0; w < count && first < pe; w++) {
        const e = table + <usize>w * ENTRY_BYTES;
        const d = <usize>load<u32>(e);
        const N = load<i32>(d, Q4D_ROWS);
        const np = (N + 7) >> 3;
        const a = max(pb, first), b = min(pe, first + np);
        if (a < b) {
          const y = <usize>load<u32>(e, 4);
          runPanels(y, N, qt, sa, sums, K, bs, m0, m1, a - first, b - first, packed + <usize>(a - held0) * <usize>panelBytes, panelBytes, kb0, nkb, acc, scratch);
        }
        first += np;
      }
    }
  }
}

/**
 * y[m0..m1) x local panels [pa, pb) of one weight (N rows = output columns), K-blocks
 * [kb0, kb0 + nkb); wp: packed local panel pa (the next ones follow it). Tiles of 3 rows; a last
 * tile of 1 or 2 rows (its codes repeat its last row) and a panel past the weight's last column
 * go through a scratch tile.
 */
function runPanels(y: usize, N: i32, qt: usize, sa: usize, sums: usize, K: i32, bs: i32, m0: i32, m1: i32, pa: i32, pb: i32, wp: usize, panelBytes: i32, kb0: i32, nkb: i32, acc: bool, scratch: usize): void {
  const nb = K / bs;
  const ldy = <usize>N * 4;
  const k0 = kb0 * bs;
  const tile = scratch + <usize>(8 * PACK_KC + 16);
  for (let i = m0; i < m1; i += 3) {
    const rows = min(3, m1 - i);
    const i1 = i + min(1, rows - 1), i2 = i + min(2, rows - 1);
    const at = qt + <usize>i * <usize>K + <usize>(3 * k0); // tile i / 3 (interleaveTilesI8)
    const o0 = <usize>(i * nb + kb0) << 2, o1 = <usize>(i1 * nb + kb0) << 2, o2 = <usize>(i2 * nb + kb0) << 2;
    for (let p = pa; p < pb; p++) {
      const bp = wp + <usize>(p - pa) * <usize>panelBytes;
      const codes = bp + <usize>(k0 * 8);
      const scl = bp + <usize>(8 * K + kb0 * 32);
      const cij = y + <usize>i * ldy + <usize>(8 * p) * 4;
      const cols = min(8, N - 8 * p);
      if (cols == 8 && rows == 3) {
        microI8x3x8(cij, cij + ldy, cij + 2 * ldy, at, sa + o0, sa + o1, sa + o2, sums + o0, sums + o1, sums + o2, codes, scl, nkb, bs, acc);
      } else {
        for (let r = 0; r < rows; r++) for (let jj = 0; jj < cols; jj++) {
          store<f32>(tile + <usize>(r * 8 + jj) * 4, load<f32>(cij + <usize>r * ldy + <usize>jj * 4));
        }
        microI8x3x8(tile, tile + 32, tile + 64, at, sa + o0, sa + o1, sa + o2, sums + o0, sums + o1, sums + o2, codes, scl, nkb, bs, acc);
        for (let r = 0; r < rows; r++) for (let jj = 0; jj < cols; jj++) {
          store<f32>(cij + <usize>r * ldy + <usize>jj * 4, load<f32>(tile + <usize>(r * 8 + jj) * 4));
        }
      }
    }
  }
}
