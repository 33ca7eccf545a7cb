// Causal GQA attention forward and backward in SIMD128. Twin of src/kernels/ref/attention.ts,
// where the math and the layouts are stated. The forward here is the one that keeps the softmax
// probabilities (training); forwards without them take attention-infer.ts (8 or more query rows,
// prompt processing) or attention-decode.ts (fewer, decoding).
// Work is split in units the caller balances across threads by cost (causal rows differ in length):
//   forward, backward part 1: u = h·Tq + i, one query row of one head (writes out / dq row i),
//                             taken four rows at a time so value/key rows are loaded once per
//                             four query rows (a 4x8 register tile);
//   backward part 2:          u = g·ceil(Tk/4) + b, four key rows of one kv head (writes dk / dv
//                             rows 4b..4b+3, summing over every query head of the group: no two
//                             threads write the same row, so no reduction is needed).
// The D dimension is vectorised: scores eight keys at a time (one q load per eight k loads,
// 4x4 transpose-adds instead of horizontal sums), weighted row sums with eight column
// accumulators. Every loop over keys stays inside the visible range [keyStart, i + qOffset]:
// masked keys are never read, so a NaN or Inf in an invisible cache row cannot leak as 0·x.

import { dotF32 } from './gemv';
import { expShiftSum, fmaF32x4, rowMax, scaleRow } from './vmath';

export { attentionForwardInfer, attentionInferBlock, attentionInferScratchBytes } from './attention-infer';

/** dst[0..D) (+)= Σ_{n < count} wt[n·wtStrideB] · src[n·srcStride + d] (srcStride in elements, wt stride in bytes). */
function weightedRowSum(dst: usize, wt: usize, wtStrideB: usize, src: usize, srcStride: i32, count: i32, D: i32, accumulate: bool): void {
  const rowB = <usize>srcStride << 2;
  let d = 0;
  for (; d + 32 <= D; d += 32) {
    const od = <usize>d << 2;
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    let a4 = f32x4.splat(0), a5 = f32x4.splat(0), a6 = f32x4.splat(0), a7 = f32x4.splat(0);
    let s = src + od;
    let w = wt;
    for (let n = 0; n < count; n++, s += rowB, w += wtStrideB) {
      const p = v128.load32_splat(w);
      a0 = fmaF32x4(p, v128.load(s), a0);
      a1 = fmaF32x4(p, v128.load(s, 16), a1);
      a2 = fmaF32x4(p, v128.load(s, 32), a2);
      a3 = fmaF32x4(p, v128.load(s, 48), a3);
      a4 = fmaF32x4(p, v128.load(s, 64), a4);
      a5 = fmaF32x4(p, v128.load(s, 80), a5);
      a6 = fmaF32x4(p, v128.load(s, 96), a6);
      a7 = fmaF32x4(p, v128.load(s, 112), a7);
    }
    const o = dst + od;
    if (accumulate) {
      a0 = f32x4.add(a0, v128.load(o)); a1 = f32x4.add(a1, v128.load(o, 16));
      a2 = f32x4.add(a2, v128.load(o, 32)); a3 = f32x4.add(a3, v128.load(o, 48));
      a4 = f32x4.add(a4, v128.load(o, 64)); a5 = f32x4.add(a5, v128.load(o, 80));
      a6 = f32x4.add(a6, v128.load(o, 96)); a7 = f32x4.add(a7, v128.load(o, 112));
    }
    v128.store(o, a0); v128.store(o, a1, 16); v128.store(o, a2, 32); v128.store(o, a3, 48);
    v128.store(o, a4, 64); v128.store(o, a5, 80); v128.store(o, a6, 96); v128.store(o, a7, 112);
  }
  for (; d + 4 <= D; d += 4) {
    const od = <usize>d << 2;
    let a = f32x4.splat(0);
    let s = src + od;
    let w = wt;
    for (let n = 0; n < count; n++, s += rowB, w += wtStrideB) a = fmaF32x4(v128.load32_splat(w), v128.load(s), a);
    if (accumulate) a = f32x4.add(a, v128.load(dst + od));
    v128.store(dst + od, a);
  }
  for (; d < D; d++) {
    const od = <usize>d << 2;
    let a: f32 = 0;
    let s = src + od;
    let w = wt;
    for (let n = 0; n < count; n++, s += rowB, w += wtStrideB) a += load<f32>(w) * load<f32>(s);
    store<f32>(dst + od, accumulate ? load<f32>(dst + od) + a : a);
  }
}

