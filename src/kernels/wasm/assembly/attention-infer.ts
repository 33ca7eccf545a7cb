// Causal GQA attention forward for inference (no probabilities kept), in SIMD128: the prompt
// processing path. Same result as attentionForwardRows (attention.ts; math and layouts in
// src/kernels/ref/attention.ts) up to f32 summation order; the training forward, which must write
// the normalised probabilities, stays there.
//
// Flash-attention style: a unit is one kv head g and a block of QB = 8 query positions, taken for
// every query head of g at once (GQA: each key/value row loaded serves all of them). Keys go by in
// tiles of BK with an online softmax (running max and sum per query row, output rescaled when the
// max grows), so scores live in a small L1 scratch and never in a full [Tq, Tk] row.
// Lanes of a v128 are 4 positions of one query head (a "row vector"; 2·group of them per block):
//   scores  S[v][j] = Qt·K^T as a 2x4 tile (two row vectors x four keys, one broadcast key element
//           per FMA pair, no horizontal sums), Qt the block's queries transposed once;
//   softmax lane-wise: the max, the terms (as 2^t: log2 e folded into the score scale) and the
//           sums of four rows are one vector operation;
//   output  O[r] += P[j][r]·V[j] as a 4x8 tile (four rows of one row vector x eight columns).
// Work inside the causal triangle: a block's keys run to its last row's end; keys some lanes
// cannot see are masked to −inf before the softmax, and in the weighted sum each row reads only the
// value rows it sees (never 0·v_j of a key it cannot see, so a NaN or Inf in a cache row beyond a
// row's range or before keyStart cannot leak). Rows with no visible key output 0.
// Speed (T=512, 9 query / 3 kv heads, D 64, one thread): ~7 ms per layer against ~10 for the
// row kernel; the score and output FMAs run at ~95% of the 128-bit FMA peak and take ~6.2 of the
// 7 ms, the softmax terms ~0.7.
// Not here: the probability-keeping forward and the backward (attention.ts).

import { exp2NonPositiveF32x4, fmaF32x4 } from './vmath';

/** Query positions per unit. */
const QB: i32 = 8;
/** Keys per tile. */
const BK: i32 = 64;
/** Bytes of one row vector's scores in a tile: S[v] is [BK][4] f32. */
const S_VEC_B: usize = <usize>BK << 4;

/** Query positions per unit of attentionForwardInfer (units u = g·ceil(Tq / QB) + b). */
export function attentionInferBlock(): i32 {
  return QB;
}

/**
 * Per-thread scratch bytes of attentionForwardInfer for `group` = H / Hkv query heads per kv head:
 * a multiple of 64, so the scratches of threads laid end to end share no cache line.
 */
export function attentionInferScratchBytes(group: i32, D: i32): i32 {
  const nv = 2 * group;
  const bytes = group * D * 32 + nv * <i32>S_VEC_B + nv * 4 * D * 4 + 3 * nv * 16;
  return (bytes + 63) & ~63;
}

/**
 * Qt half-pair: dst[32d .. 32d + 16) = (src rows 0..3, column d), rows >= `rows` as 0,
 * src rows srcRowB apart. 4x4 shuffle transposes.
 */
