// Causal GQA attention forward for decoding: one or a few query rows (Tq < 8) against a long KV
// cache, no probabilities kept, in SIMD128. Same result as attentionForwardRows (attention.ts;
// math and layouts in src/kernels/ref/attention.ts) up to f32 summation order.
//
// The keys go by in tiles of BK, in memory order, each tile for every kv head g and every query
// row, so the cache streams through once. The group = H / Hkv query heads of a row that read g
// go in sets of up to three (GQA: each key and value row is loaded once for all of them); per
// tile, kv head and set:
//   scores  t[j] = q·k_j·log2e / sqrt(D): a 3x3 register tile (three query vectors x three keys,
//           D vectorised from the set's interleaved queries, one transpose-add per three dots);
//   softmax online per vector in base 2 (running max m, sum l of 2^(t − m); the output rescaled
//           when m grows);
//   output  o += Σ_j p[j]·v_j: a 3x3 register tile (three vectors x twelve columns).
// The outputs accumulate in out itself (normalised there at the end) or, when threads split the
// keys into chunks (Hkv = 3 does not divide over 2 threads; keys do), in per-chunk partial
// records (m, l, o) that attentionDecodeMerge combines by their log-sum-exp weights
// (flash-decoding). The per-thread scratch stays small (scores, one set's queries, m and l):
// the JS side zero-fills it on every call.
// Every loop over keys stays inside its query row's visible range [keyStart, i + qOffset], so a
// NaN or Inf in a cache row a row cannot see never reaches it (not even as 0·x). (touchRows only
// loads words of the next tile to pull its lines into cache; they reach no result.)
// Not here: prompt processing (attention-infer.ts), the probability-keeping forward and the
// backward (attention.ts).

import { dotF32 } from './gemv';
import { exp2NonPositiveF32x4, fmaF32x4 } from './vmath';

/** Keys per tile (a multiple of 4). */
const BK: i32 = 64;
/** Bytes of one query vector's scores in a tile: BK and the slack of a score step's last lanes. */
const S_ROW_B: usize = <usize>(BK + 4) << 2;
/** Query vectors per set (register tiles are sized for three). */
const SET: i32 = 3;
/** f32 slots before o in a partial result: m, l and padding to 16 bytes. */
const PART_HEAD: i32 = 4;
const LOG2E: f64 = 1.4426950408889634;

/**
 * Per-thread scratch bytes of attentionForwardDecode for nq = Tq·(H / Hkv) query vectors per kv
 * head: scores [SET][BK + 4], one set's interleaved queries [SET][D], running (m, l) [Hkv·nq][2]
 * (the outputs accumulate in out or in the partial records).
 */
export function attentionDecodeScratchBytes(nq: i32, Hkv: i32, D: i32): i32 {
  const bytes = SET * <i32>S_ROW_B + SET * D * 4 + Hkv * nq * 8;
  return (bytes + 63) & ~63;
}

/** f32 elements of the partial results of `chunks` key chunks (passed to the kernel and the merge). */
export function attentionDecodePartialFloats(nq: i32, Hkv: i32, D: i32, chunks: i32): i32 {
  return chunks * Hkv * nq * (D + PART_HEAD);
}

// Register-tile sizes are type arguments: offsetof<C>() of a class of n one-byte fields is n, a
// compile-time constant, so each instance compiles only the accumulators it uses (constant
// arguments of @inline functions are not enough: Binaryen merges such copies back into one
// function with runtime branches around every FMA).
class One { a: u8; }
class Two { a: u8; b: u8; }
class Three { a: u8; b: u8; c: u8; }
class Four { a: u8; b: u8; c: u8; d: u8; }

/** Transpose-add: lane k of the result is the sum of the four lanes of a_k. */
@inline function sum4(a0: v128, a1: v128, a2: v128, a3: v128): v128 {
  const t01 = f32x4.add(v128.shuffle<f32>(a0, a1, 0, 1, 4, 5), v128.shuffle<f32>(a0, a1, 2, 3, 6, 7));
  const t23 = f32x4.add(v128.shuffle<f32>(a2, a3, 0, 1, 4, 5), v128.shuffle<f32>(a2, a3, 2, 3, 6, 7));
  return f32x4.add(v128.shuffle<f32>(t01, t23, 0, 2, 4, 6), v128.shuffle<f32>(t01, t23, 1, 3, 5, 7));
}