/** Transpose-add: lane k of the result is the sum of the four lanes of a_k. */
@inline function sum4(a0: v128, a1: v128, a2: v128, a3: v128): v128 {
  const t01 = f32x4.add(v128.shuffle<f32>(a0, a1, 0, 1, 4, 5), v128.shuffle<f32>(a0, a1, 2, 3, 6, 7));
  const t23 = f32x4.add(v128.shuffle<f32>(a2, a3, 0, 1, 4, 5), v128.shuffle<f32>(a2, a3, 2, 3, 6, 7));
  return f32x4.add(v128.shuffle<f32>(t01, t23, 0, 2, 4, 6), v128.shuffle<f32>(t01, t23, 1, 3, 5, 7));
}

/** out[j] = scale · (x · y_j) for j in [j0, j1), y_j = y + j·yStride elements: eight keys per step. */
function dotRows(out: usize, x: usize, y: usize, yStride: i32, j0: i32, j1: i32, D: i32, scale: f32): void {
  const rowB = <usize>yStride << 2;
  let j = j0;
  if ((D & 3) == 0) {
    const sv = f32x4.splat(scale);
    for (; j + 8 <= j1; j += 8) {
      const y0 = y + <usize>j * rowB;
      const y1 = y0 + rowB, y2 = y1 + rowB, y3 = y2 + rowB, y4 = y3 + rowB, y5 = y4 + rowB, y6 = y5 + rowB, y7 = y6 + rowB;
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      let a4 = f32x4.splat(0), a5 = f32x4.splat(0), a6 = f32x4.splat(0), a7 = f32x4.splat(0);
      for (let d = 0; d < D; d += 4) {
        const o = <usize>d << 2;
        const xv = v128.load(x + o);
        a0 = fmaF32x4(xv, v128.load(y0 + o), a0);
        a1 = fmaF32x4(xv, v128.load(y1 + o), a1);
        a2 = fmaF32x4(xv, v128.load(y2 + o), a2);
        a3 = fmaF32x4(xv, v128.load(y3 + o), a3);
        a4 = fmaF32x4(xv, v128.load(y4 + o), a4);
        a5 = fmaF32x4(xv, v128.load(y5 + o), a5);
        a6 = fmaF32x4(xv, v128.load(y6 + o), a6);
        a7 = fmaF32x4(xv, v128.load(y7 + o), a7);
      }
      v128.store(out + (<usize>j << 2), f32x4.mul(sum4(a0, a1, a2, a3), sv));
      v128.store(out + (<usize>j << 2), f32x4.mul(sum4(a4, a5, a6, a7), sv), 16);
    }
    for (; j + 4 <= j1; j += 4) {
      const y0 = y + <usize>j * rowB;
      const y1 = y0 + rowB, y2 = y1 + rowB, y3 = y2 + rowB;
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      for (let d = 0; d < D; d += 4) {
        const o = <usize>d << 2;
        const xv = v128.load(x + o);
        a0 = fmaF32x4(xv, v128.load(y0 + o), a0);
        a1 = fmaF32x4(xv, v128.load(y1 + o), a1);
        a2 = fmaF32x4(xv, v128.load(y2 + o), a2);
        a3 = fmaF32x4(xv, v128.load(y3 + o), a3);
      }
      v128.store(out + (<usize>j << 2), f32x4.mul(sum4(a0, a1, a2, a3), sv));
    }
  }
  for (; j < j1; j++) store<f32>(out + (<usize>j << 2), dotF32(x, y + <usize>j * rowB, D) * scale);
}

/**
 * dotRows for two query rows x0, x1 over the same keys [j0, j1): four keys per step, so the two
 * rows share every key load (2 query + 4 key loads per 8 FMAs instead of 9 per 8). D % 4 == 0.
 */