function transposeRows4(dst: usize, src: usize, srcRowB: usize, rows: i32, D: i32): void {
  const zero = f32x4.splat(0);
  const s0 = src, s1 = s0 + srcRowB, s2 = s1 + srcRowB, s3 = s2 + srcRowB;
  let d = 0;
  for (; d + 4 <= D; d += 4) {
    const od = <usize>d << 2;
    const r0 = rows > 0 ? v128.load(s0 + od) : zero;
    const r1 = rows > 1 ? v128.load(s1 + od) : zero;
    const r2 = rows > 2 ? v128.load(s2 + od) : zero;
    const r3 = rows > 3 ? v128.load(s3 + od) : zero;
    const t0 = v128.shuffle<f32>(r0, r1, 0, 4, 1, 5);
    const t1 = v128.shuffle<f32>(r2, r3, 0, 4, 1, 5);
    const t2 = v128.shuffle<f32>(r0, r1, 2, 6, 3, 7);
    const t3 = v128.shuffle<f32>(r2, r3, 2, 6, 3, 7);
    const o = dst + (<usize>d << 5);
    v128.store(o, v128.shuffle<f32>(t0, t1, 0, 1, 4, 5));
    v128.store(o, v128.shuffle<f32>(t0, t1, 2, 3, 6, 7), 32);
    v128.store(o, v128.shuffle<f32>(t2, t3, 0, 1, 4, 5), 64);
    v128.store(o, v128.shuffle<f32>(t2, t3, 2, 3, 6, 7), 96);
  }
  for (; d < D; d++) {
    const od = <usize>d << 2;
    const o = dst + (<usize>d << 5);
    store<f32>(o, rows > 0 ? load<f32>(s0 + od) : 0);
    store<f32>(o, rows > 1 ? load<f32>(s1 + od) : 0, 4);
    store<f32>(o, rows > 2 ? load<f32>(s2 + od) : 0, 8);
    store<f32>(o, rows > 3 ? load<f32>(s3 + od) : 0, 12);
  }
}

/**
 * S[v][0..4) and S[v + 1][0..4) (s = row vector v's slot for the first key) = Qt pair · keys
 * k0..k3: a 2x4 register tile, one d per step (any D). Eight accumulators plus six loads per step
 * are what V8's register allocator keeps in the 15 free xmm registers without spilling.
 */
@inline function scores2x4(s: usize, qt: usize, k0: usize, k1: usize, k2: usize, k3: usize, D: i32): void {
  let a00 = f32x4.splat(0), a01 = f32x4.splat(0), a02 = f32x4.splat(0), a03 = f32x4.splat(0);
  let a10 = f32x4.splat(0), a11 = f32x4.splat(0), a12 = f32x4.splat(0), a13 = f32x4.splat(0);
  let qp = qt;
  const end = k0 + (<usize>D << 2);
  for (; k0 < end; k0 += 4, k1 += 4, k2 += 4, k3 += 4, qp += 32) {
    const q0 = v128.load(qp), q1 = v128.load(qp, 16);
    let b = v128.load32_splat(k0); a00 = fmaF32x4(q0, b, a00); a10 = fmaF32x4(q1, b, a10);
    b = v128.load32_splat(k1); a01 = fmaF32x4(q0, b, a01); a11 = fmaF32x4(q1, b, a11);
    b = v128.load32_splat(k2); a02 = fmaF32x4(q0, b, a02); a12 = fmaF32x4(q1, b, a12);
    b = v128.load32_splat(k3); a03 = fmaF32x4(q0, b, a03); a13 = fmaF32x4(q1, b, a13);
  }
  v128.store(s, a00); v128.store(s, a01, 16); v128.store(s, a02, 32); v128.store(s, a03, 48);
  s += S_VEC_B;
  v128.store(s, a10); v128.store(s, a11, 16); v128.store(s, a12, 32); v128.store(s, a13, 48);
}

/** S[v][jj] for keys jj < n of a tile (key row jj at k0 + jj·kRowB), every row vector v < nv. */
function scoreTile(s: usize, qt: usize, nv: i32, k0: usize, kRowB: usize, n: i32, D: i32): void {
  const pairB = <usize>D << 5;
  const last = <usize>(n - 1);
  for (let jj = 0; jj < n; jj += 4) {
    // A short last step repeats key n − 1 (one the block may read) into unused slots.
    const kj0 = k0 + <usize>jj * kRowB;
    const kj1 = k0 + min(<usize>(jj + 1), last) * kRowB;
    const kj2 = k0 + min(<usize>(jj + 2), last) * kRowB;
    const kj3 = k0 + min(<usize>(jj + 3), last) * kRowB;
    const sj = s + (<usize>jj << 4);
    for (let v = 0; v < nv; v += 2) scores2x4(sj + <usize>v * S_VEC_B, qt + <usize>(v >> 1) * pairB, kj0, kj1, kj2, kj3, D);
  }
}