/**
 * t_r[c] = scale · q_r·k_c for the vectors r < R of a set and the keys c < K (rows k0..k3): an R x K
 * register tile (R·K <= 12 accumulators), q_r[d .. d + 4) at qp + 16r + (d/4)·qStepB, D % 4 == 0.
 * Stores four lanes per vector at t + r·S_ROW_B: lanes c >= K repeat the last key (the next step,
 * or the row slack past BK, takes them).
 */
@inline function scoreTile<R, K>(t: usize, qp: usize, qStepB: usize, k0: usize, k1: usize, k2: usize, k3: usize, DB: usize, sv: v128): void {
  const nr = <i32>offsetof<R>();
  const nk = <i32>offsetof<K>();
  let a00 = f32x4.splat(0), a01 = f32x4.splat(0), a02 = f32x4.splat(0), a03 = f32x4.splat(0);
  let a10 = f32x4.splat(0), a11 = f32x4.splat(0), a12 = f32x4.splat(0), a13 = f32x4.splat(0);
  let a20 = f32x4.splat(0), a21 = f32x4.splat(0), a22 = f32x4.splat(0), a23 = f32x4.splat(0);
  const end = k0 + DB;
  for (; k0 < end; k0 += 16, k1 += 16, k2 += 16, k3 += 16, qp += qStepB) {
    const x0 = v128.load(qp);
    const x1 = nr > 1 ? v128.load(qp, 16) : x0;
    const x2 = nr > 2 ? v128.load(qp, 32) : x0;
    let kv = v128.load(k0);
    a00 = fmaF32x4(x0, kv, a00);
    if (nr > 1) a10 = fmaF32x4(x1, kv, a10);
    if (nr > 2) a20 = fmaF32x4(x2, kv, a20);
    if (nk > 1) {
      kv = v128.load(k1);
      a01 = fmaF32x4(x0, kv, a01);
      if (nr > 1) a11 = fmaF32x4(x1, kv, a11);
      if (nr > 2) a21 = fmaF32x4(x2, kv, a21);
    }
    if (nk > 2) {
      kv = v128.load(k2);
      a02 = fmaF32x4(x0, kv, a02);
      if (nr > 1) a12 = fmaF32x4(x1, kv, a12);
      if (nr > 2) a22 = fmaF32x4(x2, kv, a22);
    }
    if (nk > 3) {
      kv = v128.load(k3);
      a03 = fmaF32x4(x0, kv, a03);
      if (nr > 1) a13 = fmaF32x4(x1, kv, a13);
      if (nr > 2) a23 = fmaF32x4(x2, kv, a23);
    }
  }
  if (nk == 1) { a01 = a00; a11 = a10; a21 = a20; }
  if (nk <= 2) { a02 = a01; a12 = a11; a22 = a21; }
  if (nk <= 3) { a03 = a02; a13 = a12; a23 = a22; }
  v128.store(t, f32x4.mul(sum4(a00, a01, a02, a03), sv));
  if (nr > 1) v128.store(t + S_ROW_B, f32x4.mul(sum4(a10, a11, a12, a13), sv));
  if (nr > 2) v128.store(t + 2 * S_ROW_B, f32x4.mul(sum4(a20, a21, a22, a23), sv));
}

/**
 * t_r[j] for keys j in [j0, j1) of a tile (key row j at k + j·kRowB), K at a time; a short last step
 * repeats key j1 − 1 (one every vector of the set sees).
 */
@inline function scoreKeys<R, K>(t: usize, qp: usize, qStepB: usize, k: usize, kRowB: usize, j0: i32, j1: i32, DB: usize, sv: v128): void {
  const nk = <i32>offsetof<K>();
  const last = k + <usize>(j1 - 1) * kRowB;
  for (let j = j0; j < j1; j += nk) {
    const kj = k + <usize>j * kRowB;
    const k1 = j + 1 < j1 ? kj + kRowB : last;
    const k2 = j + 2 < j1 ? kj + 2 * kRowB : last;
    const k3 = j + 3 < j1 ? kj + 3 * kRowB : last;
    scoreTile<R, K>(t + (<usize>j << 2), qp, qStepB, kj, k1, k2, k3, DB, sv);
  }
}