function dotRows2(out0: usize, out1: usize, x0: usize, x1: usize, y: usize, yStride: i32, j0: i32, j1: i32, D: i32, scale: f32): void {
  const rowB = <usize>yStride << 2;
  const sv = f32x4.splat(scale);
  let j = j0;
  for (; j + 4 <= j1; j += 4) {
    const y0 = y + <usize>j * rowB;
    const y1 = y0 + rowB, y2 = y1 + rowB, y3 = y2 + rowB;
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
    for (let d = 0; d < D; d += 4) {
      const o = <usize>d << 2;
      const p = v128.load(x0 + o);
      const q = v128.load(x1 + o);
      let kv = v128.load(y0 + o);
      a0 = fmaF32x4(p, kv, a0); b0 = fmaF32x4(q, kv, b0);
      kv = v128.load(y1 + o);
      a1 = fmaF32x4(p, kv, a1); b1 = fmaF32x4(q, kv, b1);
      kv = v128.load(y2 + o);
      a2 = fmaF32x4(p, kv, a2); b2 = fmaF32x4(q, kv, b2);
      kv = v128.load(y3 + o);
      a3 = fmaF32x4(p, kv, a3); b3 = fmaF32x4(q, kv, b3);
    }
    v128.store(out0 + (<usize>j << 2), f32x4.mul(sum4(a0, a1, a2, a3), sv));
    v128.store(out1 + (<usize>j << 2), f32x4.mul(sum4(b0, b1, b2, b3), sv));
  }
  if (j < j1) {
    dotRows(out0, x0, y, yStride, j, j1, D, scale);
    dotRows(out1, x1, y, yStride, j, j1, D, scale);
  }
}

@inline function visibleEnd(i: i32, qOffset: i32, Tk: i32): i32 {
  return min(Tk, i + qOffset + 1);
}

/**
 * dst rows r = 0..3 (dstRowB bytes apart), columns [0, D) (+)= Σ_{n < count} wt_r[n] · src[n][0..D),
 * wt_r[n] at wt + r·wtRowB + 4n, src[n] at src + n·srcStrideB: four query rows share every
 * source row load (a 4-row x 8-column register tile, eight FMAs per four weight splats and two
 * source vectors). D % 8 == 0.
 */
function tileCols4(dst: usize, dstRowB: usize, wt: usize, wtRowB: usize, src: usize, srcStrideB: usize, count: i32, D: i32, accumulate: bool): void {
  for (let d = 0; d < D; d += 8) {
    const od = <usize>d << 2;
    let a00 = f32x4.splat(0), a01 = f32x4.splat(0), a10 = f32x4.splat(0), a11 = f32x4.splat(0);
    let a20 = f32x4.splat(0), a21 = f32x4.splat(0), a30 = f32x4.splat(0), a31 = f32x4.splat(0);
    let w = wt;
    let s = src + od;
    for (let n = 0; n < count; n++, w += 4, s += srcStrideB) {
      const s0 = v128.load(s);
      const s1 = v128.load(s, 16);
      let b = v128.load32_splat(w);
      a00 = fmaF32x4(b, s0, a00); a01 = fmaF32x4(b, s1, a01);
      b = v128.load32_splat(w + wtRowB);
      a10 = fmaF32x4(b, s0, a10); a11 = fmaF32x4(b, s1, a11);
      b = v128.load32_splat(w + 2 * wtRowB);
      a20 = fmaF32x4(b, s0, a20); a21 = fmaF32x4(b, s1, a21);
      b = v128.load32_splat(w + 3 * wtRowB);
      a30 = fmaF32x4(b, s0, a30); a31 = fmaF32x4(b, s1, a31);
    }
    let o = dst + od;
    if (accumulate) {
      a00 = f32x4.add(a00, v128.load(o)); a01 = f32x4.add(a01, v128.load(o, 16));
      a10 = f32x4.add(a10, v128.load(o + dstRowB)); a11 = f32x4.add(a11, v128.load(o + dstRowB, 16));
      a20 = f32x4.add(a20, v128.load(o + 2 * dstRowB)); a21 = f32x4.add(a21, v128.load(o + 2 * dstRowB, 16));
      a30 = f32x4.add(a30, v128.load(o + 3 * dstRowB)); a31 = f32x4.add(a31, v128.load(o + 3 * dstRowB, 16));
    }
    v128.store(o, a00); v128.store(o, a01, 16);
    o += dstRowB;
    v128.store(o, a10); v128.store(o, a11, 16);
    o += dstRowB;
    v128.store(o, a20); v128.store(o, a21, 16);
    o += dstRowB;
    v128.store(o, a30); v128.store(o, a31, 16);
  }
}

/**
 * dst_r (+)= Σ_{j in [j0, j1_r)} wt_r[j] · src_j for the query rows r = 0..rows-1 of a block, where
 * j1_r = visibleEnd(i + r) grows with r. Full blocks of four with D % 8 == 0 share the common
 * range [j0, j1_0) through tileCols4; the rest (each row's causal tail, short blocks) goes row by row.
 */