/**
 * Online softmax over the n keys of a tile, per row vector v < nv: the running max m of the raw
 * scores s = q·k grows to cover the tile, c = e^((m_old − m)/sqrt(D)) goes to cs[v],
 * p = e^((s − m)/sqrt(D)) replaces s, l = l·c + Σp. Returns false when every c is 1 (the output
 * needs no rescale). scaleLog2e = log2(e)/sqrt(D): the terms are computed as powers of 2.
 */
function softmaxTile(s: usize, nv: i32, n: i32, scaleLog2e: f32, ms: usize, ls: usize, cs: usize): bool {
  let rescale = false;
  const cv = f32x4.splat(scaleLog2e);
  const nb = <usize>n << 4;
  for (let v = 0; v < nv; v++) {
    const vo = <usize>v << 4;
    const sb = s + <usize>v * S_VEC_B;
    const se = sb + nb;
    // pmax (one maxps) drops a NaN score from the max, but the NaN still reaches p, l and the
    // output through its term, as in the reference.
    let mt0 = f32x4.splat(-Infinity), mt1 = f32x4.splat(-Infinity);
    let p = sb;
    for (; p + 32 <= se; p += 32) {
      mt0 = f32x4.pmax(mt0, v128.load(p));
      mt1 = f32x4.pmax(mt1, v128.load(p, 16));
    }
    if (p < se) mt0 = f32x4.pmax(mt0, v128.load(p));
    const mOld = v128.load(ms + vo);
    const mNew = f32x4.pmax(mOld, f32x4.pmax(mt0, mt1));
    // Terms 2^((s − max)·C), C = log2(e)/sqrt(D): s − max is exact for the terms near the max
    // that dominate the sums (one rounding, of the product, in both builds). A lane with no
    // visible key yet (max −inf) shifts by 0, so its terms are 2^−inf, not NaN.
    const shift = v128.bitselect(f32x4.splat(0), mNew, f32x4.eq(mNew, f32x4.splat(-Infinity)));
    const c = exp2NonPositiveF32x4(f32x4.mul(f32x4.sub(mOld, shift), cv));
    if (v128.any_true(f32x4.ne(c, f32x4.splat(1)))) rescale = true;
    let sum0 = f32x4.splat(0), sum1 = f32x4.splat(0);
    p = sb;
    for (; p + 32 <= se; p += 32) {
      const e0 = exp2NonPositiveF32x4(f32x4.mul(f32x4.sub(v128.load(p), shift), cv));
      const e1 = exp2NonPositiveF32x4(f32x4.mul(f32x4.sub(v128.load(p, 16), shift), cv));
      v128.store(p, e0);
      v128.store(p, e1, 16);
      sum0 = f32x4.add(sum0, e0);
      sum1 = f32x4.add(sum1, e1);
    }
    if (p < se) {
      const e0 = exp2NonPositiveF32x4(f32x4.mul(f32x4.sub(v128.load(p), shift), cv));
      v128.store(p, e0);
      sum0 = f32x4.add(sum0, e0);
    }
    v128.store(ls + vo, fmaF32x4(v128.load(ls + vo), c, f32x4.add(sum0, sum1)));
    v128.store(ms + vo, mNew);
    v128.store(cs + vo, c);
  }
  return rescale;
}

/**
 * o rows 0..3 (oRowB apart), columns [0, 8) = o·c_r + Σ_{jj<n} P[jj][r]·V[jj][0..8): P[jj][r] at
 * p + 16jj + 4r (one row vector), c_r at cs + 4r (unused when !rescale), V[jj] at v0 + jj·vRowB.
 * A 4x8 register tile.
 */