/**
 * Scores of nr <= 3 vectors over the keys [j0, j1) of a tile: from the set's interleaved queries
 * (qp, qStepB) when D % 4 == 0, else row by row from q rows q0..q2 (scalar tails).
 */
function scoreSet(nr: i32, t: usize, qp: usize, qStepB: usize, q0: usize, q1: usize, q2: usize, k: usize, kRowB: usize, j0: i32, j1: i32, D: i32, scale: f32): void {
  if (j1 <= j0) return;
  if ((D & 3) != 0) {
    for (let r = 0; r < nr; r++) {
      const qr = r == 0 ? q0 : r == 1 ? q1 : q2;
      for (let j = j0; j < j1; j++) store<f32>(t + <usize>r * S_ROW_B + (<usize>j << 2), dotF32(qr, k + <usize>j * kRowB, D) * scale);
    }
    return;
  }
  const DB = <usize>D << 2;
  const sv = f32x4.splat(scale);
  if (nr == 3) scoreKeys<Three, Three>(t, qp, qStepB, k, kRowB, j0, j1, DB, sv);
  else if (nr == 2) scoreKeys<Two, Four>(t, qp, qStepB, k, kRowB, j0, j1, DB, sv);
  else scoreKeys<One, Four>(t, qp, qStepB, k, kRowB, j0, j1, DB, sv);
}

/**
 * o_r[c .. c + 4w) += Σ_{j in [j0, j1)} p_r[j] · v_j[c .. c + 4w) for vectors r < nq (o_r at
 * o + r·oRowB, p_r[j] at p + r·S_ROW_B + 4j, v_j at v + j·vRowB): an nq x w register tile,
 * nq = count R, w = count W <= 4, nq·w <= 12.
 */
@inline function values<R, W>(o: usize, oRowB: usize, p: usize, v: usize, vRowB: usize, j0: i32, j1: i32): void {
  const nq = <i32>offsetof<R>();
  const w = <i32>offsetof<W>();
  const o1 = o + oRowB, o2 = o1 + oRowB;
  let a00 = v128.load(o), a01 = w > 1 ? v128.load(o, 16) : a00, a02 = w > 2 ? v128.load(o, 32) : a00, a03 = w > 3 ? v128.load(o, 48) : a00;
  let a10 = a00, a11 = a00, a12 = a00, a13 = a00, a20 = a00, a21 = a00, a22 = a00, a23 = a00;
  if (nq > 1) {
    a10 = v128.load(o1);
    if (w > 1) a11 = v128.load(o1, 16);
    if (w > 2) a12 = v128.load(o1, 32);
    if (w > 3) a13 = v128.load(o1, 48);
  }
  if (nq > 2) {
    a20 = v128.load(o2);
    if (w > 1) a21 = v128.load(o2, 16);
    if (w > 2) a22 = v128.load(o2, 32);
    if (w > 3) a23 = v128.load(o2, 48);
  }
  let vj = v + <usize>j0 * vRowB;
  const pe = p + (<usize>j1 << 2);
  for (let pj = p + (<usize>j0 << 2); pj < pe; pj += 4, vj += vRowB) {
    const b0 = v128.load32_splat(pj);
    const b1 = nq > 1 ? v128.load32_splat(pj + S_ROW_B) : b0;
    const b2 = nq > 2 ? v128.load32_splat(pj + 2 * S_ROW_B) : b0;
    let x = v128.load(vj);
    a00 = fmaF32x4(b0, x, a00);
    if (nq > 1) a10 = fmaF32x4(b1, x, a10);
    if (nq > 2) a20 = fmaF32x4(b2, x, a20);
    if (w > 1) {
      x = v128.load(vj, 16);
      a01 = fmaF32x4(b0, x, a01);
      if (nq > 1) a11 = fmaF32x4(b1, x, a11);
      if (nq > 2) a21 = fmaF32x4(b2, x, a21);
    }
    if (w > 2) {
      x = v128.load(vj, 32);
      a02 = fmaF32x4(b0, x, a02);
      if (nq > 1) a12 = fmaF32x4(b1, x, a12);
      if (nq > 2) a22 = fmaF32x4(b2, x, a22);
    }
    if (w > 3) {
      x = v128.load(vj, 48);
      a03 = fmaF32x4(b0, x, a03);
      if (nq > 1) a13 = fmaF32x4(b1, x, a13);
      if (nq > 2) a23 = fmaF32x4(b2, x, a23);
    }
  }
  v128.store(o, a00);
  if (w > 1) v128.store(o, a01, 16);
  if (w > 2) v128.store(o, a02, 32);
  if (w > 3) v128.store(o, a03, 48);
  if (nq > 1) {
    v128.store(o1, a10);
    if (w > 1) v128.store(o1, a11, 16);
    if (w > 2) v128.store(o1, a12, 32);
    if (w > 3) v128.store(o1, a13, 48);
  }
  if (nq > 2) {
    v128.store(o2, a20);
    if (w > 1) v128.store(o2, a21, 16);
    if (w > 2) v128.store(o2, a22, 32);
    if (w > 3) v128.store(o2, a23, 48);
  }
}