function blockRowSums(
  dst: usize, dstRowB: usize, wt: usize, wtRowB: usize, src: usize, srcStride: i32,
  i: i32, rows: i32, j0: i32, qOffset: i32, Tk: i32, D: i32, accumulate: bool,
): void {
  const srcStrideB = <usize>srcStride << 2;
  let jc = j0; // keys every row of the block sees are [j0, jc)
  if (rows == 4 && (D & 7) == 0) {
    jc = max(j0, visibleEnd(i, qOffset, Tk));
    if (jc > j0) {
      tileCols4(dst, dstRowB, wt + (<usize>j0 << 2), wtRowB, src + <usize>j0 * srcStrideB, srcStrideB, jc - j0, D, accumulate);
    }
  }
  for (let r = 0; r < rows; r++) {
    const j1 = visibleEnd(i + r, qOffset, Tk);
    const d = dst + <usize>r * dstRowB;
    if (jc > j0) {
      if (j1 > jc) weightedRowSum(d, wt + <usize>r * wtRowB + (<usize>jc << 2), 4, src + <usize>jc * srcStrideB, srcStride, j1 - jc, D, true);
    } else if (j1 > j0) {
      weightedRowSum(d, wt + <usize>r * wtRowB + (<usize>j0 << 2), 4, src + <usize>j0 * srcStrideB, srcStride, j1 - j0, D, accumulate);
    } else if (!accumulate) {
      memory.fill(d, 0, <usize>D << 2);
    }
  }
}

/**
 * out[i, h] = Σ_j softmax_j(q_i·k_j / sqrt(D)) v_j for units u = h·Tq + i in [u0, u1), four query
 * rows of one head at a time (their probability rows first, then one tiled weighted sum), keeping
 * the probabilities for the backward: probs [H, Tq, Tk] with exact zeros outside the visible range.
 * (Forwards without probabilities take attention-infer.ts or attention-decode.ts.)
 */
export function attentionForwardRows(
  out: usize, probs: usize, q: usize, k: usize, v: usize,
  Tq: i32, Tk: i32, H: i32, Hkv: i32, D: i32, qOffset: i32, keyStart: i32, kvStride: i32,
  u0: i32, u1: i32,
): void {
  const group = H / Hkv;
  const scale = <f32>(1 / Math.sqrt(<f64>D));
  const tkB = <usize>Tk << 2;
  const j0 = keyStart;
  let u = u0;
  while (u < u1) {
    const h = u / Tq;
    const i = u - h * Tq;
    const rows = min(4, min(u1 - u, Tq - i)); // a block never crosses heads
    const kvo = <usize>(h / group) * <usize>D << 2;
    const rowsBase = probs + <usize>u * tkB;
    memory.fill(rowsBase, 0, <usize>rows * tkB);
    // Scores: rows in pairs over the keys both see (a pair's second row sees at most one key
    // more), then each row's remaining keys alone.
    for (let r = 0; r < rows; r++) {
      const row = rowsBase + <usize>r * tkB;
      const qo = (<usize>(i + r) * <usize>H + <usize>h) * <usize>D << 2;
      const j1 = visibleEnd(i + r, qOffset, Tk);
      if (j1 <= j0) continue;
      let js = j0; // keys [j0, js) already scored by the pair
      if ((r & 1) == 0 && r + 1 < rows && (D & 3) == 0) {
        js = j1;
        const qo1 = qo + (<usize>H * <usize>D << 2);
        dotRows2(row, row + tkB, q + qo, q + qo1, k + kvo, kvStride, j0, j1, D, scale);
      } else if ((r & 1) == 1 && (D & 3) == 0) {
        js = max(j0, visibleEnd(i + r - 1, qOffset, Tk));
      }
      if (j1 > js) dotRows(row, q + qo, k + kvo, kvStride, js, j1, D, scale);
    }
    for (let r = 0; r < rows; r++) {
      const row = rowsBase + <usize>r * tkB;
      const j1 = visibleEnd(i + r, qOffset, Tk);
      if (j1 <= j0) continue;
      const vis = row + (<usize>j0 << 2);
      const n = j1 - j0;
      const m = rowMax(vis, n);
      const sum = expShiftSum(vis, vis, n, m, 1);
      scaleRow(vis, n, <f32>(1 / sum));
    }
    const outRow = (<usize>i * <usize>H + <usize>h) * <usize>D << 2;
    blockRowSums(out + outRow, <usize>H * <usize>D << 2, rowsBase, tkB, v + kvo, kvStride, i, rows, j0, qOffset, Tk, D, false);
    u += rows;
  }
}