@inline function output4x8(o: usize, oRowB: usize, p: usize, cs: usize, rescale: bool, v0: usize, vRowB: usize, n: i32): void {
  let a00 = v128.load(o), a01 = v128.load(o, 16);
  let a10 = v128.load(o + oRowB), a11 = v128.load(o + oRowB, 16);
  let a20 = v128.load(o + 2 * oRowB), a21 = v128.load(o + 2 * oRowB, 16);
  let a30 = v128.load(o + 3 * oRowB), a31 = v128.load(o + 3 * oRowB, 16);
  if (rescale) {
    let c = v128.load32_splat(cs);
    a00 = f32x4.mul(a00, c); a01 = f32x4.mul(a01, c);
    c = v128.load32_splat(cs, 4);
    a10 = f32x4.mul(a10, c); a11 = f32x4.mul(a11, c);
    c = v128.load32_splat(cs, 8);
    a20 = f32x4.mul(a20, c); a21 = f32x4.mul(a21, c);
    c = v128.load32_splat(cs, 12);
    a30 = f32x4.mul(a30, c); a31 = f32x4.mul(a31, c);
  }
  const pe = p + (<usize>n << 4);
  let s = v0;
  for (let w = p; w < pe; w += 16, s += vRowB) {
    const s0 = v128.load(s);
    const s1 = v128.load(s, 16);
    let b = v128.load32_splat(w); a00 = fmaF32x4(b, s0, a00); a01 = fmaF32x4(b, s1, a01);
    b = v128.load32_splat(w, 4); a10 = fmaF32x4(b, s0, a10); a11 = fmaF32x4(b, s1, a11);
    b = v128.load32_splat(w, 8); a20 = fmaF32x4(b, s0, a20); a21 = fmaF32x4(b, s1, a21);
    b = v128.load32_splat(w, 12); a30 = fmaF32x4(b, s0, a30); a31 = fmaF32x4(b, s1, a31);
  }
  v128.store(o, a00); v128.store(o, a01, 16);
  v128.store(o + oRowB, a10); v128.store(o + oRowB, a11, 16);
  v128.store(o + 2 * oRowB, a20); v128.store(o + 2 * oRowB, a21, 16);
  v128.store(o + 3 * oRowB, a30); v128.store(o + 3 * oRowB, a31, 16);
}

/** One o row, columns [d0, D): o = o·c + Σ_{jj<n} P[jj]·V[jj] (P[jj] at p + 16jj). */
function outputRowColumns(o: usize, p: usize, c: f32, rescale: bool, v0: usize, vRowB: usize, n: i32, d0: i32, D: i32): void {
  let d = d0;
  const cv = f32x4.splat(c);
  for (; d + 4 <= D; d += 4) {
    const od = <usize>d << 2;
    let a = v128.load(o + od);
    if (rescale) a = f32x4.mul(a, cv);
    let w = p;
    let s = v0 + od;
    for (let jj = 0; jj < n; jj++, w += 16, s += vRowB) a = fmaF32x4(v128.load32_splat(w), v128.load(s), a);
    v128.store(o + od, a);
  }
  for (; d < D; d++) {
    const od = <usize>d << 2;
    let a = load<f32>(o + od);
    if (rescale) a *= c;
    let w = p;
    let s = v0 + od;
    for (let jj = 0; jj < n; jj++, w += 16, s += vRowB) a += load<f32>(w) * load<f32>(s);
    store<f32>(o + od, a);
  }
}

/**
 * o = o·c + P·V over a tile for all nv row vectors (o rows [4nv][D]), row vector v over its
 * first nEven (v even) or nOdd (v odd) keys. Eight columns at a time across every row vector, so
 * the tile's value columns stay in L1 between row vectors.
 */