/** values over every column [0, D) in passes of count W vectors (then single vectors, then scalars). */
@inline function valueColumns<R, W>(o: usize, oRowB: usize, p: usize, v: usize, vRowB: usize, j0: i32, j1: i32, D: i32): void {
  const nq = <i32>offsetof<R>();
  const w = <i32>offsetof<W>();
  let c = 0;
  for (; c + 4 * w <= D; c += 4 * w) values<R, W>(o + (<usize>c << 2), oRowB, p, v + (<usize>c << 2), vRowB, j0, j1);
  for (; c + 4 <= D; c += 4) values<R, One>(o + (<usize>c << 2), oRowB, p, v + (<usize>c << 2), vRowB, j0, j1);
  for (; c < D; c++) {
    const oc = <usize>c << 2;
    for (let r = 0; r < nq; r++) {
      let a = load<f32>(o + <usize>r * oRowB + oc);
      for (let j = j0; j < j1; j++) a += load<f32>(p + <usize>r * S_ROW_B + (<usize>j << 2)) * load<f32>(v + <usize>j * vRowB + oc);
      store<f32>(o + <usize>r * oRowB + oc, a);
    }
  }
}

/** valueColumns for a set of nq <= 3 vectors (one specialised copy per size). */
function valueSet(nq: i32, o: usize, oRowB: usize, p: usize, v: usize, vRowB: usize, j0: i32, j1: i32, D: i32): void {
  if (j1 <= j0) return;
  if (nq == 3) valueColumns<Three, Three>(o, oRowB, p, v, vRowB, j0, j1, D);
  else if (nq == 2) valueColumns<Two, Four>(o, oRowB, p, v, vRowB, j0, j1, D);
  else valueColumns<One, Four>(o, oRowB, p, v, vRowB, j0, j1, D);
}

/** End of the keys query row i sees: min(Tk, i + qOffset + 1), at least keyStart. */
@inline function visibleEnd(i: i32, qOffset: i32, keyStart: i32, Tk: i32): i32 {
  return max(keyStart, min(Tk, i + qOffset + 1));
}

/** 2^x for x <= 0 (or NaN), one lane. */
@inline function exp2NonPositive(x: f32): f32 {
  return f32x4.extract_lane(exp2NonPositiveF32x4(f32x4.splat(x)), 0);
}

/** Lanes [0, n) of a vector (n in 1..3) as all-ones, the rest zero. */
@inline function firstLanes(n: i32): v128 {
  return i32x4.lt_s(i32x4(0, 1, 2, 3), i32x4.splat(n));
}

/**
 * One online-softmax step of a query vector over its n > 0 scores t[0..n) of a tile (base 2:
 * t = s·log2e, so e^(s − m) = 2^(t − m)): m (at ml) grows to cover the tile, t becomes
 * p = 2^(t − m) in place, l (at ml + 4) = l·c + Σp and the output o[0..D) is rescaled by
 * c = 2^(m_old − m). A NaN score reaches p, l and o (pmax drops it from m, 2^(NaN − m) does not),
 * as in the reference.
 */