/**
 * Backward part 1, units u = h·Tq + i in [u0, u1), four query rows of one head at a time:
 * dp_j = dout_i·v_j; ds[u, j] = p_j (dp_j − Σ p dp) / sqrt(D) into ds [H, Tq, Tk] (visible j
 * only); then dq_i += Σ_j ds_j k_j for the block through one tiled weighted sum.
 */
export function attentionBackwardQ(
  dq: usize, ds: usize, dout: usize, probs: usize, k: usize, v: usize,
  Tq: i32, Tk: i32, H: i32, Hkv: i32, D: i32, qOffset: i32, keyStart: i32, kvStride: i32, u0: i32, u1: i32,
): void {
  const group = H / Hkv;
  const scale = <f32>(1 / Math.sqrt(<f64>D));
  const tkB = <usize>Tk << 2;
  const j0 = keyStart;
  let u = u0;
  while (u < u1) {
    const h = u / Tq;
    const i = u - h * Tq;
    const rows = min(4, min(u1 - u, Tq - i));
    const kvo = <usize>(h / group) * <usize>D << 2;
    for (let r = 0; r < rows; r++) {
      const prow = probs + <usize>(u + r) * tkB;
      const srow = ds + <usize>(u + r) * tkB;
      const qo = (<usize>(i + r) * <usize>H + <usize>h) * <usize>D << 2;
      const j1 = visibleEnd(i + r, qOffset, Tk);
      if (j1 <= j0) continue;
      dotRows(srow, dout + qo, v + kvo, kvStride, j0, j1, D, 1);
      let pdp: f64 = 0;
      for (let j = j0; j < j1; j++) pdp += <f64>(load<f32>(prow + (<usize>j << 2)) * load<f32>(srow + (<usize>j << 2)));
      const pdpv = f32x4.splat(<f32>pdp);
      const sv = f32x4.splat(scale);
      let j = j0;
      for (; j + 4 <= j1; j += 4) {
        const o = <usize>j << 2;
        v128.store(srow + o, f32x4.mul(f32x4.mul(v128.load(prow + o), f32x4.sub(v128.load(srow + o), pdpv)), sv));
      }
      for (; j < j1; j++) {
        const o = <usize>j << 2;
        store<f32>(srow + o, load<f32>(prow + o) * (load<f32>(srow + o) - <f32>pdp) * scale);
      }
    }
    const dqRow = (<usize>i * <usize>H + <usize>h) * <usize>D << 2;
    blockRowSums(dq + dqRow, <usize>H * <usize>D << 2, ds + <usize>u * tkB, tkB, k + kvo, kvStride, i, rows, j0, qOffset, Tk, D, true);
    u += rows;
  }
}

/**
 * dst rows r = 0..3 (kvRowB bytes apart), columns [0, D) += Σ_{n < count} wt[n][r] · src[n][0..D),
 * wt[n] = 4 consecutive f32 at wt + n·wtStrideB, src[n] at src + n·srcStrideB. A 4-row x 8-column
 * register tile: per n one weight vector, two source vectors, eight FMAs. D % 8 == 0.
 */