function outputTile(o: usize, p: usize, cs: usize, rescale: bool, nv: i32, v0: usize, vRowB: usize, nEven: i32, nOdd: i32, D: i32): void {
  const DB = <usize>D << 2;
  let d = 0;
  for (; d + 8 <= D; d += 8) {
    const od = <usize>d << 2;
    for (let v = 0; v < nv; v++) {
      output4x8(o + <usize>(v << 2) * DB + od, DB, p + <usize>v * S_VEC_B, cs + (<usize>v << 4), rescale, v0 + od, vRowB, (v & 1) != 0 ? nOdd : nEven);
    }
  }
  if (d < D) {
    for (let r = 0; r < 4 * nv; r++) {
      const v = r >> 2;
      const n = (v & 1) != 0 ? nOdd : nEven;
      outputRowColumns(o + <usize>r * DB, p + <usize>v * S_VEC_B + (<usize>(r & 3) << 2), load<f32>(cs + (<usize>r << 2)), rescale, v0, vRowB, n, d, D);
    }
  }
}

/** o[0..D) += Σ_{t in [t0, t1)} P[t]·V[t] (P[t] at p + 16t, V[t] at v0 + t·vRowB), one key at a time. */
function outputRowKeys(o: usize, p: usize, v0: usize, vRowB: usize, t0: i32, t1: i32, D: i32): void {
  for (let t = t0; t < t1; t++) {
    const w = v128.load32_splat(p + (<usize>t << 4));
    const vt = v0 + <usize>t * vRowB;
    let d = 0;
    for (; d + 4 <= D; d += 4) {
      const od = <usize>d << 2;
      v128.store(o + od, fmaF32x4(w, v128.load(vt + od), v128.load(o + od)));
    }
    const ws = f32x4.extract_lane(w, 0);
    for (; d < D; d++) {
      const od = <usize>d << 2;
      store<f32>(o + od, load<f32>(o + od) + ws * load<f32>(vt + od));
    }
  }
}

/**
 * out[i, h] = Σ_j softmax_j(q_i·k_j / sqrt(D)) v_j over the visible keys j, for units
 * u = g·nb + b in [u0, u1), nb = ceil(Tq / QB): kv head g, query positions QB·b .. QB·b + QB − 1
 * of every query head g·group .. g·group + group − 1. scratch: attentionInferScratchBytes.
 */