function softmaxStep(t: usize, n: i32, ml: usize, o: usize, D: i32): void {
  const full = <usize>(n & ~3) << 2;
  const tail = n & 3;
  let mv = f32x4.splat(-Infinity);
  for (let p: usize = 0; p < full; p += 16) mv = f32x4.pmax(mv, v128.load(t + p));
  if (tail != 0) mv = f32x4.pmax(mv, v128.bitselect(v128.load(t + full), f32x4.splat(-Infinity), firstLanes(tail)));
  const mOld = load<f32>(ml);
  const mNew = max(mOld, max(max(f32x4.extract_lane(mv, 0), f32x4.extract_lane(mv, 1)), max(f32x4.extract_lane(mv, 2), f32x4.extract_lane(mv, 3))));
  const shift = f32x4.splat(mNew);
  let s0 = f32x4.splat(0), s1 = f32x4.splat(0);
  let p: usize = 0;
  for (; p + 32 <= full; p += 32) {
    const e0 = exp2NonPositiveF32x4(f32x4.sub(v128.load(t + p), shift));
    const e1 = exp2NonPositiveF32x4(f32x4.sub(v128.load(t + p, 16), shift));
    v128.store(t + p, e0);
    v128.store(t + p, e1, 16);
    s0 = f32x4.add(s0, e0);
    s1 = f32x4.add(s1, e1);
  }
  if (p < full) {
    const e0 = exp2NonPositiveF32x4(f32x4.sub(v128.load(t + p), shift));
    v128.store(t + p, e0);
    s0 = f32x4.add(s0, e0);
  }
  if (tail != 0) {
    // Lanes past n hold stale scores (possibly another vector's NaN): zeroed before the sum.
    const e0 = v128.and(exp2NonPositiveF32x4(f32x4.sub(v128.load(t + full), shift)), firstLanes(tail));
    v128.store(t + full, e0);
    s0 = f32x4.add(s0, e0);
  }
  s0 = f32x4.add(s0, s1);
  const sum = (f32x4.extract_lane(s0, 0) + f32x4.extract_lane(s0, 1)) + (f32x4.extract_lane(s0, 2) + f32x4.extract_lane(s0, 3));
  store<f32>(ml, mNew);
  const l = load<f32>(ml, 4);
  if (l == 0) {
    store<f32>(ml, sum, 4); // the first keys of this vector: o is still 0
    return;
  }
  const c = exp2NonPositive(mOld - mNew);
  store<f32>(ml, l * c + sum, 4);
  if (c != 1) scaleInto(o, o, D, c, false);
}

/**
 * out[i, h] = Σ_j softmax_j(q_i·k_j / sqrt(D)) v_j over the visible keys, for the key chunks
 * c in [c0, c1) of `chunks` equal chunks of [keyStart, end of the last row), every kv head and every
 * query vector of it. Key tiles go by in memory order, all kv heads of a tile before the next (the
 * cache streams through once). chunks == 1: o accumulates in out itself and is normalised there;
 * chunks > 1: each chunk writes its partial (m, l, o per kv head and query vector, layout
 * attentionDecodePartialFloats) for attentionDecodeMerge. scratch: attentionDecodeScratchBytes.
 */