function tileRows4(dst: usize, kvRowB: usize, wt: usize, wtStrideB: usize, src: usize, srcStrideB: usize, count: i32, D: i32): void {
  for (let d = 0; d < D; d += 8) {
    const od = <usize>d << 2;
    let a00 = f32x4.splat(0), a01 = f32x4.splat(0), a10 = f32x4.splat(0), a11 = f32x4.splat(0);
    let a20 = f32x4.splat(0), a21 = f32x4.splat(0), a30 = f32x4.splat(0), a31 = f32x4.splat(0);
    let w = wt;
    let s = src + od;
    for (let n = 0; n < count; n++, w += wtStrideB, s += srcStrideB) {
      const wv = v128.load(w);
      const s0 = v128.load(s);
      const s1 = v128.load(s, 16);
      let b = v128.shuffle<f32>(wv, wv, 0, 0, 0, 0);
      a00 = fmaF32x4(b, s0, a00); a01 = fmaF32x4(b, s1, a01);
      b = v128.shuffle<f32>(wv, wv, 1, 1, 1, 1);
      a10 = fmaF32x4(b, s0, a10); a11 = fmaF32x4(b, s1, a11);
      b = v128.shuffle<f32>(wv, wv, 2, 2, 2, 2);
      a20 = fmaF32x4(b, s0, a20); a21 = fmaF32x4(b, s1, a21);
      b = v128.shuffle<f32>(wv, wv, 3, 3, 3, 3);
      a30 = fmaF32x4(b, s0, a30); a31 = fmaF32x4(b, s1, a31);
    }
    let o = dst + od;
    v128.store(o, f32x4.add(v128.load(o), a00)); v128.store(o, f32x4.add(v128.load(o, 16), a01), 16);
    o += kvRowB;
    v128.store(o, f32x4.add(v128.load(o), a10)); v128.store(o, f32x4.add(v128.load(o, 16), a11), 16);
    o += kvRowB;
    v128.store(o, f32x4.add(v128.load(o), a20)); v128.store(o, f32x4.add(v128.load(o, 16), a21), 16);
    o += kvRowB;
    v128.store(o, f32x4.add(v128.load(o), a30)); v128.store(o, f32x4.add(v128.load(o, 16), a31), 16);
  }
}

/** Key rows per unit of attentionBackwardKV. */
export const KV_BLOCK: i32 = 4;

/**
 * Backward part 2, units u = g·ceil(Tk/4) + b (kv head g, key rows j = 4b..4b+3): for every query
 * head h of group g and every query row i that sees j: dk_j += ds[h, i, j] q_i; dv_j += p[h, i, j]
 * dout_i. Rows i that see all four keys go through a 4x8 register tile (weights read as one
 * vector per i); the causal triangle above them, partial blocks and D % 8 != 0 go row by row.
 */
export function attentionBackwardKV(
  dk: usize, dv: usize, ds: usize, probs: usize, q: usize, dout: usize,
  Tq: i32, Tk: i32, H: i32, Hkv: i32, D: i32, qOffset: i32, keyStart: i32, kvStride: i32, u0: i32, u1: i32,
): void {
  const group = H / Hkv;
  const colB = <usize>Tk << 2;
  const qStride = H * D;
  const qStrideB = <usize>qStride << 2;
  const kvRowB = <usize>kvStride << 2;
  const blocks = (Tk + KV_BLOCK - 1) / KV_BLOCK;
  for (let u = u0; u < u1; u++) {
    const g = u / blocks;
    const jb = (u - g * blocks) * KV_BLOCK;
    const tiled = jb >= keyStart && jb + KV_BLOCK <= Tk && (D & 7) == 0;
    // First query row that sees all four keys of the block (rows before it see only some).
    const iAll = tiled ? min(Tq, max(0, jb + KV_BLOCK - 1 - qOffset)) : Tq;
    for (let h = g * group; h < (g + 1) * group; h++) {
      for (let j = jb; j < min(Tk, jb + KV_BLOCK); j++) {
        if (j < keyStart) continue;
        const i0 = max(0, j - qOffset);
        const i1 = tiled ? iAll : Tq;
        if (i0 >= i1) continue;
        const kvRow = (<usize>j * <usize>kvStride + <usize>g * <usize>D) << 2;
        const cell = (<usize>(h * Tq + i0) * <usize>Tk + <usize>j) << 2;
        const qo = (<usize>i0 * <usize>H + <usize>h) * <usize>D << 2;
        weightedRowSum(dk + kvRow, ds + cell, colB, q + qo, qStride, i1 - i0, D, true);
        weightedRowSum(dv + kvRow, probs + cell, colB, dout + qo, qStride, i1 - i0, D, true);
      }
      if (tiled && iAll < Tq) {
        const kvRow = (<usize>jb * <usize>kvStride + <usize>g * <usize>D) << 2;
        const cell = (<usize>(h * Tq + iAll) * <usize>Tk + <usize>jb) << 2;
        const qo = (<usize>iAll * <usize>H + <usize>h) * <usize>D << 2;
        tileRows4(dk + kvRow, kvRowB, ds + cell, colB, q + qo, qStrideB, Tq - iAll, D);
        tileRows4(dv + kvRow, kvRowB, probs + cell, colB, dout + qo, qStrideB, Tq - iAll, D);
      }
    }
  }
}