export function attentionForwardInfer(
  out: usize, q: usize, k: usize, v: usize,
  Tq: i32, Tk: i32, H: i32, Hkv: i32, D: i32, qOffset: i32, keyStart: i32, kvStride: i32,
  u0: i32, u1: i32, scratch: usize,
): void {
  const group = H / Hkv;
  const nv = 2 * group; // row vector 2hh + half: head g·group + hh, positions i0 + 4·half + 0..3
  const DB = <usize>D << 2;
  const pairB = <usize>D << 5;
  const qt = scratch; // [group][D][8]
  const sc = qt + <usize>group * pairB; // [nv][BK][4]
  const ob = sc + <usize>nv * S_VEC_B; // [4nv][D], row r = 4v + lane
  const ms = ob + (<usize>nv << 2) * DB; // [nv][4] running max
  const ls = ms + (<usize>nv << 4); // [nv][4] running sum
  const cs = ls + (<usize>nv << 4); // [nv][4] this tile's rescale factor
  const scaleLog2e = <f32>(Math.LOG2E / Math.sqrt(<f64>D));
  const kRowB = <usize>kvStride << 2;
  const qRowB = <usize>(H * D) << 2;
  const nb = (Tq + QB - 1) / QB;
  for (let u = u0; u < u1; u++) {
    const g = u / nb;
    const i0 = (u - g * nb) * QB;
    const rows = min(QB, Tq - i0);
    const kvo = <usize>g * DB;
    for (let hh = 0; hh < group; hh++) {
      const qh = q + <usize>i0 * qRowB + <usize>(g * group + hh) * DB;
      transposeRows4(qt + <usize>hh * pairB, qh, qRowB, rows, D);
      transposeRows4(qt + <usize>hh * pairB + 16, qh + 4 * qRowB, qRowB, rows - 4, D);
    }
    memory.fill(ob, 0, (<usize>nv << 2) * DB);
    for (let w = 0; w < nv; w++) {
      v128.store(ms + (<usize>w << 4), f32x4.splat(-Infinity));
      v128.store(ls + (<usize>w << 4), f32x4.splat(0));
    }
    // Position p of the block sees keys [keyStart, end(p)); every lane of the even (odd) row
    // vectors sees the keys before endEven (endOdd); the block reads keys up to jt.
    const jc = visibleEnd(i0, qOffset, keyStart, Tk);
    const endOdd = visibleEnd(i0 + 4, qOffset, keyStart, Tk);
    const jt = visibleEnd(i0 + rows - 1, qOffset, keyStart, Tk);
    for (let j = keyStart; j < jt; j += BK) {
      const n = min(BK, jt - j);
      const k0 = k + <usize>j * kRowB + kvo;
      const v0 = v + <usize>j * kRowB + kvo;
      scoreTile(sc, qt, nv, k0, kRowB, n, D);
      // Mask the keys [jc, jt) of the causal edge for the lanes that cannot see them.
      for (let jj = max(0, jc - j); jj < n; jj++) {
        const first = j + jj - i0 - qOffset; // first position that sees key j + jj
        for (let w = 0; w < nv; w++) {
          const hidden = i32x4.lt_s(i32x4(0, 1, 2, 3), i32x4.splat(first - ((w & 1) << 2)));
          const p = sc + <usize>w * S_VEC_B + (<usize>jj << 4);
          v128.store(p, v128.bitselect(f32x4.splat(-Infinity), v128.load(p), hidden));
        }
      }
      const rescale = softmaxTile(sc, nv, n, scaleLog2e, ms, ls, cs);
      const nEven = min(n, max(0, jc - j));
      const nOdd = min(n, max(0, endOdd - j));
      outputTile(ob, sc, cs, rescale, nv, v0, kRowB, nEven, nOdd, D);
      // Then each row alone over its keys of the edge beyond its row vector's common range.
      if (j + n > jc) {
        for (let w = 0; w < nv; w++) {
          const half = (w & 1) << 2;
          const common = half != 0 ? nOdd : nEven;
          for (let lane = 0; lane < 4 && half + lane < rows; lane++) {
            const own = min(n, visibleEnd(i0 + half + lane, qOffset, keyStart, Tk) - j);
            if (own > common) {
              outputRowKeys(ob + <usize>(4 * w + lane) * DB, sc + <usize>w * S_VEC_B + (<usize>lane << 2), v0, kRowB, common, own, D);
            }
          }
        }
      }
    }
    // out = o / l; a row with no visible key has o = 0 and l = 0 (no tile) or l > 0 (masked
    // terms of 2^−125 each), and outputs 0 either way.
    for (let hh = 0; hh < group; hh++) {
      for (let pos = 0; pos < rows; pos++) {
        const r = 8 * hh + pos; // = 4·(2hh + pos / 4) + pos % 4
        const l = load<f32>(ls + (<usize>r << 2));
        const dst = out + <usize>(i0 + pos) * qRowB + <usize>(g * group + hh) * DB;
        const src = ob + <usize>r * DB;
        if (l == 0) {
          memory.fill(dst, 0, DB);
          continue;
        }
        const inv = <f32>1 / l;
        const iv = f32x4.splat(inv);
        let d = 0;
        for (; d + 4 <= D; d += 4) v128.store(dst + (<usize>d << 2), f32x4.mul(v128.load(src + (<usize>d << 2)), iv));
        for (; d < D; d++) store<f32>(dst + (<usize>d << 2), load<f32>(src + (<usize>d << 2)) * inv);
      }
    }
  }
}

/** End of the keys query position i sees: min(Tk, i + qOffset + 1), at least keyStart. */
@inline function visibleEnd(i: i32, qOffset: i32, keyStart: i32, Tk: i32): i32 {
  return max(keyStart, min(Tk, i + qOffset + 1));
}