export function attentionForwardDecode(
  out: usize, part: usize, q: usize, k: usize, v: usize,
  Tq: i32, Tk: i32, H: i32, Hkv: i32, D: i32, qOffset: i32, keyStart: i32, kvStride: i32,
  chunks: i32, c0: i32, c1: i32, scratch: usize,
): void {
  const group = H / Hkv;
  const nq = Tq * group;
  const DB = <usize>D << 2;
  const qRowB = <usize>(H * D) << 2;
  const kRowB = <usize>kvStride << 2;
  const partRowB = <usize>(D + PART_HEAD) << 2;
  const scale = <f32>(LOG2E / Math.sqrt(<f64>D)); // scores in base 2 (softmaxStep)
  const direct = chunks == 1;
  const sc = scratch; // [SET][BK + 4] scores, then probabilities
  const qs = sc + <usize>SET * S_ROW_B; // [D / 4][ns][4]: the current set's queries interleaved
  const mlScratch = qs + <usize>SET * DB; // [Hkv·nq][2] (m, l) when direct
  const setsPerRow = (group + SET - 1) / SET; // a set never spans two query rows
  const jEnd = visibleEnd(Tq - 1, qOffset, keyStart, Tk);
  const chunkLen = (jEnd - keyStart + chunks - 1) / chunks;
  for (let c = c0; c < c1; c++) {
    const ja = keyStart + c * chunkLen;
    const jb = min(jEnd, ja + chunkLen);
    // Query vector r = i·group + hh of kv head g (query row i, head h = g·group + hh): its (m, l)
    // at mlBase + (g·nq + r)·mlB, its output row at oRecord(i, h).
    const rec = part + <usize>(c * Hkv * nq) * partRowB;
    const mlBase = direct ? mlScratch : rec;
    const mlB: usize = direct ? 8 : partRowB;
    const oBase = direct ? out : rec + (<usize>PART_HEAD << 2);
    const oB = direct ? DB : partRowB; // next head of the same query row
    const oRowB = direct ? qRowB : <usize>group * partRowB; // next query row of the same head
    for (let i = 0; i < Tq; i++) {
      for (let h = 0; h < H; h++) {
        const g = h / group;
        const ml = mlBase + <usize>(g * nq + i * group + h - g * group) * mlB;
        store<f32>(ml, -Infinity);
        store<f32>(ml, 0, 4);
        memory.fill(oRecord(oBase, i, h, group, nq, oRowB, oB, direct), 0, DB);
      }
    }
    let touched = 0;
    for (let jt = ja; jt < jb; jt += BK) {
      const n = min(BK, jb - jt);
      touched |= touchRows(k, v, jt + n, min(BK, jb - jt - n), kRowB, Hkv * D);
      for (let g = 0; g < Hkv; g++) {
        const kt = k + <usize>jt * kRowB + <usize>g * DB;
        const vt = v + <usize>jt * kRowB + <usize>g * DB;
        for (let i = 0; i < Tq; i++) {
          const e = tileEnd(i, qOffset, keyStart, Tk, jt, n); // the row sees the tile's keys [0, e)
          if (e == 0) continue;
          for (let st = 0; st < setsPerRow; st++) {
            const hh0 = (st * group + setsPerRow - 1) / setsPerRow;
            const ns = ((st + 1) * group + setsPerRow - 1) / setsPerRow - hh0;
            const h0 = g * group + hh0;
            const q0 = q + <usize>i * qRowB + <usize>h0 * DB; // the set's queries: heads h0.., DB apart
            if ((D & 3) == 0) {
              for (let t = 0; t < ns; t++) {
                for (let d = 0; d < D; d += 4) v128.store(qs + <usize>(d * ns + 4 * t) * 4, v128.load(q0 + <usize>t * DB + (<usize>d << 2)));
              }
            }
            scoreSet(ns, sc, qs, <usize>ns << 4, q0, q0 + DB, q0 + 2 * DB, kt, kRowB, 0, e, D, scale);
            const o0 = oRecord(oBase, i, h0, group, nq, oRowB, oB, direct);
            const ml0 = mlBase + <usize>(g * nq + i * group + hh0) * mlB;
            for (let t = 0; t < ns; t++) softmaxStep(sc + <usize>t * S_ROW_B, e, ml0 + <usize>t * mlB, o0 + <usize>t * oB, D);
            valueSet(ns, o0, oB, sc, vt, kRowB, 0, e, D);
          }
        }
      }
    }
    store<i32>(sc, touched); // keeps the touching loads
    if (direct) {
      for (let i = 0; i < Tq; i++) {
        for (let h = 0; h < H; h++) {
          const g = h / group;
          const o = oRecord(oBase, i, h, group, nq, oRowB, oB, direct);
          normalise(o, o, load<f32>(mlBase + <usize>(g * nq + i * group + h - g * group) * mlB, 4), D);
        }
      }
    }
  }
}

/**
 * Output row of query row i, head h: in out ([Tq, H·D], direct) or in a chunk's partial records
 * ([Hkv][nq] records, vector i·group + h % group of kv head h / group).
 */
@inline function oRecord(oBase: usize, i: i32, h: i32, group: i32, nq: i32, oRowB: usize, oB: usize, direct: bool): usize {
  if (direct) return oBase + <usize>i * oRowB + <usize>h * oB;
  const g = h / group;
  return oBase + <usize>(g * nq) * oB + <usize>i * oRowB + <usize>(h - g * group) * oB;
}

/**
 * Loads one word of every cache line of key and value rows [j0, j0 + n) (the used rowFloats of
 * each) and returns their OR. A tile ahead of the arithmetic, so that in decoding, where every
 * layer's cache comes from L3 or DRAM, the next tile's lines are on their way while this one is
 * computed (measured, Tk = 2048, 9/3 heads, D = 64, 30 layers in turn: ~370 -> ~250 us per call,
 * for ~10% more time with the cache in L2).
 */
function touchRows(k: usize, v: usize, j0: i32, n: i32, kRowB: usize, rowFloats: i32): i32 {
  const rowB = <usize>rowFloats << 2;
  let bits = 0;
  for (let j = j0; j < j0 + n; j++) {
    const kr = k + <usize>j * kRowB;
    const vr = v + <usize>j * kRowB;
    for (let o: usize = 0; o < rowB; o += 64) bits |= load<i32>(kr + o) | load<i32>(vr + o);
  }
  return bits;
}

/** Row of query vector r (query row r / group, head g·group + r % group) in a [Tq, H·D] array. */
@inline function queryRow(base: usize, r: i32, group: i32, g: i32, qRowB: usize, DB: usize): usize {
  const i = r / group;
  return base + <usize>i * qRowB + <usize>(g * group + r - i * group) * DB;
}

/** Keys [0, e) of the tile [jt, jt + n) that query row i sees. */
@inline function tileEnd(i: i32, qOffset: i32, keyStart: i32, Tk: i32, jt: i32, n: i32): i32 {
  return max(0, min(n, visibleEnd(i, qOffset, keyStart, Tk) - jt));
}

/**
 * dst[0..D) = o / l (dst may be o); zeros for a vector that saw no key (l = 0: a vector that saw
 * any has l >= 1, its max term being 2^0, or NaN).
 */
function normalise(dst: usize, o: usize, l: f32, D: i32): void {
  if (l == 0) {
    memory.fill(dst, 0, <usize>D << 2);
    return;
  }
  scaleInto(dst, o, D, <f32>1 / l, false);
}

/**
 * Combines the chunks' partials of attentionForwardDecode: per kv head and query vector, over the
 * chunks that saw keys of it (l_c != 0): M = max m_c, w_c = 2^(m_c − M), out = Σ w_c o_c / Σ w_c l_c;
 * a vector that saw no key outputs 0. The merged record goes into chunk 0's slot.
 */
export function attentionDecodeMerge(out: usize, part: usize, Tq: i32, H: i32, Hkv: i32, D: i32, chunks: i32): void {
  const group = H / Hkv;
  const nq = Tq * group;
  const DB = <usize>D << 2;
  const qRowB = <usize>(H * D) << 2;
  const partRowB = <usize>(D + PART_HEAD) << 2;
  const chunkB = <usize>(Hkv * nq) * partRowB;
  for (let g = 0; g < Hkv; g++) {
    for (let r = 0; r < nq; r++) {
      const a0 = part + <usize>(g * nq + r) * partRowB;
      let m: f32 = -Infinity;
      for (let c = 0; c < chunks; c++) {
        const ac = a0 + <usize>c * chunkB;
        if (load<f32>(ac, 4) != 0) m = max(m, load<f32>(ac));
      }
      let l: f32 = 0;
      let first = true;
      for (let c = 0; c < chunks; c++) {
        const ac = a0 + <usize>c * chunkB;
        const lc = load<f32>(ac, 4);
        if (lc == 0) continue;
        // m_c = M = −inf only for a chunk whose scores were all NaN: w is NaN, as its l_c and o_c.
        const w = exp2NonPositive(load<f32>(ac) - m);
        l += w * lc;
        scaleInto(a0 + (<usize>PART_HEAD << 2), ac + (<usize>PART_HEAD << 2), D, w, !first);
        first = false;
      }
      normalise(queryRow(out, r, group, g, qRowB, DB), a0 + (<usize>PART_HEAD << 2), l, D);
    }
  }
}

/** dst[0..D) = (accumulate ? dst : 0) + w · src[0..D). */
function scaleInto(dst: usize, src: usize, D: i32, w: f32, accumulate: bool): void {
  const wv = f32x4.splat(w);
  let d = 0;
  for (; d + 4 <= D; d += 4) {
    const od = <usize>d << 2;
    const x = f32x4.mul(v128.load(src + od), wv);
    v128.store(dst + od, accumulate ? f32x4.add(v128.load(dst + od), x) : x);
  }
  for (; d < D; d++) {
    const od = <usize>d << 2;
    const x = load<f32>(src + od) * w;
    store<f32>(dst + od, accumulate ? load<f32>(dst + od) + x : x);
  }
}
